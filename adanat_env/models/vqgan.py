"""The MaskGIT VQGAN tokenizer (the MAGE / AdaNAT "vq-f16-jax" port), checkpoint-compatible.

Written from the published architecture description. With the ``maskgit-vqgan-f16`` preset the
``state_dict`` keys and shapes equal the official ``vqgan_jax_strongaug.ckpt``
(``tests/fixtures/manifests/vqgan_maskgit_f16_1024.json``). It keeps the quirks of that port:

- no attention blocks, no ``quant_conv`` / ``post_quant_conv``;
- the encoder downsamples by 2x2 **average pooling** (no conv); the decoder upsamples by nearest x2 + conv;
- in a residual block whose channel count changes, the 1x1 ``nin_shortcut`` is applied to the **residual
  branch's output** ``h`` (not to the block input) and the block returns ``shortcut(h) + h``: the input is
  discarded. That is why ``nin_shortcut.weight`` has shape (out, out, 1, 1);
- images are in ``[0, 1]`` both ways, and decoded images are clamped to ``[0, 1]``.

The same class, configured small, is the embedded default tokenizer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["VQGANConfig", "VQGAN"]


@dataclass(frozen=True)
class VQGANConfig:
    """Constructor arguments of :class:`VQGAN`.

    :param resolution: input/output image side in pixels.
    :param in_channels: image channels (3; grayscale data is repeated to RGB by the data loaders).
    :param ch: base channel count.
    :param ch_mult: channel multiplier per resolution level; ``len(ch_mult) - 1`` halvings, so the
        token grid side is ``resolution / 2 ** (len(ch_mult) - 1)``.
    :param num_res_blocks: residual blocks per level (encoder and decoder alike).
    :param embed_dim: codebook vector size (= encoder output channels; this port has no quant convs).
    :param n_embed: codebook size.
    :param norm_groups: GroupNorm groups (32 officially; smaller for tiny configs).
    """

    resolution: int = 256
    in_channels: int = 3
    ch: int = 128
    ch_mult: tuple[int, ...] = field(default=(1, 1, 2, 2, 4))
    num_res_blocks: int = 2
    embed_dim: int = 256
    n_embed: int = 1024
    norm_groups: int = 32

    def __post_init__(self) -> None:
        object.__setattr__(self, "ch_mult", tuple(int(m) for m in self.ch_mult))
        for m in self.ch_mult:
            if (self.ch * m) % self.norm_groups:
                raise ValueError(f"every level's channels ({self.ch}*{m}) must be divisible by norm_groups")
        if self.resolution % (2 ** (len(self.ch_mult) - 1)):
            raise ValueError("resolution must be divisible by 2 ** (len(ch_mult) - 1)")

    @property
    def grid_size(self) -> int:
        """Side of the token grid."""
        return self.resolution // 2 ** (len(self.ch_mult) - 1)

    @property
    def num_tokens(self) -> int:
        return self.grid_size**2

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ch_mult"] = list(self.ch_mult)
        return d


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, channels, eps=1e-6)


class _ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, groups: int) -> None:
        super().__init__()
        self.norm1 = _norm(c_in, groups)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.norm2 = _norm(c_out, groups)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        # MaskGIT quirk: the shortcut maps the residual output h (out -> out), not the input.
        self.nin_shortcut = nn.Conv2d(c_out, c_out, 1, bias=False) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        if self.nin_shortcut is not None:
            return self.nin_shortcut(h) + h
        return x + h


class _Mid(nn.Module):
    def __init__(self, c: int, groups: int) -> None:
        super().__init__()
        self.block_1 = _ResBlock(c, c, groups)
        self.block_2 = _ResBlock(c, c, groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.block_1(x))


class _Upsample(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Level(nn.Module):
    def __init__(self, blocks: list[nn.Module], upsample: nn.Module | None = None) -> None:
        super().__init__()
        self.block = nn.ModuleList(blocks)
        if upsample is not None:
            self.upsample = upsample


class _Encoder(nn.Module):
    def __init__(self, c: VQGANConfig) -> None:
        super().__init__()
        g = c.norm_groups
        self.conv_in = nn.Conv2d(c.in_channels, c.ch, 3, padding=1, bias=False)
        self.down = nn.ModuleList()
        c_in = c.ch
        for m in c.ch_mult:
            blocks = []
            for _ in range(c.num_res_blocks):
                blocks.append(_ResBlock(c_in, c.ch * m, g))
                c_in = c.ch * m
            self.down.append(_Level(blocks))
        self.mid = _Mid(c_in, g)
        self.norm_out = _norm(c_in, g)
        self.conv_out = nn.Conv2d(c_in, c.embed_dim, 1)

    def level_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of each resolution level (before its average pool); the last one feeds ``mid``."""
        h = self.conv_in(x)
        out, last = [], len(self.down) - 1
        for i, level in enumerate(self.down):
            for block in level.block:
                h = block(h)
            out.append(h)
            if i != last:
                h = F.avg_pool2d(h, 2)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.level_outputs(x)[-1])
        return self.conv_out(F.silu(self.norm_out(h)))


class _Decoder(nn.Module):
    def __init__(self, c: VQGANConfig) -> None:
        super().__init__()
        g = c.norm_groups
        c_in = c.ch * c.ch_mult[-1]
        self.conv_in = nn.Conv2d(c.embed_dim, c_in, 3, padding=1)
        self.mid = _Mid(c_in, g)
        levels: list[nn.Module] = []
        for i in reversed(range(len(c.ch_mult))):
            blocks = []
            for _ in range(c.num_res_blocks):
                blocks.append(_ResBlock(c_in, c.ch * c.ch_mult[i], g))
                c_in = c.ch * c.ch_mult[i]
            levels.append(_Level(blocks, _Upsample(c_in) if i != 0 else None))
        # Checkpoint index = resolution level: up.0 is the full-resolution level, applied last.
        self.up = nn.ModuleList(reversed(levels))
        self.norm_out = _norm(c_in, g)
        self.conv_out = nn.Conv2d(c_in, c.in_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for i in reversed(range(len(self.up))):
            level = self.up[i]
            for block in level.block:
                h = block(h)
            if i != 0:
                h = level.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class _Quantizer(nn.Module):
    def __init__(self, n_embed: int, dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_embed, dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / n_embed, 1.0 / n_embed)

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Indices (B, H, W) of the nearest codebook vectors (L2) for z (B, C, H, W)."""
        b, c, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, c).float()
        cb = self.embedding.weight.float()
        d = flat.pow(2).sum(1, keepdim=True) - 2.0 * flat @ cb.t() + cb.pow(2).sum(1)[None]
        return d.argmin(1).view(b, h, w)


class VQGAN(nn.Module):
    """MaskGIT VQGAN: ``encode(images) -> tokens``, ``decode(tokens) -> images``.

    :param config: architecture; see :class:`VQGANConfig`.
    """

    def __init__(self, config: VQGANConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = _Encoder(config)
        self.decoder = _Decoder(config)
        self.quantize = _Quantizer(config.n_embed, config.embed_dim)

    @property
    def num_tokens(self) -> int:
        return self.config.num_tokens

    def encode_latent(self, images: torch.Tensor) -> torch.Tensor:
        """Continuous encoder output z (B, embed_dim, h, w) for images (B, 3, H, W) in [0, 1]."""
        return self.encoder(images)

    def encoder_feature_maps(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The encoder's level outputs: one map per ``ch_mult`` entry, (B, ch * ch_mult[i], H / 2**i, W / 2**i).

        The last one is what the encoder's middle blocks and output conv turn into :meth:`encode_latent`.

        :param images: (B, in_channels, H, W) in [0, 1].
        """
        return self.encoder.level_outputs(images)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Token ids (B, N), row-major over the (h, w) grid, for images (B, 3, H, W) in [0, 1]."""
        if images.dim() != 4 or images.shape[1] != self.config.in_channels:
            raise ValueError(f"expected images (B, {self.config.in_channels}, H, W), got {tuple(images.shape)}")
        return self.quantize.nearest(self.encoder(images)).flatten(1)

    def embed_codes(self, tokens: torch.Tensor) -> torch.Tensor:
        """Codebook vectors (B, embed_dim, h, w) for token ids (B, N) or (B, h, w)."""
        g = self.config.grid_size
        if tokens.dim() == 2:
            if tokens.shape[1] != g * g:
                raise ValueError(f"expected {g * g} tokens per image, got {tokens.shape[1]}")
            tokens = tokens.view(-1, g, g)
        if tokens.dim() != 3:
            raise ValueError(f"expected tokens (B, N) or (B, h, w), got {tuple(tokens.shape)}")
        return self.quantize.embedding(tokens).permute(0, 3, 1, 2)

    def decode_latent(self, z: torch.Tensor) -> torch.Tensor:
        """Raw decoder output (not clamped) for latents (B, embed_dim, h, w); used for training."""
        return self.decoder(z)

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) clamped to [0, 1] for token ids (B, N) or (B, h, w) in [0, n_embed)."""
        return self.decoder(self.embed_codes(tokens)).clamp(0.0, 1.0)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
