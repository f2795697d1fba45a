"""Loading official-format checkpoints strictly and safely."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from adanat_env.checkpoint import CheckpointMismatchError, UnsafeCheckpointError, read_checkpoint
from adanat_env.models import load_nat, load_tokenizer

from .conftest import TINY_NAT, load_manifest


def _random_state_dict(manifest: str, seed: int = 0) -> dict[str, torch.Tensor]:
    shapes, _ = load_manifest(manifest)
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=g) * 0.02 for k, s in shapes.items()}


@pytest.mark.slow
@pytest.mark.parametrize("preset,manifest", [
    ("imagenet256-L", "adanat_L_uvit_imagenet256.json"),
    ("imagenet256-S", "adanat_S_uvit_imagenet256_INFERRED.json"),
])
def test_official_nat_checkpoint_loads_strictly(tmp_path: Path, preset: str, manifest: str):
    sd = _random_state_dict(manifest)
    on_disk = dict(sd)
    on_disk["token_emb.position_ids"] = torch.arange(256)[None]  # older official code versions saved this
    path = tmp_path / "nnet_ema.pth"
    torch.save(on_disk, path)
    del on_disk
    nat = load_nat(preset, path)
    loaded = nat.state_dict()
    for k in ("token_emb.word_embeddings.weight", "mlm_layer.bias", "out_blocks.0.skip_linear.weight", "norm.weight"):
        torch.testing.assert_close(loaded[k], sd[k])
    assert set(loaded) == set(sd)


@pytest.mark.slow
@pytest.mark.parametrize("wrap", [True, False])
def test_official_vqgan_checkpoint_loads_with_or_without_state_dict_key(tmp_path: Path, wrap: bool):
    sd = _random_state_dict("vqgan_maskgit_f16_1024.json", seed=1)
    path = tmp_path / "vqgan_jax_strongaug.ckpt"
    torch.save({"state_dict": sd} if wrap else sd, path)
    tok = load_tokenizer("maskgit-vqgan-f16", path)
    torch.testing.assert_close(tok.state_dict()["quantize.embedding.weight"], sd["quantize.embedding.weight"])
    torch.testing.assert_close(tok.state_dict()["decoder.up.1.block.0.nin_shortcut.weight"],
                               sd["decoder.up.1.block.0.nin_shortcut.weight"])


def test_safetensors_round_trip(tmp_path: Path):
    from safetensors.torch import save_file

    src = load_nat(TINY_NAT)
    path = tmp_path / "nat.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    dst = load_nat(TINY_NAT, path)
    for k, v in src.state_dict().items():
        torch.testing.assert_close(dst.state_dict()[k], v)


def test_mismatched_checkpoint_lists_missing_unexpected_and_shapes(tmp_path: Path):
    sd = load_nat(TINY_NAT).state_dict()
    sd.pop("norm.weight")
    sd["extra.layer.weight"] = torch.zeros(3)
    sd["token_emb.word_embeddings.weight"] = torch.zeros(7, 32)
    path = tmp_path / "bad.pth"
    torch.save(sd, path)
    target = load_nat(TINY_NAT)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as info:
        load_nat(TINY_NAT, path)
    msg = str(info.value)
    assert "missing keys (1): norm.weight" in msg
    assert "unexpected keys (1): extra.layer.weight" in msg
    assert "token_emb.word_embeddings.weight: checkpoint (7, 32) vs model (33, 32)" in msg
    assert info.value.missing == ["norm.weight"]
    # nothing was half-loaded into a model we own
    for k, v in target.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_wrong_preset_for_checkpoint_is_reported(tmp_path: Path):
    small = load_nat({**TINY_NAT.to_dict(), "embed_dim": 16})
    path = tmp_path / "other.pth"
    torch.save(small.state_dict(), path)
    with pytest.raises(CheckpointMismatchError, match="shape mismatches"):
        load_nat(TINY_NAT, path)


def test_missing_file_is_named(tmp_path: Path):
    missing = tmp_path / "nope" / "nnet_ema.pth"
    with pytest.raises(FileNotFoundError, match="nnet_ema.pth"):
        load_nat(TINY_NAT, missing)


class _Payload:
    """A pickle payload that would create a marker file if it were ever executed."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path: Path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    sd = load_nat(TINY_NAT).state_dict()
    sd["payload"] = _Payload(str(marker))
    torch.save(sd, path)
    assert not marker.exists()
    with pytest.raises(UnsafeCheckpointError, match="Nothing in it was executed"):
        load_nat(TINY_NAT, path)
    with pytest.raises(UnsafeCheckpointError):
        load_tokenizer("maskgit-vqgan-f16", path)
    with pytest.raises(UnsafeCheckpointError):
        read_checkpoint(path)
    assert not marker.exists(), "the pickle payload ran"


def test_truncated_file_raises_clear_error(tmp_path: Path):
    path = tmp_path / "cut.pth"
    torch.save(load_nat(TINY_NAT).state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(Exception, match="could not read|refused"):
        load_nat(TINY_NAT, path)


def test_non_finite_weights_are_refused(tmp_path: Path):
    sd = load_nat(TINY_NAT).state_dict()
    sd["norm.weight"][0] = float("nan")
    path = tmp_path / "nan.pth"
    torch.save(sd, path)
    with pytest.raises(Exception, match="NaN/inf"):
        load_nat(TINY_NAT, path)


def test_garbage_file_is_reported_as_corrupt_not_unsafe(tmp_path: Path):
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"garbage" * 10)
    with pytest.raises(Exception, match="not a valid torch or safetensors file"):
        load_nat(TINY_NAT, path)
