"""Split credit (``--sample-credit``, :mod:`rewards.sample_credit`): the reward's part linear in the actions is
kept, the rest comes from the ranking; the wrapper scores the episodes it recorded; the trainer refuses what
cannot work and resumes exactly."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from adanat_env.data import DEFAULT_DATA_DIR
from adanat_env.envs import AdaNATVectorEnv
from adanat_env.models.classifier import ClassifierConfig, SmallCNN
from adanat_env.wrappers import VectorTerminalRewardWrapper
from agents.training import TrainConfig, Trainer, load_checkpoint
from rewards.sample_credit import SampleCreditWrapper, split_credit


def _fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x1 = np.concatenate([np.ones((len(x), 1)), x], axis=1)
    return x1 @ np.linalg.lstsq(x1, y, rcond=None)[0]


def test_the_rewards_linear_part_is_kept_and_the_rest_is_the_rankings_at_the_same_spread():
    rng = np.random.default_rng(0)
    a, z = rng.normal(size=(300, 8)), rng.normal(size=300)
    env = 1.0 + a @ rng.normal(size=8) + rng.normal(size=300)
    rank = 5.0 * a @ rng.normal(size=8) + 3.0 * a[:, 0] * z + rng.normal(size=300)  # an interaction with a state
    out = split_credit(env, rank, a)
    np.testing.assert_allclose(_fit(a, out), _fit(a, env), atol=1e-9)
    rest_out, rest_env, rest_rank = out - _fit(a, out), env - _fit(a, env), rank - _fit(a, rank)
    np.testing.assert_allclose(rest_out.std(), rest_env.std(), rtol=1e-9)
    assert np.corrcoef(rest_out, rest_rank)[0, 1] > 1 - 1e-9
    # a schedule shared by every sample gets exactly the env reward's gradient: sum_i r_i (a_i - mean a)
    eps = a - a.mean(0)
    np.testing.assert_allclose(out @ eps, env @ eps, atol=1e-8)
    assert abs(np.corrcoef(out - env, a[:, 0] * z)[0, 1]) > 0.3  # the per-sample credit is the ranking's
    np.testing.assert_allclose(split_credit(env, env, a), env, atol=1e-9)  # the same reward: nothing changes
    with pytest.raises(ValueError, match="more finishing samples"):
        split_credit(env[:9], rank[:9], a[:9])


def _brightness(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return images.mean((1, 2, 3))


def _contrast(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return images.std((1, 2, 3))


def test_the_wrapper_splits_the_terminal_reward_of_the_episodes_it_recorded(tiny_generator):
    env = AdaNATVectorEnv(tiny_generator, num_envs=16, steps=2)
    wrapped = SampleCreditWrapper(VectorTerminalRewardWrapper(env, _brightness), _contrast)
    rng = np.random.default_rng(0)
    wrapped.reset(seed=0)
    for _ in range(2):  # two episodes: the second starts from the same-step autoreset
        acts = rng.normal(size=(2, 16, 4)).astype(np.float32)
        _, r0, term0, *_ = wrapped.step(acts[0])
        assert not term0.any() and not r0.any()
        _, r1, term1, *_ = wrapped.step(acts[1])
        assert term1.all()
        imgs = env.final_images
        want = split_credit(_brightness(imgs, None).numpy(), _contrast(imgs, None).numpy(),
                            acts.transpose(1, 0, 2).reshape(16, -1))
        np.testing.assert_allclose(r1, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="fixed step count"):
        SampleCreditWrapper(AdaNATVectorEnv(tiny_generator, num_envs=16, steps=2, adaptive_steps=True), _contrast)


needs_data = pytest.mark.skipif(not (DEFAULT_DATA_DIR / "train-labels-idx1-ubyte.gz").exists(),
                                reason="Fashion-MNIST package not installed")


def _second_classifier(path) -> str:
    """A small untrained classifier of the data's shape: a feature space other than the metric's."""
    torch.manual_seed(1)
    cfg = ClassifierConfig(width=4, feature_dim=16)
    path.mkdir()
    save_file(SmallCNN(cfg).state_dict(), path / "classifier.safetensors")
    (path / "classifier.json").write_text(json.dumps({"config": vars(cfg)}))
    return str(path)


TINY = TrainConfig(steps=2, batch_size=16, episodes=32, minibatch=32, epochs=1, d_epochs=1, d_batch_size=8,
                   d_updates=1, d_minibatch=8, d_warmup=1, d_real_count=300, val_count=100, curve_every=0,
                   eval_samples=24, amp="none", device="cpu", seed=3, iterations=2, policy="confidence",
                   sample_credit_pool=32)


@pytest.mark.slow
@needs_data
def test_a_run_with_split_credit_resumes_to_the_same_weights_and_ranking_pool(tmp_path):
    config = replace(TINY, sample_credit=f"classifier:{_second_classifier(tmp_path / 'cls2')}")
    Trainer(config, tmp_path / "full", log=lambda _: None).fit(progress=False)
    cut = Trainer(config, tmp_path / "cut", log=lambda _: None)
    cut.fit(max_iterations=1, progress=False)
    Trainer.resume(tmp_path / "cut", log=lambda _: None).fit(progress=False)
    a, b = load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "cut")
    for k, v in a["model"]["policy"].items():
        assert torch.equal(v, b["model"]["policy"][k]), k
    assert torch.equal(a["reward"]["rank"]["pool"], b["reward"]["rank"]["pool"])
    assert a["reward"]["rank"]["pool"].shape == (32, 16)
    da, db = a["reward"]["env"]["reward"]["discriminator"], b["reward"]["env"]["reward"]["discriminator"]
    assert da.keys() == db.keys() and all(torch.equal(da[k], db[k]) for k in da)


def test_split_credit_options_are_checked_before_any_work(tmp_path):
    from adanat_env.embedded import ASSET_DIR

    for value, match in [("bogus", "must be classifier:DIR"), ("classifier", "must be classifier:DIR"),
                         (f"classifier:{tmp_path / 'none'}", "no classifier in"),
                         (f"classifier:{ASSET_DIR}", "the metric's own classifier")]:
        with pytest.raises(ValueError, match=match):
            replace(TINY, sample_credit=value).validate()
    with pytest.raises(ValueError, match="fixed step count"):
        replace(TINY, sample_credit="efficientnet-lite0", adaptive_steps=True).validate()
    with pytest.raises(ValueError, match="the metric's feature space"):
        replace(TINY, sample_credit="efficientnet-lite0", metric="efficientnet-lite0").validate()
    with pytest.raises(ValueError, match="--batch-size above 9"):
        replace(TINY, sample_credit="efficientnet-lite0", batch_size=8, episodes=16).validate()
    replace(TINY, sample_credit="efficientnet-lite0").validate()  # a fixed T, another space, a batch of 16: fine
