"""SB3 / sb3-contrib algorithms learn for 128 steps on AdaNAT-FashionMNIST-v0 through the adapter."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from sb3_contrib import ARS, TRPO, RecurrentPPO
from stable_baselines3 import A2C, PPO, SAC, TD3
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecMonitor

import adanat_env  # noqa: F401
from adanat_env.sb3 import SB3VecEnvAdapter, to_sb3
from adanat_env.wrappers import PooledObservation

N_ENVS, T = 4, 2


def _venv(pooled: bool = False):
    venv = gym.make_vec("AdaNAT-FashionMNIST-v0", num_envs=N_ENVS, vectorization_mode="vector_entry_point",
                        steps=T, device="cpu")
    return to_sb3(PooledObservation(venv) if pooled else venv)


ALGOS = {
    "PPO": lambda env: PPO("MultiInputPolicy", env, n_steps=8, batch_size=16, n_epochs=2, seed=0),
    "A2C": lambda env: A2C("MultiInputPolicy", env, n_steps=4, seed=0),
    "TRPO": lambda env: TRPO("MultiInputPolicy", env, n_steps=16, batch_size=32, seed=0),
    "RecurrentPPO": lambda env: RecurrentPPO("MultiInputLstmPolicy", env, n_steps=8, batch_size=16, n_epochs=1, seed=0,
                                             policy_kwargs={"lstm_hidden_size": 32, "net_arch": [32]}),
    "TD3": lambda env: TD3("MultiInputPolicy", env, buffer_size=256, learning_starts=32, batch_size=16, train_freq=4, seed=0),
    "SAC": lambda env: SAC("MultiInputPolicy", env, buffer_size=256, learning_starts=32, batch_size=16, train_freq=4, seed=0),
    "ARS": lambda env: ARS("LinearPolicy", env, n_delta=2, n_top=1, seed=0),
}
POOLED = {"ARS"}


@pytest.mark.parametrize("name", sorted(ALGOS))
def test_algorithm_learns_through_the_adapter(name):
    env = _venv(pooled=name in POOLED)
    model = ALGOS[name](env)
    model.learn(total_timesteps=128)
    assert model.num_timesteps >= 128
    assert len(model.ep_info_buffer) > 0  # VecMonitor outermost: episode returns reach the logger
    ret = [ep["r"] for ep in model.ep_info_buffer]
    assert all(0.0 <= r <= 1.0 for r in ret) and all(ep["l"] == T for ep in model.ep_info_buffer)
    env.close()


def test_adapter_conventions():
    env = _venv()
    assert isinstance(env, VecMonitor) and isinstance(env.venv, SB3VecEnvAdapter)
    env.seed(7)
    obs = env.reset()
    assert obs["features"].shape == (N_ENVS, 49, 128)
    assert env.reset_infos == [{}] * N_ENVS
    obs, rew, dones, infos = env.step(np.zeros((N_ENVS, 4), dtype=np.float32))
    assert not dones.any() and rew.tolist() == [0.0] * N_ENVS
    obs, rew, dones, infos = env.step(np.zeros((N_ENVS, 4), dtype=np.float32))
    assert dones.all() and len(infos) == N_ENVS
    assert infos[0]["terminal_observation"]["step"].tolist() == [T]
    assert infos[0]["TimeLimit.truncated"] is False and infos[0]["final_tokens"].shape == (49,)
    assert "episode" in infos[0]
    assert env.env_is_wrapped(gym.Wrapper) == [False] * N_ENVS
    assert env.get_attr("num_envs") == [N_ENVS] * N_ENVS
    # evaluate_policy works through the adapter (it indexes env_is_wrapped(...)[0])
    model = PPO("MultiInputPolicy", env, n_steps=8, batch_size=16, seed=0)
    mean, _ = evaluate_policy(model, env, n_eval_episodes=4)
    assert 0.0 <= mean <= 1.0


def test_seeded_adapter_is_reproducible():
    def final_tokens(seed):
        env = _venv()
        env.seed(seed)
        env.reset()
        env.step(np.zeros((N_ENVS, 4), dtype=np.float32))
        _, _, _, infos = env.step(np.zeros((N_ENVS, 4), dtype=np.float32))
        return np.stack([i["final_tokens"] for i in infos])
    assert np.array_equal(final_tokens(3), final_tokens(3))
