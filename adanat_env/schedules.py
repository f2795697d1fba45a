r"""Hand-designed generation schedules: static step parameters (m, tau_1, tau_2, w) per step.

- :func:`maskgit_cosine_schedule`: MaskGIT's sampler. After step t (0-based) of T, a fraction
  :math:`m_t = \cos(\frac{\pi}{2}\frac{t+1}{T})` of the tokens stays masked; sampling temperature 1; the
  re-masking ("choice") temperature is annealed linearly, :math:`\tau_2 = 4.5\,(1 - \frac{t+1}{T})`;
  constant guidance (0 by default, MaskGIT had none).
- :func:`heuristic_schedule`: the schedule that AdaNAT's ``heu=1`` residual encodes. With
  :math:`r_t = (t + 1 - 0.001)/T`: :math:`m_t = \cos(\frac{\pi}{2} r_t)`, :math:`\tau_1 = 1`,
  :math:`\tau_2 = 1 - r_t`, :math:`w_t = (t + 0.001)/T`.

A :class:`Schedule` is a :class:`~adanat_env.policy.Policy` (it ignores the features). Schedules are saved and
loaded as JSON files (:func:`save_schedule_file`, :func:`load_schedule_file`); ``agents.export`` writes a trained
policy's per-step mean parameters in the same format.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .decoding import StepParams
from .policy import PolicyInput

__all__ = ["Schedule", "cosine_mask_ratio", "maskgit_cosine_schedule", "heuristic_schedule", "SCHEDULE_FORMAT",
           "schedule_to_dict", "save_schedule_file", "load_schedule_file"]

#: The ``format`` field of a schedule file.
SCHEDULE_FORMAT = "adanat-schedule/1"
#: Schedule-file fields (AutoNAT's strategy-file names) -> :class:`Schedule` fields.
_FILE_FIELDS = {"manual_ratios": "mask_ratio", "manual_samp_temp": "sample_temp", "manual_temp": "remask_temp",
                "manual_cfg": "guidance"}

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


def schedule_to_dict(schedule: Schedule) -> dict[str, Any]:
    """A schedule as a schedule file's content: ``format``, ``name``, ``steps`` and the four per-step lists under
    AutoNAT's strategy-file names: ``manual_ratios`` (m, the fraction left masked after the step),
    ``manual_samp_temp`` (tau_1), ``manual_temp`` (tau_2, re-masking) and ``manual_cfg`` (w). Unlike AutoNAT's
    files every list has T entries (the last step's ratio and re-masking temperature too) and the values are
    the step parameters exactly as this project's sampler applies them (AutoNAT's clamps and one-step offset
    differ, see docs/design.md)."""
    return {"format": SCHEDULE_FORMAT, "name": schedule.name, "steps": schedule.num_steps,
            **{k: list(getattr(schedule, v)) for k, v in _FILE_FIELDS.items()}}


def save_schedule_file(schedule: Schedule, path: str | os.PathLike[str]) -> Path:
    """Write ``schedule`` as JSON (:func:`schedule_to_dict`); returns the path."""
    p = Path(path)
    p.write_text(json.dumps(schedule_to_dict(schedule), indent=2))
    return p


def load_schedule_file(path: str | os.PathLike[str]) -> Schedule:
    """A :class:`Schedule` from a schedule file (JSON, see :func:`schedule_to_dict`).

    :raises FileNotFoundError: no such file.
    :raises ValueError: not a schedule file, lists of different lengths or non-finite values, naming the field.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"schedule file '{p}' not found")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"'{p}' is not a JSON schedule file: {e}") from e
    if not isinstance(data, dict) or data.get("format") != SCHEDULE_FORMAT:
        raise ValueError(f"'{p}' is not a schedule file (format {SCHEDULE_FORMAT!r}; written by "
                         "adanat_env.schedules.save_schedule_file or agents.export.export_schedule)")
    values: dict[str, tuple[float, ...]] = {}
    for key, name in _FILE_FIELDS.items():
        seq = data.get(key)
        if not isinstance(seq, list) or not seq or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in seq):
            raise ValueError(f"'{p}': '{key}' must be a non-empty list of finite numbers")
        values[name] = tuple(float(v) for v in seq)
    lengths = {k: len(v) for k, v in values.items()}
    if len(set(lengths.values())) != 1 or ("steps" in data and data["steps"] != lengths["mask_ratio"]):
        raise ValueError(f"'{p}': every list needs one value per step (steps {data.get('steps')}; lengths {lengths})")
    return Schedule(**values, name=str(data.get("name", p.stem)))
