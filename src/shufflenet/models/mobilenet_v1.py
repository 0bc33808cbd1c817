"""MobileNet V1 (Howard et al., 2017, arXiv 1704.04861) as the comparison network of the V1/V2 papers.

Body (MobileNet paper Table 1): a 3x3 stride-2 conv of 32 channels, then 13 depthwise-separable blocks
(3x3 depthwise BN ReLU, 1x1 pointwise BN ReLU) with output channels 64, 128 (s2), 128, 256 (s2), 256,
512 (s2), 512 x5, 1024 (s2), 1024; global average pool; FC. The width multiplier ``alpha`` (Sec. 3.3) gives
every layer ``int(c * alpha)`` channels. Complexity at 224x224 (MobileNet paper Table 6/7, quoted in the
V2 paper's Table 8 and the V1 paper's Table 5): 569 / 325 / 149 / 41 MFLOPs and
4.2 / 2.6 / 1.3 / 0.5 M params for alpha = 1.0 / 0.75 / 0.5 / 0.25.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from shufflenet.models._base import Classifier, init_kaiming
from shufflenet.models._checks import check_classifier_args, check_float
from shufflenet.models._registry import PaperRef, register_model
from shufflenet.models.layers import ConvBNAct

# (output channels, stride) of the 13 depthwise-separable blocks (MobileNet paper Table 1).
BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)
STEM_CHANNELS = 32


class DepthwiseSeparable(nn.Sequential):
    """``dw``: 3x3 depthwise conv BN ReLU; ``pw``: 1x1 conv BN ReLU (MobileNet paper Fig. 3 right)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__(OrderedDict(
            dw=ConvBNAct(in_channels, in_channels, 3, stride, groups=in_channels),
            pw=ConvBNAct(in_channels, out_channels, 1),
        ))


class MobileNetV1(Classifier):
    """MobileNet V1 classifier.

    Args:
        width_mult: the paper's width multiplier alpha; every layer has ``int(c * alpha)`` channels.
        small_input: stem for 28-64 px images: a stride-1 first conv (total stride 16, not 32).
        drop_rate: dropout before the classifier.
    """

    def __init__(
        self,
        width_mult: float = 1.0,
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        small_input: bool = False,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        check_float("width_mult", width_mult, above=0.0)
        check_classifier_args(num_classes, in_chans, drop_rate, small_input)

        def width(c: int) -> int:
            return max(1, int(c * width_mult))

        self.width_mult = width_mult
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        prev = width(STEM_CHANNELS)
        self.stem = ConvBNAct(in_chans, prev, 3, 1 if small_input else 2)
        blocks = []
        total_stride = 1 if small_input else 2
        for c, stride in BLOCKS:
            blocks.append(DepthwiseSeparable(prev, width(c), stride))
            prev = width(c)
            total_stride *= stride
        self.blocks = nn.Sequential(*blocks)
        self.num_features = prev
        # Total stride: smallest input whose last feature map is not produced from padding alone.
        self.min_input_size = total_stride
        self.fc = nn.Linear(prev, num_classes)
        init_kaiming(self)  # Standard init (torchvision's MobileNets)


    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))


_SRC = "MobileNet V1 paper Table 6/7 (via V2 Table 8)"


@register_model("mobilenet_v1_x0_25", paper=PaperRef(41, 0.5, _SRC))
def mobilenet_v1_x0_25(**kwargs: Any) -> MobileNetV1:
    """0.25 MobileNet-224: 41 MFLOPs, 0.5 M params."""
    return MobileNetV1(0.25, **kwargs)


@register_model("mobilenet_v1_x0_5", paper=PaperRef(149, 1.3, _SRC))
def mobilenet_v1_x0_5(**kwargs: Any) -> MobileNetV1:
    """0.5 MobileNet-224: 149 MFLOPs, 1.3 M params."""
    return MobileNetV1(0.5, **kwargs)


@register_model("mobilenet_v1_x0_75", paper=PaperRef(325, 2.6, _SRC))
def mobilenet_v1_x0_75(**kwargs: Any) -> MobileNetV1:
    """0.75 MobileNet-224: 325 MFLOPs, 2.6 M params."""
    return MobileNetV1(0.75, **kwargs)


@register_model("mobilenet_v1_x1_0", paper=PaperRef(569, 4.2, _SRC))
def mobilenet_v1_x1_0(**kwargs: Any) -> MobileNetV1:
    """1.0 MobileNet-224: 569 MFLOPs, 4.2 M params."""
    return MobileNetV1(1.0, **kwargs)
