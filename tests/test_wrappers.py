"""Reward and observation wrappers of the AdaNAT environments."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adanat_env.envs import AdaNATEnv, AdaNATVectorEnv
from adanat_env.wrappers import PooledObservation, TerminalRewardWrapper, VectorTerminalRewardWrapper


class _MeanBrightness:
    """A reward model that checks what it receives: final images on the generator's device, long labels."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        assert images.dim() == 4 and labels.dtype == torch.long and images.device == labels.device
        return images.mean(dim=(1, 2, 3)) + labels.float()


def test_vector_terminal_reward_wrapper_replaces_terminal_rewards_only(tiny_generator):
    model = _MeanBrightness()
    env = VectorTerminalRewardWrapper(AdaNATVectorEnv(tiny_generator, num_envs=3, steps=2), model)
    env.reset(seed=0, options={"labels": [0, 1, 2]})
    _, r, term, _, _ = env.step(np.zeros((3, 4), np.float32))
    assert r.tolist() == [0.0] * 3 and not term.any() and model.calls == 0
    _, r, term, _, _ = env.step(np.zeros((3, 4), np.float32))
    expected = env.unwrapped.final_images.mean(dim=(1, 2, 3)).numpy() + np.array([0, 1, 2])
    assert term.all() and model.calls == 1
    np.testing.assert_allclose(r, expected, rtol=1e-6)


def test_single_terminal_reward_wrapper(tiny_generator):
    env = TerminalRewardWrapper(AdaNATEnv(tiny_generator, steps=2), _MeanBrightness())
    env.reset(seed=0, options={"label": 4})
    env.step(np.zeros(4, np.float32))
    _, r, term, _, info = env.step(np.zeros(4, np.float32))
    assert term and info["final_label"] == 4
    assert r == pytest.approx(float(env.unwrapped.final_images.mean()) + 4, rel=1e-6)


def test_wrapper_rejects_non_finite_rewards(tiny_generator):
    env = VectorTerminalRewardWrapper(AdaNATVectorEnv(tiny_generator, num_envs=2, steps=1),
                                      lambda im, lb: torch.tensor([1.0, float("inf")]))
    env.reset(seed=0)
    with pytest.raises(FloatingPointError, match="NaN/inf"):
        env.step(np.zeros((2, 4), np.float32))


def test_pooled_observation(tiny_generator):
    env = PooledObservation(AdaNATVectorEnv(tiny_generator, num_envs=2, steps=2))
    obs, _ = env.reset(seed=0, options={"labels": [3, 7]})
    d = tiny_generator.feature_dim + 1 + tiny_generator.num_classes
    assert obs.shape == (2, d) and env.single_observation_space.shape == (d,)
    assert obs[0, tiny_generator.feature_dim + 1 + 3] == 1.0 and obs[1, tiny_generator.feature_dim] == 0.0
    env.step(np.zeros((2, 4), np.float32))
    obs, _, term, _, infos = env.step(np.zeros((2, 4), np.float32))
    assert term.all() and infos["final_obs"][0].shape == (d,) and infos["final_obs"][0][tiny_generator.feature_dim] == 1.0
