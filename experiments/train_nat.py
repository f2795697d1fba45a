"""Train the embedded default's tiny class-conditional NAT (the U-ViT class, tiny config) with MaskGIT training,
or, with ``--captions templates``, a tiny text-conditioned one with its text encoder.

    python experiments/train_nat.py --tokenizer runs/tokenizer --seed 0 --out runs/nat
    python experiments/train_nat.py --data-dir ~/mnist --tokenizer runs/mnist-tok --out runs/mnist-nat
    python experiments/train_nat.py --captions templates --seed 0 --out runs/nat-t2i

With ``--captions templates`` the data set's class names become captions through fixed templates
(:data:`adanat_env.prompts.CAPTION_TEMPLATES`: "a photo of a dress", ...; a stand-in for real captions), each
training image gets one of its class's captions at random, and a tiny word-level text encoder
(:mod:`adanat_env.models.text_encoder`) is trained jointly with the NAT, whose context is the encoder's token
states (the CC3M U-ViT's design at toy size). The caption is dropped to the empty prompt with ``--label-drop``.
The run also writes the encoder (``text_encoder.*``) and ``prompts.safetensors``: every caption and the empty
prompt, encoded, with their classes.

Reads top to bottom: config -> tokenize the train split once with the frozen tokenizer -> model -> training
loop -> EMA weights -> a sample grid -> safetensors + JSON. MaskGIT training: per sample a mask fraction
cos(pi/2 * r), r ~ U(0, 1) (at least one token), masked positions chosen uniformly; cross-entropy on masked
positions (label smoothing 0.1); the class is dropped to the empty class with probability 0.1 so that
classifier-free guidance works. About 17 minutes on 2 CPU cores with the defaults.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from safetensors.torch import save_file
from tqdm import tqdm

from adanat_env.config import command_line, run_script, start_run
from adanat_env.data import open_dataset
from adanat_env.embedded import load_tokenizer_dir
from adanat_env.inputs import InputError, check_fields, class_coverage
from adanat_env.generator import NATGenerator
from adanat_env.data import FASHION_MNIST_CLASSES
from adanat_env.models import UViT, UViTConfig
from adanat_env.models.text_encoder import PAD, UNK, TextEncoderConfig, TinyTextEncoder, save_text_encoder, words
from adanat_env.prompts import save_prompts, template_captions
from adanat_env.sampler import generate
from adanat_env.schedules import heuristic_schedule
from adanat_env.utils import save_grid


@dataclass
class Config:
    data_dir: str | None = None  # IDX directory or image folder (default: $ADANAT_DATA_DIR or the Debian fashion-mnist package)
    data_workers: int = 4  # image folders: decoding worker processes
    tokenizer: str | None = None  # directory with tokenizer.safetensors/json (default: the shipped one)
    out: str = "runs/nat"  # output directory
    seed: int = 0  # seeds data order, masking, init
    steps: int = 1200  # optimizer steps
    batch_size: int = 256  # sequences per step
    lr: float = 1e-3  # AdamW peak learning rate (cosine decay after warm-up)
    warmup: int = 100  # warm-up steps
    weight_decay: float = 0.03  # AdamW weight decay
    label_drop: float = 0.1  # probability of replacing the class by the empty class
    label_smoothing: float = 0.1  # cross-entropy label smoothing
    ema: float = 0.995  # EMA decay of the shipped weights
    device: str = "cpu"  # cpu | cuda | auto
    captions: str = ""  # "" (class-conditional) or "templates" (text-conditioned: captions from the class names, see above)
    class_names: str = ""  # --captions templates: comma-separated class names ("" = Fashion-MNIST's)
    text_dim: int = 64  # --captions templates: the text encoder's width
    # architecture (UViTConfig fields; img_size and codebook_size come from the tokenizer)
    embed_dim: int = 128
    depth: int = 4
    num_heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.1

    def validate(self) -> None:
        """Every option, before anything is read. :raises InputError: the first bad one."""
        check_fields(self, positive=("steps", "batch_size", "lr", "embed_dim", "depth", "num_heads", "mlp_ratio"),
                     nonnegative=("seed", "data_workers", "warmup", "weight_decay", "label_drop", "label_smoothing",
                                  "ema", "dropout"))
        for name in ("label_drop", "label_smoothing", "ema", "dropout"):
            if getattr(self, name) >= 1:
                raise InputError(f"--{name.replace('_', '-')} must be below 1, got {getattr(self, name)}")
        if self.embed_dim % self.num_heads:
            raise InputError(f"--embed-dim {self.embed_dim} must be a multiple of --num-heads {self.num_heads}")
        if self.captions not in ("", "templates"):
            raise InputError(f"--captions must be '' or 'templates', got {self.captions!r}")
        if self.text_dim < 2 or self.text_dim % 2:
            raise InputError(f"--text-dim must be a positive even number, got {self.text_dim}")


def caption_setup(cfg: Config, num_classes: int) -> tuple[list[str], list[int], TinyTextEncoder, torch.Tensor]:
    """--captions templates: (captions, their classes, a fresh text encoder over their words, the (P + 1, L)
    token ids of every caption and, last, of the empty prompt)."""
    names = [n.strip() for n in cfg.class_names.split(",")] if cfg.class_names else list(FASHION_MNIST_CLASSES)
    if len(names) != num_classes:
        raise InputError(f"--class-names gives {len(names)} names but the data set has {num_classes} classes")
    texts, classes = template_captions(names)
    vocab = sorted({w for t in texts for w in words(t)})
    longest = max(len(words(t)) for t in texts)
    encoder = TinyTextEncoder(TextEncoderConfig(vocab=(PAD, UNK, *vocab), max_len=longest, dim=cfg.text_dim))
    return texts, classes, encoder, encoder.tokenize([*texts, ""])


def random_mask(batch: int, n: int, gen: torch.Generator) -> torch.Tensor:
    """Boolean (batch, n): MaskGIT cosine-schedule masking, at least one masked position per row."""
    r = torch.rand(batch, generator=gen)
    k = torch.ceil(torch.cos(math.pi / 2 * r) * n).clamp(1, n).long()
    ranks = torch.rand(batch, n, generator=gen).argsort(1).argsort(1)
    return ranks < k[:, None]


def main(argv: list[str] | None = None) -> dict:
    cfg, device, out, t_start = start_run(Config, argv, __doc__)

    tokenizer, tok_meta = load_tokenizer_dir(cfg.tokenizer, device=device)
    side, channels = tokenizer.config.resolution, tokenizer.config.in_channels
    train, test = (open_dataset(split, cfg.data_dir, resolution=side, channels=channels, workers=cfg.data_workers)
                   for split in ("train", "test"))
    num_classes = train.num_classes
    class_coverage(train.labels, num_classes, f"the train split of '{train.directory}'",
                   "every class id below the largest needs images (renumber the classes)")
    test.check_classes(num_classes)  # fail now, not after training
    with torch.inference_mode():  # tokenize the train split once, streamed (unreadable image files are skipped)
        parts = [(tokenizer.encode(xb.to(device).float().div_(255.0)).cpu(), yb)
                 for xb, yb in tqdm(train.batches(None, side, channels, 1000), desc="tokenize", mininterval=2.0)]
    tokens, labels = torch.cat([t for t, _ in parts]), torch.cat([y for _, y in parts])

    text = cfg.captions == "templates"
    torch.manual_seed(cfg.seed)
    if text:
        texts, text_classes, encoder, caption_ids = caption_setup(cfg, num_classes)
        per_class = len(texts) // num_classes
        context = dict(num_classes=0, clip_dim=encoder.config.dim, num_clip_tokens=encoder.config.max_len)
    else:
        context = dict(num_classes=num_classes + 1)
    nat_cfg = UViTConfig(img_size=tokenizer.config.grid_size, codebook_size=tokenizer.config.n_embed,
                         embed_dim=cfg.embed_dim, depth=cfg.depth, num_heads=cfg.num_heads, mlp_ratio=cfg.mlp_ratio,
                         qkv_bias=False, skip=True, dropout=cfg.dropout, **context)
    # the text encoder trains with the NAT as one module ("nat.*" / "text.*"), so one EMA and one optimizer hold both
    model = nn.ModuleDict({"nat": UViT(nat_cfg), **({"text": encoder} if text else {})}).to(device)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    decay, no_decay = [], []
    for name, prm in model.named_parameters():
        (no_decay if prm.dim() < 2 or "embedding" in name else decay).append(prm)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=cfg.lr, betas=(0.9, 0.96))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / cfg.warmup) * 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps)))
    gen = torch.Generator().manual_seed(cfg.seed)

    def forward(net: nn.ModuleDict, ids: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Logits of the NAT under class ids, or (text) under caption ids (the last = the empty prompt)."""
        if text:
            return net["nat"](ids, net["text"](caption_ids.to(device)[cond])[0])[0]
        return net["nat"](ids, cond)[0]

    def conditions(lab: torch.Tensor, g: torch.Generator, drop: float) -> torch.Tensor:
        """Class ids -> condition ids: a caption of the class at random (text), the empty one with prob. ``drop``."""
        if text:
            lab = lab * per_class + torch.randint(per_class, lab.shape, generator=g)
            null = len(texts)
        else:
            null = nat_cfg.null_class
        return lab.masked_fill(torch.rand(len(lab), generator=g) < drop, null)

    n = nat_cfg.num_tokens
    log: list[dict] = []
    perm, pos = torch.randperm(len(tokens), generator=gen), 0
    bar = tqdm(range(cfg.steps), desc="nat", dynamic_ncols=True, mininterval=2.0)
    for step in bar:
        if pos + cfg.batch_size > len(perm):
            perm, pos = torch.randperm(len(tokens), generator=gen), 0
        idx = perm[pos : pos + cfg.batch_size]
        pos += cfg.batch_size
        tgt, lab = tokens[idx], conditions(labels[idx], gen, cfg.label_drop)
        mask = random_mask(len(idx), n, gen)
        inp = tgt.masked_fill(mask, nat_cfg.mask_id)
        model.train()
        logits = forward(model, inp.to(device), lab.to(device))
        loss = F.cross_entropy(logits[mask.to(device)], tgt.to(device)[mask.to(device)], label_smoothing=cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        with torch.no_grad():
            d = min(cfg.ema, (1 + step) / (10 + step))
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.lerp_(pm, 1 - d)
        if step % 25 == 0 or step == cfg.steps - 1:
            log.append({"step": step, "loss": loss.item(), "lr": sched.get_last_lr()[0]})
            bar.set_postfix(loss=f"{loss.item():.3f}")
    wall_train = time.perf_counter() - t_start

    # Held-out masked-token loss of the EMA model on the test split (fixed masks), and a sample grid.
    with torch.inference_mode():
        test_parts = [(tokenizer.encode(xb.to(device).float().div_(255.0)).cpu(), yb)
                      for xb, yb in test.batches(None, side, channels, 1000)]
        g = torch.Generator().manual_seed(1234)
        losses = []
        for tb, lb in test_parts:
            m = random_mask(len(tb), n, g)
            lg = forward(ema, tb.masked_fill(m, nat_cfg.mask_id).to(device), conditions(lb, g, 0.0).to(device))
            losses.append(F.cross_entropy(lg[m.to(device)], tb.to(device)[m.to(device)]).item())
        test_loss = sum(losses) / len(losses)
        if text:  # every caption and the empty prompt, encoded by the trained (EMA) encoder
            states, pooled = ema["text"].encode([*texts, ""])
            save_text_encoder(ema["text"], out, command=command_line(argv), seed=cfg.seed)
            save_prompts(out / "prompts.safetensors", states[:-1], pooled[:-1], states[-1], pooled[-1], texts,
                         "text_encoder (this directory)", text_classes)
            gen_model = NATGenerator(ema["nat"], tokenizer, prompts=states.to(device))
            grid_labels = (torch.arange(num_classes, device=device) * per_class + 1).repeat_interleave(10)  # "a photo of a ..."
        else:
            gen_model = NATGenerator(ema["nat"], tokenizer)
            grid_labels = torch.arange(num_classes, device=device).repeat_interleave(10)
        images = generate(gen_model, grid_labels, heuristic_schedule(8), seed=cfg.seed).images
        save_grid(images, out / "samples_heuristic_T8.png", nrow=10, scale=2)

    save_file({k: v.contiguous().cpu() for k, v in ema["nat"].state_dict().items()}, str(out / "nat.safetensors"))
    meta = {
        "kind": "nat",
        "class": "adanat_env.models.UViT",
        "config": nat_cfg.to_dict(),
        "train_config": asdict(cfg),
        "command": command_line(argv),
        "seed": cfg.seed,
        "tokenizer": {"config": tokenizer.config.to_dict(), "command": tok_meta.get("command")},
        "data": {"directory": str(train.directory), "train_sha256": train.sha256, "test_sha256": test.sha256,
                 "train_size": len(train), "num_classes": num_classes},
        "final_losses": {"train_ce": log[-1]["loss"], "test_masked_ce_ema": test_loss},
        "wall_time_s": round(time.perf_counter() - t_start, 1),
        "train_time_s": round(wall_train, 1),
        "torch": torch.__version__,
    }
    (out / "nat.json").write_text(json.dumps(meta, indent=2))
    (out / "nat_log.json").write_text(json.dumps(log))
    print(json.dumps({"out": str(out), "train_ce": log[-1]["loss"], "test_masked_ce": test_loss, "wall_time_s": meta["wall_time_s"]}))
    return meta


if __name__ == "__main__":
    run_script(main)
