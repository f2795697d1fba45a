"""Acceptance 4 of the training issue: the official policy checkpoint format loads into the ImageNet-256 actor;
malicious pickles are refused."""

from __future__ import annotations

import argparse
import os

import numpy as np
import pytest
import torch
from gymnasium import spaces

from adanat_env.checkpoint import CheckpointMismatchError, UnsafeCheckpointError
from agents.official import load_official_policy, official_to_sb3
from agents.policies import AdaNATPolicy
from tests.conftest import load_manifest


def _imagenet_policy(feat_dim: int = 768) -> AdaNATPolicy:
    obs = spaces.Dict({
        "features": spaces.Box(-np.inf, np.inf, (256, feat_dim), dtype=np.float32),
        "step": spaces.Box(0, 8, (1,), dtype=np.int64),
        "label": spaces.Box(0, 999, (1,), dtype=np.int64),
    })
    return AdaNATPolicy(obs, spaces.Box(-10, 10, (4,), dtype=np.float32), lambda _: 1e-5)


def _synthetic_official(path, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors with the manifest's keys and shapes, saved as the official train.py does."""
    shapes, meta = load_manifest("ppo_full_model_key_featdim768.json")
    assert meta["num_keys"] == len(shapes) == 88
    g = torch.Generator().manual_seed(seed)
    model = {k: torch.randn(*s, generator=g) * 0.02 for k, s in shapes.items()}
    args = argparse.Namespace(gen_steps=8, heu=0, batch_size=128, lr=1e-5, upd_set="ratio,temp,samp_temp,cfg")
    torch.save({"model": model, "args": args, "optimizer": {"state": {}, "param_groups": []},
                "global_step": 1000, "num_trajectories": 4096000, "num_agent_updates": 1000,
                "num_discriminator_updates": 5000}, path)
    return model


def test_manifest_shapes_map_exactly_onto_the_sb3_policy():
    shapes, _ = load_manifest("ppo_full_model_key_featdim768.json")
    fake = {k: torch.zeros(s) for k, s in shapes.items()}
    mapped = official_to_sb3({"model": fake})
    own = _imagenet_policy().state_dict()
    # (SB3 also lists the actor's extractor as ``features_extractor.*``: the same module)
    assert set(mapped) == {k for k in own if k != "log_std" and not k.startswith("features_extractor.")}
    assert all(tuple(own[k].shape) == tuple(v.shape) for k, v in mapped.items())


def test_synthetic_official_checkpoint_loads_into_imagenet_actor(tmp_path):
    model = _synthetic_official(tmp_path / "ckpt_1000.pth")
    policy = _imagenet_policy()
    meta = load_official_policy(policy, tmp_path / "ckpt_1000.pth")
    assert meta["args"]["heu"] == 0 and meta["global_step"] == 1000 and meta["critic"]
    sd = policy.state_dict()
    assert torch.equal(sd["action_net.weight"], model["policy_old.actor.linear3.weight"])
    assert torch.equal(sd["pi_features_extractor.net.x_embedder.weight"], model["policy_old.actor.x_embedder.weight"])
    assert torch.equal(sd["vf_features_extractor.net.dw_conv.weight"], model["policy_old.critic.dw_conv.weight"])
    # the loaded actor computes what the official network computes with those weights
    from agents.policy_net import PolicyNet

    ref = PolicyNet(768, 4)
    ref.load_state_dict({k[len("policy_old.actor."):]: v for k, v in model.items() if k.startswith("policy_old.actor.")})
    feats, step = torch.randn(2, 256, 768), torch.tensor([[0], [5]])
    with torch.no_grad():
        ours = policy.get_distribution({"features": feats, "step": step, "label": torch.zeros(2, 1)}).distribution.mean
        assert torch.allclose(ours, ref(feats, step), atol=1e-5)


def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"model": {}, "args": Evil()}, tmp_path / "evil.pth")
    policy = _imagenet_policy()
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    with pytest.raises(UnsafeCheckpointError, match="Nothing in it was executed"):
        load_official_policy(policy, tmp_path / "evil.pth")
    assert not marker.exists()
    assert all(torch.equal(before[k], v) for k, v in policy.state_dict().items())


def test_wrong_feature_dim_is_a_clear_mismatch_and_leaves_policy_untouched(tmp_path):
    _synthetic_official(tmp_path / "l.pth")
    policy = _imagenet_policy(feat_dim=512)  # S backbone: no x_embedder, so keys differ
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    with pytest.raises(CheckpointMismatchError, match="x_embedder"):
        load_official_policy(policy, tmp_path / "l.pth")
    assert all(torch.equal(before[k], v) for k, v in policy.state_dict().items())
