"""NASNet-A mobile, "NASNet-A (4 @ 1056)" (Zoph et al., "Learning Transferable Architectures for Scalable
Image Recognition", CVPR 2018), a comparison network of the ShuffleNet V2 paper (Table 8: 564 MFLOPs,
26.0% top-1 error).

Structure (NASNet paper Sec. 3, Fig. 2 for the ImageNet network, Fig. 4 for the NASNet-A cells; the
mobile ImageNet model as TF-slim's ``nets/nasnet/nasnet.py`` ``build_nasnet_mobile`` and
``mobile_imagenet_config`` build it):

- **Stem**: a 3x3 stride-2 VALID conv of 32 filters + BN (224 -> 111), then two *stem cells*: reduction
  cells at 1/4 and 1/2 of the cell filters (11 and 22 for 44 filters; ImageNet architecture of Fig. 2).
- **Body**: 3 stacks of N = 4 normal cells with 44, 88, 176 filters (``num_conv_filters`` 44, filter
  scaling rate 2), a reduction cell (stride 2, filters doubled) before the 2nd and the 3rd stack.
  "4 @ 1056" (the paper's "N @ P" notation of its ImageNet tables): N = 4 normal cells per stack and
  P = 1056 = 6 x 176 channels in the penultimate layer.
- **Cell inputs**: every cell reads the outputs of the two cells before it, ``h_i`` and ``h_{i-1}``
  (Sec. 3). ``h_i`` goes through ReLU-1x1 conv-BN to the cell's filters; ``h_{i-1}``, when its spatial
  size is twice the cell's input's (it comes from before a reduction), through the *factorized
  reduction* (ReLU; two 1x1 stride-2 average-pool + 1x1 conv paths of half the filters each, the second
  shifted by one pixel; concat; BN), else through ReLU-1x1 conv-BN when its channels differ. The first
  stem cell has no earlier cell: its ``h_{i-1}`` is the stem conv's output itself, unadjusted (TF-slim
  passes ``prev_layer=None``).
- **Normal cell** (Fig. 4 left; five blocks, each the sum of two ops):
  sep5x5(h) + sep3x3(h_prev); sep5x5(h_prev) + sep3x3(h_prev); avg3x3(h) + h_prev;
  avg3x3(h_prev) + avg3x3(h_prev); sep3x3(h) + h. Output: the concat of the unused hidden states,
  ``h_prev`` and the five blocks (6 x filters channels).
- **Reduction cell** (Fig. 4 right; the ops that read a cell input have stride 2):
  b0 = sep5x5(h) + sep7x7(h_prev); b1 = max3x3(h) + sep7x7(h_prev); b2 = avg3x3(h) + sep5x5(h_prev);
  b3 = avg3x3(b0) + b1; b4 = sep3x3(b0) + max3x3(h). Output: concat(b1, b2, b3, b4) (4 x filters).
- **sepKxK** is a separable conv applied twice (the paper's appendix; TF-slim
  ``_stacked_separable_conv``): ReLU, KxK depthwise (the stride), 1x1 pointwise to the cell's filters,
  BN, ReLU, KxK depthwise, 1x1 pointwise, BN. Pools are 3x3 with padding 1, average pools excluding the
  padding (TF ``SAME``).
- **Head**: ReLU, global average pool, (dropout), FC over 1056 features.

Inference form, as the ShuffleNet V2 paper's comparison: no auxiliary head (the NASNet paper trains
with one, TF-slim ``use_aux_head``) and no drop-path (the mobile config's ``drop_path_keep_prob`` is 1.0
anyway). Padding is PyTorch's symmetric ``k // 2``: it gives TF ``SAME``'s output sizes
(224 -> 111 -> 56 -> 28 -> 14 -> 7), but on an even-sized stride-2 input the sampling grid starts one
pixel earlier (TF pads only the bottom/right there); FLOPs and parameters are the same.

Complexity at 224x224 (NASNet paper, the mobile-setting ImageNet table -- Table 3 "constrained
computational setting" in arXiv 1707.07012v4): 564 M
multiply-adds, 5.3 M parameters; this build: 563.6 M and 5.29 M. This package's
``count_cost`` counts conv and FC multiply-adds only (BN, ReLU, pooling and adds cost 0 FLOPs), the
paper's convention; the parameter count is every parameter, BN's affine weights included.

G3 (ShuffleNet V2 Sec. 2): the paper's "13 fragmented operators per block" is a normal cell counted with
each separable conv as one operator (5 blocks x 2 separable convs + 3 pools). The package's audit counts
the individual depthwise and pointwise convs and the 1x1 input convs: 25 for a normal cell, 26 for a
reduction cell, more where a factorized reduction adds its two pools and convs.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from shufflenet.errors import UserInputError
from shufflenet.models._base import Classifier, init_kaiming
from shufflenet.models._checks import check_classifier_args, check_int
from shufflenet.models._registry import PaperRef, register_model

# TF-slim's batch_norm_epsilon for NASNet (nasnet.py ``nasnet_mobile_arg_scope``).
BN_EPS = 1e-3
STEM_FILTERS = 32          # ``_imagenet_stem``: 3x3 stride-2 conv, stem_multiplier 1.0
NUM_CELLS = 4              # N of "4 @ 1056"
PENULTIMATE_FILTERS = 1056
NUM_STACKS = 3             # normal-cell stacks; a reduction cell between consecutive ones
FILTER_SCALING = 2         # filters double at each reduction (``filter_scaling_rate``)
NORMAL_OUT = 6             # a normal cell outputs 6 x its filters (h_prev + 5 blocks)
REDUCTION_OUT = 4          # a reduction cell outputs 4 x its filters (blocks 1-4)
# penultimate = NORMAL_OUT * filters * FILTER_SCALING ** (NUM_STACKS - 1): 1056 = 24 * 44.
FILTERS_DIVISOR = NORMAL_OUT * FILTER_SCALING ** (NUM_STACKS - 1)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class ReLUConvBN(nn.Sequential):
    """ReLU, 1x1 conv, BN: how a cell brings an input to its filter count (TF-slim ``_cell_base``)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(OrderedDict(
            # not in place: the cell's input is also read by the next cell
            act=nn.ReLU(),
            conv=nn.Conv2d(in_channels, out_channels, 1, bias=False),
            bn=_bn(out_channels),
        ))


class SepConvBranch(nn.Sequential):
    """A NASNet ``separable_KxK_2`` op: the separable conv applied twice (NASNet paper appendix).

    ReLU, KxK depthwise (``stride``), 1x1 pointwise ``in -> out``, BN, ReLU, KxK depthwise, 1x1 pointwise
    ``out -> out``, BN (TF-slim ``_stacked_separable_conv``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        pad = kernel_size // 2
        super().__init__(OrderedDict(
            # not in place: the same hidden state feeds several ops of the cell
            act1=nn.ReLU(),
            dw1=nn.Conv2d(in_channels, in_channels, kernel_size, stride, pad, groups=in_channels, bias=False),
            pw1=nn.Conv2d(in_channels, out_channels, 1, bias=False),
            bn1=_bn(out_channels),
            act2=nn.ReLU(inplace=True),
            dw2=nn.Conv2d(out_channels, out_channels, kernel_size, 1, pad, groups=out_channels, bias=False),
            pw2=nn.Conv2d(out_channels, out_channels, 1, bias=False),
            bn2=_bn(out_channels),
        ))


def _avg_pool(stride: int = 1) -> nn.AvgPool2d:
    # TF's SAME average pool divides by the number of real (not padded) pixels
    return nn.AvgPool2d(3, stride, 1, count_include_pad=False)


def _max_pool(stride: int = 1) -> nn.MaxPool2d:
    return nn.MaxPool2d(3, stride, 1)


class FactorizedReduction(nn.Module):
    """The factorized reduction of a cell's earlier input to half its spatial size (TF-slim
    ``factorized_reduction`` after ``_reduce_prev_layer``'s ReLU).

    Two paths, each a 1x1 stride-2 average pool and a 1x1 conv to half the channels; the second path reads
    the input shifted by one pixel (cropped top/left, zero-padded bottom/right) so the two sample
    complementary pixel grids. Their concat goes through BN.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        half = out_channels // 2
        self.act = nn.ReLU()
        self.path1_pool = nn.AvgPool2d(1, 2)
        self.path1_conv = nn.Conv2d(in_channels, half, 1, bias=False)
        self.path2_pad = nn.ZeroPad2d((0, 1, 0, 1))
        self.path2_pool = nn.AvgPool2d(1, 2)
        # an odd filter count gives the extra channel to the second path, as TF-slim does
        self.path2_conv = nn.Conv2d(in_channels, out_channels - half, 1, bias=False)
        self.bn = _bn(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(x)
        p1 = self.path1_conv(self.path1_pool(x))
        p2 = self.path2_conv(self.path2_pool(self.path2_pad(x[:, :, 1:, 1:])))
        return self.bn(torch.cat([p1, p2], 1))


def _match_prev(prev_channels: int, filters: int, prev_stride: int, adjust_channels: bool = True) -> nn.Module:
    """The op that brings ``h_{i-1}`` to the cell's size and filters (TF-slim ``_reduce_prev_layer``)."""
    if prev_stride == 2:
        return FactorizedReduction(prev_channels, filters)
    if adjust_channels and prev_channels != filters:
        return ReLUConvBN(prev_channels, filters)
    return nn.Identity()


def _check_prev_stride(prev_stride: int) -> int:
    if prev_stride not in (1, 2):
        raise UserInputError(f"prev_stride must be 1 or 2 (the earlier input's size relative to the cell's "
                             f"input), got {prev_stride!r}")
    return prev_stride


class NormalCell(nn.Module):
    """The NASNet-A normal cell (NASNet paper Fig. 4 left): five blocks on ``h`` and ``h_prev``, output
    ``concat(h_prev, b0, ..., b4)`` of ``6 * filters`` channels at the input's spatial size.

    Args:
        in_channels: channels of ``h_i``, the previous cell's output.
        prev_channels: channels of ``h_{i-1}``, the output of the cell before that.
        filters: the cell's filter count (every op's output channels).
        prev_stride: 2 when ``h_{i-1}`` has twice the spatial size of ``h_i`` (a reduction cell lies
            between them): it then goes through the factorized reduction.
    """

    def __init__(self, in_channels: int, prev_channels: int, filters: int, prev_stride: int = 1) -> None:
        super().__init__()
        self.prev = _match_prev(prev_channels, filters, _check_prev_stride(prev_stride))
        self.conv_1x1 = ReLUConvBN(in_channels, filters)
        f = filters
        self.comb0_left = SepConvBranch(f, f, 5)
        self.comb0_right = SepConvBranch(f, f, 3)
        self.comb1_left = SepConvBranch(f, f, 5)
        self.comb1_right = SepConvBranch(f, f, 3)
        self.comb2_left = _avg_pool()
        self.comb3_left = _avg_pool()
        self.comb3_right = _avg_pool()
        self.comb4_left = SepConvBranch(f, f, 3)
        self.out_channels = NORMAL_OUT * filters

    def forward(self, x: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        h_prev = self.prev(prev)
        h = self.conv_1x1(x)
        b0 = self.comb0_left(h) + self.comb0_right(h_prev)
        b1 = self.comb1_left(h_prev) + self.comb1_right(h_prev)
        b2 = self.comb2_left(h) + h_prev
        b3 = self.comb3_left(h_prev) + self.comb3_right(h_prev)
        b4 = self.comb4_left(h) + h
        return torch.cat([h_prev, b0, b1, b2, b3, b4], 1)


class ReductionCell(nn.Module):
    """The NASNet-A reduction cell (NASNet paper Fig. 4 right): halves the spatial size, output
    ``concat(b1, b2, b3, b4)`` of ``4 * filters`` channels.

    Args:
        in_channels: channels of ``h_i``, the previous cell's output.
        prev_channels: channels of ``h_{i-1}``.
        filters: the cell's filter count.
        prev_stride: 2 when ``h_{i-1}`` has twice the spatial size of ``h_i``.
        adjust_channels: bring ``h_{i-1}`` to ``filters`` channels with a 1x1 conv when its spatial size
            already matches; ``False`` only for the first stem cell (see :class:`StemCell`).
    """

    def __init__(self, in_channels: int, prev_channels: int, filters: int, prev_stride: int = 1,
                 *, adjust_channels: bool = True) -> None:
        super().__init__()
        self.prev = _match_prev(prev_channels, filters, _check_prev_stride(prev_stride), adjust_channels)
        # the channels the ops on h_prev read: unadjusted only in the first stem cell
        p = prev_channels if isinstance(self.prev, nn.Identity) else filters
        f = filters
        self.conv_1x1 = ReLUConvBN(in_channels, filters)
        self.comb0_left = SepConvBranch(f, f, 5, 2)
        self.comb0_right = SepConvBranch(p, f, 7, 2)
        self.comb1_left = _max_pool(2)
        self.comb1_right = SepConvBranch(p, f, 7, 2)
        self.comb2_left = _avg_pool(2)
        self.comb2_right = SepConvBranch(p, f, 5, 2)
        # ops on blocks computed inside the cell run at stride 1 (TF-slim ``_apply_conv_operation``)
        self.comb3_right = _avg_pool()
        self.comb4_left = SepConvBranch(f, f, 3)
        self.comb4_right = _max_pool(2)
        self.out_channels = REDUCTION_OUT * filters

    def forward(self, x: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        h_prev = self.prev(prev)
        h = self.conv_1x1(x)
        b0 = self.comb0_left(h) + self.comb0_right(h_prev)
        b1 = self.comb1_left(h) + self.comb1_right(h_prev)
        b2 = self.comb2_left(h) + self.comb2_right(h_prev)
        b3 = b1 + self.comb3_right(b0)
        b4 = self.comb4_left(b0) + self.comb4_right(h)
        return torch.cat([b1, b2, b3, b4], 1)


class StemCell(ReductionCell):
    """A stem cell (NASNet paper Fig. 2, ImageNet architecture): a reduction cell on the stem conv's
    output, at 1/4 (first) and 1/2 (second) of the body's filters.

    The first stem cell has no earlier cell; its ``h_{i-1}`` is its own input, the stem conv's output, read
    as it is (TF-slim's ``prev_layer=None``: no 1x1 conv, so its separable ops on ``h_{i-1}`` read the
    stem's 32 channels). The second's ``h_{i-1}`` is the stem conv's output at twice its size: factorized
    reduction.
    """

    def __init__(self, in_channels: int, prev_channels: int, filters: int, prev_stride: int = 1) -> None:
        super().__init__(in_channels, prev_channels, filters, prev_stride, adjust_channels=False)


class NASNetAMobile(Classifier):
    """NASNet-A mobile classifier ("N @ P": N normal cells per stack, P penultimate channels).

    Args:
        num_cells: N, normal cells per stack (4 for the mobile model).
        penultimate_filters: P, the last cell's output channels, ``24 * num_conv_filters`` (1056 = 24 x 44);
            a multiple of 24 and at least 96 (the first stem cell has ``P / 96`` filters).
        stem_filters: the stem conv's filters (32).
        small_input: stem for 28-64 px images: a stride-1, padding-1 stem conv and a single stem cell (at
            half the body's filters), total stride 8 instead of 32.
        drop_rate: dropout before the classifier (the NASNet paper trains the mobile model with 0.5).
    """

    def __init__(
        self,
        num_cells: int = NUM_CELLS,
        penultimate_filters: int = PENULTIMATE_FILTERS,
        stem_filters: int = STEM_FILTERS,
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        small_input: bool = False,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        check_int("num_cells", num_cells, 1, 64)
        check_int("penultimate_filters", penultimate_filters, 4 * FILTERS_DIVISOR, 1 << 16)
        if penultimate_filters % FILTERS_DIVISOR:
            raise UserInputError(f"penultimate_filters must be a multiple of {FILTERS_DIVISOR} "
                                 f"(6 x the last stack's filters), got {penultimate_filters}")
        check_int("stem_filters", stem_filters, 1, 1 << 16)
        check_classifier_args(num_classes, in_chans, drop_rate, small_input)
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.num_cells = num_cells
        self.num_conv_filters = filters = penultimate_filters // FILTERS_DIVISOR

        # TF-slim ``_imagenet_stem``: VALID padding (224 -> 111); the small stem keeps the input size
        self.stem = nn.Sequential(OrderedDict(
            conv=nn.Conv2d(in_chans, stem_filters, 3, 1 if small_input else 2, 1 if small_input else 0,
                           bias=False),
            bn=_bn(stem_filters),
        ))
        total_stride = 1 if small_input else 2
        cells: list[nn.Module] = []
        x_c = prev_c = stem_filters
        prev_stride = 1  # the first cell's h_{i-1} is the stem output itself

        def push(cell: NormalCell | ReductionCell, reduces: bool) -> None:
            nonlocal x_c, prev_c, prev_stride, total_stride
            cells.append(cell)
            prev_c, x_c = x_c, cell.out_channels
            prev_stride = 2 if reduces else 1
            total_stride *= 2 if reduces else 1

        stem_scales = (FILTER_SCALING,) if small_input else (FILTER_SCALING ** 2, FILTER_SCALING)
        for scale in stem_scales:
            push(StemCell(x_c, prev_c, filters // scale, prev_stride), True)
        for stack in range(NUM_STACKS):
            f = filters * FILTER_SCALING ** stack
            if stack:
                push(ReductionCell(x_c, prev_c, f, prev_stride), True)
            for _ in range(num_cells):
                push(NormalCell(x_c, prev_c, f, prev_stride), False)
        # one Sequential of every cell: each reads the two outputs before it, so forward_features loops
        self.cells = nn.Sequential(*cells)
        self.act = nn.ReLU()
        self.num_features = x_c
        # Total stride: smallest input whose last feature map is not produced from padding alone.
        self.min_input_size = total_stride
        self.fc = nn.Linear(x_c, num_classes)
        init_kaiming(self)  # TF-slim's NASNet arg scope


    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        prev = x
        for cell in self.cells:
            x, prev = cell(x, prev), x
        # TF-slim applies ReLU to the last cell's output before the global pool
        return self.act(x)


@register_model("nasnet_a_mobile", paper=PaperRef(
    564, 5.3, "NASNet paper (Zoph et al., CVPR 2018) Table 3: NASNet-A (4 @ 1056), 564 M mult-adds, 5.3 M params"))
def nasnet_a_mobile(**kwargs: Any) -> NASNetAMobile:
    """NASNet-A (4 @ 1056), the mobile ImageNet model: 564 M multiply-adds, 5.3 M params at 224x224."""
    return NASNetAMobile(**kwargs)
