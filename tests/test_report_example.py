"""The committed example report of this project's CPU (``benchmarks/results/report-cpu/``, what the README
links): a whole quick report, every section run, within the 6-minute budget of ``make run``, every figure
file beside it, and readable back (``--from``) by this package."""

from __future__ import annotations

import collections
import json
from pathlib import Path

from shufflenet.report.document import load_report
from shufflenet.report.selection import section_keys

EXAMPLE = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "report-cpu"
BUDGET_S = 360  # `make run`: the quick report in at most 6 minutes on the 2-core project machine


def test_example_is_a_whole_quick_report_within_budget():
    d = json.loads((EXAMPLE / "report.json").read_text())
    assert d["options"]["mode"] == "quick" and d["failed_sections"] == []
    assert [s["key"] for s in d["sections"]] == section_keys()
    assert all(s["status"] == "ok" for s in d["sections"]), [(s["key"], s["reason"]) for s in d["sections"]]
    assert d["wall_s"] <= BUDGET_S
    assert sum(s["wall_s"] for s in d["sections"]) <= d["wall_s"]


def test_example_tables_have_unique_keys_and_figures_exist():
    d = json.loads((EXAMPLE / "report.json").read_text())
    keys = collections.Counter(t["key"] for s in d["sections"] for t in s["tables"])
    assert [k for k, n in keys.items() if n > 1] == []  # render(report, "csv", table=KEY) finds one
    for s in d["sections"]:
        for f in s["figures"]:
            assert (EXAMPLE / f["file"]).read_bytes().startswith(b"\x89PNG")
    md = (EXAMPLE / "report.md").read_text()
    assert all(f"(<{f['file']}>)" in md for s in d["sections"] for f in s["figures"])


def test_example_reads_back():
    report = load_report(EXAMPLE)
    assert report.section("table5").claims[0].verdict == "holds"
    verdicts = {c.key: c.verdict for _, c in report.claims()}
    assert set(verdicts) >= {"table5", "g1", "g2", "g3", "g4", "fig1-flops", "fig1-fastest", "fig2", "units"}
