"""Build any supported SB3 / sb3-contrib algorithm for an AdaNAT env with sensible defaults: ``--algo NAME``.

| name | algorithm | policy | observation |
| --- | --- | --- | --- |
| ``ppo`` | SB3 PPO (the paper's) | :class:`~agents.policies.AdaNATPolicy` (fixed scheduled std) | Dict |
| ``a2c`` | SB3 A2C | same | Dict |
| ``trpo`` | sb3-contrib TRPO | same | Dict |
| ``recurrentppo`` | sb3-contrib RecurrentPPO | :class:`~agents.policies.AdaNATRecurrentPolicy` | Dict |
| ``td3`` | SB3 TD3 (Gaussian action noise, sigma on the std schedule) | ``MlpPolicy`` | pooled Box |
| ``sac`` | SB3 SAC (learned std) | ``MlpPolicy`` | pooled Box |
| ``ars`` | sb3-contrib ARS (one candidate = one env batch) | ``LinearPolicy`` | pooled Box |

Choices, and why:

- On-policy algorithms use the official conv trunk on the (N, D) features. Every episode is exactly T steps with
  a terminal reward only, so ``gamma = 1`` and ``gae_lambda = 1``: the advantage is the Monte-Carlo return minus
  the value, as in the official code (SB3 then normalises advantages per minibatch).
- Off-policy algorithms store ``obs`` and ``next_obs`` in a replay buffer; with (256, 768) ImageNet features
  that is ~1.5 MB per transition, so they see :class:`~adanat_env.wrappers.PooledObservation` (mean-pooled
  features, step / T, one-hot label) and keep a modest ``buffer_size``. ARS has no Dict policy at all.
- ``pooled`` algorithms act through a tanh-squashed or linear policy over the whole Box, so they use a
  smaller action bound (``ALGOS[name].action_bound``, 3) than the on-policy ones (10, where the Gaussian
  mean starts at 0 and the std is small).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sb3_contrib import ARS, TRPO, RecurrentPPO
from stable_baselines3 import A2C, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.vec_env import VecEnv

from .policies import AdaNATPolicy, AdaNATRecurrentPolicy, ClassStepPolicy, ConfidencePolicy, StdSchedule, StepOnlyPolicy

__all__ = ["AlgoSpec", "ALGOS", "POLICIES", "ARS_N_DELTA", "DEVICE_BUFFER_ALGOS", "make_algo"]


@dataclass(frozen=True)
class AlgoSpec:
    """How to build one algorithm.

    :param build: ``(env, settings) -> model``; see :func:`make_algo` for the settings.
    :param pooled: needs :class:`~adanat_env.wrappers.PooledObservation`.
    :param on_policy: collects ``n_steps`` per env per update (checkpoint/resume is exact); off-policy
        algorithms keep a replay buffer that is not checkpointed.
    :param action_bound: env action bound to use.
    """

    build: Callable[[VecEnv, dict[str, Any]], BaseAlgorithm]
    pooled: bool = False
    on_policy: bool = True
    action_bound: float = 10.0
    notes: str = field(default="")


#: ``policy=`` names of the on-policy algorithms: the adaptive policy and the learnable non-adaptive variant.
POLICIES: dict[str, type] = {"adaptive": AdaNATPolicy, "step-only": StepOnlyPolicy, "class-step": ClassStepPolicy,
                             "confidence": ConfidencePolicy}


def _policy(s: dict[str, Any]) -> type:
    name = s.get("policy", "adaptive")
    if name not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {name!r}")
    return POLICIES[name]


def _policy_kwargs(s: dict[str, Any], reference_kl: bool = False) -> dict[str, Any]:
    kw: dict[str, Any] = {"log_std_init": float(np.log(s.get("std", StdSchedule().init)))}
    if reference_kl and s.get("kl_coef", 0.0) > 0:
        kw["reference_kl"] = True
    return kw


def _ppo(env: VecEnv, s: dict[str, Any]) -> BaseAlgorithm:
    return PPO(_policy(s), env, rollout_buffer_class=s.get("rollout_buffer_class"), learning_rate=s["lr"], n_steps=s["n_steps"], batch_size=s["minibatch"],
               n_epochs=s["epochs"], gamma=1.0, gae_lambda=1.0, clip_range=s.get("clip_range", 0.2),
               ent_coef=s.get("kl_coef", 0.0), vf_coef=0.5, max_grad_norm=s.get("max_grad_norm", 1.0),
               policy_kwargs=_policy_kwargs(s, reference_kl=True),
               seed=s["seed"], device=s["device"], verbose=0)


def _a2c(env: VecEnv, s: dict[str, Any]) -> BaseAlgorithm:
    return A2C(_policy(s), env, rollout_buffer_class=s.get("rollout_buffer_class"), learning_rate=s["lr"], n_steps=s["n_steps"], gamma=1.0, gae_lambda=1.0,
               ent_coef=s.get("kl_coef", 0.0), normalize_advantage=True, use_rms_prop=False,
               policy_kwargs=_policy_kwargs(s, reference_kl=True),
               seed=s["seed"], device=s["device"], verbose=0)


def _trpo(env: VecEnv, s: dict[str, Any]) -> BaseAlgorithm:
    return TRPO(_policy(s), env, rollout_buffer_class=s.get("rollout_buffer_class"), learning_rate=s["lr"], n_steps=s["n_steps"], batch_size=s["minibatch"],
                gamma=1.0, gae_lambda=1.0, target_kl=0.01, n_critic_updates=s["epochs"],
                policy_kwargs=_policy_kwargs(s), seed=s["seed"], device=s["device"], verbose=0)


def _recurrentppo(env: VecEnv, s: dict[str, Any]) -> BaseAlgorithm:
    kw = {**_policy_kwargs(s), "lstm_hidden_size": 128}
    return RecurrentPPO(AdaNATRecurrentPolicy, env, learning_rate=s["lr"], n_steps=s["n_steps"],
                        batch_size=s["minibatch"], n_epochs=s["epochs"], gamma=1.0, gae_lambda=1.0, ent_coef=0.0,
                        policy_kwargs=kw, seed=s["seed"], device=s["device"], verbose=0)


def _td3(env: VecEnv, s: dict[str, Any]) -> BaseAlgorithm:
    n = env.action_space.shape[0]
    # the action space is [-bound, bound]; TD3 acts in [-1, 1], so the noise sigma is the std / bound
    noise = NormalActionNoise(np.zeros(n), np.full(n, s.get("std", StdSchedule().init)) / np.abs(env.action_space.high))
    return TD3("MlpPolicy", env, learning_rate=s["lr"], buffer_size=s.get("buffer_size", 50_000),
               learning_starts=s.get("learning_starts", env.num_envs * 4), batch_size=s["minibatch"], gamma=1.0,
               train_freq=1, gradient_steps=1, action_noise=noise, seed=s["seed"], device=s["device"], verbose=0)


def _sac(env: VecEnv, s: dict[str, Any]) -> BaseAlgorithm:
    return SAC("MlpPolicy", env, learning_rate=s["lr"], buffer_size=s.get("buffer_size", 50_000),
               learning_starts=s.get("learning_starts", env.num_envs * 4), batch_size=s["minibatch"], gamma=1.0,
               train_freq=1, gradient_steps=1, seed=s["seed"], device=s["device"], verbose=0)


#: ARS's default number of search directions: one update evaluates 2 x this many candidates, each on a whole env batch.
ARS_N_DELTA = 4


def _ars(env: VecEnv, s: dict[str, Any]) -> BaseAlgorithm:
    return ARS("LinearPolicy", env, n_delta=s.get("n_delta", ARS_N_DELTA), learning_rate=s.get("ars_lr", 0.02),
               delta_std=s.get("delta_std", 0.05), n_eval_episodes=env.num_envs, seed=s["seed"],
               device=s["device"], verbose=0)


#: Algorithms whose rollout buffer can live on the device (:mod:`agents.device_buffer`; RecurrentPPO hard-codes
#: its buffers, the off-policy ones use replay buffers, ARS none).
DEVICE_BUFFER_ALGOS = ("ppo", "a2c", "trpo")

#: The registry: name -> :class:`AlgoSpec`.
ALGOS: dict[str, AlgoSpec] = {
    "ppo": AlgoSpec(_ppo, notes="the paper's algorithm"),
    "a2c": AlgoSpec(_a2c),
    "trpo": AlgoSpec(_trpo),
    "recurrentppo": AlgoSpec(_recurrentppo),
    "td3": AlgoSpec(_td3, pooled=True, on_policy=False, action_bound=3.0),
    "sac": AlgoSpec(_sac, pooled=True, on_policy=False, action_bound=3.0),
    "ars": AlgoSpec(_ars, pooled=True, action_bound=3.0),
}


def make_algo(name: str, env: VecEnv, **settings: Any) -> BaseAlgorithm:
    """Build algorithm ``name`` on an SB3 ``env``.

    :param name: a key of :data:`ALGOS`.
    :param env: the SB3 VecEnv (pooled observations for ``pooled`` algorithms).
    :param settings: ``lr``, ``n_steps`` (rollout length per env), ``minibatch``, ``epochs``, ``seed``,
        ``device``, ``std`` (initial exploration std), ``kl_coef`` (PPO / A2C: coefficient of the KL to the
        reference schedule, see :class:`~agents.policies.FixedStdMixin`; 0 = none), ``policy`` (a key of
        :data:`POLICIES`: ``"adaptive"``, ``"step-only"``, ``"class-step"`` or ``"confidence"``, which needs
        an env built with ``confidence=True``),
        ``rollout_buffer_class`` (PPO / A2C / TRPO; e.g. :class:`~agents.device_buffer.DeviceDictRolloutBuffer`) and
        algorithm-specific extras (``clip_range``, ``buffer_size``, ``n_delta``, ...).
    """
    key = name.lower()
    if key not in ALGOS:
        raise ValueError(f"unknown algorithm {name!r}; choose one of {', '.join(ALGOS)}")
    return ALGOS[key].build(env, settings)
