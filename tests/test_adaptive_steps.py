"""Adaptive step counts: the stop action in the single and vector env, compaction of finished samples (NAT rows
counted), the compute-aware reward, the adaptive sampler, checkers, and training with the stop action."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from adanat_env.data import DEFAULT_DATA_DIR
from adanat_env.decoding import StepParams
from adanat_env.envs import AdaNATEnv, AdaNATVectorEnv
from adanat_env.policy import PolicyInput, StepDecision
from adanat_env.sampler import generate
from adanat_env.schedules import heuristic_schedule
from adanat_env.wrappers import ComputeCost, VectorComputeCost, VectorTerminalRewardWrapper

STOP, GO = 10.0, -10.0  # raw stop actions: always / never finish now


def _count_rows(generator) -> list[int]:
    rows: list[int] = []
    generator.nat.register_forward_hook(lambda m, i, o: rows.append(i[0].shape[0]))
    return rows


def _actions(stop: list[float]) -> np.ndarray:
    a = np.zeros((len(stop), 5), dtype=np.float32)
    a[:, 4] = stop
    return a


@pytest.mark.parametrize("stop_at, expected", [(0, 1), (None, 5), (2, 3)])
def test_single_env_step_counts(tiny_generator, stop_at, expected):
    env = AdaNATEnv(tiny_generator, steps=5, adaptive_steps=True)
    assert env.action_space.shape == (5,)
    env.reset(seed=0)
    for t in range(5):
        obs, reward, terminated, truncated, info = env.step(_actions([STOP if t == stop_at else GO])[0])
        if terminated:
            break
    assert terminated and not truncated and t + 1 == expected and info["nfe"] == expected
    assert obs["step"].tolist() == [expected]  # the terminal observation holds the sample's step count
    assert (info["final_tokens"] < tiny_generator.mask_id).all()  # finishing fixes every remaining token
    with pytest.raises(RuntimeError, match="reset"):
        env.step(_actions([GO])[0])


def test_never_stopping_reproduces_the_fixed_T_env_exactly(tiny_generator):
    fixed = AdaNATVectorEnv(tiny_generator, num_envs=4, steps=3)
    adaptive = AdaNATVectorEnv(tiny_generator, num_envs=4, steps=3, adaptive_steps=True)
    fixed.reset(seed=7, options={"labels": [0, 1, 2, 3]})
    adaptive.reset(seed=7, options={"labels": [0, 1, 2, 3]})
    rng = np.random.default_rng(0)
    for _ in range(3):
        a = rng.normal(size=(4, 5)).astype(np.float32)
        a[:, 4] = GO
        _, _, t1, _, i1 = fixed.step(a[:, :4])
        _, _, t2, _, i2 = adaptive.step(a)
    assert t1.all() and t2.all() and i2["final_info"]["nfe"].tolist() == [3] * 4
    np.testing.assert_array_equal(i1["final_info"]["final_tokens"], i2["final_info"]["final_tokens"])
    torch.testing.assert_close(fixed.final_images, adaptive.final_images, rtol=0, atol=0)


def test_vector_env_per_sample_termination_restart_and_nat_rows(tiny_generator):
    rows = _count_rows(tiny_generator)
    env = AdaNATVectorEnv(tiny_generator, num_envs=4, steps=3, adaptive_steps=True)
    obs, _ = env.reset(seed=0)
    # the all-mask start: one row per distinct class + one shared unconditional row
    assert rows == [len(set(obs["label"][:, 0].tolist())) + 1]
    # step 0: samples 0 and 2 finish (1 step each); 1 and 3 continue
    obs, rew, term, trunc, info = env.step(_actions([STOP, GO, STOP, GO]))
    assert term.tolist() == [True, False, True, False] and not trunc.any()
    restarted = len(set(obs["label"][term, 0].tolist()))  # one all-mask row per distinct class of the 2 restarts
    assert rows[-1] == 2 * 2 + restarted + 1  # continuing rows (cond + uncond) + restarts + 1 shared uncond
    assert obs["step"][:, 0].tolist() == [0, 1, 0, 1]  # finished slots restarted in the same call
    assert info["_final_obs"].tolist() == term.tolist() and info["final_obs"][1] is None
    assert info["final_obs"][0]["step"].tolist() == [1] and info["final_info"]["nfe"][term].tolist() == [1, 1]
    assert env.final_index.tolist() == [0, 2] and env.final_images.shape[0] == 2
    assert (info["final_info"]["final_tokens"][term] < tiny_generator.mask_id).all()
    # step 1: nobody stops: a plain step over the 4 running rows
    obs, rew, term, trunc, info = env.step(_actions([GO] * 4))
    assert not term.any() and rows[-1] == 2 * 4 and info == {}
    # step 2: samples 1 and 3 reach T_max = 3 and finish whatever they say; 0 and 2 stop at their second step
    obs, rew, term, trunc, info = env.step(_actions([STOP, GO, STOP, GO]))
    assert term.all() and info["final_info"]["nfe"].tolist() == [2, 3, 2, 3]
    assert rows[-1] == len(set(obs["label"][:, 0].tolist())) + 1  # all 4 slots restart: no continuing row
    assert obs["step"][:, 0].tolist() == [0] * 4
    # each restarted slot observes its own class's all-mask features, shared row or not
    g = tiny_generator
    _, feat = g.nat(torch.full((4, g.num_tokens), g.mask_id), torch.as_tensor(obs["label"][:, 0]))
    np.testing.assert_allclose(obs["features"], feat.float().numpy(), rtol=1e-3, atol=1e-3)


def test_sampler_compacts_finished_samples(tiny_generator):
    rows = _count_rows(tiny_generator)
    heuristic = heuristic_schedule(4)

    class StopHalfAtOne:
        adaptive_steps = True

        def __call__(self, inp: PolicyInput) -> StepDecision:
            params = heuristic(replace(inp, num_steps=4))
            return StepDecision(params, (inp.labels % 2 == 0) & (inp.step == 0))

    out = generate(tiny_generator, torch.arange(6), StopHalfAtOne(), 4, seed=0)
    assert out.nfe.tolist() == [1, 4, 1, 4, 1, 4]
    assert rows == [6 + 1, 2 * 3, 2 * 3, 2 * 3]  # finished samples cost no NAT forward after their last step
    assert out.images.shape[0] == 6 and (out.tokens < tiny_generator.mask_id).all()

    class Never(StopHalfAtOne):
        def __call__(self, inp: PolicyInput) -> StepDecision:
            return StepDecision(heuristic(replace(inp, num_steps=4)), torch.zeros(len(inp.labels), dtype=torch.bool))

    never = generate(tiny_generator, torch.arange(6), Never(), 4, seed=0)
    fixed = generate(tiny_generator, torch.arange(6), heuristic, 4, seed=0)
    assert never.nfe.tolist() == [4] * 6 and torch.equal(never.tokens, fixed.tokens)


def test_compute_cost_is_subtracted_from_terminal_rewards(tiny_generator):
    base = AdaNATVectorEnv(tiny_generator, num_envs=3, steps=4, adaptive_steps=True)
    env = VectorComputeCost(VectorTerminalRewardWrapper(base, lambda x, y: torch.ones(len(y))), nfe_cost=0.1)
    env.reset(seed=0)
    _, rew, term, _, _ = env.step(_actions([STOP, GO, GO]))
    np.testing.assert_allclose(rew, [1 - 0.1, 0, 0], rtol=1e-6)
    _, rew, term, _, _ = env.step(_actions([GO, STOP, GO]))
    np.testing.assert_allclose(rew, [0, 1 - 0.2, 0], rtol=1e-6)
    single = ComputeCost(AdaNATEnv(tiny_generator, steps=4, adaptive_steps=True), nfe_cost=0.5)
    single.reset(seed=0)
    assert single.step(_actions([GO])[0])[1] == 0.0
    assert single.step(_actions([STOP])[0])[1] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="nfe_cost"):
        VectorComputeCost(base, nfe_cost=-1)


def test_checkers_pass_and_bad_actions_are_refused(tiny_generator):
    env = AdaNATEnv(tiny_generator, steps=3, adaptive_steps=True)
    gym_check_env(env, skip_render_check=True)
    sb3_check_env(env, warn=True)
    venv = AdaNATVectorEnv(tiny_generator, num_envs=2, steps=3, adaptive_steps=True)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=r"\(2, 5\).*stop"):
        venv.step(np.zeros((2, 4), dtype=np.float32))
    bad = _actions([GO, GO])
    bad[1, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        venv.step(bad)
    obs, *_ = venv.step(_actions([GO, GO]))  # the episode was not advanced by the refused actions
    assert obs["step"][:, 0].tolist() == [1, 1]


def test_step_slots_needs_per_row_steps(tiny_generator):
    state = tiny_generator.start(torch.arange(2), 3)
    with pytest.raises(ValueError, match="start_slots"):
        tiny_generator.step_slots(state, StepParams.full(2, 0.5), torch.zeros(2, dtype=torch.bool))


@pytest.mark.skipif(not (DEFAULT_DATA_DIR / "train-labels-idx1-ubyte.gz").exists(),
                    reason="Fashion-MNIST package not installed (real images for the discriminator)")
def test_training_with_the_stop_action_and_a_compute_cost(tmp_path):
    from agents.training import TrainConfig, Trainer

    cfg = TrainConfig(steps=3, adaptive_steps=True, nfe_cost=0.05, batch_size=8, episodes=16, minibatch=16, epochs=1,
                      d_epochs=1, d_batch_size=8, d_updates=2, d_minibatch=8, d_warmup=1, d_real_count=500,
                      val_count=200, curve_every=1, curve_samples=20, eval_samples=24, amp="none", device="cpu",
                      seed=3, iterations=1)
    trainer = Trainer(cfg, tmp_path, log=lambda _: None)
    (rec,) = trainer.fit(progress=False)
    assert 1 <= rec["nfe_mean"] <= 3 and 1 <= rec["nfe_quick"] <= 3 and len(rec["step_params"]) == 3
    assert len(rec["step_stop_rate"]) == 3 and all(0 <= r <= 1 for r in rec["step_stop_rate"])
    m = [p[0] for p in rec["step_params"]]  # per-step mean mask ratio near the heuristic's 0.87, 0.50, 0.0005
    assert m[0] > 0.7 and 0.3 < m[1] < 0.7 and m[2] < 0.1
    assert trainer.discriminator is not None and "d_acc_heldout_fake" in rec  # the compute cost wraps it: still co-trained
    metrics = trainer.evaluate()
    assert 1 <= metrics["details"]["learned"]["nfe_mean"] <= 3 and metrics["details"]["heuristic"]["nfe_mean"] == 3.0
    with pytest.raises(ValueError, match="nfe-cost"):
        replace(cfg, nfe_cost=-0.1).validate()
    # a stop-action policy samples through the CLI and the library; it has no fixed schedule to export
    from agents.export import export_schedule, load_generation_policy
    from agents.sample import main as cli_main

    gen, policy, config = load_generation_policy(tmp_path, device="cpu")
    assert policy.adaptive_steps and config.adaptive_steps
    out = generate(gen, torch.arange(4), policy, 3, seed=0)
    assert out.images.shape[0] == 4 and ((out.nfe >= 1) & (out.nfe <= 3)).all()
    # the mean stop action (about 0, threshold 1) never stops early; sampled as in training (std 0.6) it stops a
    # sample at a step with probability ~5%
    from agents.generation_policy import SB3GenerationPolicy

    labels = torch.arange(100) % 10
    sampled = generate(gen, labels, policy, 3, seed=0, decode=False).nfe.float().mean()
    mean = generate(gen, labels, SB3GenerationPolicy(policy.policy, policy.spec, stop="mean"), 3, seed=0,
                    decode=False).nfe.float().mean()
    assert mean == 3.0 and 2.7 < sampled < 3.0
    fresh = [generate(gen, labels[:60], SB3GenerationPolicy(policy.policy, policy.spec), 3, seed=0, decode=False).nfe
             for _ in range(2)]
    assert torch.equal(*fresh)  # seeded: a fresh policy object makes the same stops
    with pytest.raises(ValueError, match="stop-action policy"):
        export_schedule(gen, policy, 3, tmp_path / "schedule.json")
    assert cli_main(["--policy", str(tmp_path), "--out", str(tmp_path / "grid.png"), "--device", "cpu",
                     "--per-class", "1"]) == 0 and (tmp_path / "grid.png").is_file()
    # where the policy spends its steps: per class and by difficulty (benchmarks/stop_adaptivity.py)
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "stop_adaptivity.py"
    spec = importlib.util.spec_from_file_location("stop_adaptivity", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rep = mod.main([str(tmp_path), "--samples", "40", "--out", str(tmp_path / "stop.json")])
    assert sum(rep["nfe_histogram"].values()) == 40 and len(rep["nfe_per_class"]) == 10
    counts = {int(k): v for k, v in rep["nfe_histogram"].items()}
    assert abs(sum(k * v for k, v in counts.items()) / 40 - rep["nfe_mean"]) < 1e-3
    assert json.loads((tmp_path / "stop.json").read_text())["samples"] == 40


@pytest.mark.skipif(not (DEFAULT_DATA_DIR / "train-labels-idx1-ubyte.gz").exists(),
                    reason="Fashion-MNIST package not installed (real images for the reward's statistics)")
def test_the_pooled_fid_reward_trains_with_the_stop_action_and_resumes_exactly(tmp_path):
    from agents.training import TrainConfig, Trainer, load_checkpoint

    cfg = TrainConfig(steps=3, adaptive_steps=True, nfe_cost=1.0, reward="fid", kl_coef=0.0, batch_size=8,
                      episodes=16, minibatch=16, epochs=1, d_real_count=500, val_count=200, curve_every=0,
                      eval_samples=20, amp="none", device="cpu", seed=3, iterations=2)
    full = Trainer(cfg, tmp_path / "full", log=lambda _: None)
    full.fit(progress=False)
    pool = full._reward_state.pool
    assert pool.shape[0] == 8 and full._reward_state.pool_size == 8
    cut = Trainer(cfg, tmp_path / "cut", log=lambda _: None)
    cut.fit(max_iterations=1, progress=False)
    Trainer.resume(tmp_path / "cut", log=lambda _: None).fit(progress=False)
    a, b = load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "cut")
    assert all(torch.equal(a["model"]["policy"][k], b["model"]["policy"][k]) for k in a["model"]["policy"])
    assert torch.equal(a["reward"]["pool"], b["reward"]["pool"])


def test_pooled_jackknife_rewards_only_the_new_samples():
    from adanat_env.evaluation.metrics import FeatureStats
    from rewards.fid_reward import BatchFIDReward, jackknife_fid

    g = torch.Generator().manual_seed(0)
    ref = FeatureStats(np.zeros(4), np.eye(4), 100)
    reward = BatchFIDReward(lambda x: x.reshape(len(x), -1)[:, :4], ref, pool=6)
    with pytest.raises(ValueError, match="prime"):
        reward(torch.randn(2, 4, generator=g), torch.zeros(2))
    reward.prime(torch.randn(6, 4, generator=g))
    pool = reward.pool.clone()
    new = torch.randn(2, 4, generator=g)
    r = reward(new, torch.zeros(2))
    x = torch.cat([pool, new.double()])
    full, loo = jackknife_fid(x, ref)
    torch.testing.assert_close(r, (-(8 * full - 7 * loo[-2:])).float())  # the pseudo-values of the new samples
    torch.testing.assert_close(reward.pool, x[-6:])  # the pool keeps the last 6


@pytest.mark.skipif(not (DEFAULT_DATA_DIR / "train-labels-idx1-ubyte.gz").exists(),
                    reason="Fashion-MNIST package not installed")
def test_the_stop_action_keeps_its_own_exploration_std(tmp_path):
    from agents.policies import StdSchedule
    from agents.training import TrainConfig, Trainer

    cfg = TrainConfig(steps=2, adaptive_steps=True, stop_std=0.9, std_decay_at=(1,), std_rate=0.3, reward="prm", batch_size=8,
                      episodes=16, minibatch=16, epochs=1, d_real_count=500, val_count=200, curve_every=0,
                      eval_samples=20, amp="none", device="cpu", seed=3, iterations=2)
    trainer = Trainer(cfg, None, log=lambda _: None)
    trainer.fit(progress=False)
    std = trainer.model.policy.log_std.exp()
    decayed = StdSchedule(cfg.std_init, cfg.std_decay_at, cfg.std_rate, cfg.std_min)(1)
    assert decayed < cfg.std_init  # the others decayed after the first update, the stop action did not
    torch.testing.assert_close(std, torch.tensor([decayed] * 4 + [0.9]))
    with pytest.raises(ValueError, match="--stop-std needs"):
        TrainConfig(stop_std=0.5).validate()


def test_a_stop_action_policy_starts_from_a_fixed_t_run(tmp_path):
    """``--init-from``: a fixed-T run's selected policy starts a stop-action policy: every weight copied, the
    action head's four step-parameter rows too, the stop row at zero as in a fresh policy; a run of another
    architecture is refused, naming what differs."""
    from dataclasses import replace

    from agents.training import TrainConfig, Trainer, load_checkpoint

    fixed = TrainConfig(steps=3, reward="prm", kl_coef=0.0, lr=1e-2, batch_size=8, episodes=16, minibatch=16,
                        epochs=1, val_count=200, curve_every=1, curve_samples=20, eval_samples=20, amp="none",
                        device="cpu", seed=3, iterations=2, select="best")
    Trainer(fixed, tmp_path / "fixed", log=lambda _: None).fit(progress=False)
    state = load_checkpoint(tmp_path / "fixed")
    src = state["best"]["policy"]  # the selected iterate (--select best)
    assert not torch.equal(src["action_net.weight"], torch.zeros_like(src["action_net.weight"]))  # it learned
    (tmp_path / "fixed").rename(tmp_path / "fixed3")  # {seed}: each seed of a protocol starts from its own run
    stop = replace(fixed, adaptive_steps=True, nfe_cost=0.1, init_from=str(tmp_path / "fixed{seed}"), iterations=1)
    t = Trainer(stop, tmp_path / "stop", log=lambda _: None)
    dst = t.model.policy.state_dict()
    assert dst["action_net.weight"].shape[0] == src["action_net.weight"].shape[0] + 1
    torch.testing.assert_close(dst["action_net.weight"][:-1], src["action_net.weight"], rtol=0, atol=0)
    assert not dst["action_net.weight"][-1].any() and not dst["action_net.bias"][-1].any()
    assert all(torch.equal(dst[k], src[k]) for k in src if not k.startswith("action_net.") and k != "log_std")
    t.fit(progress=False)  # it trains, and resumes from its own weights, not the source's
    with pytest.raises(ValueError, match="--init-from .*other weights"):
        Trainer(replace(fixed, policy="step-only", init_from=str(tmp_path / "fixed3")), None, log=lambda _: None)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        Trainer(replace(fixed, init_from=str(tmp_path / "nowhere")), None, log=lambda _: None)


def test_budget_table_search_gives_the_cheap_budget_to_the_class_it_does_not_hurt():
    """A class whose T=2 samples match the reference as well as its T=4 ones gets T=2 once NFE has a price; a
    class that T=2 hurts keeps T=4 until the price is high."""
    from adanat_env.evaluation.metrics import feature_stats
    from agents.budget import mean_nfe, search_budget_table

    g = np.random.default_rng(0)
    ref = feature_stats(g.normal(size=(4000, 3)))
    labels = np.arange(400) % 2
    good = g.normal(size=(400, 3))
    bad = good.copy()
    bad[labels == 1] += 3.0  # T=2 ruins class 1 only
    feats = {2: bad, 4: good}
    assert search_budget_table(feats, labels, ref, lam=0.0) == {0: 4, 1: 4}  # no price: only changes that help
    assert search_budget_table(feats, labels, ref, lam=0.5) == {0: 2, 1: 4}
    assert search_budget_table(feats, labels, ref, lam=1e3) == {0: 2, 1: 2}
    assert mean_nfe(labels, {0: 2, 1: 4}) == 3.0


def test_a_budget_family_runs_each_sample_with_its_classs_member_and_skips_finished_samples(tiny_generator):
    from agents.budget import BudgetFamilyPolicy

    members = {t: heuristic_schedule(t) for t in (1, 2, 3)}
    table = {c: 1 + c % 3 for c in range(10)}
    family = BudgetFamilyPolicy(members, table)
    assert family.adaptive_steps and family.num_steps == 3
    labels = torch.arange(12) % 10
    rows = _count_rows(tiny_generator)
    out = generate(tiny_generator, labels, family, 3, seed=0, record_params=True)
    budget = torch.tensor([table[int(c)] for c in labels])
    assert torch.equal(out.nfe, budget)
    # one NAT forward (conditional + unconditional) over the running samples only, after each non-final step
    running = [int((budget > s).sum()) for s in range(1, 3)]
    assert rows[1:] == [2 * r for r in running]
    # each sample's parameters are its member's schedule for its own T
    for t in (1, 2, 3):
        sel = budget == t
        for s in range(t):
            want = members[t](PolicyInput(torch.zeros(1, 1, 1), s, t, labels[:1])).as_tensor()[0]
            assert torch.allclose(out.params[s, sel], want.expand(int(sel.sum()), 4))
        assert torch.isnan(out.params[t:, sel]).all()
    with pytest.raises(ValueError, match="name no member"):
        BudgetFamilyPolicy(members, {0: 4})
    with pytest.raises(ValueError, match="no budget"):
        family.budgets(torch.tensor([11]))


def test_a_budget_family_with_one_budget_reproduces_its_member_exactly(tiny_generator):
    from agents.budget import BudgetFamilyPolicy

    member = heuristic_schedule(3)
    family = BudgetFamilyPolicy({3: member}, {c: 3 for c in range(10)})
    labels = torch.arange(8) % 10
    a = generate(tiny_generator, labels, member, 3, seed=4)
    b = generate(tiny_generator, labels, family, 3, seed=4)
    assert torch.equal(a.tokens, b.tokens)


@pytest.mark.slow  # a benchmark script over several tiny runs
@pytest.mark.skipif(not (DEFAULT_DATA_DIR / "train-labels-idx1-ubyte.gz").exists(), reason="Fashion-MNIST not installed")
def test_family_allocation_benchmark_runs_on_tiny_fixed_t_runs(tmp_path, capsys):
    from agents.training import Trainer

    from .test_rewards_training import _benchmark
    from .test_training import tiny

    for t in (1, 2):
        Trainer(tiny(steps=t, iterations=1), tmp_path / f"T{t}_s3", log=lambda _: None).fit(progress=False)
    mod = _benchmark("family_allocation")
    out = mod.main(["--runs", f"1={tmp_path}/T1_s{{seed}}", f"2={tmp_path}/T2_s{{seed}}", "--seeds", "3",
                    "--samples", "40", "--lams", "0", "1000", "--out", str(tmp_path / "out")])
    rows = {r["arm"]: r for r in out["seeds"][0]["rows"]}
    assert list(rows) == ["heuristic T=1", "heuristic T=2", "learned fixed T=1", "learned fixed T=2",
                          "family, lam=0", "family, lam=1000"]
    assert rows["learned fixed T=2"]["nfe_mean"] == 2.0
    # a huge price per NFE: every class gets the cheapest budget, and the family is its T=1 member exactly
    assert rows["family, lam=1000"]["table"] == {c: 1 for c in range(10)}
    assert rows["family, lam=1000"]["nfe_mean"] == 1.0
    assert rows["family, lam=1000"]["fid"] == pytest.approx(rows["learned fixed T=1"]["fid"], abs=1e-6)
    assert 1.0 <= rows["family, lam=0"]["nfe_mean"] <= 2.0
    assert (tmp_path / "out" / "family.md").read_text().count("| family, lam=") == 2
    assert (tmp_path / "out" / "family.png").stat().st_size > 0
    with pytest.raises(SystemExit, match="not a fixed T=2"):
        mod.main(["--runs", f"2={tmp_path}/T1_s{{seed}}", "--seeds", "3", "--samples", "20"])
    # the family file it wrote samples through the CLI with the members' generator, each class at its budget
    from agents.sample import main as cli

    family = tmp_path / "out" / "family_seed3_lam1000.json"
    assert cli(["--family", str(family), "--classes", "0", "1", "--per-class", "2", "--device", "cpu",
                "--out", str(tmp_path / "fam.png")]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["nfe_mean"] == 1.0 and summary["steps"] == 2
    with pytest.raises(SystemExit):  # the family brings its own T
        cli(["--family", str(family), "--steps", "3", "--out", str(tmp_path / "x.png")])
    assert cli(["--family", str(tmp_path / "nowhere.json"), "--out", str(tmp_path / "y.png")]) == 1
