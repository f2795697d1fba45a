"""A small CNN classifier of the embedded data set, trained on its real train split.

Used for (1) the feature space of the embedded default's FID / KID / precision-recall (its 128-d penultimate
layer; see :mod:`rewards.metrics` for why), (2) checking class conditioning, and (3) the stand-in
"pretrained reward model" (classifier confidence). Shipped weights: ``adanat_env/assets/fashion_mnist/
classifier.safetensors``; ``experiments/train_classifier.py`` re-creates them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from adanat_env.checkpoint import load_state_dict_strict, read_checkpoint
from adanat_env.embedded import ASSET_DIR

__all__ = ["ClassifierConfig", "SmallCNN", "load_classifier"]


@dataclass(frozen=True)
class ClassifierConfig:
    """:param in_channels: image channels. :param resolution: input side. :param num_classes: classes.
    :param width: channels of the first conv (doubles twice). :param feature_dim: penultimate width."""

    in_channels: int = 1
    resolution: int = 28
    num_classes: int = 10
    width: int = 32
    feature_dim: int = 128


class SmallCNN(nn.Module):
    """conv-conv-pool-conv-pool-MLP; ``features(x)`` is the 128-d penultimate activation.

    Inputs are images in [0, 1] of shape (B, C, H, W); other sizes are resized to ``resolution`` and RGB is
    averaged to grey when ``in_channels == 1``.
    """

    def __init__(self, config: ClassifierConfig = ClassifierConfig()) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self.conv1 = nn.Conv2d(config.in_channels, w, 3, padding=1)
        self.conv2 = nn.Conv2d(w, 2 * w, 3, padding=1)
        self.conv3 = nn.Conv2d(2 * w, 4 * w, 3, padding=1)
        side = config.resolution // 4
        self.fc = nn.Linear(4 * w * side * side, config.feature_dim)
        self.head = nn.Linear(config.feature_dim, config.num_classes)
        self.dropout = nn.Dropout(0.3)

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if x.shape[1] != c.in_channels:
            if c.in_channels == 1:
                x = x.mean(1, keepdim=True)
            else:
                x = x.expand(-1, c.in_channels, -1, -1)
        if x.shape[-1] != c.resolution or x.shape[-2] != c.resolution:
            x = F.interpolate(x, size=(c.resolution, c.resolution), mode="bilinear", align_corners=False, antialias=True)
        return (x - 0.5) / 0.5

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv1(self._prep(x)))
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        h = F.max_pool2d(F.relu(self.conv3(h)), 2)
        return F.relu(self.fc(h.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


def load_classifier(directory: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu") -> SmallCNN:
    """The frozen classifier from ``directory`` (``classifier.safetensors`` + ``classifier.json``; default: shipped)."""
    d = Path(directory).expanduser() if directory is not None else ASSET_DIR
    meta_path, weights = d / "classifier.json", d / "classifier.safetensors"
    if not meta_path.is_file() or not weights.is_file():
        raise FileNotFoundError(f"classifier files not found in '{d}' (train with 'python experiments/train_classifier.py --out {d}')")
    cfg = ClassifierConfig(**json.loads(meta_path.read_text())["config"])
    model = SmallCNN(cfg)
    load_state_dict_strict(model, read_checkpoint(weights, what="classifier"), what="classifier")
    return model.to(device).eval().requires_grad_(False)

