"""Does each guideline's claim hold on this platform? Noise-aware verdicts from repeated timings.

Each guideline's claim and judge are its own (``g1`` ... ``g4``; their docstrings say what is compared,
what the effect size is and what the paper's own data gives):

- **G1** (Table 1): 1:1 is faster than every other ratio. Effect: the fastest other ratio / 1:1.
- **G2** (Table 2): g=8 is slower than g=1 at equal FLOPs. Effect: speed(g=8) / speed(g=1).
- **G3** (Table 3): every fragmented block is slower than the 1-fragment block. Effect: the 4-fragment
  blocks / 1-fragment.
- **G4** (Table 4): removing ReLU and shortcut speeds the unit up (paper: about 20%). Effect: speed(no
  ReLU, no shortcut) / speed(ReLU+shortcut).

How two rows are compared against the noise, and what "holds / does not hold / inconclusive" mean, is
:mod:`shufflenet.guidelines.judging` (re-exported here). :func:`judge` runs a guideline's judge over every
column of our timings and over the paper's GPU and ARM columns (one value each, so only the 5% floor
applies); :class:`Verdict` is the outcome, with :meth:`Verdict.line` (everything, one line) and
:meth:`Verdict.headline` (one sentence: the paper's effect, ours, the status).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shufflenet.guidelines.g1 import judge as judge_g1
from shufflenet.guidelines.g2 import judge as judge_g2
from shufflenet.guidelines.g3 import judge as judge_g3
from shufflenet.guidelines.g4 import judge as judge_g4
from shufflenet.guidelines.judging import (
    HOLDS,
    INCONCLUSIVE,
    MIN_BAND,
    MIN_PAIRED,
    MIXED,
    NOT_HOLDS,
    PARTLY,
    STATUSES,
    ColumnVerdict,
    Comparison,
    Speeds,
    Z,
    combine,
    compare,
    median,
    relative_iqr,
)
from shufflenet.guidelines.paper_tables import PaperTable
from shufflenet.guidelines.registry import FieldView, get_guideline

__all__ = [
    "HOLDS", "INCONCLUSIVE", "JUDGES", "MIN_BAND", "MIN_PAIRED", "MIXED", "NOT_HOLDS", "PARTLY", "PHRASES",
    "STATUSES", "Z", "ColumnVerdict", "Comparison", "Speeds", "Verdict", "combine", "compare", "judge",
    "judge_g1", "judge_g2", "judge_g3", "judge_g4", "median", "relative_iqr",
]

JUDGES: Mapping[str, Any] = FieldView("judge")  # key -> the guideline's judge (live view of the registry)
PHRASES: Mapping[str, str] = FieldView("phrase")  # key -> the verdict's effect phrase, "{v}" = the values


def _is_verb(status: str) -> bool:
    return status in (HOLDS, NOT_HOLDS, PARTLY)


@dataclass
class Verdict:
    """A guideline's claim judged on our timings, column by column, beside the paper's GPU and ARM data."""

    guideline: str
    claim: str
    status: str
    columns: list[ColumnVerdict]
    paper_gpu: list[ColumnVerdict]
    paper_arm: list[ColumnVerdict]
    phrase: str = ""  # the effect sentence, "{v}" = the values; the registered guideline's when empty

    @property
    def name(self) -> str:
        return self.guideline.upper()

    @property
    def paper_gpu_status(self) -> str:
        return combine([c.status for c in self.paper_gpu])

    @property
    def paper_arm_status(self) -> str:
        return combine([c.status for c in self.paper_arm])

    def _phrase(self) -> str:
        return self.phrase or get_guideline(self.guideline).phrase

    def line(self) -> str:
        """E.g. ``G2 holds on this platform (...): g=8 runs at 0.52x (x1) the speed of g=1 at equal FLOPs
        [g=2/g=1 ...]; paper GPU 0.26x (holds), ARM 0.70x (holds)``."""
        uniform = len({c.status for c in self.columns}) == 1
        values = ", ".join(f"{c.effect_str} (x{c.multiplier}{'' if uniform else ': ' + c.status})"
                           for c in self.columns)
        ours = self._phrase().format(v=values)
        details = "; ".join(f"x{c.multiplier}: {c.detail}" if len(self.columns) > 1 else c.detail
                            for c in self.columns if c.detail)
        notes = [n for c in self.columns for n in c.notes]

        def paper(cols: list[ColumnVerdict]) -> str:
            return f"{'/'.join(c.effect_str for c in cols)} ({combine([c.status for c in cols])})"

        text = f"{self.name} {self.status} on this platform ({self.claim}): {ours}"
        if details:
            text += f" [{details}]"
        if notes:
            text += f" ({'; '.join(notes)})"
        return f"{text}; paper GPU {paper(self.paper_gpu)}, ARM {paper(self.paper_arm)}"

    def headline(self) -> str:
        """One sentence with numbers: the paper's effect on GPU and ARM, ours, and the status, e.g.
        ``The paper: g=8 runs at 0.26x the speed of g=1 at equal FLOPs on GPU and 0.70x on ARM. Here:
        0.58x — G2 holds.`` With several columns the values are listed per column (x1, x2, x4)."""
        mults = [c.multiplier for c in self.columns]
        where = f" ({', '.join(f'x{m}' for m in mults)})" if len(mults) > 1 else ""

        def values(cols: Sequence[ColumnVerdict]) -> str:
            return ", ".join(c.effect_str for c in cols)

        paper = self._phrase().format(v=values(self.paper_gpu)) + f" on GPU and {values(self.paper_arm)} on ARM"
        verdict = self.status if _is_verb(self.status) else f"is {self.status}"
        return f"The paper{where}: {paper}. Here: {values(self.columns)} — {self.name} {verdict}."

    def to_dict(self) -> dict[str, Any]:
        return {"guideline": self.guideline, "claim": self.claim, "status": self.status, "line": self.line(),
                "headline": self.headline(), "paper_gpu_status": self.paper_gpu_status,
                "paper_arm_status": self.paper_arm_status,
                "columns": [c.to_dict() for c in self.columns],
                "paper_gpu": [c.to_dict() for c in self.paper_gpu],
                "paper_arm": [c.to_dict() for c in self.paper_arm]}


def judge_paper(key: str, platform: str, multipliers: Sequence[int] = (1, 2, 4), *,
                table: PaperTable | None = None, min_band: float = MIN_BAND) -> list[ColumnVerdict]:
    """Guideline ``key``'s judge on the paper's own ``platform`` (``"gpu"`` / ``"arm"``) columns."""
    g = get_guideline(key)
    table = table or g.table
    return [g.judge({lab: [v] for lab, v in table.speeds(platform, m).items()}, m, None, min_band)
            for m in multipliers]


def judge(key: str, speeds_by_multiplier: Mapping[int, Speeds],
          within_by_multiplier: Mapping[int, Mapping[str, float]] | None = None,
          table: PaperTable | None = None, min_band: float = MIN_BAND,
          flops_by_multiplier: Mapping[int, Mapping[str, int]] | None = None) -> Verdict:
    """Judge guideline ``key`` on per-round speeds ``{multiplier: {row label: [speed per round]}}``.

    Row labels must be the paper table's, in its order (the first row is the reference). Speeds are in
    any unit, the same for every row of a column. The paper's columns for the same multipliers are
    judged too. Speeds are compared as measured, as the paper compares its rows; when ``flops`` are given
    and the decisive comparison's two rows differ in FLOPs by more than 2% (the paper's rounded channels
    differ by up to 5.5% in Table 1), a note says so, since that much of a speed difference is
    explained by FLOPs alone.
    """
    g = get_guideline(key)
    table = table or g.table
    order = [r.label for r in table.rows]
    cols = []
    for m, speeds in sorted(speeds_by_multiplier.items()):
        missing = [lab for lab in order if lab not in speeds]
        if missing:
            raise ValueError(f"{key} x{m}: no speeds for rows {missing}")
        within = (within_by_multiplier or {}).get(m)
        col = g.judge({lab: list(speeds[lab]) for lab in order}, m, within, min_band)
        flops = (flops_by_multiplier or {}).get(m)
        d = col.decisive
        if flops and d is not None and d.a in flops and d.b in flops and min(flops[d.a], flops[d.b]) > 0:
            row, ref = (d.b, d.a) if d.a == order[0] else (d.a, d.b)  # the reference row last
            fr = flops[row] / flops[ref]
            if abs(fr - 1.0) > 0.02:
                col.notes.append(f"x{m}: {row} has {fr:.3f}x the FLOPs of {ref}")
        cols.append(col)
    mults = [c.multiplier for c in cols]
    paper_gpu = judge_paper(g.key, "gpu", mults, table=table, min_band=min_band)
    paper_arm = judge_paper(g.key, "arm", mults, table=table, min_band=min_band)
    return Verdict(g.key, table.claim, combine([c.status for c in cols]), cols, paper_gpu, paper_arm, g.phrase)
