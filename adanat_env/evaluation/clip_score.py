"""CLIP score of text-to-image samples, with a local CLIP model (nothing is downloaded).

``CLIP score = 100 * max(cos(image embedding, text embedding), 0)``, averaged over the samples: torchmetrics'
``CLIPScore`` definition (Hessel et al.'s CLIPScore scales by 2.5 instead of 100). The model is a directory that
``transformers.CLIPModel.from_pretrained`` reads (e.g. ``openai/clip-vit-large-patch14`` saved locally; the
optional ``transformers`` package). Images are resized (bicubic) to the model's input side, grey is repeated to
RGB, and they are normalised with the directory's ``preprocessor_config.json`` mean and std (CLIP's when absent).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from ..inputs import InputError

__all__ = ["load_clip_scorer", "import_transformers"]


def import_transformers(*names: str, what: str) -> tuple:
    """``transformers``' classes ``names``, or a clear error: not installed, or broken by a torchvision built for
    another torch (transformers imports it when present; its C ops then fail to register).

    :raises ImportError: naming the fix.
    """
    try:
        import transformers

        return tuple(getattr(transformers, n) for n in names)
    except ImportError as e:
        raise ImportError(f"{what} needs the optional 'transformers' package: pip install transformers") from e
    except RuntimeError as e:  # transformers' lazy import of torchvision
        if "torchvision" not in str(e):
            raise
        raise ImportError(f"{what}: transformers failed importing torchvision ({e}): install the torchvision built "
                          "for your torch, or uninstall torchvision") from None

_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def load_clip_scorer(clip_dir: str | os.PathLike[str], device: str | torch.device = "cpu",
                     batch_size: int = 256) -> Callable[[torch.Tensor, list[str]], float]:
    """A function ``(images (B, C, H, W) in [0, 1], texts (B,)) -> mean CLIP score`` with the model in ``clip_dir``.

    :raises InputError: ``clip_dir`` is not a directory. :raises ImportError: ``transformers`` is missing.
    """
    d = Path(clip_dir)
    if not d.is_dir():
        raise InputError(f"--clip-dir '{d}' is not a directory: pass a local CLIP model (transformers format, e.g. "
                         "openai/clip-vit-large-patch14 saved with save_pretrained); nothing is downloaded")
    CLIPModel, CLIPTokenizer = import_transformers("CLIPModel", "CLIPTokenizer", what="the CLIP score")
    model = CLIPModel.from_pretrained(str(d), local_files_only=True).to(device).eval().requires_grad_(False)
    tokenizer = CLIPTokenizer.from_pretrained(str(d), local_files_only=True)
    pre = d / "preprocessor_config.json"
    cfg = json.loads(pre.read_text()) if pre.is_file() else {}
    mean = torch.tensor(cfg.get("image_mean", _CLIP_MEAN), device=device).view(1, 3, 1, 1)
    std = torch.tensor(cfg.get("image_std", _CLIP_STD), device=device).view(1, 3, 1, 1)
    side = model.config.vision_config.image_size
    max_len = model.config.text_config.max_position_embeddings

    @torch.inference_mode()
    def score(images: torch.Tensor, texts: list[str]) -> float:
        if len(texts) != len(images):
            raise ValueError(f"{len(images)} images but {len(texts)} texts")
        total = 0.0
        for i in range(0, len(images), batch_size):
            x = images[i:i + batch_size].to(device).float()
            x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
            x = F.interpolate(x, size=(side, side), mode="bicubic", align_corners=False).clamp(0, 1)
            img = model.get_image_features(pixel_values=(x - mean) / std)
            tok = tokenizer(list(texts[i:i + batch_size]), padding=True, truncation=True, max_length=max_len,
                            return_tensors="pt").to(device)
            txt = model.get_text_features(**tok)
            total += float((100 * F.cosine_similarity(img, txt, dim=-1)).clamp(min=0).sum())
        return total / len(images)

    return score
