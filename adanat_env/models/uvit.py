"""The U-ViT masked-token generator (NAT) used by AdaNAT / AutoNAT.

A checkpoint-compatible re-implementation written from the published architecture description: token and
position embeddings (the mask id is ``codebook_size``), one class-context token, ``depth // 2`` in-blocks,
one mid-block and ``depth // 2`` out-blocks joined by long skip connections, a final LayerNorm, and an MLM
head tied to the token embedding. With the ``imagenet256-L`` preset its ``state_dict`` keys and shapes equal
the official checkpoint's (``tests/fixtures/manifests/adanat_L_uvit_imagenet256.json``), so the released
AutoNAT-L / AdaNAT-L ``nnet_ema.pth`` loads unchanged.

The same class, configured small, is the embedded default generator: there is one code path for all sizes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["UViTConfig", "UViT", "flops_per_forward"]


@dataclass(frozen=True)
class UViTConfig:
    """Constructor arguments of :class:`UViT` (the official names where they exist).

    :param img_size: side of the square token grid (16 for ImageNet-256 with an f16 tokenizer).
    :param codebook_size: number of tokenizer codes; the mask token id equals this value.
    :param embed_dim: transformer width D (also the dimension of the returned features).
    :param depth: ``depth // 2`` in-blocks, one mid-block, ``depth // 2`` out-blocks (``depth + 1`` blocks).
    :param num_heads: attention heads.
    :param mlp_ratio: MLP hidden width as a multiple of ``embed_dim``.
    :param qkv_bias: bias in the fused qkv projection (False in the official configs).
    :param num_classes: size of the class vocabulary *including* the trailing empty class used for
        classifier-free guidance (1001 for ImageNet: classes 0..999 plus the empty class 1000); unused (0) by a
        text-conditioned model.
    :param skip: long skip connections between in- and out-blocks (True in all official configs).
    :param dropout: embedding dropout, active in training mode only (0.1 officially).
    :param clip_dim: 0 for a class-conditional model; otherwise the model is text-conditioned: its context is
        ``num_clip_tokens`` text-encoder vectors of this size (CC3M: 77 CLIP ViT-bigG-14 ``last_hidden_state``
        tokens of 1280), each mapped by one Linear to a context token (the official ``context_embed``).
    :param num_clip_tokens: context tokens of a text-conditioned model (77).
    :param patch_size: side p of the square of p x p tokens that the transformer sees as one position (1 in
        every official config; 2 for the paper's ImageNet-512, whose 32 x 32 token grid becomes 16 x 16
        positions). With p > 1 the p^2 token embeddings of a patch are concatenated and mapped by one Linear
        (``token_emb.patch_embed``), and each position's output by one Linear to p^2 token states
        (``decoder_pred``, U-ViT's convention) before the tied output head; the features are per position.
    """

    img_size: int = 16
    codebook_size: int = 1024
    embed_dim: int = 768
    depth: int = 24
    num_heads: int = 8
    mlp_ratio: float = 4.0
    qkv_bias: bool = False
    num_classes: int = 1001
    skip: bool = True
    dropout: float = 0.1
    clip_dim: int = 0
    num_clip_tokens: int = 77
    patch_size: int = 1

    def __post_init__(self) -> None:
        if self.embed_dim % self.num_heads != 0:
            raise ValueError(f"embed_dim ({self.embed_dim}) must be divisible by num_heads ({self.num_heads})")
        if self.depth < 0 or self.depth % 2 != 0:
            raise ValueError(f"depth must be a non-negative even number, got {self.depth}")
        if self.clip_dim < 0 or (self.clip_dim and self.num_clip_tokens < 1):
            raise ValueError(f"a text-conditioned model needs clip_dim > 0 and num_clip_tokens >= 1, got "
                             f"{self.clip_dim} and {self.num_clip_tokens}")
        if self.patch_size < 1 or self.img_size % self.patch_size:
            raise ValueError(f"patch_size must divide img_size, got {self.patch_size} and {self.img_size}")
        if not self.clip_dim and self.num_classes < 2:
            raise ValueError("num_classes counts the real classes plus the empty class, so it must be >= 2")

    @property
    def text(self) -> bool:
        """Whether the model is text-conditioned (its context: ``num_clip_tokens`` vectors of ``clip_dim``)."""
        return self.clip_dim > 0

    @property
    def num_tokens(self) -> int:
        """Number of image tokens N = img_size ** 2."""
        return self.img_size * self.img_size

    @property
    def feature_grid(self) -> tuple[int, int]:
        """(h, w) of the positions the transformer sees, row-major: the token grid, or its p x p patches."""
        side = self.img_size // self.patch_size
        return side, side

    @property
    def num_positions(self) -> int:
        """Image positions of the transformer (= rows of the returned features): N / p^2."""
        return (self.img_size // self.patch_size) ** 2

    @property
    def mask_id(self) -> int:
        """Token id of the [MASK] token (one past the last codebook entry)."""
        return self.codebook_size

    @property
    def null_class(self) -> int:
        """The empty ("unconditional") class id used by classifier-free guidance (class-conditional models; a
        text-conditioned model's unconditional context is the empty prompt's embedding)."""
        if self.text:
            raise ValueError("a text-conditioned model has no empty class: its unconditional context is the empty "
                             "prompt's embedding")
        return self.num_classes - 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Embedding(nn.Module):
    """Word + learned absolute position embedding, LayerNorm(eps 1e-6), dropout (BERT-style key names).

    With ``patch > 1`` the ids form a (side x side) grid and each p x p patch of word embeddings (row-major
    within the patch) is concatenated and mapped by ``patch_embed`` to one position before the position embedding.
    """

    def __init__(self, vocab_size: int, dim: int, max_positions: int, dropout: float, patch: int = 1) -> None:
        super().__init__()
        self.patch = patch
        self.word_embeddings = nn.Embedding(vocab_size, dim)
        if patch > 1:
            self.patch_embed = nn.Linear(patch * patch * dim, dim)
        self.position_embeddings = nn.Embedding(max_positions, dim)
        self.LayerNorm = nn.LayerNorm(dim, eps=1e-6)
        self.dropout = nn.Dropout(dropout)
        nn.init.normal_(self.word_embeddings.weight, std=0.02)
        nn.init.normal_(self.position_embeddings.weight, std=0.02)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.word_embeddings(ids)
        if self.patch > 1:
            x = self.patch_embed(patchify(x, self.patch))
        x = x + self.position_embeddings.weight[: x.shape[1]]
        return self.dropout(self.LayerNorm(x))


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """(B, S*S, C) row-major grid -> (B, (S/p)^2, p*p*C): each p x p patch's vectors, row-major within it."""
    b, n, c = x.shape
    s = math.isqrt(n)
    x = x.reshape(b, s // p, p, s // p, p, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (s // p) ** 2, p * p * c)


def unpatchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """The inverse of :func:`patchify`: (B, P, p*p*C) -> (B, P*p*p, C) on the row-major token grid."""
    b, n, pc = x.shape
    s, c = math.isqrt(n), pc // (p * p)
    x = x.reshape(b, s, s, p, p, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, n * p * p, c)


class _Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, qkv_bias: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        # Fused output laid out as (3, heads, head_dim), as in the official checkpoints.
        qkv = self.qkv(x).view(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # scale = head_dim ** -0.5
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class _Block(nn.Module):
    """Pre-norm transformer block; out-blocks first fuse the long skip with ``skip_linear([x, skip])``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, skip: bool) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _Attention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = _Mlp(dim, int(dim * mlp_ratio))
        self.skip_linear = nn.Linear(2 * dim, dim) if skip else None

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if self.skip_linear is not None:
            x = self.skip_linear(torch.cat([x, skip], dim=-1))
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _MlmLayer(nn.Module):
    """Linear -> GELU -> LayerNorm -> product with the (tied) token embedding + bias."""

    def __init__(self, dim: int, vocab_size: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, dim)
        self.ln = nn.LayerNorm(dim)
        self.bias = nn.Parameter(torch.zeros(1, 1, vocab_size))

    def forward(self, x: torch.Tensor, word_embeddings: torch.Tensor, n_out: int) -> torch.Tensor:
        h = self.ln(F.gelu(self.fc(x)))
        # Only the first n_out vocabulary rows are needed (the mask column is dropped by the caller anyway).
        return h @ word_embeddings[:n_out].detach().t() + self.bias[..., :n_out]


class UViT(nn.Module):
    """Class- or text-conditional masked-token transformer with long skips (U-ViT), as used by AdaNAT / AutoNAT
    (ImageNet) and AdaNAT-Muse (CC3M).

    ``forward(ids, context)`` returns ``(logits, features)``:

    - ``logits`` (B, N, codebook_size): scores over the codebook at every image position (the mask token
      column is removed, as in the official model);
    - ``features`` (B, N / p^2, D): the output of the final LayerNorm at the image positions (the tokens, or
      with ``patch_size`` p > 1 the patches), the observation the AdaNAT policy sees.

    :param config: architecture; see :class:`UViTConfig`.
    """

    def __init__(self, config: UViTConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.token_emb = _Embedding(c.codebook_size + 1, c.embed_dim, c.num_positions, c.dropout, c.patch_size)
        # one class token, or one token per text-encoder vector (no position embedding: the official CC3M model)
        self.context_embed = (nn.Linear(c.clip_dim, c.embed_dim) if c.text
                              else _Embedding(c.num_classes, c.embed_dim, 1, 0.0))
        blk = lambda skip: _Block(c.embed_dim, c.num_heads, c.mlp_ratio, c.qkv_bias, skip)  # noqa: E731
        self.in_blocks = nn.ModuleList([blk(False) for _ in range(c.depth // 2)])
        self.mid_block = blk(False)
        self.out_blocks = nn.ModuleList([blk(c.skip) for _ in range(c.depth // 2)])
        self.norm = nn.LayerNorm(c.embed_dim)
        if c.patch_size > 1:  # each position's output -> its p^2 token states
            self.decoder_pred = nn.Linear(c.embed_dim, c.patch_size ** 2 * c.embed_dim)
        self.mlm_layer = _MlmLayer(c.embed_dim, c.codebook_size + 1)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    @property
    def num_tokens(self) -> int:
        return self.config.num_tokens

    def forward(self, ids: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Score every image position.

        :param ids: (B, N) long token ids in ``[0, codebook_size]``, ``codebook_size`` meaning masked,
            row-major over the token grid.
        :param context: class-conditional: (B,) or (B, 1) long class ids in ``[0, num_classes)``
            (``num_classes - 1`` is the empty class); text-conditioned: (B, num_clip_tokens, clip_dim) float
            text-encoder states (the empty prompt's for the unconditional branch).
        :return: ``(logits (B, N, codebook_size), features (B, N / p^2, D))``.
        """
        if self.config.text:
            want = (ids.shape[0], self.config.num_clip_tokens, self.config.clip_dim)
            if tuple(context.shape) != want or not context.is_floating_point():
                raise ValueError(f"a text-conditioned NAT takes a float context of shape {want}, got "
                                 f"{tuple(context.shape)} {context.dtype}")
            ctx = self.context_embed(context.to(self.context_embed.weight.dtype))
        else:
            ctx = self.context_embed(context[:, None] if context.dim() == 1 else context)
        x = self.token_emb(ids)
        x = torch.cat([ctx, x], dim=1)
        skips = []
        for block in self.in_blocks:
            x = block(x)
            skips.append(x)
        x = self.mid_block(x)
        for block in self.out_blocks:
            x = block(x, skips.pop())
        feat = self.norm(x)[:, ctx.shape[1]:]
        h = unpatchify(self.decoder_pred(feat), self.config.patch_size) if self.config.patch_size > 1 else feat
        logits = self.mlm_layer(h, self.token_emb.word_embeddings.weight, self.config.codebook_size)
        return logits, feat

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def flops_per_forward(config: UViTConfig) -> float:
    """Approximate multiply-adds x2 of one forward for one sample (used by benchmarks for context)."""
    n = config.num_positions + (config.num_clip_tokens if config.text else 1)
    d = config.embed_dim
    blocks = config.depth + 1
    per_block = 2 * n * (4 * d * d + 2 * d * int(d * config.mlp_ratio)) + 4 * n * n * d
    head = 2 * config.num_tokens * (d * d + d * config.codebook_size)
    skips = (config.depth // 2) * 2 * n * 2 * d * d
    patches = 0 if config.patch_size == 1 else 2 * 2 * config.num_positions * config.patch_size ** 2 * d * d
    return float(blocks * per_block + head + skips + patches)
