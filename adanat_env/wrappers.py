"""Wrappers for the AdaNAT environments.

- :class:`TerminalRewardWrapper` / :class:`VectorTerminalRewardWrapper`: score the final images with a reward
  model at the terminal step (the pluggable reward; the adversarial reward of the training issue is one). The
  images are taken from ``env.unwrapped.final_images`` on the generator's device: no round trip through numpy.
  This is the one way rewards attach to an AdaNAT env (the env core itself gives 0).
- :class:`VectorComputeCost` / :class:`ComputeCost`: subtract ``nfe_cost`` times the NAT evaluations a sample
  used from its terminal reward (the compute-aware reward of adaptive step counts).
- :class:`PooledObservation`: a flat ``Box`` observation for algorithms that need one (ARS) or whose replay
  buffers would be too big with (N, D) features (TD3, SAC): ``[mean-pooled features (D), step / T,
  one-hot label (C)]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import VectorEnv, VectorWrapper
from gymnasium.vector.utils import batch_space

from .envs.adanat import decoding_spec_of

__all__ = ["RewardModel", "TerminalRewardWrapper", "VectorTerminalRewardWrapper", "VectorComputeCost", "ComputeCost",
           "PooledObservation"]

#: A reward model maps final images (B, C, H, W) in [0, 1] on the generator's device and labels (B,) to (B,) rewards.
RewardModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _score(model: RewardModel, images: torch.Tensor, labels: np.ndarray, device: torch.device) -> np.ndarray:
    with torch.inference_mode():
        r = torch.as_tensor(model(images, torch.as_tensor(labels, device=device))).float().reshape(-1).cpu().numpy()
    if r.shape != (len(labels),):
        raise ValueError(f"the reward model returned shape {r.shape}, expected ({len(labels)},)")
    if not np.isfinite(r).all():
        raise FloatingPointError("the reward model returned NaN/inf rewards (a diverged reward model?)")
    return r.astype(np.float32)


class VectorTerminalRewardWrapper(VectorWrapper):
    """Replace the terminal reward of an :class:`~adanat_env.envs.AdaNATVectorEnv` by ``reward_model``'s.

    The model scores only the samples that finished in this step (all of them at step T with a fixed T; those
    that stopped, with adaptive step counts), in one batch.

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
            rewards = np.array(rewards, dtype=np.float32)
            rewards[base.final_index] = _score(self.reward_model, base.final_images, base.final_labels,
                                               base.generator.device)
        return obs, rewards, terminated, truncated, infos


def _check_cost(nfe_cost: float) -> float:
    if not np.isfinite(nfe_cost) or nfe_cost < 0:
        raise ValueError(f"nfe_cost must be finite and >= 0, got {nfe_cost}")
    return float(nfe_cost)


class VectorComputeCost(VectorWrapper):
    """Compute-aware reward: a finished sample's reward minus ``nfe_cost * nfe``, with ``nfe`` the NAT
    evaluations (= steps) it used (``info["final_info"]["nfe"]``). Put it outside the terminal-reward wrapper.

    :param env: an AdaNAT vector env (usually ``adaptive_steps=True``), possibly wrapped.
    :param nfe_cost: lambda, the reward charged per NAT evaluation (>= 0).
    """

    def __init__(self, env: VectorEnv, nfe_cost: float) -> None:
        super().__init__(env)
        self.nfe_cost = _check_cost(nfe_cost)

    def step(self, actions):
        obs, rewards, terminated, truncated, infos = self.env.step(actions)
        if terminated.any():
            nfe = np.asarray(infos["final_info"]["nfe"], dtype=np.float32)
            rewards = np.asarray(rewards, dtype=np.float32) - self.nfe_cost * nfe * terminated
        return obs, rewards, terminated, truncated, infos


class ComputeCost(gym.Wrapper):
    """Single-env counterpart of :class:`VectorComputeCost`."""

    def __init__(self, env: gym.Env, nfe_cost: float) -> None:
        super().__init__(env)
        self.nfe_cost = _check_cost(nfe_cost)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated:
            reward = float(reward) - self.nfe_cost * info["nfe"]
        return obs, reward, terminated, truncated, info


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


class PooledObservation(VectorWrapper):
    """Flat Box observations ``[mean features, step / T, one-hot label]`` (terminal observations too), built by
    :meth:`~adanat_env.envs.DecodingSpec.pooled_observation`, the same function a trained policy uses outside
    the env (:class:`agents.generation_policy.SB3GenerationPolicy`)."""

    def __init__(self, env: VectorEnv) -> None:
        super().__init__(env)
        self._spec = decoding_spec_of(env)
        dim = self._spec.feature_dim + 1 + self._spec.num_classes
        self.single_observation_space = spaces.Box(-np.inf, np.inf, (dim,), dtype=np.float32)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)

    def _pool(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        # contiguous copies only of read-only views (the terminal observation's broadcast zeros)
        arrays = {k: np.asarray(obs[k]) for k in ("features", "step", "label")}
        t = {k: torch.from_numpy(a if a.flags.writeable else a.copy()) for k, a in arrays.items()}
        pooled = self._spec.pooled_observation(t["features"], t["step"], t["label"])
        return pooled.numpy()

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
