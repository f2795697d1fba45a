"""Prompts for text-to-image NATs, as precomputed text-encoder states (nothing is downloaded at run time).

A prompt file (safetensors) holds, for P prompts and the empty prompt:

============================  =====================  ==========================================================
tensor                        shape                  what
============================  =====================  ==========================================================
``last_hidden_state``         (P, 77, 1280)          the text encoder's token states (the NAT's context)
``text_embeds``               (P, 1280)              its pooled, projected embedding (a text-conditioned
                                                     discriminator's condition, L2-normalised there)
``empty_last_hidden_state``   (77, 1280)             the same for the empty prompt "": the unconditional
``empty_text_embeds``         (1280,)                branch of classifier-free guidance
============================  =====================  ==========================================================

and, as metadata, the prompts' text (``prompts``, a JSON list), the encoder (``encoder``) and, where known,
the class each prompt describes (``classes``, a JSON list: what a prompt-fidelity metric checks the images
against). The official CC3M NAT reads CLIP ViT-bigG-14's ``last_hidden_state`` (77 x 1280). Write a file from a
text file of prompts, one per line, with a local copy of that encoder (the optional ``transformers`` package;
nothing is downloaded), or with the shipped tiny encoder of the Fashion-MNIST text NAT
(:mod:`adanat_env.models.text_encoder`)::

    python -m adanat_env.prompts --prompts prompts.txt --encoder /path/to/clip-vit-bigG-14 --out prompts.safetensors

or from states computed elsewhere with :func:`save_prompts`. :func:`load_prompts` checks a file and returns a
:class:`PromptBank`, whose ``states`` are a :class:`~adanat_env.generator.NATGenerator`'s ``prompts=`` (prompt
ids 0 .. P - 1 are the generator's "labels"; the empty prompt is its empty class).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .inputs import InputError, existing_file

__all__ = ["PromptBank", "load_prompts", "save_prompts", "encode_prompts", "main", "CAPTION_TEMPLATES",
           "template_captions"]

#: Caption templates for a class-labelled data set without captions (the tiny text NAT's training captions).
CAPTION_TEMPLATES = ("a {}", "a photo of a {}", "a grayscale photo of a {}", "a picture of a {}", "an image of a {}",
                     "a small photo of a {}", "a product photo of a {}", "{}")


def template_captions(class_names: list[str] | tuple[str, ...],
                      templates: tuple[str, ...] = CAPTION_TEMPLATES) -> tuple[list[str], list[int]]:
    """Captions built from class names with templates, class-major (caption ``c * K + k`` is template k of class
    c), and the class of each: a stand-in for real captions, said plainly wherever it is used."""
    texts = [t.format(name.lower()) for name in class_names for t in templates]
    return texts, [c for c in range(len(class_names)) for _ in templates]

_KEYS = ("last_hidden_state", "text_embeds", "empty_last_hidden_state", "empty_text_embeds")


@dataclass(frozen=True)
class PromptBank:
    """P prompts and the empty one, as text-encoder outputs.

    :param states: (P + 1, L, D) token states, the empty prompt's last.
    :param pooled: (P + 1, E) pooled embeddings, the empty prompt's last.
    :param texts: the P prompts.
    :param encoder: the encoder that computed them.
    :param classes: the class each prompt describes, where the file says (else ``None``).
    :param images: the image each prompt is a caption of (a path relative to the data directory), where the file
        says (a captioned data set; else ``None``).
    """

    states: torch.Tensor
    pooled: torch.Tensor
    texts: tuple[str, ...]
    encoder: str
    classes: tuple[int, ...] | None = None
    images: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.texts)


def save_prompts(path: str | os.PathLike[str], states: torch.Tensor, pooled: torch.Tensor,
                 empty_states: torch.Tensor, empty_pooled: torch.Tensor, texts: list[str], encoder: str,
                 classes: list[int] | None = None, images: list[str] | None = None) -> Path:
    """Write a prompt file (see the module docstring); returns its path.

    :raises InputError: shapes that do not fit each other or the texts.
    """
    p = len(texts)
    if states.dim() != 3 or states.shape[0] != p or pooled.shape != (p, pooled.shape[-1]):
        raise InputError(f"{p} prompts need (P, L, D) states and (P, E) pooled embeddings, got {tuple(states.shape)} "
                         f"and {tuple(pooled.shape)}")
    if tuple(empty_states.shape) != tuple(states.shape[1:]) or tuple(empty_pooled.shape) != (pooled.shape[-1],):
        raise InputError(f"the empty prompt's states must be {tuple(states.shape[1:])} and its pooled embedding "
                         f"({pooled.shape[-1]},), got {tuple(empty_states.shape)} and {tuple(empty_pooled.shape)}")
    if classes is not None and len(classes) != p:
        raise InputError(f"{p} prompts need {p} classes, got {len(classes)}")
    if images is not None and len(images) != p:
        raise InputError(f"{p} prompts need {p} image paths, got {len(images)}")
    tensors = dict(zip(_KEYS, (states, pooled, empty_states, empty_pooled)))
    out = Path(path)
    meta = {"prompts": json.dumps(list(texts)), "encoder": encoder}
    if classes is not None:
        meta["classes"] = json.dumps([int(c) for c in classes])
    if images is not None:
        meta["images"] = json.dumps([str(i) for i in images])
    save_file({k: v.detach().float().contiguous().cpu() for k, v in tensors.items()}, str(out), metadata=meta)
    return out


def load_prompts(path: str | os.PathLike[str], *, tokens: int | None = None, dim: int | None = None) -> PromptBank:
    """Read and check a prompt file.

    :param tokens: the context length the NAT expects (77), checked when given.
    :param dim: the state size the NAT expects (1280), checked when given.
    :raises InputError: missing file, not a prompt file, or states of another shape than the NAT's.
    """
    fix = "write one with 'python -m adanat_env.prompts --prompts PROMPTS.txt --encoder DIR --out FILE'"
    p = existing_file("prompt file", path, fix)
    try:
        with safe_open(str(p), framework="pt") as f:
            missing = [k for k in _KEYS if k not in f.keys()]
            if missing:
                raise InputError(f"prompt file '{p}' lacks {', '.join(missing)}: {fix}")
            t = {k: f.get_tensor(k).float() for k in _KEYS}
            meta = f.metadata() or {}
    except SafetensorError as e:
        raise InputError(f"prompt file '{p}' is not a safetensors file ({e}): {fix}") from None
    texts = tuple(json.loads(meta.get("prompts", "[]")))
    states, pooled = t["last_hidden_state"], t["text_embeds"]
    if states.dim() != 3 or len(texts) != states.shape[0] or pooled.shape != (len(texts), pooled.shape[-1]):
        raise InputError(f"prompt file '{p}': {len(texts)} prompt texts but states {tuple(states.shape)} and pooled "
                         f"embeddings {tuple(pooled.shape)}: {fix}")
    if (tokens is not None and states.shape[1] != tokens) or (dim is not None and states.shape[2] != dim):
        raise InputError(f"prompt file '{p}' holds {states.shape[1]} x {states.shape[2]} token states but the NAT "
                         f"reads {tokens} x {dim}: encode the prompts with the NAT's text encoder")
    if not all(bool(torch.isfinite(v).all()) for v in t.values()):
        raise InputError(f"prompt file '{p}' holds NaN or inf: {fix}")
    classes = tuple(json.loads(meta["classes"])) if "classes" in meta else None
    images = tuple(json.loads(meta["images"])) if "images" in meta else None
    for what, v in (("classes", classes), ("image paths", images)):
        if v is not None and len(v) != len(texts):
            raise InputError(f"prompt file '{p}': {len(texts)} prompts but {len(v)} {what}: {fix}")
    return PromptBank(torch.cat([states, t["empty_last_hidden_state"][None]]),
                      torch.cat([pooled, t["empty_text_embeds"][None]]), texts, meta.get("encoder", ""), classes,
                      images)


def encode_prompts(texts: list[str], encoder_dir: str | os.PathLike[str], device: str = "cpu",
                   batch_size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """The (P, L, D) token states and (P, E) pooled embeddings of ``texts`` from a local text encoder: a directory
    that ``transformers.CLIPTextModelWithProjection.from_pretrained`` reads (CLIP: L = 77; nothing is downloaded),
    or one holding a tiny encoder of :mod:`adanat_env.models.text_encoder` (``text_encoder.json``).

    :raises ImportError: ``transformers`` is not installed (naming the install command).
    :raises InputError: the directory does not exist.
    """
    d = Path(encoder_dir)
    if not d.is_dir():
        raise InputError(f"--encoder '{d}' is not a directory: pass a local copy of the text encoder (e.g. CLIP "
                         "ViT-bigG-14's text tower, as transformers saves it); nothing is downloaded")
    from .models.text_encoder import is_text_encoder_dir, load_text_encoder

    if is_text_encoder_dir(d):
        return load_text_encoder(d, device).encode(list(texts))
    from .evaluation.clip_score import import_transformers

    CLIPTextModelWithProjection, CLIPTokenizer = import_transformers("CLIPTextModelWithProjection", "CLIPTokenizer",
                                                                     what="encoding prompts with CLIP")
    tokenizer = CLIPTokenizer.from_pretrained(str(d), local_files_only=True)
    model = CLIPTextModelWithProjection.from_pretrained(str(d), local_files_only=True).to(device).eval()
    states, pooled = [], []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            batch = tokenizer(texts[i:i + batch_size], padding="max_length", max_length=77, truncation=True,
                              return_tensors="pt").to(device)
            out = model(**batch)
            states.append(out.last_hidden_state.float().cpu())
            pooled.append(out.text_embeds.float().cpu())
    return torch.cat(states), torch.cat(pooled)


def read_captions(path: str | os.PathLike[str], image_prefix: str = "") -> tuple[list[str], list[str]]:
    """(captions, the image of each) from a captions file: JSON ``{image path: caption or [captions]}`` (paths
    relative to the data directory), or COCO's ``captions_*.json`` (``images`` and ``annotations``; paths are
    ``image_prefix + file_name``).

    :raises InputError: a missing, malformed or empty file, naming it.
    """
    from .inputs import read_json

    fix = "a JSON object {image path: caption or [captions]} or COCO's captions_*.json"
    p = existing_file("--captions", path, f"pass {fix}")
    data = read_json(p, "captions file", f"pass {fix}")
    pairs: list[tuple[str, str]] = []
    if isinstance(data, dict) and "annotations" in data and "images" in data:  # COCO
        names = {im["id"]: image_prefix + im["file_name"] for im in data["images"]}
        pairs = [(names[a["image_id"]], a["caption"].strip()) for a in data["annotations"] if a["image_id"] in names]
    elif isinstance(data, dict):
        for image, caps in data.items():
            for c in ([caps] if isinstance(caps, str) else caps):
                if not isinstance(c, str):
                    raise InputError(f"captions file '{p}': the captions of '{image}' are not text: pass {fix}")
                pairs.append((str(image), c.strip()))
    else:
        raise InputError(f"captions file '{p}' is not {fix}")
    pairs = [(i, c) for i, c in pairs if c]
    if not pairs:
        raise InputError(f"captions file '{p}' holds no caption: pass {fix}")
    return [c for _, c in pairs], [i for i, _ in pairs]


def main(argv: list[str] | None = None) -> Path:
    """Write a prompt file from a text file of prompts (one per line) with a local text encoder."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 allow_abbrev=False)
    src_opts = ap.add_mutually_exclusive_group(required=True)
    src_opts.add_argument("--prompts", help="text file, one prompt per line (blank lines skipped)")
    src_opts.add_argument("--captions", help="a captioned data set's captions: JSON {image path relative to the data "
                                             "directory: caption or [captions]}, or COCO's captions_*.json (its "
                                             "file names prefixed by --image-prefix); every caption becomes a prompt "
                                             "tied to its image")
    ap.add_argument("--image-prefix", default="", help="COCO captions: the folder of the images under the data "
                                                       "directory, e.g. train/ (default: none)")
    ap.add_argument("--encoder", required=True, help="local text-encoder directory (transformers format)")
    ap.add_argument("--out", required=True, help="the prompt file to write (.safetensors)")
    ap.add_argument("--device", default="cpu", help="where to run the encoder (default: cpu)")
    args = ap.parse_args(argv)
    images = None
    if args.captions is not None:
        texts, images = read_captions(args.captions, args.image_prefix)
    else:
        src = existing_file("--prompts", args.prompts, "pass a text file with one prompt per line")
        texts = [line.strip() for line in src.read_text().splitlines() if line.strip()]
        if not texts:
            raise InputError(f"--prompts '{src}' holds no prompt: one prompt per line")
    states, pooled = encode_prompts([*texts, ""], args.encoder, args.device)
    out = save_prompts(args.out, states[:-1], pooled[:-1], states[-1], pooled[-1], texts, str(args.encoder),
                       images=images)
    print(json.dumps({"out": str(out), "prompts": len(texts), "states": list(states.shape[1:])}))
    return out


if __name__ == "__main__":
    from .config import run_script

    run_script(main)
