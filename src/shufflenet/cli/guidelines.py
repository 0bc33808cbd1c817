"""``shufflenet guidelines [g1|g2|g3|g4|all]``: the paper's G1-G4 experiments (Tables 1-4) on this machine.

Per table: our speed (images/s, median over rounds) and its spread, relative to the table's first row,
beside the paper's GPU (batches/s) and ARM (images/s) speeds and their relative values, with FLOPs and MAC
from the cost engine; then one verdict line per guideline: holds / does not hold / inconclusive on this
platform, with effect sizes next to the paper's. Defaults: batch 1 and the paper's ARM channels on CPU
(1 thread), batch 8, the GPU channels and cudnn.benchmark on CUDA; ``--quick`` = x1 only, shorter timing.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from shufflenet.cli._common import (
    MAX_BATCH,
    add_output_args,
    emit_result,
    float_arg,
    int_arg,
    progress,
)
from shufflenet.measure.options import RUNTIMES


def add_parser(sub: Any) -> None:
    from shufflenet.guidelines import registry

    names = [*registry.keys(), "all"]
    p = sub.add_parser("guidelines", help="run the paper's G1-G4 experiments (Tables 1-4) on this machine",
                       description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("which", nargs="?", default="all", metavar="{" + ",".join(names) + "}",
                   help=f"which guideline experiment: {registry.choices_text()} (default: all)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--batch", type=int_arg(1, MAX_BATCH), default=None, metavar="N",
                   help="batch size (default 1 on CPU, the paper's ARM setting; 8 on CUDA, its GPU setting)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: 1 on CPU)")
    p.add_argument("--channels", choices=("gpu", "arm"), default=None,
                   help="the paper's channel set (default: arm on CPU, gpu on CUDA)")
    p.add_argument("--quick", action="store_true", help="x1 multipliers only and shorter timing (~1-2 min)")
    p.add_argument("--rounds", type=int_arg(1, 10_000), default=None, metavar="N",
                   help="interleaved timing rounds per row (default 21; 15 with --quick)")
    p.add_argument("--min-run-time", type=float_arg(0.0, 3600.0, inclusive=False), default=None, metavar="SECONDS",
                   help="seconds per timed measurement (default 0.15; 0.1 with --quick)")
    p.add_argument("--runtime", choices=RUNTIMES, default="torch",
                   help="time the blocks in this inference runtime (CPU, fp32): the guidelines may read "
                        "differently there than in eager PyTorch")
    p.add_argument("--plot-dir", metavar="DIR", default=None, help="write a bar-chart PNG per table to DIR")
    add_output_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from shufflenet.guidelines.runner import RunOptions, check_guidelines, run_guidelines

    keys = check_guidelines(args.which)
    opts = RunOptions(device=args.device, batch=args.batch, threads=args.threads, channels=args.channels,
                      runtime=args.runtime,
                      quick=args.quick, rounds=args.rounds, min_run_time=args.min_run_time).resolved()
    quiet = bool(getattr(args, "quiet", False))
    result = run_guidelines(keys, opts, progress=lambda it, desc, total: progress(it, desc, quiet, total))
    if args.plot_dir:
        from shufflenet.guidelines.plots import save_plots

        for path in save_plots(result, args.plot_dir):
            if not quiet:
                sys.stderr.write(f"wrote {path}\n")
    emit_result(result, args)
    return 0
