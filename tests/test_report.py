"""The report's core: sections registered in one place, failures isolated in their section (exit code 1),
unavailable sections said so, atomic writes that never touch an earlier report, ``--from`` re-rendering
without measuring, ``--compare`` listing what differs, and one-line errors with exit code 2 for bad input.

Fake sections (registered for a test and removed after it) keep these tests fast; the real sections have
their own test files, and the counting-only Table 5 section runs here for real.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shufflenet.cli.main import main
from shufflenet.errors import UserInputError
from shufflenet.report import registry, selection
from shufflenet.report.context import ReportContext, ReportOptions
from shufflenet.report.document import FORMAT_VERSION, load_report
from shufflenet.report.runner import run_report
from shufflenet.report.section import Claim, Section, SectionOutput, SectionUnavailable, ranked, timing_entry
from shufflenet.report.writer import check_out_dir, write_report
from shufflenet.result import Figure, Table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _draw(fig) -> None:
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([1, 2, 3], [3, 1, 2])


def _speed_section(key: str, verdict: str, order: int = 91, speeds: dict[str, float] | None = None) -> Section:
    def run(ctx: ReportContext) -> SectionOutput:
        return SectionOutput(
            finding=f"The paper: A beats B. Here: {verdict}.",
            tables=[Table.from_rows(f"{key} table", [{"model": "a", "img/s": 12.5}, {"model": "b", "img/s": 7.25}],
                                    key=key)],
            figures=[Figure(f"{key} plot", _draw, key="plot", size=(3, 2), dpi=50)],
            claims=[Claim(f"{key}-claim", "A is faster than B", "2x on GPU", "1.7x", verdict)],
            rankings={f"{key} by speed": ranked(speeds or {"a": 12.5, "b": 7.25}, {"a": 0.02, "b": 0.02})},
            data={"speeds": {"a": 12.5, "b": 7.25}}, timings=[timing_entry("a", 0.02, False)])

    return Section(key, f"Fake {key}", order, run, estimate_s=lambda o: 0.1)


def _failing(key: str = "boom", order: int = 92) -> Section:
    def run(ctx: ReportContext) -> SectionOutput:
        raise RuntimeError("injected failure\nsecond line")

    return Section(key, "Fails on purpose", order, run)


def _unavailable(key: str = "needs-gpu", order: int = 93) -> Section:
    def run(ctx: ReportContext) -> SectionOutput:
        raise SectionUnavailable("no CUDA device here")

    return Section(key, "Needs a GPU", order, run)


@pytest.fixture
def fake_sections():
    added: list[str] = []

    def add(*sections: Section) -> None:
        for s in sections:
            registry.register(s, replace=True)
            added.append(s.key)

    yield add
    for k in added:
        registry.unregister(k)


def test_builtin_sections_register_in_page_order():
    keys = selection.section_keys()
    assert keys[:2] == ["glance", "machine"]
    for k in ("table5", "guidelines", "fig1", "fig2", "latency", "units", "deploy", "training"):
        assert k in keys
    assert keys.index("guidelines") < keys.index("fig1") < keys.index("fig2") < keys.index("latency") \
        < keys.index("units") < keys.index("deploy") < keys.index("training")
    with pytest.raises(ValueError, match="already registered"):
        registry.register(selection.get_section("table5"))


def test_unknown_section_suggests_the_nearest():
    with pytest.raises(UserInputError, match="did you mean 'table5'"):
        selection.get_section("tabel5")


def test_failure_is_isolated_and_unavailable_is_said(fake_sections, tmp_path):
    fake_sections(_speed_section("fast", "holds"), _failing(), _unavailable())
    report = run_report(ReportOptions(sections=("fast", "boom", "needs-gpu")))
    by = {s.key: s for s in report.sections}
    assert by["fast"].status == "ok" and by["boom"].status == "failed" and by["needs-gpu"].status == "unavailable"
    assert by["boom"].error == "RuntimeError: injected failure"
    assert "Traceback" in by["boom"].traceback and "injected failure" in by["boom"].traceback
    assert by["needs-gpu"].reason == "no CUDA device here"
    # the summaries still ran: At a glance lists the fake claim and says why the others have none
    glance = {r["key"]: r for r in by["glance"].data["claims"]}
    assert glance["fast-claim"]["verdict"] == "holds"
    assert glance["boom"]["here"] == "failed: injected failure"
    assert glance["needs-gpu"]["here"] == "not run here: no CUDA device here"
    noise = {r["section"]: r for r in by["machine"].data["noise"]}
    assert noise["fast"]["measurements"] == 1 and noise["fast"]["median spread %"] == 2.0
    files = write_report(report, tmp_path / "r")
    html = (tmp_path / "r" / "report.html").read_text()
    assert "This section failed:</strong> RuntimeError: injected failure" in html
    assert "Not run here:</strong> no CUDA device here" in html
    assert [p.name for p in files][-1] == "report.json"
    pngs = [p for p in files if p.suffix == ".png"]
    assert len(pngs) == 1 and pngs[0].read_bytes().startswith(PNG_MAGIC)


def test_cli_exit_code_is_1_only_when_a_section_failed(fake_sections, tmp_path, capsys):
    fake_sections(_speed_section("fast", "holds"), _failing(), _unavailable())
    assert main(["--quiet", "report", "--sections", "fast,needs-gpu", "--out", str(tmp_path / "ok")]) == 0
    assert main(["--quiet", "report", "--sections", "fast,boom", "--out", str(tmp_path / "bad")]) == 1
    # the failed run is still written whole
    d = json.loads((tmp_path / "bad" / "report.json").read_text())
    assert d["failed_sections"] == ["boom"]
    assert {s["key"]: s["status"] for s in d["sections"]}["fast"] == "ok"
    out = capsys.readouterr()
    assert "report: " in out.out and "boom: RuntimeError: injected failure" in out.err


def test_report_json_holds_the_command_environment_and_raw_results(fake_sections, tmp_path):
    fake_sections(_speed_section("fast", "holds"))
    assert main(["--quiet", "report", "--sections", "fast", "--out", str(tmp_path / "r")]) == 0
    d = json.loads((tmp_path / "r" / "report.json").read_text())
    assert d["format"] == "shufflenet-report" and d["format_version"] == FORMAT_VERSION
    assert d["command"][0] == "shufflenet"
    assert d["environment"]["threads"] == 1 and d["environment"]["cpu_model"]
    fast = next(s for s in d["sections"] if s["key"] == "fast")
    assert fast["data"] == {"speeds": {"a": 12.5, "b": 7.25}}
    assert fast["tables"][0]["rows"][1] == {"model": "b", "img/s": 7.25}
    assert fast["figures"][0]["file"] == "fig_fast_0_plot.png"
    assert (tmp_path / "r" / "fig_fast_0_plot.png").read_bytes().startswith(PNG_MAGIC)
    md = (tmp_path / "r" / "report.md").read_text()
    assert "![fast plot](<fig_fast_0_plot.png>)" in md and "| a | 12.50 |" in md


def test_an_existing_report_is_never_overwritten(fake_sections, tmp_path, capsys):
    fake_sections(_speed_section("fast", "holds"))
    out = tmp_path / "r"
    assert main(["--quiet", "report", "--sections", "fast", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main(["--quiet", "report", "--sections", "fast", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already holds a report" in err[0]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_unrelated_files_in_out_are_kept(fake_sections, tmp_path):
    fake_sections(_speed_section("fast", "holds"))
    out = tmp_path / "r"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["--quiet", "report", "--sections", "fast", "--out", str(out)]) == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "report.html").exists() and not list(tmp_path.glob(".report-staging-*"))


def test_a_crash_while_writing_leaves_no_half_report(fake_sections, tmp_path, monkeypatch):
    import shufflenet.report.writer as writer

    fake_sections(_speed_section("fast", "holds"))
    report = run_report(ReportOptions(sections=("fast",)))
    real = writer.write_atomic
    calls = []

    def flaky(path, data):
        calls.append(Path(path).name)
        if Path(path).name == "report.md":
            raise OSError(28, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(writer, "write_atomic", flaky)
    with pytest.raises(OSError):
        write_report(report, tmp_path / "r")
    assert "report.md" in calls
    assert not (tmp_path / "r").exists()  # neither a report.html nor a report.json that looks whole
    assert not list(tmp_path.glob(".report-staging-*"))


def test_bad_out_is_a_one_line_error(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["report", "--sections", "table5", "--out", str(f)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0]
    assert f.read_text() == "x"


@pytest.mark.parametrize("argv, message", [
    (["--sections", "tabel5"], "did you mean 'table5'"),
    (["--sections", ","], "--sections is empty"),
    (["--threads", "0"], "expected an integer"),
    (["--quick", "--full"], "not allowed with argument"),
    (["--train-run", "/nonexistent/run"], "training run directory not found"),
    (["--from", "/nonexistent/report.json"], "no such report"),
    (["--from", "a.json", "--compare", "a.json", "b.json"], "two different commands"),
])
def test_bad_arguments_exit_2(argv, message, tmp_path, capsys):
    assert main(["report", *argv, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "r").exists()


def test_cuda_without_cuda_is_bad_input(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["report", "--device", "cuda", "--out", str(tmp_path / "r")]) == 2
    assert "no CUDA device is available" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_from_rerenders_without_measuring(fake_sections, tmp_path, monkeypatch):
    fake_sections(_speed_section("fast", "holds"))
    first = tmp_path / "first"
    assert main(["--quiet", "report", "--sections", "fast", "--out", str(first)]) == 0
    png = (first / "fig_fast_0_plot.png").read_bytes()

    def no_measuring(ctx):
        raise AssertionError("--from must not run a section")

    registry.register(Section("fast", "Fake fast", 91, no_measuring), replace=True)
    again = tmp_path / "again"
    assert main(["--quiet", "report", "--from", str(first / "report.json"), "--out", str(again)]) == 0
    a = json.loads((first / "report.json").read_text())
    b = json.loads((again / "report.json").read_text())
    assert a["sections"] == b["sections"] and a["created"] == b["created"]
    assert (again / "fig_fast_0_plot.png").read_bytes() == png
    assert (first / "report.md").read_text() == (again / "report.md").read_text()
    # a directory works as well as the file; writing into the input's own directory does not
    assert main(["--quiet", "report", "--from", str(first), "--out", str(first)]) == 2


def test_from_with_a_missing_figure_file_says_so(fake_sections, tmp_path):
    fake_sections(_speed_section("fast", "holds"))
    first = tmp_path / "first"
    assert main(["--quiet", "report", "--sections", "fast", "--out", str(first)]) == 0
    (first / "fig_fast_0_plot.png").unlink()
    report = load_report(first)
    write_report(report, tmp_path / "again")
    assert "is not beside the report.json" in (tmp_path / "again" / "report.html").read_text()


@pytest.mark.parametrize("content, message", [
    ("not json", "not JSON"),
    ('{"a": 1}', "is not a shufflenet report"),
    ('{"format": "shufflenet-report", "format_version": 99, "sections": []}', "newer shufflenet"),
    ('{"format": "shufflenet-report", "format_version": 1, "sections": [{"key": "x"}]}', "not a valid"),
])
def test_not_a_report_is_refused(content, message, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    with pytest.raises(UserInputError, match=message):
        load_report(bad)
    assert main(["report", "--from", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert main(["report", "--compare", str(bad), str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and not (tmp_path / "o").exists()
    assert bad.read_text() == content


def test_compare_lists_every_verdict_and_ranking_that_differs(fake_sections, tmp_path, capsys):
    fake_sections(_speed_section("fast", "holds"))
    assert main(["--quiet", "report", "--sections", "fast", "--out", str(tmp_path / "a")]) == 0
    fake_sections(_speed_section("fast", "does not hold", speeds={"a": 7.0, "b": 12.0}))
    assert main(["--quiet", "report", "--sections", "fast", "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    out = tmp_path / "cmp"
    assert main(["--quiet", "report", "--compare", str(tmp_path / "a"), str(tmp_path / "b" / "report.json"),
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "verdict fast-claim: A holds / B does not hold" in text
    assert "ranking fast by speed: a > b in A, b > a in B" in text
    d = json.loads((out / "compare.json").read_text())
    assert [r["key"] for r in d["differences"]["verdicts"]] == ["fast-claim"]
    assert [r["ranking"] for r in d["differences"]["rankings"]] == ["fast by speed"]
    assert [r["ranking"] for r in d["differences"]["reversals"]] == ["fast by speed"]
    page = (out / "compare.html").read_text()
    assert page.count('class="side-by-side"') >= 3 and page.count("data:image/png;base64,") == 2
    assert main(["--quiet", "report", "--compare", str(tmp_path / "a"), str(tmp_path / "a")]) == 2


def test_table5_section_is_counted_for_real():
    report = run_report(ReportOptions(sections=("table5",)))
    t5 = report.section("table5")
    assert t5.ok
    rows = {r["width"]: r for r in t5.tables[0].rows}
    assert rows["1.0x"]["MFLOPs"] == 145.8 and rows["1.0x"]["paper MFLOPs"] == 146
    assert rows["2.0x"]["conv5"] == 2048 and rows["1.0x"]["torchvision layout MFLOPs"] == 144.9
    assert t5.claims[0].verdict == "holds"
    assert "40.5 / 145.8 / 299 / 590.8 MFLOPs" in t5.finding


def test_check_out_dir_refuses_a_directory_with_report_files(tmp_path):
    (tmp_path / "fig_x_0_y.png").write_bytes(PNG_MAGIC)
    with pytest.raises(UserInputError, match="already holds a report"):
        check_out_dir(tmp_path)


def test_ctrl_c_writes_nothing(fake_sections, tmp_path, capsys):
    def interrupted(ctx):
        raise KeyboardInterrupt

    fake_sections(_speed_section("fast", "holds"), Section("stop", "Ctrl-C here", 94, interrupted))
    out = tmp_path / "r"
    assert main(["--quiet", "report", "--sections", "fast,stop", "--out", str(out)]) == 130
    assert "interrupted; no report written" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_reversals_count_only_beyond_the_noise():
    from shufflenet.report.compare import reversals

    a = ranked({"x": 100.0, "y": 80.0, "z": 50.0}, {"x": 0.02, "y": 0.02, "z": 0.02})
    b_within = ranked({"y": 100.0, "x": 98.0, "z": 50.0}, {"x": 0.02, "y": 0.02, "z": 0.02})
    b_beyond = ranked({"y": 100.0, "x": 70.0, "z": 50.0}, {"x": 0.02, "y": 0.02, "z": 0.02})
    b_noisy = ranked({"y": 100.0, "x": 70.0, "z": 50.0}, {"x": 0.4, "y": 0.4, "z": 0.02})
    assert reversals(a, b_within) == []  # y ahead of x by 2%: within the 5% band
    assert reversals(a, b_beyond) == ["x > y in A, y > x in B"]
    assert reversals(a, b_noisy) == []  # B's spreads swallow the reversal


def test_without_matplotlib_the_report_says_so(fake_sections, tmp_path, monkeypatch):
    import sys

    fake_sections(_speed_section("fast", "holds"))
    report = run_report(ReportOptions(sections=("fast",)))
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)  # import now fails
    files = write_report(report, tmp_path / "r")
    assert not [p for p in files if p.suffix == ".png"]
    note = "not drawn: matplotlib is not installed"
    assert note in (tmp_path / "r" / "report.html").read_text()
    assert note in (tmp_path / "r" / "report.md").read_text()
    d = json.loads((tmp_path / "r" / "report.json").read_text())
    assert next(s for s in d["sections"] if s["key"] == "fast")["status"] == "ok"


def test_compare_a_section_only_one_report_ran(fake_sections):
    from shufflenet.report.compare import compare_reports

    fake_sections(_speed_section("fast", "holds"), _speed_section("other", "holds", order=95))
    a = run_report(ReportOptions(sections=("fast",)))
    b = run_report(ReportOptions(sections=("fast", "other")))
    cmp = compare_reports(a, b)
    rows = {r["ranking"]: r for r in cmp.rankings}
    assert rows["other by speed"]["A"] == "not in this report" and rows["other by speed"]["differs"]
    assert cmp.ranking_reversals == []  # a ranking one report lacks is not a reversal
    assert {r["key"]: r["A"] for r in cmp.verdict_differences} == {"other-claim": "not in this report"}
    assert "1 ranking(s) in one report only" in cmp.summary_text()
