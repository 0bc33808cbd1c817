"""The paper's Fig. 2 on this CPU: where the time of ShuffleNet v1 1x g=3 and MobileNet v2 1x goes.

Profiles each model at batch 1, 224x224 (the paper's ARM setting, Sec. 2) with ``shufflenet.measure.profile``,
prints the Fig. 2 categories next to the paper's GPU and ARM percentages, and the coverage of each
profile: the unscaled sum of its buckets over the latency ``measure()`` gives with no profiler attached
(issue 3: within 5%). ShuffleNet V2 1x is profiled too, for the coverage check only (not in Fig. 2).

Writes ``benchmarks/results/profile_fig2.json`` and one PNG per model under ``benchmarks/results/``.

    python benchmarks/profile_fig2.py [--threads 1] [--repeats 20] [--models M ...] [--out FILE]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shufflenet.environment import capture_environment
from shufflenet.measure import optypes, profile
from shufflenet.measure.plots import plot_breakdown
from shufflenet.models import create_model
from shufflenet.render import render, write_result
from shufflenet.result import ResultBase, Table

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = ("shufflenet_v1_g3_x1_0", "torchvision:mobilenet_v2", "shufflenet_v2_x1_0")


@dataclass
class Fig2Comparison(ResultBase):
    """The benchmark's result: its JSON (``data``) and the comparison table, for the one renderer."""

    data: dict[str, Any]
    table: Table

    def to_dict(self) -> dict[str, Any]:
        return self.data

    def tables(self) -> list[Table]:
        return [self.table]


def png_name(model: str) -> str:
    return "profile_fig2_" + model.replace("torchvision:", "tv_") + ".png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op threads (default 1: the paper's single-thread ARM protocol and the CLI "
                             "default; at 2 threads this machine's grouped convs switch between two speeds "
                             "mid-run, which breaks the coverage check)")
    parser.add_argument("--repeats", type=int, default=60, help="profiled forwards per model")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--min-run-time", type=float, default=1.2, help="seconds of the independent timing")
    parser.add_argument("--ceilings", default="auto", choices=("auto", "cached", "none"))
    parser.add_argument("--out", type=Path, default=RESULTS / "profile_fig2.json")
    args = parser.parse_args()

    start = time.perf_counter()
    results, table = [], []
    for name in args.models:
        report = profile(create_model(name), (1, 3, 224, 224), threads=args.threads, repeats=args.repeats,
                         warmup=args.warmup, min_run_time=args.min_run_time, ceilings=args.ceilings, name=name)
        png = args.out.parent / png_name(name)
        written = plot_breakdown(report, png)  # None (and a note in the report) without matplotlib
        d = report.to_dict()
        d.pop("ops")  # per-op rows are long; per-layer rows and buckets are kept
        d["png"] = png.name if written is not None else None
        results.append(d)
        ours = report.paper_percent()
        for cat in optypes.PAPER_CATEGORIES:
            row = {"model": name, "category": cat, "ours_pct": round(ours[cat], 1)}
            for key in ("gpu", "arm"):
                pie = (report.paper or {}).get(key)
                row[f"paper_{key}_pct"] = pie.percent.get(cat) if pie else None
            table.append(row)
        print(f"{name}: sum of buckets {report.profiled_sum_s * 1e3:.2f} ms, independent "
              f"{(report.total_s or 0) * 1e3:.2f} ms, coverage {report.coverage:.3f}"
              f"{'' if report.coverage_ok else '  OUTSIDE 5%'}; framework overhead "
              f"{report.overhead_time_s * 1e3:.2f} ms; eps {report.overhead_per_event_s * 1e6:.3f} us x "
              f"{report.events_per_forward} events", flush=True)
        print("   " + ", ".join(f"{b.label} {b.percent:.1f}%" for b in report.buckets if b.time_s > 0))

    env = capture_environment(device="cpu", threads=args.threads, batch=1, input_size=(1, 3, 224, 224))
    out = {"benchmark": "profile_fig2", "env": env, "threads": args.threads, "repeats": args.repeats,
           "elapsed_s": time.perf_counter() - start,
           "comparison": table, "profiles": results}
    title = (f"Fig. 2 categories (Pooling and FC folded into Other), batch 1, 224x224, {args.threads} thread(s), "
             "fp32")
    labels = {"ours_pct": "ours", "paper_gpu_pct": "paper GPU", "paper_arm_pct": "paper ARM"}
    comparison = Table.from_rows(title, table, labels=labels, units=dict.fromkeys(labels, "%"),
                                 fmts=dict.fromkeys(labels, ".1f"))
    result = Fig2Comparison(out, comparison)
    print("\n" + render(result, "table"))
    write_result(result, args.out, environment=env)
    print(f"\nwrote {args.out} and {len(results)} PNG(s) in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
