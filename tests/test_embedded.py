"""The shipped Fashion-MNIST models: loading without network, provenance, real class-conditional samples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from adanat_env.embedded import ASSET_DIR, load_embedded_generator, load_nat_dir, load_tokenizer_dir
from adanat_env.cli import main as sample_main
from adanat_env.sampler import generate
from adanat_env.schedules import heuristic_schedule
from adanat_env.models.classifier import load_classifier


def test_shipped_assets_are_small_and_documented():
    files = sorted(ASSET_DIR.glob("*"))
    assert sum(f.stat().st_size for f in files) <= 20 * 2**20
    for kind in ("tokenizer", "nat", "classifier"):
        meta = json.loads((ASSET_DIR / f"{kind}.json").read_text())
        for key in ("config", "command", "seed", "data", "final_losses", "wall_time_s"):
            assert key in meta, (kind, key)
        assert len(meta["data"]["train_sha256"]) == 64


def test_shipped_models_load_as_the_official_classes():
    nat, nat_meta = load_nat_dir()
    tok, tok_meta = load_tokenizer_dir()
    assert type(nat).__name__ == "UViT" and type(tok).__name__ == "VQGAN"
    assert nat.config.codebook_size == tok.config.n_embed and nat.config.num_tokens == tok.config.num_tokens
    assert not nat.training and not any(p.requires_grad for p in nat.parameters())


def test_samples_are_recognisably_their_class():
    gen = load_embedded_generator("cpu")
    labels = torch.arange(100) % 10
    images = generate(gen, labels, heuristic_schedule(8), seed=0).images
    assert images.shape == (100, 1, 28, 28)
    pred = load_classifier()(images).argmax(1)
    assert float((pred == labels).float().mean()) >= 0.7


def test_classifier_label_probability_is_the_softmax_of_the_label():
    clf = load_classifier()
    images = torch.rand(6, 1, 28, 28)
    per_label = torch.stack([clf.label_probability(images, torch.full((6,), c)) for c in range(10)], dim=1)
    torch.testing.assert_close(per_label.sum(1), torch.ones(6))
    torch.testing.assert_close(per_label, torch.softmax(clf(images), 1))
    labels = torch.arange(6)
    p = clf.label_probability(images.bfloat16(), labels)  # amp generators hand over bf16 images
    assert p.dtype == torch.float32 and p.shape == (6,)


def test_classifier_feature_maps_feed_its_features():
    clf = load_classifier()
    images = torch.rand(3, 1, 28, 28)
    w = clf.config.width
    maps = clf.feature_maps(images)
    assert [tuple(m.shape) for m in maps] == [(3, w, 28, 28), (3, 2 * w, 28, 28), (3, 4 * w, 14, 14)]
    seen = []
    hook = clf.fc.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    clf.features(images)
    hook.remove()
    assert torch.equal(seen[0], torch.nn.functional.max_pool2d(maps[-1], 2).flatten(1))


def test_missing_directory_names_the_training_command(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="train_nat.py"):
        load_nat_dir(tmp_path)


def test_sample_cli_writes_a_grid(tmp_path: Path, capsys):
    out = tmp_path / "grid.png"
    assert sample_main(["--steps", "4", "--schedule", "cosine", "--per-class", "3", "--device", "cpu", "--out", str(out)]) == 0
    from PIL import Image

    img = Image.open(out)
    assert img.size[0] > 3 * 28 and img.size[1] > 10 * 28
    assert json.loads(capsys.readouterr().out)["images"] == 30
