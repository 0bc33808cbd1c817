"""The latency predictor against FLOPs on networks held out from calibration (paper Sec. 1, Fig. 1).

For each thread count (1 and 2 by default): calibrate on this machine (``--mode quick`` or ``full``; kernels
only, no network is timed), then time and predict the 51 held-out networks of
:func:`shufflenet.audit.latency.evaluate.held_out_networks` -- 18 torchvision classifiers, 13 of this
package's models, 20 random ShuffleNet-V2-like variants -- at batch 1, interleaved rounds. Prints the
scores of (a) a FLOPs-only linear fit, (b) a FLOPs + MAC linear fit (both fitted leave-one-out on the
measured times) and (c) the calibrated predictor, and writes ``benchmarks/results/latency_model.json``,
``latency_model.md`` and one predicted-vs-measured scatter plot per thread count.

    python benchmarks/latency_model.py [--mode quick|full] [--threads 1 2] [--rounds 5] [--quick-set]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shufflenet.audit.latency import calibrate
from shufflenet.audit.latency.evaluate import PredictorEvaluation, evaluate, held_out_networks
from shufflenet.environment import capture_environment
from shufflenet.render import render, write_result
from shufflenet.result import Figure, ResultBase, Table

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class LatencyBenchmark(ResultBase):
    """The benchmark's result for the one renderer: each thread count's evaluation, and the run's data."""

    data: dict[str, Any]
    evaluations: list[PredictorEvaluation]

    def to_dict(self) -> dict[str, Any]:
        return self.data

    def tables(self) -> list[Table]:
        return [t for ev in self.evaluations for t in ev.tables()]

    def figures(self) -> list[Figure]:
        return [f for ev in self.evaluations for f in ev.figures()]

    def conventions(self) -> list[str]:
        return self.evaluations[0].conventions() if self.evaluations else []


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=("quick", "full"), default="quick", help="calibration mode")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds per network")
    ap.add_argument("--min-run-time", type=float, default=0.25, help="seconds per network per round")
    ap.add_argument("--quick-set", action="store_true", help="the report's 12 networks instead of 51")
    ap.add_argument("--out", type=Path, default=RESULTS / "latency_model", help="results path stem")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)  # torchvision's googlenet init notice

    networks = held_out_networks(quick=args.quick_set)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    evaluations, calibrations = [], {}
    for threads in args.threads:
        t0 = time.perf_counter()
        cal = calibrate(args.mode, threads)
        print(f"[{threads} thread(s)] {args.mode} calibration: {len(cal.samples)} kernels in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        calibrations[threads] = {"seconds": cal.seconds, "kernels": len(cal.samples), "kinds": cal.summary_rows()}
        ev = evaluate(networks, cal, rounds=args.rounds, min_run_time=args.min_run_time)
        evaluations.append(ev)
        print(render(ev, "table"), flush=True)
        print(ev.finding(), flush=True)
    doc = {"benchmark": "latency_model", "started": started, "mode": args.mode, "rounds": args.rounds,
           "command": " ".join(["python", "benchmarks/latency_model.py", *(argv if argv is not None else sys.argv[1:])]),
           "environment": capture_environment(threads=args.threads[0]), "calibrations": calibrations,
           "evaluations": [ev.to_dict() for ev in evaluations]}
    stem = args.out
    stem.parent.mkdir(parents=True, exist_ok=True)
    bench = LatencyBenchmark(doc, evaluations)
    write_result(bench, stem.with_suffix(".json"), environment=doc["environment"])
    write_result(bench, stem.with_suffix(".md"), environment=doc["environment"])  # + STEM_KEY.png per figure
    print(f"wrote {stem.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
