"""Frozen networks: the generator's U-ViT NAT and MaskGIT VQGAN tokenizer (presets, loaders) and feature networks.

Presets
-------
``NAT_PRESETS``:

- ``"imagenet256-L"``: the official AdaNAT-L / AutoNAT-L U-ViT (768-d, 24 + 1 blocks, 8 heads, 193,655,297
  parameters). Loads the released ``nnet_ema.pth`` unchanged.
- ``"imagenet256-S"``: 512-d, 12 + 1 blocks. **Inferred**: no official S config exists; the width and depth
  follow the U-ViT-S convention and match the S manifest's shapes, and ``num_heads=8`` is a guess that does
  not show in the state dict (it does change the numerics).
- ``"cc3m-t2i"``: the official CC3M text-to-image U-ViT (1152-d, 28 + 1 blocks, 16 heads, 503,628,929
  parameters; the MUSE release's ``nnet_ema.pth``), conditioned on 77 CLIP ViT-bigG-14 ``last_hidden_state``
  tokens (1280-d) through one Linear (``context_embed``); its state dict equals the official manifest key for key.

``TOKENIZER_PRESETS``:

- ``"maskgit-vqgan-f16"``: the MaskGIT / MAGE VQGAN (f16, 1024 codes, 54,515,587 parameters). Loads
  ``vqgan_jax_strongaug.ckpt`` unchanged.
- ``"maskgit-vqgan-f16-512"``: the same network and weights at 512 px (fully convolutional: 32 x 32 tokens).

Any :class:`UViTConfig` / :class:`VQGANConfig` (or a dict of its fields) may be passed instead of a preset
name: the small embedded models use the very same classes.

Frozen feature networks, imported from their modules (not re-exported here): :mod:`adanat_env.models.classifier`
(the small Fashion-MNIST CNN, shipped) and :mod:`adanat_env.models.efficientnet` (ImageNet EfficientNet-Lite0;
optional extra ``metrics``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from ..checkpoint import extract_state_dict, load_state_dict_strict, read_checkpoint
from .uvit import UViT, UViTConfig, flops_per_forward
from .vqgan import VQGAN, VQGANConfig

__all__ = [
    "UViT",
    "UViTConfig",
    "VQGAN",
    "VQGANConfig",
    "NAT_PRESETS",
    "TOKENIZER_PRESETS",
    "nat_config",
    "tokenizer_config",
    "load_nat",
    "load_tokenizer",
    "flops_per_forward",
]

NAT_PRESETS: dict[str, UViTConfig] = {
    "imagenet256-L": UViTConfig(img_size=16, codebook_size=1024, embed_dim=768, depth=24, num_heads=8,
                                mlp_ratio=4, qkv_bias=False, num_classes=1001, skip=True),
    # Inferred (see module docstring): no official S config; num_heads=8 is not visible in the state dict.
    "imagenet256-S": UViTConfig(img_size=16, codebook_size=1024, embed_dim=512, depth=12, num_heads=8,
                                mlp_ratio=4, qkv_bias=False, num_classes=1001, skip=True),
    # The official CC3M text-to-image U-ViT (AdaNAT-Muse): 77 CLIP ViT-bigG-14 tokens of 1280 as the context.
    "cc3m-t2i": UViTConfig(img_size=16, codebook_size=1024, embed_dim=1152, depth=28, num_heads=16, mlp_ratio=4,
                           qkv_bias=False, num_classes=0, skip=True, clip_dim=1280, num_clip_tokens=77),
    # Not verified (see module docstring): the L widths, 32 x 32 tokens in 2 x 2 patches.
    "imagenet512-L": UViTConfig(img_size=32, codebook_size=1024, embed_dim=768, depth=24, num_heads=8,
                                mlp_ratio=4, qkv_bias=False, num_classes=1001, skip=True, patch_size=2),
}

TOKENIZER_PRESETS: dict[str, VQGANConfig] = {
    "maskgit-vqgan-f16": VQGANConfig(resolution=256, in_channels=3, ch=128, ch_mult=(1, 1, 2, 2, 4),
                                     num_res_blocks=2, embed_dim=256, n_embed=1024, norm_groups=32),
    "maskgit-vqgan-f16-512": VQGANConfig(resolution=512, in_channels=3, ch=128, ch_mult=(1, 1, 2, 2, 4),
                                         num_res_blocks=2, embed_dim=256, n_embed=1024, norm_groups=32),
}


def _resolve(spec: str | Mapping[str, Any] | Any, presets: Mapping[str, Any], cls: type, kind: str) -> Any:
    if isinstance(spec, cls):
        return spec
    if isinstance(spec, str):
        if spec not in presets:
            raise KeyError(f"unknown {kind} preset '{spec}'; choose one of {sorted(presets)} or pass a {cls.__name__}")
        return presets[spec]
    if isinstance(spec, Mapping):
        return cls(**spec)
    raise TypeError(f"{kind} must be a preset name, a {cls.__name__} or a dict of its fields, got {type(spec).__name__}")


def nat_config(spec: str | Mapping[str, Any] | UViTConfig) -> UViTConfig:
    """The :class:`UViTConfig` named by a preset, given as a dict, or passed through."""
    return _resolve(spec, NAT_PRESETS, UViTConfig, "NAT")


def tokenizer_config(spec: str | Mapping[str, Any] | VQGANConfig) -> VQGANConfig:
    """The :class:`VQGANConfig` named by a preset, given as a dict, or passed through."""
    return _resolve(spec, TOKENIZER_PRESETS, VQGANConfig, "tokenizer")


def _finish(build: Callable[[], nn.Module], checkpoint: str | os.PathLike[str] | Mapping[str, torch.Tensor] | None,
            device: str | torch.device, dtype: torch.dtype | None, frozen: bool, what: str, preset: bool) -> nn.Module:
    """The model from ``build()`` with ``checkpoint`` loaded; the file is read (and refused when unsafe or
    missing) before the model is built, which for the large presets allocates gigabytes."""
    raw = None
    if checkpoint is not None:
        raw = checkpoint if isinstance(checkpoint, Mapping) else read_checkpoint(checkpoint, what=f"{what} checkpoint")
    model = build()
    if raw is not None:
        load_state_dict_strict(model, extract_state_dict(raw, what=f"{what} checkpoint"), what=what,
                               hint="Check that the preset matches the checkpoint (e.g. imagenet256-L vs imagenet256-S)."
                               if preset else "Pass the weights written with this configuration (a trained model's "
                               "directory holds both; re-create it with its recorded command).")
    model = model.to(device=device, dtype=dtype)
    if frozen:
        model.eval().requires_grad_(False)
    return model


def load_nat(
    preset: str | Mapping[str, Any] | UViTConfig,
    checkpoint: str | os.PathLike[str] | Mapping[str, torch.Tensor] | None = None,
    device: str | torch.device = "cpu",
    *,
    dtype: torch.dtype | None = None,
    frozen: bool = True,
) -> UViT:
    """Build a U-ViT NAT and (optionally) load its weights.

    :param preset: ``"imagenet256-L"``, ``"imagenet256-S"``, ``"cc3m-t2i"``, a :class:`UViTConfig` or a dict of its
        fields.
    :param checkpoint: ``None`` gives **random weights** (for tests and benchmarks only: such a model
        generates noise). A path loads the official format (a plain state dict; ``position_ids`` keys are
        dropped; a top-level ``state_dict`` is unwrapped) or a ``.safetensors`` file, always safely.
        An already-loaded state dict is accepted too.
    :param device: where to put the model.
    :param dtype: optional parameter dtype (e.g. ``torch.bfloat16``); default keeps float32.
    :param frozen: eval mode and ``requires_grad=False`` (the generator is frozen in AdaNAT).
    :raises FileNotFoundError: the checkpoint file does not exist.
    :raises UnsafeCheckpointError: the file is a pickle with code in it; it was not run.
    :raises CheckpointMismatchError: keys or shapes do not match the preset (all of them are listed).
    """
    cfg = nat_config(preset)
    return _finish(lambda: UViT(cfg), checkpoint, device, dtype, frozen, f"NAT ({preset if isinstance(preset, str) else 'custom config'})",
                   isinstance(preset, str))


def load_tokenizer(
    preset: str | Mapping[str, Any] | VQGANConfig,
    checkpoint: str | os.PathLike[str] | Mapping[str, torch.Tensor] | None = None,
    device: str | torch.device = "cpu",
    *,
    dtype: torch.dtype | None = None,
    frozen: bool = True,
) -> VQGAN:
    """Build a MaskGIT VQGAN tokenizer and (optionally) load its weights.

    :param preset: ``"maskgit-vqgan-f16"``, a :class:`VQGANConfig` or a dict of its fields.
    :param checkpoint: ``None`` gives **random weights** (tests and benchmarks only). A path loads the
        official ``vqgan_jax_strongaug.ckpt`` (with or without a top-level ``state_dict``) or a
        ``.safetensors`` file, safely and strictly.
    :param device: where to put the model.
    :param dtype: optional parameter dtype.
    :param frozen: eval mode and ``requires_grad=False``.
    :raises FileNotFoundError / UnsafeCheckpointError / CheckpointMismatchError: as for :func:`load_nat`.
    """
    cfg = tokenizer_config(preset)
    return _finish(lambda: VQGAN(cfg), checkpoint, device, dtype, frozen,
                   f"tokenizer ({preset if isinstance(preset, str) else 'custom config'})", isinstance(preset, str))
