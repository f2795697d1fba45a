"""The embedded default: a tiny NAT + VQ tokenizer trained on Fashion-MNIST, shipped inside the package, and a
tiny text-conditioned NAT with its text encoder and prompt file (``assets/fashion_mnist_t2i/``, the same tokenizer).

The weights are safetensors files in ``adanat_env/assets/fashion_mnist/`` with a JSON beside each
(architecture config and provenance: command, seed, data checksum, final losses, wall time). They are the very
same :class:`~adanat_env.models.UViT` / :class:`~adanat_env.models.VQGAN` classes as the ImageNet-256
models, at tiny sizes. Loading needs no network. ``experiments/train_tokenizer.py`` and
``experiments/train_nat.py`` re-create them; any directory they write can be loaded with the same functions.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, TypeVar

import torch

from .generator import NATGenerator
from .inputs import InputError, read_json
from .models import UViT, UViTConfig, VQGAN, VQGANConfig, load_nat, load_tokenizer
from .utils import resolve_device

__all__ = ["ASSET_DIR", "TEXT_ASSET_DIR", "load_tokenizer_dir", "load_nat_dir", "load_embedded_generator", "read_meta"]

ASSET_DIR = Path(__file__).parent / "assets" / "fashion_mnist"
#: The tiny text-conditioned NAT (``experiments/train_nat.py --captions templates``): nat.*, text_encoder.*,
#: prompts.safetensors (its training captions, built from the class names with templates, and their classes).
TEXT_ASSET_DIR = Path(__file__).parent / "assets" / "fashion_mnist_t2i"
T = TypeVar("T")


def read_meta(directory: str | os.PathLike[str] | None, kind: str) -> tuple[Path, dict[str, Any]]:
    """Locate ``<kind>.safetensors`` and read ``<kind>.json`` in ``directory`` (default: the shipped assets)."""
    d = Path(directory).expanduser() if directory is not None else ASSET_DIR
    weights, meta = d / f"{kind}.safetensors", d / f"{kind}.json"
    for f in (weights, meta):
        if not f.is_file():
            hint = ("the package's shipped weights are missing: reinstall the package" if directory is None
                    else f"train them with 'python experiments/train_{kind}.py --out {d}'")
            raise FileNotFoundError(f"'{f}' not found ({hint}).")
    fix = (f"re-create it with 'python experiments/train_{kind}.py --out {d}'" if directory is not None
           else "reinstall the package")
    record = read_json(meta, f"the {kind}'s record", fix)
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise InputError(f"the {kind}'s record '{meta}' has no 'config' object (the architecture): {fix}")
    return weights, record


def _config(cls: type[T], meta: dict[str, Any], kind: str) -> T:
    """The architecture config of a record from :func:`read_meta`, refusing fields of another version by name."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(meta["config"]) - known)
    if unknown:
        raise InputError(f"the {kind}'s record has config fields this version does not know ({', '.join(unknown)}): "
                         "it was written by another version; load it with that version or re-train it")
    try:
        return cls(**meta["config"])
    except (TypeError, ValueError) as e:
        raise InputError(f"the {kind}'s record has an invalid config ({e}): re-train it") from None


def load_tokenizer_dir(directory: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu") -> tuple[VQGAN, dict]:
    """The frozen tokenizer saved in ``directory`` (default: shipped) and its metadata."""
    weights, meta = read_meta(directory, "tokenizer")
    return load_tokenizer(_config(VQGANConfig, meta, "tokenizer"), weights, resolve_device(device)), meta


def load_nat_dir(directory: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu") -> tuple[UViT, dict]:
    """The frozen NAT saved in ``directory`` (default: shipped) and its metadata."""
    weights, meta = read_meta(directory, "nat")
    return load_nat(_config(UViTConfig, meta, "nat"), weights, resolve_device(device)), meta


def load_embedded_generator(
    device: str | torch.device = "cpu",
    amp: str | None = None,
    nat_dir: str | os.PathLike[str] | None = None,
    tokenizer_dir: str | os.PathLike[str] | None = None,
    prompts: str | os.PathLike[str] | None = None,
) -> NATGenerator:
    """The Fashion-MNIST generator (shipped weights unless directories are given), ready to sample.

    A text-conditioned NAT (``--captions templates``) gets its prompt bank from ``prompts`` (default: the
    ``prompts.safetensors`` its training wrote beside it), with the prompts' classes.

    :param device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
    :param amp: autocast precision (``None``, ``"auto"``, ``"bf16"``, ``"fp16"``).
    :param nat_dir: directory written by ``experiments/train_nat.py`` (default: shipped weights).
    :param tokenizer_dir: directory written by ``experiments/train_tokenizer.py`` (default: shipped weights).
    """
    nat, _ = load_nat_dir(nat_dir, device)
    tok, _ = load_tokenizer_dir(tokenizer_dir, device)
    if not nat.config.text:
        if prompts is not None:
            raise InputError("prompts= is for a text-conditioned NAT; this one is class-conditional")
        return NATGenerator(nat, tok, amp=amp)
    from .prompts import load_prompts

    bank = load_prompts(prompts if prompts is not None else Path(nat_dir or ASSET_DIR) / "prompts.safetensors",
                        tokens=nat.config.num_clip_tokens, dim=nat.config.clip_dim)
    return NATGenerator(nat, tok, amp=amp, prompts=bank)
