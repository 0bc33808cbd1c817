"""The ShuffleNet V2 paper's light-weight DenseNet ("DenseNet (our impl.)", V2 paper Table 8).

**Published** (V2 paper Table 8 and its text): the network "uses the Table 5 macro-structure with DenseNet
blocks in Stages 2-4, widths adjusted", at 0.5x / 1x / 1.5x / 2x with 42 / 142 / 295 / 519 MFLOPs and
58.6 / 45.2 / 39.9 / 34.6 % top-1 error. The paper gives no widths, no layer counts and no parameter counts.

**Table 5 macro-structure** (V2 paper Table 5): Conv1 3x3 stride 2, 24 channels (BN, ReLU); 3x3 max pool
stride 2; Stage2 / Stage3 / Stage4 at 28x28 / 14x14 / 7x7, each beginning with a stride-2 step; Conv5 1x1 to
1024 channels (2048 for 2x, BN, ReLU); global average pool; FC.

**DenseNet blocks** (Huang et al., CVPR 2017, DenseNet-BC, Sec. 3): a dense layer is BN-ReLU-1x1 conv to
``4 * k`` channels (the bottleneck, "B") then BN-ReLU-3x3 conv to ``k`` channels (the growth rate), and its
output is concatenated after its input, so every layer reads the outputs of all earlier layers of its block.
A transition is BN-ReLU-1x1 conv to ``floor(theta * m)`` channels (compression theta = 0.5, "C") followed by
2x2 average pooling with stride 2. DenseNet ends its last block with BN-ReLU (torchvision's ``norm5``).

**Reconstructed here** (none of this is published; chosen so that one rule gives Table 8's FLOPs):

- Each stage's stride-2 step is a DenseNet transition placed before the stage: one after the max pool for
  Stage2 (56x56 -> 28x28) and one between stages for Stage3 and Stage4. DenseNet downsamples only in its
  transitions, so this keeps both Table 5's resolutions and DenseNet's block.
- Dense layers per stage: 4 / 8 / 4, Table 5's unit repeats.
- Growth rate ``k = int(21 * width)``: 10 / 21 / 31 / 42 for 0.5x / 1x / 1.5x / 2x.
- The transition before Stage2 maps the stem's 24 channels to ``k``; the transitions before Stage3 and
  Stage4 use DenseNet-BC's compression 0.5. Stage widths (input -> output) at 1x: 21 -> 105, 52 -> 220,
  110 -> 194.
- Before Conv5 a BN-ReLU closes the last dense block (DenseNet's final BN-ReLU: dense layers emit
  un-normalised conv outputs, and every DenseNet consumer pre-activates its input).

One step of the growth rate moves the FLOPs by 4-14% (2x to 0.5x), so no integer growth lands closer. Two
nearby rules were rejected: DenseNet-BC's ``2k`` channels entering the first block (with ``k = 20 * width``)
gives 0.5x +6.4%, and compressing the 24 stem channels by 0.5 gives 1x -4.6% (k = 21) or +3.5% (k = 22).

**Complexity** at 224x224, counted with ``shufflenet.cost.count_cost``: conv + FC multiply-adds only, the
papers' "FLOPs" (BN, ReLU, pooling and concatenation count zero): 41.64 / 139.97 / 286.30 / 530.77 MFLOPs,
i.e. -0.9 / -1.4 / -2.95 / +2.3% from Table 8 (within the 3% tolerance of reconstructed widths; 1.5x is
near its edge because growth 32 would give +3.1%). Parameters (all of them, BN included): 1.22 / 1.67 /
2.28 / 4.60 M (not published).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from shufflenet.errors import UserInputError
from shufflenet.models._base import Classifier
from shufflenet.models._checks import (
    MAX_CHANNELS,
    check_classifier_args,
    check_float,
    check_int,
    check_int_sequence,
)
from shufflenet.models._registry import PaperRef, register_model
from shufflenet.models.layers import ConvBNAct

STAGE_LAYERS: tuple[int, ...] = (4, 8, 4)  # Table 5's unit repeats, here dense layers per stage
BASE_GROWTH = 21          # growth rate at 1x (reconstructed); k = int(21 * width)
BOTTLENECK = 4            # DenseNet-BC: the 1x1 conv has 4 * k outputs
COMPRESSION = 0.5         # DenseNet-BC's theta for the transitions between stages
STEM_CHANNELS = 24        # Table 5 Conv1


def growth_for(width_mult: float) -> int:
    """The reconstructed growth rate of a width multiplier: ``int(21 * width_mult)`` (10/21/31/42)."""
    check_float("width_mult", width_mult, above=0.0)
    return max(1, int(BASE_GROWTH * width_mult))


class DenseLayer(nn.Module):
    """A DenseNet-BC layer (Huang et al. Sec. 3, "Bottleneck layers"): BN-ReLU-1x1 conv to
    ``bottleneck * growth``, BN-ReLU-3x3 conv to ``growth``; returns ``cat([x, new], 1)``."""

    def __init__(self, in_channels: int, growth: int, bottleneck: int = BOTTLENECK) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.growth = growth
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, bottleneck * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bottleneck * growth)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bottleneck * growth, growth, 3, padding=1, bias=False)

    @property
    def out_channels(self) -> int:
        return self.in_channels + self.growth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new = self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))
        return torch.cat([x, new], 1)


class Transition(nn.Module):
    """A DenseNet transition (Huang et al. Sec. 3, "Transition layers"): BN-ReLU-1x1 conv, 2x2 average
    pool with stride 2 (the conv before the pool, as in the paper and torchvision)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.pool = nn.AvgPool2d(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(self.relu(self.norm(x))))


class DenseNetLight(Classifier):
    """The V2 paper's DenseNet re-implementation: Table 5 macro-structure, DenseNet-BC stages.

    Layout: ``stem`` (Conv1) -> ``maxpool`` -> ``transition2`` -> ``stage2`` -> ``transition3`` -> ``stage3``
    -> ``transition4`` -> ``stage4`` -> ``final_norm`` (BN-ReLU) -> ``conv5`` -> pool -> ``fc``. Each
    ``stageN`` is an ``nn.Sequential`` of :class:`DenseLayer`; the transitions sit outside it, as DenseNet's
    between its blocks, so a stage holds exactly the layers that share its features.

    Args:
        growth: the growth rate ``k`` (new channels per dense layer).
        stage_layers: dense layers per stage (Table 5: 4, 8, 4); one stride-2 transition precedes each.
        final_channels: Conv5 output channels (Table 5: 1024; 2048 for 2x).
        entry_channels: output channels of the transition before the first stage (default: ``growth``).
        compression: DenseNet's theta; the later transitions output ``int(theta * in_channels)``.
        bottleneck: the dense layer's 1x1 conv has ``bottleneck * growth`` outputs (DenseNet-BC: 4).
        stem_channels: Conv1 output channels (Table 5: 24).
        small_input: for 28-64 px images: a stride-1 Conv1 and no max pool (total stride 8, not 32).
        drop_rate: dropout before the classifier.
    """

    def __init__(
        self,
        growth: int = BASE_GROWTH,
        stage_layers: Sequence[int] = STAGE_LAYERS,
        final_channels: int = 1024,
        entry_channels: int | None = None,
        compression: float = COMPRESSION,
        bottleneck: int = BOTTLENECK,
        stem_channels: int = STEM_CHANNELS,
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        small_input: bool = False,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        growth = check_int("growth", growth, 1, MAX_CHANNELS)
        stage_layers = check_int_sequence("stage_layers", stage_layers)
        final_channels = check_int("final_channels", final_channels, 1, MAX_CHANNELS)
        entry = growth
        if entry_channels is not None:
            entry = check_int("entry_channels", entry_channels, 1, MAX_CHANNELS)
        check_float("compression", compression, above=0.0)
        if compression > 1.0:
            raise UserInputError(f"compression must be a fraction in (0, 1], got {compression!r}")
        bottleneck = check_int("bottleneck", bottleneck, 1, MAX_CHANNELS)
        stem_channels = check_int("stem_channels", stem_channels, 1, MAX_CHANNELS)
        check_classifier_args(num_classes, in_chans, drop_rate, small_input)

        self.growth = growth
        self.stage_layers = stage_layers
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.stem = ConvBNAct(in_chans, stem_channels, 3, 1 if small_input else 2)
        self.maxpool: nn.Module = nn.Identity() if small_input else nn.MaxPool2d(3, 2, 1)
        total_stride = 1 if small_input else 4
        prev = stem_channels
        self.stage_names: list[str] = []
        for i, n in enumerate(stage_layers):
            out = entry if i == 0 else int(compression * prev)
            if out < 1:
                raise UserInputError(f"compression={compression!r} leaves no channel of the {prev} entering "
                                     f"stage{i + 2}")
            setattr(self, f"transition{i + 2}", Transition(prev, out))
            total_stride *= 2
            setattr(self, f"stage{i + 2}", nn.Sequential(OrderedDict(
                (f"layer{j + 1}", DenseLayer(out + j * growth, growth, bottleneck)) for j in range(n))))
            self.stage_names.append(f"stage{i + 2}")
            prev = out + n * growth
        self.body_channels = prev
        self.final_norm = nn.Sequential(OrderedDict(norm=nn.BatchNorm2d(prev), relu=nn.ReLU(inplace=True)))
        self.conv5 = ConvBNAct(prev, final_channels, 1)
        self.num_features = final_channels
        # Total stride: the smallest input whose last 2x2 average pool still has a whole window.
        self.min_input_size = total_stride
        self.fc = nn.Linear(final_channels, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """torchvision's DenseNet init: Kaiming-normal convs, BN 1/0, linear bias 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.stem(x))
        for name in self.stage_names:
            x = getattr(self, name)(getattr(self, "transition" + name[len("stage"):])(x))
        return self.conv5(self.final_norm(x))


def _light(width_mult: float, **kwargs: Any) -> DenseNetLight:
    return DenseNetLight(growth_for(width_mult), STAGE_LAYERS, 2048 if width_mult == 2.0 else 1024, **kwargs)


_SRC = "ShuffleNet V2 Table 8 (our impl.); widths reconstructed"


@register_model("densenet_light_x0_5", paper=PaperRef(42, None, _SRC, tolerance=0.03))
def densenet_light_x0_5(**kwargs: Any) -> DenseNetLight:
    """DenseNet 0.5x (our impl.), growth 10: 42 MFLOPs, 58.6% top-1 error (V2 paper Table 8)."""
    return _light(0.5, **kwargs)


@register_model("densenet_light_x1_0", paper=PaperRef(142, None, _SRC, tolerance=0.03))
def densenet_light_x1_0(**kwargs: Any) -> DenseNetLight:
    """DenseNet 1x (our impl.), growth 21: 142 MFLOPs, 45.2% top-1 error (V2 paper Table 8)."""
    return _light(1.0, **kwargs)


@register_model("densenet_light_x1_5", paper=PaperRef(295, None, _SRC, tolerance=0.03))
def densenet_light_x1_5(**kwargs: Any) -> DenseNetLight:
    """DenseNet 1.5x (our impl.), growth 31: 295 MFLOPs, 39.9% top-1 error (V2 paper Table 8)."""
    return _light(1.5, **kwargs)


@register_model("densenet_light_x2_0", paper=PaperRef(519, None, _SRC, tolerance=0.03))
def densenet_light_x2_0(**kwargs: Any) -> DenseNetLight:
    """DenseNet 2x (our impl.), growth 42, Conv5 2048: 519 MFLOPs, 34.6% top-1 error (V2 paper Table 8)."""
    return _light(2.0, **kwargs)
