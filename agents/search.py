"""Derivative-free search over static schedules: the strongest non-adaptive baseline a user would try
(AutoNAT-style), for the comparison suites (``experiments/compare.py search``).

A static schedule is a (T, 4) table of raw actions, mapped exactly as the env maps a policy's actions
(:class:`~adanat_env.actions.ActionMapping`; with the heuristic residual, the zero table *is* the heuristic
schedule). The cross-entropy method (CEM) searches that table:

1. sample ``population`` tables from a diagonal Gaussian (mean 0, std ``init_std``);
2. score each by the validation FID of ``samples`` class-balanced generations. Every candidate of a round uses the
   same labels and sampler seed (common random numbers), so a round's ranking compares schedules, not noise;
3. refit the Gaussian to the ``elites`` best tables (the mean and std are smoothed towards the old ones);
4. repeat until the generation budget is spent. The result is the final mean table.

The budget is counted in generations, so that a search and an RL run can be given the same number
(:func:`rl_generation_budget`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm import tqdm

from adanat_env.actions import ActionMapping
from adanat_env.schedules import Schedule

__all__ = ["schedule_from_raw", "SearchResult", "cem_search", "rl_generation_budget"]


def schedule_from_raw(raw: torch.Tensor, residual: bool = True, name: str = "searched") -> Schedule:
    """The static :class:`~adanat_env.schedules.Schedule` of a (T, 4) raw-action table (official action order).

    :param raw: (T, 4) raw actions, one row per step.
    :param residual: on top of the heuristic schedule (``True``, the env's default) or not.
    :raises ValueError: a wrong shape or non-finite values.
    """
    if raw.dim() != 2 or raw.shape[1] != 4:
        raise ValueError(f"a raw schedule table has shape (T, 4), got {tuple(raw.shape)}")
    mapping = ActionMapping(raw.shape[0], residual)
    rows = [mapping(raw[t:t + 1], t) for t in range(raw.shape[0])]
    return Schedule(mask_ratio=tuple(float(p.mask_ratio) for p in rows),
                    sample_temp=tuple(float(p.sample_temp) for p in rows),
                    remask_temp=tuple(float(p.remask_temp) for p in rows),
                    guidance=tuple(float(p.guidance) for p in rows), name=name)


def rl_generation_budget(config: Any) -> int:
    """Generations one training run spends on learning (a :class:`agents.training.TrainConfig`): its rollouts plus
    the discriminator's warm-up and, with ``--d-fakes fresh``, its fresh batches (adversarial reward). The validation FIDs used for selection are
    not counted, on either side: the search's selection is its own scoring."""
    gens = config.iterations * config.episodes
    if config.reward == "adversarial":
        fresh = config.d_epochs * config.d_batch_size  # the warm-up's, and with --d-fakes fresh every iteration's
        gens += (config.iterations * fresh if config.d_fakes == "fresh" else 0) + (fresh if config.d_warmup > 0 else 0)
    return int(gens)


@dataclass
class SearchResult:
    """:param schedule: the found schedule (the final mean). :param raw: its (T, 4) raw table.
    :param history: one record per round (scores, generations so far). :param generations: generations spent."""

    schedule: Schedule
    raw: torch.Tensor
    history: list[dict[str, Any]] = field(default_factory=list)
    generations: int = 0


def cem_search(score: Callable[[Schedule, int], float], num_steps: int, budget: int, *, population: int = 8,
               elites: int = 3, samples: int = 256, init_std: float = 1.0, min_std: float = 0.05,
               smoothing: float = 0.3, residual: bool = True, seed: int = 0, progress: bool = False,
               log: Callable[[str], None] | None = None) -> SearchResult:
    """CEM over (T, 4) raw schedule tables (see module docstring).

    :param score: ``(schedule, round_seed) -> validation FID`` on ``samples`` generations (lower is better); the
        same round seed for every candidate of a round.
    :param num_steps: T.
    :param budget: generations to spend; ``budget // (population * samples)`` rounds (at least 1).
    :param population: candidates per round.
    :param elites: candidates the Gaussian is refitted to.
    :param samples: generations per candidate (only counted here; ``score`` generates them).
    :param init_std: initial std of every raw entry (pre-activation units).
    :param min_std: floor of the std (keeps searching).
    :param smoothing: weight of the old mean / std in each refit.
    :param residual: tables on top of the heuristic schedule (the env's default) or absolute.
    :param seed: seed of the candidates and of the round seeds.
    :raises ValueError: inconsistent sizes.
    """
    if not 1 <= elites <= population:
        raise ValueError(f"need 1 <= elites <= population, got {elites} and {population}")
    per_round = population * samples
    if budget < per_round:
        raise ValueError(f"a budget of {budget} generations does not buy one round of {population} x {samples}")
    rounds = budget // per_round
    g = torch.Generator().manual_seed(seed)
    mean = torch.zeros(num_steps, 4, dtype=torch.float64)
    std = torch.full((num_steps, 4), float(init_std), dtype=torch.float64)
    history: list[dict[str, Any]] = []
    used = 0
    for r in tqdm(range(rounds), desc="CEM search", disable=not progress):
        cand = mean + std * torch.randn((population, num_steps, 4), generator=g, dtype=torch.float64)
        round_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=g))
        scores = torch.tensor([score(schedule_from_raw(c, residual), round_seed) for c in cand], dtype=torch.float64)
        used += per_round
        top = cand[scores.argsort()[:elites]]
        mean = smoothing * mean + (1 - smoothing) * top.mean(0)
        std = (smoothing * std + (1 - smoothing) * top.std(0, unbiased=False)).clamp_min(min_std)
        rec = {"round": r + 1, "generations": used, "best": float(scores.min()), "median": float(scores.median()),
               "mean_std": float(std.mean())}
        history.append(rec)
        if log is not None:
            log(f"round {r + 1}/{rounds}: best {rec['best']:.2f}, median {rec['median']:.2f}, std {rec['mean_std']:.3f}")
    return SearchResult(schedule_from_raw(mean, residual), mean, history, used)
