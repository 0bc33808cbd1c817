"""The guideline audit (Sec. 3, "Discussion"): the paper reads other networks against G1-G4 — ShuffleNet v1
breaks G2 (its group convolutions), MobileNet v2 breaks G1 (its inverted bottleneck) and G4 (depthwise +
ReLU on thick maps) — and builds ShuffleNet V2 to follow G1-G3. :func:`shufflenet.audit.audit_model` reads
each network's cost report the same way; this section audits ShuffleNet v1 1x (g=3), ShuffleNet v2 1x,
MobileNet v2 1x and ResNet-18 (counting only in quick mode; full mode adds each flagged layer's measured
time beside its guideline-compliant rebuild at equal FLOPs).
"""

from __future__ import annotations

from typing import Any

from shufflenet.report.context import ReportContext, ReportOptions
from shufflenet.report.registry import register
from shufflenet.report.section import Claim, Section, SectionOutput, ranked
from shufflenet.result import Table

MODELS = (("shufflenet_v1_g3_x1_0", "ShuffleNet v1 1x g=3"), ("shufflenet_v2_x1_0", "ShuffleNet v2 1x"),
          ("torchvision:mobilenet_v2", "MobileNet v2 1x"), ("torchvision:resnet18", "ResNet-18"))
GUIDELINES = ("G1", "G2", "G3", "G4")
# The paper's readings (Sec. 3): which guidelines each network breaks ("flagged") and follows ("clean").
PAPER_READINGS: dict[str, dict[str, str]] = {
    "shufflenet_v1_g3_x1_0": {"G2": "flagged"},
    "torchvision:mobilenet_v2": {"G1": "flagged", "G4": "flagged"},
    "shufflenet_v2_x1_0": {"G1": "clean", "G2": "clean", "G3": "clean"},
}
INPUT = (1, 3, 224, 224)


def readings_status(verdicts: dict[str, dict[str, str]]) -> tuple[str, list[str]]:
    """Whether the audit reproduces the paper's readings: ``holds`` when every reading matches, ``partly
    holds`` when some do, ``does not hold`` when none does; and the readings that differ."""
    checks = [(name, g, want, verdicts.get(name, {}).get(g)) for name, reading in PAPER_READINGS.items()
              for g, want in reading.items()]
    wrong = [f"{name} {g}: paper {want}, audit {got}" for name, g, want, got in checks if got != want]
    if not wrong:
        return "holds", []
    return ("does not hold" if len(wrong) == len(checks) else "partly holds"), wrong


def run(ctx: ReportContext) -> SectionOutput:
    from shufflenet.audit import MeasureOptions, audit_model

    o = ctx.options
    measure = not o.quick and not o.cuda  # the audit's layer timings run on the CPU
    options = MeasureOptions(threads=o.resolved_threads()) if measure else None
    reports = {}
    for name, label in ctx.progress(MODELS, "guideline audit", len(MODELS)):
        reports[name] = audit_model(name, INPUT, measure=measure, name=label, options=options)
    verdicts = {n: {g: r.verdict(g) for g in GUIDELINES} for n, r in reports.items()}
    rows = []
    for name, label in MODELS:
        r = reports[name]
        row: dict[str, Any] = {"model": label}
        for g in GUIDELINES:
            row[f"{g}"] = r.verdict(g)
            row[f"{g} score"] = round(r.score(g), 1)
        row["flagged findings"] = ", ".join(f"{g} x{len(r.flagged(g))}" for g in GUIDELINES if r.flagged(g)) or "-"
        rows.append(row)
    status, wrong = readings_status(verdicts)
    v1, mn, v2 = (verdicts[n] for n in ("shufflenet_v1_g3_x1_0", "torchvision:mobilenet_v2", "shufflenet_v2_x1_0"))
    r_v1, r_mn = reports["shufflenet_v1_g3_x1_0"], reports["torchvision:mobilenet_v2"]
    finding = (f"The paper (Sec. 3): ShuffleNet v1 breaks G2, MobileNet v2 breaks G1 and G4, ShuffleNet v2 follows "
               f"G1-G3. The audit, from each network's counted MAC: ShuffleNet v1 G2 {v1['G2']} (score "
               f"{r_v1.score('G2'):.0f}), MobileNet v2 G1 {mn['G1']} ({r_mn.score('G1'):.0f}) and G4 {mn['G4']} "
               f"(element-wise ops {100 * r_mn.elementwise_share():.0f}% of its MAC), ShuffleNet v2 G1/G2/G3 "
               f"{v2['G1']}/{v2['G2']}/{v2['G3']}.")
    claim = Claim("audit", "The paper's readings of other networks: ShuffleNet v1 breaks G2, MobileNet v2 G1 and G4; "
                  "ShuffleNet v2 follows G1-G3 (Sec. 3)", "its Discussion (no numbers)",
                  "; ".join(wrong) if wrong else "every reading reproduced by the audit", status)
    table = Table.from_rows("Guideline audit: verdict and score (0-100) per guideline", rows, key="audit_summary",
                            notes=next(iter(reports.values())).conventions())
    offenders = [{"model": label, **worst_per_guideline} for name, label in MODELS
                 for worst_per_guideline in _worst_per_guideline(reports[name])]
    tables = [table, Table.from_rows("The costliest flagged finding of each guideline, per network", offenders,
                                     key="audit_offenders")]
    figures = []
    for name, _label in MODELS[:3]:
        for f in reports[name].figures():
            f.key = f"audit_{name.replace('torchvision:', 'tv_')}"
            figures.append(f)
    return SectionOutput(finding=finding, tables=tables, figures=figures, claims=[claim],
                         rankings={"audit: G4 score": ranked({label: reports[n].score("G4") for n, label in MODELS})},
                         data={label: reports[n].to_dict() for n, label in MODELS})


def _worst_per_guideline(report: Any) -> list[dict[str, Any]]:
    """The first (costliest) of each guideline's top offenders."""
    seen: dict[str, dict[str, Any]] = {}
    for row in report.top_offenders():
        seen.setdefault(row["guideline"], row)
    return list(seen.values())


def _estimate(options: ReportOptions) -> float:
    return 2.0 if options.quick else 45.0  # measured: 1 s and 41 s


SECTION = register(Section("audit", "Guideline audit of the paper's networks", 57, run, estimate_s=_estimate,
                           description="ShuffleNet v1/v2, MobileNet v2 and ResNet-18 read against G1-G4"))
