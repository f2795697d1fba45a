"""The batched sampler and the NAT generator behind the Generator interface."""

from __future__ import annotations

import pytest
import torch

from adanat_env.generator import NATGenerator
from adanat_env.models import load_nat, load_tokenizer
from adanat_env.sampler import generate
from adanat_env.actions import ActionMapping
from adanat_env.policy import PolicyInput
from adanat_env.schedules import heuristic_schedule, maskgit_cosine_schedule


def _count_rows(gen: NATGenerator) -> list[int]:
    rows: list[int] = []
    gen.nat.register_forward_hook(lambda m, i, o: rows.append(i[0].shape[0]))
    return rows


@pytest.mark.parametrize("steps", [1, 2, 5])
def test_at_most_two_forwards_per_step_and_none_after_the_last(tiny_generator, steps):
    rows = _count_rows(tiny_generator)
    b = 6
    labels = torch.tensor([3, 1, 3, 3, 8, 1])  # three distinct classes
    out = generate(tiny_generator, labels, heuristic_schedule(steps), seed=0)
    assert len(rows) == steps  # one batched call per step, nothing after the last
    # the all-mask start: one row per distinct class and one unconditional row; then conditional + unconditional
    assert sum(rows) == 3 + 1 + 2 * b * (steps - 1) <= 2 * b * steps
    assert int((out.tokens == tiny_generator.mask_id).sum()) == 0
    assert out.images.shape == (b, 3, 16, 16)
    assert float(out.images.min()) >= 0 and float(out.images.max()) <= 1


def test_same_seed_same_result(tiny_generator):
    labels = torch.tensor([1, 2, 3, 4])
    a = generate(tiny_generator, labels, maskgit_cosine_schedule(4), seed=3)
    b = generate(tiny_generator, labels, maskgit_cosine_schedule(4), seed=3)
    c = generate(tiny_generator, labels, maskgit_cosine_schedule(4), seed=4)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.images, b.images)
    assert not torch.equal(a.tokens, c.tokens)


def test_callable_policy_sees_features_and_steps(tiny_generator):
    amap = ActionMapping(3, residual=True)
    seen = []

    def policy(inp: PolicyInput):
        seen.append((inp.step, tuple(inp.features.shape)))
        assert torch.isfinite(inp.features).all()
        return amap(torch.zeros(inp.labels.shape[0], 4), inp.step)

    out = generate(tiny_generator, torch.tensor([0, 9]), policy, num_steps=3, seed=0, record_params=True)
    assert seen == [(0, (2, 16, 32)), (1, (2, 16, 32)), (2, (2, 16, 32))]
    assert out.params.shape == (3, 2, 4)
    # a zero residual action is the heuristic schedule
    ref = generate(tiny_generator, torch.tensor([0, 9]), heuristic_schedule(3), seed=0)
    assert torch.equal(out.tokens, ref.tokens)


def test_features_of_generator_are_the_conditional_pass(tiny_generator):
    g = tiny_generator
    labels = torch.tensor([2, 7, 2, 0])  # a repeated class: its rows share one NAT row at the all-mask start
    state = g.start(labels, 2, g.make_rng(0))
    ids = torch.full((4, g.num_tokens), g.mask_id)
    logits, feat = g.nat(ids, labels)
    torch.testing.assert_close(state.features, feat)
    torch.testing.assert_close(state.cache[0], logits)
    torch.testing.assert_close(state.cache[1], g.nat(ids, torch.full((4,), g.null_class))[0])


def test_generator_rejects_bad_labels_and_finished_states(tiny_generator):
    g = tiny_generator
    with pytest.raises(ValueError, match="labels must lie"):
        g.start(torch.tensor([0, 11]), 2)
    with pytest.raises(ValueError, match="integers"):
        g.start(torch.tensor([0.5]), 2)
    with pytest.raises(ValueError, match="num_steps"):
        g.start(torch.tensor([0]), 0)
    state = g.start(torch.tensor([0]), 1)
    state = g.step(state, heuristic_schedule(1).at(0, 1))
    assert state.done and state.features is None
    with pytest.raises(RuntimeError, match="finished"):
        g.step(state, heuristic_schedule(1).at(0, 1))
    with pytest.raises(ValueError, match="mask tokens"):
        g.decode(torch.full((1, g.num_tokens), g.mask_id))


def test_preview_greys_masked_regions(tiny_generator):
    g = tiny_generator
    state = g.start(torch.tensor([1]), 4, g.make_rng(0))
    img = g.preview(state)
    assert img.shape == (1, 3, 16, 16)
    torch.testing.assert_close(img, torch.full_like(img, 0.5))  # all masked at the start


def test_bf16_autocast_runs(tiny_generator):
    g = NATGenerator(tiny_generator.nat, tiny_generator.tokenizer, amp="bf16")
    out = generate(g, torch.tensor([1, 2]), heuristic_schedule(3), seed=0)
    assert out.images.dtype == torch.float32 and int((out.tokens == g.mask_id).sum()) == 0
    with pytest.raises(ValueError, match="amp"):
        NATGenerator(tiny_generator.nat, tiny_generator.tokenizer, amp="int8")


def test_mismatched_nat_and_tokenizer():
    from .conftest import TINY_NAT, TINY_VQ

    with pytest.raises(ValueError, match="codes"):
        NATGenerator(load_nat({**TINY_NAT.to_dict(), "codebook_size": 64}), load_tokenizer(TINY_VQ))


@pytest.mark.slow
def test_imagenet256_L_random_weights_one_image_two_steps_on_cpu():
    gen = NATGenerator(load_nat("imagenet256-L"), load_tokenizer("maskgit-vqgan-f16"))
    out = generate(gen, torch.tensor([207]), heuristic_schedule(2), seed=0)
    assert out.images.shape == (1, 3, 256, 256)
    assert float(out.images.min()) >= 0.0 and float(out.images.max()) <= 1.0
    assert out.tokens.shape == (1, 256) and int((out.tokens == 1024).sum()) == 0


def test_auto_precision_is_bf16_only_where_the_device_multiplies_it_natively(monkeypatch):
    """``amp="auto"`` (the trainer's default): bf16 autocast where :func:`native_bf16` says so, float32 elsewhere
    (emulated bf16 on an AVX2 CPU is several times slower than float32)."""
    import adanat_env.generator as generator_module
    from adanat_env.generator import autocast_context

    x = torch.randn(4, 8)
    w = torch.randn(8, 8)
    for native, dtype in ((False, torch.float32), (True, torch.bfloat16)):
        monkeypatch.setattr(generator_module, "native_bf16", lambda device, native=native: native)
        with autocast_context(torch.device("cpu"), "auto"):
            assert (x @ w).dtype == dtype
    with pytest.raises(ValueError, match="'auto'"):
        autocast_context(torch.device("cpu"), "bf32")
