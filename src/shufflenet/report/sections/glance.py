"""At a glance: one table of the paper's claims and this machine's verdicts, first in the page. It runs
after every other section (a summary section) and collects their claims; a section that failed or could
not run here is listed with why, so the table never silently drops a claim."""

from __future__ import annotations

from typing import Any

from shufflenet.report.context import ReportContext
from shufflenet.report.registry import register
from shufflenet.report.section import Section, SectionOutput, verdict_verb
from shufflenet.result import Column, Table

COLUMNS = [Column("claim", "the paper's claim"), Column("paper", "the paper measured"),
           Column("here", "this machine"), Column("verdict", "verdict here"), Column("section")]


def glance_rows(ctx: ReportContext) -> list[dict[str, Any]]:
    rows = []
    for key, out in ctx.outputs.items():
        rows += [{**c.to_dict(), "section": key} for c in out.claims]
    for key, reason in ctx.not_run.items():
        rows.append({"key": key, "claim": f"(section: {ctx.titles.get(key, key)})", "paper": "", "here": reason,
                     "verdict": "n/a",
                     "section": key})
    return rows


def verdict_count(verdict: str, n: int) -> str:
    """``3 hold``, ``1 holds``, ``2 are inconclusive``, ``1 is mixed``."""
    return f"{n} {verdict_verb(verdict, n)}"


def run(ctx: ReportContext) -> SectionOutput:
    rows = glance_rows(ctx)
    judged = [r for r in rows if r["verdict"] != "n/a"]
    counts: dict[str, int] = {}
    for r in judged:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    summary = ", ".join(verdict_count(v, n) for v, n in counts.items()) or "nothing judged"
    where = ctx.shared("where", lambda: ctx.options.device)
    finding = (f"Of the paper's {len(judged)} claim{'' if len(judged) == 1 else 's'} checked on this machine ({where}): {summary}. The paper's "
               "point (Sec. 1): speed depends on the platform, not on FLOPs alone, so a verdict here may differ "
               "from its GPU and ARM ones.")
    return SectionOutput(finding=finding, tables=[Table("The paper's claims and this machine's verdicts", COLUMNS,
                                                        rows, key="glance")],
                         data={"claims": rows})


SECTION = register(Section("glance", "At a glance", 0, run, summary=True, estimate_s=lambda options: 0.0,
                           description="the paper's claims and this machine's verdicts"))
