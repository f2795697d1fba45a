"""Text-to-image (issue #28, parts 1-3): prompt files, the text-conditioned generator behind the same Generator
interface, and the AdaNAT-CC3M256-v0 env (here with a tiny text-conditioned config of the same classes; the
full-size CC3M preset's manifest, checkpoint and forward are in test_models.py / test_checkpoints.py)."""

from __future__ import annotations

import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import adanat_env  # noqa: F401  (registers the ids)
from adanat_env.generator import NATGenerator
from adanat_env.inputs import InputError
from adanat_env.models import UViTConfig, load_nat, load_tokenizer
from adanat_env.prompts import encode_prompts, load_prompts, main as prompts_main, save_prompts
from adanat_env.sampler import generate
from adanat_env.schedules import heuristic_schedule

from .conftest import TINY_VQ

TINY_T2I = UViTConfig(img_size=4, codebook_size=32, embed_dim=32, depth=2, num_heads=2, num_classes=0, clip_dim=24,
                      num_clip_tokens=5)
TEXTS = ["a red dress", "a black ankle boot", "a striped shirt"]


@pytest.fixture
def prompt_file(tmp_path):
    g = torch.Generator().manual_seed(0)
    states, pooled = 3 * torch.randn(4, 5, 24, generator=g), torch.randn(4, 16, generator=g)
    return save_prompts(tmp_path / "prompts.safetensors", states[:3], pooled[:3], states[3], pooled[3], TEXTS, "test")


def _generator(prompt_file) -> NATGenerator:
    torch.manual_seed(0)
    bank = load_prompts(prompt_file, tokens=5, dim=24)
    return NATGenerator(load_nat(TINY_T2I), load_tokenizer(TINY_VQ), prompts=bank.states)


def test_a_prompt_file_round_trips_and_bad_ones_are_named(prompt_file, tmp_path):
    bank = load_prompts(prompt_file)
    assert bank.texts == tuple(TEXTS) and bank.states.shape == (4, 5, 24) and bank.pooled.shape == (4, 16)
    with pytest.raises(InputError, match="holds 5 x 24 token states but the NAT reads 77 x 1280"):
        load_prompts(prompt_file, tokens=77, dim=1280)
    (tmp_path / "x.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(InputError, match="is not a safetensors file"):
        load_prompts(tmp_path / "x.safetensors")
    with pytest.raises(InputError, match="does not exist.*python -m adanat_env.prompts"):
        load_prompts(tmp_path / "none.safetensors")


def test_encoding_prompts_needs_a_local_encoder_and_names_what_is_missing(tmp_path, monkeypatch):
    (tmp_path / "p.txt").write_text("a red dress\n\n")
    with pytest.raises(InputError, match="--encoder .* is not a directory"):
        prompts_main(["--prompts", str(tmp_path / "p.txt"), "--encoder", str(tmp_path / "clip"), "--out", "x"])
    monkeypatch.setitem(sys.modules, "transformers", None)  # as where it is not installed
    with pytest.raises(ImportError, match="pip install transformers"):
        encode_prompts(["a"], tmp_path)


def test_the_text_generator_keeps_the_interface_prompt_ids_as_labels(prompt_file):
    gen = _generator(prompt_file)
    assert gen.num_classes == 3 and gen.null_class == 3  # the empty prompt is the empty class
    labels = torch.tensor([0, 1, 2, 0])
    a = generate(gen, labels, heuristic_schedule(2), 2, rng=gen.make_rng(0)).images
    b = generate(gen, labels, heuristic_schedule(2), 2, rng=gen.make_rng(0)).images
    assert a.shape == (4, 3, 16, 16) and torch.equal(a, b)
    state = gen.start(torch.tensor([0, 1]), 2)
    assert not torch.allclose(state.features[0], state.features[1])  # the prompt reaches the features
    with pytest.raises(ValueError, match="needs a prompt bank"):
        NATGenerator(load_nat(TINY_T2I), load_tokenizer(TINY_VQ))
    with pytest.raises(ValueError, match="prompts must be"):
        NATGenerator(load_nat(TINY_T2I), load_tokenizer(TINY_VQ), prompts=torch.zeros(3, 77, 24))


def _make(prompt_file, vector: bool = False, **kw):
    common = dict(weights="random", prompts=str(prompt_file), nat_preset=TINY_T2I.to_dict(),
                  tokenizer_preset=TINY_VQ, device="cpu", steps=3, **kw)
    if vector:
        return gym.make_vec("AdaNAT-CC3M256-v0", vectorization_mode="vector_entry_point", **common)
    return gym.make("AdaNAT-CC3M256-v0", **common)


def test_the_cc3m_env_passes_the_checkers_and_the_vector_env_agrees(prompt_file):
    torch.manual_seed(0)
    env = _make(prompt_file)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=True)
    assert env.unwrapped.decoding_spec.residual == "heuristic"  # the official CC3M policy's heu = 1
    torch.manual_seed(0)
    single = _make(prompt_file)
    torch.manual_seed(0)
    vec = _make(prompt_file, vector=True, num_envs=1)
    rng = np.random.default_rng(0)
    for episode in range(2):
        o1, _ = single.reset(seed=5 + episode)
        o2, _ = vec.reset(seed=5 + episode)
        assert o1["label"] == o2["label"][0] and 0 <= int(o1["label"][0]) < 3  # a prompt id of the file
        np.testing.assert_array_equal(o1["features"], o2["features"][0])
        for _ in range(3):
            a = rng.normal(size=4).astype(np.float32)
            o1, _, term, _, info1 = single.step(a)
            o2, _, _, _, info2 = vec.step(a[None])
            if not term:
                np.testing.assert_array_equal(o1["features"], o2["features"][0])
        np.testing.assert_array_equal(info1["final_tokens"], info2["final_info"]["final_tokens"][0])


def test_the_cc3m_env_without_weights_or_prompts_names_the_files(monkeypatch, tmp_path):
    monkeypatch.delenv("ADANAT_CC3M_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="needs prompts"):
        gym.make("AdaNAT-CC3M256-v0", device="cpu")
    with pytest.raises(InputError, match="prompt file"):
        gym.make("AdaNAT-CC3M256-v0", device="cpu", prompts=str(tmp_path / "none.safetensors"))
