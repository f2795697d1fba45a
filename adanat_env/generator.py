"""The small interface between a frozen generator and everything that drives it (env, rewards, agents).

A generation is a batch moving through T steps. :class:`Generator` exposes only:

- ``start(labels, num_steps, rng)`` -> :class:`GenerationState` (fresh canvas + the features the policy sees),
- ``step(state, params, rng)`` -> the next state, given one step's :class:`~adanat_env.decoding.StepParams`,
- ``decode(tokens)`` -> images in ``[0, 1]``,
- ``preview(state)`` -> images of a partly decoded canvas (masked regions greyed out), for ``render()``.

and, for adaptive step counts (each sample decides when it is finished):

- ``start_slots(labels, max_steps, rng)`` -> a state whose ``step`` is a (B,) tensor of per-row steps,
- ``step_slots(state, params, finish, rng, restart_labels)`` -> one step in which the rows flagged ``finish``
  fix every remaining token and either leave the batch (compaction: no NAT forward is spent on them) or
  restart in place as fresh generations (the vector env's same-step autoreset).

The env, rewards and agents never touch U-ViT internals, so other generator families (diffusion, VAR, as in
AdaGen) can plug in by implementing this class.

:class:`NATGenerator` implements it for a masked-token NAT (:class:`~adanat_env.models.UViT`) and a VQ
tokenizer (:class:`~adanat_env.models.VQGAN`), class- or text-conditioned. A text-conditioned NAT (the CC3M
U-ViT) keeps the interface: its "labels" are ids of prompts in a prompt bank (their precomputed text-encoder
states, :mod:`adanat_env.prompts`), and its empty class is the empty prompt, the unconditional branch of
guidance; the env, the decoding step and the agents see ids as for classes. Cost: one batched forward of 2B sequences (conditional and
unconditional together) per step; step 0's canvas is all-mask for every sample, so its pass reads one row per
distinct condition and one unconditional row, and no forward runs after the last step. So a T-step batch of B
images over K distinct conditions costs ``K + 1 + 2B(T - 1)`` sequence-forwards, less than the ``2BT`` of 2
forwards per step (the official loop runs ``B(2T + 1)``). With adaptive step counts a sample that finishes after s steps costs ``2s - 1`` (its share
of the shared unconditional row aside): its **NFE** (guided NAT evaluations) is s.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Any

import torch

from .decoding import StepParams, decoding_step
from .models import UViT, VQGAN
from .prompts import PromptBank

__all__ = ["GenerationState", "Generator", "NATGenerator", "autocast_context"]


@dataclass(frozen=True)
class GenerationState:
    """A batch of generations in progress (immutable; ``step`` returns a new one).

    :param tokens: (B, N) current canvas; masked positions hold the generator's mask id.
    :param labels: (B,) class labels.
    :param step: number of steps already taken: an int (the same for the whole batch), or a (B,) int64 CPU tensor
        of per-row steps (adaptive step counts, :meth:`Generator.start_slots`).
    :param num_steps: T (with per-row steps: T_max, the most steps any row may take).
    :param features: (B, N', D) features of the current canvas for the policy (N' = the generator's
        ``feature_tokens``: N, or the patches of a patched NAT); ``None`` once done.
    :param cache: generator-private data for the next step (e.g. logits); ``None`` once done.
    """

    tokens: torch.Tensor
    labels: torch.Tensor
    step: int | torch.Tensor
    num_steps: int
    features: torch.Tensor | None
    cache: Any = None

    @property
    def done(self) -> bool:
        """Fixed-T batch: all T steps taken. Per-row steps: no row left (every row finished and was removed)."""
        if isinstance(self.step, torch.Tensor):
            return self.tokens.shape[0] == 0
        return self.step >= self.num_steps

    @property
    def batch_size(self) -> int:
        return self.tokens.shape[0]


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 natively: a CUDA GPU that supports it, a CPU with AVX512-BF16 or AMX.
    Elsewhere bfloat16 is emulated (on an AVX2 CPU a bf16-autocast linear layer is about 7x slower than float32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private in torch 2.x: absent means "no"
    return device.type == "cpu" and any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def autocast_context(device: torch.device, amp: str | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``amp`` in {None, "auto", "bf16", "fp16"} on ``device``; "auto": bf16 where
    :func:`native_bf16`, else float32."""
    if amp == "auto":
        amp = "bf16" if native_bf16(device) else None
    if amp in (None, "none", "fp32"):
        return contextlib.nullcontext()
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    if amp not in dtypes:
        raise ValueError(f"amp must be None, 'auto', 'bf16' or 'fp16', got {amp!r}")
    return torch.autocast(device_type=device.type, dtype=dtypes[amp])


class Generator(ABC):
    """A frozen, batched, step-wise generator (see module docstring)."""

    #: number of tokens / positions per image (N)
    num_tokens: int
    #: (h, w) of the token grid, row-major
    grid_shape: tuple[int, int]
    #: feature dimension D of ``GenerationState.features``
    feature_dim: int
    #: number of real classes; labels are ``0 .. num_classes - 1``
    num_classes: int
    #: (C, H, W) of decoded images
    image_shape: tuple[int, int, int]
    #: id marking a masked position in ``GenerationState.tokens``
    mask_id: int
    device: torch.device

    @property
    def feature_grid(self) -> tuple[int, int]:
        """(h, w) of the rows of ``GenerationState.features``, row-major: the token grid unless the generator sees
        coarser positions (a NAT with patch size p: the token grid / p)."""
        return self.grid_shape

    def label_classes(self, labels: torch.Tensor) -> torch.Tensor:
        """The class each condition id stands for: the label itself, or for a text generator whose prompts have
        known classes, the prompt's class (what a classifier's accuracy is checked against).

        :raises ValueError: a text generator whose prompts have no classes.
        """
        pc = getattr(self, "prompt_classes", None)
        if pc is None:
            if getattr(self, "prompts", None) is not None:
                raise ValueError("these prompts have no classes (the prompt file's 'classes'): no class accuracy")
            return labels
        return pc.to(labels.device)[labels.long()]

    @property
    def has_label_classes(self) -> bool:
        """Whether :meth:`label_classes` is defined (not for text prompts without classes)."""
        return getattr(self, "prompts", None) is None or getattr(self, "prompt_classes", None) is not None

    @property
    def num_label_classes(self) -> int:
        """Classes the labels stand for (:meth:`label_classes`): ``num_classes``, or the prompts' classes."""
        pc = getattr(self, "prompt_classes", None)
        return self.num_classes if pc is None else int(pc.max()) + 1

    @property
    def feature_tokens(self) -> int:
        """Rows of ``GenerationState.features`` per image (N, or N / p^2 for a patched NAT)."""
        h, w = self.feature_grid
        return h * w

    @abstractmethod
    def start(self, labels: torch.Tensor, num_steps: int, rng: torch.Generator | None = None) -> GenerationState:
        """Begin a batch of ``len(labels)`` generations of ``num_steps`` steps."""

    @abstractmethod
    def step(self, state: GenerationState, params: StepParams, rng: torch.Generator | None = None) -> GenerationState:
        """Apply one step with per-sample parameters; returns the next state."""

    @abstractmethod
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) in ``[0, 1]`` for fully decoded token canvases (B, N)."""

    def start_slots(self, labels: torch.Tensor, max_steps: int, rng: torch.Generator | None = None) -> GenerationState:
        """:meth:`start`, with per-row step counters (a (B,) CPU tensor of zeros) for :meth:`step_slots`."""
        state = self.start(labels, max_steps, rng)
        return replace(state, step=torch.zeros(state.batch_size, dtype=torch.long))

    def step_slots(self, state: GenerationState, params: StepParams, finish: torch.Tensor,
                   rng: torch.Generator | None = None,
                   restart_labels: torch.Tensor | None = None) -> tuple[GenerationState, torch.Tensor]:
        """One step in which every row may finish (adaptive step counts).

        Rows with ``finish`` set, and rows taking their ``num_steps``-th step, fix every remaining token now.
        Without ``restart_labels`` they leave the batch: the returned state holds the continuing rows only, in
        order, and no NAT forward is spent on the finished ones. With ``restart_labels`` (one class per finished
        row, in row order) each finished row restarts in place as a fresh all-mask generation at step 0.

        :param state: a state with per-row steps (:meth:`start_slots` or this method).
        :param params: per-row parameters of this step.
        :param finish: (B,) bool: rows that finish with this step.
        :param rng: random source.
        :param restart_labels: classes of the generations that replace the finished rows, or ``None``.
        :return: ``(next state, canvases)``: ``canvases`` (B, N) is every row's canvas after this step (a
            finished row's is its final, mask-free canvas).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement step_slots (adaptive step counts)")

    def conditional_logits(self, state: GenerationState) -> torch.Tensor | None:
        """(B, N, V) the conditional logits of the state's canvas, from which the next step samples (what a policy
        that observes token confidences reads), or ``None`` where the generator has none (finished states)."""
        return None

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Token canvases (B, N) of images (B, C, H, W) in ``[0, 1]`` (optional: generators with a tokenizer).

        ``decode(encode(x))`` is the tokenizer's reconstruction of x: what a perfect token generator would give.
        """
        raise NotImplementedError(f"{type(self).__name__} has no encoder")

    def canvas_features(self, tokens: torch.Tensor) -> torch.Tensor:
        """Features (B, N, D) of complete canvases (B, N), unconditionally (optional: token generators).

        What :attr:`GenerationState.features` are for a partly masked canvas, for a finished one: the frozen
        generator's own in-domain representation of an image (with :meth:`encode`, of any image), which a
        discriminator can be built on (``rewards.discriminator``, ``"projected-nat"``).
        """
        raise NotImplementedError(f"{type(self).__name__} has no canvas features")

    def preview(self, state: GenerationState) -> torch.Tensor:
        """Images of the current canvas with masked regions shown mid-grey (for rendering)."""
        tokens = state.tokens
        masked = tokens == self.mask_id
        images = self.decode(tokens.masked_fill(masked, 0))
        h, w = self.grid_shape
        cell = masked.view(-1, 1, h, w).float()
        cell = torch.nn.functional.interpolate(cell, size=self.image_shape[1:], mode="nearest")
        return images * (1 - cell) + 0.5 * cell

    def make_rng(self, seed: int | None) -> torch.Generator:
        """A ``torch.Generator`` on this generator's device, seeded (or randomly seeded when ``seed`` is None)."""
        g = torch.Generator(device=self.device)
        if seed is None:
            g.seed()
        else:
            g.manual_seed(int(seed))
        return g


class NATGenerator(Generator):
    """A MaskGIT-style NAT (U-ViT) plus VQ tokenizer behind the :class:`Generator` interface.

    :param nat: the frozen U-ViT (class-conditional: its ``num_classes - 1`` is the empty class).
    :param tokenizer: the frozen VQGAN whose codebook the NAT predicts.
    :param amp: ``None`` (float32), ``"auto"`` (bf16 where the device does it natively), ``"bf16"`` or ``"fp16"``
        autocast for the NAT and the decoder
        (the decoding-step math always runs in float32).
    :param prompts: a text-conditioned NAT's prompt bank, (P + 1, num_clip_tokens, clip_dim): the text-encoder
        states of P prompts (ids 0 .. P - 1, the "labels") and, last, of the empty prompt (the empty class).
        :func:`adanat_env.prompts.load_prompts` reads one; pass the whole :class:`~adanat_env.prompts.PromptBank`
        to keep its pooled embeddings (``prompt_embeds``: a text-conditioned discriminator's condition) and classes.
    :param prompt_classes: the class each of the P prompts describes, where known (default: the bank's): prompt-
        fidelity metrics (a classifier's accuracy on the prompt's class) read it through :meth:`label_classes`.
    :raises ValueError: the NAT and the tokenizer (or the prompts) do not fit each other.
    """

    def __init__(self, nat: UViT, tokenizer: VQGAN, amp: str | None = None,
                 prompts: torch.Tensor | PromptBank | None = None, prompt_classes: Any = None) -> None:
        nc, tc = nat.config, tokenizer.config
        #: (P + 1, E) pooled text embeddings of the prompts and the empty prompt (a PromptBank's), or None
        self.prompt_embeds = None
        #: the image each prompt is a caption of (a captioned data set's prompt file), or None
        self.prompt_images = None
        #: the prompts' text (a PromptBank's), or None
        self.prompt_texts = None
        if isinstance(prompts, PromptBank):
            prompt_classes = prompts.classes if prompt_classes is None else prompt_classes
            self.prompt_embeds, self.prompt_images, self.prompt_texts = prompts.pooled, prompts.images, prompts.texts
            prompts = prompts.states
        if nc.codebook_size != tc.n_embed:
            raise ValueError(f"NAT predicts {nc.codebook_size} codes but the tokenizer has {tc.n_embed}")
        if nc.num_tokens != tc.num_tokens:
            raise ValueError(f"NAT works on {nc.num_tokens} tokens but the tokenizer makes {tc.num_tokens}")
        if nc.text != (prompts is not None):
            raise ValueError("a text-conditioned NAT needs a prompt bank (prompts=), a class-conditional one none"
                             if nc.text else "prompts= is for a text-conditioned NAT; this one is class-conditional")
        if prompts is not None and (prompts.dim() != 3 or prompts.shape[0] < 2
                                    or tuple(prompts.shape[1:]) != (nc.num_clip_tokens, nc.clip_dim)):
            raise ValueError(f"prompts must be (P + 1 >= 2, {nc.num_clip_tokens}, {nc.clip_dim}): P prompts and the "
                             f"empty one, got {tuple(prompts.shape)}")
        self.nat = nat.eval().requires_grad_(False)
        self.tokenizer = tokenizer.eval().requires_grad_(False)
        self.amp = amp
        self.device = next(nat.parameters()).device
        autocast_context(self.device, amp)  # validates amp early
        self.num_tokens = nc.num_tokens
        self.grid_shape = (nc.img_size, nc.img_size)
        self._feature_grid = nc.feature_grid
        self.feature_dim = nc.embed_dim
        self.prompts = None if prompts is None else prompts.to(self.device)
        #: conditions: classes, or the prompts of the bank; the empty class (or prompt) is the last id
        self.num_classes = nc.num_classes - 1 if prompts is None else prompts.shape[0] - 1
        self.null_class = self.num_classes
        if prompt_classes is not None and (prompts is None or len(prompt_classes) != self.num_classes):
            raise ValueError(f"prompt_classes must give one class per prompt ({self.num_classes}), got "
                             f"{None if prompt_classes is None else len(prompt_classes)}")
        self.prompt_classes = None if prompt_classes is None else torch.as_tensor(prompt_classes, dtype=torch.long)
        self.mask_id = nc.mask_id
        self.image_shape = (tc.in_channels, tc.resolution, tc.resolution)

    @property
    def feature_grid(self) -> tuple[int, int]:
        return self._feature_grid

    def _autocast(self) -> contextlib.AbstractContextManager:
        return autocast_context(self.device, self.amp)

    def _nat(self, ids: torch.Tensor, conditions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The NAT on canvases ``ids`` under condition ids (classes, or prompts of the bank; the last id is the
        empty one): ``(logits, features)``."""
        return self.nat(ids, conditions if self.prompts is None else self.prompts[conditions])

    def _check_labels(self, labels: torch.Tensor) -> torch.Tensor:
        labels = torch.as_tensor(labels, device=self.device)
        if labels.dim() != 1 or labels.numel() == 0:
            raise ValueError(f"labels must be a non-empty 1-d tensor of class ids, got shape {tuple(labels.shape)}")
        if labels.dtype.is_floating_point or labels.dtype == torch.bool:
            raise ValueError(f"labels must be integers, got {labels.dtype}")
        labels = labels.long()
        if not bool(((labels >= 0) & (labels <= self.null_class)).all()):
            raise ValueError(f"labels must lie in [0, {self.num_classes}] ({self.null_class} = the empty class)")
        return labels

    @torch.inference_mode()
    def start(self, labels: torch.Tensor, num_steps: int, rng: torch.Generator | None = None) -> GenerationState:
        if int(num_steps) < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        labels = self._check_labels(labels)
        b, n = labels.shape[0], self.num_tokens
        tokens = torch.full((b, n), self.mask_id, dtype=torch.long, device=self.device)
        # The all-mask canvas is the same for every sample: the NAT reads one row per distinct condition and one
        # unconditional row, and every sample takes its condition's (a class-conditional batch of 512 costs 11).
        conds, inverse = torch.unique(labels, return_inverse=True)
        ids = tokens[:1].expand(len(conds) + 1, -1)
        ctx = torch.cat([conds, labels.new_full((1,), self.null_class)])
        with self._autocast():
            logits, feat = self._nat(ids, ctx)
        lc, lu = logits[inverse], logits[-1:].expand(b, -1, -1)
        return GenerationState(tokens, labels, 0, int(num_steps), feat[inverse], (lc, lu))

    @torch.inference_mode()
    def step(self, state: GenerationState, params: StepParams, rng: torch.Generator | None = None) -> GenerationState:
        if state.done:
            raise RuntimeError("generation already finished; call start() for a new batch")
        last = state.step == state.num_steps - 1
        lc, lu = state.cache
        # Validate where the parameters live (host-side parameters cost no device sync), then move them.
        params.validate(state.batch_size)
        params = params.to(self.device)
        _, next_tokens = decoding_step(state.tokens, lc, lu, params, mask_id=self.mask_id, last=last, generator=rng,
                                       validate=False)
        if last:
            return replace(state, tokens=next_tokens, step=state.step + 1, features=None, cache=None)
        b = state.batch_size
        with self._autocast():
            logits, feat = self._nat(torch.cat([next_tokens, next_tokens]),
                                    torch.cat([state.labels, state.labels.new_full((b,), self.null_class)]))
        return replace(state, tokens=next_tokens, step=state.step + 1, features=feat[:b], cache=(logits[:b], logits[b:]))

    @torch.inference_mode()
    def step_slots(self, state: GenerationState, params: StepParams, finish: torch.Tensor,
                   rng: torch.Generator | None = None,
                   restart_labels: torch.Tensor | None = None) -> tuple[GenerationState, torch.Tensor]:
        # One batched NAT forward: continuing rows (conditional + unconditional) and restarted rows (all-mask: one
        # conditional row per distinct class and one unconditional row, as in start()). Finished rows cost nothing.
        if not isinstance(state.step, torch.Tensor):
            raise ValueError("step_slots needs per-row steps: begin with start_slots()")
        b, n = state.batch_size, self.num_tokens
        finish = torch.as_tensor(finish).reshape(-1)
        if finish.shape != (b,) or finish.dtype != torch.bool:
            raise ValueError(f"finish must be a ({b},) bool tensor, got {tuple(finish.shape)} {finish.dtype}")
        steps = state.step
        finish = finish.cpu() | (steps >= state.num_steps - 1)
        params.validate(b)
        params = params.to(self.device)
        lc, lu = state.cache
        _, canvases = decoding_step(state.tokens, lc, lu, params, mask_id=self.mask_id, last=finish.to(self.device),
                                    generator=rng, validate=False)
        cont = torch.nonzero(~finish).flatten()
        done = torch.nonzero(finish).flatten()
        nc, nr = len(cont), len(done)
        cont_d, done_d = cont.to(self.device), done.to(self.device)
        toks_c, labels_c = canvases[cont_d], state.labels[cont_d]
        null = lambda k: state.labels.new_full((k,), self.null_class)  # noqa: E731
        if restart_labels is None:
            if nc == 0:
                return replace(state, tokens=toks_c, labels=labels_c, step=steps[:0], features=None, cache=None), canvases
            with self._autocast():
                logits, feat = self._nat(torch.cat([toks_c, toks_c]), torch.cat([labels_c, null(nc)]))
            return GenerationState(toks_c, labels_c, steps[cont] + 1, state.num_steps, feat[:nc],
                                   (logits[:nc], logits[nc:])), canvases
        new_labels = torch.as_tensor(restart_labels, device=self.device).reshape(-1).long()
        new_labels = self._check_labels(new_labels) if nr else new_labels
        if new_labels.shape != (nr,):
            raise ValueError(f"restart_labels must hold one class per finished row ({nr}), got {tuple(new_labels.shape)}")
        fresh = torch.full((nr, n), self.mask_id, dtype=torch.long, device=self.device)
        conds, inverse = torch.unique(new_labels, return_inverse=True)  # as in start(): one row per distinct class
        k = len(conds)
        with self._autocast():
            logits, feat = self._nat(torch.cat([toks_c, toks_c, fresh[:k], fresh[:1]]),
                                    torch.cat([labels_c, null(nc), conds, null(min(nr, 1))]))
        tokens = canvases.index_copy(0, done_d, fresh)
        labels = state.labels.index_copy(0, done_d, new_labels)
        features = feat.new_empty((b,) + tuple(feat.shape[1:])).index_copy_(0, cont_d, feat[:nc])
        features.index_copy_(0, done_d, feat[2 * nc:2 * nc + k][inverse])
        lc_new = logits.new_empty((b,) + tuple(logits.shape[1:])).index_copy_(0, cont_d, logits[:nc])
        lc_new.index_copy_(0, done_d, logits[2 * nc:2 * nc + k][inverse])
        lu_new = logits.new_empty(lc_new.shape).index_copy_(0, cont_d, logits[nc:2 * nc])
        lu_new.index_copy_(0, done_d, logits[-1:].expand(nr, -1, -1))
        new_steps = torch.where(finish, 0, steps + 1)
        return GenerationState(tokens, labels, new_steps, state.num_steps, features, (lc_new, lu_new)), canvases

    def conditional_logits(self, state: GenerationState) -> torch.Tensor | None:
        return None if state.cache is None else state.cache[0]

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() != 2 or tokens.shape[1] != self.num_tokens:
            raise ValueError(f"tokens must have shape (B, {self.num_tokens}), got {tuple(tokens.shape)}")
        if bool(((tokens < 0) | (tokens >= self.mask_id)).any()):
            raise ValueError("cannot decode a canvas that still holds mask tokens (or negative ids); use preview()")
        with self._autocast():
            images = self.tokenizer.decode(tokens)
        return images.float()

    @torch.inference_mode()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            return self.tokenizer.encode(images.float())

    @torch.inference_mode()
    def canvas_features(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() != 2 or tokens.shape[1] != self.num_tokens:
            raise ValueError(f"canvases must be (B, {self.num_tokens}) token ids, got {tuple(tokens.shape)}")
        if bool((tokens == self.mask_id).any()) or bool((tokens < 0).any()):
            raise ValueError("canvas_features needs complete canvases (no mask tokens)")
        tokens = tokens.to(self.device).long()
        with self._autocast():
            _, feat = self._nat(tokens, tokens.new_full((tokens.shape[0],), self.null_class))
        return feat.float()

    @torch.inference_mode()
    def preview(self, state: GenerationState) -> torch.Tensor:
        return super().preview(state)
