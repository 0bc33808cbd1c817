"""G1 (paper Sec. 2, Table 1): equal channel width minimises memory access cost (MAC).

**Experiment.** 10 stacked blocks of two bare 1x1 convs, c1 -> c2 -> c1, on a 56x56 input; the ratio
c1:c2 varies at (nearly) fixed FLOPs. A row's ``c1``, ``c2`` are the table's (c1, c2) for x1 times the
multiplier. The paper's channels are used exactly: their per-block FLOPs lie within 4% of the table mean
(up to 5.5% below the 1:1 row: the paper's rounded channels).

**Closed forms** (Sec. 2, G1): a 1x1 conv c1 -> c2 on an h x w map has ``B = hw*c1*c2`` multiply-adds and
``MAC = hw(c1+c2) + c1*c2``; a block is two of them.

**Judge.** 1:1 (the first row) is faster than every other ratio. Effect: the fastest other ratio's speed
relative to 1:1 (1:12's is the detail).

**The paper's own data** through this judge: on GPU the claim holds in all three columns (the fastest
other ratio, 1:2, runs at 0.88x, 0.81x, 0.89x of 1:1). On ARM 1:1 is the fastest ratio in all three
columns too, but 1:2 trails it by only 4.3% at x1 and 3.8% at x4 (5.5% at x2): under the 5% floor below
which no difference is called, so x1 and x4 are inconclusive and ARM *partly holds*. That is the honest
reading of the ARM numbers as measured (per FLOP 1:1's lead is larger: the paper's 1:2 row does 5.5% less
work than its 1:1 row).
"""

from __future__ import annotations

from collections.abc import Mapping

from shufflenet.cost.analytic import conv1x1_flops, conv1x1_mac
from shufflenet.guidelines import blocks
from shufflenet.guidelines.guideline import Config, Guideline, RowConfig
from shufflenet.guidelines.judging import (
    MIN_BAND,
    ColumnVerdict,
    Speeds,
    compare_rows,
    fmt_ratio,
    status_all,
)
from shufflenet.guidelines.paper_tables import TABLE1, PaperTable


def configure(table: PaperTable, label: str, channels: str, multiplier: int) -> RowConfig:
    base = table.row(label).config(channels)
    c1, c2 = base["c1"] * multiplier, base["c2"] * multiplier
    return RowConfig({"c1": c1, "c2": c2}, c1)


def build(config: Config, depth: int) -> blocks.BenchNet:
    return blocks.g1_net(config["c1"], config["c2"], depth)


def flops(config: Config, hw: int) -> int:
    c1, c2 = config["c1"], config["c2"]
    return conv1x1_flops(hw, hw, c1, c2) + conv1x1_flops(hw, hw, c2, c1)


def mac(config: Config, hw: int) -> int:
    c1, c2 = config["c1"], config["c2"]
    return conv1x1_mac(hw, hw, c1, c2) + conv1x1_mac(hw, hw, c2, c1)


def describe(config: Config) -> str:
    return f"c1={config['c1']} c2={config['c2']}"


def judge(speeds: Speeds, multiplier: int = 1, within: Mapping[str, float] | None = None,
          min_band: float = MIN_BAND) -> ColumnVerdict:
    """1:1 (the first row) is faster than every other ratio; effect = fastest other / 1:1."""
    labels = list(speeds)
    first, others = labels[0], labels[1:]
    comps = [compare_rows(speeds, first, o, within, min_band) for o in others]  # ratio > 1: 1:1 faster
    status = status_all(comps, +1)
    closest = min(comps, key=lambda c: c.ratio)
    best = 1.0 / closest.ratio
    detail = f"{others[-1]} at {fmt_ratio(1.0 / comps[-1].ratio)}"
    return ColumnVerdict(multiplier, status, best, f"{fmt_ratio(best)} [{closest.b}]", detail, comps,
                         decisive=closest)


G1 = Guideline(
    key="g1", table=TABLE1, configure=configure, build=build, flops=flops, mac=mac, describe=describe,
    judge=judge, phrase="the fastest other ratio runs at {v} the speed of 1:1",
    choices=("G1: blocks of two bare 1x1 convs c1 -> c2 -> c1 (no bias, BN or ReLU), the paper's channels "
             "exactly",),
)
