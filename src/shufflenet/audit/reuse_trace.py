"""Dispatch-level channel provenance: which channels of a block's output reach a later block *unchanged*.

The ShuffleNet V2 paper (Sec. 4, Fig. 4) argues that a ShuffleNet V2 unit reuses features: half of its
input channels go through the split straight to the next unit, so the number of channels of block ``i``
that reach block ``i + j`` directly is ``c * r^j`` with ``r = 0.5``, where DenseNet reuses every earlier
layer's output inside a dense block. This module measures that connectivity on any eager PyTorch model.

How: one forward pass under a ``TorchDispatchMode``. Beside every tensor that carries tracked channels the
mode keeps a *shadow*: an ``int32`` tensor of the same shape whose every element holds a provenance code
(source, channel) or 0 for "computed here". The ops that move values without computing new ones (views,
reshapes, transposes, split/chunk/slice/select, cat/stack, clone/contiguous/``_to_copy``, ``index_select``,
``index``, ``gather``, ``channel_shuffle``, padding, ``copy_``) are replayed on the shadows with the same
arguments, so a channel shuffle's 5-D reshape + transpose + reshape, the official code's fused
shuffle-split, or CondenseNet's ``index_select`` map the codes exactly as they map the values. Channel-wise
ops that change values but not which channel a value belongs to (BN, ReLU and other activations, a product
with a per-channel scale) keep the codes with a *modified* bit set: such a channel no longer counts as
unchanged, but the first conv of a block can still be told where its input channels came from (the learned
view, as DenseNet's Fig. 5). Every other op (conv, linear, add of two feature maps, pooling, ...) computes
new values: its output has no shadow.

Pooling and resizing count as computation: a max- or average-pooled channel is new. So nothing crosses a
ShuffleNet V2 stride-2 unit (both branches convolve), a DenseNet transition (conv + pool) or the average-
pooled shortcut of a ShuffleNet V1 stride-2 unit; the paper's "directly connected" channels are those that
pass without any operation on their values. A dtype cast keeps a channel unchanged.

Blocks are modules (ShuffleNet V2 units, DenseNet layers, ResNet blocks, ...). Each block's output
channels that are not unchanged from earlier get the block's own codes at its forward hook, so a channel
belongs to the block that computed it (the *first origin*): a ShuffleNet V2 unit's output holds ``c / 2``
channels of its own and ``c / 2`` passed through from earlier units. Channels a block receives that no
block computed (the stem's, a transition's) get the codes of an *outside* source at the block's forward
pre-hook. A block's input provenance, recorded at the pre-hook, then says exactly how many channels of
every earlier block reach it unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch._ops import OpOverload
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.weak import WeakTensorKeyDictionary

from shufflenet.errors import UserInputError

CHANNEL_BITS = 16
MAX_CHANNELS = 1 << CHANNEL_BITS          # channels of one tensor that codes can tell apart
MODIFIED = 1 << 30                        # bit set by channel-wise ops (BN, ReLU): not unchanged any more
MAX_SOURCES = (MODIFIED >> CHANNEL_BITS) - 2
_CODE_MASK = MODIFIED - 1
_DTYPE = torch.int32

# Block classes found without being named: the units of this package's and torchvision's networks.
KNOWN_BLOCKS = ("ShuffleV2Unit", "ShuffleV1Unit", "ShuffleV2Block", "ShuffleV1Block", "InvertedResidual",
                "BasicBlock", "Bottleneck", "_DenseLayer", "DepthwiseSeparable", "MBConv", "FusedMBConv",
                "Fire", "ResBottleneckBlock", "CNBlock", "Inception", "InceptionA", "InceptionB", "InceptionC",
                "InceptionD", "InceptionE")

# Ops replayed on the shadow of their first argument (values moved, never computed).
_MOVE_SELF = frozenset({
    "view", "_unsafe_view", "reshape", "_reshape_alias", "alias", "expand", "permute", "transpose", "t",
    "squeeze", "unsqueeze", "select", "slice", "split", "split_with_sizes", "unbind", "narrow", "chunk",
    "tensor_split", "clone", "contiguous", "detach", "lift_fresh", "lift_fresh_copy", "flip", "roll", "repeat",
    "index_select", "index", "gather", "channel_shuffle", "native_channel_shuffle", "pixel_shuffle",
    "pixel_unshuffle", "movedim", "flatten", "unflatten", "view_as", "reshape_as", "expand_as", "swapaxes",
    "swapdims", "unfold",
})
_MOVE_LIST = frozenset({"cat", "concat", "concatenate", "stack"})     # first argument: a list of tensors
_CAST = frozenset({"_to_copy", "to"})                                  # values kept, dtype may change
_PAD = frozenset({"constant_pad_nd"})                                  # padded channels are new
_CHANNELWISE = frozenset({
    "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "clamp", "clamp_", "clamp_min", "clamp_min_",
    "clamp_max", "clamp_max_", "sigmoid", "sigmoid_", "silu", "silu_", "gelu", "gelu_", "leaky_relu",
    "leaky_relu_", "hardswish", "hardswish_", "hardsigmoid", "hardsigmoid_", "elu", "elu_", "mish", "mish_",
    "tanh", "tanh_", "threshold", "threshold_", "prelu", "_prelu_kernel", "softplus", "neg", "abs",
})
_BATCH_NORM = frozenset({
    "native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
    "_native_batch_norm_legit_functional", "batch_norm", "_batch_norm_impl_index", "cudnn_batch_norm",
    "miopen_batch_norm", "_batch_norm_with_update", "_batch_norm_no_update",
})
_BINARY = frozenset({"add", "sub", "mul", "div", "rsub", "add_", "sub_", "mul_", "div_"})
_CONV = frozenset({"convolution", "_convolution", "conv1d", "conv2d", "conv3d"})

_MOVE, _MOVE_MANY, _TO, _PADDING, _CHANNEL, _BN, _BIN, _COPY_, _COPY, _OTHER = range(10)
_DECOMPOSE = object()


def encode(source: int, channel: int | torch.Tensor) -> Any:
    """The provenance code of ``channel`` of ``source`` (0 is reserved for "computed here")."""
    return ((source + 1) << CHANNEL_BITS) | channel


def decode_sources(codes: torch.Tensor) -> torch.Tensor:
    """The source index of each (nonzero) code, the modified bit ignored; -1 for 0."""
    return ((codes & _CODE_MASK) >> CHANNEL_BITS) - 1


@dataclass
class Source:
    """Where channels are first computed: a block (``kind="block"``) or, for channels a block receives that
    no block computed (the stem's, a transition's), the outside of blocks before it (``kind="outside"``)."""

    index: int
    kind: str
    name: str
    block: int          # the block call (for an outside source: the block whose input it labelled)
    channels: int = 0   # channels first computed by this source


@dataclass
class ConvRecord:
    """The first convolution a block runs: its weight, and the source of each input channel it reads."""

    weight_name: str
    sources: list[int]                 # per input channel: source index, -1 when no source is known
    mean_abs_weight: list[float]       # per input channel: mean |w| over the output channels and the kernel


@dataclass
class BlockCall:
    """One call of a block module during the traced forward pass."""

    index: int
    name: str
    type_name: str
    stage: str
    source: int = -1                        # its own source index
    in_channels: int = 0
    out_channels: int = 0
    input_codes: torch.Tensor | None = None  # the distinct provenance codes of its input channels
    first_conv: ConvRecord | None = None


@dataclass
class ProvenanceTrace:
    """What one traced forward pass found: the block calls in order and every source of channels."""

    blocks: list[BlockCall]
    sources: list[Source]
    replay_failures: dict[str, int] = field(default_factory=dict)

    def links(self) -> dict[tuple[int, int], int]:
        """``{(source, target block): channels}``: distinct channels of each source in each block's input."""
        out: dict[tuple[int, int], int] = {}
        for b in self.blocks:
            if b.input_codes is None or not b.input_codes.numel():
                continue
            srcs, counts = torch.unique(decode_sources(b.input_codes), return_counts=True)
            for s, n in zip(srcs.tolist(), counts.tolist(), strict=True):
                if s >= 0:
                    out[(s, b.index)] = int(n)
        return out


# ------------------------------------------------------------------------------------------- blocks

def find_blocks(model: nn.Module, names: Sequence[str | type] | None = None) -> list[tuple[str, nn.Module]]:
    """The block modules of ``model``, outermost matches only, in module order.

    ``names``: block class names (or classes); default: the units of this package's and torchvision's
    networks (:data:`KNOWN_BLOCKS`), else the composite children of the model's ``nn.Sequential`` stages.
    """
    if names:
        wanted = {n if isinstance(n, str) else n.__name__ for n in names}
        found = _outermost(model, lambda m: type(m).__name__ in wanted)
        if not found:
            present = sorted({type(m).__name__ for m in model.modules() if list(m.children())})
            raise UserInputError(f"no module of class {', '.join(sorted(wanted))} in the model; its composite "
                                 f"module classes are: {', '.join(present[:20])}")
        return found
    found = _outermost(model, lambda m: type(m).__name__ in KNOWN_BLOCKS)
    if found:
        return found
    for name, m in model.named_modules():
        if type(m) is nn.Sequential:
            kids = [(f"{name}.{k}" if name else k, c) for k, c in m.named_children()
                    if list(c.children()) and type(c) is not nn.Sequential]
            if len(kids) >= 2:
                found += kids
    found = _drop_nested(found)
    if not found:
        raise UserInputError("found no blocks in the model (no known unit class and no nn.Sequential stage of "
                             "composite modules): name the block classes (--blocks / blocks=)")
    return found


def _outermost(model: nn.Module, match: Any) -> list[tuple[str, nn.Module]]:
    return _drop_nested([(n, m) for n, m in model.named_modules() if n and match(m)])


def _drop_nested(found: list[tuple[str, nn.Module]]) -> list[tuple[str, nn.Module]]:
    out: list[tuple[str, nn.Module]] = []
    for name, m in found:
        if not any(name.startswith(p + ".") for p, _ in out):
            out.append((name, m))
    return out


# ------------------------------------------------------------------------------------------ tracing

class ProvenanceMode(TorchDispatchMode):
    """The dispatch mode that keeps a provenance shadow beside every tensor carrying tracked channels.

    Use :func:`trace_provenance`; the mode is driven by the block hooks it installs.
    """

    def __init__(self, param_names: dict[int, str]) -> None:
        super().__init__()
        self.shadows: WeakTensorKeyDictionary = WeakTensorKeyDictionary()
        self.param_names = param_names
        self.paused = False
        self.waiting: list[BlockCall] = []     # blocks on the call stack that have run no conv yet
        self.replay_failures: dict[str, int] = {}
        self._rules: dict[OpOverload, Any] = {}
        self._writes: dict[OpOverload, tuple[list[int], list[str]]] = {}

    # -- rules -------------------------------------------------------------------------------------

    def _rule(self, func: OpOverload, decompose: bool = True) -> Any:
        name = func.overloadpacket.__name__
        if func.namespace != "aten":
            return _OTHER
        for names, rule in ((_MOVE_SELF, _MOVE), (_MOVE_LIST, _MOVE_MANY), (_CAST, _TO), (_PAD, _PADDING),
                            (_CHANNELWISE, _CHANNEL), (_BATCH_NORM, _BN), (_BINARY, _BIN)):
            if name in names:
                return rule
        if name == "copy_":
            return _COPY_
        if name == "copy":
            return _COPY
        if name in _CONV:
            return name
        if decompose and func._can_decompose():
            return _DECOMPOSE
        return _OTHER

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        if self.paused:
            return func(*args, **kwargs)
        try:
            rule = self._rules[func]
        except KeyError:
            rule = self._rules[func] = self._rule(func)
        if rule is _DECOMPOSE:
            with self:
                out = func.decompose(*args, **kwargs)
            if out is not NotImplemented:
                return out
            rule = self._rules[func] = self._rule(func, decompose=False)
        if isinstance(rule, str) and self.waiting:
            self._record_conv(rule, args, kwargs)
        out = func(*args, **kwargs)
        if len(self.shadows):
            try:
                self._propagate(func, rule, args, kwargs, out)
            except (RuntimeError, IndexError, TypeError, ValueError):
                # A shadow that cannot follow this op: its output counts as new, and so does any tensor it
                # wrote into (never a wrong link).
                key = func.overloadpacket.__name__
                self.replay_failures[key] = self.replay_failures.get(key, 0) + 1
                for t in self._written(func, args, kwargs):
                    self.shadows.pop(t, None)
        return out

    # -- propagation -------------------------------------------------------------------------------

    def _get(self, t: Any) -> torch.Tensor | None:
        return self.shadows.get(t) if isinstance(t, torch.Tensor) else None

    def _assign(self, out: Any, shadow: Any) -> None:
        outs = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        shs = [t for t in tree_leaves(shadow) if isinstance(t, torch.Tensor)]
        if len(outs) != len(shs):
            raise RuntimeError("shadow outputs do not match")
        for t, s in zip(outs, shs, strict=True):
            if tuple(t.shape) != tuple(s.shape):
                raise RuntimeError("shadow shape mismatch")
            self.shadows[t] = s

    def _replay(self, func: OpOverload, real: torch.Tensor, shadow: torch.Tensor, rest: tuple,
                kwargs: dict) -> Any:
        try:
            return func(shadow, *rest, **kwargs)
        except RuntimeError:
            # ``view`` needs strides like the real tensor's: give the shadow those and try once more.
            return func(_like(real, shadow), *rest, **kwargs)

    def _propagate(self, func: OpOverload, rule: Any, args: tuple, kwargs: dict, out: Any) -> None:
        if rule is _MOVE or rule is _TO or rule is _PADDING:
            s = self._get(args[0])
            if s is None:
                return
            if rule is _TO:
                if isinstance(out, torch.Tensor) and out.device != s.device:
                    s = s.to(out.device)
                fmt = kwargs.get("memory_format")
                self._assign(out, s.clone(memory_format=fmt) if fmt is not None else s.clone())
            elif rule is _PADDING:
                self._assign(out, func(s, args[1], 0))
            else:
                self._assign(out, self._replay(func, args[0], s, args[1:], kwargs))
        elif rule is _MOVE_MANY:
            tensors = list(args[0])
            shs = [self._get(t) for t in tensors]
            if all(s is None for s in shs):
                return
            shs = [s if s is not None else _zeros(t) for s, t in zip(shs, tensors, strict=True)]
            self._assign(out, func(shs, *args[1:], **kwargs))
        elif rule is _CHANNEL or rule is _BN:
            s = self._get(args[0])
            if s is None:
                return
            if func.overloadpacket.__name__.endswith("_") and rule is _CHANNEL:
                s.bitwise_or_(MODIFIED)
                return
            first = out if isinstance(out, torch.Tensor) else tree_leaves(out)[0]
            self._assign(first, s | MODIFIED)
        elif rule is _BIN:
            self._binary(func, args, out)
        elif rule is _COPY_:
            self._copy_(args[0], args[1])
        elif rule is _COPY:
            s0, s1 = self._get(args[0]), self._get(args[1])
            if s0 is None and s1 is None:
                return
            self._assign(out, func(s0 if s0 is not None else _zeros(args[0]),
                                   s1 if s1 is not None else _zeros(args[1]), *args[2:], **kwargs))
        else:
            self._clear_written(func, args, kwargs)

    def _binary(self, func: OpOverload, args: tuple, out: Any) -> None:
        a, b = args[0], args[1] if len(args) > 1 else None
        inplace = func.overloadpacket.__name__.endswith("_")
        sa, sb = self._get(a), self._get(b)
        if sa is None and sb is None:
            return
        if not isinstance(out, torch.Tensor):
            return
        shape = tuple(out.shape)
        channelwise = None
        if sa is not None and sb is None and tuple(a.shape) == shape and _per_channel(b, len(shape)):
            channelwise = sa
        elif (sb is not None and sa is None and not inplace and tuple(b.shape) == shape
              and _per_channel(a, len(shape))):
            channelwise = sb
        if inplace:
            if sa is not None:
                if channelwise is not None:
                    sa.bitwise_or_(MODIFIED)
                else:
                    sa.zero_()  # an add of two feature maps: every value is new (ResNet's shortcut)
            return
        if channelwise is not None:
            self._assign(out, channelwise | MODIFIED)

    def _copy_(self, dst: torch.Tensor, src: Any) -> None:
        ss, ds = self._get(src), self._get(dst)
        if ss is None and ds is None:
            return
        if ds is None:
            ds = self._materialize(dst)
        if ss is None:
            ds.zero_()
        else:
            ds.copy_(ss.to(ds.device))

    def _materialize(self, t: torch.Tensor) -> torch.Tensor:
        """A zero shadow for ``t``; for a view, a view of its base's shadow (so writes reach the base)."""
        base = t._base
        if base is not None:
            bs = self.shadows.get(base)
            if bs is None:
                bs = _zeros(base)
                self.shadows[base] = bs
            if tuple(bs.stride()) == tuple(base.stride()) and tuple(bs.shape) == tuple(base.shape):
                offset = bs.storage_offset() + t.storage_offset() - base.storage_offset()
                s = bs.as_strided(t.size(), t.stride(), offset)
                self.shadows[t] = s
                return s
        s = _zeros(t)
        self.shadows[t] = s
        return s

    def _written(self, func: OpOverload, args: tuple, kwargs: dict) -> list[torch.Tensor]:
        """The tensors ``func`` writes into (in-place, ``out=``), from its schema."""
        try:
            positions, names = self._writes[func]
        except KeyError:
            positions, names = [], []
            for i, a in enumerate(func._schema.arguments):
                if a.alias_info is not None and a.alias_info.is_write:
                    if a.kwarg_only:
                        names.append(a.name)
                    else:
                        positions.append(i)
            self._writes[func] = positions, names
        found = [args[i] for i in positions if i < len(args)] + [kwargs.get(n) for n in names]
        return [t for t in found if isinstance(t, torch.Tensor)]

    def _clear_written(self, func: OpOverload, args: tuple, kwargs: dict) -> None:
        """An op outside the rules that writes into a tracked tensor (in-place, ``out=``) makes it new."""
        for target in self._written(func, args, kwargs):
            s = self._get(target)
            if s is not None:
                s.zero_()

    # -- convolutions ------------------------------------------------------------------------------

    def _record_conv(self, name: str, args: tuple, kwargs: dict) -> None:
        x, w = args[0], args[1]
        if not (isinstance(x, torch.Tensor) and isinstance(w, torch.Tensor) and x.dim() >= 2):
            return
        if name in ("convolution", "_convolution"):
            transposed = bool(args[6]) if len(args) > 6 else bool(kwargs.get("transposed", False))
            groups = int(args[8]) if len(args) > 8 else int(kwargs.get("groups", 1))
        else:
            transposed = False
            groups = int(args[6]) if len(args) > 6 else int(kwargs.get("groups", 1))
        self.paused = True
        try:
            per_channel = _mean_abs_per_input_channel(w.detach(), groups, transposed)
            codes = self.channel_codes(x, keep_modified=True)
            sources = decode_sources(codes).tolist()
        finally:
            self.paused = False
        record = ConvRecord(self.param_names.get(id(w), "(unnamed weight)"), sources, per_channel.tolist())
        for b in self.waiting:
            b.first_conv = record
        self.waiting.clear()

    # -- codes per channel -------------------------------------------------------------------------

    def channel_codes(self, t: torch.Tensor, keep_modified: bool = False) -> torch.Tensor:
        """One code per channel (dim 1) of ``t``: the code its every element carries, else 0 (new).

        Without ``keep_modified``, a code with the modified bit (after BN, ReLU) is new as well.
        """
        c = t.shape[1]
        s = self.shadows.get(t)
        if s is None or t.numel() == 0:
            return torch.zeros(c, dtype=_DTYPE)
        flat = s.detach().movedim(1, 0).reshape(c, -1).cpu()
        first = flat[:, 0]
        uniform = (flat == first[:, None]).all(dim=1)
        if keep_modified:
            return torch.where(uniform, first & _CODE_MASK, torch.zeros_like(first))
        return torch.where(uniform & ((first & MODIFIED) == 0), first, torch.zeros_like(first))

    def label(self, tensors: Iterable[torch.Tensor], source: Callable[[], int]) -> tuple[torch.Tensor, int, int]:
        """Give the channels of ``tensors`` that are not unchanged from an earlier source the codes of the
        source ``source()`` makes (called once, when there is any); return (every channel's code, channel
        count, channels labelled)."""
        all_codes, total, labelled = [], 0, 0
        index = -1
        for t in tensors:
            codes = self.channel_codes(t)
            new = codes == 0
            n_new = int(new.sum())
            if total + t.shape[1] > MAX_CHANNELS:
                raise UserInputError(f"a block's tensors have more than {MAX_CHANNELS} channels: too many to trace")
            if n_new:  # otherwise the shadow already says what ``codes`` does (and keeps its aliasing)
                if index < 0:
                    index = source()
                idx = torch.arange(labelled, labelled + n_new, dtype=_DTYPE)
                codes = codes.clone()
                codes[new] = encode(index, idx)
                self.shadows[t] = _broadcast(t, codes)
            all_codes.append(codes)
            total += t.shape[1]
            labelled += n_new
        codes = torch.cat(all_codes) if all_codes else torch.zeros(0, dtype=_DTYPE)
        return codes, total, labelled


def _per_channel(other: Any, ndim: int) -> bool:
    """A scalar, or a tensor that broadcasts over everything but the channels of an ``ndim``-D map."""
    if not isinstance(other, torch.Tensor):
        return isinstance(other, (int, float, bool))
    if other.dim() > ndim:
        return False
    shape = [1] * (ndim - other.dim()) + list(other.shape)
    return all(n == 1 for i, n in enumerate(shape) if i != 1)


def _zeros(t: torch.Tensor) -> torch.Tensor:
    """A zero shadow laid out like ``t`` (a dense one when ``t``'s strides overlap)."""
    try:
        return torch.empty_strided(t.size(), t.stride(), dtype=_DTYPE, device=t.device).zero_()
    except RuntimeError:
        return torch.zeros(t.shape, dtype=_DTYPE, device=t.device)


def _like(real: torch.Tensor, shadow: torch.Tensor) -> torch.Tensor:
    """``shadow``'s values laid out with ``real``'s strides."""
    out = _zeros(real)
    out.copy_(shadow)
    return out


def _broadcast(t: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """A shadow for ``t`` whose channel ``k`` holds ``codes[k]`` everywhere, laid out like ``t``."""
    shape = [1] * t.dim()
    shape[1] = t.shape[1]
    full = codes.to(t.device).view(shape).expand(t.shape)
    out = _zeros(t)
    try:
        out.copy_(full)
    except RuntimeError:  # ``t`` overlaps itself (an expanded tensor): a dense shadow instead
        out = full.contiguous()
    return out


def _mean_abs_per_input_channel(w: torch.Tensor, groups: int, transposed: bool) -> torch.Tensor:
    """Mean |w| of each input channel of a conv weight, over its output channels and kernel positions."""
    a = w.abs().float()
    if transposed:  # (in, out / g, k...)
        return a.flatten(1).mean(dim=1).cpu()
    g = max(groups, 1)
    # (out, in / g, k...) -> (g, out / g, in / g, k): group k's output channels read inputs k*in/g ...
    per_group = a.reshape(g, a.shape[0] // g, a.shape[1], -1).mean(dim=(1, 3))
    return per_group.flatten().cpu()


def _tensors(obj: Any) -> list[torch.Tensor]:
    """The distinct feature-map tensors (floating point, 2-D or more) in ``obj`` (args, lists, dicts)."""
    seen: set[int] = set()
    out = []
    for t in tree_leaves(obj):
        if isinstance(t, torch.Tensor) and t.dim() >= 2 and t.is_floating_point() and id(t) not in seen:
            seen.add(id(t))
            out.append(t)
    return out


def trace_provenance(model: nn.Module, x: Any, blocks: Sequence[tuple[str, nn.Module]]) -> ProvenanceTrace:
    """Run ``model(x)`` once (no grad) and return the blocks' input provenance and first convs.

    ``x`` is the input tensor (or a tuple of positional inputs). Exceptions of the forward pass propagate.
    """
    param_names = {id(p): n for n, p in model.named_parameters()}
    mode = ProvenanceMode(param_names)
    calls: list[BlockCall] = []
    sources: list[Source] = []
    stack: list[BlockCall] = []
    times_called: dict[str, int] = {}

    def new_source(kind: str, name: str, block: int) -> int:
        if len(sources) >= MAX_SOURCES:
            raise UserInputError(f"more than {MAX_SOURCES} blocks: too many to trace")
        sources.append(Source(len(sources), kind, name, block))
        return len(sources) - 1

    def pre_hook(name: str, module: nn.Module, args: tuple, kwargs: dict) -> None:
        mode.paused = True
        try:
            k = times_called.get(name, 0)
            times_called[name] = k + 1
            call_name = name if k == 0 else f"{name}#{k + 1}"
            stage = name.rsplit(".", 1)[0] if "." in name else ""
            call = BlockCall(len(calls), call_name, type(module).__name__, stage)
            calls.append(call)
            codes, total, labelled = mode.label(
                _tensors((args, kwargs)), lambda: new_source("outside", f"(into {call_name})", call.index))
            if labelled:
                sources[-1].channels = labelled
            call.in_channels = total
            call.input_codes = torch.unique(codes)
            stack.append(call)
            mode.waiting.append(call)
        finally:
            mode.paused = False

    def hook(name: str, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        mode.paused = True
        try:
            call = stack.pop()
            if call in mode.waiting:
                mode.waiting.remove(call)
            _, total, labelled = mode.label(_tensors(output),
                                            lambda: new_source("block", call.name, call.index))
            if labelled:
                call.source = len(sources) - 1
                sources[-1].channels = labelled
            call.out_channels = total
        finally:
            mode.paused = False

    handles = []
    try:
        for name, module in blocks:
            handles.append(module.register_forward_pre_hook(_bind(pre_hook, name), with_kwargs=True))
            handles.append(module.register_forward_hook(_bind(hook, name), with_kwargs=True))
        args = x if isinstance(x, tuple) else (x,)
        with torch.no_grad(), mode:
            model(*args)
    finally:
        for h in handles:
            h.remove()
    return ProvenanceTrace(calls, sources, dict(mode.replay_failures))


def _bind(fn: Any, name: str) -> Any:
    def bound(*a: Any) -> Any:
        return fn(name, *a)

    return bound


__all__ = ["KNOWN_BLOCKS", "BlockCall", "ConvRecord", "ProvenanceMode", "ProvenanceTrace", "Source",
           "decode_sources", "encode", "find_blocks", "trace_provenance"]
