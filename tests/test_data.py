"""The IDX loader: good files (gz and raw), missing files, corrupt / truncated files, the settings."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from adanat_env.data import (DATA_DIR_ENV, DEFAULT_DATA_DIR, DataError, check_labels, load_idx_dataset, read_idx,
                             to_model_images)


def _write_idx(path: Path, arr: np.ndarray, compress: bool) -> None:
    raw = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


def _make_set(d: Path, n: int = 20, compress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)  # every class (the training scripts need them)
    sfx = ".gz" if compress else ""
    for prefix in ("train", "t10k"):
        _write_idx(d / f"{prefix}-images-idx3-ubyte{sfx}", images, compress)
        _write_idx(d / f"{prefix}-labels-idx1-ubyte{sfx}", labels, compress)
    return images, labels


@pytest.mark.parametrize("compress", [True, False])
def test_good_files(tmp_path: Path, compress: bool):
    images, labels = _make_set(tmp_path, compress=compress)
    ds = load_idx_dataset("train", tmp_path)
    assert np.array_equal(ds.images, images) and np.array_equal(ds.labels, labels.astype(np.int64))
    assert len(ds) == 20 and ds.split == "train" and len(ds.sha256) == 64
    assert load_idx_dataset("test", tmp_path).sha256 == ds.sha256
    x = to_model_images(ds.images, 32)
    assert x.shape == (20, 1, 32, 32) and float(x.max()) <= 1.0
    assert float(x[:, :, :2].abs().sum()) == 0.0  # zero padding


def test_env_variable_selects_directory(tmp_path: Path, monkeypatch):
    _make_set(tmp_path)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert load_idx_dataset("test").directory == tmp_path


def test_missing_files_name_install_command_and_setting(tmp_path: Path):
    with pytest.raises(DataError) as info:
        load_idx_dataset("train", tmp_path / "nowhere")
    msg = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in msg and DATA_DIR_ENV in msg and "train-images-idx3-ubyte" in msg


def test_truncated_file(tmp_path: Path):
    _make_set(tmp_path, compress=False)
    f = tmp_path / "train-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_idx_dataset("train", tmp_path)


def test_corrupt_gzip_and_bad_magic(tmp_path: Path):
    _make_set(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b" + b"nonsense" * 10)
    with pytest.raises(DataError, match="corrupt or truncated"):
        load_idx_dataset("train", tmp_path)
    bad = tmp_path / "x-idx"
    bad.write_bytes(b"\x12\x34\x08\x01" + b"\x00" * 8)
    with pytest.raises(DataError, match="magic"):
        read_idx(bad)


def test_image_label_count_mismatch(tmp_path: Path):
    _make_set(tmp_path)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(7, dtype=np.uint8), True)
    with pytest.raises(DataError, match="holds 20 images but 'train-labels-idx1-ubyte.gz' 7 labels"):
        load_idx_dataset("train", tmp_path)


def test_labels_outside_the_model_classes_are_a_clear_error(tmp_path: Path):
    _make_set(tmp_path)
    labels = np.arange(20) % 10  # an IDX set with more classes than the model
    labels[[3, 7]], labels[11] = 12, 10
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels, True)
    ds = load_idx_dataset("train", tmp_path)
    with pytest.raises(ValueError) as info:
        ds.check_classes(10)
    msg = str(info.value)
    assert f"'{tmp_path}' (train split)" in msg and "include 10, 12," in msg and "model's 10 classes (0..9)" in msg
    ds.check_classes(13)
    load_idx_dataset("test", tmp_path).check_classes(10)


def test_check_labels_takes_tensors_and_lists_at_most_ten_values():
    check_labels(torch.tensor([0, 4]), 5, "x")
    with pytest.raises(ValueError, match=r"labels in my set include -1, 5, 6, 7, 8, 9, 10, 11, 12, 13, \.\.\. \(2 more\)"):
        check_labels(torch.arange(-1, 16), 5, "my set")


@pytest.mark.parametrize("script", ["train_classifier", "train_nat"])
def test_training_scripts_check_test_labels_before_training(tmp_path: Path, monkeypatch, script: str):
    import importlib

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "experiments"))
    _make_set(tmp_path)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.full(20, 11), True)  # the test split has a class train lacks
    with pytest.raises(ValueError, match=r"\(test split\) include 11, outside the model's \d+ classes"):
        importlib.import_module(script).main(["--data-dir", str(tmp_path), "--out", str(tmp_path / "out")])


@pytest.mark.skipif(not (DEFAULT_DATA_DIR / "t10k-labels-idx1-ubyte.gz").exists(), reason="Fashion-MNIST package not installed")
def test_real_fashion_mnist_test_split():
    ds = load_idx_dataset("test")
    assert ds.images.shape == (10000, 28, 28) and np.bincount(ds.labels).tolist() == [1000] * 10
