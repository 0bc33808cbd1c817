"""Regenerate the committed speed results of this machine under ``benchmarks/results/``.

For each suite, ``shufflenet bench --suite NAME --format json`` writes ``NAME-<device>[-quick].json`` (with
the environment), the same result is rendered to ``.txt``, and paper-fig1 writes its ``.png`` beside them.
``--machine`` also records the machine ceilings (``machine-<device>.json``): the best fp32 kernel (torch.mm,
oneDNN convs, OpenVINO when installed), the theoretical FMA peak and the copy bandwidth.

    python benchmarks/run_suites.py [--quick] [--suite paper-fig1 units] [--device cpu] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path("benchmarks") / "results"  # relative, so the plot paths recorded in the JSON are too


def main(argv: list[str] | None = None) -> int:
    from shufflenet._io import write_atomic
    from shufflenet.cli.bench import suite_table
    from shufflenet.cli.main import main as cli

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--suite", nargs="+", default=["paper-fig1", "units"], choices=["paper-fig1", "units"])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads")
    p.add_argument("--machine", action="store_true", help="also measure and record the machine ceilings")
    args = p.parse_args(argv)
    os.chdir(ROOT)
    common = ["--device", args.device] + (["--threads", args.threads] if args.threads else [])
    dev = args.device.split(":")[0]
    if args.machine:
        out = RESULTS / f"machine-{dev}.json"
        if cli(["bench", "--machine", *common, "--format", "json", "--out", str(out)]) != 0:
            return 1
        print(f"written {out}")
    for suite in args.suite:
        stem = RESULTS / f"{suite}-{dev}{'-quick' if args.quick else ''}"
        start = time.perf_counter()
        code = cli(["bench", "--suite", suite, *common, *(["--quick"] if args.quick else []),
                    "--format", "json", "--out", f"{stem}.json"])
        if code != 0:
            return code
        write_atomic(f"{stem}.txt", suite_table(json.loads(Path(f"{stem}.json").read_text())) + "\n")
        print(f"{suite}: {time.perf_counter() - start:.0f} s wall; written {stem}.json and .txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
