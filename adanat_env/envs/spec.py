"""The env <-> policy contract of the AdaNAT envs (:class:`DecodingSpec`), written once: what a policy sees and how
its raw actions become a decoding step."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch

from ..actions import ActionMapping
from ..actions import frozen_mask as _frozen_mask
from ..decoding import StepParams

__all__ = ["DecodingSpec", "decoding_spec_of", "DEFAULT_ACTION_BOUND", "DEFAULT_STOP_THRESHOLD", "STOP_ACTION"]

#: Raw (pre-activation) actions are clipped to [-bound, bound] in every dimension.
DEFAULT_ACTION_BOUND = 10.0
#: Name of the fifth raw action component of an adaptive-step env: finish the sample with this step.
STOP_ACTION = "stop"
#: A sample finishes when its raw stop action is at least this: a zero action never stops (the T_max-step
#: schedule), and Gaussian exploration of std 0.6 around zero stops at a given step with probability ~5%.
DEFAULT_STOP_THRESHOLD = 1.0


def token_confidence(logits: torch.Tensor) -> torch.Tensor:
    """(B, N) float32: each position's largest log probability, ``max_v log softmax(logits)_v`` (<= 0)."""
    return torch.log_softmax(logits.float(), dim=-1).amax(-1)


@dataclass(frozen=True)
class DecodingSpec:
    """The env <-> policy contract, written once: what a policy sees and how its raw actions become a step.

    The env builds its observations and maps its actions with it; a learned policy run outside the env (for
    sampling, evaluation, the discriminator's fresh generations) takes it from the env
    (:func:`decoding_spec_of`, :meth:`agents.generation_policy.SB3GenerationPolicy.from_env`), so nobody passes
    T, the residual mode or the action bound by hand.

    :param steps: T, decoding steps per episode.
    :param residual: ``"heuristic"`` (zero action = heuristic schedule) or ``"none"`` (official ``heu=0``).
    :param action_bound: raw actions are clipped to ``[-action_bound, action_bound]``.
    :param num_tokens: rows of the observation's features per image: N tokens, or a patched NAT's N / p^2
        positions (the generator's ``feature_tokens``).
    :param feature_dim: D, NAT feature width.
    :param num_classes: C, class labels.
    :param feature_dtype: ``"float32"`` or ``"float16"`` observation features.
    :param frozen: action components (:data:`~adanat_env.actions.ACTION_NAMES`) held at zero raw action, i.e.
        at the residual's value (the heuristic's, with ``residual="heuristic"``), whatever the policy outputs;
        ``"component@k"`` holds it at step k only (negative k from the end: ``"sample_temp@-1"``, the last step).
    :param adaptive: adaptive step counts: a fifth raw action component (:data:`STOP_ACTION`) finishes the
        sample with the current step when it is at least ``stop_threshold``; ``steps`` is then T_max.
    :param stop_threshold: see ``adaptive``.
    :param confidence: observe the canvas's token confidences: ``"confidence"`` (N,), each position's largest log
        probability under the NAT's conditional logits (the paper's Figure 3 signal: how sure the NAT already is).
    """

    steps: int
    residual: str
    action_bound: float
    num_tokens: int
    feature_dim: int
    num_classes: int
    feature_dtype: str = "float32"
    frozen: tuple[str, ...] = ()
    adaptive: bool = False
    stop_threshold: float = DEFAULT_STOP_THRESHOLD
    confidence: bool = False

    def __post_init__(self) -> None:
        if self.residual not in ("heuristic", "none"):
            raise ValueError(f"residual must be 'heuristic' or 'none', got {self.residual!r}")
        if self.feature_dtype not in ("float32", "float16"):
            raise ValueError(f"dtype must be 'float32' or 'float16', got {self.feature_dtype!r}")
        if int(self.steps) < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        _frozen_mask(self.frozen, int(self.steps))  # raises on an unknown component or step
        if not self.action_bound > 0:
            raise ValueError(f"action_bound must be > 0, got {self.action_bound}")
        if not np.isfinite(self.stop_threshold):
            raise ValueError(f"stop_threshold must be finite, got {self.stop_threshold}")

    @property
    def action_dim(self) -> int:
        """4 raw components (:data:`~adanat_env.actions.ACTION_NAMES`), plus :data:`STOP_ACTION` when adaptive."""
        return 5 if self.adaptive else 4

    def finish(self, raw: torch.Tensor) -> torch.Tensor:
        """(B,) bool: which samples finish with this step (their stop action is at least the threshold);
        all False for a fixed-T spec."""
        if not self.adaptive:
            return torch.zeros(raw.shape[0], dtype=torch.bool, device=raw.device)
        return raw[:, 4].float().clamp(-self.action_bound, self.action_bound) >= self.stop_threshold

    @cached_property
    def frozen_mask(self) -> torch.Tensor:
        """(T, 4) bool: the raw action entries held at zero (:func:`~adanat_env.actions.frozen_mask`)."""
        return _frozen_mask(self.frozen, int(self.steps))

    @cached_property
    def action_mapping(self) -> ActionMapping:
        """Raw actions (:data:`~adanat_env.actions.ACTION_NAMES` order) -> :class:`~adanat_env.decoding.StepParams`."""
        return ActionMapping(self.steps, residual=self.residual == "heuristic")

    def step_params(self, raw: torch.Tensor, step: int | torch.Tensor) -> StepParams:
        """Clip (B, 4) raw actions to the bound (zero the frozen components) and map them to the parameters of step
        ``step`` (an int, or a (B,) tensor of per-sample steps). A fifth (stop) column is ignored here
        (:meth:`finish`)."""
        raw = raw[:, :4].float().clamp(-self.action_bound, self.action_bound)
        if self.frozen:
            held = self.frozen_mask.to(raw.device)
            raw = raw.masked_fill(held[step.long()] if isinstance(step, torch.Tensor) else held[step], 0.0)
        return self.action_mapping(raw, step)

    def observation(self, features: torch.Tensor, step: int | torch.Tensor, labels: torch.Tensor,
                    logits: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The Dict observation of a batch (see the env's Observation Space), on the tensors' devices.

        :param step: an int, or a (B,) tensor of per-sample steps.
        :param logits: (B, N, V) the NAT's conditional logits of the canvas (needed with ``confidence``).
        """
        dtype = torch.float32 if self.feature_dtype == "float32" else torch.float16
        if isinstance(step, torch.Tensor):
            step_col = step.reshape(-1, 1).to(device=labels.device, dtype=torch.int64, copy=True)
        else:
            step_col = torch.full((labels.shape[0], 1), step, dtype=torch.int64, device=labels.device)
        # the label is a copy: observations of different calls never share memory (Gymnasium's checker asks it)
        obs = {"features": features.to(dtype), "step": step_col, "label": labels.reshape(-1, 1).to(torch.int64, copy=True)}
        if self.confidence:
            if logits is None:
                raise ValueError("this spec observes token confidences: pass the NAT's conditional logits (PolicyInput.logits)")
            obs["confidence"] = token_confidence(logits).to(features.device)
        return obs

    def pooled_observation(self, features: torch.Tensor, step: int | torch.Tensor,
                           labels: torch.Tensor) -> torch.Tensor:
        """The flat observation ``[mean features (D), step / T, one-hot label (C)]``: float32 (B, D + 1 + C).

        :param features: (B, N, D) features.
        :param step: an int, or a tensor of B per-sample steps.
        :param labels: (B,) or (B, 1) labels.
        """
        b, dev = labels.shape[0], features.device
        steps = torch.as_tensor(step, device=dev).float().reshape(-1, 1).expand(b, 1)
        onehot = torch.nn.functional.one_hot(labels.reshape(-1).long().to(dev), self.num_classes).float()
        return torch.cat([features.float().mean(1), steps / self.steps, onehot], dim=1)


def decoding_spec_of(env: Any) -> DecodingSpec:
    """The :class:`DecodingSpec` of an AdaNAT env: single or vector, wrapped or not, or an SB3 ``VecEnv`` made
    by :func:`adanat_env.sb3.to_sb3`.

    :raises TypeError: ``env`` is not an AdaNAT env.
    """
    seen = env
    for _ in range(64):  # SB3 VecEnv wrappers and our adapter hold `.venv`; Gymnasium wrappers `.unwrapped`
        spec = getattr(seen, "decoding_spec", None)
        if isinstance(spec, DecodingSpec):
            return spec
        inner = getattr(seen, "venv", None)
        if inner is None:
            unwrapped = getattr(seen, "unwrapped", None)
            inner = None if unwrapped is seen else unwrapped
        if inner is None:
            break
        seen = inner
    raise TypeError(f"{type(env).__name__} is not an AdaNAT env (it has no decoding_spec); build one with "
                    "gym.make / gym.make_vec of an AdaNAT id")
