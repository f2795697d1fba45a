"""Baseline table of the embedded default: hand-designed schedules at several T, plus the metric sanity check.

    python experiments/eval_baselines.py --out docs/baselines.json --grid-dir docs
    python experiments/eval_baselines.py --metric-check --feature-spaces classifier efficientnet-lite0

For every (schedule, T): FID / KID / precision / recall / coverage against the test split, class accuracy of
the samples (shipped classifier), and a class-by-class grid PNG. ``--metric-check`` instead measures, in each
feature space, real train vs real test, good samples (heuristic T = 8), and clearly degraded samples (T = 1
generation; shuffled token positions), with the time per 1,000 images.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from adanat_env.config import run_script
from adanat_env.data import load_idx_dataset, to_model_images
from adanat_env.embedded import load_embedded_generator
from adanat_env.evaluation.metrics import (extract_features, feature_extractor, feature_stats, frechet_distance,
                                           kernel_inception_distance, load_reference, precision_recall_coverage)
from adanat_env.evaluation.sampling import balanced_labels, evaluate_policy, sample_images
from adanat_env.models.classifier import load_classifier
from adanat_env.sampler import generate
from adanat_env.schedules import heuristic_schedule, maskgit_cosine_schedule
from adanat_env.utils import resolve_device, save_grid, seed_everything

SCHEDULES = {"cosine": maskgit_cosine_schedule, "heuristic": heuristic_schedule}


def baselines(args: argparse.Namespace) -> dict:
    device = resolve_device(args.device)
    gen = load_embedded_generator(device, nat_dir=args.nat_dir, tokenizer_dir=args.tokenizer_dir)
    fn = feature_extractor("classifier", device)
    ref = load_reference()
    clf = load_classifier(device=device)
    rows = []
    for steps in args.steps:
        for name in args.schedules:
            metrics, images = evaluate_policy(gen, SCHEDULES[name](steps), steps, fn, ref, num_samples=args.num_samples,
                                              seed=args.seed, classifier=clf, progress=True)
            row = {"schedule": name, "steps": steps, **metrics}
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.grid_dir:
                order = torch.arange(100).view(10, 10).t().flatten()  # labels cycle: make one row per class
                save_grid(images[order], Path(args.grid_dir) / f"samples_{name}_T{steps}.png", nrow=10, scale=2)
    return {"feature_space": "classifier", "reference": "fashion-mnist test split (10,000)", "seed": args.seed,
            "num_samples": args.num_samples, "rows": rows}


def shuffle_tokens(tokens: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    perm = torch.stack([torch.randperm(tokens.shape[1], generator=gen) for _ in range(len(tokens))])
    return tokens.gather(1, perm)


def metric_check(args: argparse.Namespace) -> dict:
    device = resolve_device(args.device)
    gen = load_embedded_generator(device, nat_dir=args.nat_dir, tokenizer_dir=args.tokenizer_dir)
    n = args.num_samples
    train, test = load_idx_dataset("train"), load_idx_dataset("test")
    for ds in (train, test):
        ds.check_classes(gen.num_classes)  # real images of classes the generator lacks would skew every metric
    g = torch.Generator().manual_seed(args.seed)
    real_test = to_model_images(test.images)[:n]
    real_train = to_model_images(train.images)[torch.randperm(len(train), generator=g)[:n]]
    good, _ = sample_images(gen, heuristic_schedule(8), 8, n, seed=args.seed, progress=True)
    one_step, _ = sample_images(gen, heuristic_schedule(1), 1, n, seed=args.seed, progress=True)
    labels = balanced_labels(n, gen.num_classes, device)
    toks = torch.cat([generate(gen, c, heuristic_schedule(8), rng=gen.make_rng(args.seed + i), decode=False).tokens
                      for i, c in enumerate(labels.split(500))])
    shuffled = torch.cat([gen.decode(t).cpu() for t in shuffle_tokens(toks.cpu(), g).to(device).split(500)])
    sets = {"real_train": real_train, "good_heuristic_T8": good, "degraded_T1": one_step, "degraded_shuffled_tokens": shuffled}
    out = {}
    for space in args.feature_spaces:
        kind, _, directory = space.partition(":")  # classifier:DIR: another classifier (the judge)
        fn = feature_extractor(kind, device, classifier_dir=directory or None)
        t0 = time.perf_counter()
        f_ref = extract_features(fn, real_test)
        per_1k = (time.perf_counter() - t0) / len(real_test) * 1000
        s_ref = feature_stats(f_ref)
        res = {"seconds_per_1000_images": round(per_1k, 3)}
        for name, imgs in sets.items():
            f = extract_features(fn, imgs)
            res[name] = {"fid": frechet_distance(feature_stats(f), s_ref),
                         "kid_x1e3": 1e3 * kernel_inception_distance(f, f_ref, subsets=20, seed=args.seed)[0],
                         **precision_recall_coverage(f_ref, f, seed=args.seed)}
        out[space] = res
        print(json.dumps({space: res}), flush=True)
    return {"num_samples": n, "reference": "real test split", "seed": args.seed, "spaces": out}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, nargs="+", default=[4, 8, 12])
    p.add_argument("--schedules", nargs="+", choices=sorted(SCHEDULES), default=["cosine", "heuristic"])
    p.add_argument("--num-samples", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--nat-dir", default=None, help="evaluate a NAT trained by experiments/train_nat.py (default: shipped)")
    p.add_argument("--tokenizer-dir", default=None)
    p.add_argument("--grid-dir", default=None, help="write one sample grid per (schedule, T) here")
    p.add_argument("--metric-check", action="store_true")
    p.add_argument("--feature-spaces", nargs="+", default=["classifier", "efficientnet-lite0"],
                   help="classifier, efficientnet-lite0, inception or classifier:DIR (another classifier, e.g. the judge)")
    p.add_argument("--out", default=None, help="JSON results file")
    args = p.parse_args(argv)
    seed_everything(args.seed)
    t0 = time.perf_counter()
    result = metric_check(args) if args.metric_check else baselines(args)
    result["wall_time_s"] = round(time.perf_counter() - t0, 1)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    run_script(main)
