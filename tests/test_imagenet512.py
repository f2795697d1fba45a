"""ImageNet-512 (issue #28, part 3): the patch-size-2 U-ViT, the generator's coarser feature grid, and the
AdaNAT-ImageNet512-v0 env (fast tests on a tiny patched config; the full-size preset in the slow ones)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import adanat_env  # noqa: F401  (registers the ids)
from adanat_env.generator import NATGenerator
from adanat_env.models import NAT_PRESETS, TOKENIZER_PRESETS, UViT, UViTConfig, VQGAN, load_nat, load_tokenizer
from adanat_env.models.uvit import patchify, unpatchify
from adanat_env.sb3 import to_sb3
from agents.registry import make_algo

from .conftest import TINY_VQ, assert_vector_env_agrees, load_manifest

# 4 x 4 tokens (TINY_VQ) in 2 x 2 patches: 4 positions
TINY_512 = UViTConfig(img_size=4, codebook_size=32, embed_dim=32, depth=2, num_heads=2, num_classes=11, patch_size=2)


def test_patchify_is_row_major_within_each_patch_and_unpatchify_inverts_it():
    x = torch.arange(16.0).reshape(1, 16, 1)  # a 4 x 4 grid of token indices
    p = patchify(x, 2)
    assert p.shape == (1, 4, 4)
    assert p[0, 0].tolist() == [0, 1, 4, 5] and p[0, 1].tolist() == [2, 3, 6, 7] and p[0, 3].tolist() == [10, 11, 14, 15]
    y = torch.randn(3, 64, 5)
    assert torch.equal(unpatchify(patchify(y, 2), 2), y)


def test_a_patched_nat_scores_every_token_and_returns_features_per_position():
    torch.manual_seed(0)
    nat = UViT(TINY_512).eval()
    ids = torch.randint(0, 33, (3, 16))
    logits, feat = nat(ids, torch.tensor([0, 4, 10]))
    assert logits.shape == (3, 16, 32) and feat.shape == (3, 4, 32)
    assert TINY_512.feature_grid == (2, 2) and TINY_512.num_positions == 4 and TINY_512.num_tokens == 16
    # a token changes the scores of its own patch's tokens (and, through attention, the others)
    ids2 = ids.clone()
    ids2[:, 0] = 32 - ids2[:, 0].clamp(max=31)
    assert not torch.allclose(nat(ids2, torch.tensor([0, 4, 10]))[0][:, :4], logits[:, :4])
    with pytest.raises(ValueError, match="patch_size must divide img_size"):
        UViTConfig(img_size=5, patch_size=2)


def test_patch_size_one_keeps_every_official_key():
    """The new option adds keys only when p > 1: the official presets' state dicts are untouched."""
    with torch.device("meta"):
        keys = set(UViT(NAT_PRESETS["imagenet256-L"]).state_dict())
        keys512 = {k: tuple(v.shape) for k, v in UViT(NAT_PRESETS["imagenet512-L"]).state_dict().items()}
    expected, _ = load_manifest("adanat_L_uvit_imagenet256.json")
    assert keys == set(expected)
    assert set(keys512) - keys == {"token_emb.patch_embed.weight", "token_emb.patch_embed.bias",
                                   "decoder_pred.weight", "decoder_pred.bias"}
    assert keys512["token_emb.position_embeddings.weight"] == (256, 768)  # 16 x 16 positions
    assert keys512["token_emb.patch_embed.weight"] == (768, 4 * 768)


def test_the_512_tokenizer_is_the_official_vqgan_at_512_px():
    expected, _ = load_manifest("vqgan_maskgit_f16_1024.json")
    with torch.device("meta"):
        got = {k: list(v.shape) for k, v in VQGAN(TOKENIZER_PRESETS["maskgit-vqgan-f16-512"]).state_dict().items()}
    assert got == expected and TOKENIZER_PRESETS["maskgit-vqgan-f16-512"].num_tokens == 1024


def _make(vector: bool = False, **kw):
    common = dict(weights="random", nat_preset=TINY_512.to_dict(), tokenizer_preset=TINY_VQ, device="cpu", steps=3, **kw)
    if vector:
        return gym.make_vec("AdaNAT-ImageNet512-v0", vectorization_mode="vector_entry_point", **common)
    return gym.make("AdaNAT-ImageNet512-v0", **common)


def test_the_512_env_passes_the_checkers_and_the_vector_env_agrees():
    torch.manual_seed(0)
    env = _make()
    assert env.observation_space["features"].shape == (4, 32)  # positions, not tokens
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=True)
    torch.manual_seed(0)
    single = _make()
    torch.manual_seed(0)
    vec = _make(vector=True, num_envs=1)
    info = assert_vector_env_agrees(single, vec, steps=3, seeds=(3, 4))
    assert info["final_tokens"].shape == (16,)  # every token of the canvas


def test_the_adaptive_policy_and_the_nat_discriminator_read_the_position_grid():
    torch.manual_seed(0)
    venv = _make(vector=True, num_envs=4)
    model = make_algo("ppo", to_sb3(venv), lr=1e-3, n_steps=3, minibatch=12, epochs=1, seed=0, device="cpu")
    model.learn(12)
    assert model.policy.features_extractor.net.grid == (2, 2)
    gen = venv.unwrapped.generator
    assert gen.feature_grid == (2, 2) and gen.feature_tokens == 4 and gen.grid_shape == (4, 4)
    from rewards.discriminator import GeneratorFeaturePyramid
    out = GeneratorFeaturePyramid(gen)(torch.rand(2, 3, 16, 16))
    assert out[0].shape == (2, 32, 2, 2)


def test_missing_512_weights_say_none_are_published(monkeypatch):
    monkeypatch.delenv("ADANAT_IMAGENET512_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="no official 512 weights are published.*ADANAT_IMAGENET512_DIR"):
        gym.make("AdaNAT-ImageNet512-v0", device="cpu")


@pytest.mark.slow
def test_the_full_512_preset_takes_a_512px_generation_step_on_cpu():
    torch.manual_seed(0)
    env = gym.make("AdaNAT-ImageNet512-v0", weights="random", device="cpu", steps=2)
    gen = env.unwrapped.generator
    assert gen.image_shape == (3, 512, 512) and gen.num_tokens == 1024 and gen.feature_tokens == 256
    # the 256 L's parameters (the same 16 x 16 positions) plus patch_embed (3072 -> 768) and decoder_pred (768 -> 3072)
    assert sum(p.numel() for p in gen.nat.parameters()) == 198_377_729
    gym_check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs["features"].shape == (256, 768)
    obs, _, _, _, _ = env.step(np.zeros(4, np.float32))
    _, _, term, _, info = env.step(np.zeros(4, np.float32))
    assert term and info["final_tokens"].shape == (1024,)
    images = gen.decode(torch.as_tensor(info["final_tokens"])[None])
    assert images.shape == (1, 3, 512, 512) and bool(torch.isfinite(images).all())
