"""Rollout collection in training against the raw sampler, for the same images (training issue, Speed target).

    python benchmarks/bench_training.py                         # embedded default, CPU, the main job's settings
    python benchmarks/bench_training.py --device cuda --num-envs 256
    python benchmarks/bench_training.py --env AdaNAT-ImageNet256-v0 --weights random --num-envs 64 --device cuda

Both sides use the same generator, precision, batch B and T and decode every image to pixels:

1. ``raw``: :func:`adanat_env.sampler.generate` with the heuristic schedule, ``--episodes`` images;
2. ``rollout``: SB3 PPO's ``collect_rollouts`` with the AdaNAT policy (actor + critic trunks, Gaussian
   sampling, rollout-buffer writes) on the env with the adversarial reward (discriminator forward on the final
   images), ``--episodes`` images. Timed from the start of the rollout to its end, so the discriminator's
   co-training and PPO's gradient steps (separate phases of an iteration) are not included; they are timed
   separately and reported too.

Prints one JSON line: seconds of each phase and ``rollout_over_raw`` (target <= 1.25).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from adanat_env.sampler import generate
from adanat_env.schedules import heuristic_schedule
from agents.callbacks import RolloutTimer
from agents.training import TrainConfig, Trainer


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def synthetic_image_folder(classes: int = 8, per_class: int = 32, side: int = 256) -> str:
    """A temporary ImageNet-layout folder (``train/<class>/*.png``, random images) for runs without ImageNet."""
    root = Path(tempfile.mkdtemp(prefix="adanat-bench-"))
    rng = np.random.default_rng(0)
    for c in range(classes):
        d = root / "train" / f"n{c:08d}"
        d.mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return str(root)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                allow_abbrev=False)
    p.add_argument("--env", default="AdaNAT-FashionMNIST-v0")
    p.add_argument("--num-envs", type=int, default=256)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--episodes", type=int, default=512, help="images per measurement (a multiple of --num-envs)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", default="bf16", choices=["none", "bf16", "fp16"])
    p.add_argument("--discriminator", default=TrainConfig.discriminator,
                   help="the reward's discriminator (default: the main job's)")
    p.add_argument("--rollout-buffer", choices=["auto", "host", "device"], default="auto",
                   help="SB3's host rollout buffer or the device-resident one (default: auto = device on CUDA)")
    p.add_argument("--weights", default="official", help="ImageNet id: 'official' or 'random' (default: official)")
    p.add_argument("--data-dir", default="", help="real images (ImageNet id with --weights random: default a "
                   "synthetic image folder in a temporary directory)")
    p.add_argument("--obs-dtype", default="float32", choices=["float32", "float16"])
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    data_dir = a.data_dir
    if a.env == "AdaNAT-ImageNet256-v0" and not data_dir:
        data_dir = synthetic_image_folder()
    metric = "classifier" if a.env == "AdaNAT-FashionMNIST-v0" else "efficientnet-lite0"
    cfg = TrainConfig(env=a.env, steps=a.steps, batch_size=a.num_envs, episodes=a.episodes, device=a.device,
                      amp=a.amp, discriminator=a.discriminator, seed=a.seed, rollout_buffer=a.rollout_buffer,
                      weights=a.weights, data_dir=data_dir, obs_dtype=a.obs_dtype, metric=metric,
                      d_real_count=TrainConfig.d_real_count if a.env == "AdaNAT-FashionMNIST-v0" else 2048, curve_every=0)
    trainer = Trainer(cfg, out=None)  # the main job's env, reward, PPO and callbacks; writes nothing
    device, gen, model, n_steps = trainer.device, trainer.generator, trainer.model, trainer.n_steps
    timer = RolloutTimer(device)
    hooks = trainer.callbacks  # the std schedule and the discriminator steps of Algorithm 1

    schedule = heuristic_schedule(a.steps)
    labels = torch.arange(a.num_envs, device=device) % gen.num_classes

    def raw() -> float:
        _sync(device)
        t0 = time.perf_counter()
        for i in range(a.episodes // a.num_envs):
            generate(gen, labels, schedule, a.steps, seed=a.seed + i)
        _sync(device)
        return time.perf_counter() - t0

    raw()  # warm-up
    model.learn(n_steps * a.num_envs, callback=[*hooks, timer])  # warm-up iteration
    raws, totals = [], []
    timer.rollout_s.clear()
    for _ in range(a.repeats):
        raws.append(raw())
        t0 = time.perf_counter()
        model.learn(n_steps * a.num_envs, reset_num_timesteps=False, callback=[*hooks, timer])
        _sync(device)
        totals.append(time.perf_counter() - t0)
    t_raw, t_roll = min(raws), min(timer.rollout_s)
    t_total = min(totals)
    out = {
        "env": a.env, "device": str(device), "amp": a.amp, "num_envs": a.num_envs, "steps": a.steps,
        "images": a.episodes, "raw_s": round(t_raw, 3), "rollout_s": round(t_roll, 3),
        "rollout_over_raw": round(t_roll / t_raw, 3),
        "iteration_s": round(t_total, 3),
        "discriminator_cotrain_and_ppo_update_s": round(t_total - t_roll, 3),
        "raw_images_per_s": round(a.episodes / t_raw, 1), "rollout_over_raw_throughput": round(t_raw / t_roll, 3),
        "device_rollout_buffer": trainer.device_rollouts, "torch": torch.__version__,
        **({"peak_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2)} if device.type == "cuda" else {}),
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
