"""``shufflenet models [PATTERN]``: the registry with params, FLOPs and MAC next to the papers' values.

When the pattern covers ShuffleNet V2 it first reprints the paper's Table 5 re-derived from the code.
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
from typing import Any

from shufflenet.cli._common import add_output_args, emit, progress, rows_to_csv, rows_to_table, to_json

TABLE5_NOTE = ("FLOPs = multiply-adds of conv+FC (paper convention); weights = conv+FC weights; "
               "MAC = elements read + written (paper Sec. 2), at 1x3x224x224")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("models", help="list models with params, FLOPs, MAC and the papers' values")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'shufflenet_v2_*'")
    p.add_argument("--no-cost", action="store_true", help="list names and paper values only (fast)")
    add_output_args(p)
    p.set_defaults(func=run)


def _delta(ours: float | None, paper: float | None) -> float | None:
    if ours is None or not paper:
        return None
    return round(100.0 * (ours / paper - 1.0), 1)


@functools.cache
def _model_cost(name: str) -> tuple[int, Any]:
    """(conv + FC weights, cost report at the model's paper input size), computed once per name."""
    from shufflenet.cost import count_cost
    from shufflenet.models import create_model, get_entry

    model = create_model(name)
    size = get_entry(name).input_size
    weights = sum(p.numel() for p in model.parameters() if p.dim() > 1)
    return weights, count_cost(model, (1, 3, size, size))


def table5_rows() -> list[dict[str, Any]]:
    """Paper Table 5 re-derived: stage widths, FLOPs and weights of this package's networks."""
    from shufflenet.models import get_entry
    from shufflenet.models.shufflenet_v2 import TABLE5_CHANNELS

    rows = []
    for width, (stages, final) in TABLE5_CHANNELS.items():
        name = f"shufflenet_v2_x{width.replace('.', '_')}"
        weights, cost = _model_cost(name)
        paper = get_entry(name).paper
        rows.append({
            "width": f"{width}x", "stage2-4": "/".join(map(str, stages)), "conv5": final,
            "MFLOPs": round(cost.flops / 1e6, 1), "paper MFLOPs": paper.mflops,
            "Mweights": round(weights / 1e6, 2), "paper Mweights": paper.mparams,
            "MMAC": round(cost.mac / 1e6, 2),
        })
    return rows


def model_rows(pattern: str, with_cost: bool, quiet: bool) -> list[dict[str, Any]]:
    from shufflenet.models import get_entry, list_models

    rows = []
    for name in progress(list_models(pattern), "counting", quiet):
        entry = get_entry(name)
        row: dict[str, Any] = {"name": name}
        if with_cost:
            cost = _model_cost(name)[1]
            row.update({"Mparams": round(cost.params / 1e6, 3), "MFLOPs": round(cost.flops / 1e6, 1),
                        "MMAC": round(cost.mac / 1e6, 2)})
        row.update({"paper MFLOPs": entry.paper.mflops, "paper Mparams": entry.paper.mparams})
        if with_cost:
            row["dFLOPs %"] = _delta(row["MFLOPs"], entry.paper.mflops)
        row["source"] = entry.paper.source or "-"
        rows.append(row)
    return rows


def run(args: argparse.Namespace) -> int:
    from shufflenet.errors import UserInputError
    from shufflenet.models import list_models

    if not list_models(args.pattern):
        raise UserInputError(f"no model matches {args.pattern!r}; try `shufflenet models` for the full list")
    with_table5 = not args.no_cost and any(
        fnmatch.fnmatch(f"shufflenet_v2_x{w}", args.pattern) for w in ("0_5", "1_0", "1_5", "2_0"))
    t5 = table5_rows() if with_table5 else []
    rows = model_rows(args.pattern, not args.no_cost, args.quiet)
    if args.format == "json":
        text = to_json({"convention": TABLE5_NOTE, "table5": t5, "models": rows})
    elif args.format == "csv":
        text = rows_to_csv(rows)
    else:
        parts = []
        if t5:
            parts.append(rows_to_table(t5, "ShuffleNet V2, paper Table 5 re-derived (" + TABLE5_NOTE + ")"))
        parts.append(rows_to_table(rows, f"Models ({len(rows)}); paper values with their source"))
        text = "\n\n".join(parts)
    emit(text, args.out)
    return 0
