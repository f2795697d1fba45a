"""Evaluate a generation policy: class-balanced samples -> FID / KID / precision-recall / class accuracy."""

from __future__ import annotations

from collections.abc import Callable

import time

import torch
from tqdm import tqdm

from ..generator import Generator
from ..policy import Policy
from ..sampler import generate
from .metrics import FeatureFn, ReferenceStats, evaluate_images

__all__ = ["balanced_labels", "sample_images", "evaluate_policy"]


def balanced_labels(num_samples: int, num_classes: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``num_samples`` labels cycling through the classes (class-balanced, as AdaGen evaluates)."""
    return torch.arange(num_samples, device=device) % num_classes


@torch.inference_mode()
def sample_images(generator: Generator, policy: Policy, num_steps: int, num_samples: int, *, seed: int = 0,
                  batch_size: int = 500, progress: bool = False, nfe: list[torch.Tensor] | None = None,
                  conditions: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``num_samples`` class-balanced images (CPU float tensor) and their labels, generated in batches.

    :param nfe: a list to append each batch's (B,) NAT-evaluation counts to (T each, or the policy's own
        counts with adaptive step counts).
    :param conditions: the condition ids to cycle through instead of every class (a text generator's evaluation
        prompts: the captions of the reference images, as FID-30K draws validation captions).
    """
    if conditions is None:
        labels = balanced_labels(num_samples, generator.num_classes, generator.device)
    else:
        conditions = torch.as_tensor(conditions, dtype=torch.long, device=generator.device).reshape(-1)
        labels = conditions[torch.arange(num_samples, device=generator.device) % len(conditions)]
    rng = generator.make_rng(seed)
    chunks = tqdm(labels.split(batch_size), desc=f"sampling T={num_steps}", disable=not progress, mininterval=2.0)
    images = []
    for chunk in chunks:
        result = generate(generator, chunk, policy, num_steps, rng=rng)
        images.append(result.images.cpu())
        if nfe is not None:
            nfe.append(result.nfe)
    return torch.cat(images), labels.cpu()


def evaluate_policy(generator: Generator, policy: Policy, num_steps: int, feature_fn: FeatureFn,
                    reference: ReferenceStats, *, num_samples: int = 5000, seed: int = 0, batch_size: int = 500,
                    classifier: torch.nn.Module | None = None, progress: bool = False,
                    scorers: dict[str, Callable[[torch.Tensor, torch.Tensor], float]] | None = None,
                    conditions: torch.Tensor | None = None) -> tuple[dict, torch.Tensor]:
    """Metrics of ``policy`` on ``num_samples`` images; returns (metrics, the first 100 images).

    With ``classifier``, also ``class_accuracy``: the fraction of samples classified as their label's class (a
    prompt's class for a text generator, :meth:`~adanat_env.generator.Generator.label_classes`). Always
    ``nfe_mean``: NAT evaluations per image (T, or the mean step count of an adaptive-step policy). ``scorers``:
    more figures of the samples, name -> ``(images, labels) -> float`` (e.g. the CLIP score). ``conditions``:
    see :func:`sample_images`.
    """
    t0 = time.perf_counter()
    nfe: list[torch.Tensor] = []
    images, labels = sample_images(generator, policy, num_steps, num_samples, seed=seed, batch_size=batch_size,
                                   progress=progress, nfe=nfe, conditions=conditions)
    t_gen = time.perf_counter() - t0
    out = {**evaluate_images(feature_fn, images, reference, seed=seed), "generate_s": round(t_gen, 2),
           "nfe_mean": float(torch.cat(nfe).float().mean())}
    if classifier is not None and generator.has_label_classes:
        with torch.inference_mode():
            pred = torch.cat([classifier(b).argmax(1).cpu() for b in images.split(1000)])
        out["class_accuracy"] = float((pred == generator.label_classes(labels)).float().mean())
    for name, fn in (scorers or {}).items():
        out[name] = float(fn(images, labels))
    out["eval_s"] = round(time.perf_counter() - t0, 2)
    return out, images[:100]
