"""The report sections built on the guideline experiments and the speed suites (G1-G4, Fig. 1 / Table 8,
Appendix Table 1(b)), the machine and "At a glance": their judging rules on made-up numbers (so each rule
can fail both ways), and the G1-G4 and units sections run for real at tiny timing sizes."""

from __future__ import annotations

import pytest

from shufflenet.measure import BenchOptions
from shufflenet.report.context import ReportContext, ReportOptions
from shufflenet.report.section import VERDICTS, Claim, SectionOutput, timing_entry
from shufflenet.report.sections import audit, fig1, glance, guidelines, machine, reuse, units
from shufflenet.report.sections._speed import fastest_status, ranking


def test_ranking_and_fastest_status():
    speeds = {"v2": 120.0, "v1": 100.0, "mnv2": 90.0, "none": None}
    assert ranking(speeds) == ["v2", "v1", "mnv2"]
    assert fastest_status(speeds, {}, "v2") == "holds"  # 1.2x beyond the 5% minimum band
    assert fastest_status(speeds, {"v2": 0.15, "v1": 0.1}, "v2") == "inconclusive"  # within 25% of noise
    assert fastest_status({"v2": 80.0, "v1": 100.0}, {}, "v2") == "does not hold"
    assert fastest_status({"v2": 98.0, "v1": 100.0}, {}, "v2") == "inconclusive"
    assert fastest_status({"v2": 98.0}, {}, "v2") == "inconclusive"  # nothing to beat


@pytest.mark.parametrize("ratio, spread, status", [
    (1.79, 0.02, "holds"), (1.30, 0.02, "holds"), (1.30, 0.40, "inconclusive"), (1.20, 0.02, "inconclusive"),
    (1.03, 0.02, "does not hold"), (None, 0.0, "inconclusive")])
def test_flops_do_not_predict_speed_rule(ratio, spread, status):
    assert fig1.flops_vs_speed_status(ratio, spread) == status


def _fig1_rows() -> list[dict]:
    """Four families at four levels: v2 fastest at 40M only (beyond noise), MobileNet v1 elsewhere."""
    speeds = {"~40M": (150, 100, 90, 120), "~140M": (60, 50, 45, 80), "~300M": (30, 25, 20, 40),
              "~500M+": (15, 12, 10, 15.3)}
    paper = {"~40M": (57.0, 56.8, 33.6, 36.4), "~140M": (24.4, 21.8, 15.9, 16.5), "~300M": (11.8, 10.3, 8.9, 10.6),
             "~500M+": (6.7, 6.4, 5.4, 6.5)}
    fams = ("ShuffleNet v2", "ShuffleNet v1 (g=3)", "MobileNet v2", "MobileNet v1")
    rows = []
    for level, values in speeds.items():
        for fam, v, arm in zip(fams, values, paper[level], strict=True):
            rows.append({"family": fam, "model": f"{fam} {level}", "group": level, "b1_images_per_s": v,
                         "b8_batches_per_s": v / 8, "paper_arm": arm, "paper_gpu": 100.0 if fam != fams[3] else 120.0})
    return rows


def test_fig1_fastest_family_per_level():
    rows = _fig1_rows()
    levels = {r["FLOPs level"]: r for r in fig1.fastest_rows(rows, {}, (1, 8))}
    assert levels["~40M"]["here b1 fastest"] == "ShuffleNet v2"
    assert levels["~40M"]["here b1: v2 fastest"] == "holds"
    assert levels["~140M"]["here b1 fastest"] == "MobileNet v1"
    assert levels["~140M"]["here b1: v2 fastest"] == "does not hold"
    assert levels["~500M+"]["here b1: v2 fastest"] == "inconclusive"  # 15.3 vs 15: within the 5% band
    assert all(r["paper ARM fastest"] == "ShuffleNet v2" for r in levels.values())
    assert all(r["paper GPU fastest"] == "MobileNet v1" for r in levels.values())
    assert levels["~40M"]["here b1: fastest/slowest"] == round(150 / 90, 2)
    ratio, status = fig1.flops_vs_speed(rows, {}, "~140M", 1)
    assert ratio == round(80 / 45, 2) and status == "holds"


def test_units_cells_judge_v2_per_cell():
    rows = []
    for side, c, sp in (("56x56", 64, (150, 100, 90)), ("28x28", 64, (100, 99, 90))):
        for model, v in zip(("ShuffleNet v2", "ShuffleNet v1", "MobileNet v2"), sp, strict=True):
            rows.append({"input": side, "c": c, "model": model, "b1_images_per_s": v,
                         "paper_gpu": {"ShuffleNet v2": 216}.get(model, 100), "paper_arm": 10.0})
    cells = units.cells(rows, {})
    assert [c["here: v2 fastest"] for c in cells] == ["holds", "inconclusive"]
    assert cells[0]["here v2 / next"] == 1.5 and cells[0]["paper GPU fastest"] == "ShuffleNet v2"


def test_status_words_and_verdict_counts():
    class V:
        def __init__(self, name, status):
            self.name, self.status = name, status

    words = guidelines._status_words([V("G1", "inconclusive"), V("G2", "holds"), V("G3", "holds"), V("G4", "holds")])
    assert words == "G1 is inconclusive; G2, G3 and G4 hold"
    assert glance.verdict_count("holds", 1) == "1 holds" and glance.verdict_count("does not hold", 2) == "2 do not hold"
    assert glance.verdict_count("inconclusive", 3) == "3 are inconclusive"


def test_claim_verdicts_are_checked():
    with pytest.raises(ValueError, match="not one of"):
        Claim("k", "c", "p", "h", "sort of")


def test_glance_and_noise_summarise_the_other_sections():
    ctx = ReportContext(ReportOptions())
    ctx.outputs["a"] = SectionOutput("f", claims=[Claim("a1", "claim", "paper", "here", "holds")],
                                     timings=[timing_entry("x", 0.02, False), timing_entry("y", 0.30, True),
                                              timing_entry("z", 0.04, False)])
    ctx.not_run["b"] = "failed: boom"
    ctx.titles["b"] = "Section B"
    rows = glance.glance_rows(ctx)
    assert [r["verdict"] for r in rows] == ["holds", "n/a"] and rows[1]["claim"] == "(section: Section B)"
    noise = machine.noise_rows(ctx)
    assert noise == [{"section": "a", "measurements": 3, "median spread %": 4.0, "max spread %": 30.0, "noisy": 1}]
    assert machine.noise_summary(noise) == (3, 1, 4.0)


def test_guidelines_section_runs_for_real(monkeypatch):
    import shufflenet.guidelines.runner as runner

    monkeypatch.setattr(runner, "QUICK_ROUNDS", 3)
    monkeypatch.setattr(runner, "QUICK_MIN_RUN_TIME", 0.005)
    out = guidelines.run(ReportContext(ReportOptions(mode="quick")))
    assert [c.key for c in out.claims] == ["g1", "g2", "g3", "g4"]
    assert all(c.verdict in VERDICTS for c in out.claims)
    g2 = next(c for c in out.claims if c.key == "g2")
    assert g2.paper == "GPU 0.26x (holds), ARM 0.70x (holds)"  # Table 2, g=8 vs g=1
    assert len(out.headlines) == 4 and out.headlines[1].startswith("The paper: g=8 runs at 0.26x")
    assert len(out.figures) == 4 and "Here (ARM channel set, batch 1, x1 columns only)" in out.finding
    assert set(out.rankings) == {"G1 x1: rows by speed", "G2 x1: rows by speed", "G3 x1: rows by speed",
                                 "G4 x1: rows by speed"}
    g2 = out.rankings["G2 x1: rows by speed"]
    assert sorted(r.label for r in g2) == ["g=1", "g=2", "g=4", "g=8"]
    assert [r.value for r in g2] == sorted((r.value for r in g2), reverse=True) and all(r.spread >= 0 for r in g2)
    assert len(out.timings) == 4 + 4 + 5 + 4  # every row of Tables 1-4 at x1


class _TinyTiming(ReportContext):
    def bench_options(self) -> BenchOptions:
        return BenchOptions(min_run_time=0.01, warmup=1, quick=True)


def test_units_section_runs_for_real():
    out = units.run(_TinyTiming(ReportOptions(mode="quick")))
    cells = out.data["cells"]
    assert [(c["input"], c["c"]) for c in cells] == [("56x56", 64), ("56x56", 128), ("56x56", 256),
                                                     ("28x28", 64), ("28x28", 128), ("28x28", 256)]
    assert all(c["paper GPU fastest"] == c["paper ARM fastest"] == "ShuffleNet v2" for c in cells)
    assert out.claims[0].paper == "fastest in 6 of 6 cells on GPU and 6 of 6 on ARM"
    assert out.claims[0].verdict in VERDICTS and len(out.timings) == 24  # 4 units x 3 widths x 2 sides
    assert out.tables[0].column_keys()[:4] == ["input", "c", "model", "width"]


def test_reuse_section_traces_the_paper_networks():
    out = reuse.run(ReportContext(ReportOptions()))
    claim = out.claims[0]
    assert claim.key == "reuse" and claim.verdict == "holds"
    rows = out.tables[0].rows
    v2 = [r for r in rows if r["model"] == "ShuffleNet v2 1x"]
    assert [r["width"] for r in v2] == [116, 232, 464] and all(r["r"] == 0.5 for r in v2)
    dense = [r for r in rows if r["model"] == "DenseNet-121"]
    assert len(dense) == 4 and all(r["r"] == 1.0 for r in dense)
    # Table 8's other dense designs: the paper's DenseNet 1x (3 stages) and CondenseNet (5 dense blocks)
    for label, stages in (("DenseNet 1x (Table 8)", 3), ("CondenseNet G=C=8", 5)):
        assert [r["r"] for r in rows if r["model"] == label] == [1.0] * stages
    assert [(x.label, x.value) for x in out.rankings["reuse: channels reused (j>=2)"]][-1] == ("ResNet-18", 0.0)
    assert "27 of 27 block pairs at c * 0.5^j" in out.finding and len(out.figures) == 2


def test_reuse_verdict_rule():
    class S:
        def __init__(self, follows):
            self.follows_paper = follows

    class R:
        def __init__(self, *follows):
            self._s = [S(f) for f in follows]

        def stages(self):
            return self._s

    assert reuse.shufflenet_verdict(R(True, True, None)) == "holds"
    assert reuse.shufflenet_verdict(R(True, False)) == "does not hold"
    assert reuse.shufflenet_verdict(R(None)) == "inconclusive"


def test_audit_section_reproduces_the_papers_readings():
    out = audit.run(ReportContext(ReportOptions()))
    assert out.claims[0].verdict == "holds" and out.claims[0].here == "every reading reproduced by the audit"
    rows = {r["model"]: r for r in out.tables[0].rows}
    assert rows["ShuffleNet v1 1x g=3"]["G2"] == "flagged" and rows["MobileNet v2 1x"]["G1"] == "flagged"
    assert rows["MobileNet v2 1x"]["G4"] == "flagged"
    assert [rows["ShuffleNet v2 1x"][g] for g in ("G1", "G2", "G3")] == ["clean", "clean", "clean"]
    assert rows["ShuffleNet v2 1x"]["G2 score"] == 100.0  # no group convolution at all
    assert len(out.figures) == 3
    worst = {(r["model"], r["guideline"]) for r in out.tables[1].rows}  # one per flagged guideline and model
    assert worst == {("ShuffleNet v1 1x g=3", "G1"), ("ShuffleNet v1 1x g=3", "G2"), ("ShuffleNet v1 1x g=3", "G4"),
                     ("MobileNet v2 1x", "G1"), ("MobileNet v2 1x", "G4")}


def test_audit_readings_rule():
    paper = {n: dict(r) for n, r in audit.PAPER_READINGS.items()}
    assert audit.readings_status(paper) == ("holds", [])
    one_off = {**paper, "shufflenet_v1_g3_x1_0": {"G2": "clean"}}
    status, wrong = audit.readings_status(one_off)
    assert status == "partly holds" and wrong == ["shufflenet_v1_g3_x1_0 G2: paper flagged, audit clean"]
    flipped = {n: {g: "clean" if v == "flagged" else "flagged" for g, v in r.items()} for n, r in paper.items()}
    assert audit.readings_status(flipped)[0] == "does not hold"
