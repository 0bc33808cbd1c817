"""The ``resnets`` suite: FLOPs against speed for ResNets, ResNeXts and wide ResNets on this machine.

An observation that motivates the ShuffleNet V2 paper's direct metric: wide ResNets run much faster than
thin, deep ResNets of fewer FLOPs, and ResNeXt runs much slower than a wide ResNet. The paper's guidelines
explain both: ResNeXt's 32-group 3x3 convs raise the memory access per FLOP (Sec. 2, G2) and a thin, deep
network runs many small kernels one after another (Sec. 2, G3: fragmentation reduces parallelism).

Models: torchvision's ResNet-50/101/152, ResNeXt-50 (32x4d) / ResNeXt-101 (32x8d) and Wide ResNet-50-2 /
101-2 at 224x224, and the CIFAR-style WRN-28-10 vs ResNet-110 / ResNet-1001 at 32x32
(:mod:`shufflenet.models.cifar_resnet`). Each row gives the cost engine's FLOPs and MAC, the number of
convolutions the network runs in sequence, the measured time and the achieved GFLOP/s; the claims are
judged from pairs measured in the same run, with each side's spread as the noise margin.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from torch import nn

from shufflenet.measure.bench import BenchOptions, BenchRow, Progress, registry_spec, run_bench
from shufflenet.measure.machine import MachineCeilings
from shufflenet.measure.suite_common import SuiteResult, noisy_batches
from shufflenet.result import Figure

SUITE = "resnets"
# A difference counts when it is beyond both sides' relative spread and at least this large.
MIN_EFFECT = 0.10
# "Much slower per FLOP": the grouped network reaches at most this fraction of the wide one's GFLOP/s.
MUCH_SLOWER = 0.67


@dataclass(frozen=True)
class ResNetEntry:
    """One network of the suite: its family, label, registry name and input side."""

    family: str
    label: str
    name: str
    input: int


RESNET_ENTRIES: tuple[ResNetEntry, ...] = (
    ResNetEntry("ResNet", "ResNet-50", "torchvision:resnet50", 224),
    ResNetEntry("ResNet", "ResNet-101", "torchvision:resnet101", 224),
    ResNetEntry("ResNet", "ResNet-152", "torchvision:resnet152", 224),
    ResNetEntry("ResNeXt", "ResNeXt-50 32x4d", "torchvision:resnext50_32x4d", 224),
    ResNetEntry("ResNeXt", "ResNeXt-101 32x8d", "torchvision:resnext101_32x8d", 224),
    ResNetEntry("Wide ResNet", "WRN-50-2", "torchvision:wide_resnet50_2", 224),
    ResNetEntry("Wide ResNet", "WRN-101-2", "torchvision:wide_resnet101_2", 224),
    ResNetEntry("CIFAR ResNet", "ResNet-110", "resnet110_cifar", 32),
    ResNetEntry("CIFAR ResNet", "ResNet-1001", "resnet1001_cifar", 32),
    ResNetEntry("CIFAR Wide ResNet", "WRN-28-10", "wrn_28_10", 32),
)

# (wide, thin-deep) pairs for "a wide ResNet runs faster than a thin, deep one of fewer FLOPs", and
# (grouped, wide) pairs for "ResNeXt runs much slower than a wide ResNet".
# Each wide network has at least the FLOPs of its thin, deep partner (WRN-50-2 vs ResNet-152: 0.99x, equal).
WIDE_VS_DEEP = (("WRN-28-10", "ResNet-1001"), ("WRN-28-10", "ResNet-110"), ("WRN-50-2", "ResNet-152"),
                ("WRN-101-2", "ResNet-152"))
GROUPED_VS_WIDE = (("ResNeXt-50 32x4d", "WRN-50-2"), ("ResNeXt-101 32x8d", "WRN-101-2"))


def conv_count(model: nn.Module) -> int:
    """Convolutions the network runs (all in sequence or nearly so: a ResNet's only side branch is the
    occasional projection shortcut); the depth that G3 is about."""
    return sum(isinstance(m, nn.Conv2d) for m in model.modules())


@dataclass(frozen=True)
class PairReading:
    """One pair measured side by side: time ratio ``a / b`` and GFLOP/s ratio, with the noise margin."""

    a: str
    b: str
    flops_ratio: float
    time_ratio: float
    throughput_ratio: float
    margin: float

    @property
    def a_faster(self) -> bool:
        return self.time_ratio < 1.0 - self.margin

    @property
    def a_slower(self) -> bool:
        return self.time_ratio > 1.0 + self.margin

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "flops_ratio": round(self.flops_ratio, 2),
                "time_ratio": round(self.time_ratio, 2), "throughput_ratio": round(self.throughput_ratio, 2),
                "margin": round(self.margin, 3)}


def read_pair(a: str, b: str, rows: dict[str, BenchRow]) -> PairReading:
    ra, rb = rows[a], rows[b]
    margin = max(MIN_EFFECT, ra.measurement.relative_iqr + rb.measurement.relative_iqr)
    return PairReading(a, b, ra.flops / rb.flops, ra.latency_s / rb.latency_s,
                       ra.gmadds_per_s / rb.gmadds_per_s, margin)


def judge(rows: dict[str, BenchRow]) -> list[dict[str, Any]]:
    """The two observations, each judged on its pairs (``holds`` / ``partly holds`` / ``does not hold``)."""
    wide = [read_pair(a, b, rows) for a, b in WIDE_VS_DEEP if a in rows and b in rows]
    grouped = [read_pair(a, b, rows) for a, b in GROUPED_VS_WIDE if a in rows and b in rows]
    out = []
    if wide:
        # The observation: a wide network of at least as many FLOPs runs faster than a thin, deep one. It
        # holds when every such pair is faster in time; it partly holds when the wide networks are only
        # faster per FLOP (more GFLOP/s beyond the noise: G3's effect, too small to undo the FLOPs).
        faster = [p for p in wide if p.a_faster]
        per_flop = [p for p in wide if p.throughput_ratio > 1.0 + p.margin]
        verdict = ("holds" if len(faster) == len(wide) else
                   "partly holds" if faster or per_flop else "does not hold")
        detail = "; ".join(f"{p.a} / {p.b}: {p.flops_ratio:.2f}x the FLOPs, {p.time_ratio:.2f}x the time, "
                           f"{p.throughput_ratio:.2f}x the GFLOP/s" for p in wide)
        out.append({"claim": "wide ResNets run faster than thin, deep ResNets of fewer FLOPs",
                    "guideline": "G3 (depth: many small kernels in sequence)", "verdict": verdict,
                    "evidence": detail, "pairs": [p.to_dict() for p in wide]})
    if grouped:
        # Holds when every ResNeXt is much slower per FLOP; partly when some is slower beyond the noise.
        much = [p for p in grouped if p.throughput_ratio <= MUCH_SLOWER]
        slower = [p for p in grouped if p.throughput_ratio < 1.0 - p.margin]
        verdict = "holds" if len(much) == len(grouped) else "partly holds" if slower else "does not hold"
        detail = "; ".join(f"{p.a} / {p.b}: {p.flops_ratio:.2f}x the FLOPs, {p.time_ratio:.2f}x the time, "
                           f"{p.throughput_ratio:.2f}x the GFLOP/s" for p in grouped)
        out.append({"claim": "ResNeXt runs much slower (per FLOP) than a wide ResNet",
                    "guideline": "G2 (32-group 3x3 convs: more memory access per FLOP)", "verdict": verdict,
                    "evidence": detail, "pairs": [p.to_dict() for p in grouped]})
    return out


def run_resnets(options: BenchOptions, batches: Sequence[int] = (1,), *,
                entries: Sequence[ResNetEntry] = RESNET_ENTRIES, machine: MachineCeilings | None = None,
                progress: Progress | None = None) -> SuiteResult:
    """Speed against FLOPs for the ResNet family on this machine (module docstring), judged per batch."""
    start = time.perf_counter()
    specs = [replace(registry_spec(e.name, e.input), name=e.label, family=e.family,
                     info={"registry_name": e.name, "input": e.input}) for e in entries]
    convs = {s.name: conv_count(s.build()) for s in specs}
    bench = run_bench(specs, batches, options, machine=machine, progress=progress)
    by_batch: dict[int, dict[str, BenchRow]] = {}
    for r in bench.rows:
        by_batch.setdefault(r.batch, {})[r.model] = r
    headers = {"family": "family", "model": "model", "input": "input", "convs": "convs", "mflops": "MFLOPs",
               "mmac": "MMAC", "mac_per_flop": "MAC/FLOP"}
    rows = []
    for e in entries:
        mine = {b: by_batch[b][e.label] for b in batches}
        first = next(iter(mine.values()))
        row: dict[str, Any] = {"family": e.family, "model": e.label, "registry_name": e.name,
                               "input": f"{e.input}x{e.input}", "convs": convs[e.label],
                               "mflops": round(first.flops / first.batch / 1e6, 1),
                               "mmac": round(first.mac / first.batch / 1e6, 1),
                               "mac_per_flop": round(first.mac / first.flops, 3)}
        for b in batches:
            row[f"b{b}_ms"] = round(mine[b].latency_s * 1e3, 2)
            row[f"b{b}_gflops"] = round(mine[b].gmadds_per_s, 1)
            headers[f"b{b}_ms"] = f"b{b} ms"
            headers[f"b{b}_gflops"] = f"b{b} GFLOP/s"
        row["noisy"] = noisy_batches(list(mine.values()))
        rows.append(row)
    headers["noisy"] = "noisy"
    verdicts = {b: judge(by_batch[b]) for b in batches}
    notes = ["GFLOP/s = multiply-adds per second achieved (the cost engine's FLOPs / median time); convs = "
             "convolution layers the network runs; MAC/FLOP = memory access (elements) per multiply-add"]
    for b, vs in verdicts.items():
        for v in vs:
            notes.append(f"batch {b}: {v['claim']}: {v['verdict']} ({v['guideline']}): {v['evidence']}")
    result = SuiteResult(suite=SUITE, title="FLOPs vs speed: ResNet, ResNeXt, wide ResNet on this machine",
                         rows=rows, bench=bench, headers=headers,
                         sources=["torchvision ResNet/ResNeXt/Wide ResNet; He et al. 2016; Zagoruyko & "
                                  "Komodakis 2016"], notes=notes)
    result.verdicts = {str(b): vs for b, vs in verdicts.items()}
    result.charts = [resnets_chart(result, batches)]
    result.wall_s = round(time.perf_counter() - start, 1)
    return result


def resnets_chart(result: SuiteResult, batches: Sequence[int]) -> Figure:
    """Time against FLOPs (log-log), one series per family, one panel per input size and batch."""
    sides = list(dict.fromkeys(r["input"] for r in result.rows))
    return Figure("ResNets: time vs FLOPs", lambda fig: draw_resnets(fig, result, batches), key="resnets",
                  size=(5.2 * len(sides), 4.4 * len(batches) + 0.6), dpi=110)


def draw_resnets(fig: Any, result: SuiteResult, batches: Sequence[int]) -> None:
    from matplotlib.ticker import FuncFormatter, NullFormatter

    plain = FuncFormatter(lambda v, _pos: f"{v:g}")
    sides = list(dict.fromkeys(r["input"] for r in result.rows))
    fig.set_layout_engine("constrained")
    axes = fig.subplots(len(batches), len(sides), squeeze=False)
    families = list(dict.fromkeys(r["family"] for r in result.rows))
    for row_axes, b in zip(axes, batches, strict=True):
        for ax, side in zip(row_axes, sides, strict=True):
            for i, fam in enumerate(families):
                pts = sorted((r["mflops"], r[f"b{b}_ms"], r["model"]) for r in result.rows
                             if r["family"] == fam and r["input"] == side)
                if not pts:
                    continue
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="osD^v"[i % 5], color=f"C{i}", label=fam)
                for j, (x, y, label) in enumerate(pts):
                    ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, -10 if j % 2 else 4),
                                fontsize=7)
            ax.set_xscale("log")
            ax.set_yscale("log")
            for axis in (ax.xaxis, ax.yaxis):
                axis.set_major_formatter(plain)
                axis.set_minor_formatter(NullFormatter())
            ax.margins(x=0.25, y=0.1)
            ax.set_xlabel("MFLOPs (multiply-adds)")
            ax.set_ylabel(f"ms per batch of {b}")
            ax.set_title(f"{side} input, batch {b}, {result.bench.env.get('threads')} thread(s)", fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("Time vs FLOPs: wide, deep and grouped ResNets", fontsize=11)
