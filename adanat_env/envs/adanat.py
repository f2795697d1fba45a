"""The frozen NAT decoding process as Gymnasium environments: a native batched vector env and a single env.

Both drive a :class:`~adanat_env.generator.Generator` through the same code path (:class:`_DecodingCore`): the
vector env runs B generations in one batch (one NAT call serves all B), never B copies of the generator; the
single env is the same core with B = 1.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from ..actions import ACTION_NAMES
from ..decoding import StepParams
from ..generator import GenerationState, Generator
from ..inputs import integer, number
from .spec import DEFAULT_ACTION_BOUND, DEFAULT_STOP_THRESHOLD, STOP_ACTION, DecodingSpec, decoding_spec_of

__all__ = ["AdaNATEnv", "AdaNATVectorEnv", "DecodingSpec", "decoding_spec_of", "DEFAULT_ACTION_BOUND",
           "DEFAULT_STOP_THRESHOLD", "STOP_ACTION"]

#: the largest float32: finite float64 actions beyond it are clipped to it (then to the action bound), not made inf
_F32_MAX = float(np.finfo(np.float32).max)

_DOC_SPACES = """
    **Action Space**: ``Box(-10, 10, (4,), float32)`` (``(5,)`` with ``adaptive_steps``, below) of raw pre-activation values (the official raw order,
    :data:`~adanat_env.actions.ACTION_NAMES`, the one place it differs from (m, tau_1, tau_2, w)), mapped to the
    step parameters by :class:`~adanat_env.actions.ActionMapping`. With ``residual="heuristic"`` (default) the map is applied
    on top of the official heuristic schedule, so a zero action reproduces it exactly; ``residual="none"`` is the
    official ``heu=0`` (a zero action gives m = 0.5 and ln 2 elsewhere). Out-of-bounds actions are clipped;
    NaN / inf actions raise ``ValueError`` and leave the episode untouched.

    **Observation Space**: ``Dict`` with
    ``"features"``: ``Box(-inf, inf, (N, D))`` the NAT's final-LayerNorm features of the current canvas
    (conditional pass), ``dtype`` float32 or float16; ``"step"``: ``Box(0, T, (1,), int64)`` the index of the
    step about to be taken (the terminal observation has ``T``); ``"label"``: ``Box(0, C - 1, (1,), int64)``
    the class being generated. (N = 49, D = 128, C = 10 for Fashion-MNIST; N = 256, D = 768, C = 1000 for
    ImageNet-256 L; for ImageNet-512, N = 256 positions of 2 x 2 of its 32 x 32 tokens.) With ``confidence=True``
    also ``"confidence"``: ``Box(-inf, 0, (N_tokens,), float32)``, each token position's largest log probability
    under the NAT's conditional logits (how sure the NAT already is of the canvas; zeros in terminal observations).

    **Rewards**: 0. The env core has no reward model: rewards attach one way, as wrappers that score the decoded
    images at the terminal step (:class:`~adanat_env.wrappers.VectorTerminalRewardWrapper`,
    :class:`~adanat_env.wrappers.TerminalRewardWrapper`; the adversarial reward of :mod:`rewards.adversarial` is
    one). ``gym.make("AdaNAT-FashionMNIST-v0")`` applies the default one: the shipped classifier's probability of
    the conditioning label (:meth:`~adanat_env.models.classifier.SmallCNN.label_probability`, the offline stand-in
    for a pretrained reward model); ``reward="none"`` leaves it off. ``AdaNAT-ImageNet256-v0`` has none by
    default, since no ImageNet reward model installs offline.

    **Starting State**: a fully masked canvas and a class label drawn uniformly (or given by
    ``reset(options={"labels": ...})``); the observation holds the features of that canvas.

    **Episode End**: exactly T steps (``steps``): the last step fixes every remaining token (no action can stall
    generation), returns ``terminated=True`` (never ``truncated``: there is no TimeLimit). At that step ``info``
    holds ``final_tokens`` (N,), ``final_label`` and ``nfe`` (NAT evaluations the sample used: T); the decoded
    images stay on the generator's device as ``env.unwrapped.final_images`` (not pushed through ``info``).

    **Adaptive step counts** (``adaptive_steps=True``; ``steps`` is then T_max): the action has a fifth raw
    component, :data:`STOP_ACTION`; a sample whose stop action is at least ``stop_threshold`` (default 1.0: a
    zero action never stops) finishes with the current step, which fixes every remaining token (the last-step
    rule), so its step count, ``info["nfe"]``, is its own choice in [1, T_max]. Episodes end per sample
    (``terminated`` for that sample only); the terminal observation's ``step`` is the sample's step count.
    Finished samples cost no NAT forward (:meth:`~adanat_env.generator.Generator.step_slots`).
"""


class _DecodingCore:
    """B generations stepping together; converts between numpy (Gymnasium) and the torch generator."""

    def __init__(self, generator: Generator, batch_size: int, steps: int, residual: str, dtype: str,
                 action_bound: float, frozen_actions: tuple[str, ...] = (), adaptive_steps: bool = False,
                 stop_threshold: float = DEFAULT_STOP_THRESHOLD, autoreset: bool = False, confidence: bool = False) -> None:
        self.generator = generator
        self.batch_size = integer("batch_size (num_envs)", batch_size, 1)
        frozen = (frozen_actions,) if isinstance(frozen_actions, str) else tuple(frozen_actions)  # one name or several
        self.spec = DecodingSpec(integer("steps", steps, 1), residual, number("action_bound", action_bound, 0, strict=True),
                                 generator.feature_tokens, generator.feature_dim, generator.num_classes, dtype, frozen,
                                 bool(adaptive_steps), number("stop_threshold", stop_threshold), bool(confidence))
        self.steps = self.spec.steps
        self.adaptive = self.spec.adaptive
        #: adaptive mode: restart finished rows in place (the vector env's same-step autoreset)
        self.autoreset = bool(autoreset)
        self.np_dtype = np.dtype(dtype)
        self.action_low = np.full(self.spec.action_dim, -action_bound, dtype=np.float32)
        self.action_high = np.full(self.spec.action_dim, action_bound, dtype=np.float32)
        self.state: GenerationState | None = None
        self.rng: torch.Generator | None = None
        self.final_images: torch.Tensor | None = None
        self.final_tokens: np.ndarray | None = None
        self.final_labels: np.ndarray | None = None
        #: rows (slots) of the last finished samples, in the order of final_images / final_tokens / final_labels
        self.final_index: np.ndarray | None = None
        #: NAT evaluations (= steps) each of the last finished samples used
        self.final_nfe: np.ndarray | None = None
        self.labels_np: np.ndarray | None = None
        #: hand observations over as torch tensors on the generator's device (the fast path for a device-resident
        #: rollout buffer, see agents.device_buffer); off: numpy, as Gymnasium's API and checkers expect
        self.observations_on_device = False
        self._labels_dev: torch.Tensor | None = None
        self._label_source: np.random.Generator | None = None

    # spaces -------------------------------------------------------------------------------------------
    def observation_space(self) -> spaces.Dict:
        g = self.generator
        keys = {
            "features": spaces.Box(-np.inf, np.inf, (g.feature_tokens, g.feature_dim), dtype=self.np_dtype),
            "step": spaces.Box(0, self.steps, (1,), dtype=np.int64),
            "label": spaces.Box(0, g.num_classes - 1, (1,), dtype=np.int64),
        }
        if self.spec.confidence:
            keys["confidence"] = spaces.Box(-np.inf, 0.0, (g.num_tokens,), dtype=np.float32)
        return spaces.Dict(keys)

    def action_space(self) -> spaces.Box:
        return spaces.Box(self.action_low, self.action_high, (self.spec.action_dim,), dtype=np.float32)

    # episode ------------------------------------------------------------------------------------------
    def seed(self, np_random: np.random.Generator) -> None:
        self.rng = self.generator.make_rng(int(np_random.integers(0, 2**63 - 1)))

    def start(self, np_random: np.random.Generator, labels: Any | None) -> dict[str, np.ndarray]:
        b, c = self.batch_size, self.generator.num_classes
        if labels is None:
            labels = np_random.integers(0, c, size=b)
        labels = np.asarray(labels).reshape(-1)
        if labels.shape != (b,) or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= c:
            raise ValueError(f"options['labels'] must hold {b} integer class ids in [0, {c}), got {labels!r}")
        self._label_source = np_random  # the env's np_random: labels of restarted rows (adaptive step counts)
        self.labels_np = labels.astype(np.int64)  # kept on the host: no device sync per step to report them
        self._labels_dev = torch.as_tensor(self.labels_np, device=self.generator.device)
        start = self.generator.start_slots if self.adaptive else self.generator.start
        self.state = start(self._labels_dev, self.steps, self.rng)
        return self.observation()

    def observation(self) -> dict[str, Any]:
        logits = self.generator.conditional_logits(self.state) if self.spec.confidence else None
        if self.observations_on_device:  # everything from device tensors: nothing leaves the device
            return self.spec.observation(self.state.features, self.state.step, self._labels_dev, logits)
        # labels from the host copy: no device sync per step to report them
        obs = self.spec.observation(self.state.features, self.state.step, torch.from_numpy(self.labels_np), logits)
        return {k: v.cpu().numpy() for k, v in obs.items()}

    def terminal_observation(self) -> dict[str, np.ndarray]:
        """Terminal observations of the last finished samples (rows :attr:`final_index`)."""
        g = self.generator
        n = len(self.final_labels)
        # Never fed to a policy (episodes terminate, nothing is bootstrapped): a read-only zero view, no allocation.
        zeros = np.zeros((1, g.feature_tokens, g.feature_dim), dtype=self.np_dtype)
        obs = {
            "features": np.broadcast_to(zeros, (n, g.feature_tokens, g.feature_dim)),
            "step": self.final_nfe.reshape(-1, 1).astype(np.int64),
            "label": self.final_labels.reshape(-1, 1).copy(),
        }
        if self.spec.confidence:
            obs["confidence"] = np.broadcast_to(np.zeros((1, g.num_tokens), dtype=np.float32), (n, g.num_tokens))
        return obs

    def check_actions(self, actions: Any) -> np.ndarray:
        a = np.asarray(actions)
        if a.dtype.kind not in "biuf":
            raise ValueError(f"actions must be numbers, got an array of {a.dtype}; the episode was not advanced")
        d = self.spec.action_dim
        if a.shape == (d,) and self.batch_size == 1:
            a = a[None]
        if a.shape != (self.batch_size, d):
            names = ACTION_NAMES + ((STOP_ACTION,) if self.adaptive else ())
            raise ValueError(f"actions must have shape ({self.batch_size}, {d}) [{', '.join(names)}], got {a.shape}")
        if not np.isfinite(a).all():
            bad = np.argwhere(~np.isfinite(a))[:4].tolist()
            raise ValueError(f"actions contain NaN or inf at (env, dim) {bad}; the episode was not advanced")
        # finite values beyond float32's range are clipped like any other out-of-bound action, not made inf
        return np.clip(a, -_F32_MAX, _F32_MAX).astype(np.float32, copy=False)

    def step(self, actions: Any) -> np.ndarray:
        """Apply one step; returns the (B,) bool mask of the samples that finished with it.

        Fixed T: all or none. Adaptive step counts: the samples that stopped (or reached T_max); with
        ``autoreset`` their rows restart at once with fresh labels, otherwise they leave the batch.
        """
        if self.state is None or self.state.done:
            raise RuntimeError("call reset() before step() (episodes end after `steps` steps, or when a sample stops)")
        a = self.check_actions(actions)
        raw = torch.from_numpy(a)
        # mapped on the host (actions arrive as numpy): no device sync; the generator moves them in one copy
        params = self.spec.step_params(raw, self.state.step)
        if self.adaptive:
            return self._step_adaptive(raw, params)
        self.state = self.generator.step(self.state, params, self.rng)
        if not self.state.done:
            return np.zeros(self.batch_size, dtype=np.bool_)
        self.final_images = self.generator.decode(self.state.tokens)
        self.final_tokens = self.state.tokens.cpu().numpy()
        self.final_labels = self.labels_np.copy()
        self.final_index = np.arange(self.batch_size)
        self.final_nfe = np.full(self.batch_size, self.steps, dtype=np.int64)
        return np.ones(self.batch_size, dtype=np.bool_)

    def _step_adaptive(self, raw: torch.Tensor, params: StepParams) -> np.ndarray:
        steps = self.state.step
        finish = (self.spec.finish(raw) | (steps >= self.steps - 1)).numpy()
        done = np.flatnonzero(finish)
        # the vector env's same-step autoreset: fresh labels for the finished slots, from the env's np_random
        restart = (self._label_source.integers(0, self.generator.num_classes, size=len(done)).astype(np.int64)
                   if self.autoreset else None)
        restart_dev = None if restart is None else torch.as_tensor(restart, device=self.generator.device)
        self.state, canvases = self.generator.step_slots(self.state, params, torch.from_numpy(finish), self.rng,
                                                         restart_dev)
        if len(done):
            done_t = torch.as_tensor(done, device=self.generator.device)
            final = canvases.index_select(0, done_t)
            self.final_images = self.generator.decode(final)
            self.final_tokens = final.cpu().numpy()
            self.final_labels = self.labels_np[done].copy()
            self.final_index = done
            self.final_nfe = steps.numpy()[done] + 1
        if restart is not None:
            self.labels_np = self.labels_np.copy()
            self.labels_np[done] = restart
        else:  # finished rows left the batch
            self.labels_np = self.labels_np[~finish]
        self._labels_dev = self.state.labels
        return finish

    def render(self) -> np.ndarray:
        """(B, H, W, 3) uint8 frames of the current canvas (masked cells grey) or the final images."""
        if self.state is None:
            raise RuntimeError("call reset() before render()")
        if self.state.done or self.state.batch_size == 0:
            images = self.final_images
        else:
            images = self.generator.preview(self.state)
        x = images.float().clamp(0, 1)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return (x.permute(0, 2, 3, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)


class _CoreAccess:
    """Read access to the decoding core shared by the single and the vector env."""

    core: _DecodingCore

    @property
    def generator(self) -> Generator:
        return self.core.generator

    @property
    def decoding_spec(self) -> DecodingSpec:
        """The env <-> policy contract: T, residual mode, action bound, action mapping, observations."""
        return self.core.spec

    @property
    def steps(self) -> int:
        """T (``decoding_spec.steps``)."""
        return self.core.spec.steps

    @property
    def observations_on_device(self) -> bool:
        """Whether observations come as torch tensors on the generator's device (for a device-resident rollout
        buffer, :mod:`agents.device_buffer`) instead of numpy arrays. Off by default: Gymnasium's API, its
        checkers and most learners expect numpy."""
        return self.core.observations_on_device

    @observations_on_device.setter
    def observations_on_device(self, on: bool) -> None:
        self.core.observations_on_device = bool(on)

    @property
    def final_images(self) -> torch.Tensor | None:
        """Decoded images (B, C, H, W) of the last finished batch (adaptive step counts: of the last finished
        samples, rows :attr:`final_index`), on the generator's device."""
        return self.core.final_images

    @property
    def final_labels(self) -> np.ndarray | None:
        """(B,) labels of the last finished batch."""
        return self.core.final_labels

    @property
    def final_tokens(self) -> np.ndarray | None:
        """(B, N) token canvases of the last finished batch (adaptive step counts: of the last finished samples)."""
        return self.core.final_tokens

    @property
    def final_index(self) -> np.ndarray | None:
        """Sub-env indices of the last finished samples, in the order of ``final_images`` / ``final_labels`` /
        ``final_tokens`` (all B with a fixed T; those that stopped with adaptive step counts)."""
        return self.core.final_index

    @property
    def final_nfe(self) -> np.ndarray | None:
        """NAT evaluations (= steps) each of the last finished samples used."""
        return self.core.final_nfe


class AdaNATVectorEnv(_CoreAccess, VectorEnv):
    __doc__ = """Native batched AdaNAT environment: B generations advanced by one batched NAT call per step.

    Built by ``gym.make_vec("AdaNAT-FashionMNIST-v0", num_envs=B, vectorization_mode="vector_entry_point")``
    (or the ImageNet-256 id), or directly from a :class:`~adanat_env.generator.Generator`.
""" + _DOC_SPACES + """
    **Autoreset**: ``AutoresetMode.SAME_STEP``: all B sub-envs finish together at step T; that same ``step``
    call starts the next batch and returns its first observation, with the terminal observation in
    ``info["final_obs"]`` (an object array of per-env dicts, ``info["_final_obs"]`` the mask) and
    ``info["final_info"]`` (``final_tokens``, ``final_label``, ``nfe``). This is SB3's convention, and no call
    is wasted (NEXT_STEP would spend one call in T + 1 only resetting). With ``adaptive_steps=True`` sub-envs
    finish on their own: a finished one restarts in the same call (fresh label, step 0) while the others
    continue, and one NAT forward serves the continuing and the restarted rows.

    **Arguments**:
    :param generator: the frozen generator.
    :param num_envs: B, the batch size.
    :param steps: T, decoding steps per episode.
    :param residual: ``"heuristic"`` (zero action = official heuristic schedule) or ``"none"`` (official heu=0).
    :param dtype: ``"float32"`` or ``"float16"`` observation features.
    :param action_bound: raw actions are clipped to ``[-action_bound, action_bound]``.
    :param render_mode: ``None`` or ``"rgb_array"``.
    :param frozen_actions: action components held at the residual's value (:class:`DecodingSpec`).
    :param adaptive_steps: adaptive step counts (the stop action; ``steps`` is T_max).
    :param stop_threshold: a raw stop action at least this finishes the sample.
    :param confidence: also observe ``"confidence"`` (N,): each position's largest conditional log probability.
    """

    metadata = {"render_modes": ["rgb_array"], "autoreset_mode": AutoresetMode.SAME_STEP, "render_fps": 4}

    def __init__(self, generator: Generator, num_envs: int = 8, steps: int = 8, residual: str = "heuristic",
                 dtype: str = "float32", action_bound: float = DEFAULT_ACTION_BOUND,
                 render_mode: str | None = None, frozen_actions: tuple[str, ...] = (), adaptive_steps: bool = False,
                 stop_threshold: float = DEFAULT_STOP_THRESHOLD, confidence: bool = False) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.core = _DecodingCore(generator, num_envs, steps, residual, dtype, action_bound, frozen_actions,
                                  adaptive_steps, stop_threshold, autoreset=True, confidence=confidence)
        self.num_envs = num_envs
        self.render_mode = render_mode
        self.single_observation_space = self.core.observation_space()
        self.single_action_space = self.core.action_space()
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None or self.core.rng is None:
            self.core.seed(self.np_random)
        labels = (options or {}).get("labels")
        return self.core.start(self.np_random, labels), {}

    def step(self, actions):
        terminated = self.core.step(actions)
        b = self.num_envs
        rewards = np.zeros(b, dtype=np.float32)
        truncated = np.zeros(b, dtype=np.bool_)
        if not terminated.any():
            return self.core.observation(), rewards, terminated, truncated, {}
        core, idx = self.core, self.core.final_index
        final = core.terminal_observation()
        final_obs = np.empty(b, dtype=object)
        for j, i in enumerate(idx):
            final_obs[i] = {k: v[j] for k, v in final.items()}
        if len(idx) == b:  # a whole batch (always with a fixed T): the core's arrays are already in slot order
            tokens, label, nfe = core.final_tokens, core.final_labels, core.final_nfe
        else:  # adaptive step counts: the finished slots' values, zero elsewhere (masked out)
            tokens = np.zeros((b, core.generator.num_tokens), dtype=core.final_tokens.dtype)
            label, nfe = np.zeros(b, dtype=np.int64), np.zeros(b, dtype=np.int64)
            tokens[idx], label[idx], nfe[idx] = core.final_tokens, core.final_labels, core.final_nfe
        mask = terminated.copy()
        infos = {
            "final_obs": final_obs, "_final_obs": mask,
            "final_info": {"final_tokens": tokens, "_final_tokens": mask, "final_label": label, "_final_label": mask,
                           "nfe": nfe, "_nfe": mask},
            "_final_info": mask,
        }
        # SAME_STEP autoreset: a fixed-T batch starts anew now; adaptive rows already restarted in core.step
        obs = core.observation() if core.adaptive else core.start(self.np_random, None)
        return obs, rewards, terminated, truncated, infos

    def render(self) -> tuple[np.ndarray, ...] | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode='rgb_array'")
            return None
        return tuple(self.core.render())

    def close_extras(self, **kwargs: Any) -> None:
        self.core.state = None


class AdaNATEnv(_CoreAccess, gym.Env):
    __doc__ = """Single-episode AdaNAT environment (``gym.make("AdaNAT-FashionMNIST-v0")``), the B = 1 case of
    :class:`AdaNATVectorEnv` through the same code path: same seed, same final tokens as
    ``make_vec(num_envs=1)``.
""" + _DOC_SPACES + """
    **Arguments**: as :class:`AdaNATVectorEnv`, without ``num_envs``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, generator: Generator, steps: int = 8, residual: str = "heuristic", dtype: str = "float32",
                 action_bound: float = DEFAULT_ACTION_BOUND, render_mode: str | None = None,
                 frozen_actions: tuple[str, ...] = (), adaptive_steps: bool = False,
                 stop_threshold: float = DEFAULT_STOP_THRESHOLD, confidence: bool = False) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.core = _DecodingCore(generator, 1, steps, residual, dtype, action_bound, frozen_actions,
                                  adaptive_steps, stop_threshold, confidence=confidence)
        self.render_mode = render_mode
        self.observation_space = self.core.observation_space()
        self.action_space = self.core.action_space()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None or self.core.rng is None:
            self.core.seed(self.np_random)
        label = (options or {}).get("label", (options or {}).get("labels"))
        obs = self.core.start(self.np_random, None if label is None else np.asarray(label).reshape(-1))
        return {k: v[0] for k, v in obs.items()}, {}

    def step(self, action):
        if not self.core.step(action)[0]:
            return {k: v[0] for k, v in self.core.observation().items()}, 0.0, False, False, {}
        obs = {k: np.array(v[0]) for k, v in self.core.terminal_observation().items()}
        info = {"final_tokens": self.core.final_tokens[0].copy(), "final_label": int(self.core.final_labels[0]),
                "nfe": int(self.core.final_nfe[0])}
        return obs, 0.0, True, False, info

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode='rgb_array'")
            return None
        return self.core.render()[0]
