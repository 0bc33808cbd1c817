"""The counting engine: one forward pass under a ``TorchDispatchMode``, every aten op priced by the rule
tables and attributed to the innermost module that called it.

Working on the dispatcher (as ``torch.utils.flop_counter`` does) instead of ``torch.jit.trace`` (fvcore)
sees exactly the kernels that run, including the copies that ``contiguous()`` and a copying ``reshape``
make, and works for any model that runs eagerly.
"""

from __future__ import annotations

import operator
import weakref
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import torch
from torch import nn
from torch._ops import OpOverload
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from shufflenet.cost import tables
from shufflenet.cost.report import CostReport, LayerCost
from shufflenet.errors import UserInputError
from shufflenet.models._checks import require_module

MODES = ("paper", "deploy")
ROOT = "(root)"

_Tensor = torch.Tensor

# Deploy-mode roles of an op (see CostCounter._fuse).
_NONE, _PRODUCER, _BN, _ACT = 0, 1, 2, 3
_PRODUCER_OPS = frozenset(tables.CONV_OPS + tables.MATMUL_OPS + tables.ADDMM_OPS + tables.LINEAR_OPS)
_BN_OPS = frozenset(tables.BATCH_NORM_OPS)
_ACT_OPS = frozenset(tables.FUSABLE_ACT_OPS)
# Producer state after which nothing more fuses: raw output, BN folded, activation fused.
_RAW, _FOLDED, _FUSED = 0, 1, 2
# Ops that look at a tensor's metadata only: not readers of a conv output (see CostCounter._fuse).
_NOT_READERS = frozenset(tables.FACTORY_OPS)
_DECOMPOSE = object()  # cache entry of a composite op that is priced as the aten ops it decomposes into


class _Out:
    """A deploy-mode candidate: the output of a conv/linear (raw, BN-folded or with its activation fused).

    ``readers`` counts the ops that read this tensor (views included); a BN folds, or an activation
    fuses, only into an output that it alone reads. ``fold`` is the pending fold that produced it.
    """

    __slots__ = ("ref", "conv_row", "has_bias", "state", "readers", "fold")

    def __init__(self, out: torch.Tensor, conv_row: list, has_bias: bool, state: int,
                 fold: _Fold | None = None) -> None:
        self.ref = weakref.ref(out)
        self.conv_row = conv_row
        self.has_bias = has_bias
        self.state = state
        self.readers = 0
        self.fold = fold


class _Fold:
    """A BN that folds into ``source``'s conv if the BN is the only reader of that conv's output."""

    __slots__ = ("source", "bn_row", "channels", "itemsize", "applied")

    def __init__(self, source: _Out, bn_row: list, channels: int, itemsize: int) -> None:
        self.source = source
        self.bn_row = bn_row
        self.channels = channels
        self.itemsize = itemsize
        self.applied = False


def _op_name(func: OpOverload) -> str:
    name = func.overloadpacket.__name__
    return name if func.namespace == "aten" else f"{func.namespace}::{name}"


def _has_bias(func: OpOverload, args: tuple) -> bool:
    packet = func.overloadpacket
    if packet in (torch.ops.aten.addmm, torch.ops.aten.baddbmm):
        return True
    if packet in (torch.ops.aten.mm, torch.ops.aten.bmm):
        return False
    return len(args) > 2 and args[2] is not None


class CostCounter(TorchDispatchMode):
    """Dispatch mode that records one cost row per priced aten op call.

    Use :meth:`run` (or :func:`count_cost`); the mode itself only collects rows (deploy-mode folds are
    applied by :meth:`run` at the end of the pass, once every reader is known). ``flop_rules`` and
    ``mac_rules`` override the global tables for this counter (a value of ``None`` ignores the op), like
    fvcore's ``set_op_handle``.
    """

    def __init__(
        self,
        mode: str = "paper",
        *,
        count_elementwise_flops: bool = False,
        flop_rules: Mapping[Any, tables.FlopRule | None] | None = None,
        mac_rules: Mapping[Any, tables.MacRule | None] | None = None,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise UserInputError(f"unknown cost mode {mode!r}; expected one of {', '.join(MODES)}")
        self.mode = mode
        self.count_elementwise_flops = count_elementwise_flops
        self._flop_over = {k: fn for op, fn in (flop_rules or {}).items() for k in tables.as_op_keys(op)}
        self._mac_over = {k: fn for op, fn in (mac_rules or {}).items() for k in tables.as_op_keys(op)}
        self._cache: dict[OpOverload, tuple | None] = {}
        self._reset(ROOT, "")

    def _reset(self, root_name: str, root_type: str) -> None:
        self.rows: list[list] = []
        self.unsupported: dict[str, int] = {}
        self.scope: list[tuple[str, str]] = [(root_name, root_type)]
        self._producers: dict[int, _Out] = {}
        self._folds: list[_Fold] = []
        self._fusions: list[tuple[_Out, list]] = []
        self._param_ids: set[int] = set()

    # -- op resolution, once per overload --------------------------------------------------------

    def _resolve(self, func: OpOverload, decompose: bool = True) -> Any:
        """``None`` for a free op, :data:`_DECOMPOSE` for an unpriced composite op, else (name, kind,
        flop_fn, mac_fn, unsupported, deploy role)."""
        flop_fn = tables.lookup(self._flop_over, func)
        flop_known = flop_fn is not None or func in self._flop_over or func.overloadpacket in self._flop_over
        if not flop_known:
            flop_fn = tables.lookup(tables.FLOP_RULES, func)
            if flop_fn is None and self.count_elementwise_flops:
                flop_fn = tables.lookup(tables.ELEMENTWISE_FLOP_RULES, func)
            flop_known = flop_fn is not None or tables.lookup(tables.FLOP_IGNORE, func)
        mac_fn = tables.lookup(self._mac_over, func)
        mac_known = mac_fn is not None or func in self._mac_over or func.overloadpacket in self._mac_over
        if not mac_known:
            mac_fn = tables.lookup(tables.MAC_RULES, func)
            mac_known = mac_fn is not None or tables.lookup(tables.MAC_IGNORE, func)
        if flop_fn is None and mac_fn is None and flop_known and mac_known:
            return None
        if decompose and not (flop_known and mac_known) and func._can_decompose():
            # A CompositeImplicitAutograd op (conv2d, batch_norm, ...) reaches the mode undecomposed when
            # autograd is off (inference_mode): price the aten ops it is made of instead.
            return _DECOMPOSE
        packet = func.overloadpacket
        role = (
            _PRODUCER if packet in _PRODUCER_OPS
            else _BN if packet in _BN_OPS
            else _ACT if packet in _ACT_OPS
            else _NONE
        )
        kind = tables.lookup(tables.OP_KINDS, func) or "other"
        return (_op_name(func), kind, flop_fn, mac_fn, not (flop_known and mac_known), role)

    # -- the hot path ----------------------------------------------------------------------------

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if kwargs is None:
            kwargs = {}
        try:
            entry = self._cache[func]
        except KeyError:
            entry = self._cache[func] = self._resolve(func)
        if entry is _DECOMPOSE:
            with self:
                out = func.decompose(*args, **kwargs)
            if out is not NotImplemented:
                return out
            entry = self._cache[func] = self._resolve(func, decompose=False)
        if self._producers and func.overloadpacket not in _NOT_READERS:
            self._count_readers(args, kwargs)
        out = func(*args, **kwargs)
        if entry is None:
            return out
        name, kind, flop_fn, mac_fn, unsupported, role = entry
        if unsupported:
            self.unsupported[name] = self.unsupported.get(name, 0) + 1
            if flop_fn is None and mac_fn is None:
                return out
        first = out if isinstance(out, _Tensor) else _first_tensor(out)
        flops = int(flop_fn(args, kwargs, out)) if flop_fn is not None else 0
        if mac_fn is None:
            mac, mac_bytes = 0, 0
        else:
            res = mac_fn(args, kwargs, out)
            if isinstance(res, tuple):
                mac, mac_bytes = res
            else:
                mac = int(res)
                mac_bytes = mac * (first.element_size() if first is not None else 0)
        params = 0
        param_ids = self._param_ids
        for a in args:
            if isinstance(a, _Tensor) and (id(a) in param_ids or id(a._base) in param_ids):
                params += a.numel()  # a view of a weight (linear's ``t()``) reads that weight
        if not isinstance(kind, str):
            kind = kind(args)
        module_name, module_type = self.scope[-1]
        shape = tuple(first.shape) if first is not None else ()
        row = [module_name, name, kind, module_type, params, flops, mac, mac_bytes, shape]
        self.rows.append(row)
        if role and self.mode == "deploy":
            self._fuse(role, func, args, first, row)
        return out

    def _count_readers(self, args: tuple, kwargs: dict) -> None:
        producers = self._producers
        for a in (*args, *kwargs.values()):
            for t in (a if isinstance(a, (list, tuple)) else (a,)):
                if isinstance(t, _Tensor):
                    p = producers.get(id(t))
                    if p is not None and p.ref() is t:
                        p.readers += 1

    def _fuse(self, role: int, func: OpOverload, args: tuple, out: torch.Tensor | None, row: list) -> None:
        """Deploy mode at op level: a BN folds into the conv/linear whose output it reads, and an activation
        whose input is such an output (raw or BN-folded) is fused into it -- each only when it is the
        **only** reader of that output. A conv output that also feeds a shortcut, a second branch or a
        view has to be materialised unnormalised, so its BN cannot fold (nor an activation fuse).

        Producers are tracked by tensor identity (verified through a weak reference, so a recycled ``id``
        cannot match); readers are counted for every op (views included) until the end of the pass, and
        :meth:`_resolve_fusions` then applies the folds and fusions whose reader count is one. An in-place
        op on a tracked output (``out += x``) is one more reader, so what follows it does not fuse.
        """
        if out is None:
            return
        producers = self._producers
        if role == _PRODUCER:
            producers[id(out)] = _Out(out, row, _has_bias(func, args), _RAW)
            return
        x = args[0]
        p = producers.get(id(x))
        if p is None or p.ref() is not x:
            return
        if role == _BN and p.state == _RAW:
            fold = _Fold(p, row, x.shape[1], x.element_size())
            self._folds.append(fold)
            producers[id(out)] = _Out(out, p.conv_row, True, _FOLDED, fold)
        elif role == _ACT and p.state != _FUSED:
            self._fusions.append((p, row))
            producers[id(out)] = _Out(out, p.conv_row, p.has_bias, _FUSED)

    def _resolve_fusions(self) -> None:
        """Apply the deploy-mode folds and fusions recorded by :meth:`_fuse` (at the end of the pass)."""
        for fold in self._folds:
            src = fold.source
            if src.readers != 1:
                continue
            fold.applied = True
            if not src.has_bias:  # the folded conv gains a bias: C_out more parameters read
                conv_row, c = src.conv_row, fold.channels
                conv_row[4] += c
                conv_row[6] += c
                conv_row[7] += c * fold.itemsize
            row = fold.bn_row
            row[4] = row[5] = row[6] = row[7] = 0
        for src, row in self._fusions:
            if src.readers == 1 and (src.fold is None or src.fold.applied):
                row[6] = row[7] = 0  # its FLOPs stay: the activation still runs, as the conv's epilogue
        self._producers.clear()
        self._folds.clear()
        self._fusions.clear()

    # -- one pass over a model ---------------------------------------------------------------------

    def run(self, model: nn.Module, inputs: Sequence[Any], input_size: tuple[int, ...] | None = None) -> CostReport:
        """Run ``model(*inputs)`` once (eval mode, no grad) and return its :class:`CostReport`.

        Every module's ``training`` flag is restored afterwards, and the attribution hooks removed.
        """
        model_name = type(model).__name__
        self._reset(ROOT, model_name)
        self._param_ids = {id(p) for p in model.parameters()}
        training = [(m, m.training) for m in model.modules()]
        hooks = []
        try:
            model.eval()
            for qualname, module in model.named_modules():
                label = (qualname or ROOT, type(module).__name__)
                hooks.append(module.register_forward_pre_hook(partial(_push, self.scope, label)))
                hooks.append(module.register_forward_hook(partial(_pop, self.scope), always_call=True))
            with torch.no_grad(), self:
                result = model(*inputs)
            if self._producers:  # what the model returns is read by its caller
                self._count_readers(tuple(tree_leaves(result)), {})
            self._resolve_fusions()
        finally:
            for h in hooks:
                h.remove()
            for m, flag in training:
                m.training = flag
        layers = [LayerCost(*r) for r in self.rows]
        if input_size is None:
            input_size = tuple(inputs[0].shape) if inputs and isinstance(inputs[0], _Tensor) else ()
        return CostReport(
            model_name=model_name,
            mode=self.mode,
            input_size=tuple(input_size),
            params=sum(p.numel() for p in model.parameters()),
            flops=sum(r[5] for r in self.rows),
            mac=sum(r[6] for r in self.rows),
            mac_bytes=sum(r[7] for r in self.rows),
            layers=layers,
            unsupported_ops=dict(self.unsupported),
            count_elementwise_flops=self.count_elementwise_flops,
            dtype=str(inputs[0].dtype).replace("torch.", "") if inputs and isinstance(inputs[0], _Tensor) else "",
        )


def _first_tensor(out: Any) -> torch.Tensor | None:
    if isinstance(out, (tuple, list)):
        for o in out:
            if isinstance(o, _Tensor):
                return o
    return None


def _push(scope: list, label: tuple[str, str], module: nn.Module, args: Any) -> None:
    scope.append(label)


def _pop(scope: list, module: nn.Module, args: Any, output: Any) -> None:
    if len(scope) > 1:
        scope.pop()


def _check_input_size(input_size: Any) -> tuple[int, ...]:
    try:
        size = tuple(operator.index(d) for d in input_size)
    except TypeError:
        raise UserInputError(f"input_size must be a tuple of positive integers, got {input_size!r}") from None
    if not size or min(size) <= 0:
        raise UserInputError(f"input_size must be a tuple of positive integers, got {input_size!r}")
    return size


def count_cost(
    model: nn.Module,
    input_size: tuple[int, ...] = (1, 3, 224, 224),
    mode: str = "paper",
    *,
    count_elementwise_flops: bool = False,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> CostReport:
    """FLOPs, MAC and parameters of ``model`` on one input of ``input_size``, per op and in total.

    One forward pass runs in eval mode under ``torch.no_grad`` on a seeded random input (the global
    RNG is untouched); the model is not moved or converted, so it must already live on ``device`` in a
    dtype that accepts ``dtype`` inputs.

    - FLOPs: multiply-adds of conv and linear/matmul ops (paper convention, V2 footnote 1); equal to
      ``torch.utils.flop_counter.FlopCounterMode`` total / 2. With ``count_elementwise_flops=True`` also
      BN (2 per element), activations and element-wise arithmetic (1 per output element) and pooling
      (window size per output element; adaptive/global pooling: 1 per input element).
    - MAC: elements read + written by each op, weights included, each tensor read once per op (paper
      Sec. 2, G1). Views are free; copies, cat, BN and element-wise ops are not. BN reads
      input + 4*C (mean, var, weight, bias) and writes its output.
    - ``mode="deploy"``: BN is folded into the conv/linear that produced its input (the BN row costs 0,
      the conv reads C_out more bias values if it had none), and an activation applied to such an
      output costs 0 MAC (fused epilogue) -- each only when it is the sole reader of that output (a conv
      output that also feeds a shortcut or another branch must be stored unnormalised).

    Ops with no rule are listed in ``unsupported_ops`` instead of being counted as zero, and the report
    is then flagged incomplete (``complete`` is ``False``; its table and summary say so). Composite ops
    that reach the counter undecomposed (under ``torch.inference_mode``) are priced as their parts.
    """
    require_module(model, "model", "count_cost")
    if mode not in MODES:
        raise UserInputError(f"unknown cost mode {mode!r}; expected one of {', '.join(MODES)}")
    size = _check_input_size(input_size)
    if dtype.is_floating_point or dtype.is_complex:
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(size, generator=gen, dtype=dtype)
    else:
        x = torch.zeros(size, dtype=dtype)
    x = x.to(device)
    counter = CostCounter(mode, count_elementwise_flops=count_elementwise_flops)
    return counter.run(model, (x,), input_size=size)
