"""G2 (paper Sec. 2, Table 2): excessive group convolution increases MAC.

**Experiment.** 10 stacked bare 1x1 group convs c -> c on a 56x56 input; the number of groups g varies
and c grows with it to keep FLOPs fixed. A row's ``c`` is the table's c for x1 times the multiplier,
``groups`` = g. *Deviation:* the ARM set's g=8 row at x1 has c = 180, which 8 groups cannot divide. When
c is not a multiple of g the width used is the multiple of g nearest to the equal-FLOPs width
c_g1 * sqrt(g) (c_g1 = the g=1 row's width): 184 (= 8 x 23) for 180, 3.3% more FLOPs than g=1, within
the 4% tolerance.

**Closed forms** (Sec. 2, G2): ``B = hw*c1*c2/g`` and ``MAC = hw(c1+c2) + c1*c2/g`` for a 1x1 group conv.

**Judge.** The last row (g=8) is slower than the first (g=1) at equal FLOPs. Effect: speed(g=8) /
speed(g=1). Whether every step g -> 2g is slower too is reported as a note.

**The paper's own data** through this judge: holds in every column on both platforms. GPU: g=8 runs at
0.26x, 0.35x, 0.53x of g=1 (Sec. 2: "more than 2x slower"); ARM: 0.70x, 0.74x, 0.78x ("up to 30% slower").
"""

from __future__ import annotations

import math
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
from shufflenet.guidelines.paper_tables import TABLE2, PaperTable


def nearest_multiple(value: float, of: int) -> int:
    """The positive multiple of ``of`` nearest to ``value`` (the lower one on a tie)."""
    lo = max(of, math.floor(value / of) * of)
    hi = lo + of
    return lo if abs(value - lo) <= abs(hi - value) else hi


def configure(table: PaperTable, label: str, channels: str, multiplier: int) -> RowConfig:
    base = table.row(label).config(channels)
    g, c = base["g"], base["c"] * multiplier
    notes: tuple[str, ...] = ()
    if c % g:
        c_g1 = table.rows[0].config(channels)["c"] * multiplier
        fixed = nearest_multiple(c_g1 * math.sqrt(g), g)
        notes = (f"paper c={c} is not divisible by g={g}; using c={fixed}, the multiple of {g} nearest to "
                 f"the equal-FLOPs width {c_g1}*sqrt({g}) = {c_g1 * math.sqrt(g):.1f}",)
        c = fixed
    return RowConfig({"c": c, "groups": g}, c, notes)


def build(config: Config, depth: int) -> blocks.BenchNet:
    return blocks.g2_net(config["c"], config["groups"], depth)


def flops(config: Config, hw: int) -> int:
    return conv1x1_flops(hw, hw, config["c"], config["c"], config["groups"])


def mac(config: Config, hw: int) -> int:
    return conv1x1_mac(hw, hw, config["c"], config["c"], config["groups"])


def describe(config: Config) -> str:
    return f"c={config['c']} g={config['groups']}"


def judge(speeds: Speeds, multiplier: int = 1, within: Mapping[str, float] | None = None,
          min_band: float = MIN_BAND) -> ColumnVerdict:
    """The last row (g=8) is slower than the first (g=1); effect = g=8 / g=1. Steps g -> 2g as notes."""
    labels = list(speeds)
    main = compare_rows(speeds, labels[-1], labels[0], within, min_band)  # ratio < 1: g=8 slower
    status = status_all([main], -1)
    steps = [compare_rows(speeds, hi, lo, within, min_band)
             for lo, hi in zip(labels[:-1], labels[1:], strict=True)]
    notes = [f"not monotone: {s.a} is {fmt_ratio(s.ratio)} the speed of {s.b}"
             for s in steps if s.outcome > 0]
    return ColumnVerdict(multiplier, status, main.ratio, fmt_ratio(main.ratio), "", [main, *steps], notes,
                         main)


G2 = Guideline(
    key="g2", table=TABLE2, configure=configure, build=build, flops=flops, mac=mac, describe=describe,
    judge=judge, phrase="g=8 runs at {v} the speed of g=1 at equal FLOPs",
    choices=("G2: bare 1x1 group convs c -> c; ARM set g=8 x1 uses c=184 (paper 180 is not divisible by 8)",),
)
