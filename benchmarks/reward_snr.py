"""Does a reward carry a policy-gradient signal for each knob? (screen a reward in minutes, not a training run)

    python benchmarks/reward_snr.py                                   # the main job's reward (jackknife)
    python benchmarks/reward_snr.py --d-reward sigmoid                # any training option applies
    python benchmarks/reward_snr.py --reward fid --out snr_fid.json   # the batch-FID reward: the positive control

A policy-gradient method moves the mean action along the reward's slope, estimated from the rollouts' own
exploration noise. This script builds the training run's env and reward exactly as the trainer does (the
discriminator warmed up on the initial policy's sampled generations, ``--d-warmup``), then rolls out
``--samples`` generations of the initial policy (the heuristic schedule, zero mean raw action) with raw-action
noise eps ~ N(0, std^2) on every component and step, and estimates for each knob c the slope of the expected
reward along a *static* shift of that knob at every step (the direction a schedule search moves):

    g_c = E[(r - mean r) * sum_t eps_tc] / std^2,   z_c = g_c / standard error

(the REINFORCE estimate of dE[r]/d(mean raw action), as a z-score; |z| >> 2: a batch of that size sees the
slope), with the batch's mean reward as the baseline and with each class's (what a critic that knows the
class removes). Per-step slopes are reported too. Known from the static search (``benchmarks/static_grid.py``): FID
improves as the re-masking temperature tau_2 and guidance w rise (raw shifts of +2 to +3), and
``benchmarks/reward_alignment.py`` shows it worsening fast once the sampling temperature tau_1 falls far (x0.6). A reward that moves a policy where FID gains has positive z for tau_2 and
w; the batch-FID reward (``--reward fid``) shows what such a reward looks like.

Prints a table and writes JSON to ``--out`` (if given).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from adanat_env.actions import ACTION_NAMES
from adanat_env.config import command_line, parse_config
from adanat_env.utils import seed_everything
from agents.training import TrainConfig, Trainer, load_checkpoint

#: Knob names in raw-action order, as the paper writes them.
KNOBS = {"mask_ratio": "m", "remask_temp": "tau_2", "sample_temp": "tau_1", "guidance": "w"}


def slopes(rewards: np.ndarray, eps: np.ndarray, std: float, labels: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """REINFORCE slopes and their z-scores.

    :param rewards: (N,) terminal rewards.
    :param eps: (N, T, K) the raw-action noise that produced them.
    :param std: the noise's std.
    :param labels: (N,) class labels: the baseline is each class's mean reward (what a critic that knows the
        class removes) instead of the overall mean.
    :return: ``static`` (K,) slope along a shift of knob k at every step, ``static_z`` its z-score, ``step``
        (T, K) per-step slopes, ``step_z`` their z-scores.
    """
    n = rewards.shape[0]
    base = np.full_like(rewards, rewards.mean())
    if labels is not None:
        for c in np.unique(labels):
            base[labels == c] = rewards[labels == c].mean()
    adv = (rewards - base)[:, None, None]
    per = adv * eps / std**2  # (N, T, K): one sample's estimate of each per-step slope
    stat = per.sum(1)  # (N, K): along a static shift (the same raw shift at every step)
    out = {"static": stat.mean(0), "step": per.mean(0)}
    out["static_z"] = out["static"] / (stat.std(0, ddof=1) / math.sqrt(n))
    out["step_z"] = out["step"] / (per.std(0, ddof=1) / math.sqrt(n))
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    p.add_argument("--samples", type=int, default=2048, help="generations rolled out (a multiple of --batch-size)")
    p.add_argument("--std", type=float, default=float("nan"), help="raw-action noise std (default: --std-init)")
    p.add_argument("--discriminator-from", default="",
                   help="a run directory: its checkpoint's co-trained discriminator instead of a warm-up (what the "
                        "reward had become by the end of that run, measured around the heuristic)")
    p.add_argument("--out", default="", help="JSON summary path")
    own, rest = p.parse_known_args(argv)
    cfg = parse_config(TrainConfig, rest, description=__doc__)
    cfg.validate()
    if own.samples <= 0 or own.samples % cfg.batch_size:
        raise ValueError(f"--samples ({own.samples}) must be a positive multiple of --batch-size ({cfg.batch_size})")
    if cfg.adaptive_steps:
        raise ValueError("this benchmark measures fixed-T rewards; drop --adaptive-steps")
    std = cfg.std_init if math.isnan(own.std) else own.std
    t0 = time.perf_counter()
    trainer = Trainer(cfg, None, log=lambda _: None)
    if own.discriminator_from:
        if trainer.discriminator is None:
            raise ValueError("--discriminator-from needs the adversarial reward")
        state = load_checkpoint(own.discriminator_from)
        trainer.discriminator.load_state_dict(state["reward"])
        d_stats = {"from": own.discriminator_from, "iteration": int(state["iteration"])}
    else:
        d_stats = trainer.warm_up()
    env, steps = trainer.env, cfg.steps
    seed_everything(cfg.seed + 555)
    g = np.random.default_rng(cfg.seed + 555)
    rewards, noise, labels = [], [], []
    for b in range(own.samples // cfg.batch_size):
        env.reset(seed=cfg.seed + 1000 + b)
        eps = g.normal(0.0, std, size=(cfg.batch_size, steps, len(ACTION_NAMES))).astype(np.float32)
        for t in range(steps):
            _, r, term, trunc, _ = env.step(eps[:, t])
        r = r.detach().cpu().numpy() if isinstance(r, torch.Tensor) else np.asarray(r)
        if not np.all(np.asarray(term) | np.asarray(trunc)):
            raise RuntimeError("episodes did not end after --steps steps")
        rewards.append(r.astype(np.float64))
        labels.append(np.asarray(env.unwrapped.final_labels).copy())
        noise.append(eps.astype(np.float64))
    rew, eps_all, lab = np.concatenate(rewards), np.concatenate(noise), np.concatenate(labels)
    s = slopes(rew, eps_all, std)
    sc = slopes(rew, eps_all, std, lab)
    knobs = [KNOBS[n] for n in ACTION_NAMES]
    out = {
        "reward": cfg.reward, "d_reward": cfg.d_reward if cfg.reward == "adversarial" else None,
        "discriminator": cfg.discriminator if cfg.reward == "adversarial" else None,
        "samples": own.samples, "std": std, "steps": steps, "d_warmup_stats": d_stats,
        "reward_mean": float(rew.mean()), "reward_std": float(rew.std()),
        "static_slope": dict(zip(knobs, map(float, s["static"]))), "static_z": dict(zip(knobs, map(float, s["static_z"]))),
        "step_z": [dict(zip(knobs, map(float, row))) for row in s["step_z"]],
        "static_z_class_baseline": dict(zip(knobs, map(float, sc["static_z"]))),
        "step_z_class_baseline": [dict(zip(knobs, map(float, row))) for row in sc["step_z"]],
        "seconds": round(time.perf_counter() - t0, 1), "command": command_line(argv),
    }
    print(f"reward {cfg.reward}{'/' + cfg.d_reward if cfg.reward == 'adversarial' else ''}: mean {out['reward_mean']:.4g}, "
          f"spread {out['reward_std']:.4g}, {own.samples} generations, std {std}, {out['seconds']} s")
    print("knob    static-shift slope     z   | per-step z                 || with a per-class baseline: z | per-step z")
    for k in knobs:
        print(f"{k:6s} {out['static_slope'][k]:+12.4g} {out['static_z'][k]:+7.2f}   | "
              + " ".join(f"{row[k]:+6.2f}" for row in out["step_z"])
              + f" || {out['static_z_class_baseline'][k]:+7.2f} | "
              + " ".join(f"{row[k]:+6.2f}" for row in out["step_z_class_baseline"]))
    if own.out:
        Path(own.out).parent.mkdir(parents=True, exist_ok=True)
        Path(own.out).write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
