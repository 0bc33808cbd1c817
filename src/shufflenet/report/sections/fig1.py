"""Figure 1 / Table 8 on this machine: speed against FLOPs for ShuffleNet v2, ShuffleNet v1 (g=3),
MobileNet v2, MobileNet v1, Xception, DenseNet, IGCV3-D, CondenseNet and NASNet-A at Table 8's four
complexity levels, at batch 1 (the paper's ARM setting)
and batch 8 (its GPU setting), with the paper's GPU and ARM panels beside ours (the ``paper-fig1`` suite
of :mod:`shufflenet.measure.suites`), and which family is fastest at each FLOPs level, here and there.

Two claims of the paper are judged on the measured rows: FLOPs do not predict speed (Fig. 1: networks of
about equal FLOPs run at different speeds), and ShuffleNet v2 is the fastest family at every
level at batch 1 (Table 8's ARM column; on its GPU MobileNet v1 is faster).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shufflenet.guidelines.judging import HOLDS, INCONCLUSIVE, MIN_BAND, NOT_HOLDS
from shufflenet.report.context import ReportContext
from shufflenet.report.registry import register
from shufflenet.report.section import Claim, Section, SectionOutput, ranked, timing_entry
from shufflenet.report.sections._speed import combined, count_of, fastest_status, ranking, suite_table
from shufflenet.result import Table

BATCHES = (1, 8)
V2 = "ShuffleNet v2"
LEVELS = ("~40M", "~140M", "~300M", "~500M+")
# FLOPs "do not predict speed" at a level when the fastest and slowest family there differ by more than
# this factor (beyond any spread we measured): Table 8's ARM column differs by 1.5-1.7x at each level.
SPREAD_FACTOR = 1.25


def _family_speeds(rows: Sequence[dict[str, Any]], level: str, key: str) -> dict[str, float]:
    """The best speed of each family in one FLOPs level (a family has two rows at some levels, e.g. the
    MobileNet v2 rows at two input sizes)."""
    out: dict[str, float] = {}
    for r in rows:
        v = r.get(key)
        if r["group"] == level and isinstance(v, (int, float)):
            out[r["family"]] = max(out.get(r["family"], 0.0), float(v))
    return out


def _family_spreads(rows: Sequence[dict[str, Any]], spreads: dict[tuple[str, int], float], level: str,
                    batch: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in rows:
        if r["group"] == level:
            out[r["family"]] = max(out.get(r["family"], 0.0), spreads.get((r["model"], batch), 0.0))
    return out


def fastest_rows(rows: Sequence[dict[str, Any]], spreads: dict[tuple[str, int], float],
                 batches: Sequence[int]) -> list[dict[str, Any]]:
    """Per FLOPs level: the fastest family on the paper's GPU and ARM and here at each batch, and whether
    ShuffleNet v2 is the fastest here (noise-aware)."""
    out = []
    for level in LEVELS:
        row: dict[str, Any] = {"FLOPs level": level}
        for plat, key in (("paper GPU", "paper_gpu"), ("paper ARM", "paper_arm")):
            order = ranking(_family_speeds(rows, level, key))
            row[f"{plat} fastest"] = order[0] if order else None
        for b in batches:
            key = "b1_images_per_s" if b == 1 else f"b{b}_batches_per_s"
            speeds = _family_speeds(rows, level, key)
            order = ranking(speeds)
            row[f"here b{b} fastest"] = order[0] if order else None
            row[f"here b{b}: v2 fastest"] = fastest_status(speeds, _family_spreads(rows, spreads, level, b), V2)
            row[f"here b{b}: fastest/slowest"] = round(max(speeds.values()) / min(speeds.values()), 2) \
                if speeds else None
        out.append(row)
    return out


def flops_vs_speed(rows: Sequence[dict[str, Any]], spreads: dict[tuple[str, int], float], level: str,
                   batch: int) -> tuple[float | None, str]:
    """The fastest/slowest family ratio at one level and batch, and :func:`flops_vs_speed_status` of it with
    the band of those two families' spreads."""
    key = "b1_images_per_s" if batch == 1 else f"b{batch}_batches_per_s"
    speeds = _family_speeds(rows, level, key)
    if len(speeds) < 2:
        return None, INCONCLUSIVE
    order = ranking(speeds)
    fam_spreads = _family_spreads(rows, spreads, level, batch)
    ratio = round(speeds[order[0]] / speeds[order[-1]], 2)
    return ratio, flops_vs_speed_status(ratio, fam_spreads.get(order[0], 0.0) + fam_spreads.get(order[-1], 0.0))


def flops_vs_speed_status(ratio: float | None, spread: float) -> str:
    """Whether FLOPs fail to predict speed at one level: the fastest/slowest family ratio exceeds both
    :data:`SPREAD_FACTOR` (more than the FLOPs differences inside a Table 8 level, at most 11%) and the
    noise band (``holds``); even the top of the band keeps it under the factor (``does not hold``: FLOPs
    would predict speed there); otherwise ``inconclusive``."""
    if ratio is None:
        return INCONCLUSIVE
    band = max(MIN_BAND, spread)
    if ratio > max(SPREAD_FACTOR, 1 + band):
        return HOLDS
    if ratio * (1 + band) < SPREAD_FACTOR:
        return NOT_HOLDS
    return INCONCLUSIVE


def run(ctx: ReportContext) -> SectionOutput:
    from shufflenet.measure.suites import run_paper_fig1

    result = run_paper_fig1(ctx.bench_options(), BATCHES, machine=ctx.machine(), progress=ctx.progress)
    ctx.shared("fig1_suite", lambda: result)  # e.g. a latency-model section can reuse these timings
    rows = result.rows
    spreads = {(r.model, r.batch): r.measurement.relative_iqr for r in result.bench.rows}
    levels = fastest_rows(rows, spreads, BATCHES)

    b1 = [r["here b1: v2 fastest"] for r in levels]
    paper_arm = sum(1 for r in levels if r["paper ARM fastest"] == V2)
    fastest_claim = Claim(
        "fig1-fastest", "ShuffleNet v2 is the fastest family at every FLOPs level at batch 1 "
        "(Table 8, ARM)", f"fastest at {paper_arm} of 4 levels on ARM; on GPU MobileNet v1 is fastest",
        f"fastest at {count_of(b1)} of 4 levels at batch 1 (" + ", ".join(
            f"{r['FLOPs level']}: {r['here b1 fastest']}" for r in levels) + ")", combined(b1))
    judged = [flops_vs_speed(rows, spreads, level, 1) for level in LEVELS]
    ratios = [x for x, _ in judged]
    flops_status = combined([st for _, st in judged])
    arm_ratios = [round(max(s.values()) / min(s.values()), 2) for level in LEVELS
                  if (s := _family_speeds(rows, level, "paper_arm"))]
    flops_claim = Claim(
        "fig1-flops", "FLOPs do not predict speed: networks of about equal FLOPs run at different speeds "
        "(Sec. 1, Fig. 1)", "fastest/slowest family at equal FLOPs on ARM: " + "/".join(f"{x:g}x" for x in arm_ratios),
        "at batch 1: " + "/".join(f"{x:g}x" for x in ratios if x is not None), flops_status)

    rankings = {f"Fig. 1 {level} b{b}: families by speed":
                ranked(_family_speeds(rows, level, "b1_images_per_s" if b == 1 else f"b{b}_batches_per_s"),
                       _family_spreads(rows, spreads, level, b)) for level in LEVELS for b in BATCHES}
    here = ", ".join(f"{r['FLOPs level']} {r['here b1 fastest']}" for r in levels)
    finding = (f"The paper (Table 8): ShuffleNet v2 is the fastest at all four FLOPs levels on ARM (batch 1) "
               f"and MobileNet v1 on GPU (batch 8); at equal FLOPs the families differ by up to "
               f"{max(arm_ratios):g}x on ARM. Here, fastest at batch 1: {here}; the families differ by up to "
               f"{max(x for x in ratios if x is not None):g}x at equal FLOPs.")
    tables = [suite_table(result, "fig1"),
              Table.from_rows("Fastest family at each FLOPs level: the paper's GPU and ARM, and here", levels,
                              key="fig1_fastest",
                              notes=["'v2 fastest' = ShuffleNet v2 beats the fastest other family by more than "
                                     f"the measured spreads (at least {MIN_BAND:.0%}): holds / does not hold / "
                                     "inconclusive", "a family's speed at a level is its fastest row there"])]
    timings = [timing_entry(f"{r.model} b{r.batch}", r.measurement.relative_iqr, r.measurement.noisy)
               for r in result.bench.rows]
    return SectionOutput(finding=finding, tables=tables, figures=result.figures(),
                         claims=[flops_claim, fastest_claim], rankings=rankings,
                         data={"suite": result.to_dict(), "fastest": levels}, timings=timings,
                         notes=list(result.conventions()))


def _estimate(options: Any) -> float:
    return 70.0 if options.quick else 280.0


SECTION = register(Section("fig1", "Figure 1 / Table 8 on this machine: speed vs FLOPs", 40, run,
                           estimate_s=_estimate,
                           description="ShuffleNet v2/v1, MobileNet v2/v1 at Table 8's FLOPs, ours beside the "
                                       "paper's GPU and ARM"))
