"""Regenerate the committed speed results of this machine under ``benchmarks/results/``.

For each suite (what ``shufflenet bench --suite NAME`` runs), the result is written as
``NAME-<device>[-quick].json`` (with the environment) and rendered to ``.txt`` by the package's one renderer;
paper-fig1 writes its ``.png`` beside them. ``--machine`` also records the machine ceilings
(``machine-<device>.json``): the best fp32 kernel (torch.mm, oneDNN convs, OpenVINO when installed), the
theoretical FMA peak and the copy bandwidth. Only the public API is used (``shufflenet.measure``,
``shufflenet.render``), so every file is written atomically, as the CLI writes its ``--out``.

    python benchmarks/run_suites.py [--quick] [--suite paper-fig1 units resnets] [--device cpu] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path("benchmarks") / "results"  # relative, so the plot paths recorded in the JSON are too


def _progress(items: Any, desc: str, total: int) -> Any:
    """A progress bar on stderr when it is a terminal (as the CLI shows one)."""
    from tqdm import tqdm

    return tqdm(items, desc=desc, total=total, disable=not sys.stderr.isatty(), leave=False)


def main(argv: list[str] | None = None) -> int:
    import torch

    from shufflenet.measure import BenchOptions, load_machine, measure_machine, run_suite
    from shufflenet.render import write_result

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--suite", nargs="+", default=["paper-fig1", "units", "resnets"],
                   choices=["paper-fig1", "units", "resnets"])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int)
    p.add_argument("--machine", action="store_true", help="also measure and record the machine ceilings")
    args = p.parse_args(argv)
    os.chdir(ROOT)
    options = (BenchOptions.make_quick if args.quick else BenchOptions)(device=args.device, threads=args.threads)
    dev = torch.device(args.device)
    if args.machine:
        out = RESULTS / f"machine-{dev.type}.json"
        machine = measure_machine(dev, args.threads, refresh=True)
        write_result(machine, out)
        print(f"written {out}")
    else:
        machine = load_machine(dev, args.threads)
    for suite in args.suite:
        stem = RESULTS / f"{suite}-{dev.type}{'-quick' if args.quick else ''}"
        start = time.perf_counter()
        plot = stem.with_suffix(".png") if suite in ("paper-fig1", "resnets") else None
        result = run_suite(suite, options, machine=machine, progress=_progress, plot_path=plot)
        write_result(result, stem.with_suffix(".json"), environment=result.bench.env)
        write_result(result, stem.with_suffix(".txt"), environment=result.bench.env)
        print(f"{suite}: {time.perf_counter() - start:.0f} s wall; written {stem}.json and .txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
