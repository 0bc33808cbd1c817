"""``shufflenet audit MODEL``: read a model the way the ShuffleNet V2 paper reads networks (Sec. 2, G1-G4).

For each guideline, findings with the module, the evidence numbers and what each costs; a summary with a
score per guideline, the top offenders and a suggestion for each. ``--measure`` adds this machine's view:
each finding's measured time share and, for flagged G1/G2 layers, the layer timed alone next to the same
layer rebuilt guideline-compliant at equal FLOPs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from shufflenet.cli._common import (
    add_model_args,
    add_output_args,
    build_model,
    emit_result,
    float_arg,
    int_arg,
    parse_input_size,
    progress,
)

EPILOG = """examples:
  shufflenet audit shufflenet_v1_g3_x1_0                 # G2: every g=3 conv against g=1
  shufflenet audit torchvision:mobilenet_v2 --out a.md   # G1 and G4 findings, Markdown
  shufflenet audit mypkg.nets:build -m width=64          # your own model: package.module:callable
  shufflenet audit path/to/net.py:make --input 1x3x64x64 --measure"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("audit", help="read a model against the paper's guidelines G1-G4 (findings, scores, fixes)",
                       description=__doc__, epilog=EPILOG)
    p.add_argument("model", help="a registered name, torchvision:NAME, timm:NAME, package.module:callable or "
                                 "path/to/file.py:callable (keywords with -m KEY=VALUE)")
    p.add_argument("--input", default=None, metavar="SIZE",
                   help="input size NxCxHxW, CxHxW or one side (default: the model's usual side, 224 for most)")
    p.add_argument("--measure", action="store_true",
                   help="also measure on this machine: time share per finding, flagged G1/G2 layers against "
                        "their compliant rebuild at equal FLOPs")
    p.add_argument("--threads", type=int_arg(1, 1024), default=1,
                   help="CPU threads when measuring (1 = the paper's one-thread ARM setting)")
    p.add_argument("--repeats", type=int_arg(1, 100_000), default=30, help="profiled forwards when measuring")
    p.add_argument("--rounds", type=int_arg(1, 1000), default=5,
                   help="interleaved rounds timing each rebuilt layer pair")
    p.add_argument("--min-run-time", type=float_arg(0.0, 60.0, inclusive=False), default=0.05, metavar="S",
                   help="seconds per timed block of a rebuilt layer")
    p.add_argument("--rebuild-top", type=int_arg(0, 10_000), default=12, metavar="K",
                   help="rebuild and time at most K distinct flagged layer shapes (the costliest)")
    add_model_args(p)
    add_output_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from shufflenet.audit import MeasureOptions, audit_model
    from shufflenet.models import get_entry

    if args.input is None:
        side = get_entry(args.model).input_size  # an unknown name fails here, before any work
        size = (1, 3, side, side)
    else:
        size = parse_input_size(args.input)
    model = build_model(args.model, args)
    options = MeasureOptions(threads=args.threads, repeats=args.repeats, rounds=args.rounds,
                             min_run_time=args.min_run_time, rebuild_top=args.rebuild_top)

    def bar(iterable: Any, desc: str, total: int) -> Any:
        return progress(iterable, desc, args.quiet, total)

    report = audit_model(model, size, measure=args.measure, options=options, name=args.model, progress=bar)
    if not report.complete and args.format in ("json", "csv"):
        sys.stderr.write(f"shufflenet: {report.conventions()[0]}\n")
    emit_result(report, args)
    return 0
