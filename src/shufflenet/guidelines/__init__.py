"""The four guidelines of ShuffleNet V2 (paper Sec. 2, Tables 1-4), reproduced on the user's hardware.

- :mod:`~shufflenet.guidelines.guideline` — :class:`Guideline`, one object per experiment: the paper's
  table, row configurations, net builder, closed-form cost, judge and verdict phrase.
- :mod:`~shufflenet.guidelines.g1` ... :mod:`~shufflenet.guidelines.g4` — the paper's four, one module each.
- :mod:`~shufflenet.guidelines.registry` — ``GUIDELINES`` (key -> Guideline), ``get_guideline``, ``register``.
- :mod:`~shufflenet.guidelines.paper_tables` — Tables 1-4 as data (GPU and ARM speeds, channel sets).
- :mod:`~shufflenet.guidelines.blocks` — the benchmark nets (stacked 1x1 convs, fragment blocks, bottleneck).
- :mod:`~shufflenet.guidelines.experiments` — each table's rows as exact layer configurations.
- :mod:`~shufflenet.guidelines.runner` — FLOPs/MAC from the cost engine, speed from the measurement core.
- :mod:`~shufflenet.guidelines.judging` / :mod:`~shufflenet.guidelines.verdicts` — noise-aware "holds /
  does not hold / inconclusive" per claim, on our timings and on the paper's.
- :mod:`~shufflenet.guidelines.plots` — a bar chart per table (ours beside the paper's, normalised).

    from shufflenet.guidelines import RunOptions, run_guidelines
    from shufflenet.render import render
    result = run_guidelines("all", RunOptions(device="cpu", quick=True))
    print("\\n".join(result.headlines()))
    print(render(result, "md"))
"""

from shufflenet.guidelines.experiments import (
    CHANNEL_SETS,
    DEPTH,
    GUIDELINES,
    INPUT_HW,
    RowSpec,
    column_rows,
    experiment_rows,
)
from shufflenet.guidelines.guideline import Guideline, RowConfig
from shufflenet.guidelines.paper_tables import TABLES, PaperRow, PaperTable
from shufflenet.guidelines.registry import get_guideline, register
from shufflenet.guidelines.runner import (
    GuidelinesResult,
    RowResult,
    RunOptions,
    TableResult,
    run_guidelines,
)
from shufflenet.guidelines.verdicts import Comparison, Verdict, compare, judge

__all__ = [
    "CHANNEL_SETS",
    "DEPTH",
    "GUIDELINES",
    "INPUT_HW",
    "TABLES",
    "Comparison",
    "Guideline",
    "GuidelinesResult",
    "PaperRow",
    "PaperTable",
    "RowConfig",
    "RowResult",
    "RowSpec",
    "RunOptions",
    "TableResult",
    "Verdict",
    "column_rows",
    "compare",
    "experiment_rows",
    "get_guideline",
    "judge",
    "register",
    "run_guidelines",
]
