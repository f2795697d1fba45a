r"""Split credit: one reward for the schedule every sample shares, another for how each sample departs from it.

With a Gaussian policy, actions :math:`a = \mu(s) + \varepsilon`, and samples that all take T steps, the
policy-gradient credit of a batch of episodes has two parts:

- the part of the reward that is **linear in the episode's actions**, :math:`r_{lin} = c + \beta^\top a` (the
  least-squares fit over the batch, all T steps' actions as regressors), is all that the gradient of a schedule
  shared by every sample uses: :math:`\sum_i r_i \varepsilon_i = \sum_i r_{lin,i}\, \varepsilon_i` exactly, since
  the noise lies in the span of the actions;
- the rest, :math:`r - r_{lin}`, reaches only a policy whose action depends on the sample's own state, through
  the covariance of the reward with :math:`\varepsilon \otimes s` (which actions pay *for which samples*).

:class:`SampleCreditWrapper` keeps the env's reward for the first part and takes the second from another reward,
rescaled to the spread of the part it replaces:

.. math:: r = P r_{env} + \frac{\mathrm{std}((1-P)\, r_{env})}{\mathrm{std}((1-P)\, r_{rank})}\,(1-P)\, r_{rank}

with :math:`P` the projection onto :math:`\mathrm{span}\{1, a_{\cdot,1..T}\}` over the samples that finish
together. The use it was built for: the adversarial reward (a discriminator on the NAT's own features) learns the
shared schedule well but ranks per-sample choices the other way round from in-domain judges (docs/results.md,
"Which judge?"); here the shared schedule keeps it while the per-sample response is credited by a ranking in
another network's feature space: each sample's jackknife share of the FID of a pool of recent generations
(:class:`~rewards.fid_reward.BatchFIDReward` with ``pool``).

It needs a fixed step count (every sample finishes at step T) and a batch wider than the regressors
(``num_envs > 1 + T * action_dim``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium.vector import VectorEnv, VectorWrapper

from adanat_env.envs.spec import decoding_spec_of
from adanat_env.wrappers import RewardModel, _score

__all__ = ["SampleCreditWrapper", "split_credit"]


def split_credit(env_reward: np.ndarray, rank_reward: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """``P env_reward + s (1 - P) rank_reward`` (module docstring), in float64.

    :param env_reward: (n,) the env's terminal rewards.
    :param rank_reward: (n,) the ranking reward of the same samples.
    :param actions: (n, k) each sample's actions of every step, flattened.
    """
    n = len(env_reward)
    a = np.asarray(actions, dtype=np.float64).reshape(n, -1)
    if n <= 1 + a.shape[1]:
        raise ValueError(f"split credit needs more finishing samples ({n}) than regressors ({1 + a.shape[1]}: 1 + "
                         "every step's actions); use a larger --batch-size")
    spread = a.std(0)
    a = (a[:, spread > 1e-8] - a.mean(0)[spread > 1e-8]) / spread[spread > 1e-8]  # constant actions: the intercept
    x = np.concatenate([np.ones((n, 1)), a], axis=1)

    def fit(y: np.ndarray) -> np.ndarray:
        return x @ np.linalg.lstsq(x, y, rcond=None)[0]

    r_env, r_rank = np.asarray(env_reward, np.float64), np.asarray(rank_reward, np.float64)
    lin = fit(r_env)
    rest_env, rest_rank = r_env - lin, r_rank - fit(r_rank)
    scale = rest_env.std() / max(rest_rank.std(), 1e-12)
    return lin + scale * rest_rank


class SampleCreditWrapper(VectorWrapper):
    """The env's terminal reward for the shared schedule, ``rank_reward``'s for the per-sample part (module docstring).

    Put it directly around the wrapper that places the env's reward (e.g.
    :class:`~rewards.adversarial.AdversarialRewardWrapper`).

    :param env: the AdaNAT vector env with its reward attached, fixed step count.
    :param rank_reward: ``(images, labels) -> (B,)``, e.g. a pooled :class:`~rewards.fid_reward.BatchFIDReward`;
        its ``state_dict`` (if any) is part of this wrapper's.
    :param state: the env reward's checkpoint state (e.g. the adversarial wrapper: its discriminator), also part of
        this wrapper's ``state_dict``; ``None``: none.
    """

    def __init__(self, env: VectorEnv, rank_reward: RewardModel, state: Any = None) -> None:
        super().__init__(env)
        spec = decoding_spec_of(env)
        if spec.adaptive:
            raise ValueError("split credit needs a fixed step count (every sample finishes at step T); drop "
                             "--adaptive-steps")
        self.rank_reward = rank_reward
        self.inner_state = state
        self.steps = int(spec.steps)
        self._actions: np.ndarray | None = None  # (B, T, action_dim) of the running episodes
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._t = 0
        return self.env.reset(seed=seed, options=options)

    def step(self, actions):
        a = np.asarray(actions.detach().cpu() if isinstance(actions, torch.Tensor) else actions, dtype=np.float64)
        if self._actions is None or self._actions.shape[0] != a.shape[0]:
            self._actions = np.zeros((a.shape[0], self.steps, a.shape[-1]))
        self._actions[:, self._t] = a.reshape(a.shape[0], -1)
        obs, rewards, terminated, truncated, infos = self.env.step(actions)
        self._t += 1
        if terminated.any():
            base = self.env.unwrapped
            rows = base.final_index
            rank = _score(self.rank_reward, base.final_images, base.final_labels, base.generator.device)
            rewards = np.array(rewards, dtype=np.float32)
            rewards[rows] = split_credit(rewards[rows], rank, self._actions[rows].reshape(len(rows), -1))
            self._t = 0
        return obs, rewards, terminated, truncated, infos

    def state_dict(self) -> dict[str, Any]:
        own = getattr(self.rank_reward, "state_dict", None)
        return {"env": None if self.inner_state is None else self.inner_state.state_dict(),
                "rank": own() if own else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("env") is not None:
            self.inner_state.load_state_dict(state["env"])
        if state.get("rank") is not None:
            self.rank_reward.load_state_dict(state["rank"])
