"""A tiny word-level text encoder, trained jointly with a tiny text-conditioned NAT (``experiments/train_nat.py
--captions templates``), so that the text-to-image path runs on a laptop without CLIP.

It plays CLIP's part with CLIP's outputs, at toy size: ``last_hidden_state`` (B, L, D), the token states a
text-conditioned U-ViT reads through its ``context_embed``, and ``text_embeds`` (B, D), their mean over the
tokens (a text-conditioned discriminator's condition; CLIP's is a projection trained contrastively, this one is
trained only through the NAT's loss). Words are lower-cased runs of letters and digits (every
other non-space character is a word of its own); unknown words map to ``<unk>``, and every prompt is cut or padded
with ``<pad>`` to ``max_len`` tokens (the empty prompt is all padding: the unconditional context). No attention mask:
padding tokens are states like any other, as in CLIP's fixed-length context.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["TextEncoderConfig", "TinyTextEncoder", "words", "load_text_encoder", "save_text_encoder", "is_text_encoder_dir"]

PAD, UNK = "<pad>", "<unk>"
_CONFIG, _WEIGHTS = "text_encoder.json", "text_encoder.safetensors"


def words(text: str) -> list[str]:
    """Lower-cased words of ``text``: runs of letters and digits, and every other non-space character alone."""
    return re.findall(r"[a-z0-9]+|[^\sa-z0-9]", text.lower())


@dataclass(frozen=True)
class TextEncoderConfig:
    """:param vocab: the words, ``<pad>`` and ``<unk>`` first. :param max_len: tokens per prompt (L).
    :param dim: state width D. :param depth: transformer layers. :param num_heads: attention heads.
    :param embed_dim: width E of the pooled embedding."""

    vocab: tuple[str, ...] = field(default=(PAD, UNK))
    max_len: int = 12
    dim: int = 64
    depth: int = 2
    num_heads: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "vocab", tuple(self.vocab))
        if self.vocab[:2] != (PAD, UNK):
            raise ValueError(f"the vocabulary must start with {PAD!r}, {UNK!r}")
        if self.dim % self.num_heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by num_heads ({self.num_heads})")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TinyTextEncoder(nn.Module):
    """Word + position embedding -> pre-norm transformer -> LayerNorm: ``last_hidden_state``; its mean over the
    tokens: ``text_embeds``. See the module docstring."""

    def __init__(self, config: TextEncoderConfig) -> None:
        super().__init__()
        self.config = c = config
        self.index = {w: i for i, w in enumerate(c.vocab)}
        self.token_embedding = nn.Embedding(len(c.vocab), c.dim)
        self.position_embedding = nn.Parameter(torch.zeros(c.max_len, c.dim))
        layer = nn.TransformerEncoderLayer(c.dim, c.num_heads, 4 * c.dim, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, c.depth, enable_nested_tensor=False)
        self.final_norm = nn.LayerNorm(c.dim)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.position_embedding, std=0.01)

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        """(B, max_len) long ids of ``texts`` (cut or padded)."""
        unk, length = self.index[UNK], self.config.max_len
        ids = [[self.index.get(w, unk) for w in words(t)][:length] for t in texts]
        return torch.tensor([row + [0] * (length - len(row)) for row in ids], dtype=torch.long)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:param ids: (B, L) token ids. :return: ``(last_hidden_state (B, L, D), text_embeds (B, D))``."""
        x = self.token_embedding(ids) + self.position_embedding[: ids.shape[1]]
        states = self.final_norm(self.layers(x))
        return states, states.mean(1)

    @torch.inference_mode()
    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward`` of the tokenized ``texts`` on the encoder's device, as float32 CPU tensors."""
        dev = self.position_embedding.device
        states, pooled = self(self.tokenize(texts).to(dev))
        return states.float().cpu(), pooled.float().cpu()


def is_text_encoder_dir(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` holds a :class:`TinyTextEncoder` (``text_encoder.json``)."""
    return (Path(directory) / _CONFIG).is_file()


def save_text_encoder(encoder: TinyTextEncoder, directory: str | os.PathLike[str], **meta: Any) -> Path:
    """Write ``text_encoder.safetensors`` and ``text_encoder.json`` (config and ``meta``) to ``directory``."""
    from safetensors.torch import save_file

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in encoder.state_dict().items()}, str(d / _WEIGHTS))
    (d / _CONFIG).write_text(json.dumps({"kind": "text_encoder", "config": encoder.config.to_dict(), **meta}, indent=2))
    return d


def load_text_encoder(directory: str | os.PathLike[str], device: str | torch.device = "cpu") -> TinyTextEncoder:
    """The frozen encoder in ``directory`` (safetensors: no pickle is read).

    :raises adanat_env.inputs.InputError: a missing or malformed file, naming it.
    """
    from ..checkpoint import load_state_dict_strict, read_checkpoint
    from ..inputs import InputError, read_json

    d = Path(directory)
    meta = read_json(d / _CONFIG, "text encoder record", "write it with experiments/train_nat.py --captions templates")
    try:
        cfg = TextEncoderConfig(**meta["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"text encoder record '{d / _CONFIG}' is malformed ({e}): write it with "
                         "experiments/train_nat.py --captions templates") from None
    model = TinyTextEncoder(cfg)
    load_state_dict_strict(model, read_checkpoint(d / _WEIGHTS), what=f"text encoder ({d})")
    return model.to(device).eval().requires_grad_(False)
