"""Every result-printing command of `bench`, `profile` and `guidelines` in every format, through the one
renderer: the result's real numbers in table / CSV / Markdown / HTML, JSON keys a superset of what the
commands printed before they moved onto the renderer, `--out x.md` with its figures beside it and
`--out x.html` as a self-contained page.

Each command is run in-process (`shufflenet.cli.main.main`). The measurement behind it runs once per
command (memoised below), so the five formats show the same numbers and the test stays fast; the guideline
experiments use a fake timer, the suites and the machine ceilings are shrunk as in test_cli_bench.py.
"""

from __future__ import annotations

import csv
import html
import io
import json
import random
import re
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from shufflenet.cli.main import main
from shufflenet.cost import count_cost
from shufflenet.guidelines import runner
from shufflenet.measure import machine as machine_mod
from shufflenet.measure import suites, unit_suite
from shufflenet.render import FORMATS

FAST = ["--min-run-time", "0.01", "--warmup", "1"]
BENCH = ["bench", "shufflenet_v2_x0_5", "--input", "1x3x64x64", *FAST]
UNITS = ["bench", "--suite", "units", "--quick", *FAST]
MACHINE = ["bench", "--machine"]
PROFILE = ["profile", "shufflenet_v2_x0_5", "--input", "1x3x64x64", "--repeats", "2", "--warmup", "1",
           "--ceilings", "none", "--no-total"]
GUIDELINES = ["guidelines", "g2", "--quick", "--rounds", "3"]

# Top-level JSON keys each command printed before the one renderer (recorded by running the previous code
# with --format json); the renderer may add keys, never drop one.
OLD_KEYS = {
    "bench": {"conventions", "env", "machine", "options", "rows"},
    "units": {"conventions", "env", "footer", "header", "headers", "machine", "measurements", "notes", "options",
              "plot", "rows", "sources", "suite", "title", "wall_s"},
    "machine": {"cache_version", "clock", "compute_kernel", "copy_bytes", "copy_gb_per_s", "copy_kernel",
                "copy_kernels", "copy_relative_iqr", "device", "env", "kernels", "libraries", "matmul_gflops",
                "matmul_gmadds", "matmul_n", "matmul_relative_iqr", "measured_at", "peak", "threads"},
    "profile": {"buckets", "ceilings", "ceilings_source", "conventions", "coverage", "device", "dtype", "env",
                "flops", "groups_percent", "input_size", "layers", "mac", "mac_bytes", "model", "notes", "ops",
                "paper_categories_percent", "paper_fig2", "repeats", "ridge_madds_per_byte", "threads", "total",
                "unmatched_cost_rows", "warmup"},
    "guidelines": {"choices", "conventions", "env", "headlines", "options", "tables", "verdicts", "wall_s"},
}
# ... and the keys of their rows then.
OLD_ROW_KEYS = {
    "bench": {"bandwidth_pct", "batch", "batches_per_s", "compute_pct", "family", "flops", "gmadds_per_s",
              "images_per_s", "info", "input", "input_size", "iqr_ms", "latency_ms", "mac", "mac_bytes",
              "mac_gb_per_s", "measurement", "mflops", "mmac", "model", "noisy"},
    "units": {"b1_images_per_s", "b1_vs_v2", "c", "dflops_pct", "input", "mflops", "model", "noisy", "paper_arm",
              "paper_arm_vs_v2", "paper_gpu", "paper_gpu_vs_v2", "width"},
    "profile": {"group", "key", "label", "ops", "percent", "time_s"},  # buckets
    "guidelines": {"batch", "batches_per_s", "channels", "column", "config", "config_text", "depth", "flops",
                   "guideline", "images_per_s", "index", "input_size", "mac", "multiplier", "noisy", "notes",
                   "paper_arm", "paper_gpu", "relative", "rounds", "row", "speeds", "spread", "within_spread"},
}
# The CSV header each command printed before (the first columns; a column may be added at the end).
OLD_CSV_HEADER = {
    "bench": "model,input,batch,mflops,mmac,latency_ms,iqr_ms,images_per_s,batches_per_s,gmadds_per_s,"
             "mac_gb_per_s,compute_pct,bandwidth_pct,noisy",
    "profile": "bucket,group,ops,time_ms,percent",
    "guidelines": "guideline,column,row,config,MFLOPs,MMAC,img/s,spread%,rel,paper_gpu,gpu_rel,paper_arm,arm_rel,"
                  "noisy",
    "machine": "ceiling,value,unit,relative IQR,note",
}


class FakeTimer:
    """Latency from a row's FLOPs and MAC (a memory-bound 'machine'), with 1% round noise."""

    def __init__(self) -> None:
        self.cost: dict[int, float] = {}
        self.rng = random.Random(0)

    def __call__(self, model: Any, input_size: Any, **kw: Any) -> SimpleNamespace:
        if id(model) not in self.cost:
            rep = count_cost(model, (1, *input_size[1:]))
            self.cost[id(model)] = rep.flops / 2e10 + rep.mac / 1e8
        latency = input_size[0] * self.cost[id(model)] * (1 + self.rng.uniform(-0.01, 0.01))
        return SimpleNamespace(median_s=latency, iqr_s=0.01 * latency, env={"cpu_model": "fake", "threads": 1})


class Memo:
    """The first call runs the measurement; later calls (the other formats) get the same result."""

    def __init__(self, fn: Any) -> None:
        self.fn, self.result = fn, None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.result is None:
            self.result = self.fn(*args, **kwargs)
        return self.result


def shrink_machine(mp: pytest.MonkeyPatch) -> None:
    """Machine ceilings from tiny kernels (as test_cli_bench.py): milliseconds instead of seconds."""
    mp.setattr(machine_mod, "MATMUL_N", {"cpu": 128, "cuda": 1024})
    mp.setattr(machine_mod, "COPY_ELEMENTS", {"cpu": 1 << 18, "cuda": 1 << 22})
    mp.setattr(machine_mod, "CONV_SHAPES", {"cpu": ((1, 32, 8, 1), (1, 16, 8, 3)), "cuda": ()})
    mp.setattr(machine_mod, "KERNEL_MIN_RUN_TIME", 0.01)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Any:
    """A ceilings cache holding this machine's (shrunk) ceilings, so bench rows carry their % columns, as
    when the old keys were recorded."""
    path = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SHUFFLENET_CACHE", str(path))
        shrink_machine(mp)
        machine_mod.measure_machine("cpu", None, refresh=True)
    return path


@pytest.fixture(scope="module")
def memos(cache_dir) -> dict[str, Memo]:
    bench_mod = sys.modules["shufflenet.measure.bench"]
    profile_mod = sys.modules["shufflenet.measure.profile"]
    real_guidelines = runner.run_guidelines
    return {"bench": Memo(bench_mod.run_bench), "units": Memo(suites.run_suite),
            "machine": Memo(machine_mod.measure_machine), "profile": Memo(profile_mod.profile),
            "guidelines": Memo(lambda *a, **k: real_guidelines(*a, **{**k, "timer": FakeTimer()}))}


@pytest.fixture
def cli(memos, cache_dir, monkeypatch, capsys):
    """Run a command in-process (its measurement memoised), returning (stdout, the result behind it)."""
    monkeypatch.setenv("SHUFFLENET_CACHE", str(cache_dir))
    shrink_machine(monkeypatch)
    real_units = unit_suite.run_units
    monkeypatch.setattr(unit_suite, "run_units", lambda *a, **k: real_units(*a, channels=(64,), sides=(28,), **k))
    monkeypatch.setattr(sys.modules["shufflenet.measure.bench"], "run_bench", memos["bench"])
    monkeypatch.setattr(suites, "run_suite", memos["units"])
    monkeypatch.setattr(machine_mod, "measure_machine", memos["machine"])
    monkeypatch.setattr(sys.modules["shufflenet.measure.profile"], "profile", memos["profile"])
    monkeypatch.setattr(runner, "run_guidelines", memos["guidelines"])

    def run(name: str, argv: list[str], *extra: str) -> tuple[str, Any]:
        code = main(["--quiet", *argv, *extra])
        out, err = capsys.readouterr()
        assert code == 0, err
        return out, memos[name].result

    return run


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def shown(value: float, spec: str, fmt: str) -> str:
    """How a number appears in ``fmt`` (HTML inside a table cell)."""
    text = format(value, spec)
    return f">{text}</td>" if fmt == "html" else text


def check_json(name: str, out: str) -> dict[str, Any]:
    d = json.loads(out)
    assert set(d) >= OLD_KEYS[name], OLD_KEYS[name] - set(d)
    return d


# -- bench --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_bench_every_format(cli, fmt: str) -> None:
    out, result = cli("bench", BENCH, "--format", fmt)
    row = result.rows[0].row()
    if fmt == "json":
        d = check_json("bench", out)
        assert set(d["rows"][0]) >= OLD_ROW_KEYS["bench"]
        assert d["rows"][0]["latency_ms"] == row["latency_ms"] and d["rows"][0]["mflops"] == row["mflops"]
        return
    if fmt == "csv":
        assert out.splitlines()[0].startswith(OLD_CSV_HEADER["bench"])
        (r,) = csv_rows(out)
        assert float(r["latency_ms"]) == row["latency_ms"] and float(r["images_per_s"]) == row["images_per_s"]
        assert r["model"] == "shufflenet_v2_x0_5" and r["input"] == "3x64x64"
        return
    for key, spec in (("latency_ms", ".3f"), ("mflops", ".1f"), ("mmac", ".2f"), ("images_per_s", ".1f"),
                      ("gmadds_per_s", ".2f")):
        assert shown(row[key], spec, fmt) in out, (key, row[key])
    assert "shufflenet_v2_x0_5" in out and "multiply-adds" in out and "GMAdd/s" in out
    if fmt == "html":
        assert out.lstrip().startswith('<section class="shufflenet-result">') and "<table>" in out
    if fmt == "md":
        assert "| shufflenet_v2_x0_5 |" in out and "|---" in out


@pytest.mark.parametrize("fmt", FORMATS)
def test_units_suite_every_format(cli, fmt: str) -> None:
    out, result = cli("units", UNITS, "--format", fmt)
    v1 = next(r for r in result.rows if r["model"] == "ShuffleNet v1")
    if fmt == "json":
        d = check_json("units", out)
        assert set(d["rows"][0]) >= OLD_ROW_KEYS["units"] and len(d["rows"]) == len(result.rows)
        assert next(r for r in d["rows"] if r["model"] == "ShuffleNet v1")["b1_images_per_s"] == v1["b1_images_per_s"]
        return
    if fmt == "csv":
        got = next(r for r in csv_rows(out) if r["model"] == "ShuffleNet v1")
        assert float(got["b1_images_per_s"]) == v1["b1_images_per_s"] and int(got["width"]) == v1["width"]
        return
    assert "Appendix Table 1(b)" in out and "paper GPU batch/s" in out
    for value in (v1["b1_images_per_s"], v1["mflops"], v1["b1_vs_v2"]):
        assert shown(value, ".2f", fmt) in out, value


@pytest.mark.parametrize("fmt", FORMATS)
def test_machine_every_format(cli, fmt: str) -> None:
    out, machine = cli("machine", MACHINE, "--format", fmt)
    if fmt == "json":
        d = check_json("machine", out)
        assert d["matmul_gflops"] == machine.matmul_gflops and d["copy_gb_per_s"] == machine.copy_gb_per_s
        return
    if fmt == "csv":
        assert out.splitlines()[0] == OLD_CSV_HEADER["machine"]
        first = csv_rows(out)[0]
        assert float(first["value"]) == round(machine.matmul_gflops, 2)
        return
    assert shown(round(machine.matmul_gflops, 2), ".2f", fmt) in out
    assert shown(round(machine.copy_gb_per_s, 2), ".2f", fmt) in out
    assert "GFLOP/s" in out and "kernel torch.mm" in out


# -- profile ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_profile_every_format(cli, fmt: str) -> None:
    pytest.importorskip("matplotlib")
    out, report = cli("profile", PROFILE, "--format", fmt)
    buckets = report.bucket_rows()
    conv = next(r for r in buckets if r["bucket"] == "Conv (depthwise)")
    if fmt == "json":
        d = check_json("profile", out)
        assert set(d["buckets"][0]) >= OLD_ROW_KEYS["profile"]
        assert [b["percent"] for b in d["buckets"]] == [b.percent for b in report.buckets]
        return
    if fmt == "csv":
        assert out.splitlines()[0].startswith(OLD_CSV_HEADER["profile"])
        got = next(r for r in csv_rows(out) if r["bucket"] == "Conv (depthwise)")
        assert float(got["time_ms"]) == conv["time_ms"] and float(got["percent"]) == conv["percent"]
        return
    assert shown(conv["time_ms"], ".3f", fmt) in out and shown(conv["percent"], ".1f", fmt) in out
    assert "Fig. 2 categories" in out and "multiply-adds" in out
    if fmt == "html":
        assert out.count("data:image/png;base64,") == 1  # the breakdown chart, embedded


def test_profile_by_layer_top(cli) -> None:
    """--by / --top choose the table (report.view): the K slowest layers, in CSV and in the text table."""
    out, report = cli("profile", PROFILE, "--by", "layer", "--top", "3", "--format", "csv")
    rows = csv_rows(out)
    assert [r["layer"] for r in rows] == [r["layer"] for r in report.layer_rows(3)] and len(rows) == 3
    out, _ = cli("profile", PROFILE, "--by", "layer", "--top", "3")
    assert "time per layer" in out and all(r["layer"] in out for r in report.layer_rows(3))


# -- guidelines ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_guidelines_every_format(cli, fmt: str) -> None:
    if fmt == "html":
        pytest.importorskip("matplotlib")
    out, result = cli("guidelines", GUIDELINES, "--format", fmt)
    g2 = result.result("g2")
    last = g2.rows[3]
    if fmt == "json":
        d = check_json("guidelines", out)
        assert set(d["tables"][0]["rows"][0]) >= OLD_ROW_KEYS["guidelines"]
        assert d["tables"][0]["rows"][3]["images_per_s"] == last.images_per_s
        assert d["headlines"] == result.headlines()
        return
    if fmt == "csv":
        assert out.splitlines()[0] == OLD_CSV_HEADER["guidelines"]
        got = csv_rows(out)[3]
        assert float(got["img/s"]) == last.images_per_s and got["config"] == "c=184 g=8"
        return
    assert shown(last.images_per_s, ".2f", fmt) in out and shown(last.mac / 1e6, ".2f", fmt) in out
    assert "c=184 g=8" in out and ("2451" in out)
    esc = html.escape if fmt == "html" else (lambda s: s.replace("|", "\\|") if fmt == "md" else s)
    # the verdict: its one-sentence headline and its line, in every text format
    assert esc(g2.headline()) in out and esc(g2.verdict.line()) in out
    assert esc(g2.title) in out  # the paper's table title and claim


def test_guidelines_which_from_registry(capsys) -> None:
    from shufflenet.guidelines import registry

    try:
        main(["guidelines", "--help"])
    except SystemExit as exc:
        assert exc.code in (0, None)
    out = capsys.readouterr().out
    assert "{" + ",".join([*registry.keys(), "all"]) + "}" in out and registry.choices_text() in out


# -- --out: Markdown with its figures beside it, HTML as one self-contained page -----------------------------


def test_out_markdown_writes_figures_beside(cli, tmp_path) -> None:
    pytest.importorskip("matplotlib")
    cli("profile", PROFILE, "--out", str(tmp_path / "p.md"))
    md = (tmp_path / "p.md").read_text()
    assert "![where the time goes" in md and "(<p_breakdown.png>)" in md and "*environment: " in md
    assert (tmp_path / "p_breakdown.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cli("guidelines", GUIDELINES, "--out", str(tmp_path / "g.md"))
    assert "(<g_g2.png>)" in (tmp_path / "g.md").read_text() and (tmp_path / "g_g2.png").stat().st_size > 1000


def test_out_html_is_self_contained(cli, tmp_path) -> None:
    pytest.importorskip("matplotlib")
    for name, argv in (("profile", PROFILE), ("guidelines", GUIDELINES), ("bench", BENCH)):
        page_path = tmp_path / f"{name}.html"
        _, result = cli(name, argv, "--out", str(page_path))
        page = page_path.read_text()
        assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
        assert '<meta charset="utf-8">' in page and "environment: " in page
        # nothing loaded from elsewhere: no external images, scripts, styles or fonts
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", page, re.I)
        assert "<script" not in page and "<link" not in page and "@import" not in page
        assert page.count("data:image/png;base64,") == len(result.figures())
    assert [p.name for p in sorted(tmp_path.iterdir())] == [
        "bench.html", "guidelines.html", "profile.html"]  # HTML embeds its figures: no PNG beside it
