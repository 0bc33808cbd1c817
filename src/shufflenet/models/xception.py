"""The ShuffleNet V2 paper's light-weight Xception ("Xception (our impl.)", V2 paper Table 8).

**Published.** V2 paper Table 8: "Xception (our impl.)" at 0.5x / 1x / 1.5x / 2x has 40 / 145 / 305 / 525
MFLOPs and 44.9 / 34.1 / 29.4 / 27.6 % top-1 error; the text says it is "the light-weight Xception variant
from Light-Head R-CNN [34]", and Sec. 5 (detection) credits Xception's accuracy to the receptive field of
its building block, 7 against ShuffleNet v2's 3, i.e. three stacked 3x3 depthwise convs per block.
Light-Head R-CNN (Li et al., 2017, arXiv 1711.07264) Table 7 gives that network at 1x, 145 MFLOPs:
Conv1 3x3, 24 channels, stride 2; 3x3 max pool, stride 2; Stage2 / Stage3 / Stage4 with 144 / 288 / 576
output channels at 28x28 / 14x14 / 7x7 and 4 / 8 / 4 blocks (the first of each with stride 2); global average
pool; FC. Its text: following Xception's design, every convolution of a bottleneck block becomes a
depthwise separable one, and the blocks keep post-activation (not the pre-activation of Identity Mappings).
Neither paper gives the bottleneck width, the shortcut of a downsampling block, nor any width except 1x.

**The block** (:class:`XceptionUnit`, :class:`XceptionDownUnit`); its form is the published one, its details
(BN/ReLU placement, where the stride sits, the projection shortcut) are reconstructed: a post-activation
residual bottleneck whose three convs are separable convs, ``[3x3 DW BN, 1x1 BN ReLU] (c -> m)``,
``[3x3 DW BN, 1x1 BN ReLU] (m -> m)``, ``[3x3 DW BN, 1x1 BN] (m -> c)``, added to the shortcut, then ReLU.
No ReLU between a depthwise conv and its pointwise conv (Xception paper Sec. 4.7 finds that best; megvii's
``Shuffle_Xception`` block in ShuffleNet-Series does the same). The first unit of a stage has its stride on
the first depthwise conv and a 1x1 stride-2 conv + BN as shortcut (Xception's entry-flow shortcut; ResNet's
projection).

**Reconstructed here** (chosen so that Table 8's FLOPs come out; nothing below is published):

- The bottleneck width ``m``: 28 / 56 / 112 at 1x, i.e. ``round(c * 28 / 144)`` (:func:`bottleneck_width`).
  ResNet's 1/4 (36 / 72 / 144) gives 179.0 MFLOPs (+23%), so the 1x network's ``m`` must be narrower; with
  Light-Head's published stage widths, 28 / 56 / 112 gives 144.3 (27 / 54 / 108: 140.1; 29 / 58 / 116: 148.6).
- 1.5x and 2x: every stage and bottleneck width of 1x times 1.5 / 2 (216 / 432 / 864 with 42 / 84 / 168;
  288 / 576 / 1152 with 56 / 112 / 224); the stem stays at 24 channels, as in V1 Table 1 and V2 Table 5.
- 0.5x: 64 / 128 / 256 with bottlenecks 13 / 26 / 52. Halving 1x (72 / 144 / 288 with 14 / 28 / 56) gives
  46.1 MFLOPs (+15%) because the 24-channel stem (8.1 MFLOPs) does not shrink. Of the stage-2 widths that
  are multiples of 4 and land within 2% of 40 MFLOPs (with bottleneck and stage widths doubling per stage),
  64 with 13 has the ratio ``c / m`` nearest 1x's 144 / 28 (4.9 against 5.1; 68 / 12 and 60 / 14 come next).

**Complexity** at 224x224, counted with ``shufflenet.cost.count_cost``: conv + FC multiply-adds only, the
papers' "FLOPs" (BN, ReLU, max pool, the residual adds and the global pool count zero): 40.00 / 144.34 /
303.05 / 522.23 MFLOPs, i.e. -0.0 / -0.5 / -0.6 / -0.5% from Table 8. Parameters (all of them, BN
included; not published): 0.52 / 1.72 / 3.36 / 5.53 M.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from shufflenet.errors import UserInputError
from shufflenet.models._base import Classifier, init_official
from shufflenet.models._checks import MAX_CHANNELS, check_classifier_args, check_int, check_int_sequence
from shufflenet.models._registry import PaperRef, register_model
from shufflenet.models.layers import ConvBNAct

STAGE_REPEATS: tuple[int, ...] = (4, 8, 4)  # Light-Head Table 7: 1 stride-2 + 3 / 7 / 3 stride-1 blocks
STEM_CHANNELS = 24                          # Light-Head Table 7 Conv1
# Per width: (stage output channels, bottleneck channels). 1x stage widths: Light-Head Table 7; every
# bottleneck and every other width is reconstructed (module docstring).
CHANNELS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "0.5": ((64, 128, 256), (13, 26, 52)),
    "1.0": ((144, 288, 576), (28, 56, 112)),
    "1.5": ((216, 432, 864), (42, 84, 168)),
    "2.0": ((288, 576, 1152), (56, 112, 224)),
}


def bottleneck_width(channels: int) -> int:
    """The reconstructed bottleneck of a ``channels``-wide block: ``round(channels * 28 / 144)``.

    28 / 144 is the 1x network's stage-2 ratio; it gives 28 / 56 / 112 for 144 / 288 / 576 channels.
    """
    channels = check_int("channels", channels, 1, MAX_CHANNELS)
    return max(1, (channels * 28 + 72) // 144)


class SeparableConvBN(nn.Sequential):
    """``dw``: 3x3 depthwise conv BN (no ReLU); ``pw``: 1x1 conv BN [ReLU] (Xception's separable conv)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, relu: bool = True) -> None:
        super().__init__(OrderedDict(
            dw=ConvBNAct(in_channels, in_channels, 3, stride, groups=in_channels, relu=False),
            pw=ConvBNAct(in_channels, out_channels, 1, relu=relu),
        ))


def _branch(in_channels: int, mid_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict(
        sep1=SeparableConvBN(in_channels, mid_channels, stride),
        sep2=SeparableConvBN(mid_channels, mid_channels),
        sep3=SeparableConvBN(mid_channels, out_channels, relu=False),
    ))


def _check_widths(*pairs: tuple[str, Any]) -> list[int]:
    return [check_int(name, value, 1, MAX_CHANNELS) for name, value in pairs]


class XceptionUnit(nn.Module):
    """The block the network stacks: stride 1, ``channels`` in and out (receptive field 7).

    ``branch`` = ``sep1`` (3x3 DW BN, 1x1 to ``mid`` BN ReLU), ``sep2`` (3x3 DW BN, 1x1 ``mid -> mid`` BN
    ReLU), ``sep3`` (3x3 DW BN, 1x1 back to ``channels`` BN); the output is ``ReLU(branch(x) + x)``
    (Light-Head R-CNN's text on its Table 7 network: Xception-style bottleneck, post-activation; V2 paper
    Sec. 5: receptive field 7). Built from a width alone (``XceptionUnit(c)``), as the unit suite's builders are.

    Args:
        channels: input = output channels.
        mid_channels: the bottleneck width; default :func:`bottleneck_width` (``round(c * 28 / 144)``).
    """

    def __init__(self, channels: int, mid_channels: int | None = None) -> None:
        super().__init__()
        mid = bottleneck_width(channels) if mid_channels is None else mid_channels
        channels, mid = _check_widths(("channels", channels), ("mid_channels", mid))
        self.in_channels = self.out_channels = channels
        self.mid_channels = mid
        self.branch = _branch(channels, mid, channels, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.branch(x) + x)


class XceptionDownUnit(nn.Module):
    """The first block of a stage: stride 2, ``in_channels -> out_channels``, with a projection shortcut.

    ``branch`` as :class:`XceptionUnit`'s with the stride on ``sep1``'s depthwise conv; ``shortcut`` is a
    1x1 stride-2 conv + BN (Xception's entry-flow shortcut, ResNet's projection); the output is
    ``ReLU(branch(x) + shortcut(x))``.
    """

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int | None = None,
                 stride: int = 2) -> None:
        super().__init__()
        mid = bottleneck_width(out_channels) if mid_channels is None else mid_channels
        in_channels, out_channels, mid = _check_widths(
            ("in_channels", in_channels), ("out_channels", out_channels), ("mid_channels", mid))
        stride = check_int("stride", stride, 1, 2)
        self.in_channels, self.out_channels, self.mid_channels = in_channels, out_channels, mid
        self.stride = stride
        self.branch = _branch(in_channels, mid, out_channels, stride)
        self.shortcut = ConvBNAct(in_channels, out_channels, 1, stride, relu=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.branch(x) + self.shortcut(x))


class XceptionLight(Classifier):
    """The light-weight Xception of Light-Head R-CNN Table 7, as the V2 paper's Table 8 compares it.

    Args:
        stage_channels: output channels of each stage (Light-Head Table 7 at 1x: 144, 288, 576).
        mid_channels: each stage's bottleneck width; default :func:`bottleneck_width` of its channels.
        stage_repeats: blocks per stage, the first one downsampling (Table 7: 4, 8, 4).
        stem_channels: Conv1 output channels (Table 7: 24).
        small_input: for 28-64 px images: a stride-1 Conv1 and no max pool (total stride 8, not 32).
        drop_rate: dropout before the classifier.
    """

    def __init__(
        self,
        stage_channels: Sequence[int] = CHANNELS["1.0"][0],
        mid_channels: Sequence[int] | None = None,
        stage_repeats: Sequence[int] = STAGE_REPEATS,
        stem_channels: int = STEM_CHANNELS,
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        small_input: bool = False,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        stages = check_int_sequence("stage_channels", stage_channels)
        repeats = check_int_sequence("stage_repeats", stage_repeats)
        if len(repeats) != len(stages):
            raise UserInputError(f"stage_repeats has {len(repeats)} entries but stage_channels has "
                                 f"{len(stages)}: give one repeat count per stage")
        if mid_channels is None:
            mids = tuple(bottleneck_width(c) for c in stages)
        else:
            mids = check_int_sequence("mid_channels", mid_channels)
            if len(mids) != len(stages):
                raise UserInputError(f"mid_channels has {len(mids)} entries but stage_channels has "
                                     f"{len(stages)}: give one bottleneck width per stage")
        stem_channels = check_int("stem_channels", stem_channels, 1, MAX_CHANNELS)
        check_classifier_args(num_classes, in_chans, drop_rate, small_input)

        self.stage_channels, self.mid_channels, self.stage_repeats = stages, mids, repeats
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.stem = ConvBNAct(in_chans, stem_channels, 3, 1 if small_input else 2)
        self.maxpool: nn.Module = nn.Identity() if small_input else nn.MaxPool2d(3, 2, 1)
        total_stride = 1 if small_input else 4
        prev = stem_channels
        self.stage_names: list[str] = []
        for i, (c, m, n) in enumerate(zip(stages, mids, repeats, strict=True)):
            units: list[nn.Module] = [XceptionDownUnit(prev, c, m)]
            units += [XceptionUnit(c, m) for _ in range(n - 1)]
            setattr(self, f"stage{i + 2}", nn.Sequential(*units))
            self.stage_names.append(f"stage{i + 2}")
            total_stride *= 2
            prev = c
        self.num_features = prev
        # Total stride: the smallest input whose last feature map is not produced from padding alone.
        self.min_input_size = total_stride
        self.fc = nn.Linear(prev, num_classes)
        # The V2 paper's team re-implemented this network; start it as their released ShuffleNets start.
        init_official(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.stem(x))
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return x


def _light(width: str, **kwargs: Any) -> XceptionLight:
    stages, mids = CHANNELS[width]
    return XceptionLight(stages, mids, STAGE_REPEATS, STEM_CHANNELS, **kwargs)


_SRC = "ShuffleNet V2 Table 8 (our impl.); widths reconstructed"


@register_model("xception_light_x0_5", paper=PaperRef(40, None, _SRC, tolerance=0.03))
def xception_light_x0_5(**kwargs: Any) -> XceptionLight:
    """Xception 0.5x (our impl.), stages 64/128/256: 40 MFLOPs, 44.9% top-1 error (V2 paper Table 8)."""
    return _light("0.5", **kwargs)


@register_model("xception_light_x1_0", paper=PaperRef(145, None, _SRC, tolerance=0.03))
def xception_light_x1_0(**kwargs: Any) -> XceptionLight:
    """Xception 1x (our impl.), Light-Head Table 7's 144/288/576: 145 MFLOPs, 34.1% error (V2 Table 8)."""
    return _light("1.0", **kwargs)


@register_model("xception_light_x1_5", paper=PaperRef(305, None, _SRC, tolerance=0.03))
def xception_light_x1_5(**kwargs: Any) -> XceptionLight:
    """Xception 1.5x (our impl.), stages 216/432/864: 305 MFLOPs, 29.4% top-1 error (V2 paper Table 8)."""
    return _light("1.5", **kwargs)


@register_model("xception_light_x2_0", paper=PaperRef(525, None, _SRC, tolerance=0.03))
def xception_light_x2_0(**kwargs: Any) -> XceptionLight:
    """Xception 2x (our impl.), stages 288/576/1152: 525 MFLOPs, 27.6% top-1 error (V2 paper Table 8)."""
    return _light("2.0", **kwargs)
