"""Trained policies outside SB3: a step-only policy exported as a schedule file reproduces its samples bit for
bit; the sampling CLIs sample with --policy CHECKPOINT (agents.sample) and with --schedule-file FILE
(adanat_env.cli)."""

from __future__ import annotations

import json

import pytest
import torch

from adanat_env.cli import main as cli
from adanat_env.sampler import generate
from adanat_env.schedules import heuristic_schedule, load_schedule_file, save_schedule_file
from agents.export import export_schedule, load_generation_policy
from agents.sample import main as policy_cli
from agents.training import Trainer

from .test_training import tiny


@pytest.fixture(scope="module")
def step_only_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("step_only")
    Trainer(tiny(policy="step-only", iterations=1, std_init=1.0), out, log=lambda _: None).fit(progress=False)
    return out


def test_an_exported_step_only_policy_gives_bit_identical_samples(step_only_run, tmp_path):
    gen, policy, config = load_generation_policy(step_only_run, "cpu")
    data = export_schedule(gen, policy, config.steps, tmp_path / "s.json", num_samples=64,
                           source={"checkpoint": str(step_only_run)})
    assert data["exact"] and data["adaptive_spread"] == 0.0
    schedule = load_schedule_file(tmp_path / "s.json")
    assert schedule.num_steps == config.steps
    assert schedule != heuristic_schedule(config.steps)  # trained: it moved away from the heuristic
    labels = torch.arange(40) % gen.num_classes
    a = generate(gen, labels, policy, config.steps, seed=7)
    b = generate(gen, labels, schedule, config.steps, seed=7)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.images, b.images)


def test_schedule_files_round_trip_and_bad_files_are_named(tmp_path):
    s = heuristic_schedule(4)
    assert load_schedule_file(save_schedule_file(s, tmp_path / "h.json")) == s
    data = json.loads((tmp_path / "h.json").read_text())
    assert set(data) >= {"manual_ratios", "manual_temp", "manual_samp_temp", "manual_cfg"}  # AutoNAT's names
    (tmp_path / "bad.json").write_text(json.dumps({**data, "manual_cfg": [1.0, float("nan"), 1.0, 1.0]}))  # NaN
    with pytest.raises(ValueError, match="manual_cfg"):
        load_schedule_file(tmp_path / "bad.json")
    (tmp_path / "short.json").write_text(json.dumps({**data, "manual_temp": [1.0]}))
    with pytest.raises(ValueError, match="one value per step"):
        load_schedule_file(tmp_path / "short.json")
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(ValueError, match="not a schedule file"):
        load_schedule_file(tmp_path / "other.json")


def test_the_cli_samples_with_a_policy_and_with_a_schedule_file(step_only_run, tmp_path, capsys):
    gen, policy, config = load_generation_policy(step_only_run, "cpu")
    export_schedule(gen, policy, config.steps, tmp_path / "s.json", num_samples=16)
    args = ["--classes", "0", "1", "--per-class", "3", "--device", "cpu", "--seed", "5"]
    assert policy_cli(["--policy", str(step_only_run), "--out", str(tmp_path / "p.png"), *args]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == config.steps
    assert cli(["--schedule-file", str(tmp_path / "s.json"), "--out", str(tmp_path / "f.png"), *args]) == 0
    assert (tmp_path / "p.png").read_bytes() == (tmp_path / "f.png").read_bytes()  # the same samples
    with pytest.raises(SystemExit):  # the policy brings its own T
        policy_cli(["--policy", str(step_only_run), "--steps", "3", "--out", str(tmp_path / "x.png")])
    assert policy_cli(["--policy", str(tmp_path / "nowhere"), "--out", str(tmp_path / "y.png")]) == 1


def test_paired_evaluation_gives_every_arm_the_same_labels_and_noise(step_only_run, tmp_path):
    from agents.paired import paired_evaluation, paired_summary
    table = paired_evaluation({"step-only": step_only_run}, eval_seeds=(0, 1), num_samples=100, means=("step-only",), mean_samples=100,
                              cache_dir=tmp_path, device="cpu", log=lambda _: None)
    assert set(table) == {"step-only", "step-only-mean", "heuristic"}
    for learned, mean in zip(table["step-only"], table["step-only-mean"]):
        # a non-adaptive policy's mean schedule is the policy itself: paired, the two arms give the same images
        assert learned["fid"] == mean["fid"] and learned["per_class_fid"] == mean["per_class_fid"]
        assert len(learned["per_class_recall"]) == 10 and 0 <= learned["class_accuracy"] <= 1
    assert table["step-only"][0]["fid"] != table["step-only"][1]["fid"]  # two evaluation seeds, two noises
    assert table["heuristic"][0]["fid"] != table["step-only"][0]["fid"]
    assert paired_summary(table)["heuristic"]["spread"] >= 0
    with pytest.raises(ValueError, match="not one of the runs"):
        paired_evaluation({"step-only": step_only_run}, means=("adaptive",), cache_dir=tmp_path, log=lambda _: None)


@pytest.mark.slow  # the second classifier's features of the 10,000 test images: 12 s on 2 cores
def test_a_second_classifier_is_a_second_feature_space(step_only_run, tmp_path):
    import shutil

    from adanat_env.embedded import ASSET_DIR
    from agents.paired import paired_evaluation
    # a copy of the shipped classifier named as the second space: its own test features, computed and cached apart
    # from the shipped reference, give the first space's FID
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in ("classifier.json", "classifier.safetensors"):
        shutil.copy(ASSET_DIR / f, copy / f)
    table = paired_evaluation({"s": step_only_run}, eval_seeds=(0,), num_samples=100, heuristic=False,
                              second_metric=f"classifier:{copy}", cache_dir=tmp_path / "cache", device="cpu",
                              log=lambda _: None)
    row = table["s"][0]
    assert row[f"fid_classifier:{copy}"] == pytest.approx(row["fid"], rel=1e-3)
    assert len(list((tmp_path / "cache").glob("*/classifier_*/ref_test_classifier*.npz"))) == 1  # labels: the split's
