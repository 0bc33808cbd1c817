"""The one renderer over the result contract: every format from one toy result, exact output checked."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import sys

import pytest

from shufflenet.errors import UserInputError
from shufflenet.render import FORMATS, format_cell, format_for_path, render, si, write_result
from shufflenet.result import Column, Figure, Result, ResultBase, Table, json_safe


class Toy(ResultBase):
    def __init__(self, with_figure: bool = True) -> None:
        self.with_figure = with_figure

    def to_dict(self) -> dict:
        return {"model": "toy", "rows": [{"name": "a", "flops": 1500000, "ms": 1.25},
                                         {"name": "b|c", "flops": 20, "ms": float("nan")}]}

    def tables(self) -> list[Table]:
        d = self.to_dict()
        return [Table("costs", [Column("name"), Column("flops", "FLOPs", fmt="si"), Column("ms", "latency", "ms")],
                      d["rows"], notes=["a note"], key="costs"),
                Table.from_rows("second", [{"k": 1, "v": True}], key="second")]

    def figures(self) -> list[Figure]:
        if not self.with_figure:
            return []

        def draw(fig):
            ax = fig.add_subplot()
            ax.plot([0, 1], [1, 0])

        return [Figure("a line", draw, key="line", size=(2, 1.5), dpi=50)]

    def conventions(self) -> list[str]:
        return ["FLOPs = multiply-adds"]


def test_toy_satisfies_the_protocol():
    assert isinstance(Toy(), Result)


def test_text_table_aligns_and_formats():
    text = render(Toy(), "table")
    lines = text.splitlines()
    assert lines[0] == "FLOPs = multiply-adds"
    assert "costs" in lines
    header = next(line for line in lines if line.startswith("name"))
    assert header.split() == ["name", "FLOPs", "latency", "(ms)"]
    row_a = next(line for line in lines if line.startswith("a "))
    assert row_a.split() == ["a", "1.500M", "1.25"]
    row_b = next(line for line in lines if line.startswith("b|c"))
    assert row_b.split() == ["b|c", "20", "-"]  # NaN shows as missing
    assert "note: a note" in lines
    assert re.search(r"^k\s+v$", text, re.M)


def test_csv_is_raw_values_of_one_table():
    rows = list(csv.reader(io.StringIO(render(Toy(), "csv"))))
    assert rows == [["name", "flops", "ms"], ["a", "1500000", "1.25"], ["b|c", "20", "nan"]]
    assert render(Toy(), "csv", table="second").splitlines() == ["k,v", "1,True"]
    with pytest.raises(UserInputError, match="no table 'x'"):
        render(Toy(), "csv", table="x")


def test_json_has_no_nan():
    d = json.loads(render(Toy(), "json"))
    assert d["rows"][1]["ms"] is None
    assert d["rows"][0]["flops"] == 1500000


def test_markdown_escapes_pipes_and_right_aligns_numbers():
    md = render(Toy(), "md")
    assert "| name | FLOPs | latency (ms) |" in md
    assert "|---|---:|---:|" in md
    assert "| b\\|c | 20 | - |" in md
    assert "*a note*" in md
    assert "![" not in md  # figures only when written to a file


def test_html_fragment_embeds_a_decodable_png():
    pytest.importorskip("matplotlib")
    frag = render(Toy(), "html")
    assert frag.startswith('<section class="shufflenet-result">')
    assert "<th>latency (ms)</th>" in frag and "b|c" in frag
    m = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', frag)
    assert m, "figure not embedded"
    assert base64.b64decode(m.group(1))[:8] == b"\x89PNG\r\n\x1a\n"


def test_figure_never_switches_the_global_backend():
    mpl = pytest.importorskip("matplotlib")
    before = mpl.get_backend()
    Toy().figures()[0].png()
    assert mpl.get_backend() == before


def test_missing_matplotlib_is_a_note_not_a_crash(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    frag = render(Toy(), "html")
    assert "not drawn: matplotlib is not installed" in frag


@pytest.mark.parametrize("name,fmt", [("x.json", "json"), ("x.CSV", "csv"), ("x.md", "md"), ("x.html", "html"),
                                      ("x.txt", "table"), ("x", "table"), ("x.dat", "table")])
def test_format_inferred_from_extension(name, fmt):
    assert format_for_path(name) == fmt


def test_format_contradiction_is_bad_input():
    with pytest.raises(UserInputError, match="contradicts"):
        format_for_path("x.json", "csv")
    assert format_for_path("x.json", "json") == "json"
    assert format_for_path("x.dat", "csv") == "csv"  # an unknown extension contradicts nothing
    assert format_for_path("x.txt", "json") == "json"  # nor does plain text
    with pytest.raises(UserInputError, match="unknown format"):
        format_for_path("x.json", "yaml")


def test_write_result_by_extension(tmp_path):
    env = {"cpu_model": "test cpu", "threads": 1}
    j = write_result(Toy(), tmp_path / "r.json", environment=env)
    d = json.loads(j.read_text())
    assert d["environment"] == env and d["model"] == "toy"
    c = write_result(Toy(), tmp_path / "r.csv", environment=env)
    assert c.read_text().splitlines()[0] == "name,flops,ms"
    h = write_result(Toy(), tmp_path / "r.html", environment=env)
    page = h.read_text()
    assert page.startswith("<!doctype html>") and "environment: cpu_model: test cpu; threads: 1" in page
    if pytest.importorskip("matplotlib"):
        m = write_result(Toy(), tmp_path / "r.md", environment=env)
        assert "![a line](<r_line.png>)" in m.read_text()
        assert (tmp_path / "r_line.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp files left


def test_every_format_carries_the_numbers():
    for fmt in FORMATS:
        out = render(Toy(with_figure=False), fmt)
        assert ("1500000" if fmt in ("json", "csv") else "1.500M") in out, fmt
        assert "1.25" in out, fmt


def test_cell_formats():
    assert format_cell(None) == "-"
    assert format_cell(-0.0) == "0.00"
    assert format_cell(123456.0) == "1.235e+05"
    assert format_cell(True) == "yes"
    assert format_cell([1, 3, 224, 224]) == "1x3x224x224"
    assert format_cell(0.5, Column("x", fmt=".1%")) == "50.0%"
    assert si(40_500_000) == "40.500M" and si(999) == "999"
    assert si(999_999.7) == "1.000M" and si(float("inf")) == "inf"  # rounding never gives 1000.000K


def test_json_safe_takes_arrays_and_tensors():
    import numpy as np
    import torch

    assert json_safe({"a": torch.tensor([1.0, float("nan")]), "b": np.arange(3), "c": np.float32(0.5)}) == {
        "a": [1.0, None], "b": [0, 1, 2], "c": 0.5}


def test_json_safe():
    assert json_safe({"a": (1, float("inf")), 2: Toy(with_figure=False)})["a"] == [1, None]
    assert json_safe({2: 1}) == {"2": 1}


def test_a_csv_only_table_is_left_out_of_the_readable_formats():
    class Wide(ResultBase):
        def to_dict(self):
            return {"a": 1, "b": 2}

        def tables(self):
            return [Table("wide", [Column("a"), Column("b")], [self.to_dict()], key="wide", display=False),
                    Table("tall", [Column("k"), Column("v")], [{"k": "a", "v": 1}, {"k": "b", "v": 2}])]

    assert render(Wide(), "csv").splitlines() == ["a,b", "1,2"]
    for fmt in ("table", "md", "html"):
        out = render(Wide(), fmt)
        assert "tall" in out and "wide" not in out
