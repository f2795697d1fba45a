"""Real image data sets: IDX files (the MNIST / Fashion-MNIST / KMNIST format) held in memory, and image
folders streamed from disk (:mod:`adanat_env.image_folder`); :func:`open_dataset` picks the loader a directory
needs. Both give the same small interface: ``labels``, ``num_classes``, ``check_classes``, and ``load`` /
``batches`` that return uint8 ``(N, C, R, R)`` images at the generator's resolution and channels.

Default location: the Debian package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``).
Another directory is chosen with ``data_dir=`` or the environment variable ``ADANAT_DATA_DIR``. A directory
must hold ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
``t10k-labels-idx1-ubyte``, each optionally gzipped (``.gz``).

Format: big-endian header ``0x00 0x00 <dtype=0x08 (uint8)> <ndim>``, then ``ndim`` uint32 sizes, then the data.

What both loaders share (``DataError``, ``check_labels``, ``fit_images``, ``DATA_DIR_ENV``) is defined in
:mod:`adanat_env.data_core` and importable from here; this module imports :mod:`adanat_env.image_folder`, never the
reverse.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
from dataclasses import dataclass
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data_core import DATA_DIR_ENV, DataError, check_labels, fit_images
from .image_folder import ImageFolderDataset, is_image_folder

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
    "open_dataset",
    "to_model_images",
    "fit_images",
    "CaptionedSplit",
]

DEFAULT_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
_SPLIT_PREFIX = {"train": "train", "test": "t10k"}


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

    @property
    def channels(self) -> int:
        return 1

    def check_classes(self, num_classes: int) -> None:
        """Check that every label is a class of a model with ``num_classes`` classes (ids ``0 .. num_classes - 1``).

        :param num_classes: the model's number of real classes (e.g. ``NATGenerator.num_classes``).
        :raises ValueError: naming the data directory and split, the offending label values and ``num_classes``.
        """
        check_labels(self.labels, num_classes, f"'{self.directory}' ({self.split} split)")

    def load(self, indices: np.ndarray | None = None, resolution: int | None = None,
             channels: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``indices`` (default all) as uint8 (n, channels, R, R), zero-padded (centred) to ``resolution``,
        and their labels (n,) int64.

        :raises ValueError: images larger than ``resolution``, or ``channels`` not 1 or 3.
        """
        idx = np.arange(len(self)) if indices is None else np.asarray(indices)
        return fit_images(self.images[idx], resolution, channels), torch.as_tensor(self.labels[idx])

    def batches(self, indices: np.ndarray | None = None, resolution: int | None = None, channels: int = 1,
                batch_size: int = 1000) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """:meth:`load` in chunks of ``batch_size`` (the interface image folders stream with)."""
        idx = np.arange(len(self)) if indices is None else np.asarray(indices)
        for start in range(0, len(idx), batch_size):
            yield self.load(idx[start:start + batch_size], resolution, channels)


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
        f"${DATA_DIR_ENV} at a directory holding the four IDX files (MNIST-format), or at an image folder "
        f"(class subfolders under 'train/' and 'test/' or 'val/', or 'train.txt' / 'test.txt' lists of 'path label')."
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
    files = (_find(directory, f"{prefix}-images-idx3-ubyte"), _find(directory, f"{prefix}-labels-idx1-ubyte"))
    key = (split, *((str(f.resolve()), f.stat().st_mtime_ns, f.stat().st_size) for f in files))
    if key not in _CACHE:  # decompressing and hashing 60,000 images takes a second or two: once per process
        if len(_CACHE) >= 2:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _read_split(directory, split, *files)
    return _CACHE[key]


#: The last two loaded splits (keyed by their files' paths, modification times and sizes). Their arrays are
#: shared by every caller: treat them as read-only.
_CACHE: dict[tuple, IDXDataset] = {}


def _read_split(directory: Path, split: str, image_file: Path, label_file: Path) -> IDXDataset:
    images = read_idx(image_file)
    labels = read_idx(label_file)
    if images.ndim != 3 or labels.ndim != 1:
        raise DataError(f"expected (N, H, W) images and (N,) labels in '{directory}', got {images.shape} and {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"'{directory}' {split}: '{image_file.name}' holds {len(images)} images but '{label_file.name}' "
                        f"{len(labels)} labels: the two files must come from the same data set")
    if len(images) == 0:
        raise DataError(f"'{directory}' {split}: '{image_file.name}' holds no images: pass a data set with images")
    h = hashlib.sha256()
    h.update(images.tobytes())
    h.update(labels.tobytes())
    return IDXDataset(images, labels.astype(np.int64), directory, split, h.hexdigest())


def open_dataset(split: str = "train", data_dir: str | os.PathLike[str] | None = None, *, resolution: int | None = None,
                 channels: int | None = None, workers: int | None = None) -> Any:
    """The ``split`` of the data set in ``data_dir`` (default ``$ADANAT_DATA_DIR`` or the Debian Fashion-MNIST):
    an :class:`IDXDataset` when the directory holds IDX files, else an
    :class:`~adanat_env.image_folder.ImageFolderDataset` (class-per-subfolder ``train/`` and ``test/`` or ``val/``
    trees, or ``train.txt`` / ``test.txt`` file lists).

    :param resolution: image folders: the side images are resized / centre-cropped to (IDX: ignored here).
    :param channels: image folders: 3 (RGB) or 1 (grey).
    :param workers: image folders: decoding worker processes.
    :raises DataError: neither layout, naming both.
    """
    directory = resolve_data_dir(data_dir)
    prefix = _SPLIT_PREFIX.get(split)
    if prefix is None:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if directory.is_file():
        raise DataError(f"data directory '{directory}' is a file, not a directory: pass the directory that holds the "
                        "IDX files or the image folder (--data-dir / data_dir= / $" + DATA_DIR_ENV + ")")
    if any((directory / f"{prefix}-images-idx3-ubyte{gz}").is_file() for gz in ("", ".gz")):
        return load_idx_dataset(split, directory)
    if is_image_folder(directory):
        return ImageFolderDataset.scan(directory, split, resolution=resolution, channels=channels or 3, workers=workers)
    if not directory.is_dir():
        raise DataError(f"data directory '{directory}' does not exist: pass --data-dir / data_dir= or set "
                        f"${DATA_DIR_ENV} (default data: 'apt-get install dataset-fashion-mnist')")
    return load_idx_dataset(split, directory)  # raises naming the IDX files; the image-folder layout is below


def to_model_images(images: np.ndarray | torch.Tensor, resolution: int | None = None,
                    channels: int | None = None) -> torch.Tensor:
    """uint8 (N, H, W) or (N, C, H, W) -> float (N, C, R, R) in [0, 1], as :func:`fit_images` (default: keep the
    channels)."""
    x = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
    keep = 1 if x.dim() == 3 else x.shape[1]
    return fit_images(x, resolution, channels or keep).float().div_(255.0)


class CaptionedSplit:
    """A split seen by a text-conditioned generator: each image's label becomes the id of one of its captions in
    the generator's prompt file, chosen once per image from a hash of its index, so every use of the split (the
    discriminator's reals, validation, the test reference) gives an image the same caption. An image's captions
    are the prompts whose ``images`` entry is its path (a captioned data set, ``python -m adanat_env.prompts
    --captions``), else the prompts of its class (``classes``: template captions). Everything else is the wrapped
    split's.

    :param base: the split (an IDX split, or an image folder whose images all decode).
    :param prompt_classes: (P,) the class of each prompt id, or ``None``.
    :param prompt_images: (P,) the image each prompt describes (a path relative to the data directory), or ``None``.
    :param seed: the caption draw (fixed per data set, not per run).
    :raises DataError: an image without a caption (a class without prompts), naming it.
    """

    def __init__(self, base: Any, prompt_classes: Any = None, prompt_images: Any = None, seed: int = 0) -> None:
        self.base = base
        if prompt_images is not None:
            if not hasattr(base, "paths"):
                raise DataError(f"the prompt file's captions are tied to image files, but '{base.directory}' holds IDX "
                                "arrays: use an image folder (docs/own_data.md) with the captions' paths")
            rel = [os.path.relpath(p, base.directory).replace(os.sep, "/") for p in base.paths]
            index = {path: i for i, path in enumerate(rel)}
            key = np.array([index.get(str(p).replace(os.sep, "/"), -1) for p in prompt_images], dtype=np.int64)
            groups = len(rel)
        elif prompt_classes is not None:
            key = np.asarray(prompt_classes, dtype=np.int64)
            groups = int(base.labels.max()) + 1
            rel = None
        else:
            raise ValueError("a captioned split needs the prompts' classes or images")
        self.num_prompts = len(key)
        used = key >= 0
        order = np.flatnonzero(used)[np.argsort(key[used], kind="stable")]  # prompt ids grouped by image / class
        counts = np.bincount(key[used], minlength=groups)[:groups]
        missing = np.flatnonzero(counts == 0)
        if len(missing):
            names = ", ".join(f"image '{rel[i]}'" if rel is not None else f"class {i}" for i in missing[:3])
            raise DataError(f"{len(missing)} of {groups} {'images' if rel else 'classes'} of '{base.directory}' "
                            f"({base.split} split) have no caption in the prompt file ({names}, ...): every "
                            f"{'image' if rel else 'class'} needs at least one")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        group = np.arange(len(base)) if rel is not None else np.asarray(base.labels, dtype=np.int64)
        pick = np.random.default_rng(seed).integers(0, 2**31 - 1, size=len(group))
        self._prompt_of_image = order[starts[group] + pick % counts[group]]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)

    def __len__(self) -> int:
        return len(self.base)

    @property
    def labels(self) -> np.ndarray:
        """(N,) the prompt id of each image."""
        return self._prompt_of_image

    @property
    def num_classes(self) -> int:
        return self.num_prompts

    def check_classes(self, num_classes: int) -> None:
        check_labels(self.labels, num_classes, f"'{self.base.directory}' ({self.base.split} split, as prompt ids)")

    def load(self, indices: np.ndarray | None = None, resolution: int | None = None,
             channels: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        idx = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        images, _ = self.base.load(idx, resolution, channels) if channels else self.base.load(idx, resolution)
        if len(images) != len(idx):
            raise DataError(f"{len(idx) - len(images)} image(s) of '{self.base.directory}' could not be decoded: a "
                            "captioned split needs every image (remove the unreadable files)")
        return images, torch.as_tensor(self._prompt_of_image[idx])

    def batches(self, indices: np.ndarray | None = None, resolution: int | None = None, channels: int | None = None,
                batch_size: int = 1000) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        idx = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        for start in range(0, len(idx), batch_size):
            yield self.load(idx[start:start + batch_size], resolution, channels)
