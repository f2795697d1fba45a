"""The token-confidence observation (env ``confidence=True``) and the policy that reads it (``--policy confidence``):
what it observes, that it starts at the step-only schedule, its per-step standardisation, sampling outside the
env, refusals, and exact resume in the trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from adanat_env.decoding import StepParams
from adanat_env.envs import AdaNATEnv, AdaNATVectorEnv
from adanat_env.envs.spec import token_confidence
from adanat_env.sampler import generate
from adanat_env.sb3 import to_sb3
from adanat_env.wrappers import VectorTerminalRewardWrapper
from agents.callbacks import CanvasStatsCallback
from agents.generation_policy import SB3GenerationPolicy, check_model_fits
from agents.policies import ConfidencePolicy, ConfidenceStepExtractor


def _brightness(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return images.mean((1, 2, 3))


def _ppo(gen, steps: int = 3, n: int = 4) -> PPO:
    env = AdaNATVectorEnv(gen, num_envs=n, steps=steps, confidence=True)
    return PPO(ConfidencePolicy, to_sb3(VectorTerminalRewardWrapper(env, _brightness)), n_steps=steps * 2,
               batch_size=8, n_epochs=2, gamma=1.0, gae_lambda=1.0, seed=0, device="cpu", learning_rate=1e-3)


def test_the_env_observes_each_positions_largest_conditional_log_probability(tiny_generator):
    plain = AdaNATVectorEnv(tiny_generator, num_envs=3, steps=3)
    assert "confidence" not in plain.single_observation_space.spaces  # off by default: the official observation
    env = AdaNATVectorEnv(tiny_generator, num_envs=3, steps=3, confidence=True)
    obs, _ = env.reset(seed=0)
    for _ in range(2):
        want = token_confidence(tiny_generator.conditional_logits(env.core.state)).numpy()
        assert obs["confidence"].shape == (3, tiny_generator.num_tokens) and obs in env.observation_space
        np.testing.assert_allclose(obs["confidence"], want)
        assert (obs["confidence"] <= 0).all()
        obs, *_ = env.step(np.zeros((3, 4), np.float32))
    single = AdaNATEnv(tiny_generator, steps=3, confidence=True)
    o, _ = single.reset(seed=0)
    assert o["confidence"].shape == (tiny_generator.num_tokens,) and o in single.observation_space


def test_the_policy_starts_at_the_step_only_schedule_and_responds_to_confidence_only(tiny_generator):
    model = _ppo(tiny_generator)
    n, d = tiny_generator.num_tokens, tiny_generator.feature_dim
    obs = {"features": torch.randn(4, n, d), "step": torch.full((4, 1), 1), "label": torch.zeros(4, 1),
           "confidence": -torch.rand(4, n) * 3}
    with torch.no_grad():
        assert torch.equal(model.policy.get_distribution(obs).distribution.mean, torch.zeros(4, 4))  # the heuristic
        model.policy.action_net.weight.normal_()
        a = model.policy.get_distribution(obs).distribution.mean
        b = model.policy.get_distribution({**obs, "features": torch.randn(4, n, d),
                                           "label": torch.ones(4, 1)}).distribution.mean
        c = model.policy.get_distribution({**obs, "confidence": obs["confidence"] - 1}).distribution.mean
    assert torch.equal(a, b)  # neither the features nor the class
    assert not torch.allclose(a, c)  # but the confidence
    assert len({tuple(r.tolist()) for r in a}) == 4  # per sample


def test_standardisation_is_measured_on_a_rollout_and_used_from_the_next_one(tiny_generator):
    ex = ConfidenceStepExtractor(AdaNATVectorEnv(tiny_generator, num_envs=2, steps=3, confidence=True)
                                 .single_observation_space)
    conf = -torch.rand(60, tiny_generator.num_tokens) * 4
    step = torch.arange(60) % 3
    ex.observe(conf, step)
    assert torch.equal(ex.stat_mean, torch.zeros_like(ex.stat_mean))  # not in use yet
    ex.advance()
    stats = ex.statistics(conf)
    torch.testing.assert_close(ex.stat_mean[:3], torch.stack([stats[step == t].mean(0) for t in range(3)]))
    torch.testing.assert_close(ex.stat_std[1], stats[step == 1].std(0))
    assert torch.equal(ex.stat_mean[3], torch.zeros(2))  # the terminal step was not seen: unchanged
    # centred: the per-step part of the features averages to zero over the rollout it was measured on
    obs = {"features": torch.zeros(60, 1, 1), "step": step[:, None], "label": torch.zeros(60, 1), "confidence": conf}
    per_step = ex(obs)[:, -ex.num_stats * ex.rows:]
    torch.testing.assert_close(per_step.mean(0), torch.zeros_like(per_step[0]), atol=1e-5, rtol=0)


def test_the_callback_keeps_rollout_and_update_on_the_same_standardisation(tiny_generator):
    model = _ppo(tiny_generator)
    ex = model.policy.pi_features_extractor
    seen = []
    model.policy.evaluate_actions = (lambda f: lambda *a, **k: (seen.append(ex.stat_mean.clone()), f(*a, **k))[1])(
        model.policy.evaluate_actions)
    model.learn(total_timesteps=2 * 3 * 2 * 4, callback=CanvasStatsCallback())
    assert torch.equal(seen[0], torch.zeros_like(seen[0]))  # the first update: the first rollout's (identity)
    assert not torch.equal(seen[-1], seen[0])  # the second: measured on the first rollout
    assert torch.equal(model.policy.vf_features_extractor.stat_mean, ex.stat_mean)  # the critic's too
    state = model.policy.state_dict()
    assert {"pi_features_extractor.stat_mean", "pi_features_extractor.next_std"} <= set(state)


def test_a_trained_confidence_policy_samples_outside_the_env_as_inside(tiny_generator):
    model = _ppo(tiny_generator)
    model.learn(total_timesteps=2 * 3 * 2 * 4, callback=CanvasStatsCallback())
    with torch.no_grad():
        model.policy.action_net.weight.normal_()
    env = AdaNATVectorEnv(tiny_generator, num_envs=4, steps=3, confidence=True)
    pol = SB3GenerationPolicy.from_env(model, env)
    seen: list[StepParams] = []
    result = generate(tiny_generator, torch.arange(4), lambda inp: seen.append(pol(inp)) or seen[-1], 3, seed=0)
    assert result.images.shape[0] == 4 and float(seen[1].sample_temp.std()) > 0  # per sample
    obs, _ = env.reset(seed=0, options={"labels": np.arange(4)})
    raw = model.policy.predict(obs, deterministic=True)[0]
    inside = env.core.spec.step_params(torch.as_tensor(raw), 0)
    outside = pol.spec.step_params(pol.raw_actions(
        type("I", (), {"features": torch.as_tensor(obs["features"]), "step": 0, "num_steps": 3,
                       "labels": torch.arange(4),
                       "logits": tiny_generator.conditional_logits(env.core.state)})()), 0)
    torch.testing.assert_close(outside.as_tensor(), inside.as_tensor())


def test_a_confidence_policy_is_refused_by_an_env_that_does_not_observe_confidence(tiny_generator):
    model = _ppo(tiny_generator)
    plain = AdaNATVectorEnv(tiny_generator, num_envs=4, steps=3)
    with pytest.raises(ValueError, match="confidence"):
        check_model_fits(model.policy, plain.core.spec)
    with pytest.raises(ValueError, match="confidence=True"):
        ConfidenceStepExtractor(plain.single_observation_space)
    spec = AdaNATVectorEnv(tiny_generator, num_envs=4, steps=3, confidence=True).core.spec
    with pytest.raises(ValueError, match="logits"):
        spec.observation(torch.zeros(2, tiny_generator.num_tokens, tiny_generator.feature_dim), 0, torch.zeros(2))


@pytest.mark.slow  # three tiny training runs with their evaluations: about 20 s
def test_the_trainer_builds_the_env_it_needs_and_resumes_exactly(tmp_path):
    from adanat_env.data import DEFAULT_DATA_DIR
    from agents.training import TrainConfig, Trainer, load_checkpoint
    if not (DEFAULT_DATA_DIR / "train-labels-idx1-ubyte.gz").exists():
        pytest.skip("Fashion-MNIST package not installed (real images for the discriminator)")
    cfg = TrainConfig(steps=2, batch_size=8, episodes=16, minibatch=16, epochs=1, d_updates=2, d_minibatch=8,
                      d_warmup=1, d_real_count=500, val_count=200, curve_every=0, eval_samples=24, amp="none",
                      device="cpu", seed=3, iterations=3, policy="confidence")
    Trainer(cfg, tmp_path / "full", log=lambda _: None).fit(progress=False)
    cut = Trainer(cfg, tmp_path / "cut", log=lambda _: None)
    cut.fit(max_iterations=2, progress=False)
    Trainer.resume(tmp_path / "cut", log=lambda _: None).fit(progress=False)
    a, b = (load_checkpoint(tmp_path / r)["model"]["policy"] for r in ("full", "cut"))
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["pi_features_extractor.stat_std"], torch.ones_like(a["pi_features_extractor.stat_std"]))


def test_hold_options_are_refused_without_the_confidence_policy_or_together():
    from adanat_env.inputs import InputError
    from agents.training import TrainConfig
    with pytest.raises(InputError, match="--hold-shared 1 .* needs --policy confidence"):
        TrainConfig(policy="step-only", hold_shared=True).validate()
    with pytest.raises(InputError, match="--hold-sample 1 .* needs --policy confidence"):
        TrainConfig(policy="adaptive", hold_sample=True).validate()
    with pytest.raises(InputError, match="together would hold every weight of the actor"):
        TrainConfig(policy="confidence", hold_shared=True, hold_sample=True).validate()


@pytest.mark.slow  # four tiny training runs
def test_a_step_only_run_starts_the_shared_schedule_and_each_hold_option_trains_only_its_part(tmp_path):
    """``--init-from`` a step-only run into ``--policy confidence``: the step path and the action head's shared
    columns are the source's, the per-sample columns and the standardisation a fresh policy's; with
    ``--hold-shared 1`` training moves only the per-sample columns (and the critic), with ``--hold-sample 1`` all
    but them. Into ``--policy class-step``: the class table starts at zero (every class at the source's schedule)
    and learns; an adaptive policy is still refused."""
    from dataclasses import replace

    from adanat_env.data import DEFAULT_DATA_DIR
    from agents.training import TrainConfig, Trainer, load_checkpoint
    if not (DEFAULT_DATA_DIR / "train-labels-idx1-ubyte.gz").exists():
        pytest.skip("Fashion-MNIST package not installed")
    base = TrainConfig(steps=2, reward="prm", lr=1e-2, batch_size=8, episodes=16, minibatch=16, epochs=1,
                       val_count=200, curve_every=0, eval_samples=20, amp="none", device="cpu", seed=3,
                       iterations=2, select="last", policy="step-only")
    Trainer(base, tmp_path / "so", log=lambda _: None).fit(progress=False)
    src = load_checkpoint(tmp_path / "so")["model"]["policy"]
    conf = replace(base, policy="confidence", init_from=str(tmp_path / "so"), hold_shared=True)
    t = Trainer(conf, None, log=lambda _: None)
    start = {k: v.clone() for k, v in t.model.policy.state_dict().items()}
    hidden = src["action_net.weight"].shape[1]
    assert start["action_net.weight"].shape[1] == hidden + 2 * (conf.steps + 1)
    assert torch.equal(start["action_net.weight"][:, :hidden], src["action_net.weight"])
    assert not start["action_net.weight"][:, hidden:].any()  # the per-sample response starts at zero
    assert torch.equal(start["pi_features_extractor.stat_std"], torch.ones_like(start["pi_features_extractor.stat_std"]))
    assert all(torch.equal(start[k], src[k]) for k in src if not k.endswith("_net.weight") and k != "log_std")
    t.fit(progress=False)
    end = t.model.policy.state_dict()
    held = [k for k in src if k.startswith("pi_features_extractor.")] + ["action_net.bias"]
    assert all(torch.equal(end[k], start[k]) for k in held)
    assert torch.equal(end["action_net.weight"][:, :hidden], start["action_net.weight"][:, :hidden])
    assert end["action_net.weight"][:, hidden:].abs().sum() > 0  # the per-sample part learned
    assert not torch.equal(end["value_net.weight"], start["value_net.weight"])  # so did the critic
    zero = Trainer(replace(conf, hold_shared=False, hold_sample=True), None, log=lambda _: None)
    zero.fit(progress=False)  # --hold-sample 1: the actor learns as a step-only schedule, its per-sample part stays 0
    end = zero.model.policy.state_dict()
    assert not end["action_net.weight"][:, hidden:].any()
    assert not torch.equal(end["action_net.weight"][:, :hidden], start["action_net.weight"][:, :hidden])
    per_class = Trainer(replace(base, policy="class-step", init_from=str(tmp_path / "so")), None, log=lambda _: None)
    start = per_class.model.policy.state_dict()  # a class-step policy starts with every class at the source's schedule
    table = [k for k in start if k.endswith("y_embedder.weight")]
    assert {"pi_features_extractor", "vf_features_extractor"} <= {k.split(".")[0] for k in table}
    assert not any(start[k].any() for k in table)
    assert all(torch.equal(start[k], src[k]) for k in src if k != "log_std")
    per_class.fit(progress=False)
    assert per_class.model.policy.state_dict()["pi_features_extractor.y_embedder.weight"].abs().sum() > 0  # it learned
    with pytest.raises(ValueError, match="--init-from .*other weights"):  # the adaptive trunk is not a step-only's
        Trainer(replace(base, policy="adaptive", init_from=str(tmp_path / "so")), None, log=lambda _: None)
