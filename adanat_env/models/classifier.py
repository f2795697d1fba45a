"""A small CNN classifier of the embedded data set, trained on its real train split.

Used for (1) the feature space of the embedded default's FID / KID / precision-recall (its 128-d penultimate
layer, :meth:`SmallCNN.features`; see :mod:`adanat_env.evaluation.metrics` for why), (2) checking class
conditioning, (3) the offline stand-in "pretrained reward model" of the paper's PRM variant (the probability of
the conditioning label, :meth:`SmallCNN.label_probability`) and (4) a frozen feature network of the projected
discriminator (:meth:`SmallCNN.feature_maps`). Shipped weights: ``adanat_env/assets/fashion_mnist/
classifier.safetensors``; ``experiments/train_classifier.py`` re-creates them.

:class:`ResNetClassifier` (``arch="resnet"``: residual blocks, batch norm, global average pooling) is the
*judge*: a classifier of another architecture, trained on the same data with another seed, whose feature space
neither the reward nor the selection of a run's reported iterate uses. Every final evaluation reports FID in its
space beside the metric's (shipped: ``adanat_env/assets/fashion_mnist/judge/``).
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

__all__ = ["ClassifierConfig", "SmallCNN", "ResNetClassifier", "ARCHITECTURES", "load_classifier"]


@dataclass(frozen=True)
class ClassifierConfig:
    """:param in_channels: image channels. :param resolution: input side. :param num_classes: classes.
    :param width: channels of the first conv (doubles twice). :param feature_dim: penultimate width.
    :param arch: ``"cnn"`` (:class:`SmallCNN`) or ``"resnet"`` (:class:`ResNetClassifier`)."""

    in_channels: int = 1
    resolution: int = 28
    num_classes: int = 10
    width: int = 32
    feature_dim: int = 128
    arch: str = "cnn"


class _Classifier(nn.Module):
    """What every classifier shares: input preparation, logits, and the label's probability."""

    config: ClassifierConfig

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
        raise NotImplementedError

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


class SmallCNN(_Classifier):
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


class _ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                      if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + self.short(x))


class ResNetClassifier(_Classifier):
    """stem conv, three residual stages (widths w, 2w, 4w; the last two halve the side), global average pooling,
    an MLP: another inductive bias than :class:`SmallCNN` (no flattened spatial layout, batch norm), so its
    feature space is a second opinion on the same data. ``features(x)`` is the ``feature_dim`` penultimate
    activation, ``feature_maps(x)`` the three stages' outputs.
    """

    def __init__(self, config: ClassifierConfig = ClassifierConfig(arch="resnet")) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self.stem = nn.Sequential(nn.Conv2d(config.in_channels, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
        self.stages = nn.ModuleList([_ResBlock(w, w, 1), _ResBlock(w, 2 * w, 2), _ResBlock(2 * w, 4 * w, 2)])
        self.fc = nn.Linear(4 * w, config.feature_dim)
        self.head = nn.Linear(config.feature_dim, config.num_classes)
        self.dropout = nn.Dropout(0.3)

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The three residual stages' outputs (sides ``resolution``, ``/ 2``, ``/ 4``). :param x: images in [0, 1]."""
        h, maps = self.stem(self._prep(x)), []
        for stage in self.stages:
            h = stage(h)
            maps.append(h)
        return maps

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The (B, feature_dim) penultimate activation. :param x: (B, C, H, W) images in [0, 1]."""
        return F.relu(self.fc(self.feature_maps(x)[-1].mean((2, 3))))


#: ``ClassifierConfig.arch`` -> the class that builds it
ARCHITECTURES: dict[str, type[_Classifier]] = {"cnn": SmallCNN, "resnet": ResNetClassifier}


def load_classifier(directory: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu") -> _Classifier:
    """The frozen classifier from ``directory`` (``classifier.safetensors`` + ``classifier.json``; default: shipped);
    its record's ``config.arch`` picks the architecture (:data:`ARCHITECTURES`)."""
    d = Path(directory).expanduser() if directory is not None else ASSET_DIR
    meta_path, weights = d / "classifier.json", d / "classifier.safetensors"
    if not meta_path.is_file() or not weights.is_file():
        raise FileNotFoundError(f"classifier files not found in '{d}' (train with 'python experiments/train_classifier.py --out {d}')")
    fix = f"re-create it with 'python experiments/train_classifier.py --out {d}'"
    record = read_json(meta_path, "the classifier's record", fix)
    try:
        cfg = ClassifierConfig(**record["config"])
        arch = ARCHITECTURES[cfg.arch]
    except (TypeError, KeyError) as e:
        raise InputError(f"the classifier's record '{meta_path}' has no valid 'config' ({e}; arch is one of "
                         f"{', '.join(ARCHITECTURES)}): {fix}") from None
    model = arch(cfg)
    load_state_dict_strict(model, read_checkpoint(weights, what="classifier"), what=f"the classifier in '{d}'",
                           hint=f"its weights do not fit its record's config: {fix}")
    return model.to(device).eval().requires_grad_(False)

