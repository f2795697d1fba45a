r"""The action boundary: raw policy outputs -> step parameters (m, tau_1, tau_2, w).

Everywhere else in this project the four step parameters are in the order of
:class:`~adanat_env.decoding.StepParams`: mask ratio m, sampling temperature tau_1, re-masking temperature tau_2,
guidance w. Only the **raw action** keeps the official code's order, so that official policy checkpoints load
unchanged: ``(mask_ratio, remask_temp, sample_temp, guidance)`` = (m, tau_2, tau_1, w) (:data:`ACTION_NAMES`).
A raw action lives in pre-activation space and is mapped by sigmoid, softplus, softplus, softplus.
:class:`ActionMapping` does this either directly (``residual=False``, the official ``heu=0``) or on top of the
heuristic schedule's inverse activations (``residual=True``, ``heu=1``), where a zero action reproduces
:func:`~adanat_env.schedules.heuristic_schedule` exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .decoding import StepParams
from .schedules import heuristic_schedule

__all__ = ["ACTION_NAMES", "inverse_softplus", "heuristic_residuals", "frozen_mask", "ActionMapping"]

#: Order of the 4 raw action dimensions (the official ``--upd_set`` order; the only place it differs).
ACTION_NAMES: tuple[str, str, str, str] = ("mask_ratio", "remask_temp", "sample_temp", "guidance")


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


def frozen_mask(frozen: tuple[str, ...] | list[str], num_steps: int) -> torch.Tensor:
    """(T, 4) bool in :data:`ACTION_NAMES` order: True where the raw action is held at zero (the residual's value).

    :param frozen: entries ``"component"`` (held at every step) or ``"component@k"`` (held at step k only,
        0-based; a negative k counts from the end, ``@-1`` being the last step), components among
        :data:`ACTION_NAMES`.
    :raises ValueError: an unknown component or a step outside ``[-T, T)``.
    """
    mask = torch.zeros(int(num_steps), 4, dtype=torch.bool)
    for entry in frozen:
        name, at, step = entry.partition("@")
        if name not in ACTION_NAMES:
            raise ValueError(f"frozen actions must be among {', '.join(ACTION_NAMES)} (optionally @step); got {entry!r}")
        if not at:
            mask[:, ACTION_NAMES.index(name)] = True
            continue
        try:
            k = int(step)
        except ValueError:
            raise ValueError(f"{entry!r}: the step after '@' must be an integer") from None
        if not -num_steps <= k < num_steps:
            raise ValueError(f"{entry!r}: step {k} outside [-{num_steps}, {num_steps}) for T = {num_steps}")
        mask[k, ACTION_NAMES.index(name)] = True
    return mask


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
