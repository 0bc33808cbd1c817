"""ShuffleNet V2 (Ma et al., ECCV 2018), exact to the paper's Table 5 and the official code.

Two layouts compute the same network family:

* ``layout="official"`` (default) follows megvii-model/ShuffleNet-Series (``ShuffleNetV2/blocks.py``): a stride-1 unit
  starts with the fused shuffle + split (even channels are the identity half, odd channels enter the
  branch) and ends with a plain concat; the stride-2 unit's projection branch keeps the *input* width
  and its main branch outputs ``out - in`` channels; the classifier has no bias and the 2.0x model has
  dropout 0.2 before it. This layout reproduces Table 5's FLOPs: 40.5 / 145.8 / 299.0 / 590.8 M.
* ``layout="torchvision"`` is torchvision's ``ShuffleNetV2`` block for block, with the same state-dict
  keys: both stride-2 branches output ``out / 2``, split is ``chunk(2)``, and channel shuffle follows
  every unit. Its FLOPs are torchvision's (0.04 / 0.145 / 0.296 / 0.583 G).

Variants (Appendix Fig. 2 and Sec. 6): ``se=True`` adds Squeeze-Excitation after the branch,
``residual=True`` adds the branch input to its output (stride-1 units), ``extra_dw=True`` is
ShuffleNet V2* — an extra 3x3 depthwise conv before the first 1x1 conv of every unit (Sec. 6, detection).
The large models of Appendix Table 2 (ShuffleNet V2-50 and SE-ShuffleNet V2-164) are built from the
same unit with four stages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from torch import nn

from shufflenet.errors import UserInputError
from shufflenet.models._base import Classifier, init_official
from shufflenet.models._checks import check_bool, check_choice, check_classifier_args
from shufflenet.models._registry import PaperRef, register_model
from shufflenet.models.layers import (
    ChannelShuffle,
    ShuffleImpl,
    SqueezeExcite,
    check_shuffle_impl,
    conv_bn,
    shuffle_split,
)

Layout = Literal["official", "torchvision"]
LAYOUTS = ("official", "torchvision")

# Table 5: output channels of Stage2..Stage4 and Conv5 per width multiplier.
TABLE5_CHANNELS: dict[str, tuple[tuple[int, int, int], int]] = {
    "0.5": ((48, 96, 192), 1024),
    "1.0": ((116, 232, 464), 1024),
    "1.5": ((176, 352, 704), 1024),
    "2.0": ((244, 488, 976), 2048),
}
TABLE5_REPEATS = (4, 8, 4)  # first unit of each stage has stride 2 (Table 5 "Repeat" 1 + 3/7/3)


class ShuffleSplit(nn.Module):
    """The official unit's fused channel shuffle + split as a module (so costs are attributed to it)."""

    def __init__(self, impl: ShuffleImpl = "5d") -> None:
        super().__init__()
        self.impl = check_shuffle_impl(impl)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return shuffle_split(x, self.impl)


class ShuffleV2Unit(nn.Module):
    """One ShuffleNet V2 unit: Fig. 3(c) when ``in == out`` and stride 1, otherwise Fig. 3(d).

    ``branch1`` is the projection branch of a downsampling unit (empty for a basic unit) and ``branch2``
    the main branch: ``[3x3 DW + BN (V2* only)] 1x1 Conv BN ReLU, 3x3 DW BN, 1x1 Conv BN ReLU [SE]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        layout: Layout = "official",
        se: bool = False,
        residual: bool = False,
        extra_dw: bool = False,
        shuffle_impl: ShuffleImpl = "5d",
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise UserInputError(f"ShuffleNet V2 unit stride must be 1 or 2, got {stride}")
        self.layout = check_choice("layout", layout, LAYOUTS)
        self.basic = stride == 1 and in_channels == out_channels
        if self.basic and out_channels % 2:
            raise UserInputError(f"a basic ShuffleNet V2 unit needs an even channel count, got {out_channels}")
        mid = out_channels // 2
        if self.basic:
            main_in, main_out, proj_out = out_channels // 2, out_channels - out_channels // 2, 0
        elif layout == "official":  # official blocks.py: projection keeps the input width, main gives the rest
            main_in, main_out, proj_out = in_channels, out_channels - in_channels, in_channels
        else:  # torchvision: both branches output half
            main_in, main_out, proj_out = in_channels, out_channels // 2, out_channels // 2
        if main_out <= 0:
            raise UserInputError(f"unit {in_channels}->{out_channels}: output must be wider than input")
        self.residual = residual and self.basic  # a residual needs equal shapes: basic units only

        self.branch1 = nn.Sequential()
        if not self.basic:
            self.branch1 = nn.Sequential(
                *conv_bn(in_channels, in_channels, 3, stride, groups=in_channels, relu=False),
                *conv_bn(in_channels, proj_out, 1),
            )
        main: list[nn.Module] = []
        if extra_dw:
            main += conv_bn(main_in, main_in, 3, 1, groups=main_in, relu=False)
        main += conv_bn(main_in, mid, 1)
        main += conv_bn(mid, mid, 3, stride, groups=mid, relu=False)
        main += conv_bn(mid, main_out, 1, relu=not self.residual)
        if se:
            main.append(SqueezeExcite(main_out))
        self.branch2 = nn.Sequential(*main)
        if self.residual:
            self.relu = nn.ReLU(inplace=True)
        if self.basic and layout == "official":
            self.split = ShuffleSplit(shuffle_impl)
        if layout == "torchvision":
            self.shuffle = ChannelShuffle(2, shuffle_impl)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.basic:
            identity, x2 = self.split(x) if self.layout == "official" else x.chunk(2, dim=1)
            y = self.branch2(x2)
            if self.residual:
                y = self.relu(y + x2)
            out = torch.cat((identity, y), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        if self.layout == "torchvision":
            out = self.shuffle(out)
        return out


class ShuffleNetV2(Classifier):
    """ShuffleNet V2 classifier (Table 5; Appendix Table 2 for four-stage large models).

    Args:
        stage_repeats: units per stage, the first of each stage downsampling (Table 5: 4, 8, 4).
        stage_channels: output channels of each stage.
        final_channels: output channels of the last 1x1 conv ("Conv5"; "conv6" in Appendix Table 2).
        stem_channels: output channels of the 3x3 stem convs (the first has stride 2).
        first_stage_stride: 2 as in Table 5; 1 for Appendix Table 2, whose conv2_x follows the max pool.
        layout: ``"official"`` or ``"torchvision"`` (see the module docstring).
        small_input: a stem for 28-64 px images: stride-1 stem conv and no max pool.
        drop_rate: dropout before the classifier (the official 2.0x model uses 0.2).
        unit: the unit class (as torchvision's ``inverted_residual=``), called as
            ``unit(in_channels, out_channels, stride, layout=, se=, residual=, extra_dw=, shuffle_impl=)``;
            a fused, quantised or deployment unit plugs in here without a fork. Default :class:`ShuffleV2Unit`.
    """

    def __init__(
        self,
        stage_repeats: Sequence[int] = TABLE5_REPEATS,
        stage_channels: Sequence[int] = TABLE5_CHANNELS["1.0"][0],
        final_channels: int = 1024,
        *,
        stem_channels: Sequence[int] = (24,),
        first_stage_stride: int = 2,
        num_classes: int = 1000,
        in_chans: int = 3,
        small_input: bool = False,
        layout: Layout = "official",
        se: bool = False,
        residual: bool = False,
        extra_dw: bool = False,
        drop_rate: float = 0.0,
        shuffle_impl: ShuffleImpl = "5d",
        unit: Callable[..., nn.Module] | None = None,
    ) -> None:
        super().__init__()
        # Every keyword is checked here, so a bad value fails when the model is built, not in forward().
        unit = ShuffleV2Unit if unit is None else unit
        if not callable(unit):
            raise UserInputError(f"unit must be a callable returning an nn.Module (a unit class), got {unit!r}")
        check_choice("layout", layout, LAYOUTS)
        for flag, value in (("se", se), ("residual", residual), ("extra_dw", extra_dw)):
            check_bool(flag, value)
        check_classifier_args(num_classes, in_chans, drop_rate, small_input)
        check_shuffle_impl(shuffle_impl)
        if len(stage_repeats) != len(stage_channels):
            raise UserInputError("stage_repeats and stage_channels must have the same length")
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.num_features = final_channels

        stem: list[nn.Module] = []
        prev = in_chans
        for i, c in enumerate(stem_channels):
            stem += conv_bn(prev, c, 3, 2 if i == 0 and not small_input else 1)
            prev = c
        self.conv1 = nn.Sequential(*stem)
        self.maxpool: nn.Module = nn.Identity() if small_input else nn.MaxPool2d(3, 2, 1)

        unit_kw: dict[str, Any] = dict(
            layout=layout, se=se, residual=residual, extra_dw=extra_dw, shuffle_impl=shuffle_impl
        )
        total_stride = 1 if small_input else 4
        for i, (repeats, out) in enumerate(zip(stage_repeats, stage_channels, strict=True)):
            stride = first_stage_stride if i == 0 else 2
            total_stride *= stride
            units = [unit(prev, out, stride, **unit_kw)]
            units += [unit(out, out, 1, **unit_kw) for _ in range(repeats - 1)]
            setattr(self, f"stage{i + 2}", nn.Sequential(*units))
            prev = out
        self.stage_names = [f"stage{i + 2}" for i in range(len(stage_repeats))]
        self.conv5 = nn.Sequential(*conv_bn(prev, final_channels, 1))
        self.fc = nn.Linear(final_channels, num_classes, bias=layout == "torchvision")
        self.min_input_size = total_stride
        if layout == "official":
            init_official(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return self.conv5(x)


def _table5(width: str, **kwargs: Any) -> ShuffleNetV2:
    stages, final = TABLE5_CHANNELS[width]
    if width == "2.0" and kwargs.get("layout", "official") == "official":
        kwargs.setdefault("drop_rate", 0.2)  # official 2.0x code (network.py), not the paper
    return ShuffleNetV2(TABLE5_REPEATS, stages, final, **kwargs)


@register_model("shufflenet_v2_x0_5", paper=PaperRef(41, 1.4, "Table 5"))
def shufflenet_v2_x0_5(**kwargs: Any) -> ShuffleNetV2:
    """ShuffleNet V2 0.5x: Table 5, 41 MFLOPs, 1.4 M weights."""
    return _table5("0.5", **kwargs)


@register_model("shufflenet_v2_x1_0", paper=PaperRef(146, 2.3, "Table 5"))
def shufflenet_v2_x1_0(**kwargs: Any) -> ShuffleNetV2:
    """ShuffleNet V2 1.0x: Table 5, 146 MFLOPs, 2.3 M weights."""
    return _table5("1.0", **kwargs)


@register_model("shufflenet_v2_x1_5", paper=PaperRef(299, 3.5, "Table 5"))
def shufflenet_v2_x1_5(**kwargs: Any) -> ShuffleNetV2:
    """ShuffleNet V2 1.5x: Table 5, 299 MFLOPs, 3.5 M weights."""
    return _table5("1.5", **kwargs)


@register_model("shufflenet_v2_x2_0", paper=PaperRef(591, 7.4, "Table 5"))
def shufflenet_v2_x2_0(**kwargs: Any) -> ShuffleNetV2:
    """ShuffleNet V2 2.0x: Table 5, 591 MFLOPs, 7.4 M weights (dropout 0.2 before the FC, official code)."""
    return _table5("2.0", **kwargs)


def _official_only(name: str, kwargs: dict[str, Any]) -> None:
    if kwargs.get("layout", "official") != "official":
        raise UserInputError(f"{name} exists only in the official layout (torchvision has no such model)")


@register_model("shufflenet_v2_50", paper=PaperRef(2300, None, "Table 6 / Appendix Table 2"))
def shufflenet_v2_50(**kwargs: Any) -> ShuffleNetV2:
    """ShuffleNet V2-50 (Appendix Table 2): 3x3 stem of 64, four stages [244, 488, 976, 1952] x [3, 4, 6, 3]
    with conv2_x at stride 1 after the max pool, conv6 of 2048; 2.3 GFLOPs, top-1 err 22.8 (Table 6)."""
    _official_only("shufflenet_v2_50", kwargs)
    return ShuffleNetV2((3, 4, 6, 3), (244, 488, 976, 1952), 2048, stem_channels=(64,),
                        first_stage_stride=1, **kwargs)


@register_model("se_shufflenet_v2_164", paper=PaperRef(12700, None, "Table 6 / Appendix Table 2"))
def se_shufflenet_v2_164(**kwargs: Any) -> ShuffleNetV2:
    """SE-ShuffleNet V2-164 (Appendix Table 2): stem 3x3 64 s2, 3x3 64, 3x3 128; four stages
    [340, 680, 1360, 2720] x [10, 10, 23, 10] with SE and residual units (SE hidden = 1/2 of the
    channels, before the residual add); conv6 of 2048; 12.7 GFLOPs, top-1 err 18.56 (Table 6)."""
    _official_only("se_shufflenet_v2_164", kwargs)
    kwargs.setdefault("se", True)
    kwargs.setdefault("residual", True)
    return ShuffleNetV2((10, 10, 23, 10), (340, 680, 1360, 2720), 2048, stem_channels=(64, 64, 128),
                        first_stage_stride=1, **kwargs)
