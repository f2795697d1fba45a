"""Where does a stop-action policy spend its NAT evaluations? Per class and per sample difficulty.

    python benchmarks/stop_adaptivity.py docs/results/compute_stop_std/stop_lambda30/seed0 --out stop.json

The paper's Fig. 3 shows the policy wanting "only minor refinements" on easy samples; a policy that decides when
to stop can act on that. This script loads a finished (or stopped) stop-action run from its checkpoint, draws
``--samples`` class-balanced generations with the run's reported policy (its stop decision drawn as in its
evaluation, seeded), and reports the mean NAT evaluations (NFE) per class and for the samples the shipped
classifier is most / least confident in (the top / bottom 30% of the label's probability). The class is an
input of the generation, so the per-class split is causal; the confidence is measured on the *final* image, so
an early stop can itself lower it (read the confidence split with that in mind).

Prints one JSON object and writes it to ``--out`` (if given). Test split never touched.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from adanat_env.evaluation.sampling import sample_images
from adanat_env.models.classifier import load_classifier
from agents.analysis import split_by_score
from agents.training import Trainer


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a stop-action run directory (with its checkpoint.pt)")
    p.add_argument("--samples", type=int, default=2000, help="class-balanced generations")
    p.add_argument("--seed", type=int, default=777, help="sampler seed")
    p.add_argument("--out", default="", help="JSON path")
    args = p.parse_args(argv)
    trainer = Trainer.resume(args.run, log=lambda _: None)
    if not trainer.config.adaptive_steps:
        raise SystemExit(f"'{args.run}' was trained without --adaptive-steps 1: every sample uses {trainer.config.steps} steps")
    t0 = time.perf_counter()
    with trainer.selected() as (policy, iteration):
        counts: list[torch.Tensor] = []
        images, labels = sample_images(trainer.generator, policy, trainer.config.steps, args.samples,
                                       seed=args.seed, nfe=counts, progress=True)
    nfe = torch.cat(counts).numpy().astype(np.float64)
    clf = load_classifier(device=trainer.device)
    with torch.inference_mode():
        conf = torch.cat([clf.label_probability(x.to(trainer.device), y.to(trainer.device)).float().cpu()
                          for x, y in zip(images.split(500), labels.split(500))]).numpy()
    lab = labels.numpy()
    easy, hard = split_by_score(conf, 0.3)
    per_class = {int(c): round(float(nfe[lab == c].mean()), 3) for c in np.unique(lab)}
    hist = {int(k): int((nfe == k).sum()) for k in range(1, trainer.config.steps + 1)}
    out = {"run": str(args.run), "iteration": iteration, "samples": args.samples, "nfe_mean": round(float(nfe.mean()), 3),
           "nfe_histogram": hist, "nfe_per_class": per_class,
           "nfe_easy_30pct": round(float(nfe[easy].mean()), 3), "nfe_hard_30pct": round(float(nfe[hard].mean()), 3),
           "confidence_by_nfe": {int(k): round(float(conf[nfe == k].mean()), 3) for k in hist if hist[k]},
           "seconds": round(time.perf_counter() - t0, 1)}
    print(json.dumps(out))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
