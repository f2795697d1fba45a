"""Adaptive compute from a family of learned fixed-T policies: a per-class step budget, chosen on validation.

    python benchmarks/family_allocation.py --seeds 0 1 2 \\
        --runs 2=docs/results/compute_stop_std/fixed_T2/seed{seed} 3=docs/results/compute_stop_std/fixed_T3/seed{seed} \\
               4=docs/results/compute_stop_std/fixed_T4/seed{seed} --out docs/results/compute_family

The stop-action policies of ``compare.py compute`` lie on or above the line of the learned fixed-T policies:
their step parameters cannot know whether the step is the sample's last (the stop is drawn beside them). A
*family* of learned fixed-T policies has a schedule made for each budget; :class:`agents.budget.BudgetFamilyPolicy`
runs each sample with the member of its class's budget. Per seed (:func:`agents.budget.evaluate_family`), the
per-class table for each price ``lam`` (FID points per NAT evaluation) is chosen on **validation** samples only,
and the family with that table is evaluated once on the **test** split exactly as every trained run is, next to
each member and the heuristic at the same T (both reproduce the runs' own ``metrics.json`` at the same sample
count).

The family costs the training of all its members (three fixed-T runs for T = 2, 3, 4), and the choice is a
search over a per-class table, not a policy gradient: see ``docs/results.md``.

Writes ``family.json``, ``family.md`` (mean +- std over seeds), ``family.png`` (FID against NFE) and one
family file per seed and price, ``family_seed{seed}_lam{lam}.json`` (sample with it:
``python -m adanat_env.cli --family FILE``), into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from adanat_env.config import command_line
from adanat_env.plotting import Panel, Series, line_panels
from agents.budget import evaluate_family, save_family_file

def summary_table(out: dict) -> str:
    """Markdown: every arm's test metrics, mean +- std over seeds, and each seed's FID @ NFE."""
    seeds = out["seeds"]
    lines = [f"Command: `{out['command']}`", "",
             f"{out['samples']} class-balanced test samples per arm and seed (budget tables chosen on validation); "
             "mean +- std over seeds " + ", ".join(str(s["seed"]) for s in seeds) + ".", "",
             "| arm | FID | KID | recall | NFE per image | per seed: FID @ NFE | budget table (seed "
             f"{seeds[0]['seed']}, class: T) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for i, row in enumerate(seeds[0]["rows"]):
        col = {k: [s["rows"][i][k] for s in seeds] for k in ("fid", "kid_x1e3", "recall", "nfe_mean")}
        table = row["table"] if row["table"] is not None and row["lam"] is not None else None
        lines.append(
            f"| {row['arm']} | {np.mean(col['fid']):.2f} +- {_std(col['fid']):.2f} | "
            f"{np.mean(col['kid_x1e3']) / 1e3:.2f} +- {_std(col['kid_x1e3']) / 1e3:.2f} | {np.mean(col['recall']):.3f} | "
            f"{np.mean(col['nfe_mean']):.2f} +- {_std(col['nfe_mean']):.2f} | "
            + ", ".join(f"{a:.2f} @ {b:.2f}" for a, b in zip(col["fid"], col["nfe_mean"])) + " | "
            + ("" if table is None else " ".join(f"{c}:{t}" for c, t in sorted(table.items(), key=lambda x: int(x[0]))))
            + " |")
    return "\n".join(lines) + "\n"


def _std(v: list[float]) -> float:
    return float(np.std(v, ddof=1)) if len(v) > 1 else 0.0


def plot(out: dict, path: Path) -> None:
    """FID against NFE per image (means over seeds): heuristic, learned fixed T, the family."""
    seeds = out["seeds"]

    def series(prefix: str, label: str) -> Series:
        idx = [i for i, r in enumerate(seeds[0]["rows"]) if r["arm"].startswith(prefix)]
        pts = sorted((float(np.mean([s["rows"][i]["nfe_mean"] for s in seeds])),
                      float(np.mean([s["rows"][i]["fid"] for s in seeds]))) for i in idx)
        return Series(label, [p[0] for p in pts], [p[1] for p in pts])

    line_panels([Panel("FID against NAT evaluations per image (test, mean over seeds)",
                       [series("heuristic", "heuristic, fixed T"), series("learned fixed", "learned, fixed T"),
                        series("family", "family, per-class budget")], xlabel="NFE per image")],
                path, panel_size=(640, 420))


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", required=True,
                   help="T=RUN_DIR for each budget of the family ({seed} stands for the seed)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--samples", type=int, default=2000, help="class-balanced samples per arm, split and seed")
    p.add_argument("--lams", type=float, nargs="+", default=[0.0, 2.0, 4.0, 8.0],
                   help="FID points one NAT evaluation per image is worth (one budget table each)")
    p.add_argument("--out", default="", help="output directory")
    args = p.parse_args(argv)
    family = {}
    for spec in args.runs:
        t, _, path = spec.partition("=")
        if not path or not t.isdigit():
            raise SystemExit(f"--runs takes T=RUN_DIR, got {spec!r}")
        family[int(t)] = path
    out_dir = Path(args.out) if args.out else None
    t0 = time.perf_counter()
    per_seed = []
    for seed in args.seeds:
        runs = {t: p.format(seed=seed) for t, p in family.items()}
        try:
            rows = evaluate_family(runs, seed, args.lams, samples=args.samples, progress=bool(out_dir),
                                   cache=(out_dir or Path(".")) / f".ref_seed{seed}")
        except ValueError as e:
            raise SystemExit(str(e)) from None
        per_seed.append({"seed": seed, "rows": rows})
        print(json.dumps({"seed": seed, "rows": [{k: r.get(k) for k in ("arm", "fid", "nfe_mean")}
                                                   for r in per_seed[-1]["rows"]]}), flush=True)
    out = {"command": command_line(argv), "samples": args.samples, "family": family, "seeds": per_seed,
           "seconds": round(time.perf_counter() - t0, 1)}
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        for result in per_seed:
            for row in result["rows"]:
                if row["arm"].startswith("family"):
                    save_family_file(out_dir / f"family_seed{result['seed']}_lam{row['lam']:g}.json",
                                     {t: p.format(seed=result["seed"]) for t, p in family.items()}, row["table"],
                                     lam=row["lam"], validation_fid=row["val_fid"], test_fid=row["fid"],
                                     nfe_mean=row["nfe_mean"], samples=args.samples)
        (out_dir / "family.json").write_text(json.dumps(out, indent=2) + "\n")
        (out_dir / "family.md").write_text(summary_table(out))
        plot(out, out_dir / "family.png")
    return out


if __name__ == "__main__":
    main()
