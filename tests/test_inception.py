"""The FID Inception path: only a local weights file, a clear error without it, strict loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from adanat_env.evaluation.inception import INCEPTION_FILENAME, FIDInceptionV3
from adanat_env.evaluation.metrics import feature_extractor


def test_missing_weights_name_the_file_and_never_download(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=INCEPTION_FILENAME):
        feature_extractor("inception")
    with pytest.raises(FileNotFoundError, match="Nothing is downloaded"):
        feature_extractor("inception", inception_weights=tmp_path / INCEPTION_FILENAME)


def test_local_weights_load_strictly_and_give_pool3_features(tmp_path: Path):
    sd = {k: v for k, v in FIDInceptionV3().state_dict().items() if not k.endswith("num_batches_tracked")}
    assert sum(v.numel() for k, v in sd.items() if "running" not in k) == 23_850_960
    path = tmp_path / INCEPTION_FILENAME
    torch.save(sd, path)
    fn = feature_extractor("inception", inception_weights=path)
    out = fn(torch.rand(2, 1, 28, 28))
    assert out.shape == (2, 2048) and bool(torch.isfinite(out).all())
    sd["fc.weight"] = torch.zeros(1000, 2048)
    torch.save(sd, path)
    with pytest.raises(Exception, match="fc.weight"):
        feature_extractor("inception", inception_weights=path)
