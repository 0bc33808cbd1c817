"""Feature reuse (Sec. 4, Fig. 4): how many channels of block i reach block j unchanged, traced in one
forward pass by :func:`shufflenet.audit.feature_reuse`, for ShuffleNet V2 1x (the paper's c * r^j with
r = 0.5), DenseNet-121 (every layer's output reaches every later layer of its dense block), ResNet-18
(the additive shortcut passes no channel unchanged), and Table 8's other dense designs: the paper's DenseNet
1x re-implementation and CondenseNet (G=C=8), whose learned group convs read a subset of the dense input. Structural, so exact and independent of the machine:
no timing, a few seconds.
"""

from __future__ import annotations

from typing import Any

from shufflenet.report.context import ReportContext
from shufflenet.report.registry import register
from shufflenet.report.section import Claim, Section, SectionOutput, ranked
from shufflenet.result import Column, Table

# (registry name, label): the paper's network, the dense relative it cites, and the additive shortcut.
MODELS = (("shufflenet_v2_x1_0", "ShuffleNet v2 1x"), ("torchvision:densenet121", "DenseNet-121"),
          ("torchvision:resnet18", "ResNet-18"), ("densenet_light_x1_0", "DenseNet 1x (Table 8)"),
          ("condensenet_g8", "CondenseNet G=C=8"))
INPUT = (1, 3, 224, 224)


def stage_rows(label: str, report: Any) -> list[dict[str, Any]]:
    return [{"model": label, **{k: v for k, v in s.to_dict().items() if k not in ("first_block", "last_block")}}
            for s in report.stages()]


def shufflenet_verdict(report: Any) -> str:
    """``holds`` when every stage with checkable pairs follows c * 0.5^j (exact, or within one channel where
    c * 0.5^j is not an integer), ``does not hold`` when a stage does not, else ``inconclusive``."""
    checks = [s.follows_paper for s in report.stages() if s.follows_paper is not None]
    if not checks:
        return "inconclusive"
    return "holds" if all(checks) else "does not hold"


def run(ctx: ReportContext) -> SectionOutput:
    from shufflenet.audit import feature_reuse
    from shufflenet.models import create_model

    reports = {}
    for name, label in ctx.progress(MODELS, "feature reuse", len(MODELS)):
        reports[name] = feature_reuse(create_model(name), INPUT, model_name=label, log_scale=name == MODELS[0][0])
    v2, dense, res, dense_t8, condense = (reports[n] for n, _ in MODELS)
    stages = [row for n, label in MODELS for row in stage_rows(label, reports[n])]
    total_reused = {label: sum(reports[n].reused(i) for i in range(len(reports[n].blocks))) for n, label in MODELS}
    v2_r = "/".join(f"{s.r:.3f}" for s in v2.stages() if s.r is not None)
    dense_r = "/".join(f"{s.r:.2f}" for s in dense.stages() if s.r is not None)
    relatives = "; ".join(f"{label} r = " + "/".join(f"{s.r:.2f}" for s in rep.stages() if s.r is not None)
                          for rep, label in ((dense_t8, MODELS[3][1]), (condense, MODELS[4][1])))
    verdict = shufflenet_verdict(v2)
    checked = sum(s.pairs for s in v2.stages())
    exact = sum(s.exact for s in v2.stages())
    matched = exact + sum(s.rounded for s in v2.stages())
    finding = (f"The paper (Sec. 4, Fig. 4): in ShuffleNet V2, block i's channels reach block i+j directly as "
               f"c * r^j with r = 0.5, a feature reuse like DenseNet's that decays with distance. Here, traced: "
               f"r = {v2_r} in ShuffleNet v2 1x's three stages ({matched} of {checked} block pairs at c * 0.5^j: "
               f"{exact} exactly, {matched - exact} within one channel where it is not a whole number); DenseNet-121 r = "
               f"{dense_r} (full reuse inside each dense block), and the same for the paper's other dense designs "
               f"({relatives}); ResNet-18 reuses {total_reused['ResNet-18']} channels unchanged.")
    claim = Claim("reuse", "ShuffleNet V2 reuses features: block i's channels reach block i+j as c * 0.5^j "
                  "(Sec. 4, Fig. 4)", "r = 0.5 (the split ratio); DenseNet: full reuse",
                  f"r = {v2_r}; {matched}/{checked} pairs at c * 0.5^j ({exact} exact); DenseNet r = {dense_r}; ResNet-18: "
                  f"{total_reused['ResNet-18']} channels", verdict)
    summary = Table("Feature reuse per stage: ShuffleNet v2 1x, DenseNet-121, ResNet-18, DenseNet 1x (Table 8), "
                    "CondenseNet (structural, traced)",
                    _stage_columns(), stages, key="reuse_stages",
                    notes=[*v2.tables()[0].notes, "reused (j>=2) = channels reaching a block beyond the next one"])
    figures = [f for n, _ in MODELS[:2] for f in reports[n].figures()]
    for i, f in enumerate(figures):
        f.key = f"reuse_{i}_{f.key}"
    per_block = v2.tables()[1]
    per_block.key = "reuse_blocks"
    return SectionOutput(finding=finding, tables=[summary, per_block], figures=figures, claims=[claim],
                         rankings={"reuse: channels reused (j>=2)": ranked(total_reused)},
                         data={label: reports[n].to_dict() for n, label in MODELS},
                         notes=list(v2.conventions()))


def _stage_columns() -> list[Column]:
    return [Column("model"), Column("stage"), Column("blocks"), Column("width", "c"),
            Column("r", "measured r", fmt=".3f"), Column("paper_r", "paper r", fmt=".1f"),
            Column("reused_channels", "reused (j>=2)"), Column("pairs", "c*r^j pairs"), Column("exact"),
            Column("rounded"), Column("follows_paper", "follows c*r^j")]


SECTION = register(Section("reuse", "Feature reuse (Fig. 4)", 55, run, estimate_s=lambda options: 2.0,
                           description="channels of block i reaching block j unchanged: ShuffleNet V2, "
                                       "DenseNet-121, ResNet-18, DenseNet 1x, CondenseNet"))
