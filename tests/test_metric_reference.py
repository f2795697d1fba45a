"""FID as the field computes it (issue #28, part 5): the project's FID Inception and metrics against the reference
tools (pytorch-fid 0.3.0, torch-fidelity 0.4.0, prdc 0.2: the dev extra), on shared weights and features.

Nothing is downloaded: one random state dict of the FID Inception (random BatchNorm statistics too) is loaded
into all three networks. Differences by design, measured below and stated in docs/benchmarks.md:

- torch-fidelity takes uint8 images, resizes them with its TensorFlow-1 compatible bilinear kernel and scales
  them by ``(x - 128) / 128``; the official AdaNAT evaluation and pytorch-fid (and this port) take floats in
  [0, 1], resize with torch's bilinear and scale by ``2x - 1``. The networks are compared on inputs that make the
  scalings equal (the port's ``x / 256``), the preprocessing separately.
- KID: each tool draws its own subsets; with one subset of all samples there is nothing to draw, and the values
  must agree.
- prdc uses a strict ``<`` for the k-NN balls, torch-fidelity and this port ``<=``: equal on continuous features.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adanat_env.evaluation.inception import FIDInceptionV3, fid_inception_features
from adanat_env.evaluation.metrics import (feature_stats, frechet_distance, kernel_inception_distance,
                                           precision_recall_coverage)

from .conftest import declare_torchvision_box_ops

declare_torchvision_box_ops()
pytorch_fid_inception = pytest.importorskip("pytorch_fid.inception", reason="dev extra: pytorch-fid")
torch_fidelity_inception = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3",
                                               reason="dev extra: torch-fidelity")
tf_fid = pytest.importorskip("torch_fidelity.metric_fid")
tf_kid = pytest.importorskip("torch_fidelity.metric_kid")
tf_prc = pytest.importorskip("torch_fidelity.metric_prc")
prdc = pytest.importorskip("prdc", reason="dev extra: prdc")


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.fixture(scope="module")
def shared_weights(tmp_path_factory):
    """Random weights whose BatchNorm statistics are those of real activations (one pass in training mode over
    random images), so that the features depend on the image, as with the trained weights."""
    torch.manual_seed(0)
    net = FIDInceptionV3()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative: the statistics of this one pass
    with torch.no_grad():
        net.train()(torch.rand(6, 3, 299, 299))
    sd = net.state_dict()
    path = tmp_path_factory.mktemp("inception") / "pt_inception-random.pth"
    torch.save(sd, path)
    return path, sd


@pytest.mark.slow
def test_the_inception_port_equals_pytorch_fid_and_torch_fidelity_on_shared_weights(shared_weights, monkeypatch):
    path, sd = shared_weights
    ours = fid_inception_features(path)
    monkeypatch.setattr(pytorch_fid_inception, "load_state_dict_from_url", lambda *a, **k: sd)
    pfid = pytorch_fid_inception.InceptionV3([3], resize_input=True, normalize_input=True).eval()
    tfid = torch_fidelity_inception.FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path)).eval()

    g = torch.Generator().manual_seed(1)
    native = torch.randint(0, 256, (3, 3, 299, 299), dtype=torch.uint8, generator=g)  # no resize anywhere
    small = torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8, generator=g)  # resized by each tool
    with torch.inference_mode():
        a = ours(native.float() / 255)
        b = pfid(native.float() / 255)[0].flatten(1)
        c = tfid(native)[0]
        a_fidelity_scaling = ours(native.float() / 256)  # 2x - 1 at x / 256 is torch-fidelity's (x - 128) / 128
        a_small, b_small = ours(small.float() / 255), pfid(small.float() / 255)[0].flatten(1)
        c_small = tfid(small)[0]
    assert a.shape == b.shape == c.shape == (3, 2048)
    assert float((a[0] - a[1]).abs().max()) > 1e-2 * float(a.abs().max())  # the features depend on the image
    assert _rel(a, b) < 1e-4 and _rel(a_small, b_small) < 1e-4  # pytorch-fid: same preprocessing, same network
    assert _rel(a_fidelity_scaling, c) < 1e-4  # torch-fidelity: the same network
    # by design, torch-fidelity's scaling (and at other sizes its TF1 resize) is not the official evaluation's: the
    # features differ (how much on random weights says nothing of the trained ones')
    assert _rel(a, c) > 1e-4 and _rel(a_small, c_small) > 1e-4


@pytest.fixture(scope="module")
def features():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(600, 64))
    fake = 0.9 * rng.normal(size=(500, 64)) + 0.15
    return real, fake


def test_fid_equals_torch_fidelity_on_shared_features(features):
    real, fake = features
    ours = frechet_distance(feature_stats(fake), feature_stats(real))
    s1, s2 = (tf_fid.fid_features_to_statistics(torch.from_numpy(f)) for f in (fake, real))
    theirs = tf_fid.fid_statistics_to_metric(s1, s2, verbose=False)[tf_fid.KEY_METRIC_FID]
    assert abs(ours - theirs) / theirs < 1e-6


def test_kid_equals_torch_fidelity_with_one_subset_of_all_samples(features):
    real, fake = features
    n = min(len(real), len(fake))
    ours, _ = kernel_inception_distance(fake[:n], real[:n], subsets=1, subset_size=n)
    theirs = tf_kid.kid_features_to_metric(torch.from_numpy(fake[:n]), torch.from_numpy(real[:n]), kid_subsets=1,
                                           kid_subset_size=n, verbose=False)[tf_kid.KEY_METRIC_KID_MEAN]
    assert abs(ours - theirs) / theirs < 1e-6


def test_precision_recall_coverage_equal_torch_fidelity_and_prdc(features):
    real, fake = features
    ours = precision_recall_coverage(real, fake, k=3)
    fidelity = tf_prc.prc_features_to_metric(torch.from_numpy(fake).float(), torch.from_numpy(real).float(),
                                             prc_neighborhood=3, prc_batch_size=10000, save_cpu_ram=False,
                                             verbose=False)
    reference = prdc.compute_prdc(real_features=real, fake_features=fake, nearest_k=3)
    for key in ("precision", "recall"):
        assert ours[key] == pytest.approx(fidelity[key], rel=1e-6)
        assert ours[key] == pytest.approx(reference[key], rel=1e-6)
    assert ours["coverage"] == pytest.approx(reference["coverage"], rel=1e-6)
    assert 0.05 < ours["precision"] < 0.95 and 0.05 < ours["recall"] < 0.95  # not a trivial 0 / 1 agreement
