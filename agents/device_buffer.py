"""Device-resident rollouts for the on-policy algorithms (PPO, A2C, TRPO).

SB3's ``DictRolloutBuffer`` keeps observations as host numpy arrays: on a GPU every step copies the NAT features
device -> host (the env's numpy observation), host -> device (the policy's forward) and again host -> device
for every minibatch, and the buffer holds (n_steps, n_envs, N, D) features in host memory.
:class:`DeviceDictRolloutBuffer` keeps the observations as torch tensors on the policy's device, and the env
(``observations_on_device``, set by :func:`adanat_env.sb3.to_sb3` with ``device_observations=True``) hands
them over without leaving the device. What still crosses per step is what SB3's API needs: the (B, 4) actions
(``env.step`` takes numpy), the (B,) rewards and dones, and the (B,) values and log-probabilities the base class
stores as numpy (all small). Minibatch order is SB3's (``np.random.permutation``), so on CPU a run with this
buffer gives the same weights as one without (tested).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import BaseBuffer, DictRolloutBuffer
from stable_baselines3.common.type_aliases import DictRolloutBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

__all__ = ["DeviceDictRolloutBuffer"]

_TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float16): torch.float16,
                 np.dtype(np.int64): torch.int64, np.dtype(np.int32): torch.int32, np.dtype(np.uint8): torch.uint8}


class DeviceDictRolloutBuffer(DictRolloutBuffer):
    """A ``DictRolloutBuffer`` whose observations live on ``device`` as torch tensors (see the module docstring).

    Accepts observations as device tensors (the fast path) or numpy arrays (copied once, per step). The small
    per-step arrays (actions, rewards, values, log-probabilities, returns, advantages) stay numpy, exactly as in
    the base class, so everything that reads them (SB3's logger, this project's diagnostics) is unchanged.
    """

    observations: dict[str, torch.Tensor]  # type: ignore[assignment]

    def reset(self) -> None:
        self.observations = {
            key: torch.zeros((self.buffer_size, self.n_envs, *shape), device=self.device,
                             dtype=_TORCH_DTYPES[np.dtype(self.observation_space[key].dtype)])
            for key, shape in self.obs_shape.items()
        }
        shape = (self.buffer_size, self.n_envs)
        self.actions = np.zeros((*shape, self.action_dim), dtype=self.action_space.dtype)
        self.rewards, self.returns, self.episode_starts, self.values, self.log_probs, self.advantages = (
            np.zeros(shape, dtype=np.float32) for _ in range(6))
        self.generator_ready = False
        BaseBuffer.reset(self)

    def add(self, obs: dict[str, Any], action: np.ndarray, reward: np.ndarray,  # type: ignore[override]
            episode_start: np.ndarray, value: torch.Tensor, log_prob: torch.Tensor) -> None:
        if len(log_prob.shape) == 0:
            log_prob = log_prob.reshape(-1, 1)
        for key, store in self.observations.items():
            x = torch.as_tensor(obs[key], device=self.device)
            if isinstance(self.observation_space.spaces[key], spaces.Discrete):
                x = x.reshape((self.n_envs, *self.obs_shape[key]))
            store[self.pos].copy_(x)
        self.actions[self.pos] = np.array(action).reshape((self.n_envs, self.action_dim))
        self.rewards[self.pos] = np.array(reward)
        self.episode_starts[self.pos] = np.array(episode_start)
        self.values[self.pos] = value.clone().cpu().numpy().flatten()
        self.log_probs[self.pos] = log_prob.clone().cpu().numpy()
        self.pos += 1
        if self.pos == self.buffer_size:
            self.full = True

    def get(self, batch_size: int | None = None) -> Generator[DictRolloutBufferSamples, None, None]:  # type: ignore[override]
        assert self.full, "the rollout buffer is not full"
        indices = np.random.permutation(self.buffer_size * self.n_envs)  # SB3's order (same RNG draw)
        if not self.generator_ready:
            for key, obs in self.observations.items():  # (n_steps, n_envs, ...) -> (n_envs * n_steps, ...), env-major
                self.observations[key] = obs.transpose(0, 1).reshape(-1, *obs.shape[2:])
            for name in ("actions", "values", "log_probs", "advantages", "returns"):
                self.__dict__[name] = self.swap_and_flatten(self.__dict__[name])
            self.generator_ready = True
        if batch_size is None:
            batch_size = self.buffer_size * self.n_envs
        for start in range(0, self.buffer_size * self.n_envs, batch_size):
            yield self._get_samples(indices[start:start + batch_size])

    def _get_samples(self, batch_inds: np.ndarray,  # type: ignore[override]
                     env: VecNormalize | None = None) -> DictRolloutBufferSamples:
        idx = torch.as_tensor(batch_inds, device=self.device)
        return DictRolloutBufferSamples(
            observations={key: obs[idx] for key, obs in self.observations.items()},
            actions=self.to_torch(self.actions[batch_inds].astype(np.float32, copy=False)),
            old_values=self.to_torch(self.values[batch_inds].flatten()),
            old_log_prob=self.to_torch(self.log_probs[batch_inds].flatten()),
            advantages=self.to_torch(self.advantages[batch_inds].flatten()),
            returns=self.to_torch(self.returns[batch_inds].flatten()),
        )
