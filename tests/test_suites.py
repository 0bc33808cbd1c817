"""The suites' results (Fig. 1 / Table 8 here; the units suite in test_measure.py) through the result contract:
every format, the Fig. 1 scatter as a figure drawn on demand, and no failure without matplotlib.

No timing: ``run_bench`` is replaced by one that returns made-up measurements, so the suite's own
arithmetic (relative speeds, the paper's columns) runs on known numbers.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import sys

import pytest

from helpers import rows_to_csv
from shufflenet.measure import suites
from shufflenet.measure.bench import BenchOptions, BenchResult, BenchRow
from shufflenet.measure.paper_speeds import table8_row
from shufflenet.measure.timing import Measurement
from shufflenet.render import render
from shufflenet.result import Result

HAS_MPL = importlib.util.find_spec("matplotlib") is not None
MFLOPS = {e.label: table8_row(e.table8).mflops for e in suites.FIG1_ENTRIES}


def _measurement(name: str, size: tuple[int, int, int, int], seconds: float) -> Measurement:
    return Measurement(model=name, input_size=size, device="cpu", dtype="fp32", memory_format="contiguous",
                       threads=1, median_s=seconds, mean_s=seconds, iqr_s=0.0, min_s=seconds, max_s=seconds,
                       quantiles_s={}, number_per_run=1, num_blocks=5, warmup_runs=1, warmup_s=0.0,
                       min_run_time=0.01, method="blocked")


def fake_run_bench(specs, batches, options, *, machine=None, progress=None) -> BenchResult:
    """1 ms per 10 MFLOPs per image: speed falls with FLOPs, exactly."""
    rows = []
    for s in specs:
        for b in batches:
            mflops = MFLOPS[s.name]
            rows.append(BenchRow(model=s.name, family=s.family, flops=int(mflops * 1e6) * b, mac=10**6 * b,
                                 mac_bytes=4 * 10**6 * b, measurement=_measurement(s.name, (b, *s.image_size),
                                                                                  mflops * 1e-4 * b)))
    env = {"cpu_model": "test CPU", "device": "cpu", "threads": 1, "dtype": "fp32", "torch": "x"}
    return BenchResult(rows=rows, options=options, env=env, machine=machine)


@pytest.fixture
def fig1(monkeypatch: pytest.MonkeyPatch, tmp_path):
    monkeypatch.setattr(suites, "run_bench", fake_run_bench)
    return suites.run_paper_fig1(BenchOptions(), (1, 8), plot_path=tmp_path / "fig1.png"), tmp_path


def test_fig1_renders_in_every_format(fig1) -> None:
    result, tmp_path = fig1
    assert isinstance(result, Result)
    out = {fmt: render(result, fmt) for fmt in ("table", "csv", "json", "md", "html")}
    # CSV: what `shufflenet bench --suite paper-fig1 --format csv` printed: every key of the rows.
    assert out["csv"] == rows_to_csv(result.rows)
    rows = {r["model"]: r for r in csv.DictReader(io.StringIO(out["csv"]))}
    v2 = rows["ShuffleNet v2 1.0x"]
    assert float(v2["b1_images_per_s"]) == round(1 / (146 * 1e-4), 1) and float(v2["b1_vs_v2"]) == 1.0
    assert float(v2["paper_arm"]) == 24.4 and float(v2["paper_gpu"]) == 341
    v1 = rows["ShuffleNet v1 1.0x (g=3)"]
    assert float(v1["b8_vs_v2"]) == round(146 / 140, 2) and float(v1["paper_gpu_vs_v2"]) == round(213 / 341, 2)
    d = json.loads(out["json"])
    assert d["suite"] == "paper-fig1" and d["rows"] == json.loads(json.dumps(result.rows))
    md_line = next(x for x in out["md"].splitlines() if "| ShuffleNet v2 1.0x |" in x)
    assert f"| {round(1 / (146 * 1e-4), 1):.2f} |" in md_line and "| 24.40 |" in md_line
    assert "| paper ARM img/s |" in out["md"] and "Figure 1 / Table 8" in out["table"]
    assert "multiply-adds" in out["table"] and "sources: ShuffleNet V2 paper, Table 8" in out["table"]
    assert [f.key for f in result.figures()] == ["fig1"]
    if HAS_MPL:
        assert result.plot == str(tmp_path / "fig1.png") and (tmp_path / "fig1.png").stat().st_size > 1000
        assert out["html"].count("data:image/png;base64,") == 1
        assert result.figures()[0].png()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fig1_without_matplotlib_is_a_note(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(suites, "run_bench", fake_run_bench)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    result = suites.run_paper_fig1(BenchOptions(), (1,), plot_path=tmp_path / "fig1.png")
    assert result.plot is None and not (tmp_path / "fig1.png").exists()
    assert any("matplotlib is not installed" in n for n in result.notes)
    html = render(result, "html")
    assert "data:image/png" not in html and html.count("matplotlib is not installed") >= 2  # note + figure


@pytest.mark.skipif(not HAS_MPL, reason="needs matplotlib")
def test_fig1_chart_draws_the_same_figure_as_fig1_figure(fig1) -> None:
    result, _ = fig1
    a = suites.fig1_figure(result, [1, 8])
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    b = Figure(figsize=suites.fig1_chart(result, [1, 8]).size)
    FigureCanvasAgg(b)
    suites.draw_fig1(b, result, [1, 8])
    assert [ax.get_title() for ax in a.axes] == [ax.get_title() for ax in b.axes]
    assert len(a.legends) == len(b.legends) == 1 and tuple(a.get_size_inches()) == tuple(b.get_size_inches())
