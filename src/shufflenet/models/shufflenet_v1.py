"""ShuffleNet V1 (Zhang et al., CVPR 2018, arXiv 1707.01083): the unit of Fig. 2 and the net of Table 1.

Unit (V1 paper Fig. 2b/c, Sec. 3.2):

* stride 1: ``1x1 GConv BN ReLU -> channel shuffle -> 3x3 DWConv BN (no ReLU) -> 1x1 GConv BN``,
  added to the identity, then ReLU;
* stride 2: the same branch with a stride-2 depthwise conv, producing ``out - in`` channels, concatenated
  after a 3x3 stride-2 average-pooled shortcut (``in`` channels), then ReLU.

Design rules (Sec. 3.2/3.3): bottleneck width = 1/4 of the unit's output channels; no channel shuffle
after the second pointwise GConv; the first pointwise layer of Stage2 is *not* grouped (its input has only
24 channels). As in the official code (megvii-model/ShuffleNet-Series ``ShuffleNetV1/blocks.py``) that
first unit still shuffles with the network's ``g``, and every unit shuffles only when ``g > 1``.

Net (Table 1): 3x3 stride-2 conv (24 channels at 1x), 3x3 stride-2 max pool, Stage2/3/4 with 4/8/4 units
(the first of each with stride 2), global average pool, FC. There is no Conv5.

Differences from the official code (megvii ``ShuffleNetV1/blocks.py``): the official block shuffles
*after* the depthwise conv + BN, and its shuffle reshapes to ``(C/g, g)`` — the inverse of the paper's
``(g, C/g)`` permutation. A depthwise conv + BN commutes with a channel permutation once its weights are
permuted too, so ``shuffle_order="official"`` (the inverse permutation, before the depthwise conv) computes
the official network exactly; :func:`shufflenet.load_weights` switches to it and permutes the depthwise
weights when it reads an official checkpoint. The stride-2 block applies ReLU to the branch only, which is
equal here because the shortcut input is already non-negative. As in the official code, the classifier has
no bias.

Widths: ``g=3`` and ``g=8`` at 0.5x/1.0x/1.5x/2.0x use the official channel tables verbatim
(megvii-model/ShuffleNet-Series ``ShuffleNetV1/network.py``).
Any other ``(g, s)`` is derived by :func:`stage_channels`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from shufflenet.errors import UserInputError
from shufflenet.models._base import Classifier, init_official
from shufflenet.models._checks import check_choice, check_classifier_args, check_float, check_int
from shufflenet.models._registry import PaperRef, register_model
from shufflenet.models.layers import ChannelShuffle, ShuffleImpl, check_shuffle_impl, conv_bn

SHUFFLE_ORDERS = ("paper", "official")
# V1 Table 1: Stage2 output channels at 1x per group count (Stage3/4 double each time); Conv1 is 24.
TABLE1_STAGE2: dict[int, int] = {1: 144, 2: 200, 3: 240, 4: 272, 8: 384}
TABLE1_REPEATS = (4, 8, 4)  # "Repeat" 1 (stride 2) + 3 / 7 / 3 (stride 1)

# Official code's channel tables, [conv1, stage2, stage3, stage4] (megvii ``ShuffleNetV1/network.py``).
OFFICIAL_CHANNELS: dict[tuple[int, float], tuple[int, int, int, int]] = {
    (3, 0.5): (12, 120, 240, 480),
    (3, 1.0): (24, 240, 480, 960),
    (3, 1.5): (24, 360, 720, 1440),
    (3, 2.0): (48, 480, 960, 1920),
    (8, 0.5): (16, 192, 384, 768),
    (8, 1.0): (24, 384, 768, 1536),
    (8, 1.5): (24, 576, 1152, 2304),
    (8, 2.0): (48, 768, 1536, 3072),
}


def _round_to(value: float, divisor: int) -> int:
    """``value`` rounded (half up) to the nearest positive multiple of ``divisor``."""
    return max(divisor, int(value / divisor + 0.5) * divisor)


def _conv1_channels(width_mult: float, groups: int) -> int:
    """Conv1 width following the official tables' pattern: 12 up to 0.5x, 24 up to 1.5x, ``24 * s`` beyond
    (48 at 2x) rounded to a multiple of 4; then rounded *up* to a multiple of ``g`` so that the first
    stride-2 unit's branch (``stage2 - conv1`` channels) stays divisible by ``g`` (g=8 at 0.5x: 12 -> 16,
    as in the official table)."""
    if width_mult <= 0.5:
        c = 12
    elif width_mult <= 1.5:
        c = 24
    else:
        c = _round_to(24 * width_mult, 4)
    return -(-c // groups) * groups


def stage_channels(groups: int, width_mult: float = 1.0) -> tuple[int, int, int, int]:
    """``(conv1, stage2, stage3, stage4)`` output channels for ``g`` groups at width ``s``x.

    ``(g, s)`` in the official tables (g=3, g=8 at 0.5/1.0/1.5/2.0) returns them verbatim. Otherwise
    (rule of this package, the paper only says "s x multiplies all filter counts"):
    ``stage2 = round(s * Table1_stage2[g])`` to the nearest multiple of ``4g`` (so the bottleneck,
    stage/4, is divisible by ``g``), ``stage3 = 2 * stage2``, ``stage4 = 4 * stage2``, and Conv1 as in
    :func:`_conv1_channels`. The rule reproduces every entry of the official tables and Table 1 at 1x.
    """
    if groups not in TABLE1_STAGE2:
        raise UserInputError(
            f"ShuffleNet V1 has widths for groups in {sorted(TABLE1_STAGE2)} (Table 1), got groups={groups}; "
            "pass stage_out_channels=[conv1, stage2, stage3, stage4] for other group counts"
        )
    if not width_mult > 0:
        raise UserInputError(f"width_mult must be positive, got {width_mult}")
    official = OFFICIAL_CHANNELS.get((groups, float(width_mult)))
    if official is not None:
        return official
    c2 = _round_to(TABLE1_STAGE2[groups] * width_mult, 4 * groups)
    return (_conv1_channels(width_mult, groups), c2, 2 * c2, 4 * c2)


class ShuffleV1Unit(nn.Module):
    """One ShuffleNet V1 unit (Fig. 2b for stride 1, Fig. 2c for stride 2).

    Children: ``pw1`` (1x1 GConv BN ReLU), ``shuffle`` (:class:`ChannelShuffle`, ``Identity`` when g=1),
    ``dw`` (3x3 depthwise BN, no ReLU), ``pw2`` (1x1 GConv BN), ``shortcut`` (stride 2: 3x3 avg pool s2),
    ``relu`` (after the add / concat).

    Args:
        first_groups: groups of ``pw1``; ``None`` means ``groups``. Stage2's first unit uses 1.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        groups: int,
        *,
        first_groups: int | None = None,
        shuffle_impl: ShuffleImpl = "5d",
        shuffle_order: str = "paper",
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise UserInputError(f"ShuffleNet V1 unit stride must be 1 or 2, got {stride}")
        if stride == 1 and in_channels != out_channels:
            raise UserInputError(
                f"a stride-1 ShuffleNet V1 unit adds its input: in ({in_channels}) must equal out ({out_channels})"
            )
        if out_channels % 4:
            raise UserInputError(f"ShuffleNet V1 unit: {out_channels} output channels are not divisible by 4 "
                                 "(the bottleneck is 1/4 of the output)")
        branch_out = out_channels - in_channels if stride == 2 else out_channels
        if branch_out <= 0:
            raise UserInputError(
                f"stride-2 ShuffleNet V1 unit {in_channels}->{out_channels}: output must be wider than input"
            )
        mid = out_channels // 4
        self.stride = stride
        self.groups = groups
        self.pw1 = nn.Sequential(*conv_bn(in_channels, mid, 1, groups=groups if first_groups is None else first_groups))
        self.mid = mid
        self.shuffle: nn.Module = ChannelShuffle(groups, shuffle_impl) if groups > 1 else nn.Identity()
        self.set_shuffle_order(shuffle_order)
        self.dw = nn.Sequential(*conv_bn(mid, mid, 3, stride, groups=mid, relu=False))
        self.pw2 = nn.Sequential(*conv_bn(mid, branch_out, 1, groups=groups, relu=False))
        self.shortcut: nn.Module = nn.AvgPool2d(3, 2, 1) if stride == 2 else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def set_shuffle_order(self, order: str) -> None:
        """``"paper"``: reshape to ``(g, C/g)`` (V1 Fig. 1c); ``"official"``: to ``(C/g, g)``, the inverse
        permutation, as megvii's code does (a g-shuffle's inverse is the shuffle with ``C/g`` groups)."""
        if order not in SHUFFLE_ORDERS:
            raise UserInputError(f"unknown shuffle_order {order!r}; choose from {', '.join(SHUFFLE_ORDERS)}")
        self.shuffle_order = order
        if isinstance(self.shuffle, ChannelShuffle):
            self.shuffle.groups = self.groups if order == "paper" else self.mid // self.groups

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw2(self.dw(self.shuffle(self.pw1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.branch(x)
        if self.stride == 1:
            return self.relu(y + x)
        return self.relu(torch.cat((self.shortcut(x), y), dim=1))


class ShuffleNetV1(Classifier):
    """ShuffleNet V1 classifier (V1 paper Table 1; official channel tables for g=3/g=8).

    Args:
        groups: ``g`` of the pointwise group convolutions (Table 1: 1, 2, 3, 4, 8).
        width_mult: the paper's "ShuffleNet s x" (ignored when ``stage_out_channels`` is given).
        stage_out_channels: explicit ``[conv1, stage2, stage3, stage4]`` output channels (official format).
        stage_repeats: units per stage, the first of each with stride 2 (Table 1: 4, 8, 4).
        small_input: stem for 28-64 px images: stride-1 Conv1 and no max pool (total stride 8, not 32).
        drop_rate: dropout before the classifier.
        shuffle_impl: ``"5d"`` or ``"4d"`` channel shuffle (same numbers; see ``layers.channel_shuffle``).
        shuffle_order: ``"paper"`` or ``"official"`` (the megvii code's inverse permutation; see above).
    """

    def __init__(
        self,
        groups: int = 3,
        width_mult: float = 1.0,
        stage_out_channels: Sequence[int] | None = None,
        *,
        stage_repeats: Sequence[int] = TABLE1_REPEATS,
        num_classes: int = 1000,
        in_chans: int = 3,
        small_input: bool = False,
        drop_rate: float = 0.0,
        shuffle_impl: ShuffleImpl = "5d",
        shuffle_order: str = "paper",
    ) -> None:
        super().__init__()
        # Every keyword is checked here, so a bad value fails when the model is built, not in forward().
        check_int("groups", groups, 1)
        check_float("width_mult", width_mult, above=0.0)
        check_classifier_args(num_classes, in_chans, drop_rate, small_input)
        check_shuffle_impl(shuffle_impl)
        check_choice("shuffle_order", shuffle_order, SHUFFLE_ORDERS)
        if stage_out_channels is None:
            channels = stage_channels(groups, width_mult)
        else:
            channels = tuple(int(c) for c in stage_out_channels)
            if len(channels) != 1 + len(stage_repeats):
                raise UserInputError(
                    f"stage_out_channels needs [conv1, stage2, ...] = {1 + len(stage_repeats)} numbers, "
                    f"got {list(channels)}"
                )
        if len(stage_repeats) < 1 or any(r < 1 for r in stage_repeats):
            raise UserInputError(f"stage_repeats must be positive, got {list(stage_repeats)}")
        self.groups = groups
        self.width_mult = width_mult
        self.stage_out_channels = list(channels)
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.num_features = channels[-1]

        self.conv1 = nn.Sequential(*conv_bn(in_chans, channels[0], 3, 1 if small_input else 2))
        self.maxpool: nn.Module = nn.Identity() if small_input else nn.MaxPool2d(3, 2, 1)
        prev = channels[0]
        self.stage_names: list[str] = []
        for i, (repeats, out) in enumerate(zip(stage_repeats, channels[1:], strict=True)):
            units = [
                ShuffleV1Unit(prev, out, 2, groups, first_groups=1 if i == 0 else None,
                              shuffle_impl=shuffle_impl, shuffle_order=shuffle_order)
            ]
            units += [ShuffleV1Unit(out, out, 1, groups, shuffle_impl=shuffle_impl, shuffle_order=shuffle_order)
                      for _ in range(repeats - 1)]
            name = f"stage{i + 2}"
            setattr(self, name, nn.Sequential(*units))
            self.stage_names.append(name)
            prev = out
        # Total stride: smallest input whose last feature map is not produced from padding alone.
        self.min_input_size = (1 if small_input else 4) * 2 ** len(stage_repeats)
        self.fc = nn.Linear(self.num_features, num_classes, bias=False)  # official: no bias
        init_official(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return x

    def set_shuffle_order(self, order: str) -> None:
        """Switch every unit's channel shuffle to ``"paper"`` or ``"official"`` order (see the module doc)."""
        for unit in self.modules():
            if isinstance(unit, ShuffleV1Unit):
                unit.set_shuffle_order(order)


# What the paper / official README state for each registered (g, s). MFLOPs are multiply-adds.
_README = {  # official README (megvii-model/ShuffleNet-Series ShuffleNetV1): (MFLOPs, M params)
    (3, 0.5): (38, 0.7), (3, 1.5): (292, 3.4), (3, 2.0): (524, 5.4),
    (8, 0.5): (40, 1.0), (8, 1.5): (290, 4.3), (8, 2.0): (522, 6.5),
}
_README_PARAMS_1X = {3: 1.9, 8: 2.4}  # README lists 1.0x at 138M FLOPs; Table 1 gives 137M
_TABLE1_MFLOPS = {1: 143, 2: 140, 3: 137, 4: 133, 8: 137}
_TABLE2_MFLOPS = {0.5: 38, 0.25: 13}  # V1 Table 2 rows (the same for every g)


def _paper_ref(groups: int, width: float) -> PaperRef:
    if width == 1.0:
        params = _README_PARAMS_1X.get(groups)
        src = "V1 Table 1" + ("; params: official README" if params is not None else "")
        return PaperRef(_TABLE1_MFLOPS[groups], params, src)
    if (groups, width) in _README:
        mflops, params = _README[groups, width]
        return PaperRef(mflops, params, "official README")
    if width in _TABLE2_MFLOPS:
        # Table 2 groups its rows by complexity level ("13 MFLOPs", "38 MFLOPs"); a g's own count at that
        # width differs by up to 21% (g=8, 0.25x: 15.7 M).
        return PaperRef(_TABLE2_MFLOPS[width], None, "V1 Table 2 (the complexity level of its row group)",
                        tolerance=0.25)
    return PaperRef(None, None, "not published")


WIDTHS = {"0_25": 0.25, "0_5": 0.5, "1_0": 1.0, "1_5": 1.5, "2_0": 2.0}


def _make_builder(groups: int, width: float, name: str) -> Any:
    def builder(**kwargs: Any) -> ShuffleNetV1:
        return ShuffleNetV1(groups, width, **kwargs)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = f"ShuffleNet V1 {width}x (g={groups}): channels {list(stage_channels(groups, width))}."
    return builder


for _g in TABLE1_STAGE2:
    for _tag, _w in WIDTHS.items():
        _name = f"shufflenet_v1_g{_g}_x{_tag}"
        globals()[_name] = register_model(_name, paper=_paper_ref(_g, _w))(_make_builder(_g, _w, _name))
