"""The shipped Fashion-MNIST models: loading without network, provenance, real class-conditional samples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from adanat_env.embedded import ASSET_DIR, load_embedded_generator, load_nat_dir, load_tokenizer_dir
from adanat_env.sample import main as sample_main
from adanat_env.sampler import generate
from adanat_env.schedules import heuristic_schedule
from rewards.classifier import load_classifier


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
