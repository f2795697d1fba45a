"""The SB3 policies: official design, fixed scheduled std, non-adaptive variant, generation adapter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from adanat_env.envs import AdaNATVectorEnv
from adanat_env.sampler import generate
from adanat_env.sb3 import to_sb3
from adanat_env.schedules import heuristic_schedule
from adanat_env.wrappers import VectorTerminalRewardWrapper
from agents.generation_policy import SB3GenerationPolicy
from agents.policies import AdaNATPolicy, StdSchedule, StepOnlyPolicy


def _brightness(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return images.mean((1, 2, 3))


def _ppo(gen, policy=AdaNATPolicy, steps: int = 3, n: int = 4) -> PPO:
    env = to_sb3(VectorTerminalRewardWrapper(AdaNATVectorEnv(gen, num_envs=n, steps=steps), _brightness))
    return PPO(policy, env, n_steps=steps * 2, batch_size=8, n_epochs=2, gamma=1.0, gae_lambda=1.0, seed=0,
               device="cpu", learning_rate=1e-3)


def _obs(gen, b: int = 3, step: int = 1):
    return {"features": torch.randn(b, gen.num_tokens, gen.feature_dim), "step": torch.full((b, 1), step),
            "label": torch.zeros(b, 1)}


def test_official_std_schedule():
    s = StdSchedule()
    assert [s(k) for k in (0, 499, 500, 10_000)] == [0.6, 0.6, 0.3, 0.3]
    assert StdSchedule(0.6, (2, 4), 0.3, 0.1)(5) == 0.1


def test_initial_policy_is_zero_mean_zero_value_and_std_is_fixed(tiny_generator):
    model = _ppo(tiny_generator)
    p = model.policy
    with torch.no_grad():
        dist = p.get_distribution(_obs(tiny_generator))
        assert torch.equal(dist.distribution.mean, torch.zeros(3, 4))
        assert torch.allclose(dist.distribution.stddev, torch.full((3, 4), 0.6))
        assert torch.equal(p.predict_values(_obs(tiny_generator)), torch.zeros(3, 1))
    assert "log_std" in dict(p.named_buffers()) and "log_std" not in dict(p.named_parameters())
    opt_params = {id(q) for g in p.optimizer.param_groups for q in g["params"]}
    assert opt_params == {id(q) for q in p.parameters()}
    # SB3 trains: the mean moves, the std does not
    model.learn(24)
    assert torch.allclose(p.log_std.exp(), torch.full((4,), 0.6))
    p.set_action_std(0.3)
    with torch.no_grad():
        assert torch.allclose(p.get_distribution(_obs(tiny_generator)).distribution.stddev, torch.full((3, 4), 0.3))
    with pytest.raises(ValueError, match="finite and > 0"):
        p.set_action_std(float("nan"))


def test_std_survives_save_load(tiny_generator, tmp_path):
    model = _ppo(tiny_generator)
    model.policy.set_action_std(0.25)
    params = model.get_parameters()
    other = _ppo(tiny_generator)
    other.set_parameters(params, exact_match=True)
    assert abs(other.policy.action_std - 0.25) < 1e-6


def test_step_only_policy_ignores_features(tiny_generator):
    model = _ppo(tiny_generator, StepOnlyPolicy)
    with torch.no_grad():
        for q in model.policy.action_net.parameters():
            q.normal_()
        a = model.policy.get_distribution(_obs(tiny_generator, step=1)).distribution.mean
        b = model.policy.get_distribution(_obs(tiny_generator, step=1)).distribution.mean  # other random features
        c = model.policy.get_distribution(_obs(tiny_generator, step=2)).distribution.mean
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_adaptive_policy_depends_on_features(tiny_generator):
    model = _ppo(tiny_generator)
    with torch.no_grad():
        for q in model.policy.parameters():
            q.add_(0.05 * torch.randn_like(q))
        a = model.policy.get_distribution(_obs(tiny_generator)).distribution.mean
        b = model.policy.get_distribution(_obs(tiny_generator)).distribution.mean
    assert not torch.allclose(a, b)


def test_untrained_policy_generates_exactly_the_heuristic_schedule(tiny_generator):
    model = _ppo(tiny_generator)
    labels = torch.arange(6) % 10
    ours = generate(tiny_generator, labels, SB3GenerationPolicy.from_env(model, model.get_env()), 3, seed=5, record_params=True)
    ref = generate(tiny_generator, labels, heuristic_schedule(3), seed=5, record_params=True)
    assert torch.equal(ours.tokens, ref.tokens) and torch.allclose(ours.params, ref.params)


def test_adapter_matches_the_env_action_mapping(tiny_generator):
    """Sampled (not mean) actions through the adapter equal what the env would do with the same actions."""
    model = _ppo(tiny_generator)
    model.policy.set_action_std(1.0)
    torch.manual_seed(3)
    params = generate(tiny_generator, torch.arange(4), SB3GenerationPolicy.from_env(model, model.get_env(), deterministic=False), 3, seed=1,
                      record_params=True).params
    assert params.shape == (3, 4, 4) and not torch.allclose(params, generate(
        tiny_generator, torch.arange(4), heuristic_schedule(3), seed=1, record_params=True).params)
    assert bool(torch.isfinite(params).all())


def test_the_generation_policy_takes_its_contract_from_the_env(tiny_generator):
    """No hand-passed T, residual or bound: the adapter reads the env's DecodingSpec, through any wrapping, and
    builds exactly the observation the env builds."""
    from adanat_env.envs import decoding_spec_of
    from adanat_env.policy import PolicyInput
    from adanat_env.wrappers import PooledObservation

    venv = AdaNATVectorEnv(tiny_generator, num_envs=3, steps=2, residual="none", action_bound=4.0)
    sb3_env = to_sb3(VectorTerminalRewardWrapper(venv, _brightness))
    model = PPO(AdaNATPolicy, sb3_env, n_steps=2, batch_size=6, device="cpu")
    policy = SB3GenerationPolicy.from_env(model, sb3_env)
    assert policy.spec is venv.decoding_spec is decoding_spec_of(sb3_env)
    assert (policy.spec.steps, policy.spec.residual, policy.spec.action_bound) == (2, "none", 4.0)
    obs, _ = venv.reset(seed=0, options={"labels": [1, 2, 3]})
    inp = PolicyInput(tiny_generator.start(torch.tensor([1, 2, 3]), 2, tiny_generator.make_rng(0)).features, 0, 2,
                      torch.tensor([1, 2, 3]))
    ours = policy.observation(inp)
    assert all(np.array_equal(ours[k].cpu().numpy(), obs[k]) for k in ("step", "label"))
    assert ours["features"].shape == obs["features"].shape
    pooled = PooledObservation(AdaNATVectorEnv(tiny_generator, num_envs=3, steps=2))
    assert decoding_spec_of(pooled) is pooled.unwrapped.decoding_spec
    with pytest.raises(TypeError, match="not an AdaNAT env"):
        decoding_spec_of(object())


def test_adapter_refuses_other_step_count(tiny_generator):
    model = _ppo(tiny_generator)
    with pytest.raises(ValueError, match="trained for T=3"):
        generate(tiny_generator, torch.arange(2), SB3GenerationPolicy.from_env(model, model.get_env()), 4, seed=0)


def test_policy_works_on_imagenet_sized_observations():
    from gymnasium import spaces

    obs = spaces.Dict({"features": spaces.Box(-np.inf, np.inf, (256, 768), dtype=np.float32),
                       "step": spaces.Box(0, 8, (1,), dtype=np.int64), "label": spaces.Box(0, 999, (1,), dtype=np.int64)})
    p = AdaNATPolicy(obs, spaces.Box(-10, 10, (4,), dtype=np.float32), lambda _: 1e-5)
    n_actor = sum(q.numel() for n, q in p.named_parameters() if n.startswith(("pi_features", "features_extractor", "action_net")))
    n_critic = sum(q.numel() for n, q in p.named_parameters() if n.startswith(("vf_features", "value_net")))
    assert (n_actor, n_critic) == (11_876_484, 11_874_945)  # the official ActorCritic's counts (facts section 0)


def test_policy_width_scales_with_the_generator(tiny_generator):
    from agents.policy_net import default_width

    assert default_width(768) == default_width(512) == 512  # the official NAT-L and NAT-S get the official width
    assert default_width(128) == 128
    p = _ppo(tiny_generator).policy
    trunk = p.pi_features_extractor.net
    assert trunk.hidden == default_width(tiny_generator.feature_dim) == p.action_net.in_features
    assert hasattr(trunk, "x_embedder") == (tiny_generator.feature_dim > 512)
    env = to_sb3(VectorTerminalRewardWrapper(AdaNATVectorEnv(tiny_generator, num_envs=2, steps=3), _brightness))
    wide = PPO(AdaNATPolicy, env, n_steps=3, batch_size=6, policy_kwargs={"features_extractor_kwargs": {"hidden": 512}},
               device="cpu").policy
    assert wide.vf_features_extractor.net.hidden == 512 == wide.value_net.in_features


def test_std_schedule_drives_td3_action_noise_in_action_units(tiny_generator):
    """TD3 acts in [-1, 1] mapped to the Box; its noise sigma must be the scheduled std divided by the bound."""
    from adanat_env.wrappers import PooledObservation
    from agents.callbacks import StdScheduleCallback
    from agents.registry import make_algo

    env = to_sb3(PooledObservation(AdaNATVectorEnv(tiny_generator, num_envs=2, steps=2, action_bound=3.0)))
    model = make_algo("td3", env, lr=1e-3, n_steps=2, minibatch=4, epochs=1, seed=0, device="cpu", std=0.6)
    assert np.allclose(model.action_noise._sigma, 0.2)
    cb = StdScheduleCallback(StdSchedule(0.6, (1,), 0.3, 0.1))
    model.learn(4, callback=cb)
    model.learn(4, callback=cb, reset_num_timesteps=False)  # second rollout: std 0.3
    assert cb.current == pytest.approx(0.3)
    assert all(np.allclose(n._sigma, 0.1) for n in model.action_noise.noises)  # one noise per env


def test_reference_kl_replaces_the_constant_entropy_by_entropy_minus_kl(tiny_generator):
    from agents.registry import make_algo

    env = to_sb3(VectorTerminalRewardWrapper(AdaNATVectorEnv(tiny_generator, num_envs=4, steps=3), _brightness))
    model = make_algo("ppo", env, lr=1e-3, n_steps=3, minibatch=12, epochs=1, seed=0, device="cpu", kl_coef=0.5)
    p = model.policy
    assert p.reference_kl and model.ent_coef == 0.5
    with torch.no_grad():
        p.action_net.bias.copy_(torch.tensor([0.3, -0.2, 0.1, 0.0]))
    obs = {k: torch.as_tensor(v) for k, v in env.reset().items()}
    actions = torch.zeros(4, 4)
    _, _, entropy = p.evaluate_actions(obs, actions)
    std = p.log_std.exp()
    h = (0.5 + 0.5 * np.log(2 * np.pi) + p.log_std).sum()
    kl = (torch.tensor([0.3, -0.2, 0.1, 0.0]).square() / (2 * std.square())).sum()
    assert torch.allclose(entropy, (h - kl).expand(4), atol=1e-5)
    # without the option the entropy is SB3's (a constant), and kl_coef 0 keeps the official loss
    plain = make_algo("ppo", env, lr=1e-3, n_steps=3, minibatch=12, epochs=1, seed=0, device="cpu")
    assert not plain.policy.reference_kl and plain.ent_coef == 0.0
    # saving and loading keeps the option
    import io
    buf = io.BytesIO()
    model.save(buf)
    buf.seek(0)
    assert PPO.load(buf, device="cpu").policy.reference_kl



def test_class_step_policy_reads_the_class_and_the_step_not_the_canvas(tiny_generator):
    from agents.policies import ClassStepPolicy
    model = _ppo(tiny_generator, ClassStepPolicy)
    obs = _obs(tiny_generator)
    with torch.no_grad():
        assert torch.equal(model.policy.get_distribution(obs).distribution.mean, torch.zeros(3, 4))  # the heuristic
        for q in model.policy.action_net.parameters():
            q.normal_()
        a = model.policy.get_distribution(_obs(tiny_generator)).distribution.mean
        b = model.policy.get_distribution(_obs(tiny_generator)).distribution.mean  # other random features
        other = _obs(tiny_generator)
        other["label"] = torch.full((3, 1), 7)
        c = model.policy.get_distribution(other).distribution.mean
    assert torch.equal(a, b) and not torch.allclose(a, c)

