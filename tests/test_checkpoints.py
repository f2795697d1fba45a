"""Loading official-format checkpoints strictly and safely."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from adanat_env.checkpoint import (CheckpointError, CheckpointIntegrityError, CheckpointMismatchError,
                                   UnsafeCheckpointError, file_sha256, read_checkpoint, verify_recorded_sha256)
from adanat_env.embedded import ASSET_DIR, load_nat_dir
from adanat_env import models
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
    ("cc3m-t2i", "adanat_cc3m_uvit_t2i.json"),
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
    if preset == "cc3m-t2i":  # one forward at full size: the manifest's shapes, with 77 CLIP-bigG tokens
        _, meta = load_manifest(manifest)
        with torch.inference_mode():
            logits, feat = nat(torch.full((1, 256), 1024), torch.randn(1, 77, 1280))
        assert list(logits.shape) == meta["forward_check_B1"]["logits_shape"]
        assert list(feat.shape) == meta["forward_check_B1"]["feat_shape"] and bool(torch.isfinite(feat).all())


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


def test_malicious_pickle_is_refused_and_never_runs(tmp_path: Path, monkeypatch):
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
    built = []
    monkeypatch.setattr(models, "UViT", lambda cfg: built.append(cfg))
    with pytest.raises(UnsafeCheckpointError):  # refused before the 503 M-parameter model is built
        load_nat("cc3m-t2i", path)
    assert built == []
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


SHIPPED = ("nat", "tokenizer", "classifier")


def _copy_shipped(kind: str, dst: Path, with_json: bool = True) -> Path:
    """Copy ``<kind>.safetensors`` (and its provenance JSON) of the shipped assets into ``dst``."""
    for suffix in (".safetensors", ".json") if with_json else (".safetensors",):
        shutil.copy(ASSET_DIR / f"{kind}{suffix}", dst / f"{kind}{suffix}")
    return dst / f"{kind}.safetensors"


def _zero_block(path: Path) -> None:
    """Overwrite 200 KB inside the tensor data with zeros: safetensors itself cannot notice."""
    with open(path, "r+b") as f:
        f.seek(1_000_000)
        f.write(bytes(200_000))


@pytest.mark.parametrize("kind", SHIPPED)
def test_shipped_weights_match_their_recorded_sha256(kind: str):
    recorded = json.loads((ASSET_DIR / f"{kind}.json").read_text())["sha256"]
    assert recorded == file_sha256(ASSET_DIR / f"{kind}.safetensors")
    verify_recorded_sha256(ASSET_DIR / f"{kind}.safetensors")


@pytest.mark.parametrize("kind", SHIPPED)
def test_zeroed_block_in_shipped_weights_is_refused(tmp_path: Path, kind: str):
    path = _copy_shipped(kind, tmp_path)
    _zero_block(path)
    expected = json.loads((tmp_path / f"{kind}.json").read_text())["sha256"]
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(CheckpointIntegrityError) as info:
        read_checkpoint(path)
    msg = str(info.value)
    assert str(path) in msg and expected in msg and actual in msg and f"git checkout -- {path}" in msg
    (tmp_path / f"{kind}.json").unlink()
    read_checkpoint(path)  # without its recorded hash the damaged file loads silently: the check is what catches it


def test_the_embedded_loader_checks_the_hash(tmp_path: Path):
    path = _copy_shipped("nat", tmp_path)
    _zero_block(path)
    with pytest.raises(CheckpointIntegrityError, match="nat.safetensors' is damaged or was replaced"):
        load_nat_dir(tmp_path)


def test_truncated_safetensors_names_the_file(tmp_path: Path):
    path = _copy_shipped("tokenizer", tmp_path, with_json=False)
    path.write_bytes(path.read_bytes()[:100_000])
    with pytest.raises(CheckpointError, match="could not read tokenizer weights '.*tokenizer.safetensors'.*truncated"):
        read_checkpoint(path, what="tokenizer weights")


def test_unreadable_provenance_json_is_reported(tmp_path: Path):
    path = _copy_shipped("tokenizer", tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="cannot read '.*tokenizer.json'"):
        read_checkpoint(path)
