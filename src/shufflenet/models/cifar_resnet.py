"""CIFAR-style ResNets (32x32 input): ResNet-110, the pre-activation ResNet-1001 and Wide ResNet-28-10.

They are the thin-deep vs wide pair of the observation that FLOPs do not predict speed: a wide, shallow
network runs faster than a thin, deep one of fewer FLOPs, because it is fewer, larger kernels (ShuffleNet
V2 paper, Sec. 2, G3: fragmentation reduces parallelism) — the ``resnets`` suite measures it.

- **ResNet-110** (He et al., "Deep Residual Learning", CVPR 2016, Sec. 4.2): a 3x3 conv of 16 channels,
  three stages of n = 18 basic blocks (two 3x3 convs) at 16 / 32 / 64 channels on 32 / 16 / 8 px maps,
  the first block of stages 2 and 3 at stride 2; identity shortcuts, zero-padded where the width doubles
  ("option A"); 6n + 2 = 110 layers, 1.7 M params (Table 6).
- **ResNet-1001** (He et al., "Identity Mappings in Deep Residual Networks", ECCV 2016, Sec. 4 / Table 2):
  pre-activation bottleneck blocks (BN-ReLU-1x1, BN-ReLU-3x3, BN-ReLU-1x1, 4x expansion), n = 111 per
  stage at 64 / 128 / 256 output channels, 1x1 projection shortcuts where the shape changes;
  9n + 2 = 1001 layers, 10.2 M params.
- **WRN-28-10** (Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016, Sec. 2 / Table 1):
  pre-activation basic blocks, n = 4 per stage at 16k / 32k / 64k = 160 / 320 / 640 channels (k = 10),
  1x1 projection shortcuts where the shape changes; 6n + 4 = 28 layers, 36.5 M params (Table 4).

The papers give parameters, not multiply-adds, so only ``mparams`` is declared. All three are built for
32x32 CIFAR images (``small_input`` is accepted and changes nothing); they take any input of at least
8 px (total stride 4, and a last map of at least 2x2).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from shufflenet.models._base import Classifier, init_kaiming
from shufflenet.models._checks import check_choice, check_classifier_args, check_int
from shufflenet.models._registry import PaperRef, register_model
from shufflenet.models.layers import ConvBNAct

CIFAR_CLASSES = 10
STAGE_STRIDES = (1, 2, 2)
BLOCK_KINDS = ("basic", "preact_basic", "preact_bottleneck")


class BasicBlock(nn.Module):
    """Post-activation basic block (He et al. 2016, Fig. 2 left) with the zero-padded identity shortcut of
    its CIFAR experiments (option A, Sec. 4.2): no parameters on the shortcut, as in the 1.7 M of Table 6."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(in_channels, out_channels, 3, stride)
        self.conv2 = ConvBNAct(out_channels, out_channels, 3, 1, relu=False)
        self.stride = stride
        self.pad = out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x[:, :, ::self.stride, ::self.stride] if self.stride > 1 else x
        if self.pad:
            shortcut = nn.functional.pad(shortcut, (0, 0, 0, 0, 0, self.pad))
        return torch.relu(self.conv2(self.conv1(x)) + shortcut)


def _bn_relu(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


class PreActBlock(nn.Module):
    """Pre-activation residual block (He et al., "Identity Mappings", Fig. 4(e)): BN-ReLU before every conv;
    a 1x1 projection on the pre-activated input where the shape changes.

    ``bottleneck=False``: two 3x3 convs (WRN's basic block, Zagoruyko & Komodakis Fig. 1(a) widened);
    ``bottleneck=True``: 1x1 to ``out/4``, 3x3, 1x1 to ``out`` (ResNet-1001's block).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, bottleneck: bool) -> None:
        super().__init__()
        self.pre = _bn_relu(in_channels)
        if bottleneck:
            mid = out_channels // 4
            self.body = nn.Sequential(
                nn.Conv2d(in_channels, mid, 1, bias=False), _bn_relu(mid),
                nn.Conv2d(mid, mid, 3, stride, 1, bias=False), _bn_relu(mid),
                nn.Conv2d(mid, out_channels, 1, bias=False))
        else:
            self.body = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False), _bn_relu(out_channels),
                nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False))
        self.project = (nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)
                        if stride != 1 or in_channels != out_channels else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.pre(x)
        shortcut = self.project(pre) if self.project is not None else x
        return self.body(pre) + shortcut


class CifarResNet(Classifier):
    """A three-stage CIFAR ResNet: a 3x3 conv of 16 channels, ``depth`` blocks per stage at ``widths``,
    global average pool, FC (He et al. 2016, Sec. 4.2).

    Args:
        block: ``"basic"`` (ResNet-110), ``"preact_basic"`` (WRN) or ``"preact_bottleneck"`` (ResNet-1001).
        depth: blocks per stage (n).
        widths: output channels of the three stages.
        small_input: accepted for the common interface; these networks are built for 32x32 already.
        drop_rate: dropout before the classifier.
    """

    def __init__(
        self,
        block: str,
        depth: int,
        widths: tuple[int, int, int],
        *,
        num_classes: int = CIFAR_CLASSES,
        in_chans: int = 3,
        small_input: bool = False,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        check_choice("block", block, BLOCK_KINDS)
        check_int("depth", depth, 1)
        for w in widths:
            check_int("widths", w, 4)
        check_classifier_args(num_classes, in_chans, drop_rate, small_input)
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.block = block
        self.depth = depth
        self.stem = (ConvBNAct(in_chans, 16, 3) if block == "basic"
                     else nn.Conv2d(in_chans, 16, 3, 1, 1, bias=False))  # pre-activation: the block's BN follows
        prev = 16
        stages = []
        for width, stride in zip(widths, STAGE_STRIDES, strict=True):
            units = []
            for i in range(depth):
                s = stride if i == 0 else 1
                if block == "basic":
                    units.append(BasicBlock(prev, width, s))
                else:
                    units.append(PreActBlock(prev, width, s, bottleneck=block == "preact_bottleneck"))
                prev = width
            stages.append(nn.Sequential(*units))
        self.stages = nn.Sequential(OrderedDict((f"stage{i + 1}", s) for i, s in enumerate(stages)))
        # Pre-activation networks end with the BN-ReLU their last block's output has not had yet.
        self.final = _bn_relu(prev) if block != "basic" else nn.Identity()
        self.num_features = prev
        # Total stride 4, but a 1x1 last stage trains on batch statistics of a handful of values, which
        # ResNet-1001's 333 blocks amplify into overflow; 8 px keeps a 2x2 map.
        self.min_input_size = 8
        self.fc = nn.Linear(prev, num_classes)
        init_kaiming(self, fc_std=None, zero_fc_bias=False)  # He et al. 2015 init (the CIFAR ResNets' own)


    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.final(self.stages(self.stem(x)))


@register_model("resnet110_cifar", paper=PaperRef(None, 1.7, "He et al. 2016 (CVPR) Table 6: ResNet-110, 1.7 M"),
                input_size=32)
def resnet110_cifar(**kwargs: Any) -> CifarResNet:
    """ResNet-110 for CIFAR: 3 x 18 basic blocks at 16/32/64 channels, 1.7 M params."""
    return CifarResNet("basic", 18, (16, 32, 64), **kwargs)


@register_model("resnet1001_cifar",
                paper=PaperRef(None, 10.2, "He et al. 2016 (ECCV, Identity Mappings) Table 2: ResNet-1001, 10.2 M"),
                input_size=32)
def resnet1001_cifar(**kwargs: Any) -> CifarResNet:
    """Pre-activation ResNet-1001 for CIFAR: 3 x 111 bottleneck blocks at 64/128/256 channels, 10.2 M params."""
    return CifarResNet("preact_bottleneck", 111, (64, 128, 256), **kwargs)


@register_model("wrn_28_10", paper=PaperRef(None, 36.5, "Zagoruyko & Komodakis 2016 Table 4: WRN-28-10, 36.5 M"),
                input_size=32)
def wrn_28_10(**kwargs: Any) -> CifarResNet:
    """Wide ResNet-28-10 for CIFAR: 3 x 4 pre-activation basic blocks at 160/320/640 channels, 36.5 M params."""
    return CifarResNet("preact_basic", 4, (160, 320, 640), **kwargs)
