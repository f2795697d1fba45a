"""Trained policies outside SB3: load one from a training checkpoint, and export its per-step mean actions as a
schedule file that any sampler can read (:func:`adanat_env.schedules.load_schedule_file`).

    from agents.export import load_generation_policy, export_schedule

    generator, policy, config = load_generation_policy("runs/ppo_adversarial")      # a run dir or checkpoint.pt
    export_schedule(generator, policy, config.steps, "schedule.json")             # the per-step mean parameters

For a non-adaptive policy (``--policy step-only``) the file reproduces its samples exactly (the same float32
step parameters); for an adaptive one it is the static schedule of its mean parameters over a class-balanced
batch, the "average policy" (state it: the adaptive policy's per-sample variation is dropped).
"""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from adanat_env.evaluation.sampling import balanced_labels
from adanat_env.generator import Generator
from adanat_env.policy import PolicyInput
from adanat_env.schedules import Schedule, schedule_to_dict
from adanat_env.sampler import generate
from adanat_env.sb3 import to_sb3
from adanat_env.utils import resolve_device
from adanat_env.wrappers import PooledObservation

from .generation_policy import SB3GenerationPolicy
from .registry import ALGOS, make_algo
from .training import TrainConfig, build_env, load_checkpoint, saved_options

__all__ = ["load_generation_policy", "policy_schedule", "export_schedule"]


def load_generation_policy(checkpoint: str | os.PathLike[str], device: str = "auto", which: str = "selected"
                           ) -> tuple[Generator, SB3GenerationPolicy, Any]:
    """A trained policy from a training checkpoint, as a generation policy (mean action), with its generator.

    Builds only the env and the algorithm's policy (no reward, discriminator or data), loads the weights.

    :param checkpoint: a run directory or its ``checkpoint.pt``.
    :param device: where to run the generator and the policy.
    :param which: ``"selected"`` (the iterate the run reports: the best validation one with ``select="best"``)
        or ``"last"``.
    :return: (generator, policy, the run's :class:`~agents.training.TrainConfig`).
    :raises FileNotFoundError, ValueError: no checkpoint there, or not a training checkpoint.
    """
    if which not in ("selected", "last"):
        raise ValueError(f"which must be 'selected' or 'last', got {which!r}")
    state = load_checkpoint(checkpoint)
    known = {f.name for f in fields(TrainConfig)}
    saved = {k: v for k, v in saved_options(state["config"]).items() if k in known}
    # two envs: SB3 refuses a one-transition rollout buffer (n_steps * n_envs > 1), which a T = 1 run would have;
    # the minibatch is that (unused) buffer, so SB3 does not warn about a truncated one
    steps = int(saved.get("steps", TrainConfig.steps))
    config = TrainConfig(**{**saved, "device": device, "batch_size": 2, "episodes": 2, "minibatch": 2 * steps})
    dev = resolve_device(device)
    env = build_env(config, dev)
    spec = ALGOS[config.algo]
    venv = PooledObservation(env) if spec.pooled else env
    model = make_algo(config.algo, to_sb3(venv), lr=config.lr, n_steps=config.steps, minibatch=config.minibatch,
                      epochs=config.epochs, clip_range=config.clip_range, seed=config.seed, device=str(dev),
                      std=config.std_init, policy=config.policy, kl_coef=config.kl_coef)
    model.set_parameters(state["model"], exact_match=True, device=dev)
    best = state.get("best") or {}
    if which == "selected" and config.select == "best" and best.get("policy"):
        model.policy.load_state_dict(best["policy"])
    return env.unwrapped.generator, SB3GenerationPolicy.from_env(model, venv), config


@torch.inference_mode()
def policy_schedule(generator: Generator, policy: Any, num_steps: int, num_samples: int = 500, seed: int = 0,
                    name: str = "exported") -> tuple[Schedule, float]:
    """The per-step mean step parameters of ``policy`` over ``num_samples`` class-balanced generations.

    :return: (the schedule, the largest per-step standard deviation of any parameter across the samples:
        0 for a non-adaptive policy, where the schedule reproduces it exactly).
    """
    if getattr(policy, "adaptive_steps", False):
        raise ValueError("a stop-action policy (trained with --adaptive-steps 1) has no fixed schedule: every sample "
                         "chooses its own step count; sample with it directly (python -m agents.sample --policy RUN)")
    labels = balanced_labels(num_samples, generator.num_classes, generator.device)
    rows: list[torch.Tensor] = []

    def recording(inp: PolicyInput):
        params = policy(inp)
        rows.append(params.as_tensor().float().cpu())  # (B, 4): m, tau1, tau2, w
        return params

    generate(generator, labels, recording, num_steps, seed=seed)
    stacked = torch.stack(rows)  # (T, B, 4)
    mean = stacked.mean(1)
    spread = float(stacked.std(1).max()) if num_samples > 1 else 0.0
    if spread == 0.0:  # every sample got the same parameters: take them as they are (exact, no averaging error)
        mean = stacked[:, 0]
    m, t1, t2, w = (tuple(float(v) for v in mean[:, j]) for j in range(4))
    return Schedule(mask_ratio=m, sample_temp=t1, remask_temp=t2, guidance=w, name=name), spread


def export_schedule(generator: Generator, policy: Any, num_steps: int, path: str | os.PathLike[str],
                    num_samples: int = 500, seed: int = 0, source: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``policy``'s per-step mean parameters as a schedule file (JSON; see
    :func:`adanat_env.schedules.schedule_to_dict` for the fields); returns what was written.

    :param source: provenance to record (e.g. the checkpoint and its config).
    """
    schedule, spread = policy_schedule(generator, policy, num_steps, num_samples, seed, name=Path(path).stem)
    data = {**schedule_to_dict(schedule), "adaptive_spread": spread, "exact": spread == 0.0,
            "exported_from": source or {}}
    Path(path).write_text(json.dumps(data, indent=2))
    return data

