"""The kernels a forward pass runs, as the latency predictor sees them: one :class:`Kernel` per aten call.

The trace runs the model once under ``torch.inference_mode()`` -- as :func:`shufflenet.measure` times it -- in
a ``TorchDispatchMode``. There the ops arrive as the Python code called them (``conv2d``, ``batch_norm``,
``relu_``, ``reshape``, ``chunk``: composite ops are not decomposed), so each recorded call is one call the
eager forward pays for. Views are recorded too: each costs a dispatch on CPU even though it moves no
data, and at batch 1 those calls are a large part of a small network's time (the paper's point in
Sec. 2, G3 and G4, that fragmented and element-wise operators cost more than their FLOPs).

Every call gets a *kind*: the per-op-type model that predicts it (:data:`CONV_KINDS`, ``batch_norm``,
``relu_``, ``cat``, ``copy``, ``view``, ...), and the numbers that model reads (:attr:`Kernel.features`).
A call is *wrapped* when it is the only op of a standard leaf module (an ``nn.Conv2d`` calling ``conv2d``):
the module's own Python overhead is then priced as that module type's measured wrapper cost.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from shufflenet.errors import UserInputError, cannot_run
from shufflenet.models._checks import require_module

CONV_KINDS = ("conv1x1", "conv", "gconv", "dwconv")
UNARY_OPS = ("relu", "relu_", "hardtanh", "hardtanh_", "hardswish", "hardswish_", "hardsigmoid",
             "hardsigmoid_", "sigmoid", "sigmoid_", "silu", "silu_", "gelu", "tanh")
BINARY_OPS = ("add", "add_", "mul", "mul_")
POOL_OPS = ("max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "mean")
# Ops that move no data: one dispatch each (``contiguous`` of a contiguous tensor and eval-mode
# ``dropout`` return their input).
VIEW_OPS = ("view", "reshape", "flatten", "transpose", "permute", "select", "slice", "chunk", "split",
            "split_with_sizes", "unsqueeze", "squeeze", "expand", "t", "narrow", "unbind", "contiguous",
            "dropout", "dropout_", "alias", "detach", "unflatten", "as_strided")
COPY_OPS = ("contiguous", "clone", "reshape", "flatten", "copy_", "_to_copy")
FLOAT_BYTES = 4

# Standard leaf modules and the op their forward calls (what "wrapped" means above).
WRAPPERS: dict[str, tuple[str, ...]] = {
    "Conv2d": ("conv2d",), "BatchNorm2d": ("batch_norm",), "Linear": ("linear",),
    "ReLU": ("relu", "relu_"), "ReLU6": ("hardtanh", "hardtanh_"), "Hardswish": ("hardswish", "hardswish_"),
    "Hardsigmoid": ("hardsigmoid", "hardsigmoid_"), "SiLU": ("silu", "silu_"), "Sigmoid": ("sigmoid",),
    "GELU": ("gelu",), "Tanh": ("tanh",), "MaxPool2d": ("max_pool2d",), "AvgPool2d": ("avg_pool2d",),
    "AdaptiveAvgPool2d": ("adaptive_avg_pool2d",), "Dropout": ("dropout", "dropout_"), "Flatten": ("flatten",),
}


@dataclass(slots=True)
class Kernel:
    """One aten call of the forward pass: its op, the model kind that predicts it and that model's inputs.

    ``features`` holds the shape numbers (``cin``, ``cout``, ``h``, ``k``, ``stride``, ``groups``, ``macs``,
    ``in_numel``, ``out_numel``, ``w_numel``, ``inputs`` ...) of :func:`kernel_features`; ``flops`` are
    multiply-adds (the paper's FLOPs) and ``bytes`` the fp32 bytes read and written (its MAC).
    """

    index: int
    op: str
    kind: str
    module: str
    module_type: str
    features: dict[str, float]
    flops: int = 0
    bytes: int = 0
    wrapper: str = ""  # the standard module type whose call this is, or ""

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "op": self.op, "kind": self.kind, "module": self.module,
                "module_type": self.module_type, "wrapper": self.wrapper, "flops": self.flops,
                "bytes": self.bytes, "features": dict(self.features)}


@dataclass
class KernelTrace:
    """The kernels of one forward pass, in execution order, and its module calls.

    ``module_calls`` counts every ``nn.Module`` call (containers included); ``wrapped`` of them are standard
    leaf modules whose overhead is priced with their kernel (see :class:`Kernel`).
    """

    input_size: tuple[int, ...]
    kernels: list[Kernel] = field(default_factory=list)
    module_calls: int = 0

    @property
    def wrapped(self) -> int:
        return sum(1 for k in self.kernels if k.wrapper)

    @property
    def bare_module_calls(self) -> int:
        """Module calls whose overhead is not already priced with a wrapped kernel."""
        return self.module_calls - self.wrapped


def conv_kind(cin: int, cout: int, groups: int, k: int) -> str:
    """``dwconv`` (groups == input channels), ``gconv`` (1 < groups), ``conv1x1`` or ``conv`` (k x k)."""
    if groups > 1 and groups == cin:
        return "dwconv"
    if groups > 1:
        return "gconv"
    return "conv1x1" if k == 1 else "conv"


def conv_features(n: int, cin: int, cout: int, h: int, w: int, k: int, stride: int, groups: int,
                  padding: int, bias: bool) -> dict[str, float]:
    """The numbers the conv models read; ``macs`` is the paper's FLOPs (multiply-adds)."""
    ho = (h + 2 * padding - k) // stride + 1
    wo = (w + 2 * padding - k) // stride + 1
    macs = n * cout * ho * wo * (cin // groups) * k * k
    return {"n": n, "cin": cin, "cout": cout, "h": h, "w": w, "k": k, "stride": stride, "groups": groups,
            "bias": float(bias), "macs": macs, "in_numel": n * cin * h * w, "out_numel": n * cout * ho * wo,
            "w_numel": cout * (cin // groups) * k * k}


def _shape(t: Any) -> tuple[int, ...]:
    return tuple(t.shape) if isinstance(t, torch.Tensor) else ()


def _numel(t: Any) -> int:
    return t.numel() if isinstance(t, torch.Tensor) else 0


def _pair(v: Any) -> int:
    if isinstance(v, (list, tuple)):
        return int(v[0]) if v else 0
    return int(v)


def _shares_storage(a: torch.Tensor, b: torch.Tensor) -> bool:
    try:
        return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
    except RuntimeError:  # pragma: no cover - tensors without storage
        return False


def classify(op: str, args: tuple, kwargs: dict, out: Any) -> tuple[str, dict[str, float], int]:
    """(kind, features, multiply-adds) of one aten call (the predictor's op-type taxonomy)."""
    x = args[0] if args else None
    first_out = out if isinstance(out, torch.Tensor) else next(
        (o for o in tree_leaves(out) if isinstance(o, torch.Tensor)), None)
    out_numel = _numel(first_out)
    if op == "conv2d" and isinstance(x, torch.Tensor) and x.dim() == 4:
        w = args[1]
        bias = len(args) > 2 and isinstance(args[2], torch.Tensor)
        stride = _pair(args[3]) if len(args) > 3 else 1
        padding = args[4] if len(args) > 4 else 0
        pad = _pair(padding) if not isinstance(padding, str) else (w.shape[2] // 2 if padding == "same" else 0)
        groups = int(args[6]) if len(args) > 6 else 1
        n, cin, h, wd = x.shape
        f = conv_features(n, cin, int(w.shape[0]), h, wd, int(w.shape[2]), stride, groups, pad, bias)
        return conv_kind(cin, int(w.shape[0]), groups, int(w.shape[2])), f, int(f["macs"])
    if op == "linear" and isinstance(x, torch.Tensor):
        w = args[1]
        rows = x.numel() // x.shape[-1]
        macs = rows * int(w.shape[0]) * int(w.shape[1])
        return "linear", {"rows": rows, "in": int(w.shape[1]), "out": int(w.shape[0]), "macs": macs,
                          "w_numel": w.numel(), "in_numel": x.numel(), "out_numel": out_numel}, macs
    if op == "batch_norm" and isinstance(x, torch.Tensor):
        hw = x.numel() // max(1, x.shape[0] * x.shape[1]) if x.dim() > 1 else 1
        return "batch_norm", {"c": x.shape[1] if x.dim() > 1 else 1, "hw": hw, "in_numel": x.numel(),
                              "out_numel": out_numel}, 0
    if op in UNARY_OPS and isinstance(x, torch.Tensor):
        return op, {"in_numel": x.numel(), "out_numel": out_numel}, 0
    if op in BINARY_OPS and isinstance(x, torch.Tensor):
        y = args[1] if len(args) > 1 else None
        bcast = isinstance(y, torch.Tensor) and tuple(y.shape) != tuple(x.shape)
        kind = f"{op.rstrip('_')}_bcast" if bcast else op
        if not isinstance(y, torch.Tensor):
            kind = f"{op.rstrip('_')}_scalar"
        return kind, {"in_numel": x.numel(), "out_numel": out_numel, "other_numel": _numel(y)}, 0
    if op in POOL_OPS and isinstance(x, torch.Tensor) and x.dim() == 4:
        k = _pair(args[1]) if len(args) > 1 and op in ("max_pool2d", "avg_pool2d") else 0
        return op, {"c": x.shape[1], "h": x.shape[2], "in_numel": x.numel(), "out_numel": out_numel,
                    "k": k}, 0
    if op == "cat":
        tensors = [t for t in (args[0] if args else ()) if isinstance(t, torch.Tensor)]
        return "cat", {"out_numel": out_numel, "inputs": len(tensors),
                       "in_numel": sum(t.numel() for t in tensors)}, 0
    if op in COPY_OPS and isinstance(x, torch.Tensor) and isinstance(first_out, torch.Tensor) \
            and not _shares_storage(x, first_out):
        return "copy", {"in_numel": x.numel(), "out_numel": out_numel}, 0
    if op in VIEW_OPS:
        return "view", {"op": 0.0}, 0
    return "other", {"in_numel": sum(_numel(t) for t in tree_leaves(args)), "out_numel": out_numel}, 0


def _bytes(kind: str, f: dict[str, float]) -> int:
    """fp32 bytes read and written by a kernel (the paper's MAC, Sec. 2, in bytes)."""
    if kind == "view":
        return 0
    elems = f.get("in_numel", 0) + f.get("out_numel", 0) + f.get("w_numel", 0) + f.get("other_numel", 0)
    return int(elems * FLOAT_BYTES)


class _Recorder(TorchDispatchMode):
    """Records every aten call that reaches the mode, with the module path that made it."""

    def __init__(self) -> None:
        super().__init__()
        self.kernels: list[Kernel] = []
        self.scope: list[list[Any]] = []  # per active module call: [name, type, kernel indices, is leaf]
        self.calls: list[list[Any]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204 - torch's API
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        op = func.overloadpacket.__name__
        if func.namespace != "aten" or op in ("randn", "empty", "zeros", "ones", "full"):
            return out
        kind, features, macs = classify(op, args, kwargs, out)
        name, mtype = (self.scope[-1][0], self.scope[-1][1]) if self.scope else ("(root)", "")
        k = Kernel(len(self.kernels), op, kind, name, mtype, features, macs, _bytes(kind, features))
        if kind == "view":
            k.features = {}
        self.kernels.append(k)
        if self.scope:
            self.scope[-1][2].append(k.index)
        return out


def _push(rec: _Recorder, name: str, module: nn.Module, *_: Any) -> None:
    entry = [name, type(module).__name__, [], next(module.children(), None) is None]
    rec.scope.append(entry)
    rec.calls.append(entry)


def _pop(rec: _Recorder, *_: Any) -> None:
    if rec.scope:
        rec.scope.pop()


def trace_kernels(model: nn.Module, input_size: Sequence[int]) -> KernelTrace:
    """Run ``model`` once on a random input of ``input_size`` and return its :class:`KernelTrace`.

    A model that cannot run on that input raises a one-line :class:`UserInputError`.
    """
    require_module(model, "model", "latency predict")
    try:
        size = tuple(int(d) for d in input_size)
    except (TypeError, ValueError):
        raise UserInputError(f"input_size must be a tuple of positive integers, got {input_size!r}") from None
    if not size or min(size) <= 0:
        raise UserInputError(f"input_size must be a tuple of positive integers, got {input_size!r}")
    rec = _Recorder()
    hooks = []
    training = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        for qualname, module in model.named_modules():
            hooks.append(module.register_forward_pre_hook(partial(_push, rec, qualname or "(root)", module)))
            hooks.append(module.register_forward_hook(partial(_pop, rec), always_call=True))
        x = torch.randn(size, generator=torch.Generator().manual_seed(0))
        with torch.inference_mode(), rec:
            model(x)
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        if isinstance(exc, UserInputError):
            raise
        raise cannot_run(exc, size) from exc
    finally:
        for h in hooks:
            h.remove()
        for m, flag in training:
            m.training = flag
    for _name, mtype, indices, leaf in rec.calls:
        if leaf and len(indices) == 1 and rec.kernels[indices[0]].op in WRAPPERS.get(mtype, ()):
            rec.kernels[indices[0]].wrapper = mtype
    return KernelTrace(size, rec.kernels, len(rec.calls))


def log2(v: float) -> float:
    return math.log2(max(float(v), 1.0))
