"""SB3 policies for AdaNAT: the official actor / critic design, fixed scheduled exploration std, and a
non-adaptive variant.

How the official network maps onto SB3's ``ActorCriticPolicy``
------------------------------------------------------------
The official actor and critic are two separate :class:`~agents.policy_net.PolicyNet` s. In SB3 terms each
trunk (everything up to the last GELU) is a features extractor (:class:`AdaNATExtractor`, with
``share_features_extractor=False`` so the actor and the critic get their own), the MLP extractor is empty
(``net_arch=[]``), and SB3's ``action_net`` / ``value_net`` are the official zero-initialised ``linear3``
layers. So the initial mean action is exactly 0 (with ``residual="heuristic"``: the heuristic schedule) and
:func:`~agents.official.load_official_policy` can copy an official checkpoint's actor in key for key.

Exploration (paper Eq. 9): a Gaussian with a FIXED standard deviation that follows a decay
schedule (:class:`StdSchedule`), not a learned ``log_std``. :class:`FixedStdMixin` turns SB3's ``log_std``
parameter into a buffer (kept in ``state_dict`` / save-load, out of the optimizer); the entropy bonus is then a
constant, as in the official code. Change it only between rollouts (:class:`~agents.callbacks.StdScheduleCallback`),
never inside ``train()``, or the PPO ratio would be wrong. Evaluation uses the deterministic mean.

Policies (usable by name through :mod:`agents.registry` or directly as ``policy=`` classes):

- :class:`AdaNATPolicy` (PPO, A2C, TRPO): adaptive, sees the NAT features and the step.
- :class:`StepOnlyPolicy`: the learnable NON-adaptive variant of the paper's Table 5 (middle row): the same
  head, but the extractor sees only the step index, so it learns one schedule for every sample.
- :class:`ClassStepPolicy`: one learned schedule per class (sees the step and the label, not the canvas): what
  per-class adaptation alone buys.
- :class:`ConfidencePolicy`: the step-only schedule plus a per-step linear response to how sure the NAT is of
  each sample's canvas (the env's ``"confidence"`` observation, two standardised statistics): per-sample
  adaptation through a handful of weights instead of a wide learned latent.
- :class:`AdaNATRecurrentPolicy` (RecurrentPPO): the adaptive trunk followed by SB3-contrib's LSTM.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from gymnasium import spaces
from sb3_contrib.common.recurrent.policies import RecurrentMultiInputActorCriticPolicy
from stable_baselines3.common.distributions import DiagGaussianDistribution
from stable_baselines3.common.policies import MultiInputActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from .policy_net import PolicyTrunk, _StepEmbedder, default_width

__all__ = ["StdSchedule", "AdaNATExtractor", "StepOnlyExtractor", "ClassStepExtractor", "ConfidenceStepExtractor",
           "AdaNATGaussian", "FixedStdMixin", "AdaNATPolicy", "StepOnlyPolicy", "ClassStepPolicy", "ConfidencePolicy",
           "AdaNATRecurrentPolicy", "grid_of"]


@dataclass(frozen=True)
class StdSchedule:
    """Exploration std after ``k`` policy updates: ``max(init - rate * #{d in decay_steps: k >= d}, minimum)``.

    The official ImageNet run: ``StdSchedule(0.6, (500,), 0.3, 0.1)`` (0.6 for updates 0..499, then 0.3).

    :param init: initial std (every action dimension).
    :param decay_steps: update counts at which the std drops by ``rate``.
    :param rate: the drop.
    :param minimum: lower bound.
    """

    init: float = 0.6
    decay_steps: tuple[int, ...] = (500,)
    rate: float = 0.3
    minimum: float = 0.1

    def __call__(self, num_updates: int) -> float:
        drops = sum(int(num_updates >= d) for d in self.decay_steps)
        return max(self.init - self.rate * drops, self.minimum)


def grid_of(num_tokens: int) -> tuple[int, int]:
    """The square (h, w) token grid of ``num_tokens`` tokens (49 -> 7 x 7, 256 -> 16 x 16)."""
    side = math.isqrt(num_tokens)
    if side * side != num_tokens:
        raise ValueError(f"the policy needs a square token grid, got {num_tokens} tokens")
    return side, side


def _check_obs_space(observation_space: spaces.Space) -> spaces.Box:
    if not isinstance(observation_space, spaces.Dict) or "features" not in observation_space.spaces \
            or "step" not in observation_space.spaces:
        raise ValueError("AdaNAT policies need the env's Dict observation with 'features' (N, D) and 'step'; "
                         f"got {observation_space}. (Pooled Box observations go with MlpPolicy.)")
    return observation_space["features"]


class AdaNATExtractor(BaseFeaturesExtractor):
    """The official trunk as an SB3 features extractor: {features (B, N, D), step (B, 1)} -> (B, hidden).

    :param observation_space: the env's Dict observation space.
    :param hidden: the trunk width; ``None``: :func:`~agents.policy_net.default_width` of D (the official 512
        for the ImageNet backbones, 128 for the embedded default).
    """

    def __init__(self, observation_space: spaces.Dict, hidden: int | None = None) -> None:
        feats = _check_obs_space(observation_space)
        n, d = feats.shape
        hidden = default_width(d) if hidden is None else hidden
        super().__init__(observation_space, hidden)
        self.net = PolicyTrunk(d, grid_of(n), hidden)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.net(observations["features"].float(), observations["step"].reshape(-1).long())


class StepOnlyExtractor(BaseFeaturesExtractor):
    """Non-adaptive: sees only the step index. Sinusoidal embedding -> MLP -> GELU(Linear) -> (B, hidden).

    :param observation_space: the env's Dict observation space (only ``step`` is read).
    :param hidden: embedding width; ``None``: the adaptive trunk's default for these features.
    """

    def __init__(self, observation_space: spaces.Dict, hidden: int | None = None) -> None:
        feats = _check_obs_space(observation_space)
        hidden = default_width(feats.shape[1]) if hidden is None else hidden
        super().__init__(observation_space, hidden)
        self.t_embedder = _StepEmbedder(hidden)
        self.out = nn.Linear(hidden, hidden)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        return nn.functional.gelu(self.out(self.t_embedder(observations["step"].reshape(-1).long())))


class ClassStepExtractor(BaseFeaturesExtractor):
    """Per-class schedule: sees the step index and the class label, not the canvas (one schedule per class).

    :param observation_space: the env's Dict observation space (``step`` and ``label`` are read).
    :param hidden: embedding width; ``None``: the adaptive trunk's default for these features.
    """

    def __init__(self, observation_space: spaces.Dict, hidden: int | None = None) -> None:
        feats = _check_obs_space(observation_space)
        if "label" not in observation_space.spaces:
            raise ValueError("the per-class policy needs the env's 'label' observation")
        hidden = default_width(feats.shape[1]) if hidden is None else hidden
        super().__init__(observation_space, hidden)
        self.t_embedder = _StepEmbedder(hidden)
        self.y_embedder = nn.Embedding(int(observation_space["label"].high.max()) + 1, hidden)
        nn.init.normal_(self.y_embedder.weight, std=0.02)
        self.out = nn.Linear(hidden, hidden)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        c = self.t_embedder(observations["step"].reshape(-1).long())
        c = c + self.y_embedder(observations["label"].reshape(-1).long())
        return nn.functional.gelu(self.out(c))


class ConfidenceStepExtractor(BaseFeaturesExtractor):
    """The step-only embedding plus each sample's canvas confidence, standardised per step.

    Output: ``[GELU(Linear(step embedding)) (hidden), z (x) onehot(step) (2 (T + 1))]``, where ``z`` are the mean
    and the spread over the token positions of the ``"confidence"`` observation (each position's largest
    conditional log probability), each minus its per-step mean and over its per-step std. Through the linear
    action head this is ``shared(t) + W_t z``: a schedule for all samples plus, at each step, a linear response to
    how sure the NAT is of this sample's canvas (zero-initialised: the policy starts at the step-only schedule).
    Because ``z`` is centred per step, the mean action of a step is its shared schedule.

    The per-step mean and std are buffers, measured on each rollout's observations and put in use at the start of
    the next rollout (:class:`~agents.callbacks.CanvasStatsCallback`), so a rollout and the update after it see the
    same standardisation, and a checkpoint (which holds both) resumes exactly.

    :param observation_space: the env's Dict observation space, built with ``confidence=True``.
    :param hidden: step-embedding width; ``None``: the adaptive trunk's default for these features.
    """

    num_stats = 2

    def __init__(self, observation_space: spaces.Dict, hidden: int | None = None) -> None:
        feats = _check_obs_space(observation_space)
        if "confidence" not in observation_space.spaces:
            raise ValueError("the confidence policy needs the env's 'confidence' observation: build the env with "
                             "confidence=True (the trainer does so for --policy confidence)")
        hidden = default_width(feats.shape[1]) if hidden is None else hidden
        self.rows = int(observation_space["step"].high.max()) + 1  # steps 0 .. T (T: terminal observations)
        super().__init__(observation_space, hidden + self.num_stats * self.rows)
        self.t_embedder = _StepEmbedder(hidden)
        self.out = nn.Linear(hidden, hidden)
        for name, value in (("stat_mean", 0.0), ("stat_std", 1.0), ("next_mean", 0.0), ("next_std", 1.0)):
            self.register_buffer(name, torch.full((self.rows, self.num_stats), value))

    @staticmethod
    def statistics(confidence: torch.Tensor) -> torch.Tensor:
        """(B, 2): the mean and the std over the positions of (B, N) token confidences."""
        c = confidence.float()
        return torch.stack([c.mean(-1), c.std(-1)], dim=-1)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        step = observations["step"].reshape(-1).long().clamp(0, self.rows - 1)
        z = (self.statistics(observations["confidence"]) - self.stat_mean[step]) / self.stat_std[step]
        per_step = (nn.functional.one_hot(step, self.rows).float()[:, :, None] * z.clamp(-5, 5)[:, None, :]).flatten(1)
        return torch.cat([nn.functional.gelu(self.out(self.t_embedder(step))), per_step], dim=1)

    @torch.no_grad()
    def observe(self, confidence: torch.Tensor, step: torch.Tensor) -> None:
        """Measure the per-step mean and std of the statistics on a rollout's (M, N) confidences and (M,) steps;
        they are used from the next :meth:`advance` on (steps not seen keep their values)."""
        dev = self.next_mean.device
        stats, step = self.statistics(confidence.to(dev)), step.reshape(-1).long().to(dev)
        for t in range(self.rows):
            rows = stats[step == t]
            if len(rows) > 1:
                self.next_mean[t] = rows.mean(0)
                self.next_std[t] = rows.std(0).clamp_min(1e-4)

    @torch.no_grad()
    def advance(self) -> None:
        """Put the last measured standardisation in use (between rollouts only: a change inside an update would make
        the PPO ratio wrong)."""
        self.stat_mean.copy_(self.next_mean)
        self.stat_std.copy_(self.next_std)


class AdaNATGaussian(DiagGaussianDistribution):
    """SB3's diagonal Gaussian with the fixed-std policies' option (see :class:`FixedStdMixin`): with
    ``reference_kl``, ``entropy()`` is ``H(pi) - KL(pi || N(0, std^2))``; with a fixed std,
    ``KL = sum |mean|^2 / (2 std^2)`` over the action dimensions.
    """

    def __init__(self, action_dim: int, reference_kl: bool = False) -> None:
        super().__init__(action_dim)
        self.reference_kl = reference_kl

    def entropy(self) -> torch.Tensor:
        h = super().entropy()
        if not self.reference_kl:
            return h
        std = self.distribution.stddev
        return h - (self.distribution.mean.square() / (2 * std.square())).sum(-1)


class FixedStdMixin:
    """Replace SB3's learned ``log_std`` by a buffer (fixed std, set from outside) and zero the output heads.

    Put it before the SB3 policy class in the bases. ``log_std_init`` sets the initial std as usual.

    **KL to the reference schedule** (``reference_kl=True``): with a fixed std the entropy is a constant, so the
    entropy slot of SB3's loss is free. The action distribution (:class:`AdaNATGaussian`) then reports
    ``H(pi) - KL(pi || pi_ref)`` as its entropy, with
    ``pi_ref = N(0, std^2)``, the same exploration around a zero raw action (with ``residual="heuristic"``: the
    heuristic schedule), and ``KL = |mean|^2 / (2 std^2)`` summed over the action dimensions. The algorithm's
    ``ent_coef`` becomes the KL coefficient: the KL-regularised objective used against reward over-optimisation
    in RL fine-tuning of generators (RLHF, DPOK). Works with every SB3 algorithm that adds
    ``ent_coef * entropy_loss`` (PPO, A2C).
    """

    log_std: torch.Tensor
    reference_kl: bool = False

    def _build(self, lr_schedule) -> None:  # type: ignore[no-untyped-def]
        super()._build(lr_schedule)  # type: ignore[misc]
        if getattr(self, "use_sde", False):
            raise ValueError("fixed-std AdaNAT policies need use_sde=False")
        init = self.log_std.detach().clone()
        del self.log_std
        self.register_buffer("log_std", init)  # type: ignore[attr-defined]
        for head in (self.action_net, self.value_net):  # type: ignore[attr-defined]
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        self.action_dist = AdaNATGaussian(self.action_dist.action_dim, self.reference_kl)  # type: ignore[attr-defined]
        # the optimizer SB3 built holds the old log_std parameter: rebuild it without
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)  # type: ignore[attr-defined]

    def evaluate_actions(self, *args: Any, **kwargs: Any) -> Any:
        """SB3's ``evaluate_actions``; once :func:`agents.data_parallel.data_parallel` has attached DDP, calls with
        gradients on go through it (their gradients are averaged over the ranks in ``backward()``)."""
        ddp = self.__dict__.get("_data_parallel")
        if ddp is not None and torch.is_grad_enabled():
            return ddp(*args, **kwargs)
        return self.local_evaluate_actions(*args, **kwargs)

    def local_evaluate_actions(self, *args: Any, **kwargs: Any) -> Any:
        """SB3's own ``evaluate_actions`` on this process alone."""
        return super().evaluate_actions(*args, **kwargs)  # type: ignore[misc]

    @property
    def action_std(self) -> float:
        return float(self.log_std.exp().mean())

    def set_action_std(self, std: float | Sequence[float]) -> None:
        """Set the exploration std (a scalar or one value per action dimension). Call between rollouts."""
        value = torch.as_tensor(std, dtype=self.log_std.dtype, device=self.log_std.device).expand_as(self.log_std)
        if not bool(torch.isfinite(value).all()) or bool((value <= 0).any()):
            raise ValueError(f"the exploration std must be finite and > 0, got {std}")
        with torch.no_grad():
            self.log_std.copy_(value.log())


def _defaults(kwargs: dict[str, Any], extractor: type[BaseFeaturesExtractor]) -> tuple[dict[str, Any], bool]:
    reference_kl = bool(kwargs.pop("reference_kl", False))
    kwargs.setdefault("features_extractor_class", extractor)
    kwargs.setdefault("share_features_extractor", False)
    kwargs.setdefault("net_arch", [])
    kwargs.setdefault("ortho_init", False)  # the trunks carry the official initialisation
    kwargs.setdefault("log_std_init", math.log(StdSchedule().init))
    return kwargs, reference_kl


class _FixedStdActorCritic(FixedStdMixin, MultiInputActorCriticPolicy):
    """The shared construction of the two feed-forward policies; ``extractor`` is the trunk class."""

    extractor: type[BaseFeaturesExtractor] = AdaNATExtractor

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs, self.reference_kl = _defaults(kwargs, self.extractor)
        super().__init__(*args, **kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "reference_kl": self.reference_kl}


class AdaNATPolicy(_FixedStdActorCritic):
    """Adaptive actor-critic for PPO / A2C / TRPO (see module docstring). Accepts SB3's policy kwargs."""

    extractor = AdaNATExtractor


class StepOnlyPolicy(_FixedStdActorCritic):
    """Learnable non-adaptive schedule: sees only the step index (paper Table 5, middle row)."""

    extractor = StepOnlyExtractor


class ClassStepPolicy(_FixedStdActorCritic):
    """One learned schedule per class (:class:`ClassStepExtractor`)."""

    extractor = ClassStepExtractor


class ConfidencePolicy(_FixedStdActorCritic):
    """The step-only schedule plus a per-step linear response to the canvas's confidence
    (:class:`ConfidenceStepExtractor`; the env must observe ``"confidence"``)."""

    extractor = ConfidenceStepExtractor
    #: the env observation this policy needs (the trainer builds its env with it)
    needs_confidence = True

    def hold_shared(self) -> None:
        """Hold the shared schedule fixed: the actor's step path and the action head's bias get no gradient, nor do
        the head's columns that read the step path; only the per-sample response (the head's last ``2 (T + 1)``
        columns) and the critic learn. Adam moves a weight whose gradient was always zero by exactly zero."""
        extractor = self.pi_features_extractor
        for p in extractor.parameters():
            p.requires_grad_(False)
        self.action_net.bias.requires_grad_(False)
        shared = torch.zeros_like(self.action_net.weight, dtype=torch.bool)
        shared[:, : extractor.features_dim - extractor.num_stats * extractor.rows] = True
        self.action_net.weight.register_hook(lambda g: g.masked_fill(shared, 0.0))

    def hold_sample(self) -> None:
        """Hold the per-sample response (the action head's last ``2 (T + 1)`` columns) where it is, zero in a fresh or
        step-only-initialised policy: the actor is a step-only schedule while the critic still reads the canvas's
        confidence. The ablation that separates what the per-sample response itself buys from what the critic and
        the credit buy."""
        extractor = self.pi_features_extractor
        sample = torch.zeros_like(self.action_net.weight, dtype=torch.bool)
        sample[:, extractor.features_dim - extractor.num_stats * extractor.rows:] = True
        self.action_net.weight.register_hook(lambda g: g.masked_fill(sample, 0.0))


class AdaNATRecurrentPolicy(FixedStdMixin, RecurrentMultiInputActorCriticPolicy):
    """Adaptive trunk + LSTM for sb3-contrib's RecurrentPPO."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs, reference_kl = _defaults(kwargs, AdaNATExtractor)
        if reference_kl:
            raise ValueError("reference_kl is not supported by the recurrent policy")
        super().__init__(*args, **kwargs)
