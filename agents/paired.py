"""Paired evaluation of finished runs: every arm on the same sampling seeds, on the test split.

A learned schedule's 5,000-sample FID moves by about 3 points between sampling seeds while the heuristic's barely
moves, so a comparison of a few percent must give every arm the same labels and noise (paired) and more than one
sampling seed. This module evaluates trained runs, their per-step mean schedule (the ``-mean`` arm: the adaptive
policy with its per-sample variation replaced by its own average, :func:`agents.export.policy_schedule`) and
fixed schedules that way:

    from agents.paired import paired_evaluation
    table = paired_evaluation({"adaptive": "runs/a", "step-only": "runs/s"}, eval_seeds=(0, 1), means=("adaptive",))
    table["adaptive-mean"][1]["fid"]       # the mean schedule of run a, sampling seed 1

or from the shell: ``python -m agents.paired adaptive=runs/a step-only=runs/s --means adaptive``.

Each (arm, sampling seed) gets FID / KID / precision / recall / coverage and class accuracy in the run's metric
space, the per-class FID and recall, and, with ``second_metric``, FID in a second feature space that neither
the reward nor the selection of the iterate uses (the same images, features extracted twice).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from adanat_env.config import run_script
from adanat_env.data import resolve_data_dir
from adanat_env.evaluation.metrics import (evaluate_features, extract_features, feature_stats, frechet_distance,
                                           per_class_metrics)
from adanat_env.evaluation.sampling import sample_images
from adanat_env.schedules import Schedule, heuristic_schedule
from adanat_env.utils import resolve_device

from .export import load_generation_policy, policy_schedule
from .training.builders import run_classifier, run_data_dir
from .training.report import SplitSpace

__all__ = ["paired_evaluation", "per_class_metrics", "paired_summary", "SplitSpace", "split_cache_folder",
           "EVAL_SEED_BASE"]

#: Sampling seed of evaluation seed ``k``: ``EVAL_SEED_BASE + k`` (far from the training seeds and the trainer's
#: own evaluation seed, ``seed + 12345``).
EVAL_SEED_BASE = 777_000


def split_cache_folder(config: Any, cache_dir: str | Path) -> Path:
    """The folder under ``cache_dir`` that caches a run's test-split features: one per data set and models, so a
    cache of another never serves."""
    key = json.dumps([config.env, config.nat_dir, config.tokenizer_dir, str(resolve_data_dir(run_data_dir(config))),
                      config.classifier_dir, config.inception_weights, config.fid_stats])
    out = Path(cache_dir) / hashlib.blake2b(key.encode(), digest_size=6).hexdigest()
    out.mkdir(parents=True, exist_ok=True)
    return out


@torch.inference_mode()
def paired_evaluation(runs: Mapping[str, str | Path], *, eval_seeds: Sequence[int] = (0, 1), num_samples: int = 5000,
                      means: Iterable[str] = (), schedules: Mapping[str, Schedule] | None = None,
                      heuristic: bool = True, second_metric: str | None = None, mean_samples: int = 1000,
                      cache_dir: str | Path = "runs/paired_cache", device: str = "auto",
                      log: Any = print) -> dict[str, list[dict[str, Any]]]:
    """Evaluate every arm at every sampling seed on the same class-balanced labels and noise.

    :param runs: arm name -> a finished run directory (its reported iterate is evaluated). All runs must share
        the generator (env, steps, NAT) and the data.
    :param eval_seeds: evaluation seeds k; the sampler seed is :data:`EVAL_SEED_BASE` + k for every arm.
    :param means: arms whose per-step mean schedule is also evaluated, as ``<arm>-mean``.
    :param schedules: extra fixed schedules, name -> schedule.
    :param heuristic: also evaluate the official heuristic schedule.
    :param second_metric: a second feature space: ``"efficientnet-lite0"``, ``"inception"`` (with the run's
        ``--inception-weights``), or ``"classifier:DIR"``, another classifier of the same data
        (``train_classifier.py --feature-dim 256 --seed 1``).
    :param mean_samples: class-balanced samples over which the ``-mean`` schedules are averaged.
    :param cache_dir: the test split's features are cached under it, in one folder per data set and models.
    :return: arm -> one metrics dict per evaluation seed (in ``eval_seeds`` order).
    """
    if not runs:
        raise ValueError("paired_evaluation needs at least one run")
    means = list(means)
    for m in means:
        if m not in runs:
            raise ValueError(f"--means {m}: not one of the runs ({', '.join(runs)})")
    dev = resolve_device(device)
    loaded = {arm: load_generation_policy(path, device=str(dev)) for arm, path in runs.items()}
    first = next(iter(loaded.values()))
    generator, config = first[0], first[2]
    for arm, (_, _, cfg) in loaded.items():
        same = (cfg.env, cfg.steps, cfg.nat_dir, cfg.tokenizer_dir, cfg.data_dir, cfg.metric, cfg.classifier_dir)
        if same != (config.env, config.steps, config.nat_dir, config.tokenizer_dir, config.data_dir, config.metric,
                    config.classifier_dir):
            raise ValueError(f"run '{runs[arm]}' ({arm}) has another generator, data or metric than "
                             f"'{next(iter(runs.values()))}': paired arms must share them")
    policies: dict[str, Any] = {arm: pol for arm, (_, pol, _) in loaded.items()}
    for arm in means:
        sched, spread = policy_schedule(loaded[arm][0], loaded[arm][1], config.steps, mean_samples, seed=0,
                                        name=f"{arm}-mean")
        policies[f"{arm}-mean"] = sched
        log(f"{arm}-mean: the per-step mean of {arm} over {mean_samples} samples (largest per-step std {spread:.3f})")
    if heuristic:
        policies["heuristic"] = heuristic_schedule(config.steps)
    policies.update(schedules or {})
    out = split_cache_folder(config, cache_dir)
    spaces = {config.metric: SplitSpace(config, config.metric, generator, out, dev)}
    if second_metric and second_metric != config.metric:
        spaces[second_metric] = SplitSpace(config, second_metric, generator, out, dev)
    clf = run_classifier(config, dev)
    table: dict[str, list[dict[str, Any]]] = {arm: [] for arm in policies}
    for k in eval_seeds:
        for arm, pol in policies.items():
            images, labels = sample_images(generator, pol, config.steps, num_samples, seed=EVAL_SEED_BASE + int(k))
            row: dict[str, Any] = {"eval_seed": int(k)}
            for i, (name, space) in enumerate(spaces.items()):
                feats = extract_features(space.fn, images)
                pc = per_class_metrics(feats, labels.numpy(), space.features, space.labels, generator.num_classes,
                                       recall=i == 0)
                if i == 0:
                    row.update(evaluate_features(feats, space.ref, seed=int(k)))
                    row["per_class_fid"], row["per_class_recall"] = pc["fid"], pc["recall"]
                else:  # the second space: FID only (its KID and precision / recall are not reported)
                    row[f"fid_{name}"] = frechet_distance(feature_stats(feats), space.ref.stats)
                    row[f"per_class_fid_{name}"] = pc["fid"]
            if clf is not None and generator.has_label_classes:
                pred = torch.cat([clf(b.to(dev)).argmax(1).cpu() for b in images.split(1000)])
                row["class_accuracy"] = float((pred == generator.label_classes(labels)).float().mean())
            table[arm].append(row)
            log(f"eval seed {k} {arm}: FID {row['fid']:.2f} recall {row['recall']:.3f}"
                + "".join(f" FID[{n}] {row[f'fid_{n}']:.2f}" for n in list(spaces)[1:]))
    return table


def paired_summary(table: Mapping[str, list[dict[str, Any]]], key: str = "fid") -> dict[str, dict[str, float]]:
    """Per arm: the mean of ``key`` over evaluation seeds and its spread (max - min)."""
    out = {}
    for arm, rows in table.items():
        v = [r[key] for r in rows]
        out[arm] = {"mean": statistics.fmean(v), "spread": max(v) - min(v)}
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="ARM=RUN_DIR", help="finished runs to compare, by arm name")
    p.add_argument("--eval-seeds", type=int, nargs="+", default=[0, 1], help="evaluation seeds (default: 0 1)")
    p.add_argument("--samples", type=int, default=5000, help="samples per arm and evaluation seed (default 5000)")
    p.add_argument("--means", nargs="*", default=[], help="arms whose per-step mean schedule is also evaluated")
    p.add_argument("--second-metric", default=None,
                   help="a second feature space: efficientnet-lite0, inception (with the run's --inception-weights) or "
                        "classifier:DIR (another classifier of the same data, e.g. train_classifier.py "
                        "--feature-dim 256 --seed 1)")
    p.add_argument("--cache-dir", default="runs/paired_cache", help="test-split features are cached here, one folder per data set and models")
    p.add_argument("--out", default=None, help="write the table as JSON here")
    args = p.parse_args(argv)
    runs = {}
    for spec in args.runs:
        arm, sep, path = spec.partition("=")
        if not sep or not arm or not path:
            p.error(f"runs are ARM=RUN_DIR, got {spec!r}")
        runs[arm] = path
    table = paired_evaluation(runs, eval_seeds=args.eval_seeds, num_samples=args.samples, means=args.means,
                              second_metric=args.second_metric, cache_dir=args.cache_dir)
    for arm, s in paired_summary(table).items():
        print(f"{arm:>20}: FID {s['mean']:.2f} (spread over eval seeds {s['spread']:.2f})")
    if args.out:
        Path(args.out).write_text(json.dumps(table, indent=1))
    return table


if __name__ == "__main__":
    run_script(main)
