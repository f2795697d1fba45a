"""What the two real-data loaders share: :mod:`adanat_env.data` (IDX files, :func:`~adanat_env.data.open_dataset`)
and :mod:`adanat_env.image_folder` (image folders) both import from here, so neither imports the other's internals
(``data`` imports ``image_folder``, never the reverse).

The names are public in :mod:`adanat_env.data` (``DataError``, ``check_labels``, ``fit_images``, ``DATA_DIR_ENV``);
import them from there.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["DATA_DIR_ENV", "DataError", "check_labels", "fit_images"]

DATA_DIR_ENV = "ADANAT_DATA_DIR"


class DataError(RuntimeError):
    """Missing, corrupt or inconsistent data files."""


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


def fit_images(images: np.ndarray | torch.Tensor, resolution: int | None = None, channels: int = 1) -> torch.Tensor:
    """uint8 (N, H, W) or (N, C, H, W) -> uint8 (N, channels, R, R): zero-padded (centred) to ``resolution`` if
    larger.

    :raises ValueError: images larger than ``resolution``, or other than ``channels`` channels.
    """
    x = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
    if x.dtype != torch.uint8:
        raise ValueError(f"images must be uint8, got {x.dtype}")
    if x.dim() == 3:
        x = x[:, None]
    if x.shape[1] != channels:
        raise ValueError(f"the data has {x.shape[1]}-channel images but the model expects {channels} channels: use "
                         "data and models with the same number of channels (image folders decode to the model's)")
    if resolution is not None and resolution != x.shape[-1]:
        pad = resolution - x.shape[-1]
        if pad < 0:
            raise ValueError(f"images are {x.shape[-1]} px, larger than the model's resolution {resolution}: use data "
                             "of the model's size (image folders are resized automatically) or a model of this size")
        x = torch.nn.functional.pad(x, (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2))
    return x.contiguous()
