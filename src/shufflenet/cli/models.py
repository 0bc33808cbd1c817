"""``shufflenet models [PATTERN]``: the registry with params, FLOPs and MAC next to the papers' values.

When the pattern covers ShuffleNet V2 it first reprints the paper's Table 5 re-derived from the code.
"""

from __future__ import annotations

import argparse
from typing import Any

from shufflenet.cli._common import add_output_args, emit_result, progress


def add_parser(sub: Any) -> None:
    p = sub.add_parser("models", help="list models with params, FLOPs, MAC and the papers' values")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'shufflenet_v2_*'")
    p.add_argument("--no-cost", action="store_true", help="list names and paper values only (fast)")
    p.add_argument("--shipped", action="store_true",
                   help="list the trained checkpoints shipped with the package (shipped:NAME)")
    add_output_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from shufflenet.cost.catalog import catalog

    if args.shipped:
        from shufflenet.models.shipped import ShippedList, shipped_checkpoints

        emit_result(ShippedList(shipped_checkpoints()), args)
        return 0
    result = catalog(args.pattern, with_cost=not args.no_cost,
                     progress=lambda it, desc: progress(it, desc, args.quiet))
    emit_result(result, args, table="models")
    return 0
