"""Calibrating the latency predictor on this machine: time kernels (not networks) and keep them.

:func:`calibrate` times every op type of the predictor's taxonomy (:mod:`~shufflenet.audit.latency.kernels`)
over a grid of shapes drawn from where real CNN layers live -- channel counts from 8 to 2048 on the
spatial sizes of 160-224 px inputs, with the wider layers on the smaller maps -- plus the fixed costs of a
module call and of each standard module's Python wrapper. Each kernel is timed as the eager forward calls
it: the same Python function, inside ``torch.inference_mode()``, with the thread CPU clock at one thread
(as :func:`shufflenet.measure` times a model) and wall time otherwise.

``quick`` times about 2700 kernels (about 1800 of them inside 150 random network blocks, see
:mod:`~shufflenet.audit.latency.blocks`; 30-35 s on one thread here), ``full`` about 10 800 (600 blocks,
220-260 s here) with more repeats per kernel. The result is a :class:`~shufflenet.audit.latency.calibration.Calibration`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shufflenet.audit.latency.kernels import conv_features, conv_kind
from shufflenet.measure.timing import median, num_threads, relative_iqr

MODES = ("quick", "full")
SPATIAL = (3, 5, 6, 7, 10, 12, 14, 20, 24, 28, 40, 48, 56, 80, 96, 112)
STEM_SPATIAL = (80, 96, 112, 160, 192, 224)
MAX_ACTIVATION = 1_300_000  # elements: c * h * w of a layer's widest map (112 x 112 x 104 ...)
MAX_MACS = 400_000_000

# per mode: kernels per conv kind and per other op (timed in rings), random blocks, timed rounds per ring or
# block group, passes over all of them, and the hot-loop timing of the module overheads (s per block,
# blocks). Each kernel keeps its quietest pass: passes are minutes apart, so many passes find the machine
# as quiet as the many interleaved rounds of a network measurement do (with 2-3 passes, the predictions
# came out 5-12% slow against networks timed in 10-20 rounds).
_PLAN = {"quick": {"conv": 100, "other": 15, "networks": 150, "rounds": 5, "passes": 4, "block_s": 0.001,
                   "blocks": 5},
         "full": {"conv": 400, "other": 50, "networks": 600, "rounds": 5, "passes": 8, "block_s": 0.002,
                  "blocks": 9}}
GROUP = 6  # blocks run back to back per round, so each block's weights are evicted by the others
RING = 24
JITTER = 1.0  # doublings of footprint by which ring neighbours may differ


@dataclass(frozen=True)
class Sample:
    """One timed kernel: its kind and op, its features and its median time (seconds) with its spread."""

    kind: str
    op: str
    features: dict[str, float]
    seconds: float
    spread: float
    context: str = "ring"  # "block": timed inside a random network block; "ring": among similar kernels

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "op": self.op, "features": self.features, "seconds": self.seconds,
                "spread": self.spread, "context": self.context}


# kind, op, features, and a factory that allocates the tensors and returns the call to time, or the call
# and a function that rewrites its input first (untimed; see run_benches)
Timed = Callable[[], Any] | tuple[Callable[[], Any], Callable[[], Any]]
Bench = tuple[str, str, dict[str, float], Callable[[], Timed]]


def _touching(x: torch.Tensor, fn: Callable[[], Any]) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """``fn`` with a "producer" that rewrites ``x`` in place (values unchanged) just before each timed call."""
    return fn, lambda: x.mul_(1.0)


def _clock(threads: int) -> Callable[[], float]:
    return time.thread_time if threads == 1 else time.perf_counter


def time_call(fn: Callable[[], Any], clock: Callable[[], float], block_s: float, blocks: int) -> tuple[float, float]:
    """(median seconds per call, relative IQR) of ``fn`` over ``blocks`` blocks of about ``block_s`` each."""
    fn()
    fn()
    t0 = clock()
    fn()
    once = max(clock() - t0, 1e-7)
    n = max(1, min(10_000, int(block_s / once)))
    per_call = []
    for _ in range(blocks):
        t0 = clock()
        for _ in range(n):
            fn()
        per_call.append((clock() - t0) / n)
    return median(per_call), relative_iqr(per_call)


class _Shapes:
    """Random but reproducible layer shapes where CNN layers live."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def choice(self, values: Any, p: Any = None) -> Any:
        return values[int(self.rng.choice(len(values), p=p))]

    def log_uniform(self, lo: float, hi: float) -> float:
        return float(2 ** self.rng.uniform(math.log2(lo), math.log2(max(hi, lo))))

    def channels(self, lo: int, hi: int, multiple: int = 1) -> int:
        c = self.log_uniform(lo, hi)
        if self.rng.random() < 0.5:  # half of them on round numbers, as most networks' widths are
            multiple = math.lcm(multiple, 8)
        return max(multiple, int(round(c / multiple)) * multiple)

    def spatial(self, stem: bool = False) -> int:
        return self.choice(STEM_SPATIAL if stem else SPATIAL)

    def cap(self, h: int) -> int:
        return max(8, min(2048, MAX_ACTIVATION // (h * h)))

    def map(self, lo: int = 8) -> tuple[int, int]:
        h = self.spatial()
        return self.channels(lo, self.cap(h)), h


def _conv_bench(kind: str, s: _Shapes) -> Bench:
    while True:
        k, stride, groups, bias = 1, 1, 1, bool(s.rng.random() < 0.15)
        if kind == "conv1x1":
            h = 1 if s.rng.random() < 0.1 else s.spatial()
            cin = s.channels(8, s.cap(h) if h > 1 else 1536)
            cout = s.channels(8, min(2048, max(8, cin * 2 ** s.rng.uniform(-2.5, 2.5))))
            stride = 2 if h > 1 and s.rng.random() < 0.1 else 1
        elif kind == "conv":
            k = s.choice((3, 5, 7), p=(0.7, 0.1, 0.2))
            if s.rng.random() < 0.3:
                h, cin = s.spatial(stem=True), 3
                cout = s.channels(8, 64)
                stride = 2
            else:
                h = s.spatial()
                cin = s.channels(8, s.cap(h))
                cout = s.channels(8, min(2048, cin * 4))
                stride = 2 if s.rng.random() < 0.25 else 1
        elif kind == "gconv":
            k = s.choice((1, 3))
            h = s.spatial()
            if s.rng.random() < 0.6:
                groups = s.choice((2, 3, 4, 8))
                cin = s.channels(8 * groups, max(8 * groups, s.cap(h)), multiple=groups)
            else:
                width = s.choice((8, 16, 24, 48))
                cin = s.channels(2 * width, max(2 * width, s.cap(h)), multiple=width)
                groups = cin // width
            cout = cin if s.rng.random() < 0.5 else s.channels(groups * 4, min(2048, cin * 4), multiple=groups)
            cout = max(groups, cout // groups * groups)
            stride = 2 if s.rng.random() < 0.2 else 1
        else:  # dwconv
            k = s.choice((3, 5, 7), p=(0.6, 0.25, 0.15))
            h = s.spatial()
            cin = cout = groups = s.channels(8, s.cap(h))
            stride = 2 if s.rng.random() < 0.3 else 1
        if stride > 1 and h < k + 1:
            continue
        f = conv_features(1, cin, cout, h, h, k, stride, groups, k // 2, bias)
        if f["macs"] <= MAX_MACS and conv_kind(cin, cout, groups, k) == kind:
            break

    def make(cin: int = cin, cout: int = cout, h: int = h, k: int = k, stride: int = stride,
             groups: int = groups, bias: bool = bias) -> Callable[[], Any]:
        x = torch.randn(1, cin, h, h)
        w = torch.randn(cout, cin // groups, k, k) * 0.1
        b = torch.randn(cout) if bias else None
        return _touching(x, lambda: F.conv2d(x, w, b, stride, k // 2, 1, groups))

    return kind, "conv2d", f, make


_UNARY_CALLS: dict[str, Callable[[torch.Tensor], Any]] = {
    "relu": F.relu, "relu_": lambda x: F.relu(x, inplace=True),
    "hardtanh": lambda x: F.hardtanh(x, 0.0, 6.0), "hardtanh_": lambda x: F.hardtanh(x, 0.0, 6.0, True),
    "hardswish": F.hardswish, "hardswish_": lambda x: F.hardswish(x, True),
    "hardsigmoid": F.hardsigmoid, "hardsigmoid_": lambda x: F.hardsigmoid(x, True),
    "sigmoid": torch.sigmoid, "sigmoid_": torch.sigmoid_, "silu": F.silu, "silu_": lambda x: F.silu(x, True),
    "gelu": F.gelu, "tanh": torch.tanh,
}


def _stream(kind: str, numel: int, out_numel: int, make: Callable[[], Callable[[], Any]], **extra: float) -> Bench:
    return kind, kind, {"in_numel": numel, "out_numel": out_numel, **extra}, make


def _unary_benches(s: _Shapes, n: int) -> Iterator[Bench]:
    for op, call in _UNARY_CALLS.items():
        for _ in range(n):
            c, h = s.map()

            def make(c: int = c, h: int = h, call: Callable[[torch.Tensor], Any] = call) -> Callable[[], Any]:
                x = torch.randn(1, c, h, h)
                return _touching(x, lambda: call(x))

            yield _stream(op, c * h * h, c * h * h, make)


def _binary_benches(s: _Shapes, n: int) -> Iterator[Bench]:
    def pair(c: int, h: int, broadcast: bool) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(1, c, h, h), torch.randn(1, c, 1, 1) if broadcast else torch.randn(1, c, h, h)

    calls: dict[str, tuple[Callable[[torch.Tensor, torch.Tensor], Any], bool]] = {
        "add": (torch.add, False), "add_": (torch.Tensor.add_, False), "mul": (torch.mul, False),
        "mul_bcast": (torch.mul, True)}
    for _ in range(n):
        for kind, (call, broadcast) in calls.items():
            c, h = s.map()

            def make(c: int = c, h: int = h, call: Any = call, b: bool = broadcast) -> Callable[[], Any]:
                x, y = pair(c, h, b)
                return _touching(x, lambda: call(x, y))

            yield _stream(kind, c * h * h, c * h * h, make, other_numel=c if broadcast else c * h * h)


def _norm_pool_benches(s: _Shapes, n: int) -> Iterator[Bench]:
    for _ in range(n):
        c, h = s.map()
        numel = c * h * h

        def bn(c: int = c, h: int = h) -> Callable[[], Any]:
            x = torch.randn(1, c, h, h)
            p = [torch.randn(c).abs() + 0.5 for _ in range(4)]
            return _touching(x, lambda: F.batch_norm(x, p[0], p[1], p[2], p[3], False, 0.1, 1e-5))

        def reduce(c: int = c, h: int = h, adaptive: bool = True) -> Callable[[], Any]:
            x = torch.randn(1, c, h, h)
            return _touching(x, (lambda: F.adaptive_avg_pool2d(x, 1)) if adaptive else (lambda: x.mean((2, 3))))

        yield "batch_norm", "batch_norm", {"c": c, "hw": h * h, "in_numel": numel, "out_numel": numel}, bn
        yield _stream("adaptive_avg_pool2d", numel, c, reduce, k=0)
        yield _stream("mean", numel, c, partial(reduce, adaptive=False), k=0)
        if h >= 4:
            k, stride, pad = s.choice(((3, 2, 1), (2, 2, 0), (3, 1, 1)), p=(0.6, 0.2, 0.2))
            out = c * ((h + 2 * pad - k) // stride + 1) ** 2
            for op, call in (("max_pool2d", F.max_pool2d), ("avg_pool2d", F.avg_pool2d)):

                def pool(c: int = c, h: int = h, call: Any = call, a: tuple = (k, stride, pad)) -> Callable[[], Any]:
                    x = torch.randn(1, c, h, h)
                    return _touching(x, lambda: call(x, *a))

                yield _stream(op, numel, out, pool, k=k)


def _data_benches(s: _Shapes, n: int) -> Iterator[Bench]:
    for _ in range(n):
        c, h = s.map(lo=16)
        parts = 2 if s.rng.random() < 0.6 else int(s.choice((3, 4, 6, 12, 24, 40)))
        widths = [max(1, int(s.log_uniform(4, max(8, c)))) for _ in range(parts)]
        total = sum(widths) * h * h

        def cat(widths: list[int] = widths, h: int = h) -> Callable[[], Any]:
            xs = [torch.randn(1, w, h, h) for w in widths]
            return _touching(xs[-1], lambda: torch.cat(xs, 1))

        yield "cat", "cat", {"out_numel": total, "inputs": parts, "in_numel": total}, cat
        c2 = max(2, c // 2 * 2)
        groups = int(s.choice((2, 3, 4, 8))) if c2 % 24 == 0 else 2

        def shuffle(c: int = c2, h: int = h, g: int = groups) -> Callable[[], Any]:
            x = torch.randn(1, c, h, h)
            return _touching(x, lambda: x.view(1, g, c // g, h, h).transpose(1, 2).contiguous())

        yield _stream("copy", c2 * h * h, c2 * h * h, shuffle)


def _linear_benches(s: _Shapes, n: int) -> Iterator[Bench]:
    for _ in range(n):
        cin = int(s.log_uniform(64, 4096))
        cout = int(s.choice((10, 100, 1000))) if s.rng.random() < 0.5 else int(s.log_uniform(8, 4096))

        def make(cin: int = cin, cout: int = cout) -> Callable[[], Any]:
            x, w, b = torch.randn(1, cin), torch.randn(cout, cin) * 0.05, torch.randn(cout)
            return _touching(x, lambda: F.linear(x, w, b))

        yield "linear", "linear", {"rows": 1, "in": cin, "out": cout, "macs": cin * cout, "w_numel": cin * cout,
                                   "in_numel": cin, "out_numel": cout}, make


def _view_benches() -> Iterator[Bench]:
    calls: dict[str, Callable[[torch.Tensor], Any]] = {
        "view": lambda x: x.view(1, 2, 32, 14, 14), "reshape": lambda x: x.reshape(64, 196),
        "flatten": lambda x: torch.flatten(x, 1), "transpose": lambda x: x.transpose(1, 2),
        "permute": lambda x: x.permute(1, 0, 2, 3), "select": lambda x: x[0], "slice": lambda x: x[:, :32],
        "chunk": lambda x: x.chunk(2, dim=1), "split": lambda x: x.split(32, dim=1),
        "unsqueeze": lambda x: x.unsqueeze(0), "squeeze": lambda x: x.squeeze(0),
        "expand": lambda x: x.expand(2, -1, -1, -1), "narrow": lambda x: x.narrow(1, 0, 32),
        "contiguous": lambda x: x.contiguous(), "dropout": lambda x: F.dropout(x, 0.2, False),
        "unbind": lambda x: x.unbind(0),
    }
    for op, call in calls.items():

        def make(call: Callable[[torch.Tensor], Any] = call) -> Callable[[], Any]:
            x = torch.randn(1, 64, 14, 14)
            return lambda: call(x)

        for _ in range(3):  # three copies, spread over the rings, for a robust median
            yield "view", op, {}, make


class _Trivial(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _wrapper_pairs() -> dict[str, tuple[Callable[[], Any], Callable[[], Any]]]:
    """Per standard module type: (module call, the functional call its forward makes) on a tiny input."""
    x = torch.randn(1, 8, 4, 4)
    v = torch.randn(1, 64)
    conv, bn, lin = nn.Conv2d(8, 8, 1).eval(), nn.BatchNorm2d(8).eval(), nn.Linear(64, 10).eval()
    mods: dict[str, tuple[nn.Module, Callable[[], Any], torch.Tensor]] = {
        "Conv2d": (conv, lambda: F.conv2d(x, conv.weight, conv.bias), x),
        "BatchNorm2d": (bn, lambda: F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias,
                                                 False, 0.1, 1e-5), x),
        "Linear": (lin, lambda: F.linear(v, lin.weight, lin.bias), v),
        "ReLU": (nn.ReLU(inplace=True), lambda: F.relu(x, inplace=True), x),
        "ReLU6": (nn.ReLU6(inplace=True), lambda: F.hardtanh(x, 0.0, 6.0, True), x),
        "Hardswish": (nn.Hardswish(), lambda: F.hardswish(x), x),
        "Hardsigmoid": (nn.Hardsigmoid(), lambda: F.hardsigmoid(x), x),
        "SiLU": (nn.SiLU(inplace=True), lambda: F.silu(x, True), x),
        "Sigmoid": (nn.Sigmoid(), lambda: torch.sigmoid(x), x),
        "GELU": (nn.GELU(), lambda: F.gelu(x), x), "Tanh": (nn.Tanh(), lambda: torch.tanh(x), x),
        "MaxPool2d": (nn.MaxPool2d(3, 2, 1), lambda: F.max_pool2d(x, 3, 2, 1), x),
        "AvgPool2d": (nn.AvgPool2d(2, 2), lambda: F.avg_pool2d(x, 2, 2), x),
        "AdaptiveAvgPool2d": (nn.AdaptiveAvgPool2d(1), lambda: F.adaptive_avg_pool2d(x, 1), x),
        "Dropout": (nn.Dropout(0.2).eval(), lambda: F.dropout(x, 0.2, False), x),
        "Flatten": (nn.Flatten(), lambda: torch.flatten(x, 1), x),
    }
    return {name: ((lambda m=m, a=a: m(a)), fn) for name, (m, fn, a) in mods.items()}


def benches(mode: str, seed: int = 0) -> list[Bench]:
    """Every kernel a calibration of ``mode`` times, in a reproducible order."""
    plan = _PLAN[mode]
    s = _Shapes(seed)
    out: list[Bench] = []
    for kind in ("conv1x1", "conv", "gconv", "dwconv"):
        out += [_conv_bench(kind, s) for _ in range(plan["conv"])]
    n = plan["other"]
    out += list(_unary_benches(s, n))
    out += list(_binary_benches(s, n))
    out += list(_norm_pool_benches(s, 2 * n))
    out += list(_data_benches(s, 2 * n))
    out += list(_linear_benches(s, n))
    out += list(_view_benches())
    return out


def footprint(features: dict[str, float]) -> float:
    """Elements a kernel touches (inputs, outputs, weights): what decides which cache its data lives in."""
    return sum(features.get(k, 0.0) for k in ("in_numel", "out_numel", "w_numel", "other_numel"))


def _rings(items: list[Bench], passes: int, seed: int) -> list[list[int]]:
    """Rings of :data:`RING` kernels of similar footprint (jittered by a factor of about 2 per pass), so a
    small kernel runs among small ones and a large among large ones, as layers of one network do."""
    rings = []
    for p in range(passes):
        rng = np.random.default_rng(seed + 1 + p)
        keys = [math.log2(1.0 + footprint(item[2])) + rng.uniform(-JITTER, JITTER) for item in items]
        order = [int(i) for i in np.argsort(keys, kind="stable")]
        offset = int(rng.integers(0, RING))
        bounds = [0, *range(offset or RING, len(order), RING), len(order)]
        rings += [order[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
    return rings


def _nothing() -> None:
    return None


def _with_producer(timed: Timed) -> tuple[Callable[[], Any], Callable[[], Any]]:
    return timed if isinstance(timed, tuple) else (timed, _nothing)


def _clock_overhead(clock: Callable[[], float]) -> float:
    gaps = []
    for _ in range(2000):
        t0 = clock()
        gaps.append(clock() - t0)
    return median(gaps)


def run_benches(items: list[Bench], threads: int, mode: str, seed: int = 0,
                progress: Callable[[int, int], None] | None = None) -> tuple[list[Sample], dict[str, float], float]:
    """Time ``items`` and the module overheads: (samples, wrapper overhead per module type, module call s).

    Kernels are timed the way a network runs them, not in a hot loop: in rings of :data:`RING` kernels
    of mixed types and similar footprint (:func:`_rings`), each ring run round after round with every
    call timed on its own. A kernel then finds its inputs and weights evicted by kernels of its own size,
    as a layer does in a forward pass; timed in a hot loop (same tensors, same oneDNN primitive every
    call) the same kernels run about a third faster than in a network here, and among much larger
    kernels a small one runs up to three times slower. Before each timed call the kernel's input is
    rewritten in place (untimed): in a network the layer before has just written it, so it sits in cache
    while the weights do not -- for an element-wise op on a large map that halves the time. Each pass reshuffles the rings; a kernel keeps its median of the
    quietest pass, since on a shared machine other processes only ever slow a kernel down.
    """
    plan = _PLAN[mode]
    clock = _clock(threads)
    passes = plan["passes"]
    medians: dict[int, list[float]] = {i: [] for i in range(len(items))}
    spreads: dict[int, list[float]] = {i: [] for i in range(len(items))}
    wrappers: dict[str, float] = {}
    rings = _rings(items, passes, seed)
    total, done = len(rings) + 1, 0
    with num_threads(threads), torch.inference_mode():
        gap = _clock_overhead(clock)
        trivial, x = _Trivial(), torch.randn(1, 8, 4, 4)
        per_call = time_call(lambda: trivial(x), clock, plan["block_s"] * 4, plan["blocks"] * 2)[0]
        empty = time_call(lambda: x, clock, plan["block_s"] * 4, plan["blocks"] * 2)[0]
        module_call = max(0.0, per_call - empty)
        for name, (mod_call, fn_call) in _wrapper_pairs().items():
            tm = time_call(mod_call, clock, plan["block_s"] * 2, plan["blocks"] * 2)[0]
            tf = time_call(fn_call, clock, plan["block_s"] * 2, plan["blocks"] * 2)[0]
            wrappers[name] = max(0.0, tm - tf)
        done += 1
        if progress:
            progress(done, total)
        for ring in rings:
            calls = [(i, *_with_producer(items[i][3]())) for i in ring]
            for _ in range(2):  # warm-up: oneDNN creates (JIT-compiles) each primitive on its first call
                for _, fn, produce in calls:
                    produce()
                    fn()
            times: dict[int, list[float]] = {i: [] for i in ring}
            for _ in range(plan["rounds"]):
                for i, fn, produce in calls:
                    produce()
                    t0 = clock()
                    fn()
                    times[i].append(clock() - t0)
            del calls
            for i, t in times.items():
                medians[i].append(max(median(t) - gap, 1e-8))
                spreads[i].append(relative_iqr(t))
            done += 1
            if progress:
                progress(done, total)
    samples = []
    for i, (kind, op, features, _) in enumerate(items):
        best = int(np.argmin(medians[i]))  # the quietest pass: a busy machine only ever slows a kernel down
        samples.append(Sample(kind, op, {k: float(v) for k, v in features.items()}, medians[i][best],
                              spreads[i][best]))
    return samples, wrappers, module_call


def block_programs(mode: str, seed: int = 0) -> list[Any]:
    """The random blocks a calibration of ``mode`` times (see :mod:`~shufflenet.audit.latency.blocks`)."""
    from shufflenet.audit.latency.blocks import random_block

    s = _Shapes(seed + 100)
    return [random_block(s) for _ in range(_PLAN[mode]["networks"])]


def _step_kernels(program: Any) -> list[tuple[str, str, dict[str, float]] | None]:
    """Run ``program`` once, recording which single kernel each step calls (``None``: not exactly one)."""
    from shufflenet.audit.latency.kernels import _Recorder

    out: list[tuple[str, str, dict[str, float]] | None] = []
    with torch.inference_mode():  # as timed: composite ops (conv2d, batch_norm) then reach the mode whole
        state = program.start()
        for step in program.steps:
            rec = _Recorder()
            with rec:
                step(state)
            k = rec.kernels[0] if len(rec.kernels) == 1 else None
            out.append((k.kind, k.op, {n: float(v) for n, v in k.features.items()}) if k is not None else None)
    return out


def run_blocks(programs: list[Any], threads: int, mode: str, seed: int = 0,
               progress: Callable[[], None] | None = None) -> list[Sample]:
    """Time every op of every block in its block (groups of :data:`GROUP` blocks run back to back)."""
    plan = _PLAN[mode]
    clock = _clock(threads)
    medians: dict[tuple[int, int], list[float]] = {}
    spreads: dict[tuple[int, int], list[float]] = {}
    with num_threads(threads), torch.inference_mode():
        gap = _clock_overhead(clock)
        kernels = [_step_kernels(p) for p in programs]
        for p in range(plan["passes"]):
            order = [int(i) for i in np.random.default_rng(seed + 200 + p).permutation(len(programs))]
            for g in range(0, len(order), GROUP):
                group = order[g:g + GROUP]
                times: dict[tuple[int, int], list[float]] = {}
                for r in range(2 + plan["rounds"]):  # two warm-up rounds: oneDNN primitives are created
                    for b in group:
                        state = programs[b].start()
                        for j, step in enumerate(programs[b].steps):
                            t0 = clock()
                            step(state)
                            if r >= 2:
                                times.setdefault((b, j), []).append(clock() - t0)
                for key, t in times.items():
                    medians.setdefault(key, []).append(max(median(t) - gap, 1e-8))
                    spreads.setdefault(key, []).append(relative_iqr(t))
                if progress:
                    progress()
    samples = []
    for b, steps in enumerate(kernels):
        for j, k in enumerate(steps):
            if k is None or (b, j) not in medians:
                continue
            best = int(np.argmin(medians[b, j]))
            samples.append(Sample(k[0], k[1], k[2], medians[b, j][best], spreads[b, j][best], "block"))
    return samples
