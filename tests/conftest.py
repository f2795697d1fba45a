"""Shared fixtures: tiny configurations of the real model classes (one code path at every size)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from adanat_env.generator import NATGenerator
from adanat_env.models import UViTConfig, VQGANConfig, load_nat, load_tokenizer

FIXTURES = Path(__file__).parent / "fixtures"

# pytest-xdist (`-n 2`): the workers share the cores, each takes its share of torch's threads
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    torch.set_num_threads(max(1, torch.get_num_threads() // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))

TINY_NAT = UViTConfig(img_size=4, codebook_size=32, embed_dim=32, depth=2, num_heads=2, num_classes=11)
TINY_VQ = VQGANConfig(resolution=16, ch=8, ch_mult=(1, 2, 2), num_res_blocks=1, embed_dim=8, n_embed=32, norm_groups=4)


def load_manifest(name: str) -> tuple[dict[str, list[int]], dict]:
    data = json.loads((FIXTURES / "manifests" / name).read_text())
    meta = data.pop("__meta__")
    return data, meta


@pytest.fixture
def tiny_generator() -> NATGenerator:
    torch.manual_seed(0)
    return NATGenerator(load_nat(TINY_NAT), load_tokenizer(TINY_VQ))


def declare_torchvision_box_ops() -> None:
    """PyPI's torchvision is a CUDA build: with the CPU torch its C ops do not load, and its import then fails
    registering fakes for two box ops. Declaring those two schemas first lets its pure-Python modules (the
    Inception definition pytorch-fid and torch-fidelity build on, transformers' CLIP) import; no box op is ever
    called here."""
    try:
        torch.ops.torchvision.nms  # noqa: B018  (a torchvision whose ops loaded)
    except (AttributeError, RuntimeError):
        if getattr(declare_torchvision_box_ops, "keep", None) is not None:
            return
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")
        declare_torchvision_box_ops.keep = lib  # a Library's definitions live as long as the object


def tiny_clip(directory: Path) -> Path:
    """A tiny random CLIP model in transformers' format (character-level tokenizer), for the CLIP score's tests."""
    import json
    import string

    declare_torchvision_box_ops()
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in list(string.ascii_lowercase) + list("-/.,"):
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n")
    torch.manual_seed(0)
    cfg = CLIPConfig(text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                      num_attention_heads=2, max_position_embeddings=40, bos_token_id=0, eos_token_id=1,
                                      pad_token_id=1),
                     vision_config=dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64,
                                        num_hidden_layers=1, num_attention_heads=2), projection_dim=16)
    CLIPModel(cfg).save_pretrained(directory)
    CLIPTokenizer(str(directory / "vocab.json"), str(directory / "merges.txt")).save_pretrained(directory)
    return directory


def assert_vector_env_agrees(single, vec, steps: int, seeds=(0, 1)) -> dict:
    """Run the single env and a one-env native vector env on the same seeds and random actions: the same labels,
    features at every step, rewards and final tokens. Returns the single env's last info."""
    import numpy as np

    rng = np.random.default_rng(0)
    for seed in seeds:
        o1, _ = single.reset(seed=seed)
        o2, _ = vec.reset(seed=seed)
        assert o1["label"] == o2["label"][0]
        np.testing.assert_array_equal(o1["features"], o2["features"][0])
        for _ in range(steps):
            a = rng.normal(size=single.action_space.shape).astype(np.float32)
            o1, r1, term, _, info1 = single.step(a)
            o2, r2, _, _, info2 = vec.step(a[None])
            assert float(r1) == float(r2[0])
            if not term:
                np.testing.assert_array_equal(o1["features"], o2["features"][0])
        assert term
        np.testing.assert_array_equal(info1["final_tokens"], info2["final_info"]["final_tokens"][0])
    return info1
