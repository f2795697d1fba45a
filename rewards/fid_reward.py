r"""AdaNAT-FID (the paper's ablation, Table 4): the reward is the batch FID of the generated images.

FID is a statistic of a whole set, so it has to be attributed to samples. We give each sample the **jackknife
pseudo-value** of :math:`-\mathrm{FID}`:

.. math:: r_i = -\big(n\,\mathrm{FID}(X) - (n-1)\,\mathrm{FID}(X_{-i})\big)

where X is the batch of n final images and :math:`X_{-i}` the batch without sample i. The mean of the
:math:`r_i` is the jackknife (bias-corrected) estimate of :math:`-\mathrm{FID}`, so the batch as a whole is
rewarded for its FID, and the differences between samples are their leave-one-out contributions: a sample
whose removal would lower the FID gets a lower reward. (Giving every sample the same ``-FID(X)`` would make
the advantage of every sample in a batch identical, and PPO would learn nothing within a batch.)

The n leave-one-out statistics come from rank-one downdates of the batch mean and scatter, and the n matrix
square-root traces from one batched symmetric eigen-decomposition, on the reward's device.

**Samples that finish a few at a time** (adaptive step counts): with ``pool = K`` the jackknife runs over the
last K finished samples plus the new ones, and only the new ones get rewards: the same pseudo-value, with the
recent generations standing in for the rest of the batch. Prime the pool (:meth:`BatchFIDReward.prime`) with
a batch of the initial policy's generations; the pool is part of the reward's state (:meth:`state_dict`).

Reference statistics must not be the evaluation reference (that would train on the test set): the default
in :mod:`agents.training` uses the real TRAIN split's statistics, evaluation uses the test split.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from adanat_env.evaluation.metrics import FeatureFn, FeatureStats

__all__ = ["BatchFIDReward", "jackknife_fid"]


def _sqrt_psd(a: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh(a)
    return (v * w.clamp_min(0).sqrt()[..., None, :]) @ v.transpose(-1, -2)


def _fid_terms(mu: torch.Tensor, sigma: torch.Tensor, ref_mu: torch.Tensor, ref_sqrt: torch.Tensor,
               ref_trace: torch.Tensor) -> torch.Tensor:
    # tr sqrt(S1 S2) = sum sqrt(eig(R S1 R)) with R = sqrt(S2) (R S1 R is symmetric PSD)
    m = ref_sqrt @ sigma @ ref_sqrt
    eig = torch.linalg.eigvalsh(m).clamp_min(0)
    diff = mu - ref_mu
    return (diff * diff).sum(-1) + sigma.diagonal(dim1=-2, dim2=-1).sum(-1) + ref_trace - 2 * eig.sqrt().sum(-1)


def jackknife_fid(features: torch.Tensor, ref: FeatureStats,
                  rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(FID of the batch, FIDs of the batch without each sample), in float64.

    :param features: (n, D) features of the batch, n >= 3.
    :param ref: reference statistics.
    :param rows: leave out only these samples (default: every one); the second output has one entry per row.
    """
    x = features.double()
    n = x.shape[0]
    if n < 3:
        raise ValueError(f"batch FID needs at least 3 samples, got {n}")
    dev = x.device
    ref_mu = torch.as_tensor(ref.mu, dtype=torch.float64, device=dev)
    ref_sigma = torch.as_tensor(ref.sigma, dtype=torch.float64, device=dev)
    ref_sqrt = _sqrt_psd(ref_sigma)
    ref_trace = ref_sigma.diagonal().sum()
    mu = x.mean(0)
    d = x - mu
    scatter = d.T @ d
    full = _fid_terms(mu, scatter / (n - 1), ref_mu, ref_sqrt, ref_trace)
    # leave-one-out: mean and scatter without sample i (rank-one downdates)
    if rows is not None:
        d = d[rows.to(dev)]
    mu_loo = mu[None] - d / (n - 1)
    scatter_loo = scatter[None] - (n / (n - 1)) * d[:, :, None] * d[:, None, :]
    loo = _fid_terms(mu_loo, scatter_loo / (n - 2), ref_mu, ref_sqrt, ref_trace)
    return full, loo


class BatchFIDReward:
    """Per-sample jackknife pseudo-values of -FID (see module docstring), optionally scaled.

    :param feature_fn: frozen feature network ``images -> (B, D)``.
    :param reference: reference statistics (e.g. of the real train split).
    :param scale: rewards are multiplied by this (advantage normalisation makes it matter little).
    :param pool: 0: the jackknife runs over each call's images (a whole batch finishing together). K > 0: over
        the last K finished samples plus the new ones (see module docstring); :meth:`prime` it first.
    """

    def __init__(self, feature_fn: FeatureFn, reference: FeatureStats, scale: float = 1.0, pool: int = 0) -> None:
        self.feature_fn = feature_fn
        self.reference = FeatureStats(np.asarray(reference.mu), np.asarray(reference.sigma), int(reference.n))
        self.scale = float(scale)
        if pool < 0:
            raise ValueError(f"pool must be >= 0, got {pool}")
        self.pool_size = int(pool)
        self.pool: torch.Tensor | None = None  # (<= K, D) float64 features of the last finished samples
        self.last_fid: float | None = None

    @torch.inference_mode()
    def prime(self, images: torch.Tensor) -> None:
        """Fill the pool with the features of ``images`` (e.g. a batch of the initial policy's generations)."""
        self._push(self.feature_fn(images.float()).double())

    def _push(self, feats: torch.Tensor) -> None:
        x = feats if self.pool is None else torch.cat([self.pool.to(feats.device), feats])
        self.pool = x[-self.pool_size:].clone()

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        feats = self.feature_fn(images.float()).double()
        new = feats.shape[0]
        if self.pool_size:
            x = feats if self.pool is None else torch.cat([self.pool.to(feats.device), feats])
            if x.shape[0] < 3:
                raise ValueError("the FID reward's pool holds fewer than 3 samples: prime() it with a batch of "
                                 "generations first")
            rows = torch.arange(x.shape[0] - new, x.shape[0])
            full, loo = jackknife_fid(x, self.reference, rows)
            self._push(feats)
        else:
            x = feats
            full, loo = jackknife_fid(x, self.reference)
        self.last_fid = float(full)
        n = x.shape[0]
        return (-(n * full - (n - 1) * loo) * self.scale).float()

    def state_dict(self) -> dict[str, Any]:
        return {"pool": None if self.pool is None else self.pool.cpu()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.pool = state["pool"]
