"""The reward-model interface used by the environments and the reward wrappers."""

from __future__ import annotations

from typing import Protocol

import torch

__all__ = ["RewardModel"]


class RewardModel(Protocol):
    """``model(images, labels) -> rewards``.

    :param images: (B, C, H, W) final images in [0, 1], on the generator's device.
    :param labels: (B,) long class labels (same device).
    :return: (B,) float rewards (any device; finite).
    """

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor: ...
