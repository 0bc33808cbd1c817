"""The result of :func:`shufflenet.measure.profile.profile`: time per op, per layer and per Fig. 2 bucket,
next to FLOPs and MAC, and how it renders (tables, the breakdown chart, the conventions).

Units: FLOPs are multiply-adds (the paper's footnote 1) and rates ``GMAdd/s`` (as ``shufflenet bench``);
MAC is the paper's memory access cost (Sec. 2, G1), per second as ``MAC GB/s``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from shufflenet.errors import UserInputError
from shufflenet.measure import optypes
from shufflenet.measure.machine import MachineCeilings
from shufflenet.measure.plots import breakdown_chart
from shufflenet.measure.roofline import intensity, ridge_point
from shufflenet.measure.timing import Measurement
from shufflenet.render import render
from shufflenet.result import FLOPS, GMADDS, MAC, MAC_RATE, Figure, ResultBase, Table

COVERAGE_TOLERANCE = 0.05  # the buckets must sum to the independently measured latency within 5%
GROUPINGS = ("op-type", "layer", "op")

CONVENTIONS = [
    FLOPS, GMADDS, MAC, MAC_RATE,
    "time per op = mean over the central half of the uninterrupted profiled forwards, profiler overhead "
    "(eps per recorded event, measured on a separate workload) subtracted",
    "Other (framework) = time between ops inside the profiled forward (Python, module calls, dispatch)",
    "coverage = sum of buckets / latency measured by measure() without the profiler",
    "bound = roofline: multiply-adds per MAC byte vs the ridge point (compute ceiling GMAdd/s, the best "
    "measured fp32 kernel, / copy GB/s)",
    "bandwidth % is against the copy ceiling, which streams tensors far larger than the caches: a layer whose "
    "tensors stay in cache (batch 1) can exceed 100%",
]

# Label and unit of each row key of the tables (see ProfileReport.rows).
_LABELS = {
    "time_ms": ("time", "ms"), "percent": ("share", "%"), "mflops": ("MFLOPs", ""), "mac_kb": ("MAC", "KB"),
    "gmadds_per_s": ("GMAdd/s", ""), "mac_gb_per_s": ("MAC GB/s", ""), "madds_per_byte": ("multiply-adds/byte", ""),
    "compute_pct": ("compute", "%"), "bandwidth_pct": ("copy BW", "%"), "cost_ops": ("cost ops", ""),
    "this_machine_pct": ("this machine", "%"), "paper_gpu_pct": ("paper GPU", "%"),
    "paper_arm_pct": ("paper ARM", "%"),
}


# Display formats: the precision each table's rows are rounded to (so the text shows the CSV's numbers).
_FMTS = {
    "op-type": {"time_ms": ".3f", "percent": ".1f"},
    "layer": {"time_ms": ".4f", "percent": ".2f", "mflops": ".3f", "mac_kb": ".1f", "gmadds_per_s": ".2f",
              "mac_gb_per_s": ".2f", "madds_per_byte": ".2f", "compute_pct": ".1f", "bandwidth_pct": ".1f"},
    "op": {"time_ms": ".4f", "percent": ".2f", "mflops": ".3f", "mac_kb": ".1f"},
    "fig2": {"this_machine_pct": ".1f", "paper_gpu_pct": ".1f", "paper_arm_pct": ".1f"},
}


def _table(title: str, rows: list[dict[str, Any]], key: str, notes: list[str] | None = None) -> Table:
    return Table.from_rows(title, rows, units={k: u for k, (_, u) in _LABELS.items()},
                           labels={k: lab for k, (lab, _) in _LABELS.items()}, fmts=_FMTS[key], notes=notes or [],
                           key=key)


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
        return intensity(self.flops, self.mac_bytes)

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


@dataclass
class ProfileReport(ResultBase):
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
    memory_format: str = "contiguous"  # of weights and input in every pass: contiguous (NCHW) or channels_last

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
            "dtype": self.dtype, "memory_format": self.memory_format, "threads": self.threads,
            "repeats": self.repeats, "warmup": self.warmup, "conventions": self.conventions(), "env": self.env,
            "flops": self.flops, "mac": self.mac, "mac_bytes": self.mac_bytes,
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
        raise UserInputError(f"unknown grouping {by!r}: choose {', '.join(GROUPINGS)}")

    def title(self) -> str:
        e = self.env
        where = e.get("gpu_name") or e.get("cpu_model") or self.device
        return (f"{self.model}  input {'x'.join(map(str, self.input_size))}  {self.device} ({where}), "
                f"{self.threads} thread(s), {self.dtype}, {self.layout()}, "
                f"torch {e.get('torch', torch.__version__)}")

    def layout(self) -> str:
        """The memory format in words: ``NCHW (contiguous)`` or ``NHWC (channels_last)``."""
        return "NHWC (channels_last)" if self.memory_format == "channels_last" else "NCHW (contiguous)"

    def cost_line(self) -> str:
        return (f"FLOPs {self.flops / 1e6:.1f} M multiply-adds, MAC {self.mac / 1e6:.2f} M elements "
                f"({self.mac_bytes / 1e6:.2f} MB)")

    def header(self) -> list[str]:
        return [self.title(), self.cost_line(), *(f"  {c}" for c in self.conventions())]

    def summary_lines(self) -> list[str]:
        """The sum of the buckets, the independent latency and coverage, and the ceilings (one line each)."""
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
        return lines

    def footer(self) -> list[str]:
        return self.summary_lines() + [f"note: {n}" for n in self.notes]

    def comparison_title(self) -> str:
        title = "Fig. 2 categories (Pooling and FC folded into Other)"
        if self.paper:
            title += ": this machine vs the paper's " + " and ".join(p.platform for p in self.paper.values())
        return title

    # -- the result contract -----------------------------------------------------------------------

    def conventions(self) -> list[str]:
        return list(CONVENTIONS)

    def grouping_tables(self, by: str = "op-type", top: int | None = None) -> list[Table]:
        """The table of one grouping (``by``: op-type, layer or op; ``top``: the slowest K rows), the
        summary and notes under it; after the op types, the Fig. 2 comparison."""
        rows = self.rows(by, top)
        titles = {"op-type": "where the time goes, by Fig. 2 op type", "layer": "time per layer (module path)",
                  "op": "time per aten op"}
        notes = [self.cost_line(), *self.summary_lines(), *self.notes]
        out = [_table(f"{self.title()}\n{titles[by]}", rows, by, notes)]
        if by == "op-type":
            out.append(_table(self.comparison_title(), self.comparison_rows(), "fig2"))
        return out

    def tables(self) -> list[Table]:
        """Fig. 2 buckets (the CSV), the Fig. 2 comparison, then every layer and every op."""
        return [*self.grouping_tables("op-type"), *self.grouping_tables("layer"), *self.grouping_tables("op")]

    def figures(self) -> list[Figure]:
        return [breakdown_chart(self)]

    def view(self, by: str = "op-type", top: int | None = None) -> ProfileView:
        """This report as the CLI shows it: one grouping (``--by``), its ``top`` rows (``--top``)."""
        self.rows(by, top)  # an unknown grouping fails here
        return ProfileView(self, by, top)

    def to_table(self, by: str = "op-type", top: int | None = None) -> str:
        return render(self.view(by, top), "table")

    def summary(self) -> str:
        pct = self.paper_percent()
        cov = f"{self.coverage:.3f}" if self.coverage is not None else "n/a"
        return (f"{self.model}: " + ", ".join(f"{k} {v:.1f}%" for k, v in pct.items())
                + f"; coverage {cov}")


class ProfileView(ResultBase):
    """A :class:`ProfileReport` showing one grouping: its tables are :meth:`ProfileReport.grouping_tables`,
    everything else (``to_dict``, figures, conventions) is the report's."""

    def __init__(self, report: ProfileReport, by: str = "op-type", top: int | None = None) -> None:
        self.report, self.by, self.top = report, by, top

    def to_dict(self) -> dict[str, Any]:
        return self.report.to_dict()

    def tables(self) -> list[Table]:
        return self.report.grouping_tables(self.by, self.top)

    def figures(self) -> list[Figure]:
        return self.report.figures()

    def conventions(self) -> list[str]:
        return self.report.conventions()
