"""What a generation policy is: anything that maps what it sees before a step to that step's parameters.

Hand-designed schedules (:mod:`adanat_env.schedules`), learned SB3 policies (:mod:`agents.generation_policy`)
and user code all satisfy :class:`Policy`; the sampler (:func:`adanat_env.sampler.generate`) and the evaluation
(:mod:`adanat_env.evaluation`) take any of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from .decoding import StepParams

__all__ = ["PolicyInput", "Policy", "StepDecision"]


@dataclass(frozen=True)
class PolicyInput:
    """What a generation policy sees before step ``step`` of ``num_steps``.

    :param features: (B, N, D) NAT features of the current canvas (conditional pass, final LayerNorm).
    :param step: 0-based index of the step about to be taken.
    :param num_steps: T.
    :param labels: (B,) class labels being generated.
    :param logits: (B, N, V) the NAT's conditional logits of the current canvas (the generator's sampler passes
        them; a policy that observes token confidences needs them), or ``None``.
    """

    features: torch.Tensor
    step: int
    num_steps: int
    labels: torch.Tensor
    logits: torch.Tensor | None = None


@dataclass(frozen=True)
class StepDecision:
    """What an adaptive-step policy returns: the step's parameters and, per sample, whether to finish now.

    A policy with an attribute ``adaptive_steps = True`` returns this instead of bare ``StepParams``; the
    sampler then lets every sample stop on its own (finishing fixes every remaining token, the last-step rule).

    :param params: the step's :class:`~adanat_env.decoding.StepParams`.
    :param finish: (B,) bool, True for the samples that finish with this step.
    """

    params: StepParams
    finish: torch.Tensor


class Policy(Protocol):
    """Anything that maps a :class:`PolicyInput` to :class:`~adanat_env.decoding.StepParams` (or, with
    ``adaptive_steps = True``, to a :class:`StepDecision`)."""

    def __call__(self, inp: PolicyInput) -> StepParams: ...
