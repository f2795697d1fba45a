"""Train the embedded default's tiny VQ tokenizer (the MaskGIT VQGAN class, tiny config) on an IDX data set or an image folder.

    python experiments/train_tokenizer.py --seed 0 --out runs/tokenizer          # Fashion-MNIST (default)
    python experiments/train_tokenizer.py --data-dir ~/mnist --out runs/mnist-tok  # any IDX data set
    python experiments/train_tokenizer.py --data-dir ~/pets --resolution 32 --out runs/pets-tok  # an image folder (RGB)

Reads top to bottom: config -> data -> model -> codebook init -> training loop (straight-through VQ with
codebook + commitment losses and dead-code restarts) -> test-split reconstruction -> safetensors + JSON.
About 15-19 minutes on 2 CPU cores with the defaults (bf16 autocast on CPU is several times faster than fp32 for
these small convolutions).
"""

from __future__ import annotations

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
from adanat_env.inputs import InputError, check_fields
from adanat_env.models import VQGAN, VQGANConfig
from adanat_env.utils import save_grid


@dataclass
class Config:
    data_dir: str | None = None  # IDX directory or image folder (default: $ADANAT_DATA_DIR or the Debian fashion-mnist package)
    channels: int = 3  # image folders: decode to 3 (RGB) or 1 (grey) channels; IDX data is grey
    data_workers: int = 4  # image folders: decoding worker processes
    out: str = "runs/tokenizer"  # output directory
    seed: int = 0  # seeds data order, init and restarts
    steps: int = 2500  # optimizer steps
    batch_size: int = 128  # images per step
    lr: float = 2e-3  # AdamW peak learning rate (cosine decay, 100-step warm-up)
    beta: float = 0.25  # commitment loss weight
    restart_every: int = 100  # dead-code restart period (steps); 0 disables
    device: str = "cpu"  # cpu | cuda | auto
    amp: str = "bf16"  # autocast for the convolutions: bf16 | none
    # architecture (VQGANConfig fields)
    resolution: int = 28
    ch: int = 32
    ch_mult: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    embed_dim: int = 32
    n_embed: int = 256
    norm_groups: int = 8

    def validate(self) -> None:
        """Every option, before anything is read. :raises InputError: the first bad one."""
        check_fields(self, positive=("steps", "batch_size", "lr", "resolution", "ch", "num_res_blocks", "embed_dim",
                                     "n_embed", "norm_groups"),
                     nonnegative=("seed", "data_workers", "beta", "restart_every"),
                     choices={"channels": (1, 3), "amp": ("bf16", "none")})
        if not self.ch_mult or min(self.ch_mult) < 1:
            raise InputError(f"--ch-mult must be one or more integers >= 1, got {' '.join(map(str, self.ch_mult))}")


def vq_losses(model: VQGAN, x: torch.Tensor, beta: float) -> tuple[torch.Tensor, dict[str, float], torch.Tensor]:
    z = model.encode_latent(x).float()
    codes = model.quantize.nearest(z.detach())
    e = model.quantize.embedding(codes).permute(0, 3, 1, 2)
    z_q = z + (e - z).detach()  # straight-through
    recon = model.decode_latent(z_q).float()
    rec = F.mse_loss(recon, x) + 0.5 * F.l1_loss(recon, x)
    codebook = F.mse_loss(e, z.detach())
    commit = F.mse_loss(z, e.detach())
    loss = rec + codebook + beta * commit
    return loss, {"rec": rec.item(), "codebook": codebook.item(), "commit": commit.item()}, (codes, z)


def main(argv: list[str] | None = None) -> dict:
    cfg, device, out, t_start = start_run(Config, argv, __doc__)

    train, test = (open_dataset(split, cfg.data_dir, resolution=cfg.resolution, channels=cfg.channels,
                                workers=cfg.data_workers) for split in ("train", "test"))
    x_train = train.load(None, cfg.resolution, train.channels)[0].float().div_(255.0)
    x_test = test.load(None, cfg.resolution, train.channels)[0].float().div_(255.0)

    vq_cfg = VQGANConfig(resolution=cfg.resolution, in_channels=train.channels, ch=cfg.ch, ch_mult=cfg.ch_mult,
                         num_res_blocks=cfg.num_res_blocks, embed_dim=cfg.embed_dim, n_embed=cfg.n_embed,
                         norm_groups=cfg.norm_groups)
    model = VQGAN(vq_cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps)))
    gen = torch.Generator().manual_seed(cfg.seed)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp == "bf16")

    # Codebook init: encoder outputs of random training images (avoids dead codes from the start).
    with torch.no_grad(), amp:
        z0 = model.encode_latent(x_train[torch.randperm(len(x_train), generator=gen)[:512]].to(device)).float()
    flat0 = z0.permute(0, 2, 3, 1).reshape(-1, vq_cfg.embed_dim)
    model.quantize.embedding.weight.data.copy_(flat0[torch.randperm(len(flat0), generator=gen)[: vq_cfg.n_embed]])

    usage = torch.zeros(vq_cfg.n_embed, device=device)
    log: list[dict] = []
    perm = torch.randperm(len(x_train), generator=gen)
    pos = 0
    bar = tqdm(range(cfg.steps), desc="tokenizer", dynamic_ncols=True, mininterval=2.0)
    for step in bar:
        if pos + cfg.batch_size > len(perm):
            perm, pos = torch.randperm(len(x_train), generator=gen), 0
        x = x_train[perm[pos : pos + cfg.batch_size]].to(device)
        pos += cfg.batch_size
        model.train()
        with amp:
            loss, parts, (codes, z) = vq_losses(model, x, cfg.beta)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        usage += torch.bincount(codes.flatten(), minlength=vq_cfg.n_embed)
        if cfg.restart_every and (step + 1) % cfg.restart_every == 0 and step + 1 < cfg.steps * 0.9:
            dead = torch.nonzero(usage == 0).flatten()
            if len(dead):  # re-seed unused codes with current encoder outputs
                flat = z.detach().permute(0, 2, 3, 1).reshape(-1, vq_cfg.embed_dim)
                pick = torch.randint(0, len(flat), (len(dead),), generator=gen).to(device)
                model.quantize.embedding.weight.data[dead] = flat[pick]
            parts["dead"] = int(len(dead))
            usage.zero_()
        if step % 50 == 0 or step == cfg.steps - 1:
            log.append({"step": step, "loss": loss.item(), **parts})
            bar.set_postfix(rec=f"{parts['rec']:.4f}", cb=f"{parts['codebook']:.4f}")

    # Test-split reconstruction (the frozen model exactly as shipped: fp32, quantised tokens).
    model.eval().requires_grad_(False)
    mse_sum, n, used = 0.0, 0, torch.zeros(vq_cfg.n_embed, dtype=torch.bool)
    with torch.inference_mode():
        for xb in x_test.split(500):
            xb = xb.to(device)
            tok = model.encode(xb)
            used[tok.flatten().cpu()] = True
            rec = model.decode(tok)
            mse_sum += F.mse_loss(rec, xb, reduction="sum").item()
            n += xb.numel()
        sample = x_test[:32].to(device)
        save_grid(torch.cat([sample, model.decode(model.encode(sample))]), out / "reconstructions.png", nrow=16, scale=2)
    mse = mse_sum / n
    wall = time.perf_counter() - t_start

    save_file({k: v.contiguous().cpu() for k, v in model.state_dict().items()}, str(out / "tokenizer.safetensors"))
    meta = {
        "kind": "tokenizer",
        "class": "adanat_env.models.VQGAN",
        "config": vq_cfg.to_dict(),
        "train_config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()},
        "command": command_line(argv),
        "seed": cfg.seed,
        "data": {"directory": str(train.directory), "train_sha256": train.sha256, "test_sha256": test.sha256,
                 "train_size": len(train), "test_size": len(test)},
        "final_losses": log[-1],
        "test_reconstruction": {"mse": mse, "psnr_db": 10 * math.log10(1.0 / mse), "codes_used": int(used.sum())},
        "wall_time_s": round(wall, 1),
        "torch": torch.__version__,
    }
    (out / "tokenizer.json").write_text(json.dumps(meta, indent=2))
    (out / "tokenizer_log.json").write_text(json.dumps(log))
    print(json.dumps({"out": str(out), "test_mse": mse, "psnr_db": meta["test_reconstruction"]["psnr_db"],
                      "codes_used": int(used.sum()), "wall_time_s": meta["wall_time_s"]}))
    return meta


if __name__ == "__main__":
    run_script(main)
