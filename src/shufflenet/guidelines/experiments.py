"""The G1-G4 experiments: for each paper table, its rows as exact layer configurations.

Common to all four (paper.md §0, §2-§5): 10 stacked blocks (``DEPTH``) on a 56x56 input (``INPUT_HW``);
three columns per table, indexed by the channel multipliers x1/x2/x4 (``MULTIPLIERS``); two channel sets,
the paper's **GPU** set and its **ARM** set (Tables 1-3 use smaller channels on ARM; Table 4 uses
c = 32/64/128 on both). Which set to use is the caller's choice; the CLI defaults to the ARM set on CPU
and the GPU set on CUDA, matching the platform each set was measured on.

Row configurations (``RowSpec.config``):

- **G1 / Table 1:** ``c1``, ``c2`` = the table's (c1, c2) times the multiplier. Blocks c1 -> c2 -> c1.
  The paper's channels are used exactly; their per-block FLOPs are within 4% of the table mean (up to
  5.5% below the 1:1 row, the paper's rounding — paper.md §2).
- **G2 / Table 2:** ``c`` = the table's c times the multiplier, ``groups`` = g; layers c -> c.
  *Deviation:* the ARM set's g=8 row at x1 has c = 180, which 8 groups cannot divide. When c is not a
  multiple of g we use the multiple of g nearest to the equal-FLOPs width c_g1 * sqrt(g) (c_g1 = the
  g=1 row's width): 184 (= 8 x 23) for 180, 3.3% more FLOPs than g=1, within the 4% tolerance.
- **G3 / Table 3:** ``c`` = the table's c (the 1-fragment width: 128/256/512 GPU, 64/128/256 ARM).
  The paper does not give the other blocks' widths; we hold FLOPs equal to the 1-fragment block with
  square convs (every conv width -> width, so blocks stack and each conv is G1-balanced):
  ``width = round(c / sqrt(fragments))``, i.e. c/2 for 4 fragments (exact) and round(c/sqrt 2) for 2
  fragments (45, 91, 181, 362 for c = 64, 128, 256, 512: within 1.2% of the 1-fragment FLOPs).
- **G4 / Table 4:** ``c`` = 32/64/128 is read as the unit's **input/output width** (what the identity
  shortcut carries) with ResNet's 1:4 bottleneck, ``mid = c/4``; input 56x56 (as Tables 1-3; paper.md
  §5 says the caption gives none). Why this reading: the paper's ARM core runs 1x1 convs at about 5 G
  multiply-adds/s (Table 1 x1: 64 M per image at 76 images/s; Table 2: 128 M at 40 images/s). With
  mid = c/4 the Table 4 ARM speeds imply 1.9-2.7 G/s (plausible for tiny 8-32-wide bottlenecks with
  a 3x3 conv); with c as the bottleneck width (output 4c) they would imply 31-44 G/s, and 20-28 G/s
  with every conv c wide, both impossible on that core. ``relu`` / ``shortcut`` switch the ReLUs and the identity add (see ``blocks.Bottleneck``).

FLOPs (multiply-adds) are equal across each table's rows within +-4% of the table mean
(``FLOPS_TOLERANCE``), as the paper's are; the tests check it with the cost engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from shufflenet.errors import UserInputError
from shufflenet.guidelines import blocks
from shufflenet.guidelines.paper_tables import MULTIPLIERS, TABLES, PaperTable

DEPTH = 10
INPUT_HW = 56
FLOPS_TOLERANCE = 0.04
CHANNEL_SETS = ("gpu", "arm")
GUIDELINES = ("g1", "g2", "g3", "g4")
G4_BOTTLENECK_RATIO = 4


@dataclass(frozen=True)
class RowSpec:
    """One row of one column of a guideline table: an exact network configuration.

    ``column`` is the paper's heading of this column for the channel set (``"x1"``, ``"c=64"``);
    ``paper_gpu`` / ``paper_arm`` are the paper's speeds for this row in this column (GPU batches/s,
    ARM images/s). ``config`` holds the layer configuration; ``notes`` any deviation from the paper.
    """

    guideline: str
    index: int
    label: str
    multiplier: int
    channels: str
    column: str
    config: dict[str, Any]
    in_channels: int
    paper_gpu: float
    paper_arm: float
    depth: int = DEPTH
    hw: int = INPUT_HW
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def key(self) -> str:
        return f"{self.guideline} x{self.multiplier} {self.label}"

    def input_size(self, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, self.in_channels, self.hw, self.hw)

    def describe(self) -> str:
        """The configuration in a few words, e.g. ``c1=32 c2=32`` or ``c=45 x2 series``."""
        c = self.config
        if self.guideline == "g1":
            return f"c1={c['c1']} c2={c['c2']}"
        if self.guideline == "g2":
            return f"c={c['c']} g={c['groups']}"
        if self.guideline == "g3":
            if c["fragments"] == 1:
                return f"w={c['width']}"
            return f"w={c['width']} x{c['fragments']} {'parallel' if c['parallel'] else 'series'}"
        return f"c={c['c']} mid={c['mid']}"

    def build(self) -> nn.Module:
        """A freshly initialised benchmark net for this row (eval mode)."""
        c = self.config
        if self.guideline == "g1":
            net = blocks.g1_net(c["c1"], c["c2"], self.depth)
        elif self.guideline == "g2":
            net = blocks.g2_net(c["c"], c["groups"], self.depth)
        elif self.guideline == "g3":
            net = blocks.g3_net(c["width"], c["fragments"], c["parallel"], self.depth)
        else:
            net = blocks.g4_net(c["c"], c["mid"], c["relu"], c["shortcut"], self.depth)
        return net.eval()

    def expected_flops(self) -> int:
        """Multiply-adds per image from the closed forms (the cost engine must agree; tests check it)."""
        hw, c, d = self.hw * self.hw, self.config, self.depth
        if self.guideline == "g1":
            return d * 2 * hw * c["c1"] * c["c2"]
        if self.guideline == "g2":
            return d * hw * c["c"] * c["c"] // c["groups"]
        if self.guideline == "g3":
            return d * c["fragments"] * hw * c["width"] ** 2
        return d * hw * (2 * c["c"] * c["mid"] + 9 * c["mid"] ** 2)

    def to_dict(self) -> dict[str, Any]:
        return {"guideline": self.guideline, "row": self.label, "index": self.index,
                "multiplier": self.multiplier, "channels": self.channels, "column": self.column,
                "config": dict(self.config), "input_size": list(self.input_size(1)), "depth": self.depth,
                "paper_gpu": self.paper_gpu, "paper_arm": self.paper_arm, "notes": list(self.notes)}


def _nearest_multiple(value: float, of: int) -> int:
    lo = max(of, math.floor(value / of) * of)
    hi = lo + of
    return lo if abs(value - lo) <= abs(hi - value) else hi


def _g1_config(table: PaperTable, label: str, channels: str, m: int) -> tuple[dict[str, Any], int, tuple]:
    base = table.row(label).config(channels)
    c1, c2 = base["c1"] * m, base["c2"] * m
    return {"c1": c1, "c2": c2}, c1, ()


def _g2_config(table: PaperTable, label: str, channels: str, m: int) -> tuple[dict[str, Any], int, tuple]:
    base = table.row(label).config(channels)
    g, c = base["g"], base["c"] * m
    notes: tuple[str, ...] = ()
    if c % g:
        c_g1 = table.rows[0].config(channels)["c"] * m
        fixed = _nearest_multiple(c_g1 * math.sqrt(g), g)
        notes = (f"paper c={c} is not divisible by g={g}; using c={fixed}, the multiple of {g} nearest to "
                 f"the equal-FLOPs width {c_g1}*sqrt({g}) = {c_g1 * math.sqrt(g):.1f}",)
        c = fixed
    return {"c": c, "groups": g}, c, notes


_G3_SHAPES = {
    "1-fragment": (1, False), "2-fragment-series": (2, False), "4-fragment-series": (4, False),
    "2-fragment-parallel": (2, True), "4-fragment-parallel": (4, True),
}


def g3_width(c: int, fragments: int) -> int:
    """The conv width of a ``fragments``-fragment block with the FLOPs of a 1-fragment block of width c:
    ``fragments * width**2 ~= c**2``, i.e. ``round(c / sqrt(fragments))``."""
    return round(c / math.sqrt(fragments))


def _g3_config(table: PaperTable, label: str, channels: str, m: int) -> tuple[dict[str, Any], int, tuple]:
    c = table.row(label).config(channels)["c"] * m
    fragments, parallel = _G3_SHAPES[label]
    width = g3_width(c, fragments)
    return {"c": c, "width": width, "fragments": fragments, "parallel": parallel}, width, ()


def _g4_config(table: PaperTable, label: str, channels: str, m: int) -> tuple[dict[str, Any], int, tuple]:
    base = table.row(label).config(channels)
    c = base["c"] * m
    return ({"c": c, "mid": c // G4_BOTTLENECK_RATIO, "relu": base["relu"], "shortcut": base["shortcut"]},
            c, ())


_CONFIG: dict[str, Callable[[PaperTable, str, str, int], tuple[dict[str, Any], int, tuple]]] = {
    "g1": _g1_config, "g2": _g2_config, "g3": _g3_config, "g4": _g4_config,
}


def check_guideline(key: str) -> str:
    k = str(key).strip().lower()
    if k not in GUIDELINES:
        raise UserInputError(f"unknown guideline {key!r}: choose g1, g2, g3, g4 or all")
    return k


def check_channels(channels: str) -> str:
    ch = str(channels).strip().lower()
    if ch not in CHANNEL_SETS:
        raise UserInputError(f"unknown channel set {channels!r}: choose gpu or arm")
    return ch


def check_multipliers(multipliers: Sequence[int]) -> tuple[int, ...]:
    out = tuple(multipliers)
    if not out or any(m not in MULTIPLIERS for m in out):
        raise UserInputError(f"multipliers must be a non-empty subset of {MULTIPLIERS}, got {list(out)}")
    return tuple(sorted(set(out)))


def column_rows(key: str, channels: str, multiplier: int) -> list[RowSpec]:
    """The rows of one column of a table (one multiplier, one channel set), in the paper's order."""
    key, channels = check_guideline(key), check_channels(channels)
    check_multipliers([multiplier])
    table = TABLES[key]
    column = table.column(channels, multiplier)
    out = []
    for i, prow in enumerate(table.rows):
        config, cin, notes = _CONFIG[key](table, prow.label, channels, multiplier)
        out.append(RowSpec(guideline=key, index=i, label=prow.label, multiplier=multiplier, channels=channels,
                           column=column, config=config, in_channels=cin,
                           paper_gpu=prow.speed("gpu", multiplier), paper_arm=prow.speed("arm", multiplier),
                           notes=notes))
    return out


def experiment_rows(key: str, channels: str, multipliers: Sequence[int] = MULTIPLIERS) -> list[RowSpec]:
    """Every row of a table for the given multipliers, column by column."""
    return [r for m in check_multipliers(multipliers) for r in column_rows(key, channels, m)]


def describe_choices() -> list[str]:
    """The protocol choices the paper leaves open, one line each (for reports and JSON)."""
    return [
        f"{DEPTH} stacked blocks on a {INPUT_HW}x{INPUT_HW} input (paper Tables 1-3; assumed for Table 4)",
        "G1-G3 nets are bare 1x1 convs (no bias, BN or ReLU); the parallel G3 blocks sum their outputs",
        "G2: ARM set g=8 x1 uses c=184 (paper 180 is not divisible by 8)",
        "G3: fragment widths round(c/sqrt(n)) hold FLOPs equal to the 1-fragment block "
        "(n=2: 45/91/181/362, n=4: c/2)",
        "G4: c = the bottleneck unit's input/output width, mid = c/4 (ResNet 1:4), 3x3 middle conv, "
        "no BN (folded at inference); input 56x56",
    ]
