r"""Hand-designed generation schedules: static step parameters (m, tau_1, tau_2, w) per step.

- :func:`maskgit_cosine_schedule`: MaskGIT's sampler. After step t (0-based) of T, a fraction
  :math:`m_t = \cos(\frac{\pi}{2}\frac{t+1}{T})` of the tokens stays masked; sampling temperature 1; the
  re-masking ("choice") temperature is annealed linearly, :math:`\tau_2 = 4.5\,(1 - \frac{t+1}{T})`;
  constant guidance (0 by default, MaskGIT had none).
- :func:`heuristic_schedule`: the schedule that AdaNAT's ``heu=1`` residual encodes. With
  :math:`r_t = (t + 1 - 0.001)/T`: :math:`m_t = \cos(\frac{\pi}{2} r_t)`, :math:`\tau_1 = 1`,
  :math:`\tau_2 = 1 - r_t`, :math:`w_t = (t + 0.001)/T`.

A :class:`Schedule` is a :class:`~adanat_env.policy.Policy` (it ignores the features).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .decoding import StepParams
from .policy import PolicyInput

__all__ = ["Schedule", "cosine_mask_ratio", "maskgit_cosine_schedule", "heuristic_schedule"]

def cosine_mask_ratio(step: int, num_steps: int) -> float:
    """MaskGIT's cosine schedule: fraction still masked after 0-based step ``step`` of ``num_steps``."""
    return math.cos(math.pi / 2 * (step + 1) / num_steps)


@dataclass(frozen=True)
class Schedule:
    """A static (non-adaptive) schedule: one value per step for each parameter; a :class:`~adanat_env.policy.Policy`.

    :param mask_ratio: T values of m.
    :param sample_temp: T values of tau_1.
    :param remask_temp: T values of tau_2.
    :param guidance: T values of w.
    :param name: a label for logs and plots.
    """

    mask_ratio: tuple[float, ...]
    sample_temp: tuple[float, ...]
    remask_temp: tuple[float, ...]
    guidance: tuple[float, ...]
    name: str = "schedule"

    def __post_init__(self) -> None:
        lens = {len(self.mask_ratio), len(self.sample_temp), len(self.remask_temp), len(self.guidance)}
        if len(lens) != 1:
            raise ValueError("all schedule fields need one value per step")

    @property
    def num_steps(self) -> int:
        return len(self.mask_ratio)

    def at(self, step: int, batch_size: int, device: torch.device | str = "cpu") -> StepParams:
        """Parameters of step ``step`` for a batch."""
        return StepParams.full(batch_size, self.mask_ratio[step], self.sample_temp[step],
                               self.remask_temp[step], self.guidance[step], device=device)

    def __call__(self, inp: PolicyInput) -> StepParams:
        if inp.num_steps != self.num_steps:
            raise ValueError(f"schedule '{self.name}' has {self.num_steps} steps, generation asks for {inp.num_steps}")
        # built on the host: the generator validates them there (no device sync) and moves them in one copy
        return self.at(inp.step, inp.labels.shape[0], "cpu")


def maskgit_cosine_schedule(num_steps: int, *, sample_temp: float = 1.0, remask_temp: float = 4.5,
                            guidance: float = 0.0) -> Schedule:
    """MaskGIT's cosine schedule (see module docstring).

    :param num_steps: T.
    :param sample_temp: constant tau_1.
    :param remask_temp: initial "choice temperature", annealed linearly to 0 at the end.
    :param guidance: constant w.
    """
    t = range(num_steps)
    return Schedule(
        mask_ratio=tuple(cosine_mask_ratio(s, num_steps) for s in t),
        sample_temp=tuple(float(sample_temp) for _ in t),
        remask_temp=tuple(remask_temp * (1.0 - (s + 1) / num_steps) for s in t),
        guidance=tuple(float(guidance) for _ in t),
        name="cosine",
    )


def heuristic_schedule(num_steps: int) -> Schedule:
    """The official AdaNAT heuristic schedule (what ``heu=1`` with a zero action produces)."""
    r = [(s + 1 - 0.001) / num_steps for s in range(num_steps)]
    return Schedule(
        mask_ratio=tuple(math.cos(math.pi / 2 * x) for x in r),
        sample_temp=tuple(1.0 for _ in r),
        remask_temp=tuple(1.0 - x for x in r),
        guidance=tuple((s + 0.001) / num_steps for s in range(num_steps)),
        name="heuristic",
    )
