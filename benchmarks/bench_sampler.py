"""Throughput of the reference sampler (images/s) for a NAT preset, batch size, T and device.

Prints one JSON line. Random weights unless checkpoints are given: speed does not depend on the values.

    python benchmarks/bench_sampler.py --nat imagenet256-L --batch-size 2 --steps 8 --device cpu
    python benchmarks/bench_sampler.py --nat imagenet256-L --batch-size 64 --steps 8 --device cuda --amp bf16
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from adanat_env.generator import NATGenerator
from adanat_env.models import flops_per_forward, load_nat, load_tokenizer, nat_config
from adanat_env.sampler import generate
from adanat_env.schedules import heuristic_schedule
from adanat_env.utils import resolve_device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nat", default="imagenet256-L", help="NAT preset")
    p.add_argument("--tokenizer", default="maskgit-vqgan-f16", help="tokenizer preset")
    p.add_argument("--nat-checkpoint", default=None)
    p.add_argument("--tokenizer-checkpoint", default=None)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", choices=["none", "bf16", "fp16"], default="none")
    p.add_argument("--repeats", type=int, default=2, help="timed generations (after one warm-up)")
    p.add_argument("--no-decode", action="store_true", help="time token generation only (no VQ decoding)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    amp = None if args.amp == "none" else args.amp
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    gen = NATGenerator(load_nat(args.nat, args.nat_checkpoint, device),
                       load_tokenizer(args.tokenizer, args.tokenizer_checkpoint, device), amp=amp)
    schedule = heuristic_schedule(args.steps)
    labels = torch.randint(0, gen.num_classes, (args.batch_size,), generator=torch.Generator().manual_seed(args.seed)).to(device)
    rng = gen.make_rng(args.seed)

    def run() -> tuple[float, float]:
        _sync(device)
        t0 = time.perf_counter()
        out = generate(gen, labels, schedule, rng=rng, decode=False)
        _sync(device)
        t1 = time.perf_counter()
        if not args.no_decode:
            gen.decode(out.tokens)
            _sync(device)
        return t1 - t0, time.perf_counter() - t1

    run()  # warm-up
    times = [run() for _ in range(args.repeats)]
    gen_s = sum(t[0] for t in times) / len(times)
    dec_s = sum(t[1] for t in times) / len(times)
    total = gen_s + dec_s
    cfg = nat_config(args.nat)
    rows = args.batch_size + 1 + 2 * args.batch_size * (args.steps - 1)
    result = {
        "bench": "sampler",
        "nat": args.nat,
        "tokenizer": args.tokenizer,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "amp": args.amp,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "decode": not args.no_decode,
        "images_per_s": round(args.batch_size / total, 4),
        "s_per_batch": round(total, 4),
        "tokens_s_per_batch": round(gen_s, 4),
        "decode_s_per_batch": round(dec_s, 4),
        "nat_tflops_per_s": round(rows * flops_per_forward(cfg) / gen_s / 1e12, 3),
        "torch": torch.__version__,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
