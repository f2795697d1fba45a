"""How a learned policy adapts per sample (paper Fig. 3): the step parameters it chooses for each generation.

    rec = record_step_params(generator, policy, num_steps=4, num_samples=1000, seed=0)
    table = adaptivity_table(rec.params)            # per step and parameter: mean, std, p10, p90, relative spread
    easy, hard = split_by_score(rec.score, 0.3)     # e.g. the classifier's confidence in the label

A policy whose across-sample spread is tiny at every step is *effectively static*: it learned a schedule, not an
adaptive policy (:func:`is_effectively_static`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from adanat_env.evaluation.sampling import balanced_labels
from adanat_env.generator import Generator
from adanat_env.policy import Policy
from adanat_env.sampler import generate

__all__ = ["PARAM_NAMES", "StepRecord", "record_step_params", "adaptivity_table", "split_by_score",
           "is_effectively_static"]

#: The step parameters, in the order of :class:`~adanat_env.decoding.StepParams`.
PARAM_NAMES = ("m", "tau1", "tau2", "w")


@dataclass
class StepRecord:
    """:param params: (T, N, 4) float step parameters (m, tau1, tau2, w) per step and sample.
    :param images: (N, C, H, W) final images (CPU). :param labels: (N,) labels.
    :param score: (N,) per-sample score (e.g. the classifier's confidence), or ``None``."""

    params: np.ndarray
    images: torch.Tensor
    labels: torch.Tensor
    score: np.ndarray | None = None


@torch.inference_mode()
def record_step_params(generator: Generator, policy: Policy, num_steps: int, num_samples: int, *, seed: int = 0,
                       batch_size: int = 500,
                       score_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> StepRecord:
    """Generate ``num_samples`` class-balanced samples and record every step's parameters per sample.

    :param score_fn: ``(images, labels) -> (B,)`` per-sample score (e.g.
        :meth:`~adanat_env.models.classifier.SmallCNN.label_probability`).
    """
    labels = balanced_labels(num_samples, generator.num_classes, generator.device)
    rng = generator.make_rng(seed)
    params, images, scores = [], [], []
    for chunk in labels.split(batch_size):
        res = generate(generator, chunk, policy, num_steps, rng=rng, record_params=True)
        params.append(res.params.float().cpu())
        images.append(res.images.cpu())
        if score_fn is not None:
            scores.append(score_fn(res.images, chunk).float().cpu())
    return StepRecord(torch.cat(params, dim=1).numpy(), torch.cat(images), labels.cpu(),
                      torch.cat(scores).numpy() if scores else None)


def adaptivity_table(params: np.ndarray, labels: np.ndarray | None = None,
                     score: np.ndarray | None = None) -> list[dict[str, Any]]:
    """One row per (step, parameter): mean, std, 10th / 90th percentile across samples, and the relative spread
    ``std / |mean|`` (NaN where the mean is ~0). With ``labels``, also ``class_share``: the share of the
    across-sample variance that lies between the class means (1: a per-class schedule; 0: all within classes);
    with ``score`` as well, ``within_corr``: the correlation of the within-class part (the parameter minus its
    class mean) with the per-sample score (e.g. the classifier's confidence in the final image).

    :param params: (T, N, 4) step parameters.
    :param labels: (N,) class labels of the samples.
    :param score: (N,) per-sample score (needs ``labels``).
    """
    if params.ndim != 3 or params.shape[2] != len(PARAM_NAMES):
        raise ValueError(f"params must have shape (T, N, 4), got {params.shape}")
    rows = []
    for t in range(params.shape[0]):
        for j, name in enumerate(PARAM_NAMES):
            x = params[t, :, j].astype(np.float64)
            mean, std = float(x.mean()), float(x.std())
            row = {"step": t, "param": name, "mean": mean, "std": std,
                   "p10": float(np.percentile(x, 10)), "p90": float(np.percentile(x, 90)),
                   "rel_spread": std / abs(mean) if abs(mean) > 1e-3 else float("nan")}
            if labels is not None:
                lab = np.asarray(labels).astype(np.int64)
                class_mean = np.bincount(lab, weights=x) / np.maximum(np.bincount(lab), 1)
                within = x - class_mean[lab]
                row["class_share"] = float(1 - within.var() / std ** 2) if std > 1e-12 else float("nan")
                if score is not None:
                    ok = within.std() > 1e-9 and np.std(score) > 0
                    row["within_corr"] = float(np.corrcoef(within, score)[0, 1]) if ok else float("nan")
            rows.append(row)
    return rows


def is_effectively_static(table: list[dict[str, Any]], threshold: float = 0.02) -> bool:
    """``True`` when no parameter varies across samples by more than ``threshold`` (relative std) at any step."""
    spreads = [r["rel_spread"] for r in table if not np.isnan(r["rel_spread"])]
    return bool(spreads) and max(spreads) < threshold


def split_by_score(score: np.ndarray, fraction: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of the ``fraction`` highest-scoring ("easy") and lowest-scoring ("hard") samples."""
    if not 0 < fraction <= 0.5:
        raise ValueError(f"fraction must be in (0, 0.5], got {fraction}")
    order = np.argsort(score, kind="stable")
    k = max(1, int(round(fraction * len(score))))
    easy, hard = np.zeros(len(score), bool), np.zeros(len(score), bool)
    easy[order[-k:]], hard[order[:k]] = True, True
    return easy, hard
