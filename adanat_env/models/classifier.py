"""A small CNN classifier of the embedded data set, trained on its real train split.

Used for (1) the feature space of the embedded default's FID / KID / precision-recall (its 128-d penultimate
layer, :meth:`SmallCNN.features`; see :mod:`adanat_env.evaluation.metrics` for why), (2) checking class
conditioning, (3) the offline stand-in "pretrained reward model" of the paper's PRM variant (the probability of
the conditioning label, :meth:`SmallCNN.label_probability`) and (4) a frozen feature network of the projected
discriminator (:meth:`SmallCNN.feature_maps`). Shipped weights: ``adanat_env/assets/fashion_mnist/
classifier.safetensors``; ``experiments/train_classifier.py`` re-creates them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import load_state_dict_strict, read_checkpoint
from ..embedded import ASSET_DIR
from ..inputs import InputError, read_json

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
    """conv-conv-pool-conv-pool-MLP; ``features(x)`` is the 128-d penultimate activation, ``feature_maps(x)`` the
    three conv stages' outputs.

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

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The outputs of the three conv stages (after ReLU, before their max pools): widths w, 2w, 4w at sides
        ``resolution``, ``resolution``, ``resolution / 2``.

        :param x: (B, C, H, W) images in [0, 1].
        """
        h1 = F.relu(self.conv1(self._prep(x)))
        h2 = F.relu(self.conv2(h1))
        h3 = F.relu(self.conv3(F.max_pool2d(h2, 2)))
        return [h1, h2, h3]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The (B, feature_dim) penultimate activation. :param x: (B, C, H, W) images in [0, 1]."""
        h = F.max_pool2d(self.feature_maps(x)[-1], 2)
        return F.relu(self.fc(h.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))

    def label_probability(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """p(label | image): the softmax probability of each image's given label, (B,) float32.

        The offline stand-in for the paper's pretrained reward model (a reward ``(images, labels) -> (B,)``).

        :param images: (B, C, H, W) in [0, 1] (any float dtype; computed in float32).
        :param labels: (B,) class labels.
        """
        logp = torch.log_softmax(self(images.float()), dim=1)
        return logp.gather(1, labels.long().view(-1, 1)).squeeze(1).exp()


def load_classifier(directory: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu") -> SmallCNN:
    """The frozen classifier from ``directory`` (``classifier.safetensors`` + ``classifier.json``; default: shipped)."""
    d = Path(directory).expanduser() if directory is not None else ASSET_DIR
    meta_path, weights = d / "classifier.json", d / "classifier.safetensors"
    if not meta_path.is_file() or not weights.is_file():
        raise FileNotFoundError(f"classifier files not found in '{d}' (train with 'python experiments/train_classifier.py --out {d}')")
    fix = f"re-create it with 'python experiments/train_classifier.py --out {d}'"
    record = read_json(meta_path, "the classifier's record", fix)
    try:
        cfg = ClassifierConfig(**record["config"])
    except (TypeError, KeyError) as e:
        raise InputError(f"the classifier's record '{meta_path}' has no valid 'config' ({e}): {fix}") from None
    model = SmallCNN(cfg)
    load_state_dict_strict(model, read_checkpoint(weights, what="classifier"), what=f"the classifier in '{d}'",
                           hint=f"its weights do not fit its record's config: {fix}")
    return model.to(device).eval().requires_grad_(False)

