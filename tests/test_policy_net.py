"""The official policy network design (groundwork for training): manifest equality and its contract."""

from __future__ import annotations

import pytest
import torch

from agents.policy_net import ActorCritic, PolicyNet, step_embedding

from .conftest import load_manifest


@pytest.mark.parametrize("feat_dim,manifest", [(768, "ppo_actorcritic_featdim768.json"),
                                               (512, "ppo_actorcritic_featdim512.json")])
def test_actor_critic_equals_official_manifest(feat_dim, manifest):
    expected, meta = load_manifest(manifest)
    with torch.device("meta"):
        model = ActorCritic(feat_dim)
    got = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert got == expected
    assert sum(torch.Size(s).numel() for s in got.values()) == meta["parameter_count"]


def test_initial_outputs_are_exactly_zero_and_any_grid_works():
    torch.manual_seed(0)
    net = PolicyNet(128, 4, grid=(7, 7))
    out = net(torch.randn(3, 49, 128), torch.tensor([0, 1, 3]))
    assert out.shape == (3, 4) and torch.equal(out, torch.zeros(3, 4))
    with pytest.raises(ValueError, match="49 tokens"):
        net(torch.randn(1, 50, 128), torch.tensor([0]))


def test_step_embedding_cos_first():
    e = step_embedding(torch.tensor([0, 2]))
    assert e.shape == (2, 256)
    assert torch.equal(e[0, :128], torch.ones(128)) and torch.equal(e[0, 128:], torch.zeros(128))
    assert e[1, 0].item() == pytest.approx(torch.cos(torch.tensor(2.0)).item())


def test_gradients_reach_every_layer_after_the_zero_init_opens_up():
    torch.manual_seed(0)
    net = PolicyNet(32, 4, grid=(4, 4))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x, t = torch.randn(8, 16, 32), torch.randint(0, 4, (8,))
    # zero-initialised output and AdaLN layers: step 1 moves linear3, step 2 the modulations, step 3 reaches
    # the step embedder (as with the official initialisation)
    for _ in range(3):
        loss = (net(x, t) - 1).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
