"""Run a trained SB3 policy as a generation :class:`~adanat_env.policy.Policy` (for sampling, evaluation and
the discriminator's fresh generations), on tensors: no numpy round trip of the NAT features.

The observation is built exactly as the env builds it (``features``, ``step``, ``label``; or the pooled flat
vector of :class:`~adanat_env.wrappers.PooledObservation`), the raw action is clipped to the env's bounds and
mapped to step parameters by the env's :class:`~adanat_env.actions.ActionMapping`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces

from adanat_env.decoding import StepParams
from adanat_env.envs.adanat import DEFAULT_ACTION_BOUND
from adanat_env.actions import ActionMapping
from adanat_env.policy import PolicyInput

__all__ = ["SB3GenerationPolicy"]


class SB3GenerationPolicy:
    """``policy(PolicyInput) -> StepParams`` from an SB3 model's policy.

    :param model: an SB3 / sb3-contrib model (or its ``.policy``) trained on an AdaNAT env.
    :param num_steps: T of the env it was trained on.
    :param residual: the env's ``residual`` (``"heuristic"`` or ``"none"``).
    :param deterministic: use the mean action (evaluation) instead of sampling (exploration).
    :param action_bound: the env's action bound.
    """

    def __init__(self, model, num_steps: int, residual: str = "heuristic", deterministic: bool = True,
                 action_bound: float = DEFAULT_ACTION_BOUND) -> None:
        self.policy = getattr(model, "policy", model)
        self.num_steps = int(num_steps)
        self.mapping = ActionMapping(num_steps, residual=residual == "heuristic")
        self.deterministic = deterministic
        self.bound = float(action_bound)
        self.pooled = not isinstance(self.policy.observation_space, spaces.Dict)
        self.recurrent = hasattr(self.policy, "lstm_actor")
        self._lstm = None

    def observation(self, inp: PolicyInput) -> dict[str, torch.Tensor] | torch.Tensor:
        dev = self.policy.device
        b = inp.labels.shape[0]
        if self.pooled:
            c = self.policy.observation_space.shape[0] - inp.features.shape[-1] - 1
            return torch.cat([inp.features.float().mean(1).to(dev),
                              torch.full((b, 1), inp.step / inp.num_steps, device=dev),
                              F.one_hot(inp.labels.long().to(dev), c).float()], dim=1)
        return {"features": inp.features.float().to(dev), "step": torch.full((b, 1), inp.step, device=dev),
                "label": inp.labels.reshape(-1, 1).to(dev)}

    def raw_actions(self, inp: PolicyInput) -> torch.Tensor:
        """(B, 4) raw actions, clipped to the env's bounds (on the host)."""
        obs = self.observation(inp)
        with torch.no_grad():
            if self.recurrent:
                a, self._lstm = self.policy.predict(
                    {k: v.cpu().numpy() for k, v in obs.items()} if isinstance(obs, dict) else obs.cpu().numpy(),
                    state=None if inp.step == 0 else self._lstm,
                    episode_start=np.full(inp.labels.shape[0], inp.step == 0), deterministic=self.deterministic)
                a = torch.as_tensor(a)
            else:
                a = self.policy._predict(obs, deterministic=self.deterministic)
                if getattr(self.policy, "squash_output", False):  # SAC / TD3 act in [-1, 1]
                    a = a * self.bound
        return a.float().cpu().clamp(-self.bound, self.bound)

    def __call__(self, inp: PolicyInput) -> StepParams:
        if inp.num_steps != self.num_steps:
            raise ValueError(f"the policy was trained for T={self.num_steps}, generation asks for {inp.num_steps}")
        was_training = self.policy.training
        self.policy.set_training_mode(False)
        try:
            return self.mapping(self.raw_actions(inp), inp.step)
        finally:
            self.policy.set_training_mode(was_training)
