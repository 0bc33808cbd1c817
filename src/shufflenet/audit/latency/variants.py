"""Random ShuffleNet-V2-like networks: the design space a designer searches over (and the latency
predictor's held-out test networks).

A variant keeps Table 5's macro-structure (stem conv, max pool, three stages of units whose first unit
downsamples, a 1x1 conv, global pool, classifier) and ShuffleNet V2's unit (Fig. 3c/d: channel split,
1x1 conv, depthwise conv, 1x1 conv, concat, channel shuffle), and draws at random what a search would vary:
the stage widths and depths, the depthwise kernel size (3/5/7), the group count of the unit's 1x1 convs
(1, 2 or 4, with a channel shuffle after the first one when grouped, as ShuffleNet V1 does), SE blocks,
the stem width, the last conv's width and the input resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from shufflenet.models.layers import SqueezeExcite, channel_shuffle
from shufflenet.models.shufflenet_v2 import ShuffleNetV2


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(cout)]
    return layers + [nn.ReLU(inplace=True)] if relu else layers


class VariantUnit(nn.Module):
    """A ShuffleNet V2 unit with a ``kernel`` x ``kernel`` depthwise conv and ``groups``-group 1x1 convs."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, *, kernel: int = 3, groups: int = 1,
                 se: bool = False, **_: Any) -> None:
        super().__init__()
        self.basic = stride == 1 and in_channels == out_channels
        self.groups = groups
        half = out_channels // 2
        main_in = half if self.basic else in_channels
        self.proj = nn.Sequential() if self.basic else nn.Sequential(
            *_conv_bn(in_channels, in_channels, kernel, stride, in_channels, relu=False),
            *_conv_bn(in_channels, half, 1))
        first = _conv_bn(main_in, half, 1, groups=groups if main_in % groups == 0 else 1)
        self.pw1 = nn.Sequential(*first)
        self.dw = nn.Sequential(*_conv_bn(half, half, kernel, stride, half, relu=False))
        self.pw2 = nn.Sequential(*_conv_bn(half, out_channels - half, 1, groups=groups))
        self.se = SqueezeExcite(out_channels - half) if se else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.basic:
            keep, x = x.chunk(2, dim=1)
        else:
            keep = self.proj(x)
        y = self.pw1(x)
        if self.groups > 1:
            y = channel_shuffle(y, self.groups)
        y = self.se(self.pw2(self.dw(y)))
        return channel_shuffle(torch.cat((keep, y), 1), 2)


@dataclass(frozen=True)
class Variant:
    """One random design: its name, its hyper-parameters and its input size."""

    name: str
    params: dict[str, Any]
    input_size: tuple[int, int, int, int]

    def build(self) -> nn.Module:
        p = self.params

        def unit(cin: int, cout: int, stride: int, **kw: Any) -> nn.Module:
            return VariantUnit(cin, cout, stride, kernel=p["kernel"], groups=p["groups"], se=p["se"])

        torch.manual_seed(0)
        return ShuffleNetV2(p["repeats"], p["channels"], p["final"], stem_channels=(p["stem"],),
                            layout="torchvision", unit=unit).eval()


def random_variant(seed: int) -> Variant:
    """A reproducible random ShuffleNet-V2-like design (see the module docstring)."""
    rng = np.random.default_rng(seed)
    groups = int(rng.choice((1, 1, 2, 4)))
    step = 4 * groups  # both halves of every unit divisible by the group count
    base = float(2 ** rng.uniform(np.log2(24), np.log2(160)))
    growth = float(rng.uniform(1.6, 2.4))
    channels = [max(step, int(round(base * growth ** i / step)) * step) for i in range(3)]
    p = {
        "repeats": [int(rng.integers(1, 5)), int(rng.integers(2, 10)), int(rng.integers(1, 5))],
        "channels": channels, "kernel": int(rng.choice((3, 3, 5, 7))), "groups": groups,
        "se": bool(rng.random() < 0.25), "stem": int(rng.choice((16, 24, 32))),
        "final": int(rng.choice((512, 1024, 1280))),
    }
    side = int(rng.choice((160, 192, 224)))
    name = (f"v2like-{seed}-k{p['kernel']}g{groups}{'se' if p['se'] else ''}-"
            f"{'-'.join(map(str, channels))}-r{''.join(map(str, p['repeats']))}-{side}")
    return Variant(name, p, (1, 3, side, side))
