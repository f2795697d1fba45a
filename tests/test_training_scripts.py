"""The training scripts run end to end on any IDX data set (a tiny synthetic one here) and save loadable models."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from adanat_env.embedded import load_embedded_generator
from adanat_env.sampler import generate
from adanat_env.schedules import heuristic_schedule

from .test_data import _write_idx

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def experiment_script(name: str) -> ModuleType:
    """``experiments/<name>.py`` as the module ``name``, loaded from its file once per process (the scripts are
    files, not a package; they import the installed packages, and a sibling such as ``figures`` that one of them
    imports is found once loaded here)."""
    path = EXPERIMENTS / f"{name}.py"
    if getattr(sys.modules.get(name), "__file__", None) != str(path):
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # before it runs: its dataclasses look their module up
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


def _synthetic_idx(d: Path, n: int = 120, classes: int = 3) -> None:
    rng = np.random.default_rng(0)
    labels = np.arange(n) % classes
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    for i, c in enumerate(labels):  # class c: a bright bar at a class-specific row band, plus noise
        images[i, 4 + 8 * c : 10 + 8 * c, 4:24] = 200
        images[i] += rng.integers(0, 30, (28, 28), dtype=np.uint8)
    for prefix in ("train", "t10k"):
        _write_idx(d / f"{prefix}-images-idx3-ubyte.gz", images, True)
        _write_idx(d / f"{prefix}-labels-idx1-ubyte.gz", labels.astype(np.uint8), True)


def test_tokenizer_and_nat_scripts_on_a_tiny_idx_set(tmp_path: Path):
    train_nat, train_tokenizer = experiment_script("train_nat"), experiment_script("train_tokenizer")

    data = tmp_path / "data"
    data.mkdir()
    _synthetic_idx(data)
    tok_dir, nat_dir = tmp_path / "tok", tmp_path / "nat"
    tok_meta = train_tokenizer.main(["--data-dir", str(data), "--out", str(tok_dir), "--steps", "3", "--batch-size", "16",
                                     "--ch", "8", "--embed-dim", "8", "--n-embed", "16", "--norm-groups", "4"])
    assert tok_meta["data"]["train_size"] == 120 and (tok_dir / "reconstructions.png").exists()
    nat_meta = train_nat.main(["--data-dir", str(data), "--tokenizer", str(tok_dir), "--out", str(nat_dir),
                               "--steps", "3", "--batch-size", "16", "--embed-dim", "32", "--depth", "2", "--num-heads", "2"])
    assert nat_meta["config"]["num_classes"] == 4  # 3 classes + the empty class
    saved = json.loads((nat_dir / "nat.json").read_text())
    assert saved["seed"] == 0 and "wall_time_s" in saved and len(saved["data"]["train_sha256"]) == 64
    gen = load_embedded_generator("cpu", nat_dir=nat_dir, tokenizer_dir=tok_dir)
    out = generate(gen, torch.tensor([0, 1, 2]), heuristic_schedule(2), seed=0)
    assert out.images.shape == (3, 1, 28, 28)


def test_training_is_seeded(tmp_path: Path):
    train_tokenizer = experiment_script("train_tokenizer")

    data = tmp_path / "data"
    data.mkdir()
    _synthetic_idx(data, n=40)
    args = ["--data-dir", str(data), "--steps", "2", "--batch-size", "8", "--ch", "8", "--embed-dim", "8",
            "--n-embed", "16", "--norm-groups", "4"]
    a = train_tokenizer.main(args + ["--out", str(tmp_path / "a")])
    b = train_tokenizer.main(args + ["--out", str(tmp_path / "b")])
    assert a["final_losses"] == b["final_losses"]
    assert (tmp_path / "a" / "tokenizer.safetensors").read_bytes() == (tmp_path / "b" / "tokenizer.safetensors").read_bytes()
