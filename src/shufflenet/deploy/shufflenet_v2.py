"""ShuffleNet V2 for inference with its channel shuffle folded away.

The paper counts channel split, concat and shuffle as data movement a fast network should keep small
(Sec. 2, G4; Sec. 3: "the three successive element-wise operations ... are merged into a single
element-wise operation"). Here they cost almost nothing, because the shuffle is never done:

* **Logical vs physical channel order.** Every channel of the network is computed exactly once, by one
  convolution, and consumed exactly once, by the branch of a later unit (ShuffleNet V2's identity half is
  passed on untouched until a split sends it into a branch, Fig. 3c) or by the first unit of the next
  stage. The *logical* order (the one the original model computes, shuffle included) is followed at build
  time only, to find for each channel which unit consumes it.
* **Each tensor is stored in consumer order.** A convolution's output channels may be written in any
  order by permuting its weight rows (and bias), so each one writes its channels sorted by the unit that
  will read them. A unit's branch then reads one contiguous channel slice from each earlier tensor it
  draws on, and its first convolution's weight columns are permuted to match the physical order it
  receives. The identity half is never copied, never shuffled and never split.
* **What remains** is one concat per unit, of its branch input alone (half the channels), and one concat
  per stage, where the next downsampling unit reads all channels. The original network moves every
  channel in each unit (the concat, plus the shuffle's transpose in torchvision's layout).

BatchNorm is folded into the convolution before it and the ReLU fused behind it
(:class:`shufflenet.deploy.fold.FoldedConv`). Both layouts and the SE, residual and extra-depthwise
variants are handled; a residual unit's output keeps the physical order of its input (the add needs it).
The result computes the same function as the model it was built from, to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from shufflenet.deploy.fold import FoldedConv, fold_sequential
from shufflenet.errors import UserInputError

Piece = tuple[int, int, int]  # (source index, first physical channel, one past the last)


class FoldedSqueezeExcite(nn.Module):
    """Squeeze-Excitation with its two 1x1 convolutions as :class:`FoldedConv` (so they can be permuted)."""

    def __init__(self, fc1: FoldedConv, fc2: FoldedConv) -> None:
        super().__init__()
        self.fc1 = fc1
        self.fc2 = fc2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc2(self.fc1(x.mean((2, 3), keepdim=True))))

    def permute_channels(self, order: torch.Tensor) -> None:
        self.fc1.permute_inputs(order)
        self.fc2.permute_outputs(order)


class BranchStep(nn.Module):
    """One branch of a unit: its folded layers, optionally closed by the residual add + ReLU."""

    def __init__(self, layers: list[nn.Module], residual: bool = False) -> None:
        super().__init__()
        self.body = nn.Sequential(*layers)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return torch.relu_(y + x) if self.residual else y

    def permute_input(self, order: torch.Tensor) -> None:
        """Read the input in physical order ``order`` (position ``p`` holds logical input ``order[p]``)."""
        first = self.body[0]
        if not isinstance(first, FoldedConv):
            raise UserInputError(f"a branch must start with a convolution, got {type(first).__name__}")
        if first.depthwise:  # a depthwise conv reorders its outputs with its inputs: pass the order on
            first.permute_outputs(order)
            nxt = self.body[1]
            if not isinstance(nxt, FoldedConv) or nxt.groups != 1:
                raise UserInputError("a depthwise convolution opening a branch must be followed by a dense one")
            nxt.permute_inputs(order)
        else:
            first.permute_inputs(order)

    def permute_output(self, order: torch.Tensor) -> None:
        """Write the output in physical order ``order``."""
        layers = list(self.body)
        last_conv = max(i for i, m in enumerate(layers) if isinstance(m, FoldedConv))
        conv = layers[last_conv]
        assert isinstance(conv, FoldedConv)
        conv.permute_outputs(order)
        for m in layers[last_conv + 1:]:
            if isinstance(m, FoldedSqueezeExcite):
                m.permute_channels(order)


class ConcatStep(nn.Module):
    """The one concat of a stage: all channels, for the next downsampling unit (or Conv5)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class FoldedShuffleNetV2(nn.Module):
    """A :class:`~shufflenet.models.shufflenet_v2.ShuffleNetV2` rebuilt for inference (module docstring):
    a stem, a list of steps that each read channel slices of earlier outputs, and the head."""

    def __init__(self, stem: nn.Module, steps: list[nn.Module], pieces: list[list[Piece]],
                 head_pieces: list[Piece], conv5: FoldedConv, fc: nn.Linear, *, in_chans: int,
                 min_input_size: int, channels_last: bool = False) -> None:
        super().__init__()
        self.stem = stem
        self.steps = nn.ModuleList(steps)
        self.pieces = [list(p) for p in pieces]
        self.head_pieces = list(head_pieces)
        self.conv5 = conv5
        self.fc = fc
        self.in_chans = in_chans
        self.min_input_size = min_input_size
        self.channels_last = channels_last

    @staticmethod
    def _gather(sources: list[torch.Tensor], pieces: list[Piece]) -> torch.Tensor:
        if len(pieces) == 1:
            s, a, b = pieces[0]
            src = sources[s]
            return src if (a == 0 and b == src.shape[1]) else src[:, a:b]
        return torch.cat([sources[s][:, a:b] for s, a, b in pieces], 1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        sources = [self.stem(x)]
        for step, pieces in zip(self.steps, self.pieces, strict=True):
            sources.append(step(self._gather(sources, pieces)))
        return self.conv5(self._gather(sources, self.head_pieces))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from shufflenet.models.layers import check_input

        check_input(x, self.in_chans, self.min_input_size, type(self).__name__)
        return self.fc(self.forward_features(x).mean((2, 3)))

    @property
    def num_classes(self) -> int:
        return self.fc.out_features


@dataclass
class _Source:
    """A tensor of the folded graph: its width, and (once resolved) its physical order."""

    width: int
    free: bool  # its producer may write its channels in any order
    order: list[int] | None = None  # physical position p holds logical channel order[p]


@dataclass
class _Consumer:
    """A step reading channels: for each of its logical inputs, (source, the source's logical channel)."""

    needs: list[tuple[int, int]]
    step: int  # the step index (len(steps) for the head)
    produces: int | None = None  # the source it writes (None for the head)
    follows_input: bool = False  # its output keeps its input's physical order (residual add, concat)
    pieces: list[Piece] = field(default_factory=list)
    order: list[int] = field(default_factory=list)  # physical input position p holds logical input order[p]


def _fold_branch(seq: nn.Sequential) -> list[nn.Module]:
    from shufflenet.models.layers import SqueezeExcite

    layers: list[nn.Module] = []
    for m in fold_sequential(list(seq)):
        if isinstance(m, SqueezeExcite):
            m = FoldedSqueezeExcite(FoldedConv.from_conv_bn(m.fc1, None, relu=True),
                                    FoldedConv.from_conv_bn(m.fc2, None))
        elif not isinstance(m, FoldedConv | nn.Identity):
            raise UserInputError(f"cannot fold a {type(m).__name__} inside a ShuffleNet V2 branch")
        layers.append(m)
    return layers


def _shuffle2(values: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Channel shuffle with 2 groups: output ``2k + i`` is input ``i*C/2 + k`` (V1 paper, Fig. 1c)."""
    half = len(values) // 2
    return [values[(m % 2) * half + m // 2] for m in range(len(values))]


def fold_shufflenet_v2(model: nn.Module, *, channels_last: bool = False) -> FoldedShuffleNetV2:
    """Build the folded inference network of a ShuffleNet V2 (``layout`` official or torchvision, any width,
    SE / residual / extra-depthwise units). ``model`` is not modified."""
    from shufflenet.models.shufflenet_v2 import ShuffleNetV2, ShuffleV2Unit

    if not isinstance(model, ShuffleNetV2):
        raise UserInputError(f"expected a ShuffleNet V2, got {type(model).__name__}")
    units = [u for name in model.stage_names for u in getattr(model, name)]
    if any(type(u) is not ShuffleV2Unit for u in units):
        raise UserInputError("only ShuffleNet V2 models built from the standard unit can be folded")

    stem_layers = fold_sequential(list(model.conv1))
    if not isinstance(model.maxpool, nn.Identity):
        stem_layers.append(model.maxpool)
    stem = nn.Sequential(*stem_layers)
    stem_width = int([m for m in model.conv1 if isinstance(m, nn.Conv2d)][-1].out_channels)

    sources = [_Source(stem_width, free=False, order=list(range(stem_width)))]
    steps: list[nn.Module] = []
    consumers: list[_Consumer] = []
    state = [(0, c) for c in range(stem_width)]  # logical channel -> (source, the source's logical channel)

    def add_step(module: nn.Module, needs: list[tuple[int, int]], width: int, free: bool,
                 follows_input: bool = False) -> int:
        sources.append(_Source(width, free=free))
        consumers.append(_Consumer(needs, len(steps), len(sources) - 1, follows_input))
        steps.append(module)
        return len(sources) - 1

    for stage in model.stage_names:
        # One concat per stage: the downsampling unit's two branches read the same, whole tensor.
        if len({s for s, _ in state}) > 1:
            src = add_step(ConcatStep(), list(state), len(state), free=False, follows_input=True)
            state = [(src, c) for c in range(len(state))]
        for unit in getattr(model, stage):
            official = unit.layout == "official"
            if unit.basic:
                half = len(state) // 2
                ident, branch_in = (state[0::2], state[1::2]) if official else (state[:half], state[half:])
                layers = _fold_branch(unit.branch2)
                width = _out_width(layers)
                src = add_step(BranchStep(layers, residual=unit.residual), list(branch_in), width,
                               free=not unit.residual, follows_input=unit.residual)
                out = ident + [(src, c) for c in range(width)]
            else:
                b1 = _fold_branch(unit.branch1)
                b2 = _fold_branch(unit.branch2)
                s1 = add_step(BranchStep(b1), list(state), _out_width(b1), free=True)
                s2 = add_step(BranchStep(b2), list(state), _out_width(b2), free=True)
                out = [(s1, c) for c in range(_out_width(b1))] + [(s2, c) for c in range(_out_width(b2))]
            state = out if official else _shuffle2(out)
    head = _Consumer(list(state), len(steps))
    conv5 = fold_sequential(list(model.conv5))
    if len(conv5) != 1 or not isinstance(conv5[0], FoldedConv):
        raise UserInputError("ShuffleNet V2's Conv5 must be one conv + BN + ReLU")
    conv5_layer = conv5[0]

    _resolve_orders(sources, consumers + [head])
    for consumer, step in zip(consumers, steps, strict=True):
        order = torch.tensor(consumer.order, dtype=torch.long)
        produced = sources[consumer.produces] if consumer.produces is not None else None
        if isinstance(step, BranchStep):
            step.permute_input(order)
            if produced is not None and produced.free:
                assert produced.order is not None
                step.permute_output(torch.tensor(produced.order, dtype=torch.long))
            elif step.residual:
                step.permute_output(order)
    conv5_layer.permute_inputs(torch.tensor(head.order, dtype=torch.long))

    fc = nn.Linear(model.fc.in_features, model.fc.out_features, bias=model.fc.bias is not None)
    fc.load_state_dict(model.fc.state_dict())
    folded = FoldedShuffleNetV2(stem, steps, [c.pieces for c in consumers], head.pieces, conv5_layer, fc,
                                in_chans=model.in_chans, min_input_size=model.min_input_size,
                                channels_last=channels_last)
    folded.eval()
    if channels_last:
        folded = folded.to(memory_format=torch.channels_last)
    return folded


def _out_width(layers: list[nn.Module]) -> int:
    return next(m.out_channels for m in reversed(layers) if isinstance(m, FoldedConv))


def _resolve_orders(sources: list[_Source], consumers: list[_Consumer]) -> None:
    """Give every source its physical order and every consumer its pieces (module docstring).

    A free source is sorted by (consuming step, position in that step's input); a source that follows its
    producer's input takes the producer's input order. Sources are resolved in the order they are created,
    which is also the order of the steps, so a producer's input is always resolved before its output.
    """
    reader: dict[tuple[int, int], tuple[int, int]] = {}
    for ci, consumer in enumerate(consumers):
        for j, key in enumerate(consumer.needs):
            reader.setdefault(key, (ci, j))  # a downsampling unit's two branches read the same channels
    producer_of = {c.produces: c for c in consumers if c.produces is not None}
    for si, source in enumerate(sources):
        if source.order is None:
            if source.free:
                source.order = sorted(range(source.width), key=lambda c, si=si: reader.get((si, c), (1 << 30, c)))
            else:
                producer = producer_of[si]
                _pieces_for(producer, sources)
                source.order = list(producer.order)
    for consumer in consumers:
        _pieces_for(consumer, sources)


def _pieces_for(consumer: _Consumer, sources: list[_Source]) -> None:
    """The consumer's contiguous slices (in order of first appearance of each source) and its input order."""
    if consumer.pieces:
        return
    position: dict[int, dict[int, int]] = {}
    wanted: dict[int, list[tuple[int, int]]] = {}
    for j, (s, c) in enumerate(consumer.needs):
        if s not in position:
            order = sources[s].order
            assert order is not None
            position[s] = {logical: p for p, logical in enumerate(order)}
            wanted[s] = []
        wanted[s].append((position[s][c], j))
    pieces: list[Piece] = []
    input_order: list[int] = []
    for s, items in wanted.items():
        items.sort()
        start = prev = items[0][0]
        for p, j in items:
            if p != prev and p != prev + 1:
                pieces.append((s, start, prev + 1))
                start = p
            prev = p
            input_order.append(j)
        pieces.append((s, start, prev + 1))
    consumer.pieces = pieces
    consumer.order = input_order
