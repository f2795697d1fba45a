"""The training rewards: adversarial (discriminators, co-training, divergence handling), batch FID, PRM."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch

from adanat_env.evaluation.metrics import feature_stats, frechet_distance
from adanat_env.schedules import heuristic_schedule
from rewards.adversarial import (AdversarialReward, AdversarialRewardWrapper, DiscriminatorDivergedError, RealImages,
                                 co_train)
from rewards.discriminator import DISCRIMINATORS, build_discriminator
from rewards.fid_reward import BatchFIDReward, jackknife_fid


def _real(n: int = 64, side: int = 16, channels: int = 3, classes: int = 10, seed: int = 0) -> RealImages:
    g = np.random.default_rng(seed)
    return RealImages(g.integers(0, 256, (n, channels, side, side), dtype=np.uint8), g.integers(0, classes, n), seed=seed)


@pytest.mark.parametrize("kind", ["conv", "projected-nat", "projected-efficientnet"])
@pytest.mark.parametrize("sn", [True, False])
def test_discriminator_shapes_and_reward_range(kind, sn, tiny_generator):
    if kind == "projected-efficientnet":
        pytest.importorskip("efficientnet_lite_pytorch")
    d = build_discriminator(kind, tiny_generator.image_shape, 10, sn=sn, generator=tiny_generator)
    reward = AdversarialReward(d, _real())
    x, y = torch.rand(8, 3, 16, 16), torch.arange(8)
    r = reward(x, y)
    assert r.shape == (8,) and bool(((r > 0) & (r < 1)).all())
    # no batch statistics: a sample's reward does not depend on the rest of its batch
    assert torch.allclose(reward(x[:3], y[:3]), r[:3], atol=1e-4)


@pytest.mark.parametrize("kind", ["projected-nat", "projected-efficientnet"])
def test_projected_discriminator_keeps_feature_net_frozen(kind, tiny_generator):
    if kind == "projected-efficientnet":
        pytest.importorskip("efficientnet_lite_pytorch")
    d = build_discriminator(kind, tiny_generator.image_shape, 10, generator=tiny_generator)

    def frozen() -> dict[str, torch.Tensor]:  # everything but the trainable heads, the generator's weights included
        return {**{f"gen.{k}": v.clone() for k, v in tiny_generator.nat.state_dict().items()},
                **{f"tok.{k}": v.clone() for k, v in tiny_generator.tokenizer.state_dict().items()},
                **{k: v.clone() for k, v in d.state_dict().items() if not k.startswith("heads.")}}

    before = frozen()
    heads = {k: v.clone() for k, v in d.state_dict().items() if k.startswith("heads.")}
    reward = AdversarialReward(d, _real(), lr=1e-2)
    for _ in range(3):
        reward.update(torch.rand(8, 3, 16, 16), torch.arange(8))
    after = frozen()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert not all(torch.equal(heads[k], v) for k, v in d.state_dict().items() if k.startswith("heads."))


def test_discriminator_learns_real_vs_fake():
    torch.manual_seed(0)
    real = RealImages(np.full((64, 1, 12, 12), 230, dtype=np.uint8), np.arange(64) % 4)
    reward = AdversarialReward(build_discriminator("conv", (1, 12, 12), 4, width=16), real, lr=2e-3, augment=0)
    fake, labels = torch.full((32, 1, 12, 12), 0.1), torch.arange(32) % 4
    first = reward.update(fake, labels)
    for _ in range(30):
        last = reward.update(fake, labels)
    assert last["d_loss"] < first["d_loss"] and last["d_acc"] == 1.0
    assert float(reward(fake, labels).mean()) < 0.5 < float(reward(real.sample(8)[0], real.sample(8)[1]).mean())


def test_nan_discriminator_loss_raises_and_changes_nothing():
    reward = AdversarialReward(build_discriminator("conv", (3, 16, 16), 10, width=8), _real())
    before = {k: v.clone() for k, v in reward.discriminator.state_dict().items()}
    bad = torch.rand(4, 3, 16, 16)
    bad[0] = float("nan")
    with pytest.raises(DiscriminatorDivergedError, match="Resume from the last checkpoint"):
        reward.update(bad, torch.arange(4))
    assert reward.num_updates == 0
    assert all(torch.equal(before[k], v) for k, v in reward.discriminator.state_dict().items())


def test_adversarial_state_dict_round_trip_is_exact():
    def make():
        torch.manual_seed(0)
        return AdversarialReward(build_discriminator("conv", (3, 16, 16), 10, width=8), _real())

    a = make()
    a.update(torch.rand(4, 3, 16, 16), torch.arange(4))
    state = copy.deepcopy(a.state_dict())  # as if through torch.save / load (no shared optimizer tensors)
    b = make()
    b.load_state_dict(state)
    x = torch.rand(4, 3, 16, 16)
    sa, sb = a.update(x, torch.arange(4)), b.update(x, torch.arange(4))
    assert sa == sb
    assert all(torch.equal(p, q) for p, q in zip(a.discriminator.parameters(), b.discriminator.parameters()))


def test_co_train_uses_fresh_generations(tiny_generator):
    reward = AdversarialReward(build_discriminator("conv", tiny_generator.image_shape, 10, width=8), _real())
    stats = co_train(reward, tiny_generator, heuristic_schedule(3), 3, epochs=2, batch_size=4,
                     rng=tiny_generator.make_rng(0))
    assert reward.num_updates == 2 and set(stats) == {"d_loss", "d_acc", "d_real", "d_fake"}
    # more (cheaper) updates than fresh batches: the fresh images are reused in random minibatches
    co_train(reward, tiny_generator, heuristic_schedule(3), 3, epochs=1, batch_size=4, rng=tiny_generator.make_rng(1),
             updates=5, minibatch=2)
    assert reward.num_updates == 7


def test_wrapper_puts_reward_on_terminal_step_and_co_trains(tiny_generator):
    from adanat_env.envs import AdaNATVectorEnv

    env = AdaNATVectorEnv(tiny_generator, num_envs=4, steps=2)
    reward = AdversarialReward(build_discriminator("conv", tiny_generator.image_shape, 10, width=8), _real())
    w = AdversarialRewardWrapper(env, reward, epochs=1, batch_size=4)
    w.reset(seed=0)
    _, r0, term0, _, _ = w.step(np.zeros((4, 4), np.float32))
    _, r1, term1, _, _ = w.step(np.zeros((4, 4), np.float32))
    assert not term0.any() and (r0 == 0).all() and term1.all()
    assert np.allclose(r1, reward(env.final_images, torch.as_tensor(env.final_labels)).numpy(), atol=1e-6)
    w.co_train(heuristic_schedule(2))
    assert reward.num_updates == 1


def test_rollout_fakes_train_the_discriminator_on_the_images_the_rollout_scored(tiny_generator):
    """fakes="rollout": the wrapper keeps the final images it scored (8-bit) and co_train_on_rollout trains on
    exactly those, generating nothing; the kept images are released after training or when a rollout starts."""
    from adanat_env.envs import AdaNATVectorEnv

    env = AdaNATVectorEnv(tiny_generator, num_envs=4, steps=2)
    reward = AdversarialReward(build_discriminator("conv", tiny_generator.image_shape, 10, width=8), _real())
    seen: list[torch.Tensor] = []
    update = reward.update
    reward.update = lambda x, y: (seen.append(x.clone()), update(x, y))[1]
    w = AdversarialRewardWrapper(env, reward, updates=3, minibatch=4, fakes="rollout")
    assert w.co_train_on_rollout() == {}  # nothing scored yet
    w.reset(seed=0)
    finals = []
    for _ in range(2):  # two episodes of T = 2
        for _ in range(2):
            w.step(np.zeros((4, 4), np.float32))
        finals.append((env.final_images.clamp(0, 1) * 255).round() / 255)
    assert len(w.rollout_fakes) == 2 and w.rollout_fakes[0][0].dtype == torch.uint8
    stats = w.co_train_on_rollout()
    assert reward.num_updates == 3 and 0 <= stats["d_acc"] <= 1 and w.rollout_fakes == []
    pool = torch.cat(finals)
    assert len(seen) == 3 and all(any(torch.allclose(x, q, atol=1e-6) for q in pool) for b in seen for x in b)
    w.step(np.zeros((4, 4), np.float32)); w.step(np.zeros((4, 4), np.float32))
    w.clear_rollout()
    assert w.rollout_fakes == []
    with pytest.raises(ValueError, match="fakes"):
        AdversarialRewardWrapper(env, reward, fakes="old")


def test_a_discriminator_on_the_generators_own_features(tiny_generator):
    """'projected-nat': heads over the frozen NAT's features of the re-tokenised image (the generator's
    canvas_features), trained without touching the generator, usable with the jackknife reward."""
    from adanat_env.generator import Generator

    tokens = tiny_generator.encode(torch.rand(3, 3, 16, 16))
    feats = tiny_generator.canvas_features(tokens)
    assert feats.shape == (3, tiny_generator.num_tokens, tiny_generator.feature_dim)
    # the canvas's features are those the NAT gives the complete canvas with the empty class
    _, ref = tiny_generator.nat(tokens, torch.full((3,), tiny_generator.null_class))
    assert torch.allclose(feats, ref.float())
    masked = tokens.clone()
    masked[:, 0] = tiny_generator.mask_id
    with pytest.raises(ValueError, match="complete canvases"):
        tiny_generator.canvas_features(masked)
    nat_before = {k: v.clone() for k, v in tiny_generator.nat.state_dict().items()}
    d = build_discriminator("projected-nat", tiny_generator.image_shape, 10, generator=tiny_generator, mbstd=4,
                            mbstd_by_label=True)
    assert all(k.startswith("heads.") for k in d.state_dict())  # the generator's weights are not the discriminator's
    reward = AdversarialReward(d, _real(), lr=1e-2, kind="jackknife", augment=0)
    x, y = torch.rand(8, 3, 16, 16), torch.arange(8) % 2
    first = reward.update(x, y)
    for _ in range(5):
        last = reward.update(x, y)
    assert last["d_loss"] < first["d_loss"] and torch.isfinite(reward(x, y)).all()
    bad = x.clone()
    bad[0] = float("nan")  # quantisation must not hide a NaN image: the loss turns non-finite, nothing changes
    with pytest.raises(DiscriminatorDivergedError):
        reward.update(bad, y)
    assert all(torch.equal(nat_before[k], v) for k, v in tiny_generator.nat.state_dict().items())
    with pytest.raises(ValueError, match="needs the generator"):
        build_discriminator("projected-nat", tiny_generator.image_shape, 10)

    class NoFeatures(Generator):  # a generator family without token canvases
        start = step = decode = None

    with pytest.raises(ValueError, match="implements encode and canvas_features"):
        build_discriminator("projected-nat", (3, 16, 16), 10, generator=NoFeatures())


def test_jackknife_fid_matches_brute_force():
    g = np.random.default_rng(0)
    ref = feature_stats(g.normal(size=(500, 6)))
    x = torch.as_tensor(g.normal(0.3, 1.2, size=(20, 6)))
    full, loo = jackknife_fid(x, ref)
    assert abs(float(full) - frechet_distance(feature_stats(x.numpy()), ref)) < 1e-6
    for i in (0, 7, 19):
        brute = frechet_distance(feature_stats(np.delete(x.numpy(), i, axis=0)), ref)
        assert abs(float(loo[i]) - brute) < 1e-6


def test_batch_fid_reward_attributes_outliers_lower():
    g = np.random.default_rng(1)
    ref = feature_stats(g.normal(size=(1000, 4)))
    feats = torch.as_tensor(g.normal(size=(64, 4)), dtype=torch.float32)
    feats[5] = 12.0  # an outlier sample far from the reference
    reward = BatchFIDReward(lambda images: images.flatten(1), ref)
    r = reward(feats.view(64, 4, 1, 1), torch.zeros(64))
    assert r.shape == (64,) and int(r.argmin()) == 5
    # the mean of the pseudo-values is the jackknife estimate of -FID
    full, loo = jackknife_fid(feats, ref)
    assert abs(float(r.double().mean()) + float(64 * full - 63 * loo.mean())) < 1e-3


def test_all_discriminator_names_known():
    assert list(DISCRIMINATORS) == ["conv", "projected-nat", "projected-efficientnet"]
    assert all(callable(b) for b in DISCRIMINATORS.values())
    with pytest.raises(ValueError, match="unknown discriminator 'dino'; choose one of conv, projected-nat, "
                                         "projected-efficientnet"):
        build_discriminator("dino", (3, 16, 16), 10)


def test_build_discriminator_looks_up_the_registry_and_every_builder_ignores_what_it_does_not_need(tiny_generator):
    """Every builder is called with the same keyword arguments; the conv one ignores the minibatch-std and
    generator settings, a projected one the conv width; a registered builder is found by name."""
    torch.manual_seed(0)
    d = build_discriminator("conv", (3, 16, 16), 10, width=8, sn=False, mbstd=4, mbstd_by_label=True,
                            generator=tiny_generator)
    torch.manual_seed(0)
    plain = build_discriminator("conv", (3, 16, 16), 10, width=8, sn=False)
    assert d.state_dict().keys() == plain.state_dict().keys()
    assert all(torch.equal(v, plain.state_dict()[k]) for k, v in d.state_dict().items())
    assert d.body[0].out_channels == 8
    torch.manual_seed(0)
    a = build_discriminator("projected-nat", (3, 16, 16), 10, width=8, mbstd=4, mbstd_by_label=True,
                            generator=tiny_generator)
    torch.manual_seed(0)
    b = build_discriminator("projected-nat", (3, 16, 16), 10, width=128, mbstd=4, mbstd_by_label=True,
                            generator=tiny_generator)
    assert a.group_size == 4 and all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    seen = {}

    def spy(**kwargs):
        seen.update(kwargs)
        return torch.nn.Identity()

    DISCRIMINATORS["spy"] = spy
    try:
        assert isinstance(build_discriminator("spy", (3, 16, 16), 10), torch.nn.Identity)
    finally:
        del DISCRIMINATORS["spy"]
    assert seen == {"image_shape": (3, 16, 16), "num_classes": 10, "width": 64, "sn": True, "mbstd": 0,
                    "mbstd_by_label": False, "generator": None, "conditions": None}


def test_minibatch_std_channel_sees_diversity():
    from rewards.discriminator import minibatch_std

    x = torch.randn(8, 3, 2, 2)
    same = x.clone()
    same[0::2] = same[0]  # group {0, 2, 4, 6} (strided) holds one image four times
    s = minibatch_std(same, 4)[:, 3, 0, 0]
    assert s.shape == (8,) and float(s[0]) < 1e-3 < float(s[1])
    assert minibatch_std(torch.randn(6, 3, 2, 2), 4).shape == (6, 4, 2, 2)  # 6 is not a multiple of 4: groups of 3


def test_minibatch_std_by_label_groups_same_class_samples():
    from rewards.discriminator import minibatch_std

    x = torch.randn(8, 3, 2, 2)
    labels = torch.tensor([1, 0, 1, 0, 1, 0, 1, 0])
    s = minibatch_std(x, 4, labels)[:, 3, 0, 0]
    for cls in (0, 1):
        group = x[labels == cls]
        assert torch.allclose(s[labels == cls], group.std(0, unbiased=False).mean().expand(4), atol=1e-5)
    # equivariant: permuting the batch (labels along) permutes the channel the same way
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(minibatch_std(x[perm], 4, labels[perm])[:, 3, 0, 0], s[perm], atol=1e-6)
    # a class with no diversity stands out however the classes are interleaved
    collapsed = x.clone()
    collapsed[labels == 0] = x[1]
    s = minibatch_std(collapsed, 4, labels)[:, 3, 0, 0]
    assert float(s[labels == 0].max()) < 1e-3 < float(s[labels == 1].min())


def test_the_jackknife_reward_is_the_groups_leave_one_out_pseudo_value_and_trains():
    """``d_reward="jackknife"``: r_i = g f(G) - (g - 1) f(G without i), checked against the plain discriminator run
    on each group and each leave-one-out set alone (its minibatch-std channel then covers exactly that set), on a
    batch of two classes in shuffled order; invalid settings are refused; a
    tiny run trains with it."""
    from dataclasses import replace as dc_replace

    from agents.training import Trainer
    from rewards.discriminator import same_class_groups

    from .test_training import tiny

    t = Trainer(dc_replace(tiny(), d_reward="jackknife", d_mbstd=4, iterations=1,
                           discriminator="projected-efficientnet"), None, log=lambda _: None)
    reward = t.discriminator.reward
    x, _ = reward.real.sample(12)
    y = torch.tensor([1, 0, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0])
    r = reward(x, y)
    ids = same_class_groups(y, 4)
    expected = torch.empty(12)
    for gid in ids.unique():
        members = torch.nonzero(ids == gid).flatten()
        f_group = reward.logits(x[members], y[members]).mean()
        for i in members:
            rest = members[members != i]
            expected[i] = 4 * f_group - 3 * reward.logits(x[rest], y[rest]).mean()
    torch.testing.assert_close(r, expected, rtol=1e-4, atol=1e-4)
    one = reward(x[:1], y[:1])  # a group of one (a batch of prime size): its plain, finite logit
    assert torch.isfinite(one).all()
    torch.testing.assert_close(one, reward.logits(x[:1], y[:1]))
    with pytest.raises(ValueError, match="same-class"):
        Trainer(dc_replace(tiny(), d_reward="jackknife", d_mbstd=0), None, log=lambda _: None)
    t.fit(progress=False)
    assert math.isfinite(t.history[-1]["reward_mean"])


@pytest.mark.parametrize("kind", ["sigmoid", "jackknife"])
def test_held_out_fake_accuracy_is_the_share_of_rewarded_fakes_with_a_negative_logit(kind):
    """Whatever the reward kind, the rewarded fakes are also judged by the discriminator's logit (a pseudo-value
    is no probability), so the training curve's held-out fake accuracy exists for every kind."""
    pytest.importorskip("efficientnet_lite_pytorch")
    d = build_discriminator("projected-efficientnet", (3, 16, 16), 10, mbstd=4, mbstd_by_label=True)
    reward = AdversarialReward(d, _real(), kind=kind)
    x, y = torch.rand(8, 3, 16, 16), torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    assert math.isnan(reward.pop_fake_accuracy())  # nothing rewarded yet
    reward(x, y)
    reward(x[:4], y[:4])
    if kind == "jackknife":  # each member judged within its full group, as the group's reward saw it
        expected = torch.cat([reward._jackknife(x, y)[1], reward._jackknife(x[:4], y[:4])[1]])
    else:
        expected = torch.cat([reward.logits(x, y), reward.logits(x[:4], y[:4])])
    assert reward.pop_fake_accuracy() == pytest.approx(float((expected < 0).float().mean()))
    assert math.isnan(reward.pop_fake_accuracy())  # popped: the next iteration starts afresh


def test_the_reward_kinds_are_the_official_sigmoid_and_the_jackknife():
    from rewards.adversarial import REWARD_KINDS

    assert REWARD_KINDS == ("sigmoid", "jackknife")
    conv = build_discriminator("conv", (3, 16, 16), 10, width=8)
    with pytest.raises(ValueError, match="kind must be one of sigmoid, jackknife"):
        AdversarialReward(conv, _real(), kind="logit")
    with pytest.raises(ValueError, match="same-class minibatch-std groups"):  # no groups to attribute
        AdversarialReward(conv, _real(), kind="jackknife")


def test_the_default_jackknife_reward_refuses_a_discriminator_without_same_class_groups():
    """The default reward needs same-class groups; other discriminators are refused before any work, naming the
    fix; the official preset keeps the official sigmoid reward."""
    from agents.training import PRESETS, TrainConfig

    assert TrainConfig().d_reward == "jackknife" and PRESETS["official-imagenet"]["d_reward"] == "sigmoid"
    for bad in (dict(discriminator="conv"), dict(d_mbstd=0), dict(d_mbstd_by_label=0)):
        with pytest.raises(ValueError, match="--d-reward sigmoid"):
            TrainConfig(**bad).validate()
        TrainConfig(**bad, d_reward="sigmoid").validate()
    TrainConfig(discriminator="conv", reward="fid").validate()  # not an adversarial run


def _benchmark(name: str):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_reward_snr_slopes_find_a_known_slope_and_the_class_baseline_removes_class_offsets():
    """``benchmarks/reward_snr.py``: a reward linear in one knob's static shift gets a large z there and none
    elsewhere; a per-class offset in the reward is noise to the mean baseline and gone with the class one."""
    mod = _benchmark("reward_snr")
    g = np.random.default_rng(0)
    n, t, std = 4000, 3, 0.6
    eps = g.normal(0, std, (n, t, 4))
    labels = g.integers(0, 5, n)
    r = 0.5 * eps[:, :, 3].sum(1) + 10.0 * labels + g.normal(0, 0.5, n)
    plain, cls = mod.slopes(r, eps, std), mod.slopes(r, eps, std, labels)
    assert cls["static"][3] == pytest.approx(0.5 * t, abs=0.15) and cls["static_z"][3] > 20  # d r / d(shift at every step)
    assert np.all(np.abs(cls["static_z"][:3]) < 4)
    assert abs(plain["static_z"][3]) < cls["static_z"][3] / 3  # the class offsets drown the slope without it
    assert cls["step_z"].shape == (t, 4)


def test_reward_snr_runs_on_a_tiny_configuration(tmp_path):
    """The script end to end (tiny budget), from a warm-up and from a run's co-trained discriminator."""
    from dataclasses import replace as dc_replace

    from agents.training import Trainer

    from .test_training import tiny

    mod = _benchmark("reward_snr")
    flags = ["--steps", "2", "--batch-size", "8", "--samples", "16", "--d-warmup", "2", "--d-batch-size", "8",
             "--d-minibatch", "8", "--d-real-count", "500", "--val-count", "200", "--amp", "none", "--device", "cpu"]
    out = mod.main(flags + ["--out", str(tmp_path / "snr.json")])
    assert set(out["static_z"]) == {"m", "tau_1", "tau_2", "w"} and len(out["step_z"]) == 2
    assert all(math.isfinite(v) for v in out["static_z"].values())
    assert json.loads((tmp_path / "snr.json").read_text())["samples"] == 16
    Trainer(dc_replace(tiny(), iterations=1), tmp_path / "run", log=lambda _: None).fit(progress=False)
    again = mod.main(flags + ["--discriminator-from", str(tmp_path / "run")])
    assert again["d_warmup_stats"]["iteration"] == 1
    with pytest.raises(ValueError, match="multiple of --batch-size"):
        mod.main(["12" if f == "16" else f for f in flags])  # --samples 12 with batches of 8
