"""The CLIP score (issue #28, part 4) with a tiny random CLIP model in transformers' format (dev extra; in
``-m slow``: importing transformers' CLIP alone takes about 5 s of the default suite's budget)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from adanat_env.evaluation.clip_score import load_clip_scorer
from adanat_env.inputs import InputError

from .conftest import declare_torchvision_box_ops, tiny_clip

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def transformers():
    declare_torchvision_box_ops()
    return pytest.importorskip("transformers", reason="dev extra: transformers")


def test_the_clip_score_is_100_times_the_clamped_cosine_of_each_image_with_its_own_text(tmp_path, transformers):
    clip_dir = tiny_clip(tmp_path / "clip")
    score = load_clip_scorer(clip_dir, batch_size=3)
    images = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    texts = ["a photo of a bag", "a dress", "a coat", "a bag", "an ankle boot"]
    # the same by hand, through CLIPModel's own forward: grey to RGB, bicubic to 32 px, CLIP's mean and std
    model = transformers.CLIPModel.from_pretrained(str(clip_dir)).eval()
    tok = transformers.CLIPTokenizer.from_pretrained(str(clip_dir))(texts, padding=True, return_tensors="pt")
    x = F.interpolate(images.expand(-1, 3, -1, -1), size=(32, 32), mode="bicubic", align_corners=False).clamp(0, 1)
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    with torch.no_grad():
        out = model(input_ids=tok.input_ids, attention_mask=tok.attention_mask, pixel_values=(x - mean) / std)
    cos = (out.image_embeds * out.text_embeds).sum(-1)  # both unit length
    assert score(images, texts) == pytest.approx(float((100 * cos).clamp(min=0).mean()), rel=1e-5)
    with pytest.raises(ValueError, match="5 images but 2 texts"):
        score(images, texts[:2])
    with pytest.raises(InputError, match="--clip-dir .* is not a directory"):
        load_clip_scorer(tmp_path / "none")


def test_the_trainer_reports_the_clip_score_of_every_schedule_against_its_prompts(tmp_path, transformers):
    import numpy as np

    from adanat_env.embedded import load_embedded_generator, TEXT_ASSET_DIR
    from agents.training import TrainConfig
    from agents.training.report import evaluate_on_test
    from adanat_env.schedules import heuristic_schedule

    cfg = TrainConfig(env="AdaNAT-FashionMNIST-T2I-v0", device="cpu", clip_dir=str(tiny_clip(tmp_path / "clip")),
                      eval_samples=40, steps=4)
    gen = load_embedded_generator("cpu", nat_dir=TEXT_ASSET_DIR)
    out = evaluate_on_test(cfg, gen, {"heuristic": heuristic_schedule(4)}, tmp_path, torch.device("cpu"), progress=False)
    assert 0 <= out["heuristic"]["clip_score"] <= 100 and np.isfinite(out["heuristic"]["fid"])
