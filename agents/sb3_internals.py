"""The only place this project reads or writes Stable-Baselines3 state that SB3 keeps private, each use with the
reason it is needed.

Everything else extends SB3 through the hooks it offers: policy subclasses (:mod:`agents.policies`, which
override ``_build`` / ``_predict`` as SB3 policies do), callbacks (:mod:`agents.callbacks`), a replaced
``action_noise``, a ``VecEnv`` subclass (:mod:`adanat_env.sb3`, which consumes the seeds and options slots SB3
gives its subclasses) and ``learn()``.
"""

from __future__ import annotations

import torch
from sb3_contrib import ARS
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy

__all__ = ["predict_tensor", "restart_rollouts", "generations_done"]


def predict_tensor(policy: BasePolicy, obs: dict[str, torch.Tensor] | torch.Tensor, deterministic: bool) -> torch.Tensor:
    """Actions for observations that are already tensors on the policy's device.

    Why private: the public ``predict()`` takes numpy and copies the (B, N, D) NAT features to the host and
    back for every step; ``_predict`` is the tensor path that ``predict()`` itself calls, for every SB3 and
    sb3-contrib policy class (actor-critic, TD3, SAC, ARS).
    """
    return policy._predict(obs, deterministic=deterministic)


def restart_rollouts(model: BaseAlgorithm) -> None:
    """Make the next ``learn()`` start from a freshly reset (and freshly seeded) env batch.

    Why private: ``learn(reset_num_timesteps=False)`` keeps the last observation of the previous call, so an
    iteration's first batch would depend on the previous iteration's env state and a resumed run (new process,
    no such state) could not match an uninterrupted one. SB3 resets the env in ``learn()`` exactly when
    ``_last_obs`` is ``None``; ``reset_num_timesteps=True`` would do it publicly but also zeroes the step count
    that off-policy algorithms use for ``learning_starts``.
    """
    model._last_obs = None  # type: ignore[assignment]


def generations_done(model: BaseAlgorithm, steps: int) -> int:
    """Episodes (generations) the model has rolled out so far, from its public ``num_timesteps``.

    Not private state, but a quirk to correct: sb3-contrib's ARS counts ``n_envs`` timesteps for *each* env at
    every vector step (its ``evaluate_policy`` callback runs once per env), so its ``num_timesteps`` is ``n_envs``
    times the steps actually taken. Every other algorithm counts one per env step.

    :param steps: T, the steps of one episode.
    """

    n = int(model.num_timesteps) // int(steps)
    return n // int(model.n_envs) if isinstance(model, ARS) else n
