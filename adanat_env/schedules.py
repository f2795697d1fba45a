r"""Hand-designed generation schedules and the map from raw policy actions to step parameters.

Schedules
---------
- :func:`maskgit_cosine_schedule`: MaskGIT's sampler. After step t (0-based) of T, a fraction
  :math:`m_t = \cos(\frac{\pi}{2}\frac{t+1}{T})` of the tokens stays masked; sampling temperature 1; the
  re-masking ("choice") temperature is annealed linearly, :math:`\tau_2 = 4.5\,(1 - \frac{t+1}{T})`;
  constant guidance (0 by default, MaskGIT had none).
- :func:`heuristic_schedule`: the schedule that AdaNAT's ``heu=1`` residual encodes. With
  :math:`r_t = (t + 1 - 0.001)/T`: :math:`m_t = \cos(\frac{\pi}{2} r_t)`, :math:`\tau_2 = 1 - r_t`,
  :math:`\tau_1 = 1`, :math:`w_t = (t + 0.001)/T`.

Action mapping
--------------
A policy outputs a raw 4-vector per sample in **pre-activation space**, in the official order
``(mask_ratio, remask_temp, sample_temp, guidance)`` = (m, tau_2, tau_1, w), mapped by
sigmoid, softplus, softplus, softplus. :class:`ActionMapping` does this either directly (``residual=False``,
the official ``heu=0``) or on top of the heuristic schedule's inverse activations (``residual=True``,
``heu=1``), where a zero action reproduces :func:`heuristic_schedule` exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from .decoding import StepParams

__all__ = [
    "ACTION_NAMES",
    "PolicyInput",
    "Policy",
    "Schedule",
    "cosine_mask_ratio",
    "maskgit_cosine_schedule",
    "heuristic_schedule",
    "inverse_softplus",
    "heuristic_residuals",
    "ActionMapping",
    "schedule_from_values",
]

#: Order of the 4 raw action dimensions (the official ``--upd_set`` order).
ACTION_NAMES: tuple[str, str, str, str] = ("mask_ratio", "remask_temp", "sample_temp", "guidance")


@dataclass(frozen=True)
class PolicyInput:
    """What a generation policy sees before step ``step`` of ``num_steps``.

    :param features: (B, N, D) NAT features of the current canvas (conditional pass, final LayerNorm).
    :param step: 0-based index of the step about to be taken.
    :param num_steps: T.
    :param labels: (B,) class labels being generated.
    """

    features: torch.Tensor
    step: int
    num_steps: int
    labels: torch.Tensor


class Policy(Protocol):
    """Anything that maps a :class:`PolicyInput` to :class:`StepParams` (schedules, learned policies)."""

    def __call__(self, inp: PolicyInput) -> StepParams: ...


def cosine_mask_ratio(step: int, num_steps: int) -> float:
    """MaskGIT's cosine schedule: fraction still masked after 0-based step ``step`` of ``num_steps``."""
    return math.cos(math.pi / 2 * (step + 1) / num_steps)


@dataclass(frozen=True)
class Schedule:
    """A static (non-adaptive) schedule: one value per step for each parameter. Callable as a :class:`Policy`.

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


def inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    """``log(exp(y) - 1)``, the inverse of torch's softplus (beta 1, threshold 20)."""
    return torch.where(y > 20, y, torch.log(torch.expm1(y.clamp_max(20))))


def heuristic_residuals(num_steps: int) -> torch.Tensor:
    """(T, 4) float64 pre-activation residuals in :data:`ACTION_NAMES` order (zero action -> heuristic)."""
    h = heuristic_schedule(num_steps)
    m = torch.tensor(h.mask_ratio, dtype=torch.float64)
    return torch.stack([
        torch.logit(m),
        inverse_softplus(torch.tensor(h.remask_temp, dtype=torch.float64)),
        inverse_softplus(torch.tensor(h.sample_temp, dtype=torch.float64)),
        inverse_softplus(torch.tensor(h.guidance, dtype=torch.float64)),
    ], dim=1)


class ActionMapping:
    """Map raw (B, 4) actions to :class:`StepParams` (see module docstring).

    Computed in float64 so that, with ``residual=True``, a zero action gives the heuristic schedule's values
    to the last float32 bit.

    :param num_steps: T (the residual table depends on it).
    :param residual: ``True``: activation(raw + heuristic residual[t]) (official ``heu=1``);
        ``False``: activation(raw) (official ``heu=0``).
    """

    def __init__(self, num_steps: int, residual: bool = True) -> None:
        self.num_steps = int(num_steps)
        self.residual = bool(residual)
        self._res = heuristic_residuals(num_steps) if residual else torch.zeros(num_steps, 4, dtype=torch.float64)

    def __call__(self, raw: torch.Tensor, step: int | torch.Tensor) -> StepParams:
        """
        :param raw: (B, 4) raw actions in :data:`ACTION_NAMES` order; must be finite.
        :param step: the 0-based step, an int or a (B,) long tensor (per-sample steps).
        :raises ValueError: wrong shape or non-finite values.
        """
        if raw.dim() != 2 or raw.shape[1] != 4:
            raise ValueError(f"raw actions must have shape (B, 4), got {tuple(raw.shape)}")
        x = raw.double()
        if not bool(torch.isfinite(x).all()):
            raise ValueError("raw actions contain NaN or inf; a policy must output finite actions")
        res = self._res.to(raw.device)
        if isinstance(step, torch.Tensor):
            x = x + res[step.long()]
        else:
            if not 0 <= step < self.num_steps:
                raise ValueError(f"step {step} outside [0, {self.num_steps})")
            x = x + res[step]
        m = torch.sigmoid(x[:, 0])
        tau2, tau1, w = F.softplus(x[:, 1]), F.softplus(x[:, 2]), F.softplus(x[:, 3])
        f = torch.float32
        return StepParams(mask_ratio=m.to(f), sample_temp=tau1.to(f), remask_temp=tau2.to(f), guidance=w.to(f))

    @staticmethod
    def zero(batch_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.zeros(batch_size, 4, device=device)


def schedule_from_values(values: Sequence[Sequence[float]], name: str = "custom") -> Schedule:
    """A :class:`Schedule` from T rows of (m, tau_1, tau_2, w)."""
    cols = list(zip(*values))
    return Schedule(tuple(cols[0]), tuple(cols[1]), tuple(cols[2]), tuple(cols[3]), name=name)
