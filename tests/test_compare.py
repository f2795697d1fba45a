"""The comparison suites (experiments/compare.py) at toy size, and the search / analysis modules they use."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from adanat_env.data import DEFAULT_DATA_DIR
from adanat_env.schedules import heuristic_schedule
from agents.analysis import adaptivity_table, is_effectively_static, split_by_score
from agents.search import cem_search, rl_generation_budget, schedule_from_raw
from agents.training import TrainConfig

from .test_training_scripts import experiment_script

pytest.importorskip("matplotlib")
experiment_script("figures")  # compare.py imports its sibling experiments/figures.py
_path = Path(__file__).resolve().parents[1] / "experiments" / "compare.py"
_spec = importlib.util.spec_from_file_location("compare", _path)
compare = importlib.util.module_from_spec(_spec)
sys.modules["compare"] = compare
_spec.loader.exec_module(compare)

needs_data = pytest.mark.skipif(not (DEFAULT_DATA_DIR / "train-labels-idx1-ubyte.gz").exists(),
                                reason="Fashion-MNIST package not installed")

TOY = ["--steps", "2", "--batch-size", "8", "--episodes", "16", "--minibatch", "16", "--epochs", "1",
       "--d-epochs", "1", "--d-batch-size", "8", "--d-updates", "2", "--d-minibatch", "8", "--d-warmup", "1",
       "--d-real-count", "500", "--val-count", "200", "--curve-every", "1", "--curve-samples", "16",
       "--eval-samples", "16", "--amp", "none", "--device", "cpu", "--iterations", "1"]


# ----------------------------------------------------------------------------------------- search / analysis
def test_the_zero_table_is_the_heuristic_schedule():
    s = schedule_from_raw(torch.zeros(4, 4, dtype=torch.float64))
    h = heuristic_schedule(4)
    for f in ("mask_ratio", "sample_temp", "remask_temp", "guidance"):
        assert np.allclose(getattr(s, f), getattr(h, f), atol=1e-6), f
    with pytest.raises(ValueError, match=r"\(T, 4\)"):
        schedule_from_raw(torch.zeros(4, 3))


def test_cem_finds_the_optimum_of_a_known_score_within_its_budget():
    target = torch.tensor([[0.0, 1.0, -0.5, 2.0], [0.0, 0.5, 0.0, 1.5]], dtype=torch.float64)
    ref = schedule_from_raw(target)

    def score(s, _seed):  # squared distance of the executed schedule to the target's, in its own units
        return float(sum(((np.array(getattr(s, f)) - np.array(getattr(ref, f))) ** 2).sum()
                         for f in ("sample_temp", "remask_temp", "guidance")))

    res = cem_search(score, 2, budget=40 * 16 * 10, population=16, elites=4, samples=10, seed=0)
    assert res.generations == 40 * 16 * 10 and len(res.history) == 40
    assert score(res.schedule, 0) < 0.02 < score(heuristic_schedule(2), 0)
    again = cem_search(score, 2, budget=40 * 16 * 10, population=16, elites=4, samples=10, seed=0)
    assert torch.equal(res.raw, again.raw)  # seeded
    with pytest.raises(ValueError, match="does not buy one round"):
        cem_search(score, 2, budget=10, population=4, samples=8)


def test_the_search_gets_the_generations_of_one_training_run():
    cfg = TrainConfig()  # the discriminator trains on the rollouts' own images; only its warm-up generates
    assert rl_generation_budget(cfg) == 36 * 512 + 2 * 256
    assert rl_generation_budget(TrainConfig(d_fakes="fresh", iterations=24)) == 24 * 512 + 24 * 2 * 256 + 2 * 256
    assert rl_generation_budget(TrainConfig(reward="fid")) == 36 * 512


def test_adaptivity_table_and_the_static_verdict():
    rng = np.random.default_rng(0)
    params = np.ones((2, 100, 4)) * np.array([0.5, 1.0, 0.3, 2.0])
    table = adaptivity_table(params)
    assert len(table) == 8 and is_effectively_static(table)
    params[1, :, 3] += rng.normal(0, 0.2, 100)  # guidance varies per sample at step 1
    table = adaptivity_table(params)
    row = next(r for r in table if r["step"] == 1 and r["param"] == "w")
    assert 0.05 < row["rel_spread"] < 0.2 and not is_effectively_static(table)
    easy, hard = split_by_score(np.arange(10.0), 0.3)
    assert easy.tolist() == [False] * 7 + [True] * 3 and hard.tolist() == [True] * 3 + [False] * 7
    with pytest.raises(ValueError):
        adaptivity_table(params[..., :3])
    # step 0: tau1 set by the class alone; step 1: w by a per-sample score within each class
    labels, score = np.arange(100) % 5, rng.normal(size=100)
    params = np.ones((2, 100, 4))
    params[0, :, 1] += 0.1 * labels
    params[1, :, 3] += 0.2 * score
    rows = {(r["step"], r["param"]): r for r in adaptivity_table(params, labels, score)}
    assert rows[0, "tau1"]["class_share"] == pytest.approx(1.0) and rows[1, "w"]["within_corr"] > 0.95
    assert rows[1, "w"]["class_share"] < 0.2 and np.isnan(rows[0, "m"]["class_share"])  # m does not vary


# ----------------------------------------------------------------------------------------- suites at toy size
@needs_data
@pytest.mark.slow  # an end-to-end run of the suite (10-15 s): outside the default suite's budget
def test_table5_suite_writes_its_table_and_resumes_without_redoing_finished_runs(tmp_path, capsys):
    out = tmp_path / "table5"
    common = ["table5", *TOY, "--seeds", "0", "--out", str(out), "--population", "2", "--elites", "1",
              "--search-samples", "8", "--second-metric", "none"]
    argv = common + ["--eval-seeds", "0", "1"]
    text = compare.main(argv)
    assert (out / "table5.md").read_text() == text
    for arm, _ in compare.TABLE5_ARMS:
        assert f"| {arm}: " in text
    assert " ± " in text and "Command: `python experiments/compare.py table5" in text and (out / "table5.png").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["arms"]) == ["heuristic", "static-search", "step-only", "adaptive", "adaptive-mean"]
    for arm in summary["arms"].values():
        row = arm["per_seed"]["0"]
        assert len(row["fid_eval_seeds"]) == 2 and row["fid"] == pytest.approx(sum(row["fid_eval_seeds"]) / 2)
        assert set(row) >= {"kid_x1e3", "precision", "recall", "class_accuracy", "per_class_fid"}
    paired = json.loads((out / "paired" / "seed0.json").read_text())["table"]
    assert [r["fid"] for r in paired["heuristic"]] == summary["arms"]["heuristic"]["per_seed"]["0"]["fid_eval_seeds"]
    finished = out / "step-only" / "seed0" / "metrics.json"
    stamp = finished.stat().st_mtime_ns
    (out / "adaptive" / "seed0" / "metrics.json").unlink()  # interrupted after its last checkpoint
    (out / "paired" / "seed0.json").unlink()  # and evaluated again: the same table only if resumed exactly
    capsys.readouterr()
    again = compare.main(argv)
    log = capsys.readouterr().out
    assert "step-only seed 0: finished earlier" in log and "adaptive seed 0: training" in log
    assert finished.stat().st_mtime_ns == stamp and again == text
    # other evaluation settings are not read from the cached paired table: evaluated again, at one seed
    compare.main(common + ["--eval-seeds", "0"])
    row = json.loads((out / "summary.json").read_text())["arms"]["adaptive"]["per_seed"]["0"]
    assert row["fid_eval_seeds"] == summary["arms"]["adaptive"]["per_seed"]["0"]["fid_eval_seeds"][:1]


@needs_data
@pytest.mark.slow  # an end-to-end run of the suite (10-15 s): outside the default suite's budget
def test_rewards_and_algos_suites_write_tables_and_figures(tmp_path):
    text = compare.main(["rewards", *TOY, "--seeds", "0", "--out", str(tmp_path / "rw")])
    assert all(f"| {arm} | 1 |" in text for arm in ("adversarial", "fid", "prm")) and (tmp_path / "rw" / "rewards.png").is_file()
    text = compare.main(["algos", *TOY, "--seeds", "0", "--algos", "ppo", "ars",
                         "--out", str(tmp_path / "al")])
    assert "| ppo | 1 |" in text and "| ars | 1 |" in text and (tmp_path / "al" / "algos.png").is_file()
    ppo = json.loads((tmp_path / "al" / "ppo" / "seed0" / "history.json").read_text())
    ars = json.loads((tmp_path / "al" / "ars" / "seed0" / "metrics.json").read_text())
    assert ppo[-1]["generations"] == 16  # rollout generations are recorded per iteration
    assert ars["generations"] == 2 * 4 * 8 and ars["iterations"] == 1  # one ARS update: 2 n_delta batches of 8


def test_every_algorithm_gets_the_same_rollout_budget():
    base = TrainConfig()
    arms = compare.algo_arms(base, ["ppo", "ars"])
    assert arms["ppo"] == {"algo": "ppo"}
    assert arms["ars"]["iterations"] * 2 * 4 * base.batch_size == base.iterations * base.episodes


@pytest.mark.slow  # two whole comparison suites end to end (their parts have fast tests)
@needs_data
def test_search_and_adaptive_suites(tmp_path):
    out = tmp_path / "search"
    text = compare.main(["search", *TOY, "--seeds", "0", "--population", "3", "--elites", "2",
                         "--search-samples", "8", "--out", str(out)])
    m = json.loads((out / "search" / "seed0" / "metrics.json").read_text())
    assert m["generations"] == 3 * 8 and len(m["schedule"]["guidance"]) == 2
    assert "| CEM-searched static schedule | 1 |" in text and (out / "search.png").is_file()
    assert "search_score" not in m
    assert compare.main(["search", *TOY, "--seeds", "0", "--population", "3", "--elites", "2",
                         "--search-samples", "8", "--out", str(out)]) == text  # read back, not searched again
    # a result written before the search was FID-only (it recorded its score) is read back as well...
    record = out / "search" / "seed0" / "metrics.json"
    record.write_text(json.dumps({**m, "search_score": "fid"}))
    assert compare.main(["search", *TOY, "--seeds", "0", "--population", "3", "--elites", "2",
                         "--search-samples", "8", "--out", str(out)]) == text
    # ...but not one scored by the retired adversarial search, and the option is gone
    record.write_text(json.dumps({**m, "search_score": "adversarial"}))
    with pytest.raises(SystemExit, match="scored by adversarial, not by the validation FID"):
        compare.main(["search", *TOY, "--seeds", "0", "--population", "3", "--elites", "2",
                      "--search-samples", "8", "--out", str(out)])
    with pytest.raises(SystemExit):
        compare.build_parser().parse_args(["search", "--search-score", "fid"])
    out = tmp_path / "adaptive"
    text = compare.main(["adaptive", *TOY, "--analysis-samples", "30", "--out", str(out)])
    assert "| 0 | tau1 |" in text and ("Effectively static" in text or "Adaptive" in text)
    assert (out / "adaptive.png").is_file() and json.loads((out / "adaptive.json").read_text())["samples"] == 30
    (out / "adaptive" / "seed0" / "checkpoint.pt").unlink()  # a clean clone: the committed run has no checkpoint
    assert compare.main(["adaptive", *TOY, "--analysis-samples", "30", "--out", str(out)]) == text


@pytest.mark.slow  # a whole comparison suite end to end (its parts have fast tests)
@needs_data
def test_compute_suite_writes_the_quality_compute_table_and_figure(tmp_path):
    out = tmp_path / "compute"
    text = compare.main(["compute", *TOY, "--seeds", "0", "--fixed-steps", "1", "2", "--nfe-costs", "0.1",
                         "--max-steps", "2", "--stop-std", "0.5", "--family-lams", "0", "1000", "--out", str(out)])
    for row in ("heuristic T=1", "heuristic T=2", "learned T=1", "learned T=2", "stop action, λ = 0.1 (T_max = 2)"):
        assert f"| {row} | 1 |" in text, row
    assert "**Target** (the best FID of the fixed-T heuristics this suite ran, T = 1, 2:" in text
    assert (out / "compute.png").is_file()
    # the budget-family arms, built from the fixed-T runs (every T <= T_max), one per price, with a family file
    for lam in ("0", "1000"):
        assert f"| budget family (T = 1, 2), λ = {lam} | 1 |" in text
        assert f"- budget family, λ={lam}: FID" in text
    family = json.loads((out / "family" / "family_seed0_lam1000.json").read_text())
    assert family["members"] == {"1": "../fixed_T1/seed0", "2": "../fixed_T2/seed0"}
    assert family["table"] == {str(c): 1 for c in range(10)}  # a huge price: every class at the cheapest budget
    cached = (out / "family" / "seed0.json").stat().st_mtime_ns
    assert compare.main(["compute", *TOY, "--seeds", "0", "--fixed-steps", "1", "2", "--nfe-costs", "0.1",
                         "--max-steps", "2", "--stop-std", "0.5", "--family-lams", "0", "1000",
                         "--out", str(out)]) == text  # finished: re-read
    assert (out / "family" / "seed0.json").stat().st_mtime_ns == cached
    stop = json.loads((out / "stop_lambda0.1" / "seed0" / "metrics.json").read_text())
    assert stop["select"] == "last" and 1 <= stop["details"]["learned"]["nfe_mean"] <= 2
    fixed = json.loads((out / "fixed_T1" / "seed0" / "metrics.json").read_text())
    assert fixed["details"]["heuristic"]["nfe_mean"] == 1.0
    # --stop-std reaches the stop-action arms only (a fixed-T run has no stop action to explore)
    assert json.loads((out / "stop_lambda0.1" / "seed0" / "config.json").read_text())["stop_std"] == 0.5
    assert json.loads((out / "fixed_T1" / "seed0" / "config.json").read_text())["stop_std"] == 0.0
