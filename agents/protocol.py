"""The multi-seed protocol: several arms (training configurations) x seeds, the same budget for every run, the
test split seen only by each run's final evaluation (selection uses the validation split), and a results table
with mean ± std written next to the runs.

    from agents.protocol import run_protocol
    from agents.training import TrainConfig

    summary = run_protocol(TrainConfig(), "runs/seeds", seeds=(0, 1, 2),
                           arms={"adversarial": {}, "fid": {"reward": "fid"}, "prm": {"reward": "prm"}})

Runs live in ``out/<arm>/seed<k>/`` (ordinary run directories of :class:`~agents.training.Trainer`). A finished
run (``metrics.json``) is read, not re-run; an interrupted one (``checkpoint.pt``) is resumed exactly; so a
stopped protocol continues where it stopped. ``out/summary.json`` and ``out/summary.md`` hold the table.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from .training import TrainConfig, Trainer, load_checkpoint, saved_options

__all__ = ["run_protocol", "run_summary", "summarize", "summary_markdown"]


def _discriminator_option(name: str) -> bool:
    """An option of the adversarial reward's discriminator (``--discriminator``, ``--d-*``)."""
    return name == "discriminator" or name.startswith("d_")


def _same_configuration(saved: dict[str, Any], cfg: TrainConfig) -> bool:
    """Whether a saved run (its ``config.json`` or checkpoint configuration) was made with ``cfg``.

    An option newer than the run is missing from its configuration: it ran with that option's default (or, for
    an option whose default changed since, its default then: :data:`agents.training.LEGACY_DEFAULTS`). The
    discriminator's options do not touch a run with another reward.
    """
    saved = json.loads(json.dumps(saved_options(saved)))
    expected = json.loads(json.dumps(asdict(cfg)))
    default = json.loads(json.dumps(asdict(TrainConfig())))
    relevant = [k for k in expected if expected["reward"] == "adversarial" or not _discriminator_option(k)]
    return {k: saved.get(k, default[k]) for k in relevant} == {k: expected[k] for k in relevant}


def run_summary(metrics: dict[str, Any], history: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of one finished run that a claim needs (test split; validation curve for drift).

    :param metrics: the run's ``metrics.json``.
    :param history: the run's ``history.json``.
    """
    d = metrics["details"]
    val = [h["fid_quick"] for h in history if "fid_quick" in h]
    out = {
        "fid": dict(metrics["fid"]), "kid": dict(metrics["kid"]),
        "recall": {k: v["recall"] for k, v in d.items()}, "precision": {k: v["precision"] for k, v in d.items()},
        "fid_reduction_vs_heuristic": metrics["fid_reduction_vs_heuristic"],
        "selected_iteration": metrics["selected_iteration"], "wall_time_s": metrics["wall_time_s"],
    }
    if val:
        out["val_fid_best"], out["val_fid_last"] = min(val), val[-1]
        out["val_drift"] = val[-1] / min(val) - 1  # last iterate vs best iterate, relative
    return out


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarize(runs: dict[str, dict[int, dict[str, Any]]]) -> dict[str, Any]:
    """Per arm: mean ± std over seeds of the FIDs and of the reduction vs the heuristic; every seed's KID, recall
    and drift verdicts (the worst seed, not the average).

    :param runs: arm -> seed -> :func:`run_summary`.
    """
    table: dict[str, Any] = {}
    for arm, by_seed in runs.items():
        seeds = sorted(by_seed)
        rs = [by_seed[s] for s in seeds]
        row: dict[str, Any] = {"seeds": seeds}
        for k in ("cosine", "heuristic", "learned"):
            row[f"fid_{k}"] = _mean_std([r["fid"][k] for r in rs])
        row["fid_reduction_vs_heuristic"] = _mean_std([r["fid_reduction_vs_heuristic"] for r in rs])
        row["fid_reduction_worst"] = min(r["fid_reduction_vs_heuristic"] for r in rs)
        row["kid_lower_every_seed"] = all(r["kid"]["learned"] < r["kid"]["heuristic"] for r in rs)
        row["recall_delta_worst"] = min(r["recall"]["learned"] - r["recall"]["heuristic"] for r in rs)
        drifts = [r["val_drift"] for r in rs if "val_drift" in r]
        row["val_drift_worst"] = max(drifts) if drifts else None
        row["wall_time_s"] = _mean_std([r["wall_time_s"] for r in rs])
        table[arm] = row
    return {"arms": table, "runs": runs}


def summary_markdown(summary: dict[str, Any]) -> str:
    """The table of :func:`summarize` as Markdown (mean ± std over seeds; worst seed where a claim needs every seed)."""
    def ms(v: tuple[float, float], pct: bool = False) -> str:
        return f"{100 * v[0]:+.1f}% ± {100 * v[1]:.1f}" if pct else f"{v[0]:.2f} ± {v[1]:.2f}"

    lines = ["| arm | seeds | FID cosine | FID heuristic | FID learned | learned vs heuristic (mean ± std; worst) "
             "| KID lower, every seed | recall Δ, worst | val. drift last vs best, worst | wall (s) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for arm, r in summary["arms"].items():
        drift = "n/a" if r["val_drift_worst"] is None else f"{100 * r['val_drift_worst']:+.1f}%"
        red = r["fid_reduction_vs_heuristic"]
        lines.append(f"| {arm} | {' '.join(map(str, r['seeds']))} | {ms(r['fid_cosine'])} | {ms(r['fid_heuristic'])} "
                     f"| {ms(r['fid_learned'])} | {-100 * red[0]:+.1f}% ± {100 * red[1]:.1f}; "
                     f"{-100 * r['fid_reduction_worst']:+.1f}% | {'yes' if r['kid_lower_every_seed'] else 'no'} "
                     f"| {r['recall_delta_worst']:+.3f} | {drift} | {r['wall_time_s'][0]:.0f} |")
    return "\n".join(lines) + "\n\nFID change vs the heuristic: negative is better. Test split, " \
        "class-balanced samples; the selected iterate by validation FID (see each run's metrics.json).\n"


def run_protocol(base: TrainConfig, out: str | os.PathLike[str], seeds: Sequence[int] = (0, 1, 2),
                 arms: dict[str, dict[str, Any]] | None = None, *, log: Callable[[str], None] = print,
                 command: str = "", progress: bool = True) -> dict[str, Any]:
    """Train and evaluate every (arm, seed), then write ``summary.json`` / ``summary.md`` into ``out``.

    :param base: the configuration every arm starts from (its ``seed`` is replaced).
    :param out: the protocol directory.
    :param seeds: the seeds, the same for every arm.
    :param arms: arm name -> changes to ``base`` (default: one arm, ``{"default": {}}``).
    :param command: the command line, recorded in each run.
    :raises ValueError: a finished run in ``out`` was made with another configuration.
    """
    arms = {"default": {}} if not arms else arms
    configs = {(a, s): replace(base, **{**ch, "seed": int(s)}) for a, ch in arms.items() for s in seeds}
    for cfg in configs.values():  # every configuration is checked before any work
        cfg.validate()
    runs: dict[str, dict[int, dict[str, Any]]] = {a: {} for a in arms}
    for (arm, seed), cfg in configs.items():
        run_dir = Path(out) / arm / f"seed{seed}"
        if (run_dir / "metrics.json").is_file():
            if not _same_configuration(json.loads((run_dir / "config.json").read_text()), cfg):
                raise ValueError(f"'{run_dir}' holds a finished run of another configuration; use another --out")
            log(f"{arm} seed {seed}: finished earlier, read from {run_dir}")
        else:
            log(f"{arm} seed {seed}: training in {run_dir}")
            if (run_dir / "checkpoint.pt").is_file():
                if not _same_configuration(load_checkpoint(run_dir)["config"], cfg):
                    raise ValueError(f"'{run_dir}' holds an interrupted run of another configuration; use another --out")
                trainer = Trainer.resume(run_dir, log=log)
            else:  # nothing there, or a run stopped before its first checkpoint: nothing to keep
                trainer = Trainer(cfg, run_dir, overwrite=True, command=command, log=log)
            trainer.fit(progress=progress)
            trainer.evaluate()
        metrics = json.loads((run_dir / "metrics.json").read_text())
        history = json.loads((run_dir / "history.json").read_text())
        runs[arm][int(seed)] = run_summary(metrics, history)
    summary = summarize(runs)
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "summary.json").write_text(json.dumps(summary, indent=2))
    (Path(out) / "summary.md").write_text(summary_markdown(summary))
    return summary
