"""Real images from an image folder, streamed from disk with Pillow in worker processes.

Two layouts, both relative to one data directory:

- **class subfolders** (the ImageNet ``train/`` layout): ``<dir>/train/<class>/<image>`` and
  ``<dir>/test/<class>/<image>`` (or ``val/`` for the test split). Classes are the sorted subfolder names of
  ``train/`` (ids 0..K-1, torchvision's ``ImageFolder`` order, which for ImageNet is the sorted-synset order of
  the official class ids); the test split must use the same names.
- **file lists**: ``<dir>/train.txt`` and ``<dir>/test.txt`` (or ``val.txt``), one ``<path> <label>`` per line,
  paths relative to ``<dir>`` (or absolute), integer labels.
- a bare class tree ``<dir>/<class>/<image>`` (e.g. ImageNet's ``train/`` itself): a train split only, enough
  when the test reference comes from a statistics file (``--fid-stats``).

Nothing is loaded up front: :meth:`ImageFolderDataset.batches` decodes just the asked-for images in
``workers`` processes (a :class:`torch.utils.data.DataLoader`), converts them to RGB (or grey), resizes the
short side to ``resolution`` and centre-crops (bicubic, :func:`PIL.ImageOps.fit`), and yields uint8
``(n, C, R, R)`` batches. Unreadable or corrupt files are skipped: they are counted in
:attr:`ImageFolderDataset.skipped` (path -> error) and reported once per pass, never a crash.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from tqdm import tqdm

from .data_core import DataError, check_labels, fit_images

__all__ = ["IMAGE_EXTENSIONS", "ImageFolderDataset", "is_image_folder", "decode_image"]

#: File name endings read as images (case-insensitive).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm", ".pgm")
_SPLIT_DIRS = {"train": ("train",), "test": ("test", "val")}


def _class_dirs(directory: Path) -> list[Path]:
    """Subfolders of ``directory`` that hold at least one image file."""
    if not directory.is_dir():
        return []
    return sorted(d for d in directory.iterdir() if d.is_dir()
                  and any(f.suffix.lower() in IMAGE_EXTENSIONS for f in d.iterdir()))


def is_image_folder(directory: Path) -> bool:
    """Whether ``directory`` has one of the layouts: a ``train/`` tree, a ``train.txt`` list, or class subfolders
    directly (a bare ``train/`` tree such as ImageNet's, which then has no test split)."""
    return (directory / "train").is_dir() or (directory / "train.txt").is_file() or bool(_class_dirs(directory))


def decode_image(path: str | os.PathLike[str], resolution: int, channels: int = 3) -> np.ndarray:
    """One image file as uint8 (channels, R, R): converted to RGB / grey, short side resized to ``resolution`` and
    centre-cropped (bicubic).

    :raises OSError, ValueError, SyntaxError: unreadable, truncated or not an image (callers skip these).
    """
    with Image.open(path) as img:
        img.load()  # decode fully now: truncated files raise here, not later
        img = img.convert("RGB" if channels == 3 else "L")
        img = ImageOps.fit(img, (resolution, resolution), method=Image.BICUBIC, centering=(0.5, 0.5))
        arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


class _Decoder(torch.utils.data.Dataset):
    """Map-style view of the chosen files for the DataLoader's workers: item -> (image or None, position, error)."""

    def __init__(self, paths: Sequence[str], resolution: int, channels: int) -> None:
        self.paths, self.resolution, self.channels = paths, resolution, channels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[np.ndarray | None, int, str]:
        try:
            return decode_image(self.paths[i], self.resolution, self.channels), i, ""
        except Exception as e:  # noqa: BLE001 - any unreadable file (PIL raises many types) is skipped and counted
            return None, i, f"{type(e).__name__}: {e}"


def _collate(items: list[tuple[np.ndarray | None, int, str]]) -> tuple[torch.Tensor, list[int], list[tuple[int, str]]]:
    good = [(a, i) for a, i, _ in items if a is not None]
    bad = [(i, err) for a, i, err in items if a is None]
    images = torch.from_numpy(np.stack([a for a, _ in good])) if good else torch.empty(0, dtype=torch.uint8)
    return images, [i for _, i in good], bad


class ImageFolderDataset:
    """One split of an image folder (see the module docstring), decoded on demand.

    :param paths: image files.
    :param labels: (N,) class ids.
    :param classes: class names (index = id).
    :param directory: the data directory.
    :param split: ``"train"`` or ``"test"``.
    :param resolution: default output side (the generator's); ``None``: must be given to :meth:`load`.
    :param channels: 3 (RGB) or 1 (grey).
    :param workers: decoding processes (default 8; never more than the CPU count; 0 = in this process).
    """

    def __init__(self, paths: Sequence[str], labels: np.ndarray, classes: Sequence[str], directory: Path, split: str,
                 resolution: int | None = None, channels: int = 3, workers: int | None = None) -> None:
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        if len(paths) == 0:
            raise DataError(f"no images found for the {split} split in '{directory}' (extensions: "
                            f"{', '.join(IMAGE_EXTENSIONS)})")
        self.paths = list(map(str, paths))
        self.labels = np.asarray(labels, dtype=np.int64)
        self.classes = tuple(classes)
        self.directory, self.split = Path(directory), split
        self.resolution, self.channels = resolution, channels
        # never more processes than CPUs (PyTorch warns, and they would only contend)
        self.workers = min(8 if workers is None else int(workers), os.cpu_count() or 1)
        #: path -> error of every file that could not be decoded so far
        self.skipped: dict[str, str] = {}
        h = hashlib.sha256()  # provenance: the file list and labels (contents are not read up front)
        for path, label in zip(self.paths, self.labels):
            h.update(f"{os.path.relpath(path, self.directory)}\t{label}\n".encode())
        self.sha256 = h.hexdigest()

    # ------------------------------------------------------------------------------------------ discovery
    @classmethod
    def scan(cls, directory: str | os.PathLike[str], split: str = "train", *, resolution: int | None = None,
             channels: int = 3, workers: int | None = None) -> ImageFolderDataset:
        """Find the ``split``'s files in ``directory`` (class subfolders, else a file list).

        :raises DataError: no layout for this split, or test classes that the train split lacks.
        """
        root = Path(directory).expanduser()
        if split not in _SPLIT_DIRS:
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if not (root / "train").is_dir() and not (root / "train.txt").is_file() and _class_dirs(root):
            if split != "train":
                raise DataError(f"'{root}' holds class subfolders directly, which is a train split only: for a test "
                                "split use <dir>/train/<class>/... and <dir>/test/<class>/... (or val/), or file lists")
            classes = [d.name for d in _class_dirs(root)]
            paths, labels = [], []
            for i, c in enumerate(classes):
                files = sorted(f for f in (root / c).iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS)
                paths += files
                labels += [i] * len(files)
            return cls(paths, np.array(labels), classes, root, split, resolution, channels, workers)
        if (root / "train").is_dir():
            classes = sorted(d.name for d in (root / "train").iterdir() if d.is_dir())
            if not classes:
                raise DataError(f"'{root / 'train'}' has no class subfolders (expected train/<class>/<image>)")
            sub = next((root / d for d in _SPLIT_DIRS[split] if (root / d).is_dir()), None)
            if sub is None:
                raise DataError(f"'{root}' has no {' or '.join(d + '/' for d in _SPLIT_DIRS[split])} folder for the {split} split "
                                "(expected <dir>/test/<class>/<image> or <dir>/val/<class>/<image>)")
            ids = {c: i for i, c in enumerate(classes)}
            unknown = sorted(d.name for d in sub.iterdir() if d.is_dir() and d.name not in ids)
            if unknown:
                raise DataError(f"'{sub}' has classes the train split lacks: {', '.join(unknown[:10])}")
            paths, labels = [], []
            for c in classes:
                if (sub / c).is_dir():
                    files = sorted(f for f in (sub / c).iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS)
                    paths += files
                    labels += [ids[c]] * len(files)
            return cls(paths, np.array(labels), classes, root, split, resolution, channels, workers)
        listing = next((root / f"{d}.txt" for d in _SPLIT_DIRS[split] if (root / f"{d}.txt").is_file()), None)
        if listing is None:
            raise DataError(f"no {split} split in '{root}': expected class subfolders <dir>/{_SPLIT_DIRS[split][0]}/"
                            f"<class>/<image> or a list <dir>/{_SPLIT_DIRS[split][0]}.txt of '<path> <label>' lines")
        paths, labels = [], []
        for n, line in enumerate(listing.read_text().splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.rsplit(maxsplit=1)
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise DataError(f"'{listing}' line {n}: expected '<path> <integer label>', got {line!r}")
            p = Path(parts[0])
            paths.append(p if p.is_absolute() else root / p)
            labels.append(int(parts[1]))
        train_labels = labels if split == "train" else cls._list_labels(root)
        k = int(max(train_labels)) + 1 if train_labels else 0
        return cls(paths, np.array(labels), [str(i) for i in range(k)], root, split, resolution, channels, workers)

    @staticmethod
    def _list_labels(root: Path) -> list[int]:
        listing = root / "train.txt"
        if not listing.is_file():
            return []
        return [int(line.rsplit(maxsplit=1)[1]) for line in listing.read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]

    # ------------------------------------------------------------------------------------------ interface
    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return max(len(self.classes), int(self.labels.max()) + 1 if len(self.labels) else 0)

    def check_classes(self, num_classes: int) -> None:
        """:raises ValueError: labels outside a model's ``num_classes`` classes (see :func:`check_labels`)."""
        check_labels(self.labels, num_classes, f"'{self.directory}' ({self.split} split)")

    def batches(self, indices: np.ndarray | None = None, resolution: int | None = None, channels: int | None = None,
                batch_size: int = 256, progress: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Decode images ``indices`` (default all) in worker processes, in order, ``batch_size`` at a time.

        Yields (uint8 (n, C, R, R), labels (n,) int64); unreadable files are left out of their batch (and
        counted in :attr:`skipped`, reported on stderr at the end of the pass).

        :raises ValueError: no ``resolution`` (here or at construction).
        :raises DataError: every asked-for file was unreadable.
        """
        res = resolution or self.resolution
        if res is None:
            raise ValueError("image folders need the resolution to decode to (the generator's image side)")
        ch = channels or self.channels
        idx = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        loader = torch.utils.data.DataLoader(
            _Decoder([self.paths[i] for i in idx], res, 3 if ch == 3 else 1), batch_size=batch_size,
            num_workers=self.workers, collate_fn=_collate, persistent_workers=False,
            prefetch_factor=4 if self.workers > 0 else None)
        bad_here, good = 0, 0
        iterator: Any = loader
        if progress:
            iterator = tqdm(loader, desc=f"decoding {self.split} images", mininterval=2.0)
        for images, pos, bad in iterator:
            for i, err in bad:
                self.skipped[self.paths[idx[i]]] = err
            bad_here += len(bad)
            good += len(pos)
            if len(pos):
                yield fit_images(images, res, ch), torch.as_tensor(self.labels[idx[pos]])
        if bad_here:
            first = next(iter(self.skipped.items()))
            print(f"skipped {bad_here} unreadable image file(s) of {len(idx)} in '{self.directory}' ({self.split} "
                  f"split), e.g. '{first[0]}' ({first[1]})", file=sys.stderr)
        if good == 0 and len(idx):
            raise DataError(f"none of the {len(idx)} image files asked for in '{self.directory}' could be read "
                            f"(e.g. {next(iter(self.skipped.items()))})")

    def load(self, indices: np.ndarray | None = None, resolution: int | None = None,
             channels: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`batches` concatenated: (uint8 (n, C, R, R), labels (n,)) for the readable images of ``indices``."""
        parts = list(self.batches(indices, resolution, channels))
        return torch.cat([x for x, _ in parts]), torch.cat([y for _, y in parts])
