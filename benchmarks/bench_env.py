"""Environment overhead against the raw sampler, measured in one run on the same generator, batch B and T.

    python benchmarks/bench_env.py --env AdaNAT-FashionMNIST-v0 --num-envs 256 --steps 8 --device cpu
    python benchmarks/bench_env.py --env AdaNAT-ImageNet256-v0 --weights random --num-envs 64 --device cuda --amp bf16

Three measurements, each generating ``--episodes`` batches of B images (decoded to pixels):

1. ``raw``: :func:`adanat_env.sampler.generate` with the heuristic schedule (the reference);
2. ``env``: the native vector env driven by a constant (zero) action (reward model off, as in ``raw``);
3. ``sb3``: SB3 PPO's ``collect_rollouts`` through :func:`adanat_env.sb3.to_sb3` (default MultiInputPolicy:
   policy forwards, Gaussian sampling, rollout-buffer writes included; no gradient step), with the
   device-resident rollout buffer on CUDA (``--rollout-buffer``, :mod:`agents.device_buffer`).

Prints one JSON line with images/s of each and the ratios env/raw and sb3/raw (higher is better, 1 = no
overhead).
"""

from __future__ import annotations

import argparse
import json
import time

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO

import adanat_env  # noqa: F401
from adanat_env.sampler import generate
from adanat_env.schedules import heuristic_schedule
from adanat_env.sb3 import to_sb3
from agents.callbacks import RolloutTimer
from agents.device_buffer import DeviceDictRolloutBuffer


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="AdaNAT-FashionMNIST-v0")
    p.add_argument("--num-envs", type=int, default=256)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--episodes", type=int, default=3, help="batches timed per measurement (after one warm-up)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", choices=["none", "bf16", "fp16"], default="none")
    p.add_argument("--weights", default=None, help="ImageNet id only: 'random' or 'official'")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-sb3", action="store_true")
    p.add_argument("--rollout-buffer", choices=["auto", "host", "device"], default="auto",
                   help="SB3 measurement: SB3's host rollout buffer or agents.device_buffer's (observations stay "
                        "on the device); auto = device on CUDA, host on CPU (default: auto)")
    args = p.parse_args(argv)

    kwargs = {"steps": args.steps, "device": args.device, "reward": "none",
              "amp": None if args.amp == "none" else args.amp}
    if args.weights:
        kwargs["weights"] = args.weights
    venv = gym.make_vec(args.env, num_envs=args.num_envs, vectorization_mode="vector_entry_point", **kwargs)
    base = venv.unwrapped
    gen, b, t = base.generator, args.num_envs, args.steps
    device = gen.device
    schedule = heuristic_schedule(t)
    labels = torch.randint(0, gen.num_classes, (b,), generator=torch.Generator().manual_seed(args.seed)).to(device)
    rng = gen.make_rng(args.seed)
    n_images = b * args.episodes

    def time_raw() -> float:
        generate(gen, labels, schedule, rng=rng)  # warm-up
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(args.episodes):
            generate(gen, labels, schedule, rng=rng)
        _sync(device)
        return time.perf_counter() - t0

    zeros = np.zeros((b, 4), dtype=np.float32)

    def time_env() -> float:
        venv.reset(seed=args.seed)
        for _ in range(t):  # warm-up episode
            venv.step(zeros)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(args.episodes * t):
            venv.step(zeros)
        _sync(device)
        return time.perf_counter() - t0

    results: dict = {}
    # interleave raw and env twice and keep the best of each, to be fair to both under machine noise
    raw_s = min(time_raw(), time_raw())
    env_s = min(time_env(), time_env())
    results.update(raw_images_per_s=n_images / raw_s, env_images_per_s=n_images / env_s, env_over_raw=raw_s / env_s)

    if not args.skip_sb3:
        on_device = args.rollout_buffer == "device" or (args.rollout_buffer == "auto" and device.type == "cuda")
        results["device_rollout_buffer"] = float(on_device)
        sb3_env = to_sb3(venv, device_observations=on_device)
        sb3_env.seed(args.seed)
        extra = {}
        if on_device:
            extra["rollout_buffer_class"] = DeviceDictRolloutBuffer
        model = PPO("MultiInputPolicy", sb3_env, n_steps=t * args.episodes, batch_size=b, seed=args.seed, device="cpu"
                    if device.type == "cpu" else device, **extra)
        timer = RolloutTimer(device)
        # three rollouts (the first is a warm-up), each followed by one PPO update, which is not timed
        model.learn(3 * model.n_steps * b, callback=timer)
        best = min(timer.rollout_s[1:])
        results.update(sb3_images_per_s=n_images / best, sb3_over_raw=raw_s / best)

    out = {"bench": "env", "env": args.env, "device": str(device), "amp": args.amp, "num_envs": b, "steps": t,
           "episodes": args.episodes, "threads": torch.get_num_threads(),
           **{k: round(v, 4) for k, v in results.items()}}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
