"""Speed of the cost engine against fvcore's FlopCountAnalysis on the same model and input.

Both counters run alternately in one process (ours, fvcore, ours, fvcore, ...) after one warm-up call
each, so drifts in machine load hit both equally. A plain ``no_grad`` forward pass is timed too, as the
floor any eager counter pays. Prints a table and writes ``benchmarks/results/cost_speed.json``.

    python benchmarks/cost_speed.py [--model shufflenet_v2_x1_0] [--repeats 7] [--threads N]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torchvision

from shufflenet.cost import count_cost
from shufflenet.environment import cpu_model_name
from shufflenet.render import render, write_result
from shufflenet.result import ResultBase, Table

RESULTS = Path(__file__).resolve().parent / "results" / "cost_speed.json"


LABELS = {"ours": "shufflenet count_cost", "fvcore": "fvcore FlopCountAnalysis", "forward": "plain forward (floor)"}


@dataclass
class CostSpeed(ResultBase):
    """The benchmark's result (``data`` is its JSON), one row per counter, for the one renderer."""

    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.data

    def tables(self) -> list[Table]:
        d = self.data
        rows = [{"counter": LABELS[name], "median_ms": r["median_s"] * 1e3, "iqr_ms": r["iqr_s"] * 1e3,
                 "min_ms": r["min_s"] * 1e3} for name, r in d["results"].items()]
        env = d["environment"]
        title = (f"cost counter speed: {d['model']} {'x'.join(map(str, d['input_size']))}, {d['repeats']} "
                 f"alternated repeats, {env['threads']} threads, {env['cpu']}")
        ratio, counts = d["ratio_ours_over_fvcore"], d["counts"]
        notes = [f"ratio ours/fvcore (medians): {ratio:.3f}  -> {'OK, not slower' if ratio <= 1 else 'SLOWER'}",
                 f"FLOPs: ours {counts['ours_flops']:,} (conv+linear multiply-adds), fvcore {counts['fvcore_flops']:,}"]
        return [Table.from_rows(title, rows, labels={"median_ms": "median", "iqr_ms": "IQR", "min_ms": "min"},
                                units={"median_ms": "ms", "iqr_ms": "ms", "min_ms": "ms"},
                                fmts={"median_ms": ".1f", "iqr_ms": ".1f", "min_ms": ".1f"}, notes=notes)]


def stats(samples: list[float]) -> dict[str, float]:
    q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return {"median_s": statistics.median(samples), "iqr_s": q3 - q1, "min_s": min(samples),
            "samples_s": samples}


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="shufflenet_v2_x1_0", help="torchvision model name")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from fvcore.nn import FlopCountAnalysis  # dev extra; imported late so --help works without it

    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")  # jit tracer warnings from fvcore
    logging.disable(logging.WARNING)  # fvcore logs unsupported/uncalled ops on every call

    model = getattr(torchvision.models, args.model)().eval()
    input_size = (1, 3, args.size, args.size)
    x = torch.randn(input_size)

    def ours() -> int:
        return count_cost(model, input_size).flops

    def fvcore() -> int:
        return FlopCountAnalysis(model, x).total()

    def forward() -> None:
        with torch.no_grad():
            model(x)

    load_before = os.getloadavg()[0]
    counts = {"ours_flops": ours(), "fvcore_flops": fvcore()}  # warm-up, and what each one counts
    forward()
    times: dict[str, list[float]] = {"ours": [], "fvcore": [], "forward": []}
    for _ in range(args.repeats):
        times["ours"].append(timed(ours))
        times["fvcore"].append(timed(fvcore))
        times["forward"].append(timed(forward))

    result = {name: stats(samples) for name, samples in times.items()}
    ratio = result["ours"]["median_s"] / result["fvcore"]["median_s"]
    report = {
        "benchmark": "cost_speed",
        "what": "count_cost(model, input_size) vs fvcore FlopCountAnalysis(model, x).total(), alternated",
        "model": f"torchvision:{args.model}",
        "input_size": list(input_size),
        "dtype": "float32",
        "batch": 1,
        "repeats": args.repeats,
        "environment": {
            "cpu": cpu_model_name(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "fvcore": _version("fvcore"),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_1m_before_after": [load_before, os.getloadavg()[0]],
        },
        "results": result,
        "ratio_ours_over_fvcore": ratio,
        "ours_not_slower": ratio <= 1.0,
        "counts": counts,
        "note": "fvcore also counts BN and pooling, so its FLOPs differ from ours (conv+linear multiply-adds)",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    speed = CostSpeed(report)
    write_result(speed, args.out, environment=report["environment"])
    print(render(speed, "table"))
    print(f"wrote {args.out}")


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    main()
