"""The sampling CLIs: ``python -m adanat_env.cli`` / ``adanat-sample`` (hand-designed schedules) and its agents-layer
twin ``python -m agents.sample`` / ``adanat-policy-sample`` (also trained policies and budget families): clean,
one-line behaviour on bad input. Sampling with a trained policy or a family is tested where those are trained
(tests/test_export.py, tests/test_adaptive_steps.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import adanat_env.cli as cli
import agents.sample as policy_cli
from adanat_env.embedded import ASSET_DIR

CHEAP = ["--classes", "0", "--per-class", "1", "--steps", "1", "--device", "cpu"]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str], main=cli.main) -> tuple[int, str, str]:
    """``main(argv)`` in-process: (exit status, stdout, stderr), whether it returned or raised SystemExit."""
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def _assert_one_line_error(err: str, *fragments: str) -> None:
    assert err.count("\n") == 1 and err.endswith("\n") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def test_help_states_every_options_default(capsys):
    for action in cli.build_parser()._actions:
        if action.dest != "help":
            assert action.help and "(default: " in action.help, action.option_strings
    code, out, _ = _run(["--help"], capsys)
    assert code == 0 and "(default: 8)" in out and "(default: heuristic)" in out and "(default: imagenet256-L)" in out


def test_abbreviated_options_are_refused(capsys):
    code, _, err = _run(["--step", "2"], capsys)
    assert code == 2
    _assert_one_line_error(err, "unrecognized arguments: --step")


@pytest.mark.parametrize("argv,fragment", [
    (["--steps", "0"], "--steps: must be an integer >= 1, got 0"),
    (["--steps", "-3"], "--steps: must be an integer >= 1, got -3"),
    (["--batch-size", "0"], "--batch-size: must be an integer >= 1, got 0"),
    (["--per-class", "0"], "--per-class: must be an integer >= 1, got 0"),
    (["--scale", "-1"], "--scale: must be an integer >= 0, got -1"),
    (["--seed", "-1"], "--seed: must be an integer in [0, 9223372036854775807], got -1"),
    (["--steps", "two"], "--steps: expected an integer, got 'two'"),
    (["--schedule", "cosine", "--guidance", "nan"], "--guidance: must be finite, got nan"),
    (["--device", "toaster"], "--device:"),
    (["--out", "grid.jpg"], "--out: the grid is written as PNG"),
])
def test_bad_values_are_one_line_argparse_errors(capsys, argv: list[str], fragment: str):
    code, _, err = _run(argv, capsys)
    assert code == 2
    _assert_one_line_error(err, "python -m adanat_env.cli: error: ", fragment)


@pytest.mark.parametrize("argv,fragment", [
    (["--nat-checkpoint", "nnet_ema.pth"], "--nat-checkpoint only applies to --model imagenet256, not --model fashion-mnist"),
    (["--tokenizer-checkpoint", "vq.ckpt"], "--tokenizer-checkpoint only applies to --model imagenet256"),
    (["--nat", "imagenet256-S", "--tokenizer", "maskgit-vqgan-f16"],
     "--nat, --tokenizer only apply to --model imagenet256"),
    (["--random-weights"], "--random-weights only applies to --model imagenet256"),
    (["--model", "imagenet256", "--random-weights", "--nat-dir", "runs/nat"],
     "--nat-dir only applies to --model fashion-mnist, not --model imagenet256"),
    (["--model", "imagenet256", "--random-weights", "--tokenizer-dir", "runs/tok"], "--tokenizer-dir only applies"),
    (["--guidance", "2"], "--guidance only applies to --schedule cosine; the heuristic schedule sets its own"),
    (["--model", "imagenet256", "--random-weights", "--guidance", "0"], "--guidance only applies to --schedule cosine"),
    (["--model", "imagenet256"], "needs --nat-checkpoint and --tokenizer-checkpoint"),
    (["--model", "imagenet256", "--nat-checkpoint", "nnet_ema.pth"], "needs --tokenizer-checkpoint (official"),
    (["--model", "imagenet256", "--random-weights", "--nat-checkpoint", "a.pth", "--tokenizer-checkpoint", "b.ckpt"],
     "no weights would be random"),
])
def test_options_that_do_not_apply_are_errors(capsys, argv: list[str], fragment: str):
    code, out, err = _run(argv, capsys)  # refused before any model is built
    assert code == 2 and out == ""
    _assert_one_line_error(err, fragment)


def test_class_outside_the_model_is_an_argparse_error(capsys, tmp_path: Path):
    code, _, err = _run(["--classes", "3", "10", "--per-class", "1", "--steps", "1", "--device", "cpu",
                         "--out", str(tmp_path / "g.png")], capsys)
    assert code == 2 and not (tmp_path / "g.png").exists()
    _assert_one_line_error(err, "--classes 10 outside the model's classes 0..9")


def test_missing_nat_dir_exits_1_naming_the_training_command(capsys, tmp_path: Path):
    code, _, err = _run(["--nat-dir", str(tmp_path), *CHEAP, "--out", str(tmp_path / "g.png")], capsys)
    assert code == 1
    _assert_one_line_error(err, "python -m adanat_env.cli: error: ", "nat.safetensors", "train_nat.py")


def test_damaged_weights_exit_1_naming_the_file_and_the_fix(capsys, tmp_path: Path):
    for f in ("nat.safetensors", "nat.json"):
        shutil.copy(ASSET_DIR / f, tmp_path / f)
    with open(tmp_path / "nat.safetensors", "r+b") as f:
        f.seek(1_000_000)
        f.write(bytes(200_000))
    code, _, err = _run(["--nat-dir", str(tmp_path), *CHEAP, "--out", str(tmp_path / "g.png")], capsys)
    assert code == 1
    _assert_one_line_error(err, str(tmp_path / "nat.safetensors"), "SHA-256", "git checkout --")


def test_an_unwritable_output_is_a_bad_option_refused_before_sampling(capsys, monkeypatch, tmp_path: Path):
    """#27 defect 10: --out is checked with the options (exit 2), before the generator is loaded or sampled."""
    loads = []
    monkeypatch.setattr(cli, "load_generator", lambda args: loads.append(args))
    (tmp_path / "a_file").write_text("")
    code, _, err = _run([*CHEAP, "--out", str(tmp_path / "a_file" / "grid.png")], capsys)
    assert code == 2 and loads == []
    _assert_one_line_error(err, "--out", "a_file", "is a file, not a directory")


def test_ctrl_c_is_one_line_and_exit_130(capsys, monkeypatch, tmp_path: Path):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "generate", interrupted)
    code, out, err = _run([*CHEAP, "--out", str(tmp_path / "g.png")], capsys)
    assert code == 130 and out == ""
    _assert_one_line_error(err, "interrupted")


def test_guidance_and_batches_with_the_cosine_schedule(capsys, tmp_path: Path):
    code, out, err = _run(["--schedule", "cosine", "--guidance", "1.5", "--classes", "0", "1", "--per-class", "2",
                           "--batch-size", "3", "--steps", "2", "--device", "cpu", "--out", str(tmp_path / "g.png")], capsys)
    assert code == 0 and err == ""
    assert json.loads(out)["images"] == 4 and (tmp_path / "g.png").is_file()


def test_module_entry_point_exits_2_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "adanat_env.cli", "--nat-checkpoint", "x.pth"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    _assert_one_line_error(proc.stderr, "python -m adanat_env.cli: error: --nat-checkpoint only applies")


# ---------------------------------------------------------------------------------- trained policies: agents.sample
@pytest.mark.parametrize("flag,what", [("--policy", "RUN_DIR"), ("--family", "FILE")])
def test_trained_policies_are_refused_at_once_naming_the_agents_command(capsys, tmp_path: Path, flag: str, what: str):
    for argv in ([flag, str(tmp_path / "run")], [*CHEAP, "--schedule", "cosine", flag, "x", "--out", "g.png"], [flag]):
        code, out, err = _run(argv, capsys)
        assert code == 2 and out == ""
        _assert_one_line_error(err, f"python -m adanat_env.cli: error: {flag} ", f"run python -m agents.sample {flag} {what}",
                               "adanat-policy-sample")


def test_the_environment_package_never_imports_the_agents_layer():
    code = ("import sys, adanat_env, adanat_env.cli, adanat_env.data, adanat_env.evaluation.metrics; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('agents', 'rewards')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_the_policy_cli_states_every_options_default(capsys):
    for action in policy_cli.build_parser()._actions:
        if action.dest != "help":
            assert action.help and "(default: " in action.help, action.option_strings
    code, out, _ = _run(["--help"], capsys, policy_cli.main)
    assert code == 0 and "python -m agents.sample" in out and "--policy CHECKPOINT" in out and "--family FILE" in out


@pytest.mark.parametrize("argv,fragment", [
    (["--policy", "runs/x", "--steps", "3"], "--policy samples with the run's own generator and T: drop --steps"),
    (["--family", "f.json", "--model", "imagenet256", "--random-weights"],
     "--family samples with the run's own generator and T: drop --model, --random-weights"),
    (["--policy", "runs/x", "--nat-dir", "runs/nat"], "--policy samples with the run's own generator and T: drop --nat-dir"),
    (["--policy", "runs/x", "--guidance", "1"], "--guidance only applies to --schedule cosine; the policy schedule"),
    (["--family", "f.json", "--guidance", "1"], "--guidance only applies to --schedule cosine; the family schedule"),
    (["--policy", "runs/x", "--family", "f.json"], "argument --family: not allowed with argument --policy"),
    (["--policy", "runs/x", "--schedule", "cosine"], "argument --schedule: not allowed with argument --policy"),
    (["--policy", "runs/x", "--per-class", "0"], "--per-class: must be an integer >= 1, got 0"),
])
def test_the_policy_cli_refuses_what_does_not_apply(capsys, argv: list[str], fragment: str):
    code, out, err = _run(argv, capsys, policy_cli.main)  # refused before anything is loaded
    assert code == 2 and out == ""
    _assert_one_line_error(err, "python -m agents.sample: error: ", fragment)


@pytest.mark.parametrize("flag", ["--policy", "--family"])
def test_the_policy_cli_names_a_missing_run_or_family_and_exits_1(capsys, tmp_path: Path, flag: str):
    code, out, err = _run([flag, str(tmp_path / "nowhere.json"), "--device", "cpu", "--out", str(tmp_path / "g.png")],
                          capsys, policy_cli.main)
    assert code == 1 and out == "" and not (tmp_path / "g.png").exists()
    _assert_one_line_error(err, "python -m agents.sample: error: ", "nowhere.json")


def test_the_policy_cli_samples_schedules_like_the_environment_cli(capsys, tmp_path: Path):
    argv = [*CHEAP, "--schedule", "cosine", "--per-class", "2", "--seed", "3"]
    assert _run([*argv, "--out", str(tmp_path / "a.png")], capsys)[0] == 0
    code, out, err = _run([*argv, "--out", str(tmp_path / "b.png")], capsys, policy_cli.main)
    assert code == 0 and err == "" and json.loads(out)["schedule"] == "cosine"
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_the_policy_module_entry_point_exits_2_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "agents.sample", "--policy", "runs/x", "--steps", "3"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    _assert_one_line_error(proc.stderr, "python -m agents.sample: error: --policy samples with the run's own generator")
    proc = subprocess.run([sys.executable, "-m", "adanat_env.cli", "--policy", "runs/x"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    _assert_one_line_error(proc.stderr, "python -m adanat_env.cli: error: --policy ",
                           "run python -m agents.sample --policy RUN_DIR")
