"""`shufflenet models` as a result of the contract: Table 5 re-derived, every format, one count per model."""

from __future__ import annotations

import csv
import io
import json

import pytest

from shufflenet.cli.main import main
from shufflenet.cost.catalog import catalog, model_cost
from shufflenet.errors import UserInputError
from shufflenet.render import render


def test_table5_block_and_rows_share_one_count():
    model_cost.cache_clear()
    cat = catalog("shufflenet_v2_x*")
    assert [r["width"] for r in cat.table5] == ["0.5x", "1.0x", "1.5x", "2.0x"]
    assert [r["MFLOPs"] for r in cat.table5] == [40.5, 145.8, 299.0, 590.8]  # Table 5: 41/146/299/591
    assert model_cost.cache_info().misses == 4  # the registry rows reused the Table 5 counts
    assert [t.key for t in cat.tables()] == ["table5", "models"]


def test_no_table5_without_v2_or_without_cost():
    assert catalog("mobilenet_v1_*").table5 == []
    cat = catalog("shufflenet_v2_x0_5", with_cost=False)
    assert cat.table5 == [] and "MFLOPs" not in cat.models[0]
    with pytest.raises(UserInputError, match="no model matches"):
        catalog("nothing_*")


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "md", "html"])
def test_models_command_every_format(fmt, capsys):
    assert main(["models", "shufflenet_v2_x0_5", "--format", fmt]) == 0
    out = capsys.readouterr().out
    if fmt == "json":
        d = json.loads(out)
        assert set(d) == {"convention", "table5", "models"}
        assert d["models"][0]["MFLOPs"] == 40.5
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
        assert [r["name"] for r in rows] == ["shufflenet_v2_x0_5"] and rows[0]["MFLOPs"] == "40.5"
    elif fmt == "md":
        assert "| 0.5x | 48/96/192 | 1024 | 40.50 | 41 |" in out
    elif fmt == "html":
        assert "<p class=\"table-title\">ShuffleNet V2, paper Table 5 re-derived</p>" in out and "<td>48/96/192</td>" in out
    else:
        assert "shufflenet_v2_x0_5" in out and "40.50" in out


def test_csv_of_the_catalog_is_the_models_table():
    text = render(catalog("mobilenet_v1_x0_25"), "csv", table="models")
    assert text.splitlines()[0].startswith("name,Mparams,MFLOPs,MMAC")


def test_cost_json_carries_the_grouping_asked_for(capsys):
    assert main(["cost", "shufflenet_v2_x0_5", "--by", "stage", "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["by"] == "stage" and [g["name"] for g in d["groups"]][:3] == ["conv1", "maxpool", "stage2"]
    assert sum(g["mac"] for g in d["groups"]) == d["mac"] and len(d["layers"]) > len(d["groups"])
