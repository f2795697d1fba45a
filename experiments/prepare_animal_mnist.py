"""Write Animal-MNIST (a second real data set that installs offline) as IDX files the project's loaders read.

Animal-MNIST (PyPI ``animal-mnist`` 0.4, MIT licence): 10,000 grey 28 x 28 silhouettes of 10 animals
(bear, bird, cat, cow, dog, elephant, giraffe, horse, sheep, zebra), 1,000 per class, shipped inside the wheel
as two gzipped pickles of numpy arrays. Install it without its heavy, unneeded dependencies:

    pip install --no-deps animal-mnist==0.4
    python experiments/prepare_animal_mnist.py --out data/animal-mnist
    python experiments/train_tokenizer.py --data-dir data/animal-mnist --out runs/animal/tok   # then docs/own_data.md

The pickles are read by an unpickler that may construct numpy arrays and nothing else (a file that asks for
anything more is refused, nothing runs). Exact duplicate images (284 of the 10,000) are dropped, so that no
image is in both splits; the rest is split per class, seeded, into ``--test-per-class`` test images and the
train split (IDX: ``train-*`` and ``t10k-*``, gzip).
"""

from __future__ import annotations

import argparse
import gzip
import importlib
import importlib.util
import pickle
import struct
from pathlib import Path

import numpy as np

CLASSES = ("bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra")
_NUMPY_ONLY = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}


class _NumpyOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # type: ignore[override]
        if (module, name) not in _NUMPY_ONLY:
            raise pickle.UnpicklingError(f"refused: the file asks for {module}.{name}, not a numpy array")
        return getattr(importlib.import_module(module.replace("numpy.core", "numpy._core")), name)


def load_array(path: Path) -> np.ndarray:
    """A gzipped pickle holding one numpy array, read without running any other code."""
    with gzip.open(path) as f:
        out = _NumpyOnly(f).load()
    if not isinstance(out, np.ndarray):
        raise ValueError(f"{path}: expected a numpy array, got {type(out).__name__}")
    return out


def package_dir() -> Path:
    spec = importlib.util.find_spec("animal_mnist")  # located, not imported
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("animal-mnist is not installed: pip install --no-deps animal-mnist==0.4")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "Animal_MNIST"


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX (MNIST format), gzip: uint8 images (N, H, W) or labels (N,)."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def split(images: np.ndarray, labels: np.ndarray, test_per_class: int, seed: int):
    """Drop exact duplicates (first kept), then a seeded per-class split: (train_x, train_y, test_x, test_y)."""
    _, first = np.unique(images.reshape(len(images), -1), axis=0, return_index=True)
    keep = np.sort(first)
    images, labels = images[keep], labels[keep]
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) <= test_per_class:
            raise ValueError(f"class {c} has {len(idx)} images, not more than --test-per-class {test_per_class}")
        test[rng.choice(idx, test_per_class, replace=False)] = True
    return images[~test], labels[~test], images[test], labels[test]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="directory for the four IDX files")
    p.add_argument("--test-per-class", type=int, default=200, help="test images per class (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split")
    p.add_argument("--source", default=None, help="the package's Animal_MNIST folder (default: the installed one)")
    a = p.parse_args(argv)
    src = Path(a.source) if a.source else package_dir()
    images = load_array(src / "animal_data_version_3.gz")
    labels = load_array(src / "animal_label_version_3.gz")
    if images.shape[1:] != (28, 28) or len(images) != len(labels) or images.dtype != np.uint8:
        raise SystemExit(f"unexpected Animal-MNIST arrays: images {images.shape} {images.dtype}, labels {labels.shape}")
    tx, ty, vx, vy = split(images, labels.astype(np.int64), a.test_per_class, a.seed)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    write_idx(out / "train-images-idx3-ubyte.gz", tx)
    write_idx(out / "train-labels-idx1-ubyte.gz", ty)
    write_idx(out / "t10k-images-idx3-ubyte.gz", vx)
    write_idx(out / "t10k-labels-idx1-ubyte.gz", vy)
    (out / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    print(f"{out}: train {len(ty)} / test {len(vy)} images, {len(CLASSES)} classes "
          f"({len(images) - len(ty) - len(vy)} exact duplicates dropped)")


if __name__ == "__main__":
    main()
