"""Benchmark rows: one per model x batch, latency and throughput next to FLOPs and MAC from the cost engine.

Units, stated in every table header: FLOPs are **multiply-adds** (the paper's convention, V2 footnote 1),
so the achieved rate is reported as ``GMAdd/s`` = 10^9 multiply-adds per second (half the GFLOP/s of the
2-FLOPs-per-multiply-add convention). The name avoids "GMAC/s" on purpose: in this package MAC means the
paper's *memory access cost* (elements read + written, Sec. 2), reported as ``MMAC`` and, per second, as
``GB/s`` of that memory traffic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from shufflenet.environment import capture_environment
from shufflenet.errors import UserInputError
from shufflenet.measure.machine import MachineCeilings
from shufflenet.measure.options import (
    cannot_run,
    check_batches,
    check_image_size,
    check_runtime,
    resolve_device,
    resolve_dtype,
    resolve_threads,
)
from shufflenet.measure.timing import (
    CLOCK,
    DEFAULT_MIN_RUN_TIME,
    DEFAULT_WARMUP,
    LATENCY,
    Measurement,
    measure,
    resolve_clock,
)
from shufflenet.render import render
from shufflenet.result import FLOPS, GMADDS, MAC, MAC_RATE, ResultBase, Table

PER_BATCH = ("FLOPs and MAC are per batch: FLOPs = batch x those at batch 1; MAC counted at that batch "
             "(the weights are read once)")
CONVENTIONS = [FLOPS, PER_BATCH, GMADDS, MAC, MAC_RATE, LATENCY, CLOCK]
QUICK_MIN_RUN_TIME = 0.5
QUICK_WARMUP = 3

Progress = Callable[[Iterable[Any], str, int], Iterable[Any]]


def default_batches(device: str | torch.device) -> list[int]:
    """The paper's settings (Sec. 2, Table 8): batch 1 on the CPU/ARM side, batch 8 on the GPU."""
    return [8] if torch.device(device).type == "cuda" else [1]


@dataclass(frozen=True)
class BenchOptions:
    """How to time: the keyword arguments of :func:`shufflenet.measure.measure` (``quick`` shortens them)."""

    device: str = "cpu"
    threads: int | None = None
    dtype: str = "fp32"
    memory_format: str = "contiguous"
    compile: bool = False
    cuda_graphs: bool = False
    cudnn_benchmark: bool = True
    min_run_time: float = DEFAULT_MIN_RUN_TIME
    warmup: int = DEFAULT_WARMUP
    clock: str = "auto"
    wait_idle: float = 0.0
    runtime: str = "torch"
    quick: bool = False

    def __post_init__(self) -> None:
        dev = resolve_device(self.device)  # validate early: one clear error before any model is built
        check_runtime(self.runtime)
        resolve_dtype(self.dtype)
        resolve_clock(self.clock, dev, resolve_threads(self.threads, dev))
        if self.cuda_graphs and dev.type != "cuda":
            raise UserInputError("--cuda-graphs needs --device cuda")

    @classmethod
    def make_quick(cls, **kwargs: Any) -> BenchOptions:
        """Shorter timing for smoke runs (``--quick``): fewer warm-up passes and less time per row."""
        kwargs.setdefault("min_run_time", QUICK_MIN_RUN_TIME)
        kwargs.setdefault("warmup", QUICK_WARMUP)
        return cls(quick=True, **kwargs)

    def measure_kwargs(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("quick")
        return d

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelSpec:
    """A model to benchmark: a label, a builder, and the per-image input (C, H, W)."""

    name: str
    build: Callable[[], nn.Module]
    image_size: tuple[int, int, int] = (3, 224, 224)
    family: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    batches: tuple[int, ...] | None = None  # overrides run_bench's batch list for this spec


def registry_spec(name: str, image_size: int | Sequence[int] | None = None, **kwargs: Any) -> ModelSpec:
    """A :class:`ModelSpec` for a registry name (``torchvision:NAME`` included); unknown names raise now."""
    from shufflenet.models import create_model, get_entry

    entry = get_entry(name)  # unknown names (torchvision:/timm: ones too) fail here, before any timing
    if image_size is None:
        image_size = entry.input_size
    size = check_image_size((3, image_size, image_size) if isinstance(image_size, int) else image_size)
    return ModelSpec(name=name, build=lambda: create_model(name, **kwargs),
                     image_size=size, info=dict(kwargs))  # type: ignore[arg-type]


@dataclass
class BenchRow:
    """One model at one batch size: cost (per batch) and the :class:`Measurement`."""

    model: str
    family: str
    flops: int
    mac: int
    mac_bytes: int
    measurement: Measurement
    machine: MachineCeilings | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def batch(self) -> int:
        return self.measurement.batch

    @property
    def input_size(self) -> tuple[int, int, int, int]:
        return self.measurement.input_size

    @property
    def latency_s(self) -> float:
        return self.measurement.median_s

    @property
    def gmadds_per_s(self) -> float:
        return self.flops / self.latency_s / 1e9

    @property
    def mac_gb_per_s(self) -> float:
        return self.mac_bytes / self.latency_s / 1e9

    def row(self) -> dict[str, Any]:
        """The flat, rounded row of the table/CSV output (keys as in :meth:`to_dict`)."""
        m = self.measurement
        out: dict[str, Any] = {
            "model": self.model, "input": "x".join(map(str, self.input_size[1:])), "batch": self.batch,
            "mflops": round(self.flops / 1e6, 1), "mmac": round(self.mac / 1e6, 2),
            "latency_ms": round(m.median_s * 1e3, 3), "iqr_ms": round(m.iqr_s * 1e3, 3),
            "images_per_s": round(m.images_per_s, 1), "batches_per_s": round(m.batches_per_s, 1),
            "gmadds_per_s": round(self.gmadds_per_s, 2), "mac_gb_per_s": round(self.mac_gb_per_s, 2),
        }
        if self.machine is not None:
            # The ceiling is an fp32 rate: a bf16/fp16 run's fraction of it would mean nothing.
            out["compute_pct"] = (round(100 * self.machine.compute_fraction(self.gmadds_per_s), 1)
                                  if m.dtype == "fp32" else None)
            out["bandwidth_pct"] = round(100 * self.machine.bandwidth_fraction(self.mac_gb_per_s), 1)
        out["noisy"] = m.noisy
        return out

    def to_dict(self) -> dict[str, Any]:
        d = self.row()
        d.update(family=self.family, flops=self.flops, mac=self.mac, mac_bytes=self.mac_bytes,
                 input_size=list(self.input_size), info=self.info)
        meas = self.measurement.to_dict()
        meas.pop("env")  # recorded once at the top of the result
        meas.pop("times_s")
        d["measurement"] = meas
        return d


# The columns of the table (keys of BenchRow.row()): label, unit and the precision the row rounds to.
COLUMNS = {
    "mflops": ("MFLOPs", "", ".1f"), "mmac": ("MMAC", "", ".2f"), "latency_ms": ("latency", "ms", ".3f"),
    "iqr_ms": ("IQR", "ms", ".3f"), "images_per_s": ("images/s", "", ".1f"), "batches_per_s": ("batches/s", "", ".1f"),
    "gmadds_per_s": ("GMAdd/s", "", ".2f"), "mac_gb_per_s": ("MAC GB/s", "", ".2f"),
    "compute_pct": ("compute", "%", ".1f"), "bandwidth_pct": ("copy BW", "%", ".1f"),
}
TABLE_HEADERS = {
    "model": "model", "input": "input", "batch": "batch", "mflops": "MFLOPs", "mmac": "MMAC",
    "latency_ms": "latency ms", "iqr_ms": "IQR ms", "images_per_s": "images/s", "batches_per_s": "batches/s",
    "gmadds_per_s": "GMAdd/s", "mac_gb_per_s": "MAC GB/s", "compute_pct": "% compute",
    "bandwidth_pct": "% copy BW", "noisy": "noisy",
}


@dataclass
class BenchResult(ResultBase):
    """Rows of a ``shufflenet bench`` run, its options, environment and (if known) the machine ceilings."""

    rows: list[BenchRow]
    options: BenchOptions
    env: dict[str, Any]
    machine: MachineCeilings | None = None

    def conventions(self) -> list[str]:
        return list(CONVENTIONS)

    def to_dict(self) -> dict[str, Any]:
        return {"conventions": self.conventions(), "options": self.options.to_dict(), "env": self.env,
                "machine": self.machine.to_dict() if self.machine else None,
                "rows": [r.to_dict() for r in self.rows]}

    def title(self) -> str:
        e = self.env
        where = e.get("gpu_name") or e.get("cpu_model")
        runtime = self.options.runtime
        return (f"shufflenet bench on {where}, {e.get('device')}"
                + (f" in {runtime}" if runtime != "torch" else "")
                + f", {e.get('threads')} thread(s), "
                f"{e.get('dtype')}, {e.get('memory_format')}, torch {e.get('torch')}"
                + (" (quick)" if self.options.quick else ""))

    def tables(self) -> list[Table]:
        """One table: the rows of the CSV output (:meth:`csv_rows`), with the footer's lines as notes."""
        return [Table.from_rows(self.title(), self.csv_rows(), units={k: c[1] for k, c in COLUMNS.items()},
                                labels={k: c[0] for k, c in COLUMNS.items()}, fmts={k: c[2] for k, c in COLUMNS.items()},
                                notes=self.notes(), key="bench")]

    def to_table(self) -> str:
        return render(self, "table")

    def notes(self) -> list[str]:
        """Ceilings, a noisy-run hint and the measurements' notes (the footer, without its prefixes)."""
        return self._status() + self._measurement_notes()

    def _status(self) -> list[str]:
        lines = []
        if self.machine is not None:
            m = self.machine
            lines.append(f"ceilings ({m.threads} thread(s)): {m.summary()}")
        if any(r.measurement.noisy for r in self.rows):
            lines.append("noisy rows: rerun on an idle machine (load average at start: "
                         f"{self.env.get('load_avg_1min')})")
        return lines

    def _measurement_notes(self) -> list[str]:
        return sorted({n for r in self.rows for n in r.measurement.notes})

    def table_rows(self) -> list[dict[str, Any]]:
        return [{TABLE_HEADERS.get(k, k): v for k, v in r.row().items()} for r in self.rows]

    def header(self) -> str:
        return self.title() + "\n" + "\n".join(f"  {c}" for c in self.conventions())

    def footer(self) -> list[str]:
        """Lines to print under the table: ceilings, a noisy-run hint, measurement notes."""
        return self._status() + [f"note: {n}" for n in self._measurement_notes()]

    def csv_rows(self) -> list[dict[str, Any]]:
        return [r.row() for r in self.rows]


def _cost(model: nn.Module, image_size: tuple[int, int, int],
          batches: Sequence[int]) -> tuple[dict[int, tuple[int, int]], dict[str, int]]:
    """Multiply-adds (batch 1 x batch) and MAC elements (counted at each batch: weights do not scale),
    and the ops without a cost rule (which those totals leave out)."""
    from shufflenet.cost import count_cost

    try:
        one = count_cost(model, (1, *image_size))
        out = {1: (one.flops, one.mac)}
        for b in batches:
            if b not in out:
                out[b] = (one.flops * b, count_cost(model, (b, *image_size)).mac)
    except RuntimeError as exc:  # e.g. wrong channel count or an input smaller than the strides
        raise cannot_run(exc, image_size) from exc
    return out, dict(one.unsupported_ops)


def bench_spec(spec: ModelSpec, batches: Sequence[int], options: BenchOptions,
               machine: MachineCeilings | None = None,
               on_batch: Callable[[str], None] | None = None) -> list[BenchRow]:
    """Build ``spec`` once, count its cost, and time it at every batch size."""
    batches = check_batches(batches)
    if on_batch is not None:
        on_batch(spec.name)
    model = spec.build()
    cost, unsupported = _cost(model, spec.image_size, batches)
    itemsize = torch.empty((), dtype=resolve_dtype(options.dtype)).element_size()
    rows = []
    for b in batches:
        if on_batch is not None:
            on_batch(f"{spec.name} batch {b}")
        m = measure(model, (b, *spec.image_size), name=spec.name, **options.measure_kwargs())
        if unsupported:
            listed = ", ".join(sorted(unsupported))
            m.notes.append(f"{spec.name}: FLOPs/MAC leave out ops without a cost rule ({listed}), so its "
                           "GMAdd/s and GB/s are too low")
        flops, mac = cost[b]
        rows.append(BenchRow(model=spec.name, family=spec.family, flops=flops, mac=mac,
                             mac_bytes=mac * itemsize, measurement=m, machine=machine, info=spec.info))
    return rows


def run_bench(specs: Sequence[ModelSpec], batches: Sequence[int], options: BenchOptions, *,
              machine: MachineCeilings | None = None, progress: Progress | None = None) -> BenchResult:
    """Benchmark every spec at every batch size. ``progress(iterable, desc, total)`` may wrap the jobs
    (e.g. a tqdm bar; the current model is shown with ``set_postfix_str`` when the bar has it)."""
    batches = check_batches(batches)
    dev = resolve_device(options.device)
    env = capture_environment(device=dev, threads=resolve_threads(options.threads, dev),
                              dtype=resolve_dtype(options.dtype), memory_format=options.memory_format)
    env["batch"] = sorted({b for s in specs for b in (s.batches or batches)})
    jobs: Iterable[Any] = range(len(specs))
    bar = progress(jobs, "bench", len(specs)) if progress is not None else jobs

    def show(text: str) -> None:
        if hasattr(bar, "set_postfix_str"):
            bar.set_postfix_str(text)

    rows: list[BenchRow] = []
    for i in bar:
        rows += bench_spec(specs[i], specs[i].batches or batches, options, machine, on_batch=show)
    return BenchResult(rows=rows, options=options, env=env, machine=machine)
