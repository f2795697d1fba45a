"""The decoding step (paper Sec. 3.2) as pure tensor math, with random logits standing in for the NAT."""

from __future__ import annotations

import math

import pytest
import torch

from adanat_env.decoding import (
    StepParams,
    decoding_step,
    guided_logits,
    lowest_k_mask,
    sample_tokens,
    token_log_prob,
)
from adanat_env.schedules import heuristic_schedule

MASK = 16  # vocabulary 0..15, mask id 16
N = 256


def _logits(b: int, n: int = N, v: int = MASK, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, n, v, generator=g) * 2, torch.randn(b, n, v, generator=g) * 2


def _run(params_per_step: list[StepParams], b: int, seed: int = 0) -> list[torch.Tensor]:
    """Run a whole generation with fresh random logits each step; returns the canvas after every step."""
    rng = torch.Generator().manual_seed(seed)
    tokens = torch.full((b, N), MASK)
    canvases = []
    for t, p in enumerate(params_per_step):
        lc, lu = _logits(b, seed=100 + t)
        _, tokens = decoding_step(tokens, lc, lu, p, mask_id=MASK, last=t == len(params_per_step) - 1, generator=rng)
        canvases.append(tokens)
    return canvases


def test_mask_counts_follow_the_schedule_and_match_official_numbers():
    sched = heuristic_schedule(8)
    canvases = _run([sched.at(t, 4) for t in range(8)], b=4)
    counts = [(c == MASK).sum(1).tolist() for c in canvases]
    # floor(256 m_t) for the official heuristic at T=8 (OFFICIAL_ADANAT_FACTS §4)
    assert [c[0] for c in counts] == [251, 236, 212, 181, 142, 98, 49, 0]
    assert all(len(set(c)) == 1 for c in counts)


def test_fixed_tokens_never_change():
    sched = heuristic_schedule(8)
    canvases = _run([sched.at(t, 3) for t in range(8)], b=3, seed=1)
    for prev, nxt in zip(canvases, canvases[1:]):
        fixed = prev != MASK
        assert torch.equal(nxt[fixed], prev[fixed])


def test_official_cases_and_progress_guarantee():
    rng = torch.Generator().manual_seed(0)
    b = 4
    tokens = torch.full((b, N), MASK)
    lc, lu = _logits(b)
    _, tokens = decoding_step(tokens, lc, lu, StepParams.full(b, 0.5), mask_id=MASK, last=False, generator=rng)
    assert (tokens == MASK).sum(1).tolist() == [128] * 4
    # the official step would stall here (k = 128 >= 128 masked); the progress guarantee fixes one token
    _, stalled = decoding_step(tokens, lc, lu, StepParams.full(b, 0.5), mask_id=MASK, last=False, generator=rng)
    assert (stalled == MASK).sum(1).tolist() == [127] * 4
    m = torch.tensor([0.25, 0.0, 0.1, 0.49])
    p = StepParams(m, torch.ones(b), torch.ones(b), torch.zeros(b))
    _, nxt = decoding_step(tokens, lc, lu, p, mask_id=MASK, last=False, generator=rng)
    assert (nxt == MASK).sum(1).tolist() == [64, 0, 25, 125]  # same as the official step


@pytest.mark.parametrize("t1,t2,w", [
    (1.0, 1.0, 0.0), (0.0, 0.0, 0.0), (1e-30, 1e30, 1e30), (1e30, 1e30, -1e30), (1e-8, 0.0, 3.0e38), (3e38, 3e38, 0.5),
])
def test_any_action_finishes_the_canvas(t1, t2, w):
    """m = 1 at every step (re-mask everything) plus extreme temperatures / guidance: still fully decoded."""
    b, steps = 3, 4
    p = StepParams(torch.ones(b), torch.full((b,), t1), torch.full((b,), t2), torch.full((b,), w))
    canvases = _run([p] * steps, b=b)
    counts = [(c == MASK).sum(1) for c in canvases]
    for t in range(steps - 1):  # every step fixes at least one token
        assert bool((counts[t] <= N - 1 - t).all())
    assert int(counts[-1].sum()) == 0
    assert int(canvases[-1].min()) >= 0 and int(canvases[-1].max()) < MASK


def test_single_step_generation_fixes_everything():
    canvases = _run([StepParams.full(2, 1.0)], b=2)
    assert int((canvases[-1] == MASK).sum()) == 0


def test_guidance_zero_equals_conditional_sampling():
    b = 2
    lc, lu = _logits(b, seed=3)
    tokens = torch.full((b, N), MASK)
    p = StepParams.full(b, 0.5, sample_temp=0.7, remask_temp=1.0, guidance=0.0)
    out1 = decoding_step(tokens, lc, lu, p, mask_id=MASK, last=False, generator=torch.Generator().manual_seed(5))
    out2 = decoding_step(tokens, lc, torch.randn_like(lu) * 50, p, mask_id=MASK, last=False,
                         generator=torch.Generator().manual_seed(5))
    assert torch.equal(out1[0], out2[0]) and torch.equal(out1[1], out2[1])
    drawn = sample_tokens(lc, p.sample_temp, torch.Generator().manual_seed(5))
    assert torch.equal(out1[0], drawn)


def test_guidance_formula():
    lc, lu = _logits(2, n=3, seed=4)
    w = torch.tensor([0.0, 2.5])
    torch.testing.assert_close(guided_logits(lc, lu, w), lc + w[:, None, None] * (lc - lu))


@pytest.mark.parametrize("field,value,match", [
    ("mask_ratio", float("nan"), "mask_ratio has NaN"),
    ("sample_temp", float("inf"), "sample_temp has NaN/inf"),
    ("guidance", float("-inf"), "guidance has NaN/inf"),
    ("mask_ratio", 1.5, r"\[0, 1\]"),
    ("remask_temp", -1.0, "remask_temp must be >= 0"),
])
def test_invalid_params_raise_clear_errors(field, value, match):
    b = 2
    p = StepParams.full(b, 0.5)
    bad = getattr(p, field).clone()
    bad[1] = value
    p = StepParams(**{**{f: getattr(p, f) for f in ("mask_ratio", "sample_temp", "remask_temp", "guidance")}, field: bad})
    tokens = torch.full((b, N), MASK)
    lc, lu = _logits(b)
    with pytest.raises(ValueError, match=match):
        decoding_step(tokens, lc, lu, p, mask_id=MASK, last=False)


def test_wrong_param_shape_raises():
    tokens = torch.full((2, N), MASK)
    lc, lu = _logits(2)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        decoding_step(tokens, lc, lu, StepParams.full(3, 0.5), mask_id=MASK, last=False)


def test_same_seed_same_tokens_different_seed_different_tokens():
    sched = heuristic_schedule(4)
    a = _run([sched.at(t, 2) for t in range(4)], b=2, seed=7)[-1]
    b = _run([sched.at(t, 2) for t in range(4)], b=2, seed=7)[-1]
    c = _run([sched.at(t, 2) for t in range(4)], b=2, seed=8)[-1]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sampler_matches_the_tempered_distribution():
    v = 5
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0, -30.0]).expand(1, 20000, v).contiguous()
    for tau in (0.5, 1.0, 2.0):
        drawn = sample_tokens(logits, torch.tensor([tau]), torch.Generator().manual_seed(0))
        freq = torch.bincount(drawn.flatten(), minlength=v).float() / drawn.numel()
        expected = torch.softmax(logits[0, 0] / tau, -1)
        assert torch.allclose(freq, expected, atol=0.012), (tau, freq, expected)
    greedy = sample_tokens(logits, torch.tensor([0.0]), torch.Generator().manual_seed(0))
    assert bool((greedy == 0).all())


def test_confidence_is_untempered_log_prob():
    lc, _ = _logits(2, n=7, seed=9)
    tok = torch.randint(0, MASK, (2, 7))
    torch.testing.assert_close(token_log_prob(lc, tok), torch.log_softmax(lc, -1).gather(-1, tok[..., None]).squeeze(-1))


def test_lowest_k_equals_official_cutoff_rule_without_ties():
    """Where the official rule makes progress, our exact-k re-masking picks the same positions."""
    g = torch.Generator().manual_seed(0)
    conf = torch.randn(6, 50, generator=g)
    conf[:, :10] = math.inf  # fixed earlier
    k = torch.tensor([0, 1, 5, 20, 39, 39])
    ours = lowest_k_mask(conf, k)
    cutoff = conf.sort(dim=1).values.gather(1, k[:, None])
    official = conf < cutoff
    assert torch.equal(ours, official)
    assert ours.sum(1).tolist() == k.tolist()
