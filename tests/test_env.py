"""The Gymnasium environments: checkers, spaces, single vs vector agreement, extreme actions, errors."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import adanat_env  # noqa: F401  (registers the ids)
from adanat_env.envs import ENV_IDS, AdaNATEnv, AdaNATVectorEnv
from adanat_env.sampler import generate
from adanat_env.schedules import heuristic_schedule

FAST = {"AdaNAT-FashionMNIST-v0": {"steps": 4, "device": "cpu"},
        "AdaNAT-ImageNet256-v0": {"steps": 2, "device": "cpu", "weights": "random"},
        "AdaNAT-FashionMNIST-T2I-v0": {"steps": 4, "device": "cpu"}}  # CC3M's checkers: tiny config, test_text_to_image


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_registered_with_vector_entry_point_and_no_time_limit(env_id):
    spec = gym.spec(env_id)
    assert spec.vector_entry_point is not None and spec.max_episode_steps is None


@pytest.mark.slow
@pytest.mark.parametrize("env_id", sorted(FAST))
def test_gymnasium_and_sb3_checkers(env_id):
    env = gym.make(env_id, **FAST[env_id])
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=True)
    env.close()


def test_fashion_mnist_episode_and_render():
    env = gym.make("AdaNAT-FashionMNIST-v0", steps=4, device="cpu", render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    assert obs["features"].shape == (49, 128) and obs["step"].tolist() == [0]
    assert env.observation_space.contains(obs)
    frame = env.render()
    assert frame.shape == (28, 28, 3) and frame.dtype == np.uint8 and (frame == 128).all()  # all masked: grey
    total = 0.0
    for t in range(4):
        obs, r, term, trunc, info = env.step(np.zeros(4, dtype=np.float32))
        total += r
        assert type(term) is bool and trunc is False
        assert term == (t == 3)
    assert 0.0 < total <= 1.0  # default reward: classifier probability of the label, terminal only
    assert info["final_tokens"].shape == (49,) and int(info["final_tokens"].max()) < 256
    assert env.unwrapped.final_images.shape == (1, 1, 28, 28)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(4, dtype=np.float32))


@pytest.mark.parametrize("vector", [False, True])
def test_the_default_reward_is_a_wrapper_and_a_bad_one_fails_at_construction(vector):
    from adanat_env.wrappers import TerminalRewardWrapper, VectorTerminalRewardWrapper

    make = (lambda **k: gym.make_vec("AdaNAT-FashionMNIST-v0", num_envs=2, vectorization_mode="vector_entry_point",
                                     **k)) if vector else (lambda **k: gym.make("AdaNAT-FashionMNIST-v0", **k))
    with pytest.raises(ValueError, match="reward must be one of classifier, none"):
        make(steps=2, device="cpu", reward="clasifier")
    wrapper = VectorTerminalRewardWrapper if vector else TerminalRewardWrapper

    def wrapped(env) -> bool:
        while hasattr(env, "env"):
            if isinstance(env, wrapper):
                return True
            env = env.env
        return False

    assert wrapped(make(steps=2, device="cpu")) and not wrapped(make(steps=2, device="cpu", reward="none"))


def test_single_and_vector_envs_agree_for_the_same_seed():
    single = gym.make("AdaNAT-FashionMNIST-v0", steps=4, device="cpu")
    vec = gym.make_vec("AdaNAT-FashionMNIST-v0", num_envs=1, vectorization_mode="vector_entry_point", steps=4, device="cpu")
    assert isinstance(vec.unwrapped, AdaNATVectorEnv)
    rng = np.random.default_rng(0)
    for episode in range(2):
        o1, _ = single.reset(seed=123 + episode)
        o2, _ = vec.reset(seed=123 + episode)
        np.testing.assert_array_equal(o1["features"], o2["features"][0])
        assert o1["label"] == o2["label"][0]
        for t in range(4):
            a = rng.normal(size=4).astype(np.float32)
            o1, r1, term1, _, info1 = single.step(a)
            o2, r2, term2, _, info2 = vec.step(a[None])
            assert term1 == bool(term2[0]) and r1 == pytest.approx(float(r2[0]))
            if not term1:
                np.testing.assert_array_equal(o1["features"], o2["features"][0])
        np.testing.assert_array_equal(info1["final_tokens"], info2["final_info"]["final_tokens"][0])


def test_vector_env_one_nat_call_per_step_same_step_autoreset(tiny_generator):
    calls = []
    tiny_generator.nat.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    env = AdaNATVectorEnv(tiny_generator, num_envs=5, steps=3)
    obs, _ = env.reset(seed=0)
    assert obs["features"].shape == (5, 16, 32) and len(calls) == 1
    for t in range(3):
        obs, rew, term, trunc, infos = env.step(np.zeros((5, 4), dtype=np.float32))
    assert term.all() and not trunc.any() and len(calls) == 3 + 1  # 3 steps (last one: none) + next reset
    assert infos["_final_obs"].all() and infos["final_obs"][0]["step"].tolist() == [3]
    assert obs["step"][:, 0].tolist() == [0] * 5  # already the next batch (SAME_STEP)
    assert infos["final_info"]["final_tokens"].shape == (5, 16)
    np.testing.assert_array_equal(env.final_labels, infos["final_info"]["final_label"])


def test_vector_env_is_deterministic_and_labels_option(tiny_generator):
    def run(seed):
        env = AdaNATVectorEnv(tiny_generator, num_envs=4, steps=3)
        env.reset(seed=seed, options={"labels": [0, 1, 2, 3]})
        for _ in range(3):
            env.step(np.random.default_rng(1).normal(size=(4, 4)).astype(np.float32))
        return env.final_tokens, env.final_labels
    (a, la), (b, lb), (c, _) = run(5), run(5), run(6)
    assert np.array_equal(a, b) and la.tolist() == lb.tolist() == [0, 1, 2, 3] and not np.array_equal(a, c)


def test_zero_action_reproduces_the_heuristic_sampler(tiny_generator):
    env = AdaNATVectorEnv(tiny_generator, num_envs=3, steps=4)
    env.reset(seed=0, options={"labels": [1, 2, 3]})
    rng_state = env.core.rng.get_state()
    for _ in range(4):
        env.step(np.zeros((3, 4), dtype=np.float32))
    g = torch.Generator().set_state(rng_state)
    # replay: the env started the batch after capturing the state, so re-run the sampler from the same state
    ref = generate(tiny_generator, torch.tensor([1, 2, 3]), heuristic_schedule(4), rng=g)
    # the sampler's start() consumes no randomness, so the streams line up
    assert np.array_equal(env.final_tokens, ref.tokens.numpy())


@pytest.mark.parametrize("value", [-1e9, 1e9, 10.0, -10.0])
def test_extreme_actions_still_fully_decode(tiny_generator, value):
    env = AdaNATVectorEnv(tiny_generator, num_envs=4, steps=5, residual="none")
    env.reset(seed=0)
    a = np.full((4, 4), value, dtype=np.float32)
    a[:, 0] = 1e9  # m -> 1: try to re-mask everything at every step
    for _ in range(5):
        env.step(a)
    assert (env.final_tokens != tiny_generator.mask_id).all()


def test_nan_actions_raise_and_do_not_corrupt_the_episode(tiny_generator):
    env = AdaNATVectorEnv(tiny_generator, num_envs=2, steps=2)
    obs, _ = env.reset(seed=0)
    tokens_before = env.core.state.tokens.clone()
    bad = np.zeros((2, 4), dtype=np.float32)
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        env.step(bad)
    with pytest.raises(ValueError, match=r"shape \(2, 4\)"):
        env.step(np.zeros((3, 4), dtype=np.float32))
    assert env.core.state.step == 0 and torch.equal(env.core.state.tokens, tokens_before)
    env.step(np.zeros((2, 4), dtype=np.float32))  # still usable


def test_float16_features_and_bad_kwargs(tiny_generator):
    env = AdaNATVectorEnv(tiny_generator, num_envs=2, steps=2, dtype="float16")
    obs, _ = env.reset(seed=0)
    assert obs["features"].dtype == np.float16 and env.observation_space.contains(obs)
    with pytest.raises(ValueError, match="residual"):
        AdaNATVectorEnv(tiny_generator, residual="cosine")
    with pytest.raises(ValueError, match="labels"):
        env.reset(options={"labels": [0, 99]})


def test_reward_model_errors_are_clear(tiny_generator):
    from adanat_env.wrappers import VectorTerminalRewardWrapper

    env = VectorTerminalRewardWrapper(AdaNATVectorEnv(tiny_generator, num_envs=2, steps=1),
                                      lambda im, lb: torch.full((2,), float("nan")))
    env.reset(seed=0)
    with pytest.raises(FloatingPointError, match="NaN/inf"):
        env.step(np.zeros((2, 4), dtype=np.float32))


def test_imagenet_missing_weights_name_the_files(monkeypatch):
    monkeypatch.delenv("ADANAT_IMAGENET_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="nnet_ema.pth.*vqgan_jax_strongaug.ckpt|vqgan_jax_strongaug.ckpt"):
        gym.make("AdaNAT-ImageNet256-v0", device="cpu")


def test_env_pickles(tiny_generator):
    env = AdaNATEnv(tiny_generator, steps=2)
    env.reset(seed=0)
    clone = pickle.loads(pickle.dumps(env))
    o1, *_ = env.step(np.zeros(4, dtype=np.float32))
    o2, *_ = clone.step(np.zeros(4, dtype=np.float32))
    np.testing.assert_array_equal(o1["features"], o2["features"])


def test_frozen_action_components_stay_at_the_heuristic():
    from adanat_env.envs import decoding_spec_of

    env = gym.make_vec("AdaNAT-FashionMNIST-v0", num_envs=4, vectorization_mode="vector_entry_point", steps=4,
                       device="cpu", reward="none", frozen_actions=("sample_temp",))
    spec = decoding_spec_of(env)
    raw = torch.randn(4, 4) * 2
    for t in range(4):
        got, free = spec.step_params(raw, t), spec.action_mapping(raw.clamp(-spec.action_bound, spec.action_bound), t)
        assert torch.allclose(got.sample_temp, torch.full((4,), heuristic_schedule(4).sample_temp[t]))
        assert torch.equal(got.guidance, free.guidance) and torch.equal(got.mask_ratio, free.mask_ratio)
    with pytest.raises(ValueError, match="frozen actions must be among"):
        gym.make_vec("AdaNAT-FashionMNIST-v0", num_envs=2, vectorization_mode="vector_entry_point", device="cpu",
                     frozen_actions=("tau1",))


def test_a_component_can_be_frozen_at_one_step_only():
    """``component@k``: held at the heuristic at step k only (negative k from the end), for an int step and for
    per-sample steps alike; everything else is the policy's."""
    from adanat_env.actions import frozen_mask
    from adanat_env.envs import DecodingSpec

    spec = DecodingSpec(steps=4, residual="heuristic", action_bound=5.0, num_tokens=49, feature_dim=8, num_classes=10,
                        frozen=("sample_temp@-1", "guidance@0"))
    raw = torch.randn(4, 4) * 2
    h = heuristic_schedule(4)
    for t in range(4):
        got, free = spec.step_params(raw, t), spec.action_mapping(raw, t)
        held_t1, held_w = t == 3, t == 0
        assert torch.allclose(got.sample_temp, torch.full((4,), h.sample_temp[t])) if held_t1 \
            else torch.equal(got.sample_temp, free.sample_temp)
        assert torch.allclose(got.guidance, torch.full((4,), h.guidance[t])) if held_w \
            else torch.equal(got.guidance, free.guidance)
        assert torch.equal(got.mask_ratio, free.mask_ratio) and torch.equal(got.remask_temp, free.remask_temp)
    per_sample = spec.step_params(raw, torch.tensor([0, 1, 2, 3]))
    assert torch.allclose(per_sample.sample_temp[3], torch.tensor(h.sample_temp[3]))
    assert torch.equal(per_sample.sample_temp[:3], torch.stack([spec.action_mapping(raw, t).sample_temp[t] for t in range(3)]))
    assert frozen_mask(("sample_temp@3", "sample_temp@-1"), 4).sum() == 1
    for bad, match in (("sample_temp@4", "outside"), ("sample_temp@x", "integer"), ("tau1@0", "among")):
        with pytest.raises(ValueError, match=match):
            DecodingSpec(steps=4, residual="heuristic", action_bound=5.0, num_tokens=49, feature_dim=8,
                         num_classes=10, frozen=(bad,))
