"""Schedules and the raw-action -> step-parameter mapping (official BiasAct semantics)."""

from __future__ import annotations

import math

import pytest
import torch

from adanat_env.actions import ActionMapping, heuristic_residuals
from adanat_env.schedules import cosine_mask_ratio, heuristic_schedule, maskgit_cosine_schedule


def test_heuristic_residuals_match_official_values_for_T8():
    res = heuristic_residuals(8)
    expected_ratio_logits = [3.9347, 2.4973, 1.5969, 0.8820, 0.2239, -0.4774, -1.4160, -8.5357]
    # the official table was computed in float32; near m = 0 that costs ~3e-4 in the logit, we use float64
    assert res[:, 0].tolist() == pytest.approx(expected_ratio_logits, abs=5e-4)
    assert res[:, 2].tolist() == pytest.approx([math.log(math.e - 1)] * 8, abs=1e-12)
    sched = heuristic_schedule(8)
    assert [math.floor(256 * m) for m in sched.mask_ratio] == [251, 236, 212, 181, 142, 98, 49, 0]
    assert sched.remask_temp == pytest.approx([0.875125, 0.750125, 0.625125, 0.500125, 0.375125, 0.250125, 0.125125, 0.000125])
    assert sched.guidance == pytest.approx([0.000125, 0.125125, 0.250125, 0.375125, 0.500125, 0.625125, 0.750125, 0.875125])
    assert sched.sample_temp == (1.0,) * 8


@pytest.mark.parametrize("steps", [1, 4, 8, 12])
def test_zero_action_with_residual_reproduces_heuristic_exactly(steps):
    amap = ActionMapping(steps, residual=True)
    sched = heuristic_schedule(steps)
    for t in range(steps):
        p = amap(torch.zeros(3, 4), t)
        q = sched.at(t, 3)
        for name in ("mask_ratio", "sample_temp", "remask_temp", "guidance"):
            assert torch.equal(getattr(p, name), getattr(q, name)), (t, name)


def test_direct_mapping_is_official_heu0():
    p = ActionMapping(8, residual=False)(torch.zeros(2, 4), 3)
    assert p.mask_ratio.tolist() == [0.5, 0.5]
    for v in (p.sample_temp, p.remask_temp, p.guidance):
        assert v.tolist() == pytest.approx([math.log(2)] * 2)
    # official order of raw dimensions: (ratio, remask temp, sample temp, cfg)
    raw = torch.tensor([[0.0, 5.0, -5.0, 1.0]])
    p = ActionMapping(8, residual=False)(raw, 0)
    assert p.remask_temp.item() == pytest.approx(math.log1p(math.exp(5.0)), rel=1e-6)
    assert p.sample_temp.item() == pytest.approx(math.log1p(math.exp(-5.0)), rel=1e-5)


def test_per_sample_steps():
    amap = ActionMapping(4, residual=True)
    p = amap(torch.zeros(4, 4), torch.tensor([0, 1, 2, 3]))
    sched = heuristic_schedule(4)
    assert p.mask_ratio.tolist() == pytest.approx(list(sched.mask_ratio), abs=1e-7)


def test_action_mapping_rejects_bad_input():
    amap = ActionMapping(4)
    with pytest.raises(ValueError, match="NaN or inf"):
        amap(torch.tensor([[0.0, float("nan"), 0.0, 0.0]]), 0)
    with pytest.raises(ValueError, match=r"\(B, 4\)"):
        amap(torch.zeros(2, 3), 0)
    with pytest.raises(ValueError, match="outside"):
        amap(torch.zeros(2, 4), 4)


def test_extreme_raw_actions_map_to_valid_params():
    amap = ActionMapping(4, residual=True)
    for v in (-1e6, 1e6):
        p = amap(torch.full((2, 4), v), 1)
        p.validate(2)


def test_cosine_schedule():
    s = maskgit_cosine_schedule(4)
    assert s.mask_ratio == pytest.approx([math.cos(math.pi / 2 * k / 4) for k in (1, 2, 3, 4)])
    assert s.remask_temp == pytest.approx([4.5 * 0.75, 4.5 * 0.5, 4.5 * 0.25, 0.0])
    assert cosine_mask_ratio(3, 4) == pytest.approx(0.0, abs=1e-12)
    assert s.num_steps == 4 and s.name == "cosine"
