"""CUDA checks (skipped without a GPU): the same code path on the device, CPU parity, autocast."""

from __future__ import annotations

import pytest
import torch

from adanat_env.generator import NATGenerator
from adanat_env.models import load_nat, load_tokenizer
from adanat_env.sampler import generate
from adanat_env.schedules import heuristic_schedule

from .conftest import TINY_NAT, TINY_VQ

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_nat_forward_matches_cpu():
    torch.manual_seed(0)
    cpu = load_nat("imagenet256-S")
    gpu = load_nat("imagenet256-S", cpu.state_dict(), "cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    ids = torch.randint(0, 1025, (2, 256))
    labels = torch.tensor([3, 1000])
    with torch.inference_mode():
        lc, fc = cpu(ids, labels)
        lg, fg = gpu(ids.cuda(), labels.cuda())
    torch.testing.assert_close(lg.cpu(), lc, atol=2e-3, rtol=2e-3)
    torch.testing.assert_close(fg.cpu(), fc, atol=2e-3, rtol=2e-3)


@pytest.mark.parametrize("amp", [None, "bf16", "fp16"])
def test_generation_on_cuda_is_seeded_and_complete(amp):
    gen = NATGenerator(load_nat(TINY_NAT, device="cuda"), load_tokenizer(TINY_VQ, device="cuda"), amp=amp)
    labels = torch.arange(8, device="cuda") % 10
    a = generate(gen, labels, heuristic_schedule(4), seed=1)
    b = generate(gen, labels, heuristic_schedule(4), seed=1)
    assert a.tokens.is_cuda and a.images.is_cuda
    assert torch.equal(a.tokens, b.tokens)
    assert int((a.tokens == gen.mask_id).sum()) == 0


def test_imagenet256_L_on_cuda_bf16():
    gen = NATGenerator(load_nat("imagenet256-L", device="cuda"), load_tokenizer("maskgit-vqgan-f16", device="cuda"), amp="bf16")
    out = generate(gen, torch.arange(4, device="cuda"), heuristic_schedule(8), seed=0)
    assert out.images.shape == (4, 3, 256, 256)
    assert float(out.images.min()) >= 0 and float(out.images.max()) <= 1


def test_training_on_cuda_keeps_rollouts_on_the_device(tmp_path):
    from agents.device_buffer import DeviceDictRolloutBuffer
    from agents.training import Trainer

    from .test_training import tiny

    t = Trainer(tiny(device="cuda", iterations=1), tmp_path / "run", log=lambda _: None)
    assert t.device_rollouts and isinstance(t.model.rollout_buffer, DeviceDictRolloutBuffer)
    obs = t.sb3_env.reset()
    assert obs["features"].is_cuda
    history = t.fit(progress=False)
    assert t.model.rollout_buffer.observations["features"].is_cuda
    assert history[-1]["peak_memory_gib"] > 0
