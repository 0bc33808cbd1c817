"""Guidelines as objects: the registry, the Guideline fields, and a fifth experiment added as one object
(registered at run time) that the rows, runner, verdicts, result contract and renderer pick up unchanged."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from torch import nn

from shufflenet.cost import count_cost
from shufflenet.errors import UserInputError
from shufflenet.guidelines import blocks, experiments, registry, runner, verdicts
from shufflenet.guidelines.guideline import Guideline, RowConfig
from shufflenet.guidelines.judging import HOLDS, ColumnVerdict, compare_rows, fmt_ratio, status_all
from shufflenet.guidelines.paper_tables import TABLES, PaperRow, PaperTable
from shufflenet.render import FORMATS, render

SRC = Path(__file__).resolve().parents[1] / "src" / "shufflenet" / "guidelines"


def test_the_papers_four_are_registered_in_order() -> None:
    assert list(registry.GUIDELINES) == ["g1", "g2", "g3", "g4"] == list(registry.keys())
    assert experiments.GUIDELINES is registry.GUIDELINES
    for key, g in registry.GUIDELINES.items():
        assert isinstance(g, Guideline) and g.key == key and g.name == key.upper()
        assert g.table is TABLES[key] and g.claim == g.table.claim and "{v}" in g.phrase
        assert verdicts.JUDGES[key] is g.judge and verdicts.PHRASES[key] == g.phrase
        assert json.dumps(g.to_dict())
    assert registry.get_guideline(" G2 ") is registry.GUIDELINES["g2"]
    with pytest.raises(UserInputError, match="unknown guideline 'g9': choose g1, g2, g3, g4 or all"):
        registry.get_guideline("g9")


def test_closed_form_mac_where_the_paper_gives_one() -> None:
    """G1 and G2 carry the paper's MAC formula (Sec. 2); G3 and G4 do not."""
    has_mac = {k: g.mac is not None for k, g in registry.GUIDELINES.items()}
    assert has_mac == {"g1": True, "g2": True, "g3": False, "g4": False}
    g1 = registry.get_guideline("g1")
    # two 1x1 convs c1 -> c2 -> c1: 2 * (hw(c1+c2) + c1*c2)
    assert g1.mac({"c1": 32, "c2": 64}, 56) == 2 * (56 * 56 * 96 + 32 * 64)
    g2 = registry.get_guideline("g2")
    assert g2.mac({"c": 184, "groups": 8}, 56) == 56 * 56 * 368 + 184 * 184 // 8
    row = experiments.column_rows("g3", "arm", 1)[0]
    assert row.expected_mac() is None and row.definition is registry.get_guideline("g3")


def test_guideline_validation_and_registration_errors() -> None:
    g1 = registry.get_guideline("g1")
    with pytest.raises(ValueError, match="phrase"):
        Guideline(**{**g1.__dict__, "key": "gx", "phrase": "no placeholder"})
    with pytest.raises(ValueError, match="lower-case"):
        Guideline(**{**g1.__dict__, "key": "all"})
    with pytest.raises(ValueError, match="already registered"):
        registry.register(g1)
    with pytest.raises(TypeError):
        registry.register("g1")  # type: ignore[arg-type]


def test_no_string_keyed_dispatch_in_the_package() -> None:
    """No `if key == "g1"` chains: every per-guideline difference lives in the guideline's object."""
    pattern = re.compile(r"""(==|!=)\s*["']g\d["']|\bin\s*\(\s*["']g\d["']""")
    offenders = [f"{p.name}:{i}" for p in SRC.glob("*.py")
                 for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []


def test_citations_name_the_papers_sections() -> None:
    text = "".join(p.read_text() for p in SRC.glob("*.py"))
    assert "paper.md" not in text and "§" not in text


# -- a fifth experiment, as one object -----------------------------------------------------------------------

TOY_TABLE = PaperTable(
    number=99, guideline="G5", title="Toy: a wider conv is slower", source="a test, not the paper",
    gpu_columns=("x1", "x2", "x4"), arm_columns=("x1", "x2", "x4"),
    rows=(PaperRow("narrow", {"c": 8}, {"c": 4}, (200.0, 100.0, 50.0), (20.0, 10.0, 5.0)),
          PaperRow("wide", {"c": 16}, {"c": 8}, (100.0, 50.0, 25.0), (10.0, 5.0, 2.5))),
    claim="the wide row is slower",
)


def _configure(table: PaperTable, label: str, channels: str, m: int) -> RowConfig:
    c = table.row(label).config(channels)["c"] * m
    return RowConfig({"c": c}, c, ("toy deviation",) if label == "wide" else ())


def _judge(speeds, multiplier=1, within=None, min_band=0.05) -> ColumnVerdict:
    comp = compare_rows(speeds, "wide", "narrow", within, min_band)
    return ColumnVerdict(multiplier, status_all([comp], -1), comp.ratio, fmt_ratio(comp.ratio), "", [comp],
                         decisive=comp)


TOY = Guideline(
    key="g5", table=TOY_TABLE, configure=_configure,
    build=lambda config, depth: blocks.BenchNet([nn.Conv2d(config["c"], config["c"], 1, bias=False)
                                                 for _ in range(depth)], config["c"], "toy"),
    flops=lambda config, hw: hw * hw * config["c"] ** 2, describe=lambda config: f"c={config['c']}",
    judge=_judge, phrase="wide runs at {v} the speed of narrow", depth=2, hw=8,
)


@pytest.fixture
def toy():
    registry.register(TOY)
    yield TOY
    registry.unregister("g5")


def fake_timer(model: nn.Module, input_size, **kw) -> SimpleNamespace:
    latency = input_size[0] * count_cost(model, (1, *input_size[1:])).flops / 1e9
    return SimpleNamespace(median_s=latency, iqr_s=0.0, env={"cpu_model": "fake", "threads": 1})


def test_a_registered_fifth_guideline_runs_end_to_end(toy) -> None:
    assert runner.check_guidelines("all") == ["g1", "g2", "g3", "g4", "g5"]
    assert verdicts.JUDGES["g5"] is _judge and "g5" in experiments.GUIDELINES
    rows = experiments.column_rows("g5", "arm", 2)
    assert [r.config["c"] for r in rows] == [8, 16] and rows[0].input_size(1) == (1, 8, 8, 8)
    assert rows[1].expected_flops() == 2 * 64 * 256 == count_cost(rows[1].build(), rows[1].input_size()).flops
    assert "toy deviation" in rows[1].notes

    res = runner.run_guidelines("g5", runner.RunOptions(quick=True, rounds=3), timer=fake_timer)
    (t,) = res.results
    assert t.verdict.status == HOLDS and t.verdict.columns[0].effect == pytest.approx(0.25)
    assert t.verdict.headline() == ("The paper: wide runs at 0.50x the speed of narrow on GPU and 0.50x on ARM. "
                                    "Here: 0.25x — G5 holds.")
    for fmt in FORMATS:
        text = render(res, fmt, figures=False) if fmt == "html" else render(res, fmt)
        assert "G5" in text and ("0.25" in text or fmt == "csv")
    assert "toy deviation" in render(res, "table")
    with pytest.raises(UserInputError, match="g1, g2, g3, g4, g5 or all"):
        runner.check_guidelines("g6")
