"""The training command line (experiments/ppo_adversarial.py): help, no abbreviations, one-line errors, Ctrl-C."""

from __future__ import annotations

import importlib.util
from dataclasses import fields
from pathlib import Path

import pytest

from adanat_env.data import DEFAULT_DATA_DIR
from agents.training import TrainConfig, Trainer

_spec = importlib.util.spec_from_file_location(
    "ppo_adversarial", Path(__file__).resolve().parents[1] / "experiments" / "ppo_adversarial.py")
ppo_adversarial = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ppo_adversarial)

needs_data = pytest.mark.skipif(not (DEFAULT_DATA_DIR / "train-labels-idx1-ubyte.gz").exists(),
                                reason="Fashion-MNIST package not installed")

TINY = ["--steps", "2", "--batch-size", "8", "--episodes", "16", "--minibatch", "16", "--epochs", "1",
        "--d-epochs", "1", "--d-batch-size", "8", "--d-updates", "2", "--d-minibatch", "8", "--d-warmup", "1",
        "--d-real-count", "2000", "--val-count", "500", "--curve-every", "0", "--eval-samples", "24",
        "--amp", "none", "--device", "cpu", "--seed", "3"]


def test_help_documents_every_option_with_its_default():
    text = " ".join(ppo_adversarial.build_parser().format_help().split())
    for f in fields(TrainConfig):
        flag = f"--{f.name.replace('_', '-')}"
        assert flag in text, flag
    assert text.count("(default:") >= len(fields(TrainConfig)) + 4
    assert "(default: 'projected-" in text and "minibatch-std group size" in text


def test_help_groups_the_options_by_the_step_they_configure():
    """--help shows TrainConfig's groups (agents.training.config.GROUPS), each option under its own step."""
    from agents.training import GROUPS

    text = ppo_adversarial.build_parser().format_help()
    assert [g.split(":")[0] for g in GROUPS] == ["generator", "data", "policy", "discriminator", "evaluation"]
    assert sorted(f for members in GROUPS.values() for f in members) == sorted(f.name for f in fields(TrainConfig))
    starts = [text.index(f"\n{title}:") for title in GROUPS]
    assert starts == sorted(starts)
    within = text[starts[3]:starts[4]]  # the discriminator's options are all in its group
    assert "--d-fakes" in within and "--d-lr" in within and "--lr " not in within


def test_abbreviations_are_refused(capsys):
    with pytest.raises(SystemExit) as e:
        ppo_adversarial.parse(["--kl", "0.9"])
    assert e.value.code == 2 and "unrecognized arguments: --kl" in capsys.readouterr().err


def test_resume_with_out_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        ppo_adversarial.parse(["--resume", "runs/x", "--out", "runs/y"])
    assert e.value.code == 2 and "drop --out" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--policy", "--select", "--metric", "--reward"])
def test_a_bad_choice_is_one_line_before_any_work(option, tmp_path, capsys):
    assert ppo_adversarial.cli([*TINY, option, "bogus", "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {option} must be one of") and "bogus" in err and "\n" not in err
    assert not (tmp_path / "run").exists()


@needs_data
def test_errors_and_ctrl_c_name_the_resume_command(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert ppo_adversarial.cli([*TINY, "--iterations", "2", "--max-iterations-this-call", "1", "--out", str(run)]) == 0
    capsys.readouterr()
    # a new run into that directory: refused, one line, with the way out
    assert ppo_adversarial.cli([*TINY, "--out", str(run)]) == 1
    err = capsys.readouterr().err.strip()
    assert "already holds a run" in err and "--overwrite" in err and "\n" not in err

    def interrupted(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "fit", interrupted)
    assert ppo_adversarial.cli(["--resume", str(run)]) == 130
    err = capsys.readouterr().err.strip()
    assert err == f"interrupted; resume with: python experiments/ppo_adversarial.py --resume {run}"
