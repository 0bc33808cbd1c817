"""``report.html`` opened in a real browser (headless Chromium through Playwright, see ``browser.py``): the
page loads with no console or page errors and no failed request (it is self-contained), every image decodes
to a non-zero natural size and is laid out legibly, every section's heading is there, and nothing makes the
page scroll sideways. Screenshots are saved (``$SHUFFLENET_SCREENSHOT_DIR`` when set) for a person to look at.

Two pages: the committed example report of this CPU re-rendered with ``--from`` (every built-in section,
real numbers), and a fresh run with a failing section (its error box must render too).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from browser import CHROMIUM, open_in_browser, screenshot_dir
from shufflenet.cli.main import main
from shufflenet.report import registry
from shufflenet.report.section import Section, SectionOutput
from shufflenet.result import Figure

pytest.importorskip("playwright.sync_api", reason="needs the playwright package")
pytest.importorskip("matplotlib", reason="the report's figures need matplotlib")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs a Chromium binary (apt-get install chromium)")

EXAMPLE = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "report-cpu" / "report.json"
BUILTIN = ("glance", "machine", "table5", "guidelines", "fig1", "fig2", "reuse", "audit", "latency", "units",
           "deploy", "training")
VIEWPORT = 1280


def _check_page(seen: dict, titles: list[str]) -> None:
    assert seen["errors"] == []
    headings = [h.split("\n")[0] for h in seen["found"]["h2"]]
    for i, title in enumerate(titles, start=1):
        assert any(h.startswith(f"{i}. {title}") for h in headings), (title, headings)
    for img in seen["images"]:
        assert img["w"] > 0 and img["h"] > 0, img  # decoded
        assert img["shown"] > 300, img  # legible, not a thumbnail
    assert all(t["rows"] >= 2 for t in seen["tables"])
    assert seen["page_width"] <= VIEWPORT  # wide tables scroll inside their box, the page does not


def test_committed_example_report_in_chromium(tmp_path):
    """Every built-in section of the committed CPU report, re-rendered from its JSON, in a real browser."""
    d = json.loads(EXAMPLE.read_text())
    assert [s["key"] for s in d["sections"]] == list(BUILTIN)
    out = tmp_path / "example"
    assert main(["--quiet", "report", "--from", str(EXAMPLE), "--out", str(out)]) == 0
    seen = open_in_browser(out / "report.html", screenshot_dir(tmp_path) / "report_example.png", width=VIEWPORT,
                           selectors={"h2": "h2", "finding": "p.finding"})
    _check_page(seen, [s["title"] for s in d["sections"]])
    figures = sum(len(s["figures"]) for s in d["sections"])
    assert len(seen["images"]) == figures >= 8
    # each section opens with its finding: the paper's result and this machine's, with numbers
    assert len(seen["found"]["finding"]) == len(BUILTIN)
    assert all("The paper" in f and any(ch.isdigit() for ch in f) for f in seen["found"]["finding"][1:])


def _draw(fig) -> None:
    fig.add_subplot(1, 1, 1).bar(["a", "b"], [3, 2])


def test_fresh_report_with_a_failed_section_in_chromium(tmp_path):
    def ok(ctx) -> SectionOutput:
        return SectionOutput("The paper: 2x. Here: 1.5x.", figures=[Figure("bars", _draw, key="bars")])

    def boom(ctx) -> SectionOutput:
        raise ValueError("injected <b>failure</b> & co")

    registry.register(Section("fake-ok", "Fake section", 95, ok), replace=True)
    registry.register(Section("fake-boom", "Fake failure", 96, boom), replace=True)
    try:
        out = tmp_path / "r"
        assert main(["--quiet", "report", "--sections", "table5,fake-ok,fake-boom", "--out", str(out)]) == 1
    finally:
        registry.unregister("fake-ok")
        registry.unregister("fake-boom")
    seen = open_in_browser(out / "report.html", screenshot_dir(tmp_path) / "report_failure.png", width=VIEWPORT,
                           selectors={"h2": "h2", "failure": "div.failure p"})
    _check_page(seen, ["At a glance", "The machine", "Table 5 re-derived", "Fake section", "Fake failure"])
    assert len(seen["images"]) == 1
    assert seen["found"]["failure"][0] == "This section failed: ValueError: injected <b>failure</b> & co"
