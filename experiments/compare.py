"""The paper's analyses and the algorithm comparison: one command per suite, each writing a Markdown table (and a
figure: rewards, adaptive, search, algos, compute) into --out (default docs/results/<suite>/).

    python experiments/compare.py table5     # heuristic, static search, step-only, adaptive, its mean (paper Table 5)
    python experiments/compare.py rewards    # adversarial vs batch-FID vs PRM stand-in (paper Fig. 4)
    python experiments/compare.py adaptive   # how the learned policy adapts per sample (paper Fig. 3)
    python experiments/compare.py search     # CEM over static schedules, as many generations as one RL run
    python experiments/compare.py algos      # PPO, A2C, TRPO, RecurrentPPO, TD3, SAC, ARS (seeds 0 1)
    python experiments/compare.py compute    # quality vs compute: the stop action and the budget family vs fixed T

Training options apply to every run of a suite (e.g. ``--iterations 12`` shrinks every run's budget uniformly).
Runs go through the multi-seed protocol (:func:`agents.protocol.run_protocol`): every arm has the same budget
and seeds, selection uses the validation split, the test split is seen only by each run's final evaluation,
and a stopped suite continues where it stopped (finished runs are read, interrupted ones resumed exactly).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

import figures  # experiments/figures.py, found beside this script when it runs
from adanat_env.config import add_config_arguments, config_from_args, run_script
from adanat_env.evaluation.metrics import extract_features, feature_stats, frechet_distance
from adanat_env.evaluation.sampling import sample_images
from adanat_env.models.classifier import load_classifier
from adanat_env.schedules import Schedule, heuristic_schedule, maskgit_cosine_schedule
from adanat_env.utils import resolve_device, seed_everything
from agents.analysis import adaptivity_table, is_effectively_static, record_step_params, split_by_score
from agents.budget import evaluate_family, save_family_file
from agents.paired import paired_evaluation
from agents.protocol import run_protocol
from agents.registry import ALGOS, ARS_N_DELTA
from agents.search import cem_search, rl_generation_budget
from agents.training import (TrainConfig, Trainer, build_env, evaluate_on_test, metric_features, real_features,
                             train_split)

#: Suite -> arms (name -> changes to the common configuration); ``algos`` builds its arms with :func:`algo_arms`.
ARMS: dict[str, dict[str, dict[str, Any]]] = {
    "table5": {"step-only": {"policy": "step-only"}, "adaptive": {}},
    "rewards": {"adversarial": {}, "fid": {"reward": "fid", "kl_coef": 0.0}, "prm": {"reward": "prm"}},
    "adaptive": {"adaptive": {}},
}
SUITES = ("table5", "rewards", "adaptive", "search", "algos", "compute")
DEFAULT_SEEDS = {"table5": [0, 1, 2, 3, 4], "rewards": [0, 1, 2], "adaptive": [0], "search": [0, 1, 2], "algos": [0, 1],
                 "compute": [0, 1, 2]}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, allow_abbrev=False,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("suite", choices=SUITES, help="which analysis to run")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds (default: 0 1 2; table5 0 1 2 3 4; algos 0 1; adaptive 0)")
    p.add_argument("--out", default="", help="suite directory (default: docs/results/<suite>)")
    p.add_argument("--analysis-samples", type=int, default=1000, help="adaptive: samples whose step parameters are recorded")
    p.add_argument("--population", type=int, default=8, help="search: CEM candidates per round")
    p.add_argument("--elites", type=int, default=3, help="search: CEM elites per round")
    p.add_argument("--search-samples", type=int, default=256,
                   help="search, table5: generations per CEM candidate (validation FID)")
    p.add_argument("--eval-seeds", type=int, nargs="+", default=[0, 1],
                   help="table5: evaluation seeds, the same for every arm (paired; default: 0 1)")
    p.add_argument("--second-metric", default="efficientnet-lite0",
                   help="table5: a second FID feature space that neither the reward nor the selection uses "
                        "(default: efficientnet-lite0; 'none' for none)")
    p.add_argument("--algos", nargs="+", choices=list(ALGOS), default=list(ALGOS), help="algos: which algorithms (default: all)")
    p.add_argument("--fixed-steps", type=int, nargs="*", default=[2, 3, 4, 6, 8],
                   help="compute: T of the fixed-T learned policies (and of the heuristic they are evaluated with)")
    p.add_argument("--nfe-costs", type=float, nargs="*", default=[0.01, 0.03, 0.1],
                   help="compute: lambda of each stop-action policy (reward charged per NAT evaluation)")
    p.add_argument("--max-steps", type=int, default=4, help="compute: T_max of the stop-action policies")
    p.add_argument("--family-lams", type=float, nargs="*", default=[2.0, 4.0, 8.0],
                   help="compute: prices (validation-FID points per NAT evaluation) of the budget-family arms: each "
                        "class runs the fixed-T learned policy (T <= --max-steps) of a per-class budget chosen on "
                        "validation (agents.budget); none: no family arms")
    add_config_arguments(p, TrainConfig)  # training options, common to every run of the suite, grouped by step
    return p


# ------------------------------------------------------------------------------------------------ tables
def _ms(values: list[float], fmt: str = "{:.2f}") -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{fmt.format(statistics.fmean(values))} ± {fmt.replace('+', '').format(sd)}"


def metrics_table(rows: dict[str, list[dict[str, Any]]], extra: dict[str, list[str]] | None = None) -> str:
    """Markdown: one row per name, mean ± std over seeds of the test metrics (``details`` dicts of metrics.json)."""
    cols = [("FID ↓", "fid", "{:.2f}", 1.0), ("KID ↓ (raw)", "kid_x1e3", "{:.2f}", 1e-3),
            ("precision", "precision", "{:.3f}", 1.0), ("recall", "recall", "{:.3f}", 1.0),
            ("class acc. %", "class_accuracy", "{:.1f}", 100.0)]
    extra = extra or {}
    head = ["", "seeds"] + [c[0] for c in cols] + list(extra)
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, dets in rows.items():
        cells = [name, str(len(dets))]
        for _, key, fmt, scale in cols:
            vals = [d[key] * scale for d in dets if key in d]
            cells.append(_ms(vals, fmt) if vals else "n/a")
        cells += [v[list(rows).index(name)] for v in extra.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _run_metrics(out: Path, arm: str, seeds: list[int]) -> list[dict[str, Any]]:
    return [json.loads((out / arm / f"seed{s}" / "metrics.json").read_text()) for s in seeds]


def _reduction(ms: list[dict[str, Any]]) -> str:
    return _pct_change([m["fid_reduction_vs_heuristic"] for m in ms])


def _pct_change(reductions: list[float]) -> str:
    """FID reductions vs the heuristic (0.2 = 20% lower) as the change in %: mean ± std (worst seed)."""
    red = [-100 * r for r in reductions]
    return f"{_ms(red, '{:+.1f}')}% (worst {max(red):+.1f}%)"


def _command(argv: list[str] | None) -> str:
    return "python experiments/compare.py " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))


def _header(suite: str, base: TrainConfig, seeds: list[int], argv: list[str] | None) -> str:
    return (f"# {suite}\n\nCommand: `{_command(argv)}`\n\n"
            f"Budget per run: {base.iterations} iterations x {base.episodes} generations, T = {base.steps}, "
            f"seeds {' '.join(map(str, seeds))}; test split, {base.eval_samples} class-balanced samples per schedule; "
            "mean ± std over seeds.\n\n")


# ------------------------------------------------------------------------------------------------ suites
#: Table 5's arms, in the order of its table: (name, what it is).
TABLE5_ARMS = (("heuristic", "hand-designed (the official heuristic)"),
               ("static-search", "one schedule for all samples, CEM-searched on validation FID (same budget)"),
               ("step-only", "learnable non-adaptive (`--policy step-only`)"),
               ("adaptive", "adaptive (the default main job)"),
               ("adaptive-mean", "the adaptive policy's own per-step mean schedule"))
_PAIRED_KEYS = ("fid", "kid_x1e3", "precision", "recall", "class_accuracy")


def _paired_row(rows: list[dict[str, Any]], second: str | None) -> dict[str, Any]:
    """One (arm, seed): the mean over evaluation seeds of each metric, each evaluation seed's FID, per-class FID."""
    out: dict[str, Any] = {k: statistics.fmean(r[k] for r in rows) for k in _PAIRED_KEYS if k in rows[0]}
    out["fid_eval_seeds"] = [r["fid"] for r in rows]
    out["per_class_fid"] = [statistics.fmean(v) for v in zip(*(r["per_class_fid"] for r in rows))]
    out["per_class_recall"] = [statistics.fmean(v) for v in zip(*(r["per_class_recall"] for r in rows))]
    if second:
        out[f"fid_{second}"] = statistics.fmean(r[f"fid_{second}"] for r in rows)
    return out


def suite_table5(base: TrainConfig, out: Path, seeds: list[int], argv: list[str] | None, population: int,
                 elites: int, samples: int, eval_seeds: list[int], second_metric: str | None) -> str:
    """Heuristic, static-search, step-only, adaptive and adaptive-mean per seed, every arm evaluated paired (the
    same sampling seeds, :func:`agents.paired.paired_evaluation`) at every evaluation seed; ``summary.json``."""
    run_protocol(base, out, seeds, ARMS["table5"], command=_command(argv))
    per_seed: dict[int, dict[str, Any]] = {}
    for seed in seeds:
        found = _static_search(base, out / "static-search" / f"seed{seed}", seed, population, elites, samples)
        runs = {arm: out / arm / f"seed{seed}" for arm in ARMS["table5"]}
        # what the paired table was made of: a cached one is read only if the settings and every run's result agree
        made_of = {"eval_seeds": list(eval_seeds), "samples": base.eval_samples, "second_metric": second_metric,
                   "static_search": found["schedule"],
                   "runs": {a: json.loads((r / "metrics.json").read_text())["fid"]["learned"] for a, r in runs.items()}}
        cache = out / "paired" / f"seed{seed}.json"
        cached = json.loads(cache.read_text()) if cache.is_file() else {}
        if cached.get("made_of") == json.loads(json.dumps(made_of)):
            table = cached["table"]
        else:
            table = paired_evaluation(runs, eval_seeds=eval_seeds, num_samples=base.eval_samples, means=("adaptive",),
                                      mean_samples=min(1000, base.eval_samples),
                                      schedules={"static-search": Schedule(**found["schedule"], name="static-search")},
                                      second_metric=second_metric, cache_dir=out / "paired", device=base.device)
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps({"made_of": made_of, "table": table}, indent=1))
        per_seed[seed] = {arm: _paired_row(table[arm], second_metric) for arm, _ in TABLE5_ARMS}
    arms: dict[str, Any] = {}
    for arm, what in TABLE5_ARMS:
        fids = [per_seed[s][arm]["fid"] for s in seeds]
        arms[arm] = {"what": what, "per_seed": {s: per_seed[s][arm] for s in seeds},
                     "fid_mean": statistics.fmean(fids), "fid_std": statistics.stdev(fids) if len(fids) > 1 else 0.0,
                     "fid_worst": max(fids),
                     "eval_seed_spread_max": max(max(v) - min(v) for v in
                                                 (per_seed[s][arm]["fid_eval_seeds"] for s in seeds))}
    summary = {"seeds": seeds, "eval_seeds": eval_seeds, "samples": base.eval_samples, "second_metric": second_metric,
               "command": _command(argv), "arms": arms}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    figures.curves({what: [(seeds, [per_seed[s][arm]["fid"] for s in seeds])] for arm, what in TABLE5_ARMS},
                   out / "table5.png", xlabel="training seed", ylabel="test FID (mean over evaluation seeds)")
    rows = {f"{arm}: {what}": [per_seed[s][arm] for s in seeds] for arm, what in TABLE5_ARMS}
    heur = [per_seed[s]["heuristic"]["fid"] for s in seeds]
    vs = {"FID vs heuristic": [
        "—" if arm == "heuristic" else _pct_change([1 - per_seed[s][arm]["fid"] / h for s, h in zip(seeds, heur)])
        for arm, _ in TABLE5_ARMS],
        "eval-seed spread, max": [f"{arms[arm]['eval_seed_spread_max']:.2f}" for arm, _ in TABLE5_ARMS]}
    if second_metric:
        vs[f"FID in {second_metric}"] = [_ms([per_seed[s][arm][f"fid_{second_metric}"] for s in seeds])
                                         for arm, _ in TABLE5_ARMS]
    return (_header("Table 5: hand-designed, static, learnable non-adaptive, adaptive", base, seeds, argv)
            + f"Every arm of a seed on the same labels and noise at evaluation seeds {' '.join(map(str, eval_seeds))} "
            f"({base.eval_samples} samples each; a figure is the mean over them). static-search: CEM, {population} "
            f"candidates per round, {samples} generations each, the generations of one training run.\n\n"
            + metrics_table(rows, vs) + "\n![table5](table5.png)\n")


def suite_rewards(base: TrainConfig, out: Path, seeds: list[int], argv: list[str] | None) -> str:
    run_protocol(base, out, seeds, ARMS["rewards"], command=_command(argv))
    ms = {arm: _run_metrics(out, arm, seeds) for arm in ARMS["rewards"]}
    rows = {"hand-designed (heuristic)": [m["details"]["heuristic"] for m in ms["adversarial"]]}
    rows.update({arm: [m["details"]["learned"] for m in v] for arm, v in ms.items()})
    red = {"FID vs heuristic": ["—"] + [_reduction(v) for v in ms.values()]}
    s = seeds[0]
    grids = {"heuristic": out / "adversarial" / f"seed{s}" / "grid_heuristic.png"}
    grids.update({arm: out / arm / f"seed{s}" / "grid_learned.png" for arm in ARMS["rewards"]})
    figures.image_panels(grids, out / "rewards.png", title=f"seed {s}: the same labels and sampler noise in every grid")
    return (_header("Rewards: adversarial vs batch FID vs PRM stand-in", base, seeds, argv) + metrics_table(rows, red)
            + "\n![samples per reward](rewards.png)\n")


def suite_adaptive(base: TrainConfig, out: Path, seeds: list[int], argv: list[str] | None, samples: int) -> str:

    seed = seeds[0]
    cfg = replace(base, seed=seed)
    run_protocol(base, out, [seed], ARMS["adaptive"], command=_command(argv))
    run, weights = out / "adaptive" / f"seed{seed}", out / "selected_policy.pt"
    if (run / "checkpoint.pt").is_file():  # keep the selected policy's weights next to the analysis (small)
        trainer = Trainer.resume(run, log=lambda _: None)
        with trainer.selected() as (_, it):
            torch.save({"policy": trainer.model.policy.state_dict(), "iteration": it}, weights)
    if not weights.is_file():
        raise FileNotFoundError(f"'{run}' holds a finished run without its checkpoint and '{weights}' is missing; "
                                "delete the run directory to train it again")
    saved = torch.load(weights, map_location="cpu", weights_only=True)
    trainer = Trainer(cfg, None, log=lambda _: None)  # the same policy class, no run directory
    trainer.model.policy.load_state_dict(saved["policy"])
    it = int(saved["iteration"])
    policy = trainer.generation_policy()
    clf = load_classifier(device=trainer.device)
    rec = record_step_params(trainer.generator, policy, cfg.steps, samples, seed=seed + 777,
                             score_fn=clf.label_probability)
    table = adaptivity_table(rec.params, rec.labels.numpy(), rec.score)
    easy, hard = split_by_score(rec.score, 0.3)
    figures.adaptive_figure(rec.params, easy, hard, rec.images[:, 0].numpy(), out / "adaptive.png")
    lines = ["| step | parameter | mean | std across samples | p10 | p90 | std / mean | share between classes "
             "| corr. within class with confidence | mean, easy | mean, hard |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in table:
        j = ("m", "tau1", "tau2", "w").index(r["param"])
        pe, ph = rec.params[r["step"], easy, j].mean(), rec.params[r["step"], hard, j].mean()
        lines.append(f"| {r['step']} | {r['param']} | {r['mean']:.4f} | {r['std']:.4f} | {r['p10']:.4f} | {r['p90']:.4f} "
                     f"| {r['rel_spread']:.3f} | {r['class_share']:.2f} | {r['within_corr']:+.2f} | {pe:.4f} | {ph:.4f} |")
    static = is_effectively_static(table)
    spread = max((r["rel_spread"] for r in table if r["rel_spread"] == r["rel_spread"]), default=float("nan"))
    verdict = (f"**Effectively static**: no parameter varies by more than 2% (std / mean) across samples at any step "
               f"(largest {spread:.3f})." if static else
               f"**Adaptive**: the largest across-sample spread is {spread:.3f} (std / mean).")
    (out / "adaptive.json").write_text(json.dumps({"selected_iteration": it, "table": table, "static": static,
                                                   "samples": samples}, indent=2))
    return (_header("Adaptive: how the learned policy adapts per sample", base, [seed], argv)
            + f"The selected policy (iteration {it}) of the default run, seed {seed}; {samples} class-balanced samples; "
            "easy / hard = the 30% of samples the shipped classifier is most / least confident in; share between "
            "classes = the part of the across-sample variance that the class explains; corr. within class = the "
            "correlation of the rest with that confidence (what a per-sample choice should follow).\n\n"
            + "\n".join(lines) + f"\n\n{verdict}\n\n![adaptive](adaptive.png)\n")


def _static_search(base: TrainConfig, run: Path, seed: int, population: int, elites: int, samples: int
                   ) -> dict[str, Any]:
    """CEM over one schedule for every sample, with one training run's generations, scored by validation FID;
    evaluated on the test split. Reads ``run/metrics.json`` when it is there."""
    if (run / "metrics.json").is_file():
        return json.loads((run / "metrics.json").read_text())
    budget = rl_generation_budget(base)
    device = resolve_device(base.device)
    run.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cfg = replace(base, seed=seed)
    seed_everything(seed)
    env = build_env(cfg, device)
    gen = env.unwrapped.generator
    fn = metric_features(cfg, device)
    ds, _, val_idx = train_split(cfg, gen)
    ref = feature_stats(real_features(fn, ds, val_idx, gen, device))

    def score(schedule, round_seed, n=samples):  # type: ignore[no-untyped-def]
        images, _ = sample_images(gen, schedule, cfg.steps, n, seed=round_seed)
        return frechet_distance(feature_stats(extract_features(fn, images)), ref)

    found = cem_search(score, cfg.steps, budget, population=population, elites=elites, samples=samples,
                       residual=cfg.residual == "heuristic", seed=seed, progress=True)
    res = evaluate_on_test(cfg, gen, {"cosine": maskgit_cosine_schedule(cfg.steps),
                                      "heuristic": heuristic_schedule(cfg.steps), "searched": found.schedule},
                           run, device)
    m = {"details": res, "fid_reduction_vs_heuristic": 1 - res["searched"]["fid"] / res["heuristic"]["fid"],
         "schedule": {k: list(getattr(found.schedule, k)) for k in ("mask_ratio", "sample_temp", "remask_temp", "guidance")},
         "raw": found.raw.tolist(), "history": found.history, "generations": found.generations, "seed": seed,
         "wall_time_s": round(time.perf_counter() - t0, 1)}
    (run / "metrics.json").write_text(json.dumps(m, indent=2))
    return m


def suite_search(base: TrainConfig, out: Path, seeds: list[int], argv: list[str] | None,
                 population: int, elites: int, samples: int) -> str:
    results = []
    for seed in seeds:
        m = _static_search(base, out / "search" / f"seed{seed}", seed, population, elites, samples)
        if m.get("search_score", "fid") != "fid":  # a retired --search-score: not this suite's result
            raise SystemExit(f"the search of seed {seed} in '{out}' was scored by {m['search_score']}, not by the "
                             "validation FID: use another --out")
        results.append(m)
    rows = {"hand-designed (heuristic)": [m["details"]["heuristic"] for m in results],
            "CEM-searched static schedule": [m["details"]["searched"] for m in results]}
    red = {"FID vs heuristic": ["—", _reduction(results)]}
    sched = "\n".join(f"- seed {m['seed']}: " + ", ".join(f"{k} {tuple(round(v, 3) for v in vals)}"
                                                         for k, vals in m["schedule"].items()) for m in results)
    what = "validation FID"
    figures.curves({"CEM: best candidate per round": [([h["generations"] for h in m["history"]],
                                                      [h["best"] for h in m["history"]]) for m in results]},
                   out / "search.png", xlabel="generations", ylabel=f"{what} ({samples} samples)")
    return (_header("Search: the strongest static schedule (CEM)", base, seeds, argv)
            + f"CEM over the (T, 4) raw schedule table: {population} candidates per round, {elites} elites, each scored "
            f"by {what} on {samples} generations; {rl_generation_budget(base)} generations per seed, as many as one "
            "training run's rollouts and discriminator batches.\n\n" + metrics_table(rows, red)
            + f"\nFound schedules (m, τ1, τ2, w per step):\n\n{sched}\n\n![search](search.png)\n")


def algo_arms(base: TrainConfig, algos: list[str]) -> dict[str, dict[str, Any]]:
    """One arm per algorithm with the same rollout budget: ARS evaluates every candidate on a whole env batch, so
    one of its updates takes ``2 n_delta`` batches; it gets proportionally fewer iterations."""
    arms: dict[str, dict[str, Any]] = {}
    for a in algos:
        arms[a] = {"algo": a}
        if a == "ars":
            per_update = 2 * ARS_N_DELTA * base.batch_size
            arms[a]["iterations"] = max(1, round(base.iterations * base.episodes / per_update))
    return arms


def suite_algos(base: TrainConfig, out: Path, seeds: list[int], argv: list[str] | None, algos: list[str]) -> str:
    arms = algo_arms(base, algos)
    run_protocol(base, out, seeds, arms, command=_command(argv))
    ms = {arm: _run_metrics(out, arm, seeds) for arm in arms}
    series = {}
    for arm in arms:
        runs = []
        for s in seeds:
            hist = json.loads((out / arm / f"seed{s}" / "history.json").read_text())
            pts = [(h["generations"], h["fid_quick"]) for h in hist if "fid_quick" in h]
            if pts:
                runs.append(tuple(zip(*pts)))
        series[arm] = runs
    first = next(iter(ms.values()))
    heur = statistics.fmean(m["fid_quick_baselines"]["heuristic"] for m in first) if first[0].get("fid_quick_baselines") else None
    figures.curves(series, out / "algos.png", xlabel="rollout generations", ylabel="validation FID (mean action)",
                   hlines={"heuristic": heur} if heur else None)
    rows = {arm: [m["details"]["learned"] for m in v] for arm, v in ms.items()}
    extra = {"FID vs heuristic": [_reduction(v) for v in ms.values()],
             "wall (s)": [_ms([m["wall_time_s"] for m in v], "{:.0f}") for v in ms.values()],
             "rollout generations": [str(v[0]["generations"]) for v in ms.values()],
             "iterations": [str(v[0]["iterations"]) for v in ms.values()]}
    return (_header("Algorithms on the adversarial reward", base, seeds, argv) + metrics_table(rows, extra)
            + "\nEvery algorithm with its registry defaults (`agents/registry.py`) and the same rollout budget; ARS "
            "evaluates each candidate on a whole batch, so it runs fewer, larger iterations. Validation FIDs for "
            "selection and the discriminator's own batches are not counted.\n"
            + "\n![validation FID against generations](algos.png)\n")


def compute_arms(fixed_steps: list[int], nfe_costs: list[float], max_steps: int) -> dict[str, dict[str, Any]]:
    """Fixed-T learned policies and stop-action policies (T_max = ``max_steps``, one per lambda); every run is
    evaluated at its last iterate (``select="last"``): a validation-FID selection would ignore the compute.
    A ``--stop-std`` given to the suite applies to the stop-action arms only (the fixed-T ones have no stop action)."""
    arms: dict[str, dict[str, Any]] = {f"fixed_T{t}": {"steps": t, "select": "last", "stop_std": 0.0}
                                       for t in fixed_steps}
    for lam in nfe_costs:
        arms[f"stop_lambda{lam:g}"] = {"steps": max_steps, "adaptive_steps": True, "nfe_cost": lam, "select": "last"}
    return arms


def family_arms(out: Path, seeds: list[int], steps: list[int], lams: list[float], samples: int
                ) -> dict[float, list[dict[str, Any]]]:
    """The budget-family arms of the compute suite from its fixed-T runs (:func:`agents.budget.evaluate_family`):
    lam -> one test-metrics row per seed. Each seed's rows are kept in ``out/family/seed<s>.json`` and reused
    while the family, prices and sample count are unchanged; a family file per seed and price is written beside
    them (``python -m agents.sample --family FILE``)."""

    res: dict[float, list[dict[str, Any]]] = {float(lam): [] for lam in lams}
    for seed in seeds:
        runs = {t: out / f"fixed_T{t}" / f"seed{seed}" for t in steps}
        key = {"steps": steps, "lams": [float(x) for x in lams], "samples": samples}
        cache = out / "family" / f"seed{seed}.json"
        if cache.is_file() and json.loads(cache.read_text()).get("key") == key:
            rows = json.loads(cache.read_text())["rows"]
        else:
            rows = evaluate_family(runs, seed, lams, samples=samples, members_too=False, progress=True, cache=out)
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps({"key": key, "rows": rows}, indent=2) + "\n")
            for row in rows:
                save_family_file(out / "family" / f"family_seed{seed}_lam{row['lam']:g}.json", runs, row["table"],
                                 lam=row["lam"], validation_fid=row["val_fid"], test_fid=row["fid"],
                                 nfe_mean=row["nfe_mean"], samples=samples)
        for row in rows:
            res[float(row["lam"])].append(row)
    return res


def suite_compute(base: TrainConfig, out: Path, seeds: list[int], argv: list[str] | None, fixed_steps: list[int],
                  nfe_costs: list[float], max_steps: int, family_lams: list[float] = ()) -> str:
    arms = compute_arms(fixed_steps, nfe_costs, max_steps)
    run_protocol(base, out, seeds, arms, command=_command(argv))
    ms = {arm: _run_metrics(out, arm, seeds) for arm in arms}

    def point(dets: list[dict[str, Any]]) -> dict[str, float]:
        nfe, fid = [d["nfe_mean"] for d in dets], [d["fid"] for d in dets]
        return {"nfe": statistics.fmean(nfe), "nfe_std": statistics.stdev(nfe) if len(nfe) > 1 else 0.0,
                "fid": statistics.fmean(fid), "fid_std": statistics.stdev(fid) if len(fid) > 1 else 0.0}

    rows: dict[str, list[dict[str, Any]]] = {}
    pts: dict[str, dict[str, list[Any]]] = {"heuristic, fixed T": {}, "learned, fixed T": {}, "learned, stop action": {}}
    for line in pts.values():
        for k in ("nfe", "nfe_std", "fid", "fid_std", "labels"):
            line[k] = []
    heur: dict[int, dict[str, float]] = {}
    for arm, mets in ms.items():
        for kind in (("heuristic", "learned") if arm.startswith("fixed_T") else ("learned",)):
            dets = [m["details"][kind] for m in mets]
            if arm.startswith("fixed_T"):
                t = int(arm[len("fixed_T"):])
                name, label, line = (f"heuristic T={t}", f"T={t}", "heuristic, fixed T") if kind == "heuristic" else                     (f"learned T={t}", f"T={t}", "learned, fixed T")
                if kind == "heuristic":
                    heur[t] = point(dets)
            else:
                lam = arm[len("stop_lambda"):]
                name, label, line = f"stop action, λ = {lam} (T_max = {max_steps})", f"λ={lam}", "learned, stop action"
            rows[name] = dets
            p = point(dets)
            for k, v in p.items():
                pts[line][k].append(v)
            pts[line]["labels"].append(label)
    fam_steps = [t for t in fixed_steps if t <= max_steps]
    if family_lams and len(fam_steps) >= 2:
        line = pts.setdefault("learned, budget family", {k: [] for k in ("nfe", "nfe_std", "fid", "fid_std", "labels")})
        for lam, dets in family_arms(out, seeds, fam_steps, family_lams, base.eval_samples).items():
            rows[f"budget family (T = {', '.join(map(str, fam_steps))}), λ = {lam:g}"] = dets
            for k, v in point(dets).items():
                line[k].append(v)
            line["labels"].append(f"λ={lam:g}")
    figures.quality_compute({k: v for k, v in pts.items() if v["nfe"]}, out / "compute.png",
                            title="FID against compute (mean ± std over seeds)")
    nfe_col = {"NFE per image": [_ms([d["nfe_mean"] for d in dets]) for dets in rows.values()]}
    header = _header("Quality against compute: the stop action vs fixed T", base, seeds, argv)
    text = (header.replace(f"T = {base.steps}", f"T per row (stop action: T_max = {max_steps})")
            + metrics_table(rows, nfe_col)
            + "\nNFE: guided NAT evaluations per image (one per step). Every run is evaluated at its last iterate. "
            "The fixed-T rows train and evaluate at that T; the stop-action rows choose each sample's step count "
            f"in [1, {max_steps}], trained on the {base.reward} reward minus λ per NAT evaluation. The budget-family "
            "rows (if any) run each class with the fixed-T learned policy of a per-class budget, the table chosen on "
            "validation FID + λ x NFE (λ in validation-FID points; `agents.budget`, the same fixed-T runs).\n")
    if heur and pts["learned, stop action"]["nfe"]:
        t_best = min(heur, key=lambda t: heur[t]["fid"])
        f_best = heur[t_best]["fid"]
        ran = ", ".join(str(t) for t in sorted(heur))
        text += (f"\n**Target** (the best FID of the fixed-T heuristics this suite ran, T = {ran}: {f_best:.2f} at "
                 f"T = {t_best}, with ≥ 30% fewer NAT evaluations, i.e. ≤ {0.7 * t_best:.2f}; a T the suite did not "
                 f"run is not compared):\n\n")
        for kind in ("learned, stop action", "learned, budget family"):
            line = pts.get(kind, {"labels": [], "nfe": [], "fid": []})
            for lab, nfe, fid in zip(line["labels"], line["nfe"], line["fid"]):
                ok = fid <= f_best and nfe <= 0.7 * t_best
                text += (f"- {kind.split(', ')[1]}, {lab}: FID {fid:.2f} at {nfe:.2f} NFE "
                         f"({100 * (1 - nfe / t_best):.0f}% fewer than T = {t_best}): {'met' if ok else 'not met'}\n")
    return text + "\n![FID against NAT evaluations](compute.png)\n"


def main(argv: list[str] | None = None) -> str:
    args = build_parser().parse_args(argv)
    args.second_metric = None if args.second_metric in ("", "none") else args.second_metric
    base, _ = config_from_args(TrainConfig, args)
    seeds = args.seeds or DEFAULT_SEEDS[args.suite]
    out = Path(args.out or f"docs/results/{args.suite}")
    out.mkdir(parents=True, exist_ok=True)
    if args.suite == "adaptive":
        text = suite_adaptive(base, out, seeds, argv, args.analysis_samples)
    elif args.suite == "search":
        text = suite_search(base, out, seeds, argv, args.population, args.elites, args.search_samples)
    elif args.suite == "algos":
        text = suite_algos(base, out, seeds, argv, args.algos)
    elif args.suite == "compute":
        text = suite_compute(base, out, seeds, argv, args.fixed_steps, args.nfe_costs, args.max_steps,
                             args.family_lams)
    elif args.suite == "table5":
        text = suite_table5(base, out, seeds, argv, args.population, args.elites, args.search_samples,
                            args.eval_seeds, args.second_metric)
    else:
        text = suite_rewards(base, out, seeds, argv)
    (out / f"{args.suite}.md").write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    run_script(main, continue_hint="run the same command again to continue where it stopped")
