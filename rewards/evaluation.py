"""Evaluate a generation policy: class-balanced samples -> FID / KID / precision-recall / class accuracy."""

from __future__ import annotations

import time

import torch

from adanat_env.generator import Generator
from adanat_env.sampler import generate
from adanat_env.schedules import Policy

from .metrics import FeatureFn, ReferenceStats, extract_features, feature_stats, frechet_distance, \
    kernel_inception_distance, precision_recall_coverage

__all__ = ["balanced_labels", "sample_images", "evaluate_policy"]


def balanced_labels(num_samples: int, num_classes: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``num_samples`` labels cycling through the classes (class-balanced, as AdaGen evaluates)."""
    return torch.arange(num_samples, device=device) % num_classes


@torch.inference_mode()
def sample_images(generator: Generator, policy: Policy, num_steps: int, num_samples: int, *, seed: int = 0,
                  batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """``num_samples`` class-balanced images (CPU float tensor) and their labels, generated in batches."""
    labels = balanced_labels(num_samples, generator.num_classes, generator.device)
    rng = generator.make_rng(seed)
    images = [generate(generator, chunk, policy, num_steps, rng=rng).images.cpu() for chunk in labels.split(batch_size)]
    return torch.cat(images), labels.cpu()


def evaluate_policy(generator: Generator, policy: Policy, num_steps: int, feature_fn: FeatureFn,
                    reference: ReferenceStats, *, num_samples: int = 5000, seed: int = 0, batch_size: int = 500,
                    classifier: torch.nn.Module | None = None) -> tuple[dict, torch.Tensor]:
    """Metrics of ``policy`` on ``num_samples`` images; returns (metrics, the first 100 images).

    With ``classifier``, also ``class_accuracy``: the fraction of samples classified as their label.
    """
    t0 = time.perf_counter()
    images, labels = sample_images(generator, policy, num_steps, num_samples, seed=seed, batch_size=batch_size)
    t_gen = time.perf_counter() - t0
    feats = extract_features(feature_fn, images)
    fid = frechet_distance(feature_stats(feats), reference.stats)
    kid, kid_std = kernel_inception_distance(feats, reference.features, seed=seed)
    out = {"fid": fid, "kid_x1e3": 1e3 * kid, "kid_x1e3_std": 1e3 * kid_std,
           **precision_recall_coverage(reference.features, feats, seed=seed), "n": num_samples,
           "generate_s": round(t_gen, 2)}
    if classifier is not None:
        with torch.inference_mode():
            pred = torch.cat([classifier(b).argmax(1).cpu() for b in images.split(1000)])
        out["class_accuracy"] = float((pred == labels).float().mean())
    out["eval_s"] = round(time.perf_counter() - t0, 2)
    return out, images[:100]
