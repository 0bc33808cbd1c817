"""G3 (paper Sec. 2, Table 3): network fragmentation reduces the degree of parallelism.

**Experiment.** 10 stacked blocks of the shapes of Appendix Fig. 1 on a 56x56 input: 1-fragment (one 1x1
conv), 2- and 4-fragment-series (1x1 convs in sequence) and 2- and 4-fragment-parallel (1x1 convs side by
side, outputs summed). ``c`` is the table's c (the 1-fragment width: 128/256/512 GPU, 64/128/256 ARM).
The paper does not give the other blocks' widths; FLOPs are held equal to the 1-fragment block with
square convs (every conv width -> width, so blocks stack and each conv is G1-balanced):
``width = round(c / sqrt(fragments))``, i.e. c/2 for 4 fragments (exact) and round(c/sqrt 2) for 2
fragments (45, 91, 181, 362 for c = 64, 128, 256, 512: within 1.2% of the 1-fragment FLOPs).

**Judge.** The paper's claim (Sec. 2, G3): fragmentation reduces the speed, significantly on GPU ("the
4-fragment structure is 3x slower than 1-fragment"), relatively little on ARM. Judged as: *every
multi-fragment block is slower than the 1-fragment block* (each compared with the first row). The status
is that of all four comparisons (holds when every fragmented block is slower beyond the band, does not
hold when one is faster beyond it, inconclusive otherwise). The effect shown is the 4-fragment blocks'
speeds relative to 1-fragment (series/parallel), the decisive number being the faster of the two (the
one nearest to contradicting the claim); the 2-fragment blocks are the detail.

(An earlier form of this judge required every 4-fragment block to be slower than every 1- and 2-fragment
block; the paper's own GPU data contradicts that at c=512, where 4-fragment-series, 349 batches/s, beats
2-fragment-series, 336, and the paper claims no such order.)

**The paper's own data** through this judge: on GPU the claim holds in every column: the 4-fragment
blocks run at 0.31/0.28x (c=128), 0.58/0.45x (c=256) and 0.80/0.67x (c=512) of 1-fragment, every
2-fragment block is slower as well. On ARM the reductions are small: the 4-fragment blocks run at
0.96/0.87x, 1.00/0.83x and 1.00/0.91x, and in every column at least one fragmented block (always
4-fragment-series) is within 5% of 1-fragment, so each column, and ARM as a whole, is *inconclusive*:
the paper's "relatively small" reduction, some of it under the floor below which no difference is called.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from shufflenet.cost.analytic import conv1x1_flops
from shufflenet.guidelines import blocks
from shufflenet.guidelines.guideline import Config, Guideline, RowConfig
from shufflenet.guidelines.judging import (
    MIN_BAND,
    ColumnVerdict,
    Speeds,
    compare_rows,
    status_all,
)
from shufflenet.guidelines.paper_tables import TABLE3, PaperTable

SHAPES = {  # row label -> (fragments, parallel), Appendix Fig. 1
    "1-fragment": (1, False), "2-fragment-series": (2, False), "4-fragment-series": (4, False),
    "2-fragment-parallel": (2, True), "4-fragment-parallel": (4, True),
}


def g3_width(c: int, fragments: int) -> int:
    """The conv width of a ``fragments``-fragment block with the FLOPs of a 1-fragment block of width c:
    ``fragments * width**2 ~= c**2``, i.e. ``round(c / sqrt(fragments))``."""
    return round(c / math.sqrt(fragments))


def configure(table: PaperTable, label: str, channels: str, multiplier: int) -> RowConfig:
    c = table.row(label).config(channels)["c"] * multiplier
    fragments, parallel = SHAPES[label]
    width = g3_width(c, fragments)
    return RowConfig({"c": c, "width": width, "fragments": fragments, "parallel": parallel}, width)


def build(config: Config, depth: int) -> blocks.BenchNet:
    return blocks.g3_net(config["width"], config["fragments"], config["parallel"], depth)


def flops(config: Config, hw: int) -> int:
    return config["fragments"] * conv1x1_flops(hw, hw, config["width"], config["width"])


def describe(config: Config) -> str:
    if config["fragments"] == 1:
        return f"w={config['width']}"
    return f"w={config['width']} x{config['fragments']} {'parallel' if config['parallel'] else 'series'}"


def _ratios(comps: list) -> str:
    return "/".join(f"{c.ratio:.2f}" for c in comps) + "x"


def judge(speeds: Speeds, multiplier: int = 1, within: Mapping[str, float] | None = None,
          min_band: float = MIN_BAND) -> ColumnVerdict:
    """Every fragmented block is slower than 1-fragment (the first row); effect = the 4-fragment blocks
    relative to 1-fragment, decisive = the faster of them (see the module docstring)."""
    labels = list(speeds)
    one, fragmented = labels[0], labels[1:]
    comps = [compare_rows(speeds, f, one, within, min_band) for f in fragmented]  # ratio < 1: slower
    status = status_all(comps, -1)
    four = [c for c in comps if SHAPES.get(c.a, (0,))[0] == 4] or comps
    two = [c for c in comps if c not in four]
    decisive = max(four, key=lambda c: c.ratio)
    detail = f"2-fragment series/parallel at {_ratios(two)}" if two else ""
    notes = [f"{c.a} is faster than {one} ({c.ratio:.2f}x)" for c in comps if c.outcome > 0]
    return ColumnVerdict(multiplier, status, decisive.ratio, _ratios(four), detail, comps, notes, decisive)


G3 = Guideline(
    key="g3", table=TABLE3, configure=configure, build=build, flops=flops, describe=describe,
    judge=judge, phrase="4-fragment series/parallel run at {v} the speed of 1-fragment",
    choices=("G3: bare 1x1 convs; fragment widths round(c/sqrt(n)) hold FLOPs equal to the 1-fragment block "
             "(n=2: 45/91/181/362, n=4: c/2); the parallel blocks sum their outputs",),
)
