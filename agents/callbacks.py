"""Generic SB3 callbacks of AdaNAT training: the exploration-std schedule, the canvas statistics of the
confidence policy, and a rollout timer for benchmarks.

:class:`StdScheduleCallback` acts at ``_on_rollout_start``, after the previous ``train()`` (the policy update)
and before the next rollout, where the official loop updates the exploration std. Its counter is a plain integer
(:meth:`state_dict`), so a resumed run continues the schedule exactly. The discriminator's steps are not a
callback of their own: :mod:`agents.training.trainer` shows them in the order they run.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.noise import ActionNoise, NormalActionNoise, VectorizedActionNoise

from .policies import ConfidenceStepExtractor, StdSchedule

__all__ = ["StdScheduleCallback", "CanvasStatsCallback", "RolloutTimer"]


class CanvasStatsCallback(BaseCallback):
    """Keeps the per-step standardisation of :class:`~agents.policies.ConfidenceStepExtractor` (actor and critic):
    measured on each rollout's observations at its end, put in use at the start of the next rollout. A no-op for
    every other policy. Its whole state is in the policy's buffers (the checkpoint), so a resumed run continues
    exactly."""

    def _extractors(self) -> list[ConfidenceStepExtractor]:
        return [m for m in self.model.policy.modules() if isinstance(m, ConfidenceStepExtractor)]

    def _on_rollout_start(self) -> None:
        for ex in self._extractors():
            ex.advance()

    def _on_rollout_end(self) -> None:
        extractors = self._extractors()
        obs = getattr(getattr(self.model, "rollout_buffer", None), "observations", None)
        if not extractors or obs is None:
            return
        conf = torch.as_tensor(obs["confidence"])
        step = torch.as_tensor(obs["step"]).reshape(-1)
        for ex in extractors:
            ex.observe(conf.reshape(-1, conf.shape[-1]), step)

    def _on_step(self) -> bool:
        return True


class _RolloutCounter(BaseCallback):
    """Counts started rollouts; the count is the callback's whole state (for exact resume)."""

    def __init__(self, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.rollouts = 0

    def _on_step(self) -> bool:
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"rollouts": self.rollouts}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rollouts = int(state["rollouts"])


class StdScheduleCallback(_RolloutCounter):
    """Set the fixed exploration std from a :class:`~agents.policies.StdSchedule` before every rollout.

    Works with the fixed-std policies of :mod:`agents.policies` (``set_action_std``) and with TD3-style Gaussian
    action noise (replaced by a new ``NormalActionNoise`` with the scheduled sigma); policies with a learned std
    (SAC) are left alone.

    :param schedule: std as a function of the number of completed policy updates.
    :param last_std: hold the last action component's std at this value instead (fixed-std policies; the stop
        action of adaptive step counts, whose exploration must not decay with the others').
    """

    def __init__(self, schedule: StdSchedule, verbose: int = 0, last_std: float | None = None) -> None:
        super().__init__(verbose)
        self.schedule = schedule
        self.last_std = last_std
        self.current: float | None = None

    def _on_rollout_start(self) -> None:
        std = self.schedule(self.rollouts)  # rollouts started so far = policy updates done
        self.rollouts += 1
        policy = self.model.policy
        noise: ActionNoise | None = getattr(self.model, "action_noise", None)
        if hasattr(policy, "set_action_std"):
            if self.last_std is None:
                policy.set_action_std(std)
            else:
                policy.set_action_std([std] * (self.model.action_space.shape[0] - 1) + [self.last_std])
        elif isinstance(noise, (NormalActionNoise, VectorizedActionNoise)):
            # TD3 acts in [-1, 1] scaled to the Box: the std in action units is std / bound there
            sigma = np.full(self.model.action_space.shape, std) / np.abs(self.model.action_space.high)
            new = NormalActionNoise(np.zeros_like(sigma), sigma)
            self.model.action_noise = VectorizedActionNoise(new, noise.n_envs) \
                if isinstance(noise, VectorizedActionNoise) else new
        else:
            return
        self.current = std
        self.logger.record("train/action_std", std)


class RolloutTimer(BaseCallback):
    """Wall-clock seconds of every rollout (synchronising CUDA at both ends), e.g. for benchmarks.

    :param device: the device the rollout computes on.
    """

    def __init__(self, device: Any = "cpu", verbose: int = 0) -> None:
        super().__init__(verbose)
        self.device = torch.device(device)
        self.rollout_s: list[float] = []
        self._t0 = 0.0

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _on_rollout_start(self) -> None:
        self._sync()
        self._t0 = time.perf_counter()

    def _on_rollout_end(self) -> None:
        self._sync()
        self.rollout_s.append(time.perf_counter() - self._t0)

    def _on_step(self) -> bool:
        return True
