"""Predict a model's latency on a calibrated machine without timing it.

The prediction is the sum over the forward pass's kernels (:func:`~shufflenet.audit.latency.kernels.trace_kernels`)
of each kernel's predicted time (its op type's model, :mod:`~shufflenet.audit.latency.fit`), plus the Python
overhead of every module call. That sum is the direct metric the paper asks for (Sec. 1: speed on the
target platform), built from the terms it names: FLOPs, memory access cost, and the per-operator costs of
fragmentation and element-wise ops (Sec. 2, G3 and G4).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from shufflenet.audit.latency.calibration import Calibration
from shufflenet.audit.latency.kernels import Kernel, KernelTrace, trace_kernels
from shufflenet.measure.roofline import NO_MEMORY, roofline_bound
from shufflenet.measure.timing import median
from shufflenet.result import Figure, ResultBase, Table

FALLBACK_KIND = "copy"  # an op type the calibration did not time is priced as a copy of its tensors


@dataclass(slots=True)
class KernelPrediction:
    """One kernel's predicted time (``seconds`` includes its module wrapper's overhead, ``wrapper_s``)."""

    kernel: Kernel
    seconds: float
    wrapper_s: float = 0.0
    calibrated: bool = True

    def row(self, total: float) -> dict[str, Any]:
        k = self.kernel
        return {"index": k.index, "module": k.module, "op": k.op, "kind": k.kind, "us": self.seconds * 1e6,
                "share_pct": 100 * self.seconds / total if total else 0.0, "mflops": k.flops / 1e6,
                "kb": k.bytes / 1e3, "calibrated": self.calibrated}


@dataclass
class LatencyPrediction(ResultBase):
    """A model's predicted latency with its per-kernel, per-op-type and per-module breakdown."""

    model: str
    input_size: tuple[int, ...]
    threads: int
    kernels: list[KernelPrediction]
    module_calls: int
    module_overhead_s: float
    calibration: str
    calibration_mode: str
    warnings: list[str] = field(default_factory=list)
    ceilings: Any = None  # this machine's MachineCeilings at the calibration's threads, for the roofline columns

    @property
    def seconds(self) -> float:
        """The predicted latency of one forward pass (seconds)."""
        return sum(k.seconds for k in self.kernels) + self.module_overhead_s

    @property
    def flops(self) -> int:
        return sum(k.kernel.flops for k in self.kernels)

    @property
    def mac_bytes(self) -> int:
        return sum(k.kernel.bytes for k in self.kernels)

    def floor_s(self, kernels: Sequence[KernelPrediction] | None = None) -> float | None:
        """The roofline floor of ``kernels`` (default: all): each kernel at the machine's compute ceiling or
        copy bandwidth, whichever binds (:mod:`shufflenet.measure.roofline`); ``None`` without ceilings."""
        c = self.ceilings
        if c is None:
            return None
        return sum(max(k.kernel.flops / (c.matmul_gmadds * 1e9), k.kernel.bytes / (c.copy_gb_per_s * 1e9))
                   for k in (self.kernels if kernels is None else kernels))

    def by_kind(self) -> list[dict[str, Any]]:
        """Per op type: calls, predicted time and share, FLOPs and bytes, slowest first; with the machine's
        ceilings also the roofline bound and floor, and how many times the floor the prediction is."""
        total = self.seconds
        groups: dict[str, list[KernelPrediction]] = defaultdict(list)
        for k in self.kernels:
            groups[k.kernel.kind].append(k)
        rows = []
        for kind, ks in groups.items():
            t = sum(k.seconds for k in ks)
            flops, nbytes = sum(k.kernel.flops for k in ks), sum(k.kernel.bytes for k in ks)
            row: dict[str, Any] = {"kind": kind, "calls": len(ks), "us": t * 1e6,
                                   "share_pct": 100 * t / total if total else 0.0, "mflops": flops / 1e6,
                                   "kb": nbytes / 1e3}
            floor = self.floor_s(ks)
            if floor is not None:
                row.update(bound=roofline_bound(flops, nbytes, self.ceilings), floor_us=floor * 1e6,
                           x_floor=t / floor if floor > 0 else None)
            rows.append(row)
        overhead: dict[str, Any] = {"kind": "(module calls)", "calls": self.module_calls,
                                    "us": self.module_overhead_s * 1e6,
                                    "share_pct": 100 * self.module_overhead_s / total if total else 0.0,
                                    "mflops": 0.0, "kb": 0.0}
        if self.ceilings is not None:
            overhead.update(bound=NO_MEMORY, floor_us=0.0, x_floor=None)
        rows.append(overhead)
        return sorted(rows, key=lambda r: -r["us"])

    def by_module(self) -> list[dict[str, Any]]:
        """Per module path (its kernels summed), in execution order."""
        total = self.seconds
        groups: dict[str, list[KernelPrediction]] = {}
        for k in self.kernels:
            groups.setdefault(k.kernel.module, []).append(k)
        return [{"module": name, "ops": "+".join(dict.fromkeys(k.kernel.op for k in ks)), "calls": len(ks),
                 "us": sum(k.seconds for k in ks) * 1e6,
                 "share_pct": 100 * sum(k.seconds for k in ks) / total if total else 0.0,
                 "mflops": sum(k.kernel.flops for k in ks) / 1e6} for name, ks in groups.items()]

    def summary(self) -> str:
        return (f"{self.model} {'x'.join(map(str, self.input_size))}: predicted {self.seconds * 1e3:.3f} ms "
                f"at {self.threads} thread(s) ({len(self.kernels)} kernels, {self.flops / 1e6:.1f} MFLOPs)")

    def to_dict(self) -> dict[str, Any]:
        total = self.seconds
        return {"model": self.model, "input_size": list(self.input_size), "threads": self.threads,
                "predicted_s": total, "predicted_ms": total * 1e3, "flops": self.flops,
                "mac_bytes": self.mac_bytes, "module_calls": self.module_calls,
                "module_overhead_s": self.module_overhead_s, "calibration": self.calibration,
                "calibration_mode": self.calibration_mode, "warnings": list(self.warnings),
                "by_kind": self.by_kind(), "by_module": self.by_module(),
                "kernels": [k.row(total) for k in self.kernels]}

    def tables(self) -> list[Table]:
        fm = {"us": ".1f", "share_pct": ".1f", "mflops": ".2f", "kb": ".1f"}
        labels = {"us": "predicted (us)", "share_pct": "share (%)", "mflops": "MFLOPs", "kb": "MAC (kB)"}
        head: list[dict[str, Any]] = [{
            "model": self.model, "input": "x".join(map(str, self.input_size)), "threads": self.threads,
            "predicted_ms": self.seconds * 1e3, "mflops": self.flops / 1e6, "kernels": len(self.kernels),
            "calibration": self.calibration_mode}]
        floor = self.floor_s()
        if floor:
            head[0].update(floor_ms=floor * 1e3, x_floor=self.seconds / floor)
            fm.update(floor_us=".1f", x_floor=".1f")
            labels.update(floor_us="roofline floor (us)", x_floor="x floor")
        return [
            Table.from_rows("Predicted latency", head, fmts={"predicted_ms": ".3f", "mflops": ".1f",
                                                             "floor_ms": ".3f", "x_floor": ".1f"},
                            labels={"floor_ms": "roofline floor (ms)", "x_floor": "x floor"},
                            notes=self.warnings, key="summary"),
            Table.from_rows("Predicted time per op type", self.by_kind(), fmts=fm, labels=labels, key="kinds"),
            Table.from_rows("Predicted time per module", self.by_module(), fmts=fm, labels=labels, key="modules"),
        ]

    def figures(self) -> list[Figure]:
        rows = [r for r in self.by_kind() if r["us"] > 0]

        def draw(fig: Any) -> None:
            ax = fig.add_subplot(111)
            names = [r["kind"] for r in rows][::-1]
            ax.barh(names, [r["us"] / 1e3 for r in rows][::-1], color="#4c72b0")
            for i, r in enumerate(rows[::-1]):
                ax.text(r["us"] / 1e3, i, f" {r['share_pct']:.0f}%", va="center", fontsize=8)
            ax.set_xlabel("predicted time (ms)")
            ax.set_title(f"{self.model}: {self.seconds * 1e3:.2f} ms predicted, {self.threads} thread(s)")
            fig.tight_layout()

        return [Figure(f"Predicted time per op type: {self.model}", draw, key="kinds",
                       size=(7.0, max(2.5, 0.3 * len(rows) + 1)))]

    def conventions(self) -> list[str]:
        lines = ["predicted, not timed: the sum of each kernel's model (calibrated on timed kernels of this "
                 "op type) plus the Python overhead of every module call",
                 "FLOPs = multiply-adds (the paper's convention); MAC in fp32 bytes"]
        if self.ceilings is not None:
            lines.append(f"roofline floor: each kernel at this machine's {self.ceilings.matmul_gmadds:.0f} G "
                         f"multiply-adds/s or {self.ceilings.copy_gb_per_s:.0f} GB/s, whichever binds "
                         "(shufflenet bench --machine)")
        return lines


def predict_kernel(cal: Calibration, k: Kernel) -> KernelPrediction:
    """One kernel's predicted time from the calibration (falls back to a copy model for untimed op types)."""
    wrapper = cal.wrapper_s.get(k.wrapper, 0.0) if k.wrapper else 0.0
    if k.kind == "view":
        views = cal.view_s
        return KernelPrediction(k, views.get(k.op, views["*"]) + wrapper, wrapper, k.op in views)
    model = cal.models.get(k.kind)
    if model is not None:
        return KernelPrediction(k, model.predict(k.features) + wrapper, wrapper)
    fallback = cal.models.get(FALLBACK_KIND)
    if fallback is None:  # a calibration too small to fit a copy model: the median timed kernel of this op
        same = [s.seconds for s in cal.samples if s.kind == k.kind] or [s.seconds for s in cal.samples]
        return KernelPrediction(k, median(same) + wrapper, wrapper, calibrated=False)
    f = {"in_numel": k.features.get("in_numel", 0.0), "out_numel": k.features.get("out_numel", 0.0)}
    return KernelPrediction(k, fallback.predict(f) + wrapper, wrapper, calibrated=False)


def predict_trace(trace: KernelTrace, cal: Calibration, *, name: str = "model",
                  differences: Sequence[str] = (), ceilings: Any = None) -> LatencyPrediction:
    """The prediction of an already traced forward pass."""
    preds = [predict_kernel(cal, k) for k in trace.kernels]
    warnings = []
    if differences:
        warnings.append("calibrated on another platform (" + "; ".join(differences) + "): kernel speeds may differ")
    missing = sorted({p.kernel.op for p in preds if not p.calibrated})
    if missing:
        warnings.append("op types without a calibrated model (not timed, or too few kernels), priced as "
                        "copies of their tensors: " + ", ".join(missing))
    return LatencyPrediction(name, trace.input_size, cal.threads, preds, trace.module_calls,
                             trace.bare_module_calls * cal.module_call_s, cal.path or "(in memory)",
                             cal.mode, warnings, ceilings)


def cached_ceilings(threads: int) -> Any:
    """This machine's ceilings at ``threads`` from the ``shufflenet bench --machine`` cache (never measured
    here: a prediction times nothing), or ``None``."""
    from shufflenet.measure import load_machine

    return load_machine("cpu", threads)


def predict_latency(model: nn.Module, input_size: Sequence[int], calibration: Calibration, *,
                    name: str | None = None, check_platform: bool = True, ceilings: Any = "cached"
                    ) -> LatencyPrediction:
    """Predict ``model``'s eager fp32 latency on ``input_size`` (NCHW, batch first) at the calibration's
    thread count, without timing it.

    ``check_platform`` compares the calibration's environment with this process's and puts what differs
    (CPU, threads, torch version) in the prediction's warnings. ``ceilings`` (a ``MachineCeilings``,
    ``None``, or ``"cached"``: the cache of ``shufflenet bench --machine`` if any) adds the roofline bound
    and floor per op type.
    """
    trace = trace_kernels(model, input_size)
    differences = calibration.differences() if check_platform else []
    if isinstance(ceilings, str):
        ceilings = cached_ceilings(calibration.threads)
    return predict_trace(trace, calibration, name=name or type(model).__name__, differences=differences,
                         ceilings=ceilings)
