"""G1-G4 on this machine: the paper's four controlled experiments (Sec. 2, Tables 1-4) re-run here with
:func:`shufflenet.guidelines.run_guidelines`, each table beside the paper's GPU and ARM rows, with its
bar chart and its noise-aware verdict. Quick mode runs the x1 columns with shorter timing (as
``shufflenet guidelines --quick``); full mode runs every column at the committed benchmark's sizes.
"""

from __future__ import annotations

from typing import Any

from shufflenet.report.context import ReportContext
from shufflenet.report.registry import register
from shufflenet.report.section import (
    Claim,
    Ranked,
    Section,
    SectionOutput,
    ranked,
    timing_entry,
    verdict_verb,
)

# What each guideline claims (Sec. 2), for the "At a glance" table.
CLAIMS = {
    "g1": "G1: equal channel width minimises MAC, so 1:1 convolutions run fastest (Table 1)",
    "g2": "G2: excessive group convolution increases MAC and slows the network (Table 2)",
    "g3": "G3: network fragmentation reduces parallelism and slows the network (Table 3)",
    "g4": "G4: element-wise operations (ReLU, shortcut add) are not negligible (Table 4)",
}


def _paper_text(verdict: Any) -> str:
    def side(cols: Any) -> str:
        return "/".join(c.effect_str for c in cols)

    return (f"GPU {side(verdict.paper_gpu)} ({verdict.paper_gpu_status}), "
            f"ARM {side(verdict.paper_arm)} ({verdict.paper_arm_status})")


def _status_words(verdicts: list[Any]) -> str:
    groups: dict[str, list[str]] = {}
    for v in verdicts:
        groups.setdefault(v.status, []).append(v.name)
    parts = []
    for status, names in groups.items():
        joined = " and ".join(names) if len(names) < 3 else ", ".join(names[:-1]) + " and " + names[-1]
        parts.append(f"{joined} {verdict_verb(status, len(names))}")
    return "; ".join(parts)


def run(ctx: ReportContext) -> SectionOutput:
    from shufflenet.guidelines import RunOptions, run_guidelines

    o = ctx.options
    opts = RunOptions(device=o.device, threads=o.threads, quick=o.quick).resolved()
    result = run_guidelines("all", opts, progress=ctx.progress)
    verdicts = list(result.verdicts)
    claims = [Claim(v.guideline, CLAIMS.get(v.guideline, v.claim), _paper_text(v),
                    ", ".join(c.effect_str for c in v.columns), v.status) for v in verdicts]
    rankings: dict[str, list[Ranked]] = {}
    timings = []
    for t in result.results:
        for m in t.multipliers:
            col = t.column(m)
            rankings[f"{t.name} x{m}: rows by speed"] = ranked({r.spec.label: r.images_per_s for r in col},
                                                               {r.spec.label: r.spread for r in col})
        timings += [timing_entry(f"{t.name} {r.spec.label} x{r.spec.column}", r.spread, r.noisy) for r in t.rows]
    columns = "x1 columns only" if o.quick else "all columns"
    finding = (f"The paper finds all four guidelines on GPU and ARM (Tables 1-4). Here ({opts.channels.upper()} "
               f"channel set, batch {opts.batch}, {columns}): {_status_words(verdicts)}.")
    tables = [tb for t in result.results for tb in t.tables()]
    verdict_table = next((tb for tb in result.tables() if tb.title.startswith("Verdicts")), None)
    if verdict_table is not None:
        verdict_table.notes = []  # the headlines are shown above the tables; the lines are in each table
        tables.append(verdict_table)
    return SectionOutput(finding=finding, headlines=result.headlines(), tables=tables,
                         figures=result.figures(), claims=claims, rankings=rankings,
                         data={"guidelines": result.to_dict()}, timings=timings,
                         notes=list(result.conventions()))


def _estimate(options: Any) -> float:
    return 35.0 if options.quick else 240.0


SECTION = register(Section("guidelines", "G1-G4 on this machine", 30, run, estimate_s=_estimate,
                           description="the paper's Tables 1-4 re-run here, with verdicts"))
