"""Issue #27: every bad input fails before any work, in one line that names the input and the fix.

One test per defect of the issue (numbered as there). Each asserts the error's type, that no training step and no
generation happened before it (the ``work`` fixture counts NAT forwards and optimizer steps), and that the message
names the input and the fix; the last tests run the same inputs through the command lines (one line on stderr, no
traceback, unless ``--debug``).
"""

from __future__ import annotations

import gzip
import importlib
import json
import sys
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from PIL import Image

from adanat_env.data import DEFAULT_DATA_DIR
from adanat_env.inputs import InputError
from adanat_env.models import UViT
from agents.training import TrainConfig, Trainer, load_checkpoint

from .test_data import _make_set, _write_idx

pytestmark = pytest.mark.skipif(not (DEFAULT_DATA_DIR / "train-labels-idx1-ubyte.gz").exists(),
                                reason="Fashion-MNIST package not installed (real images for the discriminator)")

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
TINY = TrainConfig(steps=2, batch_size=8, episodes=16, minibatch=16, epochs=1, d_epochs=1, d_batch_size=8,
                   d_updates=2, d_minibatch=8, d_warmup=1, d_real_count=500, val_count=20, curve_every=0,
                   eval_samples=24, amp="none", device="cpu", seed=3, iterations=1)


@pytest.fixture
def work(monkeypatch) -> dict[str, int]:
    """Counts what a bad input must never reach: NAT forwards (generation) and optimizer steps (training of the
    policy, the discriminator or a training script's model)."""
    counts = {"nat_forwards": 0, "optimizer_steps": 0}

    def count(cls: type, name: str, key: str) -> None:
        original = getattr(cls, name)

        def counted(self, *args, **kwargs):
            counts[key] += 1
            return original(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, counted)

    count(UViT, "forward", "nat_forwards")
    for opt in (torch.optim.Adam, torch.optim.AdamW):
        count(opt, "step", "optimizer_steps")
    return counts


def _refused(work: dict[str, int], error: type[BaseException], call, *fragments: str) -> str:
    """``call()`` raises ``error`` whose one-line message holds every fragment, with no work done; the message."""
    with pytest.raises(error) as e:
        call()
    message = str(e.value)
    assert work == {"nat_forwards": 0, "optimizer_steps": 0}, work
    for fragment in fragments:
        assert fragment in " ".join(message.split()), (fragment, message)
    return message


def _image_folder(root: Path, classes: int, per_class: int = 4, splits: tuple[str, ...] = ("train", "test")) -> Path:
    rng = np.random.default_rng(0)
    for split in splits:
        for c in range(classes):
            (root / split / f"class{c}").mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(root / split / f"class{c}" / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A one-iteration tiny run (its checkpoint is the material of defects 4 and 9)."""
    out = tmp_path_factory.mktemp("run")
    Trainer(TINY, out, log=lambda _: None).fit(progress=False)
    return out


# ------------------------------------------------------------------------------------------------ defect 1
def _bad_fid_stats(tmp: Path) -> dict:
    np.savez(tmp / "stats.npz", mean=np.zeros(3))  # no mu / sigma
    return {"fid_stats": str(tmp / "stats.npz")}


def _not_inception_weights(tmp: Path) -> dict:
    torch.save({"w": torch.zeros(2)}, tmp / "x.pth")
    return {"metric": "inception", "inception_weights": str(tmp / "x.pth")}


def _truncated_test_split(tmp: Path) -> dict:
    data = tmp / "data"
    data.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (data / name).symlink_to(DEFAULT_DATA_DIR / name)
    raw = gzip.decompress((DEFAULT_DATA_DIR / "t10k-images-idx3-ubyte.gz").read_bytes())
    (data / "t10k-images-idx3-ubyte").write_bytes(raw[: len(raw) // 2])
    return {"data_dir": str(data)}


@pytest.mark.parametrize("inputs, fragments", [
    (lambda tmp: {"fid_stats": str(tmp / "missing.npz")}, ("--fid-stats", "missing.npz", "not found", "mu and sigma")),
    (_bad_fid_stats, ("--fid-stats", "stats.npz", "must hold arrays 'mu' and 'sigma'")),
    (_not_inception_weights, ("--inception-weights", "FID Inception", "pt_inception-2015-12-05-6726825d.pth")),
    (lambda tmp: {"data_dir": str(_image_folder(tmp / "folder", 10, splits=("train",)))},
     ("--data-dir", "folder", "no test/ or val/", "or pass --fid-stats")),
    (_truncated_test_split, ("--data-dir", "t10k-images-idx3-ubyte", "truncated", "or pass --fid-stats")),
], ids=["fid-stats-missing", "fid-stats-malformed", "inception-weights-wrong", "no-test-split", "truncated-test-idx"])
def test_1_evaluation_only_inputs_are_read_before_training(tmp_path, work, inputs, fragments):
    """0.2.0 read these after all training, then advised a resume that could not change them."""
    config = replace(TINY, **inputs(tmp_path))
    _refused(work, InputError, lambda: Trainer(config, tmp_path / "run", log=lambda _: None), *fragments)
    assert not (tmp_path / "run" / "config.json").exists()  # nothing written: the same command, fixed, starts it


def test_1_the_evaluation_files_may_change_on_resume(finished_run, tmp_path):
    """A file moved since the start is passed again with --resume (it changes no training)."""
    np.savez(tmp_path / "s.npz", mu=np.zeros(128), sigma=np.eye(128))
    trainer = Trainer.resume(finished_run, fid_stats=str(tmp_path / "s.npz"), log=lambda _: None)
    assert trainer.config.fid_stats == str(tmp_path / "s.npz")


# ------------------------------------------------------------------------------------------------ defect 2
@pytest.mark.parametrize("env_kwargs, fragments", [
    ({"steps": 3}, ("number of decoding steps T is 2, the env's 3",)),
    ({"steps": 2, "residual": "none"}, ("action mapping's residual is 'heuristic', the env's 'none'",)),
    ({"steps": 2, "adaptive_steps": True}, ("action size", "is 4, the env's 5")),
])
def test_2_a_model_of_another_env_is_refused_at_from_env(finished_run, work, env_kwargs, fragments):
    """0.2.0 sampled 3 steps with a T = 2 model, used another action mapping, or failed mid-generation."""
    from adanat_env.envs import AdaNATVectorEnv
    from agents.generation_policy import SB3GenerationPolicy

    trainer = Trainer.resume(finished_run, log=lambda _: None)
    SB3GenerationPolicy.from_env(trainer.model, AdaNATVectorEnv(trainer.generator, num_envs=2, steps=2))  # its own
    env = AdaNATVectorEnv(trainer.generator, num_envs=2, **env_kwargs)
    _refused(work, ValueError, lambda: SB3GenerationPolicy.from_env(trainer.model, env), *fragments,
             "build the env with the options the model was trained with")


# ------------------------------------------------------------------------------------------------ defect 3
def test_3_data_covering_only_some_classes_is_refused(tmp_path, work):
    """0.2.0 trained and evaluated a 10-class NAT against a 3-class reference and reported a gain."""
    config = replace(TINY, data_dir=str(_image_folder(tmp_path / "three", 3, per_class=20)))
    _refused(work, InputError, lambda: Trainer(config, tmp_path / "run", log=lambda _: None),
             "the train split of", "3 of the generator's 10 classes", "none of class 3, 4", "trained on this data")


# ------------------------------------------------------------------------------------------------ defect 4
@pytest.mark.parametrize("damage, fragments", [
    (lambda s: s.pop("config"), ("damaged training checkpoint (no config)", "start a new run")),
    (lambda s: s.pop("model"), ("damaged training checkpoint (no model)", "start a new run")),
    (lambda s: s["config"].update(future_option=1), ("options this version does not know (future_option)", "upgrade")),
], ids=["no-config", "no-model", "newer-option"])
def test_4_checkpoints_with_the_right_tag_and_wrong_contents_are_named(finished_run, tmp_path, work, damage, fragments):
    from agents.export import load_generation_policy

    state = load_checkpoint(finished_run)
    damage(state)
    torch.save(state, tmp_path / "checkpoint.pt")
    for load in (Trainer.resume, load_generation_policy):  # training and the sampling CLI read it the same way
        _refused(work, InputError, lambda: load(tmp_path), *fragments)


# ------------------------------------------------------------------------------------------------ defect 5
def test_5_a_run_that_failed_in_its_first_iteration_starts_again_with_the_same_command(tmp_path, monkeypatch):
    def fail(self):
        raise RuntimeError("first iteration failed")

    with monkeypatch.context() as m:
        m.setattr(Trainer, "train_iteration", fail)
        with pytest.raises(RuntimeError):
            Trainer(TINY, tmp_path, log=lambda _: None).fit(progress=False)
    with pytest.raises(FileNotFoundError, match="starts again with the same command, without --resume"):
        Trainer.resume(tmp_path)
    lines: list[str] = []
    Trainer(TINY, tmp_path, log=lines.append)  # accepted, not "continue it with --resume"
    assert "stopped before its first checkpoint: starting it again" in lines[0]


# ------------------------------------------------------------------------------------------------ defect 6
def _script(name: str):
    sys.path.insert(0, str(EXPERIMENTS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(EXPERIMENTS))


def _empty_set(d: Path) -> list[str]:
    _make_set(d)
    _write_idx(d / "train-images-idx3-ubyte.gz", np.zeros((0, 28, 28), np.uint8), True)
    _write_idx(d / "train-labels-idx1-ubyte.gz", np.zeros(0, np.uint8), True)
    return []


def _short_labels(d: Path) -> list[str]:
    _make_set(d)
    _write_idx(d / "train-labels-idx1-ubyte.gz", np.zeros(7, np.uint8), True)
    return []


def _with(*argv: str):
    def make(d: Path) -> list[str]:
        _make_set(d)
        return list(argv)
    return make


_SCRIPT_CASES = [(script, make, fragments) for script in ("train_classifier", "train_tokenizer", "train_nat")
                 for make, fragments in ((_empty_set, ("holds no images", "pass a data set with images")),
                                         (_short_labels, ("holds 20 images but 'train-labels-idx1-ubyte.gz' 7 labels",
                                                          "same data set")),
                                         (_with("--lr", "nan"), ("--lr must be a finite number > 0, got nan",)))]
_SCRIPT_CASES += [
    ("train_classifier", _with("--epochs", "0"), ("--epochs must be >= 1, got 0",)),
    ("train_classifier", _with("--channels", "2"), ("--channels must be one of 1, 3; got 2",)),
    ("train_classifier", _with("--batch-size", "64"), ("--batch-size 64", "has only 20 images", "or fewer")),
    ("train_tokenizer", _with("--steps", "0"), ("--steps must be >= 1, got 0",)),
    ("train_tokenizer", _with("--channels", "2"), ("--channels must be one of 1, 3; got 2",)),
    ("train_nat", _with("--steps", "0"), ("--steps must be >= 1, got 0",)),
    ("train_nat", _with("--num-heads", "3"), ("--embed-dim 128 must be a multiple of --num-heads 3",)),
]


@pytest.mark.parametrize("script, make, fragments", _SCRIPT_CASES,
                         ids=[f"{s}-{f[0].split()[0]}" for s, _, f in _SCRIPT_CASES])
def test_6_training_scripts_check_their_inputs_before_training(tmp_path, work, script, make, fragments):
    """0.2.0: tracebacks (empty data, short label files, --channels 2) or ZeroDivisionError (--epochs 0, fewer
    images than --batch-size)."""
    argv = make(tmp_path)
    module = _script(script)
    _refused(work, (InputError, RuntimeError), lambda: module.main(["--data-dir", str(tmp_path), "--out",
                                                                    str(tmp_path / "out"), *argv]), *fragments)
    if argv and argv[0] != "--batch-size":  # options are checked before anything is written
        assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------ defects 7, 10
@pytest.mark.parametrize("change, fragments", [
    ({"kl_coef": float("inf")}, ("--kl-coef must be a finite number >= 0, got inf",)),
    ({"std_rate": float("nan")}, ("--std-rate must be a finite number >= 0, got nan",)),
    ({"val_count": 40000}, ("--val-count 40000", "has 60000 images", "pass --val-count 30000 or fewer")),
], ids=["kl-coef-inf", "std-rate-nan", "val-count-above-half"])
def test_7_10_numeric_options_are_refused_not_clamped_or_dumped(tmp_path, work, change, fragments):
    _refused(work, InputError, lambda: Trainer(replace(TINY, **change), tmp_path, log=lambda _: None), *fragments)


# ------------------------------------------------------------------------------------------------ defects 8, 9
@pytest.mark.parametrize("body, fragments", [
    ("{not json", ("is not valid JSON",)),
    ({"table": {"0": 4}}, ("has no members",)),
    ({"members": {"4": "runs/t4"}}, ("has no table",)),
    ({"members": {"four": "runs/t4"}, "table": {"0": 4}}, ("not a whole number ('four')",)),
], ids=["not-json", "no-members", "no-table", "key-four"])
def test_8_9_a_malformed_family_file_is_named_before_any_run_is_loaded(tmp_path, work, body, fragments):
    from agents.budget import FAMILY_FORMAT, load_family_file

    path = tmp_path / "family.json"
    path.write_text(body if isinstance(body, str) else json.dumps({"format": FAMILY_FORMAT, **body}))
    _refused(work, ValueError, lambda: load_family_file(path), str(path), *fragments)


def test_9_a_malformed_model_record_names_its_file(tmp_path, work):
    from adanat_env.embedded import ASSET_DIR, load_embedded_generator

    for name in ("nat.safetensors", "tokenizer.safetensors", "tokenizer.json"):
        (tmp_path / name).symlink_to(ASSET_DIR / name)
    (tmp_path / "nat.json").write_text('{"config": {"embed_dim": 128,}')
    _refused(work, InputError, lambda: load_embedded_generator("cpu", nat_dir=tmp_path, tokenizer_dir=tmp_path),
             str(tmp_path / "nat.json"), "is not valid JSON", "experiments/train_nat.py")


def test_9_a_classifier_that_does_not_fit_its_weights_names_its_directory_not_imagenet(tmp_path, work):
    from adanat_env.embedded import ASSET_DIR
    from adanat_env.models.classifier import load_classifier

    (tmp_path / "classifier.safetensors").symlink_to(ASSET_DIR / "classifier.safetensors")
    record = json.loads((ASSET_DIR / "classifier.json").read_text())
    record["config"]["width"] = 16
    (tmp_path / "classifier.json").write_text(json.dumps(record))
    message = _refused(work, RuntimeError, lambda: load_classifier(tmp_path), str(tmp_path),
                       "experiments/train_classifier.py")
    assert "imagenet256" not in message


def test_9_data_dir_given_a_file_says_so(tmp_path, work):
    (tmp_path / "f").write_text("")
    _refused(work, InputError, lambda: Trainer(replace(TINY, data_dir=str(tmp_path / "f")), tmp_path / "run",
                                               log=lambda _: None), "--data-dir", "is a file, not a directory")


def test_9_frozen_actions_given_one_name_as_a_string(work):
    env = gym.make("AdaNAT-FashionMNIST-v0", steps=2, frozen_actions="guidance")
    assert env.unwrapped.decoding_spec.frozen == ("guidance",)
    _refused(work, ValueError, lambda: gym.make("AdaNAT-FashionMNIST-v0", steps=2, frozen_actions="guidanse"),
             "'guidanse'")


# ------------------------------------------------------------------------------------------------ defect 10
def test_10_the_env_refuses_what_it_used_to_coerce(work):
    _refused(work, InputError, lambda: gym.make("AdaNAT-FashionMNIST-v0", steps=2.5), "steps must be an integer, got 2.5")
    env = gym.make("AdaNAT-FashionMNIST-v0", steps=2, disable_env_checker=True)
    _refused(work, ValueError, lambda: env.reset(seed=0, options={"labels": [3.7]}), "integer class ids", "3.7")
    # a finite float64 beyond float32's range is an out-of-range action, clipped like one (not refused as inf)
    results = []
    for big in (1e300, 10.0):
        env.reset(seed=0, options={"labels": [3]})
        results.append(env.step(np.array([big, 0.0, 0.0, 0.0]))[0]["features"])
    assert np.array_equal(*results)


def test_10_the_sampling_cli_checks_out_before_loading(tmp_path, capsys, work):
    from adanat_env import cli

    (tmp_path / "f").write_text("")
    with pytest.raises(SystemExit) as e:
        cli.main(["--steps", "2", "--per-class", "1", "--out", str(tmp_path / "f" / "grid.png")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "--out" in err and "is a file" in err
    assert work == {"nat_forwards": 0, "optimizer_steps": 0}


# ------------------------------------------------------------------------------------------------ the CLIs
def test_the_clis_print_one_line_and_debug_keeps_the_traceback(tmp_path, capsys, work):
    ppo = _script("ppo_adversarial")
    bad = ["--steps", "2", "--batch-size", "8", "--episodes", "16", "--device", "cpu", "--amp", "none",
           "--fid-stats", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "run")]
    assert ppo.cli(bad) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --fid-stats") and "Traceback" not in err
    with pytest.raises(InputError):
        ppo.cli([*bad, "--debug"])
    classifier = _script("train_classifier")
    (tmp_path / "data").mkdir()
    _make_set(tmp_path / "data")
    from adanat_env.config import run_script

    with pytest.raises(SystemExit) as e:
        run_script(classifier.main, ["--data-dir", str(tmp_path / "data"), "--channels", "2"])
    err = capsys.readouterr().err
    assert e.value.code == 1 and err.count("\n") == 1 and "--channels must be one of 1, 3" in err
    with pytest.raises(InputError):
        run_script(classifier.main, ["--data-dir", str(tmp_path / "data"), "--channels", "2", "--debug"])
    from adanat_env import cli

    sample = ["--nat-dir", str(tmp_path / "nowhere"), "--steps", "2", "--out", str(tmp_path / "g.png")]
    assert cli.main(sample) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nowhere" in err and "experiments/train_nat.py" in err
    with pytest.raises(FileNotFoundError):
        cli.main([*sample, "--debug"])
    assert work == {"nat_forwards": 0, "optimizer_steps": 0}
