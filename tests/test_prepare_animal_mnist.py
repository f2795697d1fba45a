"""experiments/prepare_animal_mnist.py on a tiny stand-in of the package's files: duplicates dropped, a per-class
split in IDX files the project's loader reads, and a pickle that asks for more than numpy arrays refused."""

from __future__ import annotations

import gzip
import importlib.util
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

spec = importlib.util.spec_from_file_location("prepare_animal_mnist",
                                              Path(__file__).parents[1] / "experiments" / "prepare_animal_mnist.py")
prep = importlib.util.module_from_spec(spec)
spec.loader.exec_module(prep)


def _write(folder: Path, images: np.ndarray, labels: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in (("animal_data_version_3.gz", images), ("animal_label_version_3.gz", labels)):
        with gzip.open(folder / name, "wb") as f:
            pickle.dump(arr, f)


def test_duplicates_are_dropped_and_each_class_is_split(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8)
    labels = np.repeat(np.arange(10), 4)
    images[1] = images[0]  # an exact duplicate within class 0
    _write(tmp_path / "src", images, labels)
    prep.main(["--out", str(tmp_path / "out"), "--source", str(tmp_path / "src"), "--test-per-class", "1"])
    from adanat_env.data import open_dataset
    train, test = open_dataset("train", tmp_path / "out"), open_dataset("test", tmp_path / "out")
    assert len(test.labels) == 10 and sorted(np.asarray(test.labels).tolist()) == list(range(10))
    assert len(train.labels) == 29  # 40 - 1 duplicate - 10 test
    with gzip.open(tmp_path / "out" / "t10k-images-idx3-ubyte.gz") as f:
        raw = f.read()
    assert raw[:4] == b"\x00\x00\x08\x03" and len(raw) == 16 + 10 * 28 * 28


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    folder = tmp_path / "src"
    folder.mkdir()
    with gzip.open(folder / "animal_data_version_3.gz", "wb") as f:
        pickle.dump(Evil(), f)
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        prep.load_array(folder / "animal_data_version_3.gz")
