"""The report's "Figure 2 on this machine" section: the layout-artefact detector and the claim's rule on
synthetic numbers, then one small real run (sizes monkeypatched down) checked for the paper's Fig. 2
percentages, both layouts and a verdict that follows the rule."""

from __future__ import annotations

import importlib
import json
import math
import sys
from typing import Any

import pytest

from shufflenet.report.context import ReportContext, ReportOptions
from shufflenet.report.registry import SECTIONS
from shufflenet.report.section import VERDICTS, SectionOutput

fig2 = importlib.import_module("shufflenet.report.sections.fig2")
FW = fig2.FRAMEWORK


# --- registration --------------------------------------------------------------------------------------


def test_section_registers() -> None:
    s = SECTIONS["fig2"]
    assert s is fig2.SECTION and s.key == "fig2" and s.order == 50 and not s.summary
    assert s.title == "Figure 2 on this machine: where the time goes"
    quick, full = s.expected_seconds(ReportOptions(mode="quick")), s.expected_seconds(ReportOptions(mode="full"))
    assert 30 <= quick <= 70 < full
    assert fig2.SIZES["full"]["repeats"] == 60 and fig2.SIZES["full"]["min_run_time"] == 1.2


# --- layout artefacts (synthetic op times, seconds) ------------------------------------------------------


def _model(**ops: float) -> dict[str, float]:
    return {k.replace("__", "::"): v for k, v in ops.items()}


def test_artefact_found_when_large_and_much_faster() -> None:
    nchw = {"v1": {"aten::conv2d": 5e-3, "aten::max_pool2d": 2e-3, "aten::batch_norm": 1e-3, FW: 2e-3}}
    cl = {"v1": {"aten::conv2d": 5e-3, "aten::max_pool2d": 0.25e-3, "aten::batch_norm": 1e-3, FW: 2e-3}}
    (a,) = fig2.find_artefacts(nchw, cl)
    assert (a.op, a.model, a.slow_layout, a.fast_layout) == ("aten::max_pool2d", "v1", "contiguous",
                                                             "channels_last")
    assert a.share_pct == pytest.approx(20.0) and a.speedup == pytest.approx(8.0)
    assert (a.slow_ms, a.fast_ms) == (pytest.approx(2.0), pytest.approx(0.25))
    row = fig2.artefact_rows([a])[0]
    assert row["nchw_ms"] == 2.0 and row["channels_last_ms"] == 0.25 and row["speedup"] == 8.0


def test_no_artefact_when_small_or_not_much_faster() -> None:
    # 20% of the time but only 2x faster; 10x faster but 5% of the time; the framework gap never counts.
    nchw = {"m": {"aten::conv2d": 6e-3, "aten::max_pool2d": 2e-3, "aten::add": 0.5e-3, FW: 1.5e-3}}
    cl = {"m": {"aten::conv2d": 6e-3, "aten::max_pool2d": 1e-3, "aten::add": 0.05e-3, FW: 0.1e-3}}
    assert fig2.find_artefacts(nchw, cl) == []
    # ...but each is one with thresholds loose enough (the arguments are used, not the module constants)
    found = {a.op for a in fig2.find_artefacts(nchw, cl, min_share=4.0, min_speedup=1.9)}
    assert found == {"aten::max_pool2d", "aten::add"}


def test_artefact_in_channels_last_and_op_missing_from_the_other_layout() -> None:
    nchw = {"m": {"aten::conv2d": 8e-3, "aten::batch_norm": 2e-3}}
    cl = {"m": {"aten::conv2d": 6e-3, "aten::batch_norm": 0.5e-3, "aten::contiguous": 3.5e-3}}
    arts = fig2.find_artefacts(nchw, cl)
    assert [(a.op, a.slow_layout) for a in arts] == [("aten::contiguous", "channels_last"),
                                                      ("aten::batch_norm", "contiguous")]
    assert math.isinf(arts[0].speedup) and fig2.artefact_rows(arts)[0]["speedup"] is None
    assert "is not run at all in NCHW" in fig2.artefact_note(arts[0])
    # channels_last's artefacts (35% of its time) outweigh NCHW's (20%): NCHW is the layout to judge on
    assert fig2.artefact_free_layout(arts) == "contiguous"
    assert fig2.artefact_free_layout([a for a in arts if a.slow_layout == "contiguous"]) == "channels_last"
    assert fig2.artefact_free_layout([]) == "contiguous"


def test_artefact_note_explains_the_library() -> None:
    a = fig2.Artefact("aten::max_pool2d", "shufflenet_v1_g3_x1_0", "contiguous", 23.0, 1.83, 0.26)
    note = fig2.artefact_note(a)
    for part in ("aten::max_pool2d", "ShuffleNet v1 1x g=3", "23.0%", "1.83 ms", "0.26 ms", "7.0x",
                 "implementation artefact", "'Other'"):
        assert part in note


# --- the claim's rule (synthetic shares) ---------------------------------------------------------------


@pytest.mark.parametrize(("shares", "verdict"), [
    ({"v1": 13.0, "mn": 11.0}, "holds"),
    ({"v1": 10.0, "mn": 10.0}, "holds"),
    ({"v1": 30.0, "mn": 9.9}, "partly holds"),
    ({"v1": 5.0, "mn": 2.0}, "does not hold"),
    ({"v1": 30.0, "mn": None}, "inconclusive"),
    ({"v1": math.nan, "mn": 30.0}, "inconclusive"),
    ({}, "inconclusive"),
])
def test_claim_rule(shares: dict[str, Any], verdict: str) -> None:
    assert fig2.claim_verdict(shares) == verdict


def test_claim_rule_needs_coverage_and_uses_its_threshold() -> None:
    shares = {"v1": 40.0, "mn": 30.0}
    assert fig2.claim_verdict(shares, {"v1": 1.02, "mn": 0.95}) == "holds"
    assert fig2.claim_verdict(shares, {"v1": 1.02, "mn": 0.5}) == "inconclusive"
    assert fig2.claim_verdict(shares, {"v1": 1.5, "mn": 1.0}) == "inconclusive"
    assert fig2.claim_verdict(shares, {"v1": None, "mn": 1.0}) == "inconclusive"
    assert fig2.claim_verdict(shares, threshold=35.0) == "partly holds"


def test_non_conv_share_and_the_papers_numbers() -> None:
    assert fig2.non_conv_share({"Conv": 87.0, "Elemwise": 4.0, "Data": 1.0, "Shuffle": 0.0, "Other": 8.0}) == 13.0
    assert fig2.paper_non_conv("shufflenet_v1_g3_x1_0") == {"gpu": 50.0, "arm": 13.0}
    assert fig2.paper_non_conv("torchvision:mobilenet_v2") == {"gpu": 46.0, "arm": 11.0}
    assert fig2.paper_non_conv("shufflenet_v2_x1_0") == {}
    # the paper's ARM shares, the smallest it shows, are above the rule's threshold: the paper's claim holds
    assert fig2.claim_verdict({"v1": 13.0, "mn": 11.0}) == "holds"


# --- one real run, small ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_output() -> tuple[SectionOutput, list[tuple[str, int]], list[Any]]:
    mp = pytest.MonkeyPatch()
    mp.setitem(fig2.SIZES, "quick", {"repeats": 6, "warmup": 1, "min_run_time": 0.1, "image_size": 112})
    mp.setitem(sys.modules, "matplotlib", None)  # the section never draws: its figures are drawn on demand
    bars: list[tuple[str, int]] = []
    steps: list[Any] = []

    def progress(it: Any, desc: str, total: int) -> Any:
        bars.append((desc, total))
        for x in it:
            steps.append(x)
            yield x

    try:
        out = fig2.run(ReportContext(ReportOptions(mode="quick"), progress=progress))
    finally:
        mp.undo()
    return out, bars, steps


def _table(out: SectionOutput, key: str) -> Any:
    return next(t for t in out.tables if t.key == key)


def test_run_profiles_three_models_in_both_layouts(run_output) -> None:
    out, bars, steps = run_output
    assert bars == [("Fig. 2 profiles", 6)] and len(steps) == 6
    profiles = out.data["profiles"]
    assert set(profiles) == {"contiguous", "channels_last"}
    for lay, by_model in profiles.items():
        assert set(by_model) == {"shufflenet_v1_g3_x1_0", "torchvision:mobilenet_v2", "shufflenet_v2_x1_0"}
        for d in by_model.values():
            assert d["memory_format"] == lay and d["input_size"] == [1, 3, 112, 112] and d["threads"] == 1
            assert "ops" not in d and d["buckets"] and d["total"]["median_s"] > 0
    assert out.data["sizes"]["repeats"] == 6
    json.dumps(out.data)
    assert len(out.timings) == 6 and all(0 <= t["spread"] < 10 for t in out.timings)


def test_comparison_table_has_the_papers_percentages(run_output) -> None:
    out = run_output[0]
    rows = _table(out, "fig2_comparison").rows
    assert len(rows) == 15 and {r["model"] for r in rows} == {"ShuffleNet v1 1x g=3", "MobileNet v2 1x",
                                                             "ShuffleNet v2 1x"}
    cell = {(r["model"], r["category"]): r for r in rows}
    v1, mn = cell["ShuffleNet v1 1x g=3", "Conv"], cell["MobileNet v2 1x", "Conv"]
    assert (v1["paper_gpu_pct"], v1["paper_arm_pct"]) == (50.0, 87.0)
    assert (mn["paper_gpu_pct"], mn["paper_arm_pct"]) == (54.0, 89.0)
    assert cell["ShuffleNet v1 1x g=3", "Data"]["paper_gpu_pct"] == 20.0
    assert cell["MobileNet v2 1x", "Shuffle"]["paper_gpu_pct"] is None  # no shuffle in MobileNet v2
    assert all(r["paper_gpu_pct"] is None and r["paper_arm_pct"] is None for r in rows
               if r["model"] == "ShuffleNet v2 1x")
    for model in ("ShuffleNet v1 1x g=3", "MobileNet v2 1x", "ShuffleNet v2 1x"):
        for lay in ("contiguous", "channels_last"):
            ours = [r[f"{lay}_pct"] for r in rows if r["model"] == model]
            assert sum(ours) == pytest.approx(100.0, abs=0.3)
            assert ours[0] > 20.0  # Conv is a large share of every model, in both layouts


def test_summary_and_artefact_tables(run_output) -> None:
    out = run_output[0]
    summary = _table(out, "fig2_summary").rows
    assert len(summary) == 6 and {r["layout"] for r in summary} == {"NCHW", "channels_last"}
    for r in summary:
        assert r["latency_ms"] > 0 and r["coverage"] > 0  # (how close to 1 depends on this busy machine)
        assert r["conv_pct"] + r["non_conv_pct"] == pytest.approx(100.0, abs=0.15)
        assert r["eds_pct"] <= r["non_conv_pct"] + 0.1
    found = out.data["artefacts"]
    if not found:  # one line says so, and there is no empty table
        assert [t.key for t in out.tables] == ["fig2_comparison", "fig2_summary"]
        assert any(n.startswith("No layout artefact found") for n in out.notes)
        return
    arts = _table(out, "fig2_artefacts")
    assert [t.key for t in out.tables] == ["fig2_comparison", "fig2_artefacts", "fig2_summary"]
    assert len(arts.rows) == len(found)
    for r in arts.rows:
        assert r["share_pct"] >= fig2.ARTEFACT_MIN_SHARE and (r["speedup"] is None
                                                              or r["speedup"] >= fig2.ARTEFACT_MIN_SPEEDUP)
    assert sum("implementation artefact" in n for n in out.notes) == len(arts.rows)


def test_finding_claim_and_ranking_follow_the_rule(run_output) -> None:
    out = run_output[0]
    assert "50%" in out.finding and "13%" in out.finding and "46%" in out.finding and "11%" in out.finding
    assert "Here (cpu, 1 thread(s)):" in out.finding and out.finding.count("% in NCHW") == 2
    (claim,) = out.claims
    assert claim.key == "fig2" and claim.verdict in VERDICTS
    assert claim.paper == "ShuffleNet v1: 50% GPU, 13% ARM; MobileNet v2: 46% GPU, 11% ARM"
    free = out.data["artefact_free_layout"]
    assert free in ("contiguous", "channels_last")
    shares = {n: out.data["non_conv_pct"][free][n] for n in fig2.FIG2_MODELS}
    coverages = {n: out.data["profiles"][free][n]["coverage"]["ratio"] for n in fig2.FIG2_MODELS}
    assert claim.verdict == fig2.claim_verdict(shares, coverages)
    assert f"{shares['shufflenet_v1_g3_x1_0']:.0f}%" in claim.here
    ranked = [r.label for r in out.rankings["fig2 non-conv share"]]
    by_label = {fig2._label(n): v for n, v in out.data["non_conv_pct"][free].items()}
    assert sorted(ranked) == sorted(by_label) and [by_label[m] for m in ranked] == sorted(by_label.values(),
                                                                                          reverse=True)
    assert [r.value for r in out.rankings["fig2 non-conv share"]] == sorted(by_label.values(), reverse=True)


def test_figures(run_output) -> None:
    out = run_output[0]
    assert len(out.figures) == 3 and len({f.key for f in out.figures}) == 3
    assert all("NCHW and channels_last" in f.title for f in out.figures)
    pytest.importorskip("matplotlib")
    png = out.figures[0].png()
    assert png.startswith(b"\x89PNG")
