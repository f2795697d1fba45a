"""The training library (agents.training) on tiny configurations: every algorithm, exact resume, recovery from
divergence, option validation, run-directory safety."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from adanat_env.data import DEFAULT_DATA_DIR
from agents.registry import ALGOS
from agents.training import RunDirectoryError, TrainConfig, Trainer, load_checkpoint

pytestmark = pytest.mark.skipif(not (DEFAULT_DATA_DIR / "train-labels-idx1-ubyte.gz").exists(),
                                reason="Fashion-MNIST package not installed (real images for the discriminator)")

TINY = TrainConfig(steps=2, batch_size=8, episodes=16, minibatch=16, epochs=1, d_epochs=1, d_batch_size=8,
                   d_updates=2, d_minibatch=8, d_warmup=1, d_real_count=500, val_count=200, curve_every=0,
                   eval_samples=24, amp="none", device="cpu", seed=3, iterations=3)


def tiny(**changes) -> TrainConfig:
    return replace(TINY, **changes)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]["policy"]


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_a_trainer_from_a_config_resumes_to_the_same_weights_as_an_uninterrupted_run(tmp_path):
    Trainer(tiny(), tmp_path / "full", log=lambda _: None).fit(progress=False)

    cut = Trainer(tiny(), tmp_path / "cut", log=lambda _: None)
    cut.fit(max_iterations=2, progress=False)
    assert load_checkpoint(tmp_path / "cut")["iteration"] == 2
    resumed = Trainer.resume(tmp_path / "cut", log=lambda _: None)
    assert resumed.iteration == 2
    resumed.fit(progress=False)

    assert _same(_weights(tmp_path / "full"), _weights(tmp_path / "cut"))
    da = load_checkpoint(tmp_path / "full")["reward"]["reward"]["discriminator"]
    db = load_checkpoint(tmp_path / "cut")["reward"]["reward"]["discriminator"]
    assert _same(da, db)
    history = json.loads((tmp_path / "cut" / "history.json").read_text())
    assert [h["iteration"] for h in history] == [1, 2, 3]


def test_fresh_fakes_train_the_discriminator_before_every_rollout_but_the_first(tmp_path):
    """agents.training.trainer's table, official loop: no policy update precedes the first rollout, so the
    discriminator's statistics first appear in the second record (rollout fakes: the test below)."""
    fresh = Trainer(tiny(iterations=2, d_fakes="fresh"), tmp_path, log=lambda _: None)
    fresh.fit(progress=False)
    assert "d_acc" not in fresh.history[0] and "d_acc" in fresh.history[1]
    assert fresh.discriminator.reward.num_updates == TINY.d_warmup + TINY.d_updates


def test_rollout_fakes_resume_exactly_and_train_the_discriminator_every_iteration(tmp_path):
    """--d-fakes rollout: the discriminator trains at the end of every rollout on that rollout's images (so its
    statistics are in every iteration's record, the first included), and a cut run resumes exactly."""
    full = Trainer(tiny(d_fakes="rollout", iterations=2), tmp_path / "full", log=lambda _: None)
    full.fit(progress=False)
    # warm-up + d_updates after each of the two rollouts; nothing kept after the last one
    assert full.discriminator.reward.num_updates == TINY.d_warmup + 2 * TINY.d_updates
    assert full.discriminator.rollout_fakes == [] and all("d_acc" in h for h in full.history)
    Trainer(tiny(d_fakes="rollout", iterations=1), tmp_path / "cut", log=lambda _: None).fit(progress=False)
    Trainer.resume(tmp_path / "cut", iterations=2, log=lambda _: None).fit(progress=False)
    assert _same(_weights(tmp_path / "full"), _weights(tmp_path / "cut"))
    assert _same(load_checkpoint(tmp_path / "full")["reward"]["reward"]["discriminator"],
                 load_checkpoint(tmp_path / "cut")["reward"]["reward"]["discriminator"])
    with pytest.raises(ValueError, match="--d-fakes"):
        tiny(d_fakes="stale").validate()


def test_state_dict_round_trips_through_a_fresh_trainer(tmp_path):
    a = Trainer(tiny(iterations=1), None, log=lambda _: None)
    a.fit(progress=False)
    b = Trainer(tiny(iterations=1), None, log=lambda _: None)
    b.load_state_dict(a.state_dict())
    assert b.iteration == 1 and _same(a.model.policy.state_dict(), b.model.policy.state_dict())
    assert _same(a.discriminator.reward.discriminator.state_dict(), b.discriminator.reward.discriminator.state_dict())


def test_the_heldout_real_accuracy_reads_as_many_reals_as_an_iterations_generations():
    """As many validation images as the iteration's fakes whose accuracy they mirror, at most a validation FID's
    samples and 512: a tiny run does not score 512 reals every iteration."""
    from adanat_env.embedded import load_embedded_generator
    from agents.training.report import heldout_reals

    gen = load_embedded_generator(device="cpu")
    cases = ((tiny(), 16), (tiny(episodes=1024, val_count=1000), 512), (tiny(episodes=64, curve_samples=20), 20))
    for cfg, count in cases:
        x, y = heldout_reals(cfg, gen, torch.device("cpu"))
        assert x.shape == (count, *gen.image_shape) and y.shape == (count,)
        assert 0.0 <= float(x.min()) <= float(x.max()) <= 1.0


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_every_registered_algo_trains_and_evaluates(algo, tmp_path):
    trainer = Trainer(tiny(algo=algo, iterations=1), tmp_path, log=lambda _: None)
    trainer.fit(progress=False)
    metrics = trainer.evaluate()
    assert set(metrics["fid"]) == {"cosine", "heuristic", "learned"} and set(metrics["kid"]) == set(metrics["fid"])
    assert metrics["algo"] == algo and metrics["steps"] == 2 and metrics["seed"] == 3
    for f in ("metrics.json", "training_curve.png", "grid_learned.png", "grid_cosine.png", "grid_heuristic.png",
              "checkpoint.pt", "history.json", "config.json"):
        assert (tmp_path / f).is_file(), f


@pytest.mark.parametrize("reward", ["fid", "prm"])
def test_alternative_rewards(reward, tmp_path):
    trainer = Trainer(tiny(reward=reward, iterations=1, batch_size=16, episodes=16), tmp_path, log=lambda _: None)
    trainer.fit(progress=False)
    m = trainer.evaluate()
    assert m["reward"] == reward and m["fid"]["learned"] > 0


def test_non_adaptive_variant_and_best_iterate_selection(tmp_path):
    trainer = Trainer(tiny(policy="step-only", iterations=2, curve_every=1, curve_samples=20, select="best"), tmp_path,
                      log=lambda _: None)
    trainer.fit(progress=False)
    before = {k: v.clone() for k, v in trainer.model.policy.state_dict().items()}
    m = trainer.evaluate()
    assert m["policy"] == "step-only" and m["selected_iteration"] in (1, 2)
    assert set(m["fid_quick_baselines"]) == {"cosine", "heuristic"}
    assert _same(before, trainer.model.policy.state_dict())  # evaluating the best iterate leaves training state alone


def test_a_diverged_discriminator_stops_the_run_and_the_advised_recovery_works(tmp_path, monkeypatch):
    from rewards.adversarial import AdversarialReward, DiscriminatorDivergedError

    Trainer(tiny(), tmp_path, log=lambda _: None).fit(max_iterations=1, progress=False)
    before = _weights(tmp_path)
    original = AdversarialReward.update
    monkeypatch.setattr(AdversarialReward, "update", lambda self, fake, labels: original(self, fake * float("nan"), labels))
    with pytest.raises(DiscriminatorDivergedError, match="--d-lr"):
        Trainer.resume(tmp_path, log=lambda _: None).fit(progress=False)
    state = load_checkpoint(tmp_path)
    assert state["iteration"] == 1 and _same(before, state["model"]["policy"])

    monkeypatch.setattr(AdversarialReward, "update", original)
    resumed = Trainer.resume(tmp_path, d_lr=5e-4, lr=1e-4, log=lambda _: None)  # what the error advises
    assert resumed.discriminator.reward.optimizer.param_groups[0]["lr"] == 5e-4
    resumed.fit(progress=False)
    assert resumed.model.policy.optimizer.param_groups[0]["lr"] == 1e-4
    state = load_checkpoint(tmp_path)
    assert state["config"]["d_lr"] == 5e-4 and state["changes"] == [{"iteration": 1, "d_lr": [1e-3, 5e-4],
                                                                     "lr": [3e-3, 1e-4]}]
    history = json.loads((tmp_path / "history.json").read_text())
    assert history[1]["config_changes"] == {"d_lr": [1e-3, 5e-4], "lr": [3e-3, 1e-4]}


def test_non_finite_rewards_stop_the_run_and_keep_a_usable_checkpoint(tmp_path, monkeypatch):
    from rewards.adversarial import AdversarialReward

    Trainer(tiny(), tmp_path, log=lambda _: None).fit(max_iterations=1, progress=False)
    monkeypatch.setattr(AdversarialReward, "__call__", lambda self, x, y: torch.full((x.shape[0],), float("inf")))
    with pytest.raises(FloatingPointError, match="NaN/inf"):
        Trainer.resume(tmp_path, log=lambda _: None).fit(progress=False)
    assert load_checkpoint(tmp_path)["iteration"] == 1


def test_resume_refuses_a_change_outside_the_resumable_options(tmp_path):
    Trainer(tiny(iterations=2), tmp_path, log=lambda _: None).fit(max_iterations=1, progress=False)
    with pytest.raises(ValueError, match="--kl-coef differ from the checkpoint"):
        Trainer.resume(tmp_path, kl_coef=0.9)


def test_a_run_saved_before_the_default_reward_changed_resumes_with_the_reward_it_ran_with(tmp_path):
    """A checkpoint older than ``--d-reward`` lacks it and ran with the sigmoid reward (the default then), not
    today's default: resume and the protocol's config check read it as such (trainer.LEGACY_DEFAULTS)."""
    from agents.training import saved_options

    Trainer(tiny(iterations=2, d_reward="sigmoid"), tmp_path, log=lambda _: None).fit(max_iterations=1, progress=False)
    state = load_checkpoint(tmp_path)
    del state["config"]["d_reward"], state["config"]["d_fakes"]
    torch.save(state, tmp_path / "checkpoint.pt")
    resumed = Trainer.resume(tmp_path, log=lambda _: None)
    assert resumed.config.d_reward == "sigmoid" and TrainConfig().d_reward == "jackknife"
    # runs older than --d-fakes generated fresh fakes for the discriminator (today's default: the rollout's own)
    assert resumed.config.d_fakes == "fresh" and TrainConfig().d_fakes == "rollout"
    # and older than --amp auto they ran the generator under bf16 autocast, older than --select last reported the best
    assert saved_options({"d_reward": "jackknife", "std_decay_at": [12]}) == {"d_reward": "jackknife", "d_fakes": "fresh",
                                                                             "amp": "bf16", "select": "best",
                                                                             "std_decay_at": (12,)}


@pytest.mark.parametrize("option, value", [("policy", "bogus"), ("select", "bogus"), ("metric", "bogus"),
                                           ("algo", "dqn"), ("reward", "clasifier"), ("discriminator", "x"),
                                           ("amp", "fp8"), ("env", "AdaNAT-CIFAR-v0")])
def test_every_choice_is_checked_before_any_work(option, value, tmp_path):
    with pytest.raises(ValueError, match=f"--{option} must be one of .*got '{value}'"):
        Trainer(tiny(**{option: value}), tmp_path)
    assert not (tmp_path / "config.json").exists()  # nothing written, nothing built


@pytest.mark.parametrize("changes, match", [({"episodes": 12}, "multiple of --batch-size"),
                                            ({"steps": 0}, "--steps must be >= 1"),
                                            ({"lr": float("nan")}, "--lr must be a finite number"),
                                            ({"kl_coef": float("inf")}, "--kl-coef must be a finite number >= 0"),
                                            ({"algo": "sac", "policy": "step-only"}, "needs an actor-critic")])
def test_inconsistent_options_are_refused(changes, match):
    with pytest.raises(ValueError, match=match):
        tiny(**changes).validate()


def test_a_new_run_into_an_existing_run_directory_is_refused_unless_overwrite(tmp_path):
    Trainer(tiny(iterations=1), tmp_path, log=lambda _: None).fit(progress=False)
    with pytest.raises(RunDirectoryError, match="--resume"):
        Trainer(tiny(iterations=1), tmp_path)
    Trainer(tiny(iterations=1, seed=4), tmp_path, overwrite=True, log=lambda _: None)
    assert not (tmp_path / "checkpoint.pt").exists() and json.loads((tmp_path / "config.json").read_text())["seed"] == 4


def test_labels_outside_the_models_classes_are_a_clear_error(tmp_path):
    import numpy as np

    from .test_data import _write_idx

    images = np.zeros((20, 28, 28), dtype=np.uint8)
    labels = (np.arange(20) % 12).astype(np.uint8)  # 12 classes for a 10-class model
    for prefix in ("train", "t10k"):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", images, True)
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", labels, True)
    with pytest.raises(ValueError, match="10"):
        Trainer(tiny(data_dir=str(tmp_path)), None)


def test_the_training_curve_records_what_shows_a_healthy_reward(tmp_path):
    trainer = Trainer(tiny(iterations=1), tmp_path, log=lambda _: None)
    rec = trainer.fit(progress=False)[-1]
    assert 0.0 <= rec["d_acc_heldout_fake"] <= 1.0 and 0.0 <= rec["d_acc_heldout_real"] <= 1.0
    assert rec["reward_std"] >= 0.0 and len(rec["step_params"]) == 2 and all(len(p) == 4 for p in rec["step_params"])
    m, tau1, tau2, w = rec["step_params"][-1]
    assert 0.0 <= m <= 1.0 and tau1 > 0 and tau2 > 0 and w >= 0  # mean executed (m, tau_1, tau_2, w) of the last step
    # each row is the mean of its own step (SB3 flattens the buffer env-major in its update: layout matters)
    assert rec["step_params"][0][0] > 0.5 > rec["step_params"][1][0]  # heuristic T=2 mask ratios: 0.71, 0.0008
    trainer.evaluate()
    from PIL import Image

    assert Image.open(tmp_path / "training_curve.png").size == (4 * 420, 2 * 300)  # 7 panels, 4 per row


@pytest.mark.slow  # 11 s: the README's test budget holds the distributed tests instead
def test_the_multi_seed_protocol_writes_mean_and_std_and_continues_where_it_stopped(tmp_path):
    from agents.protocol import run_protocol

    base = tiny(iterations=1, curve_every=1, curve_samples=20, eval_samples=24)
    summary = run_protocol(base, tmp_path, seeds=(0, 1), arms={"adv": {}, "prm": {"reward": "prm"}},
                           log=lambda _: None, progress=False)
    row = summary["arms"]["adv"]
    assert row["seeds"] == [0, 1] and len(row["fid_learned"]) == 2 and row["val_drift_worst"] is not None
    assert (tmp_path / "adv" / "seed1" / "metrics.json").is_file() and (tmp_path / "prm" / "seed0" / "checkpoint.pt").is_file()
    table = (tmp_path / "summary.md").read_text()
    assert "| adv | 0 1 |" in table and "| prm | 0 1 |" in table and " ± " in table
    again = run_protocol(base, tmp_path, seeds=(0, 1), arms={"adv": {}, "prm": {"reward": "prm"}}, log=lambda _: None)
    assert json.loads(json.dumps(again["arms"])) == json.loads(json.dumps(summary["arms"]))  # read back, not re-run
    with pytest.raises(ValueError, match="another configuration"):
        run_protocol(replace(base, lr=1e-4), tmp_path, seeds=(0,), arms={"adv": {}}, log=lambda _: None)
    with pytest.raises(ValueError, match="another configuration"):  # the discriminator's options matter to it
        run_protocol(replace(base, d_lr=1e-4), tmp_path, seeds=(0,), arms={"adv": {}}, log=lambda _: None)
    # ... but not to a run with another reward: the PRM runs are read back
    other_d = run_protocol(replace(base, d_lr=1e-4, d_reward="sigmoid"), tmp_path, seeds=(0, 1),
                           arms={"prm": {"reward": "prm"}}, log=lambda _: None)
    assert other_d["arms"]["prm"]["fid_learned"] == summary["arms"]["prm"]["fid_learned"]
    interrupted = tmp_path / "other"  # an interrupted run of another configuration is refused, not resumed
    Trainer(replace(base, d_reward="sigmoid", iterations=2), interrupted / "adv" / "seed0",
            log=lambda _: None).fit(max_iterations=1, progress=False)
    with pytest.raises(ValueError, match="interrupted run of another configuration"):
        run_protocol(base, interrupted, seeds=(0,), arms={"adv": {}}, log=lambda _: None)
    (tmp_path / "adv" / "seed2").mkdir()  # a run stopped before its first checkpoint
    (tmp_path / "adv" / "seed2" / "config.json").write_text("{}")
    assert run_protocol(base, tmp_path, seeds=(2,), arms={"adv": {}}, log=lambda _: None, progress=False)["arms"]["adv"]["seeds"] == [2]


def test_a_run_of_version_0_1_0_resumes_exactly_and_retired_options_are_named(tmp_path):
    """0.1.0 wrote checkpoint format 2 (the rollout counter in ``disc_callback``) and configurations with the
    options retired in 0.2.0: such a run resumes exactly when they were off; a run that used one, or a
    configuration with an option of a newer version, is refused by name."""
    from agents.training import RETIRED, saved_options

    Trainer(tiny(iterations=2), tmp_path / "full", log=lambda _: None).fit(progress=False)
    Trainer(tiny(iterations=2), tmp_path / "cut", log=lambda _: None).fit(max_iterations=1, progress=False)
    state = load_checkpoint(tmp_path / "cut")
    state["format"], state["disc_callback"] = "adanat-train/2", {"rollouts": state.pop("rollouts")}
    state["config"].update(RETIRED)  # every retired option off
    torch.save(state, tmp_path / "cut" / "checkpoint.pt")
    Trainer.resume(tmp_path / "cut", log=lambda _: None).fit(progress=False)
    assert _same(_weights(tmp_path / "full"), _weights(tmp_path / "cut"))
    with pytest.raises(ValueError, match="--d-replay 4, retired in adanat-gym 0.2.0.*0ba36bb"):
        saved_options({**state["config"], "d_replay": 4})
    with pytest.raises(ValueError, match="--d-reward witness, retired"):
        saved_options({**state["config"], "d_reward": "witness"})
    with pytest.raises(ValueError, match="options this version does not know \\(d_future\\)"):
        saved_options({**state["config"], "d_future": 1})
