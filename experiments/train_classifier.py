"""Train the small CNN classifier of a data set (IDX files or an image folder) (metric feature space, conditioning check, PRM stand-in).

    python experiments/train_classifier.py --seed 0 --out runs/classifier

or, with ``--arch resnet``, the judge: a classifier of another architecture whose feature space every final
evaluation also reports FID in (the shipped one: ``--arch resnet --seed 1 --out runs/judge``).

A few minutes on 2 CPU cores. Writes classifier.safetensors + classifier.json (config, provenance, test accuracy).
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
from adanat_env.inputs import InputError, check_fields, class_coverage
from adanat_env.models.classifier import ARCHITECTURES, ClassifierConfig


@dataclass
class Config:
    data_dir: str | None = None  # IDX directory or image folder (default: $ADANAT_DATA_DIR or the Debian fashion-mnist package)
    resolution: int = 32  # image folders: side images are resized to (IDX data keeps its own)
    channels: int = 3  # image folders: 3 (RGB) or 1 (grey); IDX data is grey
    data_workers: int = 4  # image folders: decoding worker processes
    out: str = "runs/classifier"  # output directory
    seed: int = 0  # seeds init and data order
    epochs: int = 4  # passes over the train split
    batch_size: int = 128  # images per step
    lr: float = 2e-3  # Adam learning rate (cosine decay)
    width: int = 32  # channels of the first conv (doubled twice): another width makes a second judge of another size
    feature_dim: int = 128  # width of the penultimate layer, the FID feature space
    arch: str = "cnn"  # cnn (the metric's classifier) | resnet (the judge: residual blocks, batch norm, average pooling)
    device: str = "cpu"  # cpu | cuda | auto

    def validate(self) -> None:
        """Every option, before anything is read. :raises InputError: the first bad one."""
        check_fields(self, positive=("resolution", "epochs", "batch_size", "lr", "width", "feature_dim"),
                     nonnegative=("seed", "data_workers"),
                     choices={"channels": (1, 3), "arch": tuple(ARCHITECTURES)})


def main(argv: list[str] | None = None) -> dict:
    cfg, device, out, t0 = start_run(Config, argv, __doc__)

    train, test = (open_dataset(split, cfg.data_dir, resolution=cfg.resolution, channels=cfg.channels,
                                workers=cfg.data_workers) for split in ("train", "test"))
    side = train.images.shape[-1] if hasattr(train, "images") else cfg.resolution  # IDX: native side
    class_coverage(train.labels, train.num_classes, f"the train split of '{train.directory}'",
                   "every class id below the largest needs images (renumber the classes)")
    test.check_classes(train.num_classes)  # fail now, not after training
    if len(train) < cfg.batch_size:
        raise InputError(f"--batch-size {cfg.batch_size}: the train split of '{train.directory}' has only {len(train)} "
                         f"images: pass --batch-size {len(train)} or fewer")
    x, y = train.load(None, side, train.channels)
    x = x.float().div_(255.0)
    ccfg = ClassifierConfig(in_channels=train.channels, resolution=side, num_classes=train.num_classes, width=cfg.width,
                            feature_dim=cfg.feature_dim, arch=cfg.arch)
    model = ARCHITECTURES[cfg.arch](ccfg).to(device)
    steps = cfg.epochs * (len(x) // cfg.batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    gen = torch.Generator().manual_seed(cfg.seed)
    bar = tqdm(total=steps, desc="classifier", mininterval=2.0)
    for _ in range(cfg.epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(len(x) // cfg.batch_size):
            idx = perm[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            xb = x[idx]
            flip = torch.rand(len(idx), generator=gen) < 0.5  # horizontal flips
            xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
            model.train()
            loss = F.cross_entropy(model(xb.to(device)), y[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
            if i % 50 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    model.eval()
    with torch.inference_mode():
        pairs = [(model(xb.to(device).float().div_(255.0)).argmax(1).cpu(), yb)
                 for xb, yb in test.batches(None, side, train.channels, 1000)]
    acc = float(torch.cat([(p == t) for p, t in pairs]).float().mean())
    save_file({k: v.contiguous().cpu() for k, v in model.state_dict().items()}, str(out / "classifier.safetensors"))
    meta = {
        "kind": "classifier", "class": f"adanat_env.models.classifier.{type(model).__name__}", "config": asdict(ccfg),
        "train_config": asdict(cfg),
        "command": command_line(argv),
        "seed": cfg.seed, "data": {"directory": str(train.directory), "train_sha256": train.sha256, "test_sha256": test.sha256},
        "final_losses": {"train_ce": loss.item()}, "test_accuracy": acc,
        "wall_time_s": round(time.perf_counter() - t0, 1), "torch": torch.__version__,
    }
    (out / "classifier.json").write_text(json.dumps(meta, indent=2))
    print(json.dumps({"out": str(out), "test_accuracy": acc, "wall_time_s": meta["wall_time_s"]}))
    return meta


if __name__ == "__main__":
    run_script(main)
