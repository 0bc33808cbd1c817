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

    def by_kind(self) -> list[dict[str, Any]]:
        """Per op type: calls, predicted time and share, FLOPs and bytes, slowest first."""
        total = self.seconds
        groups: dict[str, list[KernelPrediction]] = defaultdict(list)
        for k in self.kernels:
            groups[k.kernel.kind].append(k)
        rows = [{"kind": kind, "calls": len(ks), "us": sum(k.seconds for k in ks) * 1e6,
                 "share_pct": 100 * sum(k.seconds for k in ks) / total if total else 0.0,
                 "mflops": sum(k.kernel.flops for k in ks) / 1e6, "kb": sum(k.kernel.bytes for k in ks) / 1e3}
                for kind, ks in groups.items()]
        rows.append({"kind": "(module calls)", "calls": self.module_calls, "us": self.module_overhead_s * 1e6,
                     "share_pct": 100 * self.module_overhead_s / total if total else 0.0, "mflops": 0.0, "kb": 0.0})
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
        head = [{"model": self.model, "input": "x".join(map(str, self.input_size)), "threads": self.threads,
                 "predicted_ms": self.seconds * 1e3, "mflops": self.flops / 1e6, "kernels": len(self.kernels),
                 "calibration": self.calibration_mode}]
        return [
            Table.from_rows("Predicted latency", head, fmts={"predicted_ms": ".3f", "mflops": ".1f"},
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
        return ["predicted, not timed: the sum of each kernel's model (calibrated on timed kernels of this "
                "op type) plus the Python overhead of every module call",
                "FLOPs = multiply-adds (the paper's convention); MAC in fp32 bytes"]


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
                  differences: Sequence[str] = ()) -> LatencyPrediction:
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
                             cal.mode, warnings)


def predict_latency(model: nn.Module, input_size: Sequence[int], calibration: Calibration, *,
                    name: str | None = None, check_platform: bool = True) -> LatencyPrediction:
    """Predict ``model``'s eager fp32 latency on ``input_size`` (NCHW, batch first) at the calibration's
    thread count, without timing it.

    ``check_platform`` compares the calibration's environment with this process's and puts what differs
    (CPU, threads, torch version) in the prediction's warnings.
    """
    trace = trace_kernels(model, input_size)
    differences = calibration.differences() if check_platform else []
    return predict_trace(trace, calibration, name=name or type(model).__name__, differences=differences)
