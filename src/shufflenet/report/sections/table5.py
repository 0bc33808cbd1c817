"""Table 5 re-derived: every ShuffleNet V2 width's FLOPs, weights and MAC from this package's code, beside
the paper's FLOPs and weights (Table 5), for both block layouts (the official one, which the paper's
numbers match, and torchvision's, whose Stage 2 downsampling unit is narrower). Counting only, no timing.
"""

from __future__ import annotations

from typing import Any

from shufflenet.cost import count_cost
from shufflenet.cost.catalog import TABLE5_NOTE, table5_rows
from shufflenet.models import create_model
from shufflenet.report.context import ReportContext
from shufflenet.report.registry import register
from shufflenet.report.section import Claim, Section, SectionOutput
from shufflenet.result import Table

# Counting reproduces Table 5 when FLOPs and weights are within this of the paper's rounded values
# (41M / 146M / 299M / 591M and 1.4M / 2.3M / 3.5M / 7.4M are rounded to 2-3 significant digits).
TOLERANCE = 0.03


def _delta(ours: float, paper: float | None) -> float | None:
    return round(100.0 * (ours / paper - 1.0), 1) if paper else None


def table5_comparison(progress: Any = None) -> list[dict[str, Any]]:
    """One row per width: stage widths, our FLOPs / weights / MAC (official layout), the paper's values,
    the differences in %, and the torchvision layout's FLOPs."""
    rows = []
    base = table5_rows()
    it = progress(base, "Table 5: counting", len(base)) if progress is not None else base
    for r in it:
        width = r["width"].rstrip("x")
        tv = count_cost(create_model(f"shufflenet_v2_x{width.replace('.', '_')}", layout="torchvision"),
                        (1, 3, 224, 224))
        rows.append({
            "width": r["width"], "stage2-4": r["stage2-4"], "conv5": r["conv5"],
            "MFLOPs": r["MFLOPs"], "paper MFLOPs": r["paper MFLOPs"],
            "dFLOPs %": _delta(r["MFLOPs"], r["paper MFLOPs"]),
            "Mweights": r["Mweights"], "paper Mweights": r["paper Mweights"],
            "dweights %": _delta(r["Mweights"], r["paper Mweights"]),
            "MMAC": r["MMAC"], "torchvision layout MFLOPs": round(tv.flops / 1e6, 1),
        })
    return rows


def _joined(rows: list[dict[str, Any]], key: str) -> str:
    return " / ".join(f"{r[key]:g}" for r in rows)


def verdict(rows: list[dict[str, Any]], tolerance: float = TOLERANCE) -> str:
    """"holds" when every width's FLOPs and weights are within ``tolerance`` of Table 5."""
    deltas = [abs(r[k]) for r in rows for k in ("dFLOPs %", "dweights %") if r.get(k) is not None]
    if not deltas:
        return "inconclusive"
    return "holds" if max(deltas) <= 100 * tolerance else "does not hold"


def run(ctx: ReportContext) -> SectionOutput:
    rows = table5_comparison(ctx.progress)
    status = verdict(rows)
    worst = max(abs(r[k]) for r in rows for k in ("dFLOPs %", "dweights %") if r.get(k) is not None)
    flops, paper = _joined(rows, "MFLOPs"), _joined(rows, "paper MFLOPs")
    finding = (f"The paper (Table 5): {paper} MFLOPs for 0.5x / 1x / 1.5x / 2x. Here, counted from the code: "
               f"{flops} MFLOPs, every FLOPs and weight count within {worst:.1f}% of the paper's rounded "
               f"values; MAC, which the paper does not tabulate, is "
               f"{_joined(rows, 'MMAC')} M elements.")
    tv = _joined(rows, "torchvision layout MFLOPs")
    notes = [TABLE5_NOTE,
             "official layout (megvii-model/ShuffleNet-Series) = this package's default; torchvision's layout "
             f"(narrower Stage 2 downsampling unit) gives {tv} MFLOPs, so the paper's numbers match the official "
             "one",
             f"reproduced = every width's FLOPs and weights within {TOLERANCE:.0%} of Table 5's rounded values"]
    table = Table.from_rows("ShuffleNet V2, Table 5 re-derived (ours beside the paper's)", rows,
                            units={"dFLOPs %": "", "dweights %": ""}, notes=notes, key="table5")
    claim = Claim("table5", "ShuffleNet V2's widths have Table 5's FLOPs and weights",
                  f"{paper} MFLOPs; {_joined(rows, 'paper Mweights')} M weights",
                  f"{flops} MFLOPs; {_joined(rows, 'Mweights')} M weights "
                  f"(max deviation {worst:.1f}%)", status)
    return SectionOutput(finding=finding, tables=[table], claims=[claim], data={"rows": rows})


SECTION = register(Section("table5", "Table 5 re-derived: FLOPs, weights and MAC", 20, run,
                           estimate_s=lambda options: 6.0,
                           description="every ShuffleNet V2 width counted from the code, beside Table 5"))
