"""The G1-G4 guideline experiments (paper Tables 1-4) on this CPU: ``all --quick`` and the full suite.

Runs exactly what ``shufflenet guidelines all --quick`` and ``shufflenet guidelines all`` run (CPU defaults:
batch 1, one thread, the paper's ARM channel set), prints each run's table, verdicts and wall time, and
writes ``benchmarks/results/guidelines_cpu_quick.json`` / ``guidelines_cpu_full.json`` plus a bar chart per
table (``guidelines_cpu_{quick,full}_g{1..4}.png``). Budgets (issue 4): quick <= 3 min, full <= 15 min.

    python benchmarks/guidelines_cpu.py [--only quick|full] [--threads N] [--channels arm|gpu]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from shufflenet.guidelines import RunOptions, run_guidelines
from shufflenet.guidelines.plots import save_plots
from shufflenet.render import render, write_result

RESULTS = Path(__file__).resolve().parent / "results"
BUDGET_S = {"quick": 180, "full": 900}


class _WithBenchmark:
    """The run's result with the benchmark's wall time and budget added to its JSON (``"benchmark"``)."""

    def __init__(self, result: Any, benchmark: dict[str, Any]) -> None:
        self.result, self.benchmark = result, benchmark

    def to_dict(self) -> dict[str, Any]:
        return {**self.result.to_dict(), "benchmark": self.benchmark}

    def tables(self) -> list[Any]:
        return self.result.tables()

    def figures(self) -> list[Any]:
        return self.result.figures()

    def conventions(self) -> list[str]:
        return self.result.conventions()


def _progress(mode: str) -> Any:
    from tqdm import tqdm

    return lambda it, desc, total: tqdm(it, desc=mode, total=total, disable=not sys.stderr.isatty(), leave=False)


def run_one(mode: str, args: argparse.Namespace) -> float:
    opts = RunOptions(device="cpu", threads=args.threads, channels=args.channels, quick=mode == "quick")
    start = time.perf_counter()
    result = run_guidelines("all", opts, progress=_progress(mode))
    wall = time.perf_counter() - start
    benchmark = {"mode": mode, "wall_s": wall, "budget_s": BUDGET_S[mode], "within_budget": wall <= BUDGET_S[mode]}
    out = args.out_dir / f"guidelines_cpu_{mode}.json"
    write_result(_WithBenchmark(result, benchmark), out, environment=result.env)
    plots = save_plots(result, args.out_dir, prefix=f"guidelines_cpu_{mode}")
    print(render(result, "table"))
    print(f"\n[{mode}] wall time {wall:.1f} s (budget {BUDGET_S[mode]} s: "
          f"{'ok' if wall <= BUDGET_S[mode] else 'OVER'}); wrote {out} and {len(plots)} PNGs\n", flush=True)
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("quick", "full"), default=None, help="run only one of the two")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default 1)")
    parser.add_argument("--channels", choices=("arm", "gpu"), default=None, help="channel set (default arm)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args()
    walls = {mode: run_one(mode, args) for mode in ("quick", "full") if args.only in (None, mode)}
    print("wall times: " + ", ".join(f"{m} {w:.1f} s" for m, w in walls.items()))
    return 0 if all(w <= BUDGET_S[m] for m, w in walls.items()) else 1


if __name__ == "__main__":
    sys.exit(main())
