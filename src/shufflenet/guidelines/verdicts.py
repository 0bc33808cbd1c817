"""Does each guideline's claim hold on this platform? Noise-aware verdicts from repeated timings.

The paper's claims (paper.md §2-§5), as checked here, per table column (multiplier):

- **G1** (Table 1): 1:1 is the fastest ratio — 1:1 is faster than every other ratio.
  Effect size: the fastest other ratio's speed relative to 1:1 (and 1:12's).
- **G2** (Table 2): speed falls as g rises — g=8 is slower than g=1 at equal FLOPs.
  Effect size: speed(g=8) / speed(g=1). Whether every step g -> 2g is slower too is reported as a note.
- **G3** (Table 3): the 4-fragment structures are the slowest — each 4-fragment block is slower than
  each 1- and 2-fragment block. Effect sizes: both 4-fragment blocks relative to 1-fragment, and the
  faster 4-fragment block relative to the slowest other block (the decisive comparison).
- **G4** (Table 4): removing ReLU and shortcut speeds the unit up (paper: about 20%).
  Effect size: speed(no ReLU, no shortcut) / speed(ReLU+shortcut); ReLU-only and shortcut-only removal
  are reported beside it.

**Noise.** Rows of a column are timed in interleaved rounds (``runner``), so each round gives one speed
per row measured close together in time. A comparison of rows a and b uses the per-round ratios
speed_a/speed_b (pairing cancels slow drifts of a shared machine): the effect is their median, and the
difference counts only when ``|ratio - 1|`` exceeds a band ``max(MIN_BAND, Z * SE)`` with Z = 3, where SE
is the relative standard error of that median estimated from the ratios' interquartile range
(``1.2533 * (IQR / median) / 1.349 / sqrt(n)``, n = rounds). ``MIN_BAND`` (5%) is the smallest difference called real: below
it, order effects, caches and clock changes are not ruled out. With fewer than 3 rounds, the two
measurements' own relative IQRs are added instead. Outcomes: faster / slower / within the band. A claim
**holds** when every comparison it needs goes its way beyond the band, **does not hold** when one goes
the other way beyond the band, and is **inconclusive** otherwise (the difference is within the measured
spread). Across columns: the common status, or "partly holds" (holds in some columns, inconclusive in
the rest) or "mixed" (holds in some, contradicted in others).

The paper's own numbers go through the same judges (one value each, so only ``MIN_BAND`` applies):
the paper's data does not support every claim on both platforms either (e.g. G3 on ARM).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shufflenet.guidelines.paper_tables import TABLES, PaperTable

HOLDS = "holds"
NOT_HOLDS = "does not hold"
INCONCLUSIVE = "inconclusive"
PARTLY = "partly holds"
MIXED = "mixed"
STATUSES = (HOLDS, NOT_HOLDS, INCONCLUSIVE, PARTLY, MIXED)

MIN_BAND = 0.05
Z = 3.0
MIN_PAIRED = 3

Speeds = Mapping[str, Sequence[float]]


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return _quantile(sorted(values), 0.5)


def relative_iqr(values: Sequence[float]) -> float:
    """Interquartile range over the median (0 for fewer than two values)."""
    v = sorted(values)
    if len(v) < 2:
        return 0.0
    med = _quantile(v, 0.5)
    return (_quantile(v, 0.75) - _quantile(v, 0.25)) / med if med > 0 else math.inf


@dataclass(frozen=True)
class Comparison:
    """Speed of row ``a`` relative to row ``b``: ``ratio`` > 1 means a is faster."""

    a: str
    b: str
    ratio: float
    band: float
    n: int
    spread: float

    @property
    def outcome(self) -> int:
        """+1: a is faster beyond the band; -1: a is slower beyond the band; 0: within the band."""
        if self.ratio > 1.0 + self.band:
            return 1
        if self.ratio < 1.0 / (1.0 + self.band):
            return -1
        return 0

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "ratio": self.ratio, "band": self.band, "n": self.n,
                "spread": self.spread, "outcome": self.outcome}


def compare(a: Sequence[float], b: Sequence[float], *, names: tuple[str, str] = ("a", "b"),
            min_band: float = MIN_BAND, within: tuple[float, float] = (0.0, 0.0)) -> Comparison:
    """Compare two rows' per-round speeds (see the module docstring for the band).

    Equal-length lists are paired round by round; otherwise the medians are compared and the spread is
    the two lists' relative IQRs combined. ``within`` = each row's relative IQR inside one measurement,
    used when there are fewer than ``MIN_PAIRED`` rounds.
    """
    if not a or not b:
        raise ValueError("compare needs at least one speed per row")
    if any(v <= 0 for v in (*a, *b)):
        raise ValueError("speeds must be positive")
    if len(a) == len(b):
        ratios = [x / y for x, y in zip(a, b, strict=True)]
        ratio, spread, n = median(ratios), relative_iqr(ratios), len(ratios)
    else:
        ratio = median(a) / median(b)
        spread = math.hypot(relative_iqr(a), relative_iqr(b))
        n = min(len(a), len(b))
    if n >= MIN_PAIRED:
        se = 1.2533 * spread / 1.349 / math.sqrt(n)
        band = max(min_band, Z * se)
    else:
        band = max(min_band, within[0] + within[1])
    return Comparison(names[0], names[1], ratio, band, n, spread)


@dataclass
class ColumnVerdict:
    """A claim judged on one column (multiplier) of one data source (ours, paper GPU, paper ARM).

    ``effect`` is the decisive number (see the module docstring), ``effect_str`` the headline effect as
    shown in the verdict line, ``detail`` the secondary effects.
    """

    multiplier: int
    status: str
    effect: float
    effect_str: str
    detail: str
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    decisive: Comparison | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"multiplier": self.multiplier, "status": self.status, "effect": self.effect,
                "effect_str": self.effect_str, "detail": self.detail, "notes": list(self.notes),
                "decisive": self.decisive.to_dict() if self.decisive else None,
                "comparisons": [c.to_dict() for c in self.comparisons]}


def _x(v: float) -> str:
    return f"{v:.2f}x"


def _pct(v: float) -> str:
    return f"{100 * (v - 1):+.0f}%"


def _status_all(comps: Sequence[Comparison], want: int) -> str:
    if any(c.outcome == -want for c in comps):
        return NOT_HOLDS
    if all(c.outcome == want for c in comps):
        return HOLDS
    return INCONCLUSIVE


def _cmp(speeds: Speeds, a: str, b: str, within: Mapping[str, float] | None, min_band: float) -> Comparison:
    w = within or {}
    return compare(speeds[a], speeds[b], names=(a, b), min_band=min_band, within=(w.get(a, 0.0), w.get(b, 0.0)))


def judge_g1(speeds: Speeds, multiplier: int = 1, within: Mapping[str, float] | None = None,
             min_band: float = MIN_BAND) -> ColumnVerdict:
    """1:1 (the first row) is faster than every other ratio; effect = fastest other / 1:1."""
    labels = list(speeds)
    first, others = labels[0], labels[1:]
    comps = [_cmp(speeds, first, o, within, min_band) for o in others]  # ratio > 1: 1:1 faster
    status = _status_all(comps, +1)
    closest = min(comps, key=lambda c: c.ratio)
    best = 1.0 / closest.ratio
    detail = f"{others[-1]} at {_x(1.0 / comps[-1].ratio)}"
    return ColumnVerdict(multiplier, status, best, f"{_x(best)} [{closest.b}]", detail, comps, decisive=closest)


def judge_g2(speeds: Speeds, multiplier: int = 1, within: Mapping[str, float] | None = None,
             min_band: float = MIN_BAND) -> ColumnVerdict:
    """The last row (g=8) is slower than the first (g=1); effect = g=8 / g=1. Steps g -> 2g as notes."""
    labels = list(speeds)
    main = _cmp(speeds, labels[-1], labels[0], within, min_band)  # ratio < 1: g=8 slower
    status = _status_all([main], -1)
    steps = [_cmp(speeds, hi, lo, within, min_band) for lo, hi in zip(labels[:-1], labels[1:], strict=True)]
    notes = [f"not monotone: {s.a} is {_x(s.ratio)} the speed of {s.b}" for s in steps if s.outcome > 0]
    return ColumnVerdict(multiplier, status, main.ratio, _x(main.ratio), "", [main, *steps], notes, main)


def judge_g3(speeds: Speeds, multiplier: int = 1, within: Mapping[str, float] | None = None,
             min_band: float = MIN_BAND) -> ColumnVerdict:
    """Every 4-fragment block is slower than every other block; effect = faster 4-fragment / slowest
    other (< 1 when the claim holds). Headline: the 4-fragment blocks relative to 1-fragment."""
    labels = list(speeds)
    four = [lab for lab in labels if lab.startswith("4-")]
    rest = [lab for lab in labels if lab not in four]
    comps = [_cmp(speeds, f, o, within, min_band) for f in four for o in rest]  # ratio < 1: 4-frag slower
    status = _status_all(comps, -1)
    decisive = max(comps, key=lambda c: c.ratio)
    vs_one = [_cmp(speeds, f, labels[0], within, min_band) for f in four]
    short = "/".join(f"{c.ratio:.2f}" for c in vs_one) + "x"
    detail = f"{decisive.a} is {_x(decisive.ratio)} the speed of {decisive.b}"
    return ColumnVerdict(multiplier, status, decisive.ratio, short, detail, comps + vs_one, decisive=decisive)


def judge_g4(speeds: Speeds, multiplier: int = 1, within: Mapping[str, float] | None = None,
             min_band: float = MIN_BAND) -> ColumnVerdict:
    """The last row (no ReLU, no shortcut) is faster than the first; effect = their speed ratio."""
    labels = list(speeds)
    base = labels[0]
    both = _cmp(speeds, labels[-1], base, within, min_band)  # ratio > 1: removal speeds up
    status = _status_all([both], +1)
    singles = [_cmp(speeds, lab, base, within, min_band) for lab in labels[1:-1]]
    # rows 2 and 3 of Table 4 keep ReLU without shortcut, and the shortcut without ReLU
    names = ["shortcut removed", "ReLU removed"] if len(singles) == 2 else [c.a for c in singles]
    detail = ", ".join(f"{n} {_pct(c.ratio)}" for n, c in zip(names, singles, strict=True))
    return ColumnVerdict(multiplier, status, both.ratio, _pct(both.ratio), detail, [both, *singles],
                         decisive=both)


JUDGES = {"g1": judge_g1, "g2": judge_g2, "g3": judge_g3, "g4": judge_g4}
PHRASES = {
    "g1": "the fastest other ratio runs at {v} the speed of 1:1",
    "g2": "g=8 runs at {v} the speed of g=1 at equal FLOPs",
    "g3": "4-fragment series/parallel run at {v} the speed of 1-fragment",
    "g4": "removing ReLU and shortcut changes the speed by {v}",
}


def combine(statuses: Sequence[str]) -> str:
    """One status for several columns (see the module docstring)."""
    s = set(statuses)
    if not s:
        return INCONCLUSIVE
    if len(s) == 1:
        return statuses[0]
    if HOLDS in s and NOT_HOLDS in s:
        return MIXED
    if HOLDS in s:
        return PARTLY
    return NOT_HOLDS if NOT_HOLDS in s else INCONCLUSIVE


@dataclass
class Verdict:
    """A guideline's claim judged on our timings, column by column, beside the paper's GPU and ARM data."""

    guideline: str
    claim: str
    status: str
    columns: list[ColumnVerdict]
    paper_gpu: list[ColumnVerdict]
    paper_arm: list[ColumnVerdict]

    @property
    def name(self) -> str:
        return self.guideline.upper()

    def line(self) -> str:
        """E.g. ``G2 holds on this platform (...): g=8 runs at 0.52x (x1) the speed of g=1 at equal FLOPs
        [g=2/g=1 ...]; paper GPU 0.26x (holds), ARM 0.70x (holds)``."""
        uniform = len({c.status for c in self.columns}) == 1
        values = ", ".join(f"{c.effect_str} (x{c.multiplier}{'' if uniform else ': ' + c.status})"
                           for c in self.columns)
        ours = PHRASES[self.guideline].format(v=values)
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

    def to_dict(self) -> dict[str, Any]:
        return {"guideline": self.guideline, "claim": self.claim, "status": self.status, "line": self.line(),
                "columns": [c.to_dict() for c in self.columns],
                "paper_gpu": [c.to_dict() for c in self.paper_gpu],
                "paper_arm": [c.to_dict() for c in self.paper_arm]}


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
    table = table or TABLES[key]
    fn = JUDGES[key]
    order = [r.label for r in table.rows]
    cols = []
    for m, speeds in sorted(speeds_by_multiplier.items()):
        missing = [lab for lab in order if lab not in speeds]
        if missing:
            raise ValueError(f"{key} x{m}: no speeds for rows {missing}")
        within = (within_by_multiplier or {}).get(m)
        col = fn({lab: list(speeds[lab]) for lab in order}, m, within, min_band)
        flops = (flops_by_multiplier or {}).get(m)
        d = col.decisive
        if flops and d is not None and d.a in flops and d.b in flops and min(flops[d.a], flops[d.b]) > 0:
            row, ref = (d.b, d.a) if d.a == order[0] else (d.a, d.b)  # the reference row last
            fr = flops[row] / flops[ref]
            if abs(fr - 1.0) > 0.02:
                col.notes.append(f"x{m}: {row} has {fr:.3f}x the FLOPs of {ref}")
        cols.append(col)
    mults = [c.multiplier for c in cols]
    paper_gpu = [fn({lab: [v] for lab, v in table.speeds("gpu", m).items()}, m, None, min_band) for m in mults]
    paper_arm = [fn({lab: [v] for lab, v in table.speeds("arm", m).items()}, m, None, min_band) for m in mults]
    return Verdict(key, table.claim, combine([c.status for c in cols]), cols, paper_gpu, paper_arm)
