"""Does a reward rank generation schedules the way FID does? (how the default discriminator was chosen)

    python benchmarks/reward_alignment.py                        # the main job's discriminator
    python benchmarks/reward_alignment.py --d-mbstd 4 --d-mbstd-by-label 0 --out docs/results/reward_alignment_mbstd4_strided.json

A policy trained on a reward climbs towards whatever the reward prefers. This script trains the main job's
discriminator (any :class:`agents.training.TrainConfig` field can be overridden with ``--field value``) against the heuristic schedule,
the way its warm-up does, then scores static variants of the heuristic schedule (sampling temperature,
re-masking temperature and guidance scaled) by their mean reward and by their validation FID (classifier
features, held-out train images, never the test split). A reward is aligned with FID when its order of the
variants matches FID's; the Spearman correlation between reward and -FID summarises it.

Prints one JSON line per variant and writes the summary to ``--out`` (if given).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from adanat_env.config import parse_config
from adanat_env.evaluation.metrics import extract_features, feature_stats, frechet_distance
from adanat_env.evaluation.sampling import sample_images
from adanat_env.schedules import Schedule, heuristic_schedule
from adanat_env.utils import resolve_device, seed_everything
from agents.training import TrainConfig, build_env, build_reward, metric_features, real_features, train_split
from rewards.adversarial import co_train


def scaled(s: Schedule, name: str, **factors: float) -> Schedule:
    """``s`` with the named fields multiplied by the given factors."""
    return dataclasses.replace(s, name=name, **{f: tuple(v * x for x in getattr(s, f)) for f, v in factors.items()})


def late(s: Schedule, name: str, field: str, factor: float) -> Schedule:
    """``s`` with ``field`` multiplied by ``factor`` in the second half of the steps only."""
    t = len(s.mask_ratio)
    return dataclasses.replace(s, name=name, **{field: tuple(x * (factor if i >= t // 2 else 1.0)
                                                            for i, x in enumerate(getattr(s, field)))})


def variants(num_steps: int) -> list[Schedule]:
    h = heuristic_schedule(num_steps)
    return [scaled(h, "heuristic"),
            late(h, "late sample_temp x0.6", "sample_temp", 0.6), late(h, "late sample_temp x0.8", "sample_temp", 0.8),
            scaled(h, "sample_temp x0.6", sample_temp=0.6), scaled(h, "sample_temp x0.8", sample_temp=0.8),
            scaled(h, "sample_temp x0.9", sample_temp=0.9), scaled(h, "sample_temp x1.1", sample_temp=1.1),
            scaled(h, "remask_temp x2", remask_temp=2.0), scaled(h, "remask_temp x3", remask_temp=3.0),
            scaled(h, "guidance x2", guidance=2.0), scaled(h, "guidance x4", guidance=4.0),
            scaled(h, "remask_temp x2, guidance x2", remask_temp=2.0, guidance=2.0),
            scaled(h, "remask_temp x2, guidance x4", remask_temp=2.0, guidance=4.0),
            scaled(h, "remask_temp x3, guidance x4", remask_temp=3.0, guidance=4.0),
            scaled(h, "remask_temp x4, guidance x4", remask_temp=4.0, guidance=4.0)]


def spearman(a: list[float], b: list[float]) -> float:
    ra = torch.tensor(a).argsort().argsort().float()
    rb = torch.tensor(b).argsort().argsort().float()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    p.add_argument("--samples", type=int, default=2000, help="samples per variant")
    p.add_argument("--updates", type=int, default=150, help="discriminator updates against the heuristic schedule")
    p.add_argument("--out", default="", help="JSON summary path")
    own, rest = p.parse_known_args(argv)
    cfg = parse_config(TrainConfig, rest, description=__doc__)
    cfg.validate()
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    wrapper = build_reward(cfg, build_env(cfg, device), device).discriminator
    if wrapper is None:
        raise ValueError("this benchmark measures the adversarial reward: drop --reward")
    gen = wrapper.unwrapped.generator
    reward = wrapper.reward
    h = heuristic_schedule(cfg.steps)
    rng = torch.Generator(device=device).manual_seed(cfg.seed)
    t0 = time.perf_counter()
    d_stats = co_train(reward, gen, h, cfg.steps, epochs=4, batch_size=cfg.d_batch_size, rng=rng,
                       updates=own.updates, minibatch=cfg.d_minibatch)
    fn = metric_features(cfg, device)
    ds, _, val_idx = train_split(cfg, gen)
    ref = feature_stats(real_features(fn, ds, val_idx, gen, device))
    rows = []
    for s in variants(cfg.steps):
        images, labels = sample_images(gen, s, cfg.steps, own.samples, seed=cfg.seed + 123)
        with torch.inference_mode():
            r = torch.cat([reward(x, y.to(device)) for x, y in zip(images.to(device).split(cfg.batch_size),
                                                                   labels.split(cfg.batch_size))])
        fid = frechet_distance(feature_stats(extract_features(fn, images)), ref)
        rows.append({"schedule": s.name, "reward": round(float(r.mean()), 5), "fid_val": round(fid, 2)})
        print(json.dumps(rows[-1]), flush=True)
    out = {"discriminator": cfg.discriminator, "d_mbstd": cfg.d_mbstd, "d_mbstd_by_label": cfg.d_mbstd_by_label,
           "d_updates": own.updates, "d_stats": d_stats, "samples": own.samples, "variants": rows,
           "spearman_reward_vs_neg_fid": round(spearman([x["reward"] for x in rows], [-x["fid_val"] for x in rows]), 3),
           "seconds": round(time.perf_counter() - t0, 1), "device": str(device)}
    print(json.dumps({k: v for k, v in out.items() if k != "variants"}))
    if own.out:
        Path(own.out).parent.mkdir(parents=True, exist_ok=True)
        Path(own.out).write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
