"""Loader for IDX image data sets (the MNIST / Fashion-MNIST / KMNIST file format).

Default location: the Debian package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``).
Another directory is chosen with ``data_dir=`` or the environment variable ``ADANAT_DATA_DIR``. A directory
must hold ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
``t10k-labels-idx1-ubyte``, each optionally gzipped (``.gz``).

Format: big-endian header ``0x00 0x00 <dtype=0x08 (uint8)> <ndim>``, then ``ndim`` uint32 sizes, then the data.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "DEFAULT_DATA_DIR",
    "DATA_DIR_ENV",
    "FASHION_MNIST_CLASSES",
    "IDXDataset",
    "DataError",
    "check_labels",
    "resolve_data_dir",
    "read_idx",
    "load_idx_dataset",
    "to_model_images",
]

DEFAULT_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
DATA_DIR_ENV = "ADANAT_DATA_DIR"
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
_SPLIT_PREFIX = {"train": "train", "test": "t10k"}


class DataError(RuntimeError):
    """Missing, corrupt or inconsistent data files."""


@dataclass(frozen=True)
class IDXDataset:
    """One split of an IDX data set held in memory.

    :param images: (N, H, W) uint8.
    :param labels: (N,) int64.
    :param directory: where it was read from.
    :param split: ``"train"`` or ``"test"``.
    :param sha256: checksum of the (decompressed) image and label bytes, for provenance.
    """

    images: np.ndarray
    labels: np.ndarray
    directory: Path
    split: str
    sha256: str

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1

    def check_classes(self, num_classes: int) -> None:
        """Check that every label is a class of a model with ``num_classes`` classes (ids ``0 .. num_classes - 1``).

        :param num_classes: the model's number of real classes (e.g. ``NATGenerator.num_classes``).
        :raises ValueError: naming the data directory and split, the offending label values and ``num_classes``.
        """
        check_labels(self.labels, num_classes, f"'{self.directory}' ({self.split} split)")


def check_labels(labels: np.ndarray | torch.Tensor, num_classes: int, source: str) -> None:
    """Check that ``labels`` are class ids of a model with ``num_classes`` classes, i.e. lie in ``[0, num_classes)``.

    :param labels: integer class labels, any shape.
    :param num_classes: the model's number of real classes.
    :param source: where the labels come from, for the message (e.g. the data directory).
    :raises ValueError: naming ``source``, the offending label values (up to 10) and ``num_classes``.
    """
    values = np.unique(np.asarray(torch.as_tensor(labels).cpu()))
    bad = values[(values < 0) | (values >= num_classes)]
    if bad.size:
        shown = ", ".join(str(int(v)) for v in bad[:10]) + (f", ... ({bad.size - 10} more)" if bad.size > 10 else "")
        raise ValueError(
            f"labels in {source} include {shown}, outside the model's {num_classes} classes (0..{num_classes - 1}): "
            f"use IDX data with the model's classes (--data-dir / ${DATA_DIR_ENV}) or a model trained on this data"
        )


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """``data_dir`` if given, else ``$ADANAT_DATA_DIR``, else the Debian package's directory."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else DEFAULT_DATA_DIR


def _find(directory: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    raise DataError(
        f"IDX file '{stem}[.gz]' not found in '{directory}'. Install the default data set with "
        f"'apt-get install dataset-fashion-mnist' (after 'apt-get update'), or point data_dir= / --data-dir / "
        f"${DATA_DIR_ENV} at a directory holding the four IDX files (MNIST-format)."
    )


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into a uint8 array, validating header and size.

    :raises DataError: bad magic number, unsupported dtype, or a truncated / oversized payload.
    """
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"cannot read '{path}': {e} (corrupt or truncated file?)") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"'{path}' is not an IDX file (bad magic number)")
    if raw[2] != 0x08:
        raise DataError(f"'{path}': only unsigned-byte IDX data is supported (dtype code {raw[2]:#x})")
    ndim = raw[3]
    if ndim < 1 or len(raw) < 4 + 4 * ndim:
        raise DataError(f"'{path}': truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    expected = int(np.prod(shape))
    payload = len(raw) - 4 - 4 * ndim
    if payload != expected:
        raise DataError(f"'{path}': header says {shape} = {expected} bytes but the file holds {payload} (truncated or corrupt)")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape).copy()


def load_idx_dataset(split: str = "train", data_dir: str | os.PathLike[str] | None = None) -> IDXDataset:
    """Load the ``"train"`` or ``"test"`` split of an IDX data set.

    :param split: ``"train"`` or ``"test"`` (files ``train-*`` / ``t10k-*``).
    :param data_dir: directory of the IDX files; default ``$ADANAT_DATA_DIR`` or the Debian package's.
    :raises DataError: missing files (the message names the install command and the setting), corrupt files,
        or images and labels that disagree.
    """
    if split not in _SPLIT_PREFIX:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    directory = resolve_data_dir(data_dir)
    prefix = _SPLIT_PREFIX[split]
    images = read_idx(_find(directory, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find(directory, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1:
        raise DataError(f"expected (N, H, W) images and (N,) labels in '{directory}', got {images.shape} and {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"'{directory}' {split}: {len(images)} images but {len(labels)} labels")
    h = hashlib.sha256()
    h.update(images.tobytes())
    h.update(labels.tobytes())
    return IDXDataset(images, labels.astype(np.int64), directory, split, h.hexdigest())


def to_model_images(images: np.ndarray | torch.Tensor, resolution: int | None = None) -> torch.Tensor:
    """uint8 (N, H, W) -> float (N, 1, R, R) in [0, 1], zero-padded (centred) to ``resolution`` if larger."""
    x = torch.as_tensor(np.asarray(images)).float().div_(255.0)[:, None]
    if resolution is not None and resolution != x.shape[-1]:
        pad = resolution - x.shape[-1]
        if pad < 0:
            raise ValueError(f"images are {x.shape[-1]} px, larger than resolution {resolution}")
        x = torch.nn.functional.pad(x, (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2))
    return x
