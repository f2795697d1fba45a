"""Sampling CLI: generate a class-by-class grid with a hand-designed schedule.

Examples::

    # the embedded Fashion-MNIST generator shipped in the package (no set-up, no network)
    python -m adanat_env.sample --steps 8 --schedule cosine --out grid.png

    # official ImageNet-256 checkpoints (AdaNAT README: assets/nnet_ema.pth, assets/vqgan_jax_strongaug.ckpt)
    python -m adanat_env.sample --model imagenet256 --nat imagenet256-L --nat-checkpoint assets/nnet_ema.pth \\
        --tokenizer maskgit-vqgan-f16 --tokenizer-checkpoint assets/vqgan_jax_strongaug.ckpt \\
        --classes 207 360 387 974 88 979 417 279 --per-class 4 --steps 8 --schedule heuristic --out grid.png

    # the same code path with random weights (a smoke test: the images are noise)
    python -m adanat_env.sample --model imagenet256 --random-weights --classes 0 1 --per-class 1 --steps 2 --out demo.png

One row per class, ``--per-class`` samples per row.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from .embedded import load_embedded_generator
from .generator import NATGenerator
from .models import load_nat, load_tokenizer
from .sampler import generate
from .schedules import heuristic_schedule, maskgit_cosine_schedule
from .utils import resolve_device, save_grid


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m adanat_env.sample", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=["fashion-mnist", "imagenet256"], default="fashion-mnist",
                   help="fashion-mnist: the shipped embedded models (or --nat-dir/--tokenizer-dir); "
                        "imagenet256: the official architectures (--nat preset + checkpoints)")
    p.add_argument("--nat-dir", default=None, help="fashion-mnist: directory written by experiments/train_nat.py")
    p.add_argument("--tokenizer-dir", default=None, help="fashion-mnist: directory written by experiments/train_tokenizer.py")
    p.add_argument("--nat", default="imagenet256-L", help="imagenet256: NAT preset (default: imagenet256-L)")
    p.add_argument("--nat-checkpoint", default=None, help="NAT weights (.pth state dict or .safetensors)")
    p.add_argument("--tokenizer", default="maskgit-vqgan-f16", help="tokenizer preset")
    p.add_argument("--tokenizer-checkpoint", default=None, help="tokenizer weights (.ckpt/.pth or .safetensors)")
    p.add_argument("--random-weights", action="store_true",
                   help="allow missing checkpoints and use random weights (smoke test; images are noise)")
    p.add_argument("--classes", type=int, nargs="+", default=None,
                   help="class ids, one grid row each (default: all classes for fashion-mnist, 0-3 for imagenet256)")
    p.add_argument("--per-class", type=int, default=10, help="samples per class (grid columns)")
    p.add_argument("--steps", type=int, default=8, help="decoding steps T")
    p.add_argument("--schedule", choices=["cosine", "heuristic"], default="heuristic",
                   help="MaskGIT cosine schedule or the official AdaNAT heuristic schedule")
    p.add_argument("--guidance", type=float, default=0.0, help="constant guidance w for --schedule cosine")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--amp", choices=["none", "bf16", "fp16"], default="none", help="autocast precision")
    p.add_argument("--batch-size", type=int, default=64, help="images per generator call")
    p.add_argument("--scale", type=int, default=0, help="integer upscaling of the saved grid (0: 3 for small images, else 1)")
    p.add_argument("--out", default="grid.png", help="output PNG")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.model == "imagenet256" and not args.random_weights and (args.nat_checkpoint is None or args.tokenizer_checkpoint is None):
        print("error: pass --nat-checkpoint and --tokenizer-checkpoint (official files: assets/nnet_ema.pth and "
              "assets/vqgan_jax_strongaug.ckpt, linked from the AdaNAT README), or --random-weights for a smoke test",
              file=sys.stderr)
        return 2
    device = resolve_device(args.device)
    amp = None if args.amp == "none" else args.amp
    t0 = time.perf_counter()
    if args.model == "fashion-mnist":
        gen = load_embedded_generator(device, amp, nat_dir=args.nat_dir, tokenizer_dir=args.tokenizer_dir)
    else:
        gen = NATGenerator(load_nat(args.nat, args.nat_checkpoint, device),
                           load_tokenizer(args.tokenizer, args.tokenizer_checkpoint, device), amp=amp)
    if args.classes is None:
        args.classes = list(range(gen.num_classes)) if args.model == "fashion-mnist" else [0, 1, 2, 3]
    bad = [c for c in args.classes if not 0 <= c < gen.num_classes]
    if bad:
        print(f"error: classes {bad} outside [0, {gen.num_classes})", file=sys.stderr)
        return 2
    schedule = (heuristic_schedule(args.steps) if args.schedule == "heuristic"
                else maskgit_cosine_schedule(args.steps, guidance=args.guidance))
    labels = torch.tensor(args.classes, device=device).repeat_interleave(args.per_class)
    rng = gen.make_rng(args.seed)
    images = []
    t1 = time.perf_counter()
    for chunk in labels.split(args.batch_size):
        images.append(generate(gen, chunk, schedule, rng=rng).images.cpu())
    t2 = time.perf_counter()
    scale = args.scale or (3 if gen.image_shape[-1] < 64 else 1)
    path = save_grid(torch.cat(images), args.out, nrow=args.per_class, scale=scale)
    print(json.dumps({"out": str(path), "images": int(labels.numel()), "steps": args.steps, "schedule": args.schedule,
                      "device": str(device), "load_s": round(t1 - t0, 2), "generate_s": round(t2 - t1, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
