"""G4 (paper Sec. 2, Table 4): element-wise operations are non-negligible.

**Experiment.** 10 stacked ResNet bottleneck units (1x1 -> 3x3 -> 1x1, ReLUs and an identity shortcut;
:class:`~shufflenet.guidelines.blocks.Bottleneck`), with the ReLUs and the shortcut removed separately.
``c`` = 32/64/128 is read as the unit's **input/output width** (what the identity shortcut carries) with
ResNet's 1:4 bottleneck, ``mid = c/4``; input 56x56 (as Tables 1-3; Table 4's caption gives none). Why
this reading: the paper's ARM core runs 1x1 convs at about 5 G multiply-adds/s (Table 1 x1: 64 M per
image at 76 images/s; Table 2: 128 M at 40 images/s). With mid = c/4 the Table 4 ARM speeds imply
1.9-2.7 G/s (plausible for tiny 8-32-wide bottlenecks with a 3x3 conv); with c as the bottleneck width
(output 4c) they would imply 31-44 G/s, and 20-28 G/s with every conv c wide, both impossible on that
core. ``relu`` / ``shortcut`` switch the ReLUs and the identity add.

**Closed form:** ``hw * (2*c*mid + 9*mid**2)`` multiply-adds per unit (the paper gives no MAC formula
for the unit).

**Judge.** The last row (no ReLU, no shortcut) is faster than the first (ReLU+shortcut). Effect: their
speed ratio as a change; removing only the shortcut and only the ReLU are the detail.

**The paper's own data** through this judge: holds in every column on both platforms. GPU: +17%, +15%,
+24% (c = 32, 64, 128); ARM: +17%, +20%, +8% (Sec. 2: "around 20%").
"""

from __future__ import annotations

from collections.abc import Mapping

from shufflenet.guidelines import blocks
from shufflenet.guidelines.guideline import Config, Guideline, RowConfig
from shufflenet.guidelines.judging import (
    MIN_BAND,
    ColumnVerdict,
    Speeds,
    compare_rows,
    fmt_change,
    status_all,
)
from shufflenet.guidelines.paper_tables import TABLE4, PaperTable

G4_BOTTLENECK_RATIO = 4


def configure(table: PaperTable, label: str, channels: str, multiplier: int) -> RowConfig:
    base = table.row(label).config(channels)
    c = base["c"] * multiplier
    return RowConfig({"c": c, "mid": c // G4_BOTTLENECK_RATIO, "relu": base["relu"],
                      "shortcut": base["shortcut"]}, c)


def build(config: Config, depth: int) -> blocks.BenchNet:
    return blocks.g4_net(config["c"], config["mid"], config["relu"], config["shortcut"], depth)


def flops(config: Config, hw: int) -> int:
    c, mid = config["c"], config["mid"]
    return hw * hw * (2 * c * mid + 9 * mid ** 2)


def describe(config: Config) -> str:
    return f"c={config['c']} mid={config['mid']}"


def judge(speeds: Speeds, multiplier: int = 1, within: Mapping[str, float] | None = None,
          min_band: float = MIN_BAND) -> ColumnVerdict:
    """The last row (no ReLU, no shortcut) is faster than the first; effect = their speed ratio."""
    labels = list(speeds)
    base = labels[0]
    both = compare_rows(speeds, labels[-1], base, within, min_band)  # ratio > 1: removal speeds up
    status = status_all([both], +1)
    singles = [compare_rows(speeds, lab, base, within, min_band) for lab in labels[1:-1]]
    # rows 2 and 3 of Table 4 keep ReLU without shortcut, and the shortcut without ReLU
    names = ["shortcut removed", "ReLU removed"] if len(singles) == 2 else [c.a for c in singles]
    detail = ", ".join(f"{n} {fmt_change(c.ratio)}" for n, c in zip(names, singles, strict=True))
    return ColumnVerdict(multiplier, status, both.ratio, fmt_change(both.ratio), detail, [both, *singles],
                         decisive=both)


G4 = Guideline(
    key="g4", table=TABLE4, configure=configure, build=build, flops=flops, describe=describe,
    judge=judge, phrase="removing ReLU and shortcut changes the speed by {v}",
    choices=("G4: c = the bottleneck unit's input/output width, mid = c/4 (ResNet 1:4), 3x3 middle conv, "
             "no BN (folded at inference); input 56x56 (assumed: Table 4 gives none)",),
)
