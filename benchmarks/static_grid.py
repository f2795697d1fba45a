"""How much do static rescalings of the heuristic schedule gain? (the room a learned policy has)

    python benchmarks/static_grid.py                      # re-masking temperature x {1..4}, guidance x {1..4}
    python benchmarks/static_grid.py --samples 5000 --out docs/results/static_grid.json

Scales the heuristic schedule's re-masking temperature tau_2 and guidance w by every pair of factors and prints
the validation FID of each (classifier features, ``--samples`` class-balanced generations against the 10,000
held-out train images of the training runs; never the test split). Any TrainConfig option applies
(``--seed``, ``--steps``, ...).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from adanat_env.config import parse_config
from adanat_env.evaluation.metrics import extract_features, feature_stats, frechet_distance
from adanat_env.evaluation.sampling import sample_images
from adanat_env.schedules import heuristic_schedule
from adanat_env.utils import resolve_device, seed_everything
from agents.training import TrainConfig, build_env, metric_features, real_features, train_split


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    p.add_argument("--samples", type=int, default=2000, help="samples per schedule")
    p.add_argument("--factors", type=float, nargs="+", default=[1.0, 2.0, 3.0, 4.0], help="scale factors of tau_2 and w")
    p.add_argument("--out", default="", help="JSON path")
    own, rest = p.parse_known_args(argv)
    cfg = parse_config(TrainConfig, rest, description=__doc__)
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    gen = build_env(cfg, device).unwrapped.generator
    fn = metric_features(cfg, device)
    ds, _, val_idx = train_split(cfg, gen)
    ref = feature_stats(real_features(fn, ds, val_idx, gen, device))
    h = heuristic_schedule(cfg.steps)
    rows = []
    for r in own.factors:
        for g in own.factors:
            s = dataclasses.replace(h, name=f"tau2 x{r:g}, w x{g:g}", remask_temp=tuple(x * r for x in h.remask_temp),
                                    guidance=tuple(x * g for x in h.guidance))
            t0 = time.perf_counter()
            images, _ = sample_images(gen, s, cfg.steps, own.samples, seed=cfg.seed + 123)
            fid = frechet_distance(feature_stats(extract_features(fn, images)), ref)
            rows.append({"remask_temp_x": r, "guidance_x": g, "fid_val": round(fid, 2), "seconds": round(time.perf_counter() - t0, 1)})
            print(json.dumps(rows[-1]), flush=True)
    base = next(x["fid_val"] for x in rows if x["remask_temp_x"] == 1 and x["guidance_x"] == 1)
    best = min(rows, key=lambda x: x["fid_val"])
    print(f"best: tau2 x{best['remask_temp_x']:g}, w x{best['guidance_x']:g}: {best['fid_val']} "
          f"({100 * (best['fid_val'] / base - 1):+.1f}% vs the heuristic's {base})")
    if own.out:
        Path(own.out).write_text(json.dumps({"samples": own.samples, "seed": cfg.seed, "rows": rows}, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
