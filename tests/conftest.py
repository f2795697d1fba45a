"""Shared fixtures: tiny configurations of the real model classes (one code path at every size)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from adanat_env.generator import NATGenerator
from adanat_env.models import UViTConfig, VQGANConfig, load_nat, load_tokenizer

FIXTURES = Path(__file__).parent / "fixtures"

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
