"""The reference batched sampler: a whole T-step generation under any schedule or policy.

This is the raw-speed baseline that the environment's and the RL loop's overheads are measured against
(``benchmarks/bench_sampler.py``, ``benchmarks/bench_env.py``). Everything runs under
``torch.inference_mode()``; the generator decides the device and autocast.

Example::

    from adanat_env.models import load_nat, load_tokenizer
    from adanat_env.generator import NATGenerator
    from adanat_env.sampler import generate
    from adanat_env.schedules import heuristic_schedule

    gen = NATGenerator(load_nat("imagenet256-L", "assets/nnet_ema.pth", "cuda"),
                       load_tokenizer("maskgit-vqgan-f16", "assets/vqgan_jax_strongaug.ckpt", "cuda"), amp="bf16")
    out = generate(gen, labels=torch.arange(8, device="cuda"), policy=heuristic_schedule(8), seed=0)
    out.images  # (8, 3, 256, 256) in [0, 1]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .decoding import StepParams
from .generator import Generator
from .policy import Policy, PolicyInput, StepDecision

__all__ = ["GenerationResult", "generate"]


@dataclass(frozen=True)
class GenerationResult:
    """Output of :func:`generate`.

    :param tokens: (B, N) final token canvas (no mask tokens).
    :param labels: (B,) class labels.
    :param images: (B, C, H, W) decoded images in [0, 1], or ``None`` if ``decode=False``.
    :param params: (T, B, 4) the step parameters used, in (m, tau_1, tau_2, w) order, if recorded (adaptive
        step counts: NaN after a sample finished).
    :param nfe: (B,) int64, NAT evaluations (= steps) each sample used: T, or its own count under an adaptive-step
        policy.
    """

    tokens: torch.Tensor
    labels: torch.Tensor
    images: torch.Tensor | None
    params: torch.Tensor | None = None
    nfe: torch.Tensor | None = None


@torch.inference_mode()
def generate(
    generator: Generator,
    labels: torch.Tensor,
    policy: Policy,
    num_steps: int | None = None,
    *,
    seed: int | None = None,
    rng: torch.Generator | None = None,
    decode: bool = True,
    record_params: bool = False,
) -> GenerationResult:
    """Generate ``len(labels)`` images in ``num_steps`` steps.

    :param generator: the frozen generator (e.g. :class:`~adanat_env.generator.NATGenerator`).
    :param labels: (B,) class ids.
    :param policy: a :class:`~adanat_env.schedules.Schedule` or any callable mapping
        :class:`~adanat_env.policy.PolicyInput` to :class:`~adanat_env.decoding.StepParams`; one with
        ``adaptive_steps = True`` returns :class:`~adanat_env.policy.StepDecision` instead, and every sample stops
        on its own (finished samples leave the batch; ``nfe`` holds each one's step count).
    :param num_steps: T (T_max for an adaptive-step policy); defaults to the policy's ``num_steps``.
    :param seed: seed for a fresh random generator (same seed, same tokens on the same machine).
    :param rng: an existing ``torch.Generator`` on the generator's device (overrides ``seed``).
    :param decode: decode the final tokens to images.
    :param record_params: also return the (T, B, 4) step parameters.
    """
    if num_steps is None:
        num_steps = getattr(policy, "num_steps", None)
        if num_steps is None:
            raise ValueError("num_steps is required for a policy that has no fixed length")
    if rng is None:
        rng = generator.make_rng(seed)
    labels = torch.as_tensor(labels, device=generator.device)
    if getattr(policy, "adaptive_steps", False):
        return _generate_adaptive(generator, labels, policy, num_steps, rng, decode, record_params)
    state = generator.start(labels, num_steps, rng)
    history: list[torch.Tensor] = []
    while not state.done:
        inp = PolicyInput(state.features, state.step, state.num_steps, state.labels, generator.conditional_logits(state))
        params: StepParams = policy(inp)
        if record_params:
            history.append(params.as_tensor())
        state = generator.step(state, params, rng)
    images = generator.decode(state.tokens) if decode else None
    nfe = torch.full((labels.shape[0],), num_steps, dtype=torch.long)
    return GenerationResult(state.tokens, state.labels, images, torch.stack(history) if record_params else None, nfe)


def _generate_adaptive(generator: Generator, labels: torch.Tensor, policy: Policy, max_steps: int,
                       rng: torch.Generator, decode: bool, record_params: bool) -> GenerationResult:
    """Every sample stops when its policy says so (or at ``max_steps``); finished samples leave the batch, so
    each step's NAT forward covers the running samples only."""
    b = labels.shape[0]
    state = generator.start_slots(labels, max_steps, rng)
    rows = torch.arange(b)  # original index of each running row
    tokens = torch.empty((b, generator.num_tokens), dtype=torch.long, device=generator.device)
    nfe = torch.zeros(b, dtype=torch.long)
    history = torch.full((max_steps, b, 4), float("nan")) if record_params else None
    step = 0
    while not state.done:
        decision = policy(PolicyInput(state.features, step, max_steps, state.labels,
                                      generator.conditional_logits(state)))
        if not isinstance(decision, StepDecision):
            raise TypeError(f"a policy with adaptive_steps=True must return StepDecision, got {type(decision).__name__}")
        if history is not None:
            history[step, rows] = decision.params.as_tensor().float().cpu()
        finish = decision.finish.cpu().bool() | (step == max_steps - 1)
        state, canvases = generator.step_slots(state, decision.params, finish, rng)
        done = torch.nonzero(finish).flatten()
        tokens[rows[done].to(tokens.device)] = canvases[done.to(canvases.device)]
        nfe[rows[done]] = step + 1
        rows = rows[~finish]
        step += 1
    images = generator.decode(tokens) if decode else None
    return GenerationResult(tokens, labels, images, history, nfe)
