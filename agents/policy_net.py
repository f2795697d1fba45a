"""The official AdaNAT policy / value network design, checkpoint-compatible (groundwork for the training issue).

``PolicyNet`` maps a state {features (B, N, F), step (B,)} to (B, out):

1. ``x_embedder``: Linear(F -> 512) per token (absent when F = 512, as in the official code);
2. ``t_embedder``: 256-d sinusoidal embedding of the integer step (cos half first), Linear -> SiLU -> Linear;
3. ``adaLN1``: LayerNorm without affine (eps 1e-6), then ``x * (1 + scale) + shift`` with
   ``[shift, scale] = Linear(SiLU(c))`` (shift first), broadcast over the tokens;
4. tokens to a (B, 512, h, w) grid (row-major), depthwise 3x3 conv (stride 2, pad 1) -> GELU, pointwise
   1x1 conv 512 -> 128 -> GELU, flatten in (C, H, W) order;
5. Linear -> adaLN2 -> GELU -> Linear -> adaLN3 -> GELU -> Linear(out).

Initialisation as the official code: xavier-uniform Linear weights with zero bias, step-MLP weights N(0, 0.02),
every AdaLN modulation and the output layer zeroed, so the initial output is exactly 0. With the official
16 x 16 grid and F = 768 the state-dict keys and shapes equal ``ppo_actorcritic_featdim768.json``; other grids
(e.g. 7 x 7 for Fashion-MNIST) change only ``linear1``'s input width. ``hidden`` below 512 scales every width
down in the same proportions (:class:`PolicyTrunk`, :func:`default_width`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PolicyTrunk", "PolicyNet", "ActorCritic", "step_embedding", "LATENT_DIM", "default_width"]

#: Width of the official trunk's output (the input of the official ``linear3`` head).
LATENT_DIM = 512


def default_width(feat_dim: int) -> int:
    """The trunk width for a NAT with ``feat_dim``-d features: ``min(512, feat_dim)`` (rounded down to a multiple
    of 4).

    Both official backbones (S: 512, L: 768) get the official 512. A smaller generator gets a policy scaled to
    it. The official actor and critic have 12% of the NAT-L's parameters. A 512-wide pair on the embedded
    default's 128-d, 1.1 M-parameter NAT would have 9.4x the NAT's parameters, and would cost 0.84 s of a
    512-image rollout (31% of the raw sampler's time, measured with ``benchmarks/bench_training.py``). With
    ``feat_dim <= 512`` there is no ``x_embedder``, as for the official S.
    """
    return max(4, min(LATENT_DIM, feat_dim) // 4 * 4)


def step_embedding(step: torch.Tensor, dim: int = 256, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding (B, dim) of integer steps (B,): ``[cos(t f_i), sin(t f_i)]``, f_i = exp(-ln(P) i / half)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=step.device) / half)
    args = step.float().reshape(-1, 1) * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class _StepEmbedder(nn.Module):
    def __init__(self, hidden: int, freq_dim: int = 256) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, step: torch.Tensor) -> torch.Tensor:
        return self.mlp(step_embedding(step, self.freq_dim))


class _AdaLN(nn.Module):
    def __init__(self, dim: int, cond_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 2 * dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        if x.dim() == 3:
            shift, scale = shift[:, None], scale[:, None]
        return self.norm(x) * (1 + scale) + shift


class PolicyTrunk(nn.Module):
    """Everything of :class:`PolicyNet` but the output layer: (features, step) -> (B, 512) latent.

    The SB3 policy (:mod:`agents.policies`) uses one trunk for the actor and one for the critic as its features
    extractors, with SB3's ``action_net`` / ``value_net`` playing the official ``linear3``.

    The widths scale with ``hidden`` as in the official network (hidden 512): pointwise conv to ``hidden / 4``
    channels, ``linear1`` to ``2 * hidden``, ``linear2`` to ``hidden`` (the latent). ``hidden=512`` is the
    official, checkpoint-compatible network; :func:`default_width` picks it for the official backbones.

    :param feat_dim: F, the NAT feature dimension.
    :param grid: (h, w) token grid (h * w = N).
    :param hidden: 512 officially.
    """

    def __init__(self, feat_dim: int, grid: tuple[int, int] = (16, 16), hidden: int = 512) -> None:
        super().__init__()
        if hidden < 4 or hidden % 4:
            raise ValueError(f"the policy width must be a positive multiple of 4, got {hidden}")
        self.grid = tuple(grid)
        self.hidden = hidden
        self.latent_dim = hidden
        if feat_dim != hidden:
            self.x_embedder = nn.Linear(feat_dim, hidden)
        self.t_embedder = _StepEmbedder(hidden)
        self.adaLN1 = _AdaLN(hidden, hidden)
        self.dw_conv = nn.Conv2d(hidden, hidden, 3, stride=2, padding=1, groups=hidden)
        self.pw_conv = nn.Conv2d(hidden, hidden // 4, 1)
        h2, w2 = (self.grid[0] + 1) // 2, (self.grid[1] + 1) // 2
        self.linear1 = nn.Linear(hidden // 4 * h2 * w2, 2 * hidden)
        self.adaLN2 = _AdaLN(2 * hidden, hidden)
        self.linear2 = nn.Linear(2 * hidden, hidden)
        self.adaLN3 = _AdaLN(hidden, hidden)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        for lin in (self.t_embedder.mlp[0], self.t_embedder.mlp[2]):
            nn.init.normal_(lin.weight, std=0.02)
        for ada in (self.adaLN1, self.adaLN2, self.adaLN3):
            nn.init.zeros_(ada.adaLN_modulation[1].weight)
            nn.init.zeros_(ada.adaLN_modulation[1].bias)

    def forward(self, features: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """:param features: (B, N, F). :param step: (B,) or (B, 1) integer steps. :return: (B, hidden)."""
        b, n, _ = features.shape
        h, w = self.grid
        if n != h * w:
            raise ValueError(f"expected {h * w} tokens for grid {self.grid}, got {n}")
        x = self.x_embedder(features) if hasattr(self, "x_embedder") else features
        c = self.t_embedder(step.reshape(-1))
        x = self.adaLN1(x, c)
        x = x.transpose(1, 2).reshape(b, self.hidden, h, w)
        x = F.gelu(self.pw_conv(F.gelu(self.dw_conv(x))))
        x = F.gelu(self.adaLN2(self.linear1(x.flatten(1)), c))
        return F.gelu(self.adaLN3(self.linear2(x), c))


class PolicyNet(PolicyTrunk):
    """The official network: :class:`PolicyTrunk` + ``linear3`` (zero-initialised), see module docstring.

    :param feat_dim: F, the NAT feature dimension.
    :param out_dim: 4 for the actor, 1 for the critic.
    :param grid: (h, w) token grid (h * w = N).
    :param hidden: 512 officially.
    """

    def __init__(self, feat_dim: int, out_dim: int, grid: tuple[int, int] = (16, 16), hidden: int = 512) -> None:
        super().__init__(feat_dim, grid, hidden)
        self.linear3 = nn.Linear(self.latent_dim, out_dim)
        nn.init.zeros_(self.linear3.weight)
        nn.init.zeros_(self.linear3.bias)

    def forward(self, features: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """:param features: (B, N, F). :param step: (B,) or (B, 1) integer steps. :return: (B, out)."""
        return self.linear3(super().forward(features, step))


class ActorCritic(nn.Module):
    """``actor`` (4 outputs) and ``critic`` (1 output) PolicyNets, named as in the official checkpoints."""

    def __init__(self, feat_dim: int, grid: tuple[int, int] = (16, 16), action_dim: int = 4) -> None:
        super().__init__()
        self.actor = PolicyNet(feat_dim, action_dim, grid)
        self.critic = PolicyNet(feat_dim, 1, grid)
