"""Evaluate a generation policy: class-balanced samples -> FID / KID / precision-recall / class accuracy."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..distributed import Ranks
from ..generator import Generator
from ..policy import Policy
from ..sampler import generate
from .metrics import (FeatureFn, ReferenceStats, evaluate_features, extract_features, feature_stats, frechet_distance,
                      per_class_metrics)

__all__ = ["balanced_labels", "batch_seed", "sample_images", "evaluate_policy"]


def batch_seed(seed: int, batch: int) -> int:
    """The sampler seed of batch ``batch`` of an evaluation seeded ``seed`` (batch 0: ``seed`` itself). Every batch
    has its own stream, so ranks can share out the batches and still make exactly the single-process samples."""
    return int(seed) + 1_000_003 * int(batch)


def balanced_labels(num_samples: int, num_classes: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``num_samples`` labels cycling through the classes (class-balanced, as AdaGen evaluates)."""
    return torch.arange(num_samples, device=device) % num_classes


@torch.inference_mode()
def sample_images(generator: Generator, policy: Policy, num_steps: int, num_samples: int, *, seed: int = 0,
                  batch_size: int = 500, progress: bool = False, nfe: list[torch.Tensor] | None = None,
                  conditions: torch.Tensor | None = None, ranks: Ranks | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``num_samples`` class-balanced images (CPU float tensor) and their labels, generated in batches of
    ``batch_size``, batch k with its own sampler seed :func:`batch_seed` (seed, k).

    :param nfe: a list to append each batch's (B,) NAT-evaluation counts to (T each, or the policy's own
        counts with adaptive step counts).
    :param conditions: the condition ids to cycle through instead of every class (a text generator's evaluation
        prompts: the captions of the reference images, as FID-30K draws validation captions).
    :param ranks: with several ranks (:class:`~adanat_env.distributed.Ranks`), only this rank's block of batches
        (:meth:`~adanat_env.distributed.Ranks.share`): the ranks' outputs concatenated in rank order are the
        single-process output.
    """
    if conditions is None:
        labels = balanced_labels(num_samples, generator.num_classes, generator.device)
    else:
        conditions = torch.as_tensor(conditions, dtype=torch.long, device=generator.device).reshape(-1)
        labels = conditions[torch.arange(num_samples, device=generator.device) % len(conditions)]
    batches = labels.split(batch_size)
    mine = (ranks or Ranks()).share(len(batches))
    images, own = [], []
    for k in tqdm(mine, desc=f"sampling T={num_steps}", disable=not progress, mininterval=2.0):
        result = generate(generator, batches[k], policy, num_steps, rng=generator.make_rng(batch_seed(seed, k)))
        images.append(result.images.cpu())
        own.append(batches[k].cpu())
        if nfe is not None:
            nfe.append(result.nfe)
    if not images:  # more ranks than batches
        c, h, w = generator.image_shape
        return torch.empty(0, c, h, w), torch.empty(0, dtype=torch.long)
    return torch.cat(images), torch.cat(own)


def evaluate_policy(generator: Generator, policy: Policy, num_steps: int, feature_fn: FeatureFn,
                    reference: ReferenceStats, *, num_samples: int = 5000, seed: int = 0, batch_size: int = 500,
                    classifier: torch.nn.Module | None = None, progress: bool = False,
                    scorers: dict[str, Callable[[torch.Tensor, torch.Tensor], float]] | None = None,
                    conditions: torch.Tensor | None = None, ranks: Ranks | None = None,
                    reference_labels: np.ndarray | None = None,
                    judges: Mapping[str, Any] | None = None) -> tuple[dict, torch.Tensor]:
    """Metrics of ``policy`` on ``num_samples`` images; returns (metrics, the first 100 images).

    With ``classifier``, also ``class_accuracy``: the fraction of samples classified as their label's class (a
    prompt's class for a text generator, :meth:`~adanat_env.generator.Generator.label_classes`). Always
    ``nfe_mean``: NAT evaluations per image (T, or the mean step count of an adaptive-step policy). ``scorers``:
    more figures of the samples, name -> ``(images, labels) -> float`` (e.g. the CLIP score). ``conditions``:
    see :func:`sample_images`.

    ``reference_labels`` (the class of each row of ``reference.features``) adds ``per_class_fid`` and
    ``per_class_recall`` (one per class, :func:`~adanat_env.evaluation.metrics.per_class_metrics`). ``judges``:
    second feature spaces, name -> an object with ``fn`` (a feature function), ``ref`` (its
    :class:`ReferenceStats`), ``features`` and ``labels`` (the reference rows and their classes, or ``None``):
    each adds ``fid_<name>`` and, with labels, ``per_class_fid_<name>``. Per-class figures need a
    class-conditional generator (labels are classes).

    With several ``ranks`` each generates its share of the batches and computes their features, class predictions
    and scores; those are gathered once and rank 0 computes the metrics, which every rank returns: the figures of
    the single-process evaluation of the same samples. The first 100 images are rank 0's (batch 0).
    """
    ranks = ranks or Ranks()
    t0 = time.perf_counter()
    nfe: list[torch.Tensor] = []
    images, labels = sample_images(generator, policy, num_steps, num_samples, seed=seed, batch_size=batch_size,
                                   progress=progress and ranks.main, nfe=nfe, conditions=conditions, ranks=ranks)
    t_gen = time.perf_counter() - t0
    feats = torch.from_numpy(extract_features(feature_fn, images)) if len(images) else torch.empty(0, 0, dtype=torch.float64)
    nfe_all = ranks.gather(torch.cat(nfe).float().cpu() if nfe else torch.empty(0))
    pred = None
    if classifier is not None and generator.has_label_classes:
        with torch.inference_mode():
            pred = [classifier(b).argmax(1).cpu() for b in images.split(1000)]
        pred = torch.cat(pred) if pred else torch.empty(0, dtype=torch.long)
        pred = (pred == generator.label_classes(labels)).float()
    scores = {name: torch.tensor([[float(fn(images, labels)) if len(images) else 0.0, len(images)]],
                                 dtype=torch.float64) for name, fn in (scorers or {}).items()}
    judged = {name: torch.from_numpy(extract_features(j.fn, images)) if len(images) else torch.empty(0, 0, dtype=torch.float64)
              for name, j in (judges or {}).items()}
    feats, pred = ranks.gather(feats), None if pred is None else ranks.gather(pred)
    judged = {name: ranks.gather(f) for name, f in judged.items()}
    labels = ranks.gather(labels.cpu())
    scores = {name: ranks.gather(v) for name, v in scores.items()}
    out: dict | None = None
    if ranks.main:
        out = {**evaluate_features(feats.numpy(), reference, seed=seed), "generate_s": round(t_gen, 2),
               "nfe_mean": float(nfe_all.mean())}
        if pred is not None:
            out["class_accuracy"] = float(pred.mean())
        by_class = conditions is None and getattr(generator, "prompts", None) is None  # labels are classes
        if by_class and reference_labels is not None and reference.features is not None:
            pc = per_class_metrics(feats.numpy(), labels.numpy(), reference.features, reference_labels,
                                   generator.num_classes)
            out["per_class_fid"], out["per_class_recall"] = pc["fid"], pc["recall"]
        for name, f in judged.items():
            j = judges[name]
            out[f"fid_{name}"] = frechet_distance(feature_stats(f.numpy()), j.ref.stats)
            if by_class and j.labels is not None:
                out[f"per_class_fid_{name}"] = per_class_metrics(f.numpy(), labels.numpy(), j.features, j.labels,
                                                                 generator.num_classes, recall=False)["fid"]
        for name, v in scores.items():  # (score, samples) per rank: their weighted mean
            v = v[v[:, 1] > 0]
            out[name] = float(v[0, 0]) if len(v) == 1 else float((v[:, 0] * v[:, 1]).sum() / v[:, 1].sum())
        out["eval_s"] = round(time.perf_counter() - t0, 2)
    return ranks.broadcast(out), images[:100]
