"""The traced graph the audit reads: the cost engine's priced ops plus who feeds whom.

:class:`GraphCounter` is the cost engine's dispatch mode (:class:`shufflenet.cost.CostCounter`, paper mode)
that also records, for every priced aten op, which earlier priced ops produced its input tensors, and for
every convolution its hyper-parameters (input/output channels, groups, kernel, stride). Views (free ops)
are transparent: a view's output is produced by whatever produced its input. Composite ops that the engine
prices as the ops they decompose into are recorded as those ops.

One :class:`Node` per cost row, in execution order, so ``graph.nodes[i].row`` is ``report.layers[i]``
and node indices are a topological order of the data flow.
"""

from __future__ import annotations

import operator
import weakref
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_leaves

from shufflenet.cost import CostCounter, CostReport, LayerCost, count_cost, tables
from shufflenet.errors import UserInputError, cannot_run

# Row kinds that are "fragmented operators" in the paper's sense (Sec. 2, G3: the individual convolution or
# pooling operations of a block); a linear layer applied per position is a 1x1 convolution.
FRAGMENT_KINDS = frozenset({"conv", "gconv", "dwconv", "pool", "linear"})
_CONV_PACKETS = frozenset(tables.CONV_OPS)


@dataclass(frozen=True, slots=True)
class ConvInfo:
    """The hyper-parameters of one convolution call (2-d, not transposed)."""

    c1: int
    c2: int
    groups: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    in_hw: tuple[int, int]
    reads_model_input: bool = False

    @property
    def taps(self) -> int:
        return self.kernel[0] * self.kernel[1]

    @property
    def pointwise(self) -> bool:
        return self.kernel == (1, 1)


@dataclass(slots=True)
class Node:
    """One priced op: its cost row, the nodes that produced its inputs, and its conv parameters if any."""

    index: int
    row: LayerCost
    inputs: tuple[int, ...]
    conv: ConvInfo | None = None

    @property
    def module(self) -> str:
        return self.row.name

    @property
    def fragment(self) -> bool:
        """A conv, pooling or linear op: a "fragmented operator" of Sec. 2, G3."""
        return self.row.kind in FRAGMENT_KINDS


@dataclass
class Graph:
    """The priced ops of one forward pass with their data dependencies (see the module docstring)."""

    nodes: list[Node] = field(default_factory=list)


MODEL_INPUT = -1


class GraphCounter(CostCounter):
    """:class:`~shufflenet.cost.CostCounter` (paper mode) that also records the data flow: for every cost row,
    the rows that produced its inputs and, for a convolution, its :class:`ConvInfo` (``edges``)."""

    def __init__(self) -> None:
        super().__init__("paper")
        self.edges: list[tuple[tuple[int, ...], ConvInfo | None]] = []  # per cost row: producers, conv
        self._flow: dict[int, tuple[Any, tuple[int, ...]]] = {}
        self._leaf_calls = 0

    def track_input(self, x: torch.Tensor) -> None:
        self._set(x, (MODEL_INPUT,))

    def _set(self, t: torch.Tensor, producers: tuple[int, ...]) -> None:
        self._flow[id(t)] = (weakref.ref(t), producers)

    def _get(self, t: torch.Tensor) -> tuple[int, ...]:
        entry = self._flow.get(id(t))
        if entry is None or entry[0]() is not t:
            return ()
        return entry[1]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204 - torch's API
        kwargs = kwargs or {}
        calls, rows = self._leaf_calls, len(self.rows)
        out = super().__torch_dispatch__(func, types, args, kwargs)
        if self._leaf_calls != calls:  # a composite op: recorded as the ops it decomposed into
            return out
        self._leaf_calls += 1
        ins = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        producers = tuple(sorted({p for t in ins for p in self._get(t)}))
        outs = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        if len(self.rows) == rows:  # a free op (a view): its outputs come from its inputs' producers
            for t in outs:
                self._set(t, producers)
            return out
        index = len(self.edges)
        conv = _conv_info(func, args, producers) if func.overloadpacket in _CONV_PACKETS else None
        self.edges.append((tuple(p for p in producers if p >= 0), conv))
        for t in outs:
            self._set(t, (index,))
        return out


def _conv_info(func: Any, args: tuple, producers: tuple[int, ...]) -> ConvInfo | None:
    x, w = args[0], args[1]
    if not (isinstance(x, torch.Tensor) and isinstance(w, torch.Tensor)) or x.dim() != 4 or w.dim() != 4:
        return None
    if len(args) > 6 and args[6]:  # transposed
        return None
    groups = int(args[8]) if len(args) > 8 else 1
    stride = tuple(int(s) for s in args[3]) if len(args) > 3 else (1, 1)
    if len(stride) == 1:
        stride = (stride[0], stride[0])
    return ConvInfo(c1=int(x.shape[1]), c2=int(w.shape[0]), groups=groups,
                    kernel=(int(w.shape[2]), int(w.shape[3])), stride=(stride[0], stride[1]),
                    in_hw=(int(x.shape[2]), int(x.shape[3])), reads_model_input=MODEL_INPUT in producers)


def check_input_size(input_size: Any) -> tuple[int, ...]:
    """``input_size`` as a tuple of positive integers (NCHW), else a one-line :class:`UserInputError`."""
    try:
        size = tuple(operator.index(d) for d in input_size if not isinstance(d, bool))
    except TypeError:
        raise UserInputError(f"input_size must be a tuple of positive integers, got {input_size!r}") from None
    if not size or len(size) != len(input_size) or min(size) <= 0:
        raise UserInputError(f"input_size must be a tuple of positive integers, got {input_size!r}")
    return size


def trace(model: nn.Module, input_size: tuple[int, ...]) -> tuple[CostReport, Graph, CostReport]:
    """One paper-mode forward with the data flow recorded, and one deploy-mode count of the same model.

    Returns (paper report, graph, deploy report); ``graph.nodes[i].row is report.layers[i]``. A model that
    cannot run on ``input_size`` raises a one-line :class:`UserInputError`.
    """
    size = check_input_size(input_size)
    x = torch.randn(size, generator=torch.Generator().manual_seed(0))
    counter = GraphCounter()
    counter.track_input(x)
    try:
        report = counter.run(model, (x,), input_size=size)
        deploy = count_cost(model, size, mode="deploy")
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        if isinstance(exc, UserInputError):
            raise
        raise cannot_run(exc, size) from exc
    # one edge entry per cost row, by construction (strict: a mismatch is a bug, not bad input)
    pairs = enumerate(zip(report.layers, counter.edges, strict=True))
    nodes = [Node(i, row, inputs, conv) for i, (row, (inputs, conv)) in pairs]
    return report, Graph(nodes), deploy
