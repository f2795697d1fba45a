"""Bring your own data and generator: from a tiny synthetic IDX set and a tiny synthetic RGB image folder (with
corrupt files) to a trained policy, through the documented commands (docs/own_data.md): tokenizer, NAT, the
metric's classifier, then the main job with --nat-dir --tokenizer-dir --classifier-dir --data-dir."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from adanat_env.models.classifier import load_classifier

from .test_training_scripts import _synthetic_idx, experiment_script

TINY_POLICY = ["--steps", "2", "--batch-size", "8", "--episodes", "16", "--minibatch", "16", "--epochs", "1",
               "--d-epochs", "1", "--d-batch-size", "8", "--d-updates", "2", "--d-minibatch", "8", "--d-warmup", "1",
               "--val-count", "12", "--curve-every", "1", "--curve-samples", "12", "--eval-samples", "12",
               "--amp", "none", "--device", "cpu", "--iterations", "2", "--data-workers", "0"]


def synthetic_image_folder(root: Path, per_class: int = 8, corrupt: int = 2) -> None:
    """RGB images of three colours (different sizes and aspect ratios), a class per subfolder under train/ and
    test/, with ``corrupt`` unreadable files in every class folder."""
    rng = np.random.default_rng(0)
    colours = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}
    for split in ("train", "test"):
        for name, rgb in colours.items():
            d = root / split / name
            d.mkdir(parents=True)
            for i in range(per_class):
                h, w = rng.integers(16, 40, 2)
                img = np.clip(np.array(rgb) + rng.integers(-30, 30, (h, w, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(d / f"{i}.{'png' if i % 2 else 'jpg'}")
            for i in range(corrupt):
                (d / f"broken{i}.jpg").write_bytes(b"\xff\xd8\xff" + bytes(rng.integers(0, 255, 50, dtype=np.uint8)))


def _byo(tmp_path: Path, data: Path, image_args: list[str]) -> tuple[dict, Path]:
    ppo_adversarial, train_classifier, train_nat, train_tokenizer = map(
        experiment_script, ("ppo_adversarial", "train_classifier", "train_nat", "train_tokenizer"))

    tok, nat, cls, run = (tmp_path / n for n in ("tok", "nat", "cls", "run"))
    train_tokenizer.main(["--data-dir", str(data), "--out", str(tok), "--steps", "2", "--batch-size", "8", "--ch", "8",
                          "--embed-dim", "8", "--n-embed", "16", "--norm-groups", "4", "--data-workers", "0",
                          *image_args])
    train_nat.main(["--data-dir", str(data), "--tokenizer", str(tok), "--out", str(nat), "--steps", "2",
                    "--batch-size", "8", "--embed-dim", "16", "--depth", "2", "--num-heads", "2", "--data-workers", "0"])
    train_classifier.main(["--data-dir", str(data), "--out", str(cls), "--epochs", "1", "--batch-size", "8",
                           "--width", "8", "--feature-dim", "16", "--data-workers", "0", *image_args])
    clf = load_classifier(cls)  # a classifier of another size: a second in-domain judge
    assert (clf.config.width, clf.features(torch.zeros(1, clf.config.in_channels, 8, 8)).shape[1]) == (8, 16)
    metrics = ppo_adversarial.main(["--data-dir", str(data), "--nat-dir", str(nat), "--tokenizer-dir", str(tok),
                                    "--classifier-dir", str(cls), "--out", str(run), *TINY_POLICY])
    return metrics, run


def test_own_idx_data_to_a_trained_policy(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    _synthetic_idx(data, n=48)
    metrics, run = _byo(tmp_path, data, [])
    assert set(metrics["fid"]) == {"cosine", "heuristic", "learned"}
    assert all(np.isfinite(v) for v in metrics["fid"].values())
    assert "class_accuracy" in metrics["details"]["learned"]  # from the data set's own classifier
    assert (run / "ref_test_classifier.npz").is_file()  # the test reference, computed once and cached
    assert json.loads((run / "history.json").read_text())[-1]["iteration"] == 2


def test_own_rgb_image_folder_with_corrupt_files_to_a_trained_policy(tmp_path: Path, capfd):
    data = tmp_path / "images"
    synthetic_image_folder(data)
    metrics, run = _byo(tmp_path, data, ["--channels", "3", "--resolution", "16"])
    assert metrics["details"]["learned"]["n"] == 12
    assert "class_accuracy" in metrics["details"]["learned"]
    assert (run / "grid_learned.png").is_file()
    assert "skipped 6 unreadable image file(s)" in capfd.readouterr().err


def test_a_classifier_of_other_classes_is_a_clear_error(tmp_path: Path):
    from agents.training import TrainConfig, Trainer

    ppo_adversarial = experiment_script("ppo_adversarial")

    data = tmp_path / "images"
    synthetic_image_folder(data, per_class=4, corrupt=0)
    with pytest.raises(ValueError, match="--classifier-dir"):  # own generator, metric without its classifier
        TrainConfig(nat_dir=str(tmp_path), data_dir=str(data)).validate()
    assert ppo_adversarial.cli(["--nat-dir", str(tmp_path), "--data-dir", str(data), "--out", str(tmp_path / "r")]) == 1
    # the shipped Fashion-MNIST classifier (10 classes, grey) does not fit a 3-class RGB generator
    _byo_models = tmp_path / "m"
    train_nat, train_tokenizer = experiment_script("train_nat"), experiment_script("train_tokenizer")
    train_tokenizer.main(["--data-dir", str(data), "--out", str(_byo_models / "tok"), "--steps", "1", "--batch-size", "4",
                          "--ch", "8", "--embed-dim", "8", "--n-embed", "16", "--norm-groups", "4", "--resolution", "16",
                          "--data-workers", "0"])
    train_nat.main(["--data-dir", str(data), "--tokenizer", str(_byo_models / "tok"), "--out", str(_byo_models / "nat"),
                    "--steps", "1", "--batch-size", "4", "--embed-dim", "16", "--depth", "2", "--num-heads", "2",
                    "--data-workers", "0"])
    from adanat_env.embedded import ASSET_DIR

    cfg = TrainConfig(nat_dir=str(_byo_models / "nat"), tokenizer_dir=str(_byo_models / "tok"), data_dir=str(data),
                      classifier_dir=str(ASSET_DIR), steps=2, batch_size=8, episodes=16, device="cpu", amp="none")
    with pytest.raises(ValueError, match="10 classes and 1 channels but the generator 3 classes and 3 channels"):
        Trainer(cfg, None)
