"""Where the time goes: measured time per op, per layer and per Fig. 2 op type, next to FLOPs and MAC.

The paper's Fig. 2 (Sec. 1) shows that the ops FLOPs ignore (element-wise, data movement, shuffle) take a
large share of the runtime; this module measures that share for any model on this machine.

Method (why it is not a rescaling):

1. **Attribution pass** (one forward, ``torch.profiler`` with shapes): module pre/post hooks open a
   ``record_function`` range per module, so every *top-level* aten op (one that no other aten op called,
   e.g. ``aten::conv2d`` with its ``convolution -> mkldnn_convolution`` children) gets the path of the
   innermost module it ran in. The cost engine's rows (:func:`shufflenet.cost.count_cost`) are matched to
   these ops in execution order (same module, op name found in the op's subtree), which gives each op its
   FLOPs, MAC and kind (dense / group / depthwise conv).
2. **Timing pass** (``repeats`` forwards after ``warmup`` untimed ones, profiler on, *no* hooks): each
   forward is one ``record_function`` range; its top-level ops must be the same sequence as in pass 1.
   On CPU an op's time is its wall interval; on CUDA the summed duration of the kernels it launched.
3. **Profiler overhead, measured and subtracted**: recording one event costs this machine a roughly
   constant time eps, found by timing a CNN unit's op mix on tiny tensors with and without the profiler
   (:func:`profiler_overhead_per_event`; a separate workload, so eps is measured, not fitted to the model).
   A top-level op's interval contains the recording of its k nested events, so its corrected time is
   ``interval - k * eps``. The time between top-level ops in the same forward (Python, module calls,
   dispatch: the framework overhead) is ``forward range - sum of op intervals - n_top * eps`` and goes to
   the "Other (framework, between ops)" bucket: measured in the profiled run itself, never derived from
   the independent total.
4. **Which forwards count**: a forward in which the calling thread had the CPU for less than 99% of the
   wall time (``time.thread_time``) was interrupted by another process and is left out; of the others,
   the forwards whose corrected total lies in the interquartile range are averaged, per op and for the
   framework gap (robust like a median, while the ops still add up to a forward's total).
5. **Coverage**: the sum of all buckets divided by the latency of :func:`shufflenet.measure.timing.measure`
   on the same model with no profiler attached (its default clock: thread CPU time for one CPU thread,
   wall time otherwise), timed in ``TOTAL_CHUNKS`` parts that alternate with the profiled forwards so a
   shared machine's changing load hits both alike. Nothing is rescaled to make it 1.

Units: FLOPs are multiply-adds (paper V2 footnote 1) and rates ``GMAdd/s`` (as ``shufflenet bench``); MAC
is the paper's memory access cost (Sec. 2, G1), in bytes per second as ``MAC GB/s``. The roofline verdict
compares a layer's intensity (multiply-adds per MAC byte) with the machine's ridge point (compute ceiling
in GMAdd/s -- the best of several fp32 kernels, not one library's -- over copy GB/s,
:mod:`shufflenet.measure.machine`): above it the layer is compute-bound, below it memory-bound.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import statistics
import sys
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import nn
from torch.autograd.profiler import record_function
from torch.profiler import ProfilerActivity
from torch.profiler import profile as torch_profile

from shufflenet.errors import ShuffleNetError, UserInputError
from shufflenet.measure import optypes
from shufflenet.measure.env import capture_environment
from shufflenet.measure.machine import MachineCeilings, load_machine, measure_machine
from shufflenet.measure.options import (
    check_input_size,
    dtype_name,
    resolve_device,
    resolve_dtype,
    resolve_threads,
)
from shufflenet.measure.timing import (
    Measurement,
    measure,
    num_threads,
    summarize_times,
)

DEFAULT_REPEATS = 60
DEFAULT_WARMUP = 5
# A forward in which the calling thread had the CPU for less than this share of the wall time was
# interrupted by another process; it is left out (see _assemble).
UNDISTURBED = 0.99
TOTAL_CHUNKS = 6  # rounds of (profiled forwards, independent timing), see profile()
# Seconds of independent timing in all (measure()'s blocks; about as long as the profiled forwards take).
TOTAL_MIN_RUN_TIME = 1.2
COVERAGE_TOLERANCE = 0.05  # issue 3: the buckets sum to the measured total within 5%
ROOT = "(root)"  # the cost engine's name for the model itself
_MOD = "shufflenet.module::"
_ITER = "shufflenet.forward::"

CeilingsArg = MachineCeilings | Literal["auto", "cached", "none"] | None

CONVENTIONS = [
    "FLOPs = multiply-adds of conv + FC (paper convention, V2 footnote 1); GMAdd/s = 10^9 multiply-adds/s",
    "MAC = memory access cost, elements read + written per op, weights included (paper Sec. 2); "
    "GB/s = MAC bytes per second",
    "time per op = mean over the central half of the uninterrupted profiled forwards, profiler overhead "
    "(eps per recorded event, measured on a separate workload) subtracted",
    "Other (framework) = time between ops inside the profiled forward (Python, module calls, dispatch)",
    "coverage = sum of buckets / latency measured by measure() without the profiler",
    "bound = roofline: multiply-adds per MAC byte vs the ridge point (compute ceiling GMAdd/s, the best "
    "measured fp32 kernel, / copy GB/s)",
    "bandwidth % is against the copy ceiling, which streams tensors far larger than the caches: a layer whose "
    "tensors stay in cache (batch 1) can exceed 100%",
]


# --- results ---------------------------------------------------------------------------------------


@dataclass
class OpTime:
    """One top-level op of the forward pass (position ``index``), its time and the cost rows matched to it."""

    index: int
    op: str
    module: str
    module_type: str
    bucket: str
    time_s: float
    raw_time_s: float
    nested_events: int
    flops: int = 0
    mac: int = 0
    mac_bytes: int = 0
    cost_ops: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LayerTime:
    """Measured time of one module path (ops run directly in it, not in its children) and its cost."""

    name: str
    module_type: str
    ops: int
    time_s: float
    flops: int
    mac: int
    mac_bytes: int
    bucket: str
    percent: float = 0.0
    bound: str = "unknown"
    compute_pct: float | None = None
    bandwidth_pct: float | None = None

    @property
    def gmadds_per_s(self) -> float:
        return self.flops / self.time_s / 1e9 if self.time_s > 0 else 0.0

    @property
    def mac_gb_per_s(self) -> float:
        return self.mac_bytes / self.time_s / 1e9 if self.time_s > 0 else 0.0

    @property
    def intensity(self) -> float:
        """Multiply-adds per byte of memory access (0 without memory access)."""
        return self.flops / self.mac_bytes if self.mac_bytes else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(gmadds_per_s=self.gmadds_per_s, mac_gb_per_s=self.mac_gb_per_s, intensity=self.intensity)
        return d


@dataclass
class BucketTime:
    """One Fig. 2 bucket: time, share of the profiled total and the number of ops in it."""

    key: str
    label: str
    group: str
    time_s: float
    ops: int
    percent: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ridge_point(ceilings: MachineCeilings) -> float:
    """Multiply-adds per byte at which the roofline turns: compute ceiling GMAdd/s over copy GB/s."""
    return ceilings.matmul_gmadds / ceilings.copy_gb_per_s


def roofline_bound(flops: int, mac_bytes: int, ceilings: MachineCeilings | None) -> str:
    """``"compute"`` when the intensity (multiply-adds per MAC byte) reaches the ridge point, ``"memory"``
    below it, ``"n/a"`` for an op without memory access (a view), ``"unknown"`` without ceilings."""
    if ceilings is None:
        return "unknown"
    if mac_bytes <= 0:
        return "n/a"
    return "compute" if flops / mac_bytes >= ridge_point(ceilings) else "memory"


@dataclass
class ProfileReport:
    """Result of :func:`profile` (JSON-ready through :meth:`to_dict`)."""

    model: str
    input_size: tuple[int, int, int, int]
    device: str
    dtype: str
    threads: int
    repeats: int
    warmup: int
    ops: list[OpTime]
    layers: list[LayerTime]
    buckets: list[BucketTime]
    overhead_time_s: float
    profiled_sum_s: float
    profiled_wall_s: float
    overhead_per_event_s: float
    events_per_forward: int
    total: Measurement | None
    flops: int
    mac: int
    mac_bytes: int
    ceilings: MachineCeilings | None = None
    ceilings_source: str = "none"
    paper: dict[str, optypes.Fig2Breakdown] | None = None
    unmatched_cost_rows: int = 0
    forward_totals_s: list[float] = field(default_factory=list)
    kept_forwards: list[int] = field(default_factory=list)
    env: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    conventions: list[str] = field(default_factory=lambda: list(CONVENTIONS))

    # -- derived ---------------------------------------------------------------------------------

    @property
    def total_s(self) -> float | None:
        """Independent latency (median of :func:`measure`, no profiler), or ``None`` if not measured."""
        return self.total.median_s if self.total is not None else None

    @property
    def coverage(self) -> float | None:
        """Unscaled sum of the buckets over the independent latency (1.0 = every microsecond accounted)."""
        return self.profiled_sum_s / self.total_s if self.total_s else None

    @property
    def coverage_ok(self) -> bool | None:
        c = self.coverage
        return None if c is None else abs(c - 1.0) <= COVERAGE_TOLERANCE

    def bucket_times(self) -> dict[str, float]:
        return {b.key: b.time_s for b in self.buckets}

    def group_percent(self) -> dict[str, float]:
        """Percent per Fig. 2 category plus Pooling and FC (:data:`optypes.GROUP_ORDER`)."""
        return optypes.percentages(optypes.group_totals(self.bucket_times()))

    def paper_percent(self) -> dict[str, float]:
        """Our percentages in Fig. 2's five categories (Pooling and FC inside Other)."""
        return optypes.paper_view(self.bucket_times())

    # -- rendering -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        total = self.total.to_dict() if self.total is not None else None
        if total is not None:
            total.pop("env", None)  # recorded once, at the top
        return {
            "model": self.model, "input_size": list(self.input_size), "device": self.device,
            "dtype": self.dtype, "threads": self.threads, "repeats": self.repeats, "warmup": self.warmup,
            "conventions": self.conventions, "env": self.env, "flops": self.flops, "mac": self.mac,
            "mac_bytes": self.mac_bytes,
            "coverage": {
                "profiled_sum_s": self.profiled_sum_s, "independent_total_s": self.total_s,
                "ratio": self.coverage, "within_tolerance": self.coverage_ok, "tolerance": COVERAGE_TOLERANCE,
                "profiled_wall_s": self.profiled_wall_s, "overhead_per_event_s": self.overhead_per_event_s,
                "events_per_forward": self.events_per_forward, "framework_overhead_s": self.overhead_time_s,
                "forward_totals_s": self.forward_totals_s, "kept_forwards": self.kept_forwards,
            },
            "total": total,
            "ceilings": self.ceilings.to_dict() if self.ceilings is not None else None,
            "ceilings_source": self.ceilings_source,
            "ridge_madds_per_byte": ridge_point(self.ceilings) if self.ceilings is not None else None,
            "buckets": [b.to_dict() for b in self.buckets],
            "groups_percent": self.group_percent(),
            "paper_categories_percent": self.paper_percent(),
            "paper_fig2": {k: v.to_dict() for k, v in self.paper.items()} if self.paper else None,
            "layers": [r.to_dict() for r in self.layers],
            "ops": [o.to_dict() for o in self.ops],
            "unmatched_cost_rows": self.unmatched_cost_rows,
            "notes": self.notes,
        }

    def bucket_rows(self) -> list[dict[str, Any]]:
        """One row per bucket (Conv split into dense/group/depthwise), with the paper's % when known."""
        rows = []
        for b in self.buckets:
            row: dict[str, Any] = {"bucket": b.label, "group": b.group, "ops": b.ops,
                                   "time_ms": round(b.time_s * 1e3, 3), "percent": round(b.percent, 1)}
            rows.append(row)
        return rows

    def comparison_rows(self) -> list[dict[str, Any]]:
        """Fig. 2's five categories: ours next to the paper's GPU and ARM percentages (when known)."""
        ours = self.paper_percent()
        rows = []
        for cat in optypes.PAPER_CATEGORIES:
            row: dict[str, Any] = {"category": cat, "this_machine_pct": round(ours[cat], 1)}
            if self.paper:
                for key, pie in self.paper.items():
                    row[f"paper_{key}_pct"] = pie.percent.get(cat)
            rows.append(row)
        return rows

    def layer_rows(self, top: int | None = None) -> list[dict[str, Any]]:
        layers = self.layers
        if top is not None:
            layers = sorted(layers, key=lambda r: -r.time_s)[:top]
        rows = []
        for r in layers:
            rows.append({
                "layer": r.name, "type": r.module_type, "bucket": optypes.LABELS[r.bucket], "ops": r.ops,
                "time_ms": round(r.time_s * 1e3, 4), "percent": round(r.percent, 2),
                "mflops": round(r.flops / 1e6, 3), "mac_kb": round(r.mac_bytes / 1e3, 1),
                "gmadds_per_s": round(r.gmadds_per_s, 2), "mac_gb_per_s": round(r.mac_gb_per_s, 2),
                "madds_per_byte": round(r.intensity, 2), "bound": r.bound,
                "compute_pct": None if r.compute_pct is None else round(r.compute_pct, 1),
                "bandwidth_pct": None if r.bandwidth_pct is None else round(r.bandwidth_pct, 1),
            })
        return rows

    def op_rows(self, top: int | None = None) -> list[dict[str, Any]]:
        ops = self.ops
        if top is not None:
            ops = sorted(ops, key=lambda o: -o.time_s)[:top]
        total = self.profiled_sum_s or 1.0
        return [{"index": o.index, "op": o.op, "layer": o.module, "bucket": optypes.LABELS[o.bucket],
                 "time_ms": round(o.time_s * 1e3, 4), "percent": round(100 * o.time_s / total, 2),
                 "mflops": round(o.flops / 1e6, 3), "mac_kb": round(o.mac_bytes / 1e3, 1),
                 "cost_ops": "+".join(o.cost_ops)} for o in ops]

    def rows(self, by: str = "op-type", top: int | None = None) -> list[dict[str, Any]]:
        """Table/CSV rows: ``by`` is ``"op-type"`` (Fig. 2 buckets), ``"layer"`` or ``"op"``."""
        if by == "op-type":
            return self.bucket_rows() if top is None else self.bucket_rows()[:top]
        if by == "layer":
            return self.layer_rows(top)
        if by == "op":
            return self.op_rows(top)
        raise UserInputError(f"unknown grouping {by!r}: choose op-type, layer or op")

    def header(self) -> list[str]:
        e = self.env
        where = e.get("gpu_name") or e.get("cpu_model") or self.device
        lines = [f"{self.model}  input {'x'.join(map(str, self.input_size))}  {self.device} ({where}), "
                 f"{self.threads} thread(s), {self.dtype}, torch {e.get('torch', torch.__version__)}",
                 f"FLOPs {self.flops / 1e6:.1f} M multiply-adds, MAC {self.mac / 1e6:.2f} M elements "
                 f"({self.mac_bytes / 1e6:.2f} MB)"]
        lines += [f"  {c}" for c in self.conventions]
        return lines

    def footer(self) -> list[str]:
        lines = [f"sum of buckets {self.profiled_sum_s * 1e3:.3f} ms (profiler overhead "
                 f"{self.overhead_per_event_s * 1e6:.3f} us x {self.events_per_forward} events subtracted from "
                 f"the profiled forward of {self.profiled_wall_s * 1e3:.3f} ms)"]
        if self.total is not None:
            flag = "within" if self.coverage_ok else "OUTSIDE"
            lines.append(f"independent latency (measure(), no profiler) {self.total.median_s * 1e3:.3f} ms "
                         f"(IQR {self.total.iqr_s * 1e3:.3f} ms{', NOISY' if self.total.noisy else ''}); "
                         f"coverage {self.coverage:.3f} ({flag} {COVERAGE_TOLERANCE:.0%})")
        if self.ceilings is not None:
            c = self.ceilings
            lines.append(f"ceilings ({c.threads} thread(s), {self.ceilings_source}): {c.summary()}, "
                         f"ridge {ridge_point(c):.2f} multiply-adds/byte")
        else:
            lines.append("ceilings: unknown (run `shufflenet bench --machine` to measure them); bound = unknown")
        lines += [f"note: {n}" for n in self.notes]
        return lines

    def to_table(self, by: str = "op-type", top: int | None = None) -> str:
        from shufflenet.cli._common import rows_to_table

        parts = ["\n".join(self.header()), rows_to_table(self.rows(by, top))]
        if by == "op-type":
            title = "Fig. 2 categories (Pooling and FC folded into Other)"
            if self.paper:
                title += ": this machine vs the paper's " + " and ".join(p.platform for p in self.paper.values())
            parts.append(rows_to_table(self.comparison_rows(), title=title))
        parts.append("\n".join(self.footer()))
        return "\n\n".join(parts)

    def summary(self) -> str:
        pct = self.paper_percent()
        cov = f"{self.coverage:.3f}" if self.coverage is not None else "n/a"
        return (f"{self.model}: " + ", ".join(f"{k} {v:.1f}%" for k, v in pct.items())
                + f"; coverage {cov}")


# --- profiler plumbing ----------------------------------------------------------------------------


@dataclass
class _Top:
    """A top-level op of the attribution pass."""

    name: str
    module: str
    subtree: list[str]
    input_rank: int | None
    reads_shuffle: bool = False  # its module was called on a ChannelShuffle / ShuffleSplit output


def _activities(dev: torch.device) -> list[ProfilerActivity]:
    acts = [ProfilerActivity.CPU]
    if dev.type == "cuda":
        acts.append(ProfilerActivity.CUDA)
    return acts


@contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 to /dev/null for the block: Kineto prints "profiler_start"/"profiler_stop" (and, on
    CUDA builds without a GPU, a device-count error) there on every start and stop."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextmanager
def _profiler(dev: torch.device, record_shapes: bool = False) -> Iterator[Any]:
    """``torch.profiler.profile`` whose start and stop are quiet; the profiled code keeps its stderr."""
    prof = torch_profile(activities=_activities(dev), record_shapes=record_shapes)
    with _native_stderr_silenced():
        prof.__enter__()
    try:
        yield prof
    finally:
        with _native_stderr_silenced():
            prof.__exit__(None, None, None)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _count(ev: Any) -> int:
    """Events nested under ``ev`` (not counting ``ev``)."""
    return sum(1 + _count(c) for c in ev.cpu_children)


def _names(ev: Any) -> list[str]:
    out = [optypes.short_name(ev.name)]
    for c in ev.cpu_children:
        out += _names(c)
    return out


def _duration_us(ev: Any) -> float:
    return float(ev.time_range.end - ev.time_range.start)


def _ranges(events: Any, prefix: str) -> list[Any]:
    found = [e for e in events if e.name.startswith(prefix)]
    found.sort(key=lambda e: e.time_range.start)
    return found


def _attribution_pass(net: nn.Module, x: torch.Tensor, dev: torch.device) -> tuple[list[_Top], dict[str, str]]:
    """One profiled forward with a range per module: the top-level ops and the module each ran in."""
    types = {(name or ROOT): type(m).__name__ for name, m in net.named_modules()}
    stack: list[Any] = []
    # Outputs of shuffle modules (they are views: the copy happens in whichever op reads them first).
    shuffled: dict[int, Any] = {}
    reads_shuffle: set[str] = set()

    def pre(label: str, module: nn.Module, args: Any) -> None:
        if any(isinstance(a, torch.Tensor) and (r := shuffled.get(id(a))) is not None and r() is a for a in args):
            reads_shuffle.add(label)
        rf = record_function(_MOD + label)
        rf.__enter__()
        stack.append(rf)

    def post(module: nn.Module, args: Any, out: Any) -> None:
        if stack:
            stack.pop().__exit__(None, None, None)
        if type(module).__name__ in optypes.SHUFFLE_MODULES:
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    shuffled[id(t)] = weakref.ref(t)

    hooks = []
    try:
        for name, m in net.named_modules():
            label = name or ROOT
            hooks.append(m.register_forward_pre_hook(lambda mod, a, label=label: pre(label, mod, a)))
            hooks.append(m.register_forward_hook(post, always_call=True))
        with _profiler(dev, record_shapes=True) as prof:
            with record_function(_ITER + "0"):
                net(x)
                _sync(dev)
    finally:
        for h in hooks:
            h.remove()
    forward = _ranges(prof.events(), _ITER)[0]
    tops: list[_Top] = []

    def walk(ev: Any, module: str) -> None:
        for c in sorted(ev.cpu_children, key=lambda e: e.time_range.start):
            if c.name.startswith(_MOD):
                walk(c, c.name[len(_MOD):])
            else:
                shapes = getattr(c, "input_shapes", None) or []
                rank = len(shapes[0]) if shapes and isinstance(shapes[0], (list, tuple)) else None
                tops.append(_Top(c.name, module, _names(c), rank, module in reads_shuffle))

    walk(forward, ROOT)
    return tops, types


@dataclass
class _Forwards:
    """Profiled forwards: per forward the top-level op times (us; CPU interval, or on CUDA the op's kernel
    time), their nested event counts, the forward range (us) and the calling thread's CPU time / wall time
    (below 1 when another process took the CPU away during that forward)."""

    names: list[str]
    times: list[list[float]] = field(default_factory=list)
    nested: list[list[int]] = field(default_factory=list)
    walls: list[float] = field(default_factory=list)
    cpu_ratio: list[float] = field(default_factory=list)
    # ``aten::contiguous`` calls nested in a top-level op (e.g. a conv making its strided input dense):
    # their time (us) and their events (themselves + nested), per forward and op.
    copy_times: list[list[float]] = field(default_factory=list)
    copy_events: list[list[int]] = field(default_factory=list)

    def extend(self, other: _Forwards) -> None:
        if other.names != self.names:
            raise ShuffleNetError("the model ran a different sequence of ops in two forward passes; "
                                  "profile needs a deterministic forward")
        for name in ("times", "nested", "walls", "cpu_ratio", "copy_times", "copy_events"):
            getattr(self, name).extend(getattr(other, name))


def _op_us(ev: Any, dev: torch.device) -> float:
    """An op's time (us): its CPU interval, or on CUDA the duration of the kernels it launched."""
    return float(ev.device_time_total) if dev.type == "cuda" else _duration_us(ev)


def _nested_copies(ev: Any) -> list[Any]:
    """The outermost ``aten::contiguous`` events below ``ev`` (a layout copy an op makes of its input)."""
    out = []
    for c in ev.cpu_children:
        out += [c] if c.name == "aten::contiguous" else _nested_copies(c)
    return out


def _timing_pass(net: nn.Module, x: torch.Tensor, dev: torch.device, repeats: int) -> _Forwards:
    """``repeats`` profiled forwards (plus one discarded first one, which pays the profiler's start-up)."""
    cpu, wall = [], []
    with _profiler(dev) as prof:
        for i in range(repeats + 1):
            c0, w0 = time.thread_time(), time.perf_counter()
            with record_function(f"{_ITER}{i}"):
                net(x)
                _sync(dev)
            cpu.append(time.thread_time() - c0)
            wall.append(time.perf_counter() - w0)
    out: _Forwards | None = None
    for j, fwd in enumerate(_ranges(prof.events(), _ITER)[1:], start=1):
        tops = sorted(fwd.cpu_children, key=lambda e: e.time_range.start)
        one = _Forwards([t.name for t in tops])
        one.times.append([_op_us(t, dev) for t in tops])
        one.nested.append([_count(t) for t in tops])
        copies = [_nested_copies(t) for t in tops]
        one.copy_times.append([sum(_op_us(c, dev) for c in cs) for cs in copies])
        one.copy_events.append([sum(1 + _count(c) for c in cs) for cs in copies])
        one.walls.append(_duration_us(fwd))
        one.cpu_ratio.append(cpu[j] / wall[j] if wall[j] > 0 else 0.0)
        if out is None:
            out = one
        else:
            out.extend(one)
    if out is None:
        raise ShuffleNetError("the profiler recorded no forward pass")
    return out


def _calibration_step(a: torch.Tensor, w: torch.Tensor, wd: torch.Tensor, bn: tuple[torch.Tensor, ...],
                      big: tuple[torch.Tensor, torch.Tensor], n: int) -> None:
    """A CNN unit's op mix on tiny tensors: conv (nested dispatch), BN, ReLU, depthwise conv, add, cat and a
    channel shuffle (view, transpose, contiguous, view); then a 2 MB copy, so that the profiler's buffers
    compete for the cache as they do in a real forward (eps grows when they do)."""
    c, h = a.shape[1], a.shape[2]
    for _ in range(n):
        y = torch.relu_(torch.nn.functional.batch_norm(torch.nn.functional.conv2d(a, w), *bn))
        y = torch.nn.functional.conv2d(y, wd, padding=1, groups=c) + a
        y = torch.cat((y, a), 1)
        y.view(1, 2, c, h, h).transpose(1, 2).contiguous().view(1, 2 * c, h, h)
        big[1].copy_(big[0])


def profiler_overhead_per_event(device: str | torch.device = "cpu", *, loops: int = 20, rounds: int = 9,
                                trials: int = 3) -> float:
    """Seconds the profiler adds per recorded event on this machine (eps of the module docstring).

    A CNN unit's op mix (:func:`_calibration_step`, nested events included) on tiny tensors is timed
    ``rounds`` times without the profiler (before and after) and ``rounds`` times inside one profiler
    session; eps = (fastest profiled - fastest plain) / events recorded per loop. The fastest round of each
    is the one least disturbed by other processes; tiny tensors keep the kernels short, so the difference
    is the cost of recording. The median of ``trials`` such estimates is returned. The workload is not the
    profiled model: eps is measured, not fitted to the model's total.
    """
    return statistics.median(_overhead_trial(device, loops, rounds) for _ in range(trials))


def _overhead_trial(device: str | torch.device, loops: int, rounds: int) -> float:
    dev = torch.device(device)
    c = 4
    a = torch.randn(1, c, 4, 4, device=dev)
    w = torch.randn(c, c, 1, 1, device=dev)
    wd = torch.randn(c, 1, 3, 3, device=dev)
    bn = (torch.zeros(c, device=dev), torch.ones(c, device=dev), torch.ones(c, device=dev),
          torch.zeros(c, device=dev))
    src = torch.ones(1 << 19, device=dev)  # 2 MB of fp32
    big = (src, torch.empty_like(src))

    def timed() -> float:
        _sync(dev)
        t = time.perf_counter()
        _calibration_step(a, w, wd, bn, big, loops)
        _sync(dev)
        return time.perf_counter() - t

    # One thread: tiny ops run on the calling thread anyway, and idle OpenMP workers only add noise.
    with num_threads(1), torch.inference_mode():
        _calibration_step(a, w, wd, bn, big, loops)
        plain = [timed() for _ in range(rounds)]
        profiled = []
        with _profiler(dev) as prof:
            _calibration_step(a, w, wd, bn, big, 2)  # the profiler's first events are slower
            for i in range(rounds):
                with record_function(f"{_ITER}{i}"):
                    profiled.append(timed())
        plain += [timed() for _ in range(rounds)]
    events = statistics.median(_count(r) for r in _ranges(prof.events(), _ITER))
    eps = (min(profiled) - min(plain)) / events
    return max(eps, 0.0)


# --- joining with the cost report -----------------------------------------------------------------


def _match_cost(tops: Sequence[_Top], rows: Sequence[Any]) -> tuple[list[list[int]], int]:
    """Assign each cost row (execution order) to the first top-level op at or after the previous match that
    ran in the same module and dispatched an op of that name. Returns the row indices per op and the
    number of rows left unmatched (they still count in their layer)."""
    subtrees = [set(t.subtree) for t in tops]
    assigned: list[list[int]] = [[] for _ in tops]
    p = unmatched = 0
    for ri, r in enumerate(rows):
        j = p
        while j < len(tops) and not (tops[j].module == r.name and r.op in subtrees[j]):
            j += 1
        if j < len(tops):
            assigned[j].append(ri)
            p = j
        else:
            unmatched += 1
    return assigned, unmatched


def _table_kinds(subtree: Sequence[str]) -> set[str]:
    """Cost-engine kinds of the ops of a subtree, from the cost rule tables (conv needs its arguments:
    left to the caller)."""
    from shufflenet.cost import tables

    kinds = set()
    for n in subtree:
        packet = getattr(torch.ops.aten, n, None) if "::" not in n else None
        kind = tables.OP_KINDS.get(packet) if packet is not None else None
        if isinstance(kind, str):
            kinds.add(kind)
    return kinds


def _module_conv_kind(module: nn.Module | None) -> str | None:
    groups, cin = getattr(module, "groups", None), getattr(module, "in_channels", None)
    if isinstance(groups, int) and isinstance(cin, int):
        return {optypes.CONV_DENSE: "conv", optypes.CONV_GROUP: "gconv",
                optypes.CONV_DEPTHWISE: "dwconv"}[optypes.conv_bucket(groups, cin)]
    return None


def _classify_ops(tops: Sequence[_Top], rows: Sequence[Any], assigned: Sequence[Sequence[int]],
                  types: dict[str, str], modules: dict[str, nn.Module]) -> list[str]:
    # Shuffle sequences are looked for within runs of consecutive ops of one module.
    shuffle: set[int] = set()
    start = 0
    for i in range(1, len(tops) + 1):
        if i == len(tops) or tops[i].module != tops[start].module:
            found = optypes.shuffle_positions([t.name for t in tops[start:i]],
                                              [t.input_rank for t in tops[start:i]])
            shuffle.update(start + k for k in found)
            start = i
    buckets = []
    for i, t in enumerate(tops):
        kinds = {rows[r].kind for r in assigned[i]} or _table_kinds(t.subtree)
        if optypes.short_name(t.name) in optypes.CONV_OPS and not kinds & {"conv", "gconv", "dwconv"}:
            mk = _module_conv_kind(modules.get(t.module))
            if mk:
                kinds.add(mk)
        buckets.append(optypes.classify(t.name, kinds=kinds, module_type=types.get(t.module, ""),
                                        shuffle=i in shuffle))
    return buckets


# --- the entry point ------------------------------------------------------------------------------


def _prepare(model: nn.Module, dev: torch.device, dt: torch.dtype) -> nn.Module:
    """The model on ``dev`` in ``dt``: the caller's own when it already is, else a converted copy."""
    tensors = list(model.parameters()) + list(model.buffers())
    if all(p.device == dev for p in tensors) and all(p.dtype == dt for p in tensors if p.is_floating_point()):
        return model
    return copy.deepcopy(model).to(device=dev, dtype=dt)


def _resolve_ceilings(ceilings: CeilingsArg, dev: torch.device, nthreads: int
                      ) -> tuple[MachineCeilings | None, str]:
    if isinstance(ceilings, MachineCeilings):
        return ceilings, "given"
    if ceilings in (None, "none"):
        return None, "none"
    if ceilings not in ("auto", "cached"):
        raise UserInputError(f"ceilings must be auto, cached or none, got {ceilings!r}")
    cached = load_machine(dev, nthreads)
    if cached is not None:
        return cached, "cache"
    if ceilings == "cached":
        return None, "none"
    return measure_machine(dev, nthreads), "measured now (and cached)"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def profile(
    model: nn.Module,
    input_size: Sequence[int] = (1, 3, 224, 224),
    *,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    dtype: str | torch.dtype = torch.float32,
    repeats: int = DEFAULT_REPEATS,
    warmup: int = DEFAULT_WARMUP,
    ceilings: CeilingsArg = "auto",
    measure_total: bool = True,
    min_run_time: float = TOTAL_MIN_RUN_TIME,
    name: str | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> ProfileReport:
    """Measure where ``model``'s forward time goes: per op, per layer and per Fig. 2 bucket.

    See the module docstring for the method. ``threads=None`` means 1 on CPU (as :func:`measure`).

    Args:
        repeats: profiled forwards (split over ``TOTAL_CHUNKS`` profiler sessions; per op the mean over the
            central half of the uninterrupted ones is reported); ``warmup``: untimed forwards before.
        ceilings: the machine's compute/copy ceilings for the roofline verdict: ``"auto"`` reads the cache
            of ``shufflenet bench --machine`` and measures them once (a few seconds, then cached) when absent;
            ``"cached"`` only reads the cache (verdict "unknown" without it); ``"none"`` skips them; or a
            :class:`MachineCeilings`.
        measure_total: also time the model with :func:`measure` (no profiler) for the coverage ratio.
        min_run_time: seconds of timed blocks for that independent measurement, in all (split over the
            chunks that alternate with the profiled forwards).
        name: the model's label; a Fig. 2 model name (``shufflenet_v1_g3_x1_0``, ``torchvision:mobilenet_v2``)
            adds the paper's percentages to the report.
        on_stage: called with the name of each stage as it starts (for progress display).
    """
    dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    size = check_input_size(input_size)
    nthreads = resolve_threads(threads, dev)
    for label, value, low in (("repeats", repeats, 1), ("warmup", warmup, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise UserInputError(f"{label} must be an integer >= {low}, got {value!r}")
    stage = on_stage or (lambda s: None)
    label = name or type(model).__name__
    was_training = model.training
    net = _prepare(model, dev, dt)
    try:
        stage("cost")
        from shufflenet.cost import count_cost

        try:
            cost = count_cost(net, size, mode="paper", dtype=dt, device=dev)
        except RuntimeError as exc:
            raise UserInputError(f"the model cannot run on input {'x'.join(map(str, size))}: "
                                 f"{_first_line(exc)}") from exc
        stage("ceilings")
        machine, source = _resolve_ceilings(ceilings, dev, nthreads)
        net.eval()
        with num_threads(nthreads), torch.inference_mode():
            x = torch.randn(size, device=dev, dtype=dt)
            stage("warm-up")
            for _ in range(max(warmup, 1)):
                net(x)
            _sync(dev)
            stage("attribution")
            tops, types = _attribution_pass(net, x, dev)
            stage("calibration")
            eps_s = profiler_overhead_per_event(dev)
        # Profiled forwards and the independent timing alternate in `chunks` rounds, so that a shared
        # machine's changing load hits both alike.
        chunks = _chunks(measure_total, repeats)
        forwards: _Forwards | None = None
        parts: list[Measurement] = []
        for k in range(chunks):
            stage("profile" if k == 0 else f"profile {k + 1}/{chunks}")
            n = repeats // chunks + (1 if k < repeats % chunks else 0)
            with num_threads(nthreads), torch.inference_mode():
                chunk = _timing_pass(net, x, dev, n)
            if chunk.names != [top.name for top in tops]:
                raise ShuffleNetError("the op sequence differs between the attribution and timing passes; "
                                      "profile needs a deterministic forward")
            if forwards is None:
                forwards = chunk
            else:
                forwards.extend(chunk)
            if measure_total:
                stage("total" if k == 0 else f"total {k + 1}/{chunks}")
                parts.append(measure(net, size, device=dev, threads=nthreads, dtype=dt,
                                     min_run_time=min_run_time / chunks, warmup=warmup if k == 0 else 1,
                                     name=label))
        total = _pool(parts) if parts else None
    finally:
        if net is model:
            model.train(was_training)
    assert forwards is not None
    return _assemble(label, size, dev, dt, nthreads, repeats, warmup, tops, types, dict(net.named_modules()),
                     cost, forwards, eps_s, total, machine, source)


def _chunks(measure_total: bool, repeats: int) -> int:
    return min(TOTAL_CHUNKS if measure_total else 1, repeats)


def stage_count(measure_total: bool = True, repeats: int = DEFAULT_REPEATS) -> int:
    """How many times :func:`profile` calls ``on_stage`` (for a progress bar's total)."""
    chunks = _chunks(measure_total, repeats)
    return 5 + chunks * (2 if measure_total else 1)


def _pool(parts: Sequence[Measurement]) -> Measurement:
    """One :class:`Measurement` from the timed blocks of several (the same model, input and settings)."""
    if len(parts) == 1:
        return parts[0]
    blocks = [t for m in parts for t in m.times_s]
    st = summarize_times(blocks)
    return dataclasses.replace(
        parts[0], median_s=st.median, mean_s=st.mean, iqr_s=st.iqr, min_s=st.min, max_s=st.max,
        quantiles_s=st.quantiles, num_blocks=len(blocks), times_s=blocks,
        min_run_time=sum(m.min_run_time for m in parts),
        notes=[*parts[0].notes, f"pooled from {len(parts)} measure() calls alternating with the profiled "
                                f"forwards (blocks of {', '.join(str(m.number_per_run) for m in parts)} runs)"])


def _assemble(label: str, size: tuple[int, int, int, int], dev: torch.device, dt: torch.dtype, nthreads: int,
              repeats: int, warmup: int, tops: list[_Top], types: dict[str, str], modules: dict[str, nn.Module],
              cost: Any, fw: _Forwards, eps_s: float, total: Measurement | None,
              machine: MachineCeilings | None, source: str) -> ProfileReport:
    """Overhead correction, forward selection, cost join, buckets and layers (arithmetic, no timing)."""
    eps_us = eps_s * 1e6
    rows = cost.layers
    assigned, unmatched = _match_cost(tops, rows)
    buckets = _classify_ops(tops, rows, assigned, types, modules)
    n_top = len(tops)
    kernel_times = dev.type == "cuda"  # kernel durations carry no CPU-side recording overhead
    events = n_top + sum(fw.nested[0])
    # A layout copy nested in a compute op is shown as its own row: Shuffle when the op's module read a
    # shuffle module's output (the official V2 shuffle-split is a view; the next conv pays the copy), else Data.
    split = [fw.copy_events[0][i] > 0 and buckets[i] not in (optypes.DATA, optypes.SHUFFLE) for i in range(n_top)]
    corrected = [_corrected(fw, j, split, 0.0 if kernel_times else eps_us) for j in range(len(fw.walls))]
    # Framework time between ops: the forward's range minus its op intervals minus the recording of the
    # top-level events (on CUDA: minus all events, the CPU-side cost that delays the launches).
    gaps = [max(wall - sum(ts) - (events if kernel_times else n_top) * eps_us, 0.0)
            for ts, wall in zip(fw.times, fw.walls, strict=True)]
    forward_totals = [sum(c) + g for c, g in zip(corrected, gaps, strict=True)]
    undisturbed = [j for j, r in enumerate(fw.cpu_ratio) if kernel_times or r >= UNDISTURBED]
    notes = []
    if len(undisturbed) < min(3, len(fw.walls)):
        notes.append(f"only {len(undisturbed)} of {len(fw.walls)} profiled forwards kept the CPU throughout "
                     "(busy machine): all of them are used")
        undisturbed = list(range(len(fw.walls)))
    keep = [undisturbed[j] for j in _central_forwards([forward_totals[j] for j in undisturbed])]
    raw = [_corrected(fw, j, split, 0.0) for j in range(len(fw.walls))]
    ops: list[OpTime] = []
    col = 0
    for i, t in enumerate(tops):
        matched = [rows[r] for r in assigned[i]]
        ops.append(OpTime(index=i, op=t.name, module=t.module, module_type=types.get(t.module, ""),
                          bucket=buckets[i], time_s=_mean(corrected, keep, col) / 1e6,
                          raw_time_s=_mean(raw, keep, col) / 1e6, nested_events=fw.nested[0][i],
                          flops=sum(r.flops for r in matched), mac=sum(r.mac for r in matched),
                          mac_bytes=sum(r.mac_bytes for r in matched), cost_ops=[r.op for r in matched]))
        col += 1
        if split[i]:
            ops.append(OpTime(index=i, op=f"aten::contiguous (in {t.name})", module=t.module,
                              module_type=types.get(t.module, ""),
                              bucket=optypes.SHUFFLE if t.reads_shuffle else optypes.DATA,
                              time_s=_mean(corrected, keep, col) / 1e6, raw_time_s=_mean(raw, keep, col) / 1e6,
                              nested_events=fw.copy_events[0][i] - 1))
            col += 1
    overhead = sum(gaps[j] for j in keep) / len(keep) / 1e6
    profiled_sum = sum(o.time_s for o in ops) + overhead

    per_bucket = dict.fromkeys(optypes.BUCKETS, 0.0)
    counts = dict.fromkeys(optypes.BUCKETS, 0)
    for o in ops:
        per_bucket[o.bucket] += o.time_s
        counts[o.bucket] += 1
    per_bucket[optypes.OVERHEAD] = overhead
    pct = optypes.percentages(per_bucket)
    bucket_list = [BucketTime(key=k, label=optypes.LABELS[k], group=optypes.GROUPS[k], time_s=per_bucket[k],
                              ops=counts[k], percent=pct[k]) for k in optypes.BUCKETS]

    layers = _layers(ops, rows, types, machine, profiled_sum)
    unsupported = getattr(cost, "unsupported_ops", None)
    if unsupported:
        listed = ", ".join(f"{k} x{v}" for k, v in sorted(unsupported.items()))
        notes.append(f"FLOPs/MAC are incomplete: ops without a cost rule are not counted ({listed})")
    if unmatched:
        notes.append(f"{unmatched} cost row(s) could not be matched to a measured op; they count in their "
                     "layer's FLOPs/MAC only")
    if kernel_times:
        notes.append("CUDA: op time = duration of its kernels; Other (framework) = forward wall time minus "
                     "kernel time minus the profiler's CPU-side overhead (exact when launch-bound)")
    if machine is not None and dt != torch.float32:
        notes.append(f"the ceilings are fp32 rates: % compute and the bound verdicts of this {dtype_name(dt)} "
                     "run compare it with fp32 arithmetic")
    if machine is not None and any((r.compute_pct or 0.0) > 110.0 for r in layers):
        notes.append("a layer exceeds the compute ceiling: the cached ceilings are stale or were measured on a "
                     "busy machine; remeasure with `shufflenet bench --machine` (bound verdicts may be off)")
    if total is not None and total.noisy:
        notes.append("the independent latency is noisy (IQR > 10% of the median): rerun on an idle machine")
    mflops = cost.flops / size[0] / 1e6
    env = capture_environment(device=dev, threads=nthreads, dtype=dt, batch=size[0], input_size=size)
    return ProfileReport(
        model=label, input_size=size, device=str(dev), dtype=dtype_name(dt), threads=nthreads, repeats=repeats,
        warmup=warmup, ops=ops, layers=layers, buckets=bucket_list, overhead_time_s=overhead,
        profiled_sum_s=profiled_sum, profiled_wall_s=sum(fw.walls[j] for j in keep) / len(keep) / 1e6,
        overhead_per_event_s=eps_s, events_per_forward=events, total=total, flops=cost.flops, mac=cost.mac,
        mac_bytes=cost.mac_bytes, ceilings=machine, ceilings_source=source,
        paper=optypes.fig2_reference(label, mflops if size[2:] == (224, 224) else math.inf),
        unmatched_cost_rows=unmatched, env=env, notes=notes,
        forward_totals_s=[t / 1e6 for t in forward_totals], kept_forwards=keep,
    )


def _corrected(fw: _Forwards, j: int, split: Sequence[bool], eps_us: float) -> list[float]:
    """Forward ``j``'s op times (us) less the recording of their nested events (``eps_us`` each), with a
    nested layout copy as a column of its own where ``split``.

    An op's interval holds the recording of its k nested events; a nested copy's interval holds that of
    its own kc - 1 descendants, and its own recording lies in the op's remaining time.
    """
    out = []
    for i, (t, k) in enumerate(zip(fw.times[j], fw.nested[j], strict=True)):
        if not split[i]:
            out.append(max(t - k * eps_us, 0.0))
            continue
        c, kc = fw.copy_times[j][i], fw.copy_events[j][i]
        out.append(max(t - c - (k - kc + 1) * eps_us, 0.0))
        out.append(max(c - (kc - 1) * eps_us, 0.0))
    return out


def _central_forwards(totals: Sequence[float]) -> list[int]:
    """Indices of the forwards whose total lies in the middle half (the interquartile range) of all of
    them: averaging over these is robust to a forward interrupted by another process, like a median, while
    every op's time still comes from the same forwards (so the ops add up to that forward total)."""
    order = sorted(range(len(totals)), key=lambda j: totals[j])
    n = len(order)
    lo, hi = n // 4, n - n // 4
    return sorted(order[lo:hi]) or order


def _mean(values: Sequence[Sequence[float]], keep: Sequence[int], i: int) -> float:
    return sum(values[j][i] for j in keep) / len(keep)


def _layers(ops: Sequence[OpTime], rows: Sequence[Any], types: dict[str, str],
            machine: MachineCeilings | None, total_s: float) -> list[LayerTime]:
    """Per module path: measured ops' time, and the FLOPs/MAC of *all* its cost rows (matched or not)."""
    layers: dict[str, LayerTime] = {}
    by_bucket: dict[str, dict[str, float]] = {}

    def get(name: str) -> LayerTime:
        if name not in layers:
            layers[name] = LayerTime(name=name, module_type=types.get(name, ""), ops=0, time_s=0.0, flops=0,
                                     mac=0, mac_bytes=0, bucket=optypes.OTHER)
            by_bucket[name] = {}
        return layers[name]

    for o in ops:
        lt = get(o.module)
        lt.ops += 1
        lt.time_s += o.time_s
        by_bucket[o.module][o.bucket] = by_bucket[o.module].get(o.bucket, 0.0) + o.time_s
    for r in rows:
        lt = get(r.name)
        lt.flops += r.flops
        lt.mac += r.mac
        lt.mac_bytes += r.mac_bytes
        if not lt.module_type:
            lt.module_type = r.module_type
    for name, lt in layers.items():
        if by_bucket[name]:
            lt.bucket = max(by_bucket[name].items(), key=lambda kv: kv[1])[0]
        lt.percent = 100.0 * lt.time_s / total_s if total_s > 0 else 0.0
        lt.bound = roofline_bound(lt.flops, lt.mac_bytes, machine)
        if machine is not None and lt.time_s > 0:
            lt.compute_pct = 100.0 * machine.compute_fraction(lt.gmadds_per_s)
            lt.bandwidth_pct = 100.0 * machine.bandwidth_fraction(lt.mac_gb_per_s)
    return list(layers.values())
