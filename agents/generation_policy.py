"""Run a trained SB3 policy as a generation :class:`~adanat_env.policy.Policy` (for sampling, evaluation and
the discriminator's fresh generations), on tensors: no numpy round trip of the NAT features.

Observations are built, and raw actions clipped and mapped, by the env's own
:class:`~adanat_env.envs.DecodingSpec` (:meth:`SB3GenerationPolicy.from_env`): the env <-> policy contract is
written once, in the env.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from adanat_env.decoding import StepParams
from adanat_env.envs import DecodingSpec, decoding_spec_of
from adanat_env.policy import PolicyInput, StepDecision

from .sb3_internals import predict_tensor

__all__ = ["SB3GenerationPolicy", "check_model_fits"]


class SB3GenerationPolicy:
    """``policy(PolicyInput) -> StepParams`` from an SB3 model's policy.

    Build it with :meth:`from_env`; the constructor takes the env's spec for callers that hold one.

    :param model: an SB3 / sb3-contrib model (or its ``.policy``) trained on an AdaNAT env.
    :param spec: the training env's :class:`~adanat_env.envs.DecodingSpec`.
    :param deterministic: use the mean action (evaluation) instead of sampling (exploration).
    :param stop: adaptive step counts only: how a deterministic policy decides to stop. ``"sampled"`` (default):
        as in training, the stop component is drawn around its mean with the policy's exploration std, so a
        sample stops at a step with probability ``Phi((mean - threshold) / std)``: the policy's four step
        parameters are its mean, its stop rate is the one it was trained (and rewarded) with. ``"mean"``: the
        mean stop action against the threshold (a policy whose mean stays below it never stops early, however
        often it stopped in training). Drawn from a generator seeded with ``stop_seed``: reproducible.
    :param stop_seed: seed of that generator.
    """

    def __init__(self, model: Any, spec: DecodingSpec, deterministic: bool = True, stop: str = "sampled",
                 stop_seed: int = 0) -> None:
        if stop not in ("sampled", "mean"):
            raise ValueError(f"stop must be 'sampled' or 'mean', got {stop!r}")
        self.policy = getattr(model, "policy", model)
        self.spec = spec
        self.deterministic = deterministic
        self.stop = stop
        self._stop_rng = torch.Generator().manual_seed(int(stop_seed))
        self.pooled = not isinstance(self.policy.observation_space, spaces.Dict)
        self.recurrent = hasattr(self.policy, "lstm_actor")
        self._lstm = None

    @classmethod
    def from_env(cls, model: Any, env: Any, deterministic: bool = True) -> SB3GenerationPolicy:
        """The policy of ``model`` acting as it acts in ``env`` (any AdaNAT env, wrapped, or its SB3 VecEnv).

        :param model: the SB3 model (or policy).
        :param env: the env the model was trained on.
        :param deterministic: mean action (evaluation) or sampled (exploration).
        """
        spec = decoding_spec_of(env)
        trained = None  # the spec of the env the model holds, where it holds one (a model loaded bare holds none)
        own_env = model.get_env() if callable(getattr(model, "get_env", None)) else None
        if own_env is not None:
            try:
                trained = decoding_spec_of(own_env)
            except TypeError:  # trained on something else: only its spaces can be compared
                pass
        check_model_fits(getattr(model, "policy", model), spec, trained)
        return cls(model, spec, deterministic)

    @property
    def num_steps(self) -> int:
        """T (T_max for an adaptive-step policy)."""
        return self.spec.steps

    @property
    def adaptive_steps(self) -> bool:
        """Trained with the stop action: calls return :class:`~adanat_env.policy.StepDecision`."""
        return self.spec.adaptive

    def observation(self, inp: PolicyInput) -> dict[str, torch.Tensor] | torch.Tensor:
        dev = self.policy.device
        labels = inp.labels.to(dev)
        if self.pooled:
            return self.spec.pooled_observation(inp.features.to(dev), inp.step, labels)
        logits = None if inp.logits is None or not self.spec.confidence else inp.logits.to(dev)
        obs = self.spec.observation(inp.features.to(dev), inp.step, labels, logits)
        obs["features"] = obs["features"].float()  # the policy computes in float32 whatever the env's dtype
        return obs

    def raw_actions(self, inp: PolicyInput) -> torch.Tensor:
        """(B, 4) raw actions (unclipped; (B, 5) with the stop action), on the host."""
        obs = self.observation(inp)
        with torch.no_grad():
            if self.recurrent:
                a, self._lstm = self.policy.predict(
                    {k: v.cpu().numpy() for k, v in obs.items()} if isinstance(obs, dict) else obs.cpu().numpy(),
                    state=None if inp.step == 0 else self._lstm,
                    episode_start=np.full(inp.labels.shape[0], inp.step == 0), deterministic=self.deterministic)
                a = torch.as_tensor(a)
            else:
                a = predict_tensor(self.policy, obs, self.deterministic)
                if getattr(self.policy, "squash_output", False):  # SAC / TD3 act in [-1, 1]
                    a = a * self.spec.action_bound
        return a.float().cpu()

    def __call__(self, inp: PolicyInput) -> StepParams | StepDecision:
        if inp.num_steps != self.spec.steps:
            raise ValueError(f"the policy was trained for T={self.spec.steps}, generation asks for {inp.num_steps}")
        was_training = self.policy.training
        self.policy.set_training_mode(False)
        try:
            raw = self.raw_actions(inp)
            params = self.spec.step_params(raw, inp.step)
            if not self.spec.adaptive:
                return params
            stop_std = getattr(self.policy, "log_std", None)
            if self.deterministic and self.stop == "sampled" and stop_std is not None:
                raw = raw.clone()
                noise = torch.randn(raw.shape[0], generator=self._stop_rng)
                raw[:, 4] += float(stop_std.detach().exp().reshape(-1)[4].cpu()) * noise
            return StepDecision(params, self.spec.finish(raw))
        finally:
            self.policy.set_training_mode(was_training)


def check_model_fits(policy: Any, spec: DecodingSpec, trained: DecodingSpec | None = None) -> None:
    """Refuse a model trained on another env: its action size (the stop action of adaptive step counts), its step
    count T and its observation's token grid, feature size and classes (Dict observations; a pooled one only by
    its size) must be the env's; with ``trained``, the spec of the env the model was built on, also its action
    mapping (residual, action bound, frozen components). A model loaded without its env carries no residual: sample
    a trained run with :func:`agents.export.load_generation_policy`, which builds the run's own env.

    :raises ValueError: naming what differs, the model's value and the env's.
    """
    def differs(what: str, model: Any, env: Any) -> ValueError:
        return ValueError(f"the model does not fit this env: its {what} is {model}, the env's {env}; build the env "
                          "with the options the model was trained with (its run's config.json)")

    n_actions = 5 if spec.adaptive else 4
    if tuple(policy.action_space.shape) != (n_actions,):
        raise differs("action size (5 = with the stop action of --adaptive-steps)", policy.action_space.shape[0],
                      n_actions)
    obs = policy.observation_space
    if isinstance(obs, spaces.Dict):
        if int(obs["step"].high.max()) != spec.steps:
            raise differs("number of decoding steps T", int(obs["step"].high.max()), spec.steps)
        if tuple(obs["features"].shape) != (spec.num_tokens, spec.feature_dim):
            raise differs("feature shape (tokens, dim)", tuple(obs["features"].shape), (spec.num_tokens, spec.feature_dim))
        if int(obs["label"].high.max()) + 1 != spec.num_classes:
            raise differs("number of classes", int(obs["label"].high.max()) + 1, spec.num_classes)
        if ("confidence" in obs.spaces) != spec.confidence:
            raise differs("token-confidence observation (the env's confidence=)", "confidence" in obs.spaces,
                          spec.confidence)
    elif tuple(obs.shape) != (spec.feature_dim + 1 + spec.num_classes,):
        raise differs("pooled observation size", tuple(obs.shape)[0], spec.feature_dim + 1 + spec.num_classes)
    for what in ("residual", "action_bound", "frozen", "stop_threshold"):
        if trained is not None and getattr(trained, what) != getattr(spec, what):
            raise differs(f"action mapping's {what}", repr(getattr(trained, what)), repr(getattr(spec, what)))

