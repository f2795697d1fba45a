"""Train the embedded default's tiny class-conditional NAT (the U-ViT class, tiny config) with MaskGIT training.

    python experiments/train_nat.py --tokenizer runs/tokenizer --seed 0 --out runs/nat
    python experiments/train_nat.py --data-dir ~/mnist --tokenizer runs/mnist-tok --out runs/mnist-nat

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
from safetensors.torch import save_file
from tqdm import tqdm

from adanat_env.config import command_line, run_script, start_run
from adanat_env.data import open_dataset
from adanat_env.embedded import load_tokenizer_dir
from adanat_env.inputs import InputError, check_fields, class_coverage
from adanat_env.generator import NATGenerator
from adanat_env.models import UViT, UViTConfig
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

    nat_cfg = UViTConfig(img_size=tokenizer.config.grid_size, codebook_size=tokenizer.config.n_embed,
                         embed_dim=cfg.embed_dim, depth=cfg.depth, num_heads=cfg.num_heads, mlp_ratio=cfg.mlp_ratio,
                         qkv_bias=False, num_classes=num_classes + 1, skip=True, dropout=cfg.dropout)
    model = UViT(nat_cfg).to(device)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    decay, no_decay = [], []
    for name, prm in model.named_parameters():
        (no_decay if prm.dim() < 2 or "embeddings" in name else decay).append(prm)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=cfg.lr, betas=(0.9, 0.96))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / cfg.warmup) * 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps)))
    gen = torch.Generator().manual_seed(cfg.seed)

    n = nat_cfg.num_tokens
    log: list[dict] = []
    perm, pos = torch.randperm(len(tokens), generator=gen), 0
    bar = tqdm(range(cfg.steps), desc="nat", dynamic_ncols=True, mininterval=2.0)
    for step in bar:
        if pos + cfg.batch_size > len(perm):
            perm, pos = torch.randperm(len(tokens), generator=gen), 0
        idx = perm[pos : pos + cfg.batch_size]
        pos += cfg.batch_size
        tgt, lab = tokens[idx], labels[idx].clone()
        lab[torch.rand(len(lab), generator=gen) < cfg.label_drop] = nat_cfg.null_class
        mask = random_mask(len(idx), n, gen)
        inp = tgt.masked_fill(mask, nat_cfg.mask_id)
        model.train()
        logits, _ = model(inp.to(device), lab.to(device))
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
            lg, _ = ema(tb.masked_fill(m, nat_cfg.mask_id).to(device), lb.to(device))
            losses.append(F.cross_entropy(lg[m.to(device)], tb.to(device)[m.to(device)]).item())
        test_loss = sum(losses) / len(losses)
        gen_model = NATGenerator(ema, tokenizer)
        grid_labels = torch.arange(num_classes, device=device).repeat_interleave(10)
        images = generate(gen_model, grid_labels, heuristic_schedule(8), seed=cfg.seed).images
        save_grid(images, out / "samples_heuristic_T8.png", nrow=10, scale=2)

    save_file({k: v.contiguous().cpu() for k, v in ema.state_dict().items()}, str(out / "nat.safetensors"))
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
