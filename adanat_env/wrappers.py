"""Wrappers for the AdaNAT environments.

- :class:`TerminalRewardWrapper` / :class:`VectorTerminalRewardWrapper`: score the final images with a reward
  model at the terminal step (the pluggable reward; the adversarial reward of the training issue is one). The
  images are taken from ``env.unwrapped.final_images`` on the generator's device: no round trip through numpy.
  Build the base env with ``reward_model=None`` so its default reward is not computed twice.
- :class:`PooledObservation`: a flat ``Box`` observation for algorithms that need one (ARS) or whose replay
  buffers would be too big with (N, D) features (TD3, SAC): ``[mean-pooled features (D), step / T,
  one-hot label (C)]``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import VectorEnv, VectorWrapper
from gymnasium.vector.utils import batch_space

from .envs.adanat import RewardModel

__all__ = ["TerminalRewardWrapper", "VectorTerminalRewardWrapper", "PooledObservation", "pool_observation"]


def _score(model: RewardModel, images: torch.Tensor, labels: np.ndarray, device: torch.device) -> np.ndarray:
    with torch.inference_mode():
        r = torch.as_tensor(model(images, torch.as_tensor(labels, device=device))).float().reshape(-1).cpu().numpy()
    if not np.isfinite(r).all():
        raise FloatingPointError("reward model returned NaN/inf rewards (diverged reward model?)")
    return r.astype(np.float32)


class VectorTerminalRewardWrapper(VectorWrapper):
    """Replace the terminal reward of an :class:`~adanat_env.envs.AdaNATVectorEnv` by ``reward_model``'s.

    :param env: the AdaNAT vector env (possibly wrapped).
    :param reward_model: ``(images, labels) -> (B,)`` rewards.
    """

    def __init__(self, env: VectorEnv, reward_model: RewardModel) -> None:
        super().__init__(env)
        self.reward_model = reward_model

    def step(self, actions):
        obs, rewards, terminated, truncated, infos = self.env.step(actions)
        if terminated.any():
            base = self.env.unwrapped
            rewards = _score(self.reward_model, base.final_images, base.final_labels, base.generator.device)
        return obs, rewards, terminated, truncated, infos


class TerminalRewardWrapper(gym.Wrapper):
    """Single-env counterpart of :class:`VectorTerminalRewardWrapper`."""

    def __init__(self, env: gym.Env, reward_model: RewardModel) -> None:
        super().__init__(env)
        self.reward_model = reward_model

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated:
            base = self.env.unwrapped
            reward = float(_score(self.reward_model, base.final_images, np.array([info["final_label"]]), base.generator.device)[0])
        return obs, reward, terminated, truncated, info


def pool_observation(obs: dict[str, np.ndarray], steps: int, num_classes: int) -> np.ndarray:
    """Batched Dict observation -> (B, D + 1 + C) float32."""
    feats = obs["features"].astype(np.float32).mean(axis=-2)
    step = obs["step"].astype(np.float32).reshape(-1, 1) / steps
    onehot = np.eye(num_classes, dtype=np.float32)[obs["label"].reshape(-1)]
    return np.concatenate([feats, step, onehot], axis=1)


class PooledObservation(VectorWrapper):
    """Flat Box observations ``[mean features, step / T, one-hot label]`` (terminal observations too)."""

    def __init__(self, env: VectorEnv) -> None:
        super().__init__(env)
        base = env.unwrapped
        self._steps, self._classes = base.steps, base.generator.num_classes
        dim = base.generator.feature_dim + 1 + self._classes
        self.single_observation_space = spaces.Box(-np.inf, np.inf, (dim,), dtype=np.float32)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)

    def _pool(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return pool_observation(obs, self._steps, self._classes)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, infos = self.env.reset(seed=seed, options=options)
        return self._pool(obs), infos

    def step(self, actions):
        obs, rewards, terminated, truncated, infos = self.env.step(actions)
        if "final_obs" in infos:
            final = infos["final_obs"]
            pooled = np.empty(len(final), dtype=object)
            for i, o in enumerate(final):
                pooled[i] = None if o is None else self._pool({k: np.asarray(v)[None] for k, v in o.items()})[0]
            infos = {**infos, "final_obs": pooled}
        return self._pool(obs), rewards, terminated, truncated, infos
