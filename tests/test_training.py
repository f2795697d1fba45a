"""The main training job on tiny configurations: every --algo, resume exactness, failure handling."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from adanat_env.data import DEFAULT_DATA_DIR

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import ppo_adversarial  # noqa: E402

from agents.registry import ALGOS  # noqa: E402

pytestmark = pytest.mark.skipif(not (DEFAULT_DATA_DIR / "train-labels-idx1-ubyte.gz").exists(),
                                reason="Fashion-MNIST package not installed (real images for the discriminator)")

TINY = ["--steps", "2", "--batch-size", "8", "--episodes", "16", "--minibatch", "16", "--epochs", "1",
        "--d-epochs", "1", "--d-batch-size", "8", "--d-updates", "2", "--d-minibatch", "8", "--d-warmup", "1",
        "--d-real-count", "2000", "--val-count", "500", "--curve-every", "0", "--eval-samples", "100",
        "--amp", "none", "--device", "cpu", "--seed", "3"]


def run(tmp: Path, *extra: str) -> dict:
    return ppo_adversarial.main([*TINY, "--out", str(tmp), *extra])


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return ppo_adversarial.load_checkpoint(path)["model"]["policy"]


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_every_registered_algo_trains_and_evaluates(algo, tmp_path):
    metrics = run(tmp_path, "--algo", algo, "--iterations", "2")
    assert set(metrics["fid"]) == {"cosine", "heuristic", "learned"} and set(metrics["kid"]) == set(metrics["fid"])
    assert metrics["algo"] == algo and metrics["steps"] == 2 and metrics["seed"] == 3
    for f in ("metrics.json", "training_curve.png", "grid_learned.png", "grid_cosine.png", "grid_heuristic.png",
              "checkpoint.pt", "history.json"):
        assert (tmp_path / f).is_file(), f
    assert json.loads((tmp_path / "metrics.json").read_text())["eval_samples"] == 100


def test_resume_ends_with_the_same_weights_as_an_uninterrupted_run(tmp_path):
    run(tmp_path / "full", "--iterations", "3", "--eval-samples", "100")
    run(tmp_path / "cut", "--iterations", "3", "--max-iterations-this-call", "1")
    assert ppo_adversarial.load_checkpoint(tmp_path / "cut")["iteration"] == 1
    run(tmp_path / "cut", "--iterations", "3", "--resume", str(tmp_path / "cut"))
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    da = ppo_adversarial.load_checkpoint(tmp_path / "full")["reward"]["reward"]["discriminator"]
    db = ppo_adversarial.load_checkpoint(tmp_path / "cut")["reward"]["reward"]["discriminator"]
    assert all(torch.equal(da[k], db[k]) for k in da)


def test_nan_discriminator_loss_stops_the_run_and_keeps_a_usable_checkpoint(tmp_path, monkeypatch):
    from rewards.adversarial import AdversarialReward, DiscriminatorDivergedError

    run(tmp_path, "--iterations", "3", "--max-iterations-this-call", "1")
    before = _weights(tmp_path)
    original = AdversarialReward.update

    def nan_update(self, fake, labels):
        return original(self, fake * float("nan"), labels)

    monkeypatch.setattr(AdversarialReward, "update", nan_update)
    with pytest.raises(DiscriminatorDivergedError, match="--d-lr"):
        run(tmp_path, "--iterations", "3", "--resume", str(tmp_path))
    state = ppo_adversarial.load_checkpoint(tmp_path)
    assert state["iteration"] == 1 and all(torch.equal(before[k], v) for k, v in state["model"]["policy"].items())
    monkeypatch.setattr(AdversarialReward, "update", original)
    assert run(tmp_path, "--iterations", "2", "--resume", str(tmp_path))["iterations"] == 2


def test_non_finite_rewards_stop_the_run_and_keep_a_usable_checkpoint(tmp_path, monkeypatch):
    from rewards.adversarial import AdversarialReward

    run(tmp_path, "--iterations", "3", "--max-iterations-this-call", "1")
    monkeypatch.setattr(AdversarialReward, "__call__", lambda self, x, y: torch.full((x.shape[0],), float("inf")))
    with pytest.raises(FloatingPointError, match="NaN/inf"):
        run(tmp_path, "--iterations", "3", "--resume", str(tmp_path))
    assert ppo_adversarial.load_checkpoint(tmp_path)["iteration"] == 1


@pytest.mark.parametrize("reward", ["fid", "prm"])
def test_alternative_rewards(reward, tmp_path):
    m = run(tmp_path, "--reward", reward, "--iterations", "1", "--batch-size", "16", "--episodes", "16")
    assert m["reward"] == reward and m["fid"]["learned"] > 0


def test_non_adaptive_variant_runs(tmp_path):
    assert run(tmp_path, "--policy", "step-only", "--iterations", "1")["policy"] == "step-only"


def test_resume_refuses_a_different_configuration(tmp_path):
    run(tmp_path, "--iterations", "2", "--max-iterations-this-call", "1")
    with pytest.raises(ValueError, match="differ from the checkpoint"):
        run(tmp_path, "--iterations", "2", "--resume", str(tmp_path), "--lr", "0.5")
