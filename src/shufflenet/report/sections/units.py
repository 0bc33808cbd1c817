"""Appendix Table 1(b) on this machine: ten stacked units of ShuffleNet v2, ShuffleNet v1, MobileNet v2 and
Xception, widths matched to ShuffleNet v2's FLOPs at c = 64 / 128 / 256, at 56x56 and 28x28 (the ``units`` suite of
:mod:`shufflenet.measure.unit_suite`), beside the paper's GPU and ARM speeds. The paper's ShuffleNet v2
unit is the fastest in every cell on both platforms; whether it is here is judged cell by cell, beyond the
measured spreads.
"""

from __future__ import annotations

from typing import Any

from shufflenet.report.context import ReportContext
from shufflenet.report.registry import register
from shufflenet.report.section import Claim, Section, SectionOutput, ranked, timing_entry
from shufflenet.report.sections._speed import combined, count_of, fastest_status, ranking, suite_table
from shufflenet.result import Table

V2 = "ShuffleNet v2"


def bench_name(row: dict[str, Any]) -> str:
    """The bench row of a suite row (``run_units`` names them ``NET c=C @SIDE``)."""
    return f"{row['model']} c={row['c']} @{str(row['input']).split('x')[0]}"


def cells(rows: list[dict[str, Any]], spreads: dict[str, float]) -> list[dict[str, Any]]:
    """Per (input, c): the fastest unit on the paper's GPU and ARM and here, and whether ShuffleNet v2's
    unit is the fastest here."""
    out = []
    keys = list(dict.fromkeys((r["input"], r["c"]) for r in rows))
    for side, c in keys:
        group = [r for r in rows if (r["input"], r["c"]) == (side, c)]
        here = {r["model"]: r.get("b1_images_per_s") for r in group}
        sp = {r["model"]: spreads.get(bench_name(r), 0.0) for r in group}
        out.append({"input": side, "c": c,
                    "paper GPU fastest": (ranking({r["model"]: r.get("paper_gpu") for r in group}) or [None])[0],
                    "paper ARM fastest": (ranking({r["model"]: r.get("paper_arm") for r in group}) or [None])[0],
                    "here fastest": (ranking(here) or [None])[0],
                    "here: v2 fastest": fastest_status(here, sp, V2),
                    "here v2 / next": _v2_margin(here)})
    return out


def _v2_margin(speeds: dict[str, Any]) -> float | None:
    mine = speeds.get(V2)
    others = [v for k, v in speeds.items() if k != V2 and v]
    return round(mine / max(others), 2) if mine and others else None


def run(ctx: ReportContext) -> SectionOutput:
    from shufflenet.measure.unit_suite import run_units

    result = run_units(ctx.bench_options(), (1,), machine=ctx.machine(), progress=ctx.progress)
    spreads = {r.model: r.measurement.relative_iqr for r in result.bench.rows}
    table = cells(result.rows, spreads)
    statuses = [r["here: v2 fastest"] for r in table]
    paper_arm = sum(1 for r in table if r["paper ARM fastest"] == V2)
    paper_gpu = sum(1 for r in table if r["paper GPU fastest"] == V2)
    margins = [r["here v2 / next"] for r in table if r["here v2 / next"] is not None]
    claim = Claim("units", "The ShuffleNet v2 unit is the fastest at equal FLOPs (Appendix Table 1(b))",
                  f"fastest in {paper_gpu} of {len(table)} cells on GPU and {paper_arm} of {len(table)} on ARM",
                  f"fastest in {count_of(statuses)} of {len(table)} cells beyond the spread "
                  f"(v2 / next fastest: {min(margins):.2f}-{max(margins):.2f}x)" if margins else "no cells",
                  combined(statuses))
    finding = (f"The paper (Appendix Table 1(b)): the ShuffleNet v2 unit is the fastest of the four at every c "
               f"and input size, on GPU ({paper_gpu}/{len(table)}) and ARM ({paper_arm}/{len(table)}). Here, at "
               f"batch 1: fastest in {count_of(statuses)} of {len(table)} cells, at "
               + (f"{min(margins):.2f}-{max(margins):.2f}x the next fastest unit." if margins else "no speed."))
    rankings = {}
    for r in table:
        cell = [x for x in result.rows if (x["input"], x["c"]) == (r["input"], r["c"])]
        rankings[f"units {r['input']} c={r['c']}: by speed"] = ranked(
            {x["model"]: x.get("b1_images_per_s") for x in cell}, {x["model"]: spreads.get(bench_name(x), 0.0) for x in cell})
    timings = [timing_entry(r.model, r.measurement.relative_iqr, r.measurement.noisy) for r in result.bench.rows]
    tables = [suite_table(result, "units"), Table.from_rows("Fastest unit per cell: the paper's GPU and ARM, and here", table,
                                                key="units_fastest")]
    return SectionOutput(finding=finding, tables=tables, claims=[claim], rankings=rankings,
                         data={"suite": result.to_dict(), "cells": table}, timings=timings,
                         notes=list(result.conventions()))


def _estimate(options: Any) -> float:
    return 27.0 if options.quick else 95.0


SECTION = register(Section("units", "Appendix Table 1(b): the units compared", 60, run, estimate_s=_estimate,
                           description="10 stacked units of v2, v1, MobileNet v2 and Xception at equal FLOPs"))
