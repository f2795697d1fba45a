"""The "pretrained reward model" (PRM) plug point of the paper's ablation, with an offline stand-in.

The paper's PRM variant scores images with a human-preference reward model; none installs offline, so the
shipped stand-in is :class:`ClassifierReward`: the probability that the shipped Fashion-MNIST classifier
(trained on the real train split) assigns to the conditioning label. Any callable with the
:class:`~rewards.base.RewardModel` signature plugs in the same way.
"""

from __future__ import annotations

import os

import torch

from .classifier import load_classifier

__all__ = ["ClassifierReward"]


class ClassifierReward:
    """Reward = p_classifier(label | image) (or its log with ``log=True``).

    :param device: where the classifier runs (use the generator's device: no image round trip).
    :param classifier_dir: another trained classifier (default: shipped).
    :param log: return the log-probability instead of the probability.
    """

    def __init__(self, device: str | torch.device = "cpu", classifier_dir: str | os.PathLike[str] | None = None,
                 log: bool = False) -> None:
        self.model = load_classifier(classifier_dir, device)
        self.log = log

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(self.model(images.float()), dim=1).gather(1, labels.long().view(-1, 1)).squeeze(1)
        return logp if self.log else logp.exp()
