"""CondenseNet (Huang, Liu, van der Maaten, Weinberger, CVPR 2018, "CondenseNet: An Efficient DenseNet using
Learned Group Convolutions") in its converted (test-time) form, a comparison network of the V2 paper's
Table 8.

Structure (CondenseNet paper Fig. 1 right: a layer at test time; its architecture design, "fully dense
connectivity" and "increasing growth rate", the official README's Fig. 2; the ImageNet configuration of the
official code, ShichenLiu/CondenseNet ``models/condensenet_converted.py`` and ``layers.py``, README command
``--stages 4-6-8-10-8 --growth 8-16-32-64-128``, defaults ``--bottleneck 4``):

- stem: a 3x3 stride-2 conv of ``2 * growth[0]`` = 16 channels with no BN/ReLU (every dense layer starts
  with its own BN-ReLU: pre-activation, as DenseNet).
- five dense blocks of 4, 6, 8, 10, 8 layers whose growth rate doubles from block to block (8, 16, 32, 64,
  128: "increasing growth rate") with "fully dense connectivity": every layer reads the concatenation of
  the block's input and all earlier layers' outputs, and the transitions are plain 2x2 stride-2 average
  pooling (no 1x1 transition conv), so every layer of the network reaches every later one; the last block
  ends with BN-ReLU and global average pooling.
- a dense layer (Fig. 1 right): the *condensed learned group convolution* -- select the input channels
  the learned group conv kept (``index_select``: the paper's Index layer, Sec. 3.1), BN, ReLU, a 1x1 conv
  of ``bottleneck * growth`` outputs (bottleneck 4) in ``G`` groups, channel shuffle of ``G`` groups (the
  paper's Permute, Sec. 4.1) -- then BN, ReLU, a 3x3 group conv of ``G`` groups producing ``growth``
  channels. With the condensation factor ``C = G`` (the published models, and all
  ``condensenet_converted.py`` supports) each group keeps ``in_channels / C`` input channels after
  condensing, so the selection has ``G * in_channels / C = in_channels`` entries (official
  ``layers.CondensingConv``: ``in_channels * groups // condense_factor``); a channel may be kept by several
  groups or by none.
- classifier (official ``layers.CondenseLinear``, drop rate 0.5): the fully connected layer is condensed too;
  it reads half of the pooled features, ``int(2064 * 0.5) = 1032`` of them, again by ``index_select``.

The kept-channel indices are ``torch.long`` buffers, so they are saved and loaded with the weights: trained
weights carry their own indices. Here they are initialised deterministically: the identity (``arange``) for
the dense layers, every other feature for the classifier (so every dense layer's output reaches it).
Module names follow the official converted model (``features.denseblock_1.denselayer_1.conv_1.index``, ...):
its state dict maps key for key except the classifier (official ``classifier.linear.*`` / ``classifier.index``
are ``fc.*`` / ``select.index`` here) and the ``module.`` prefix of its ``DataParallel`` checkpoints.

Complexity at 224x224 (CondenseNet paper Table 5, quoted in the V2 paper's Table 8): G=C=4: 529 MFLOPs,
4.8 M params; G=C=8: 274 MFLOPs, 2.9 M params. The CondenseNet paper's FLOPs are the official code's
``utils.measure_model``: conv and FC multiply-adds *plus* one op per ReLU output element, the FC bias adds and
the average-pooling window sums; its params count every parameter (BN included). Counted that way this
model gives 529.3 and 274.2 MFLOPs; the package's engine (``count_cost``: conv + FC multiply-adds only)
gives 516.6 and 261.5 MFLOPs. Params (all parameters, BN included): 4.77 M and 2.94 M.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from shufflenet.errors import UserInputError
from shufflenet.models._base import Classifier, init_kaiming
from shufflenet.models._checks import (
    MAX_CHANNELS,
    check_classifier_args,
    check_float,
    check_int,
    check_int_sequence,
)
from shufflenet.models._registry import PaperRef, register_model

# ImageNet configuration (official README command): layers and growth rate per dense block.
STAGES: tuple[int, ...] = (4, 6, 8, 10, 8)
GROWTH: tuple[int, ...] = (8, 16, 32, 64, 128)
BOTTLENECK = 4          # 1x1 conv width = bottleneck * growth (official ``--bottleneck 4``)
CLASSIFIER_KEEP = 0.5   # fraction of pooled features the condensed classifier reads (official CondenseLinear)


class CondensedGroupConv(nn.Module):
    """The converted learned group convolution (CondenseNet paper Fig. 1 right, Index Sec. 3.1; official
    ``layers.CondensingConv`` / ``CondenseConv``): index_select of the kept input channels, BN, ReLU, a 1x1
    conv in ``groups`` groups, channel shuffle of ``groups`` groups.

    ``index`` (a ``torch.long`` buffer of ``in_channels`` entries, ``G * in_channels / C`` with ``C = G``)
    lists the input channel each slot reads; slot block ``i`` feeds group ``i``. Initialised to ``arange``;
    trained weights carry their own.
    """

    def __init__(self, in_channels: int, out_channels: int, groups: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.groups = groups
        self.register_buffer("index", torch.arange(in_channels, dtype=torch.long))
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.relu(self.norm(torch.index_select(x, 1, self.index))))
        # During training output channel o of the learned conv belongs to group o % G (official
        # ``_mask[i::groups]``); the converted conv stores group i's outputs contiguously, and the shuffle
        # puts them back in the learned order, so each 3x3 group conv group sees every 1x1 group (Permute,
        # Sec. 4.1).
        # Written without reading shapes (and at most 4-D) so that torch.fx and the exporters can trace it.
        y = x.flatten(2).unflatten(1, (self.groups, -1)).transpose(1, 2)
        return y.flatten(1, 2).reshape_as(x)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}, groups={self.groups}"


class BNReLUConv(nn.Sequential):
    """Pre-activation ``BN -> ReLU -> Conv`` (official ``layers.Conv``; keys ``norm``, ``relu``, ``conv``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, groups: int = 1) -> None:
        super().__init__(OrderedDict(
            norm=nn.BatchNorm2d(in_channels),
            relu=nn.ReLU(inplace=True),
            conv=nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, groups=groups,
                           bias=False),
        ))


class DenseLayer(nn.Module):
    """One CondenseNet layer (paper Fig. 1 right): condensed 1x1 learned group conv to ``bottleneck *
    growth`` channels, BN-ReLU-3x3 group conv to ``growth`` channels, concatenated after its input."""

    def __init__(self, in_channels: int, growth: int, groups: int, bottleneck: int = BOTTLENECK) -> None:
        super().__init__()
        self.conv_1 = CondensedGroupConv(in_channels, bottleneck * growth, groups)
        self.conv_2 = BNReLUConv(bottleneck * growth, growth, 3, groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.conv_2(self.conv_1(x))], 1)


class FeatureSelect(nn.Module):
    """The condensed classifier's input selection (official ``layers.CondenseLinear``): ``index_select`` of
    ``kept`` of the ``in_features`` pooled features; ``index`` is a ``torch.long`` buffer."""

    def __init__(self, in_features: int, kept: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.kept = kept
        # Evenly spread, not arange: the first half of the channels holds no output of the last dense
        # block, whose weights would then get zero gradients when trained from this initialisation.
        self.register_buffer("index", torch.arange(kept, dtype=torch.long) * in_features // kept)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.index_select(x, 1, self.index)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, kept={self.kept}"


class CondenseNet(Classifier):
    """CondenseNet classifier, converted form (learned group convs condensed to index_select + group conv).

    Args:
        stages: layers per dense block (ImageNet: 4-6-8-10-8).
        growth: growth rate per dense block (ImageNet: 8-16-32-64-128); the stem has ``2 * growth[0]``.
        groups: ``G`` = ``C``, the groups of both the 1x1 and the 3x3 conv and the condensation factor.
        bottleneck: the 1x1 conv has ``bottleneck * growth`` outputs.
        classifier_keep: fraction of the pooled features the condensed classifier reads.
        small_input: for 28-64 px images: a stride-1 stem and no pooling after the first dense block
            (total stride 8, not 32).
        drop_rate: dropout before the classifier.

    ``num_features`` is the classifier's input width (the kept features, 1032 for ImageNet);
    ``forward_features`` returns the last BN-ReLU map of all ``2 * growth[0] + sum(stages * growth)``
    channels (2064 for ImageNet).
    """

    def __init__(
        self,
        stages: Sequence[int] = STAGES,
        growth: Sequence[int] = GROWTH,
        groups: int = 4,
        bottleneck: int = BOTTLENECK,
        classifier_keep: float = CLASSIFIER_KEEP,
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        small_input: bool = False,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        stages, growth = check_int_sequence("stages", stages), check_int_sequence("growth", growth)
        if len(stages) != len(growth):
            raise UserInputError(f"stages and growth must have one entry per dense block, got {len(stages)} "
                                 f"stages and {len(growth)} growth rates")
        groups = check_int("groups", groups, 1, MAX_CHANNELS)
        bottleneck = check_int("bottleneck", bottleneck, 1, MAX_CHANNELS)
        check_float("classifier_keep", classifier_keep, above=0.0)
        if classifier_keep > 1.0:
            raise UserInputError(f"classifier_keep must be a fraction in (0, 1], got {classifier_keep!r}")
        check_classifier_args(num_classes, in_chans, drop_rate, small_input)
        for k in growth:
            # the 3x3 group conv splits the growth (its output) into G groups; every layer's input is then a
            # multiple of G too once the stem's 2 * growth[0] is
            if k % groups:
                raise UserInputError(f"every growth rate must be divisible by groups={groups}, got {k}")
        if (2 * growth[0]) % groups:
            raise UserInputError(f"the stem's 2 * growth[0] = {2 * growth[0]} channels are not divisible by "
                                 f"groups={groups}")

        self.stages = stages
        self.growth = growth
        self.groups = groups
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        channels = 2 * growth[0]
        stride = 1 if small_input else 2
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            init_conv=nn.Conv2d(in_chans, channels, 3, stride, 1, bias=False))
        total_stride = stride
        for i, (n, k) in enumerate(zip(stages, growth, strict=True)):
            block = nn.Sequential(OrderedDict(
                (f"denselayer_{j + 1}", DenseLayer(channels + j * k, k, groups, bottleneck))
                for j in range(n)))
            layers[f"denseblock_{i + 1}"] = block
            channels += n * k
            # small_input drops the first transition: with the stride-1 stem a 28 px map is 3 px at the end
            if i < len(stages) - 1 and not (small_input and i == 0):
                layers[f"transition_{i + 1}"] = nn.AvgPool2d(2, 2)
                total_stride *= 2
        layers["norm_last"] = nn.BatchNorm2d(channels)
        layers["relu_last"] = nn.ReLU(inplace=True)
        self.features = nn.Sequential(layers)
        self.body_channels = channels
        kept = max(1, int(channels * classifier_keep))
        self.select = FeatureSelect(channels, kept)
        self.num_features = kept
        # Total stride: the smallest input whose average poolings never see an empty map.
        self.min_input_size = total_stride
        self.fc = nn.Linear(kept, num_classes)
        init_kaiming(self, fc_std=None)  # The official initialisation (``models/condensenet.py``)


    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pool, the condensed classifier's feature selection, dropout, FC."""
        x = self.select(x.mean((2, 3)))
        if self.drop_rate > 0.0:
            x = nn.functional.dropout(x, self.drop_rate, self.training)
        return x if pre_logits else self.fc(x)


_SRC = "CondenseNet paper Table 5 (FLOPs incl. ReLU/pool ops; conv+FC madds are 2-5% lower)"


# The CondenseNet paper's FLOPs add ReLU, pooling and FC-bias ops to the conv + FC multiply-adds this
# package counts (module docstring): 2.3% (G=4) and 4.6% (G=8) of the total, hence 5% instead of 2%.
@register_model("condensenet_g4", paper=PaperRef(529, 4.8, _SRC, tolerance=0.05))
def condensenet_g4(**kwargs: Any) -> CondenseNet:
    """CondenseNet-74 (G=C=4): 529 MFLOPs, 4.8 M params, 26.2% top-1 error (V2 paper Table 8)."""
    return CondenseNet(STAGES, GROWTH, 4, **kwargs)


@register_model("condensenet_g8", paper=PaperRef(274, 2.9, _SRC, tolerance=0.05))
def condensenet_g8(**kwargs: Any) -> CondenseNet:
    """CondenseNet-74 (G=C=8): 274 MFLOPs, 2.9 M params, 29.0% top-1 error (V2 paper Table 8)."""
    return CondenseNet(STAGES, GROWTH, 8, **kwargs)
