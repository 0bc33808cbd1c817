"""The building blocks of the guideline judges: noise-aware comparisons of two rows' speeds and the verdict
of one table column. Each guideline's own judge (in its module, ``g1`` ... ``g4``) is made of these;
:mod:`shufflenet.guidelines.verdicts` runs a judge over every column and beside the paper's data.

**Noise.** Rows of a column are timed in interleaved rounds (``runner``), so each round gives one speed
per row measured close together in time. A comparison of rows a and b uses the per-round ratios
speed_a/speed_b (pairing cancels slow drifts of a shared machine): the effect is their median, and the
difference counts only when ``|ratio - 1|`` exceeds a band ``max(MIN_BAND, Z * SE)`` with Z = 3, where SE
is the relative standard error of that median estimated from the ratios' interquartile range
(``1.2533 * (IQR / median) / 1.349 / sqrt(n)``, n = rounds). ``MIN_BAND`` (5%) is the smallest difference
called real: below it, order effects, caches and clock changes are not ruled out. With fewer than 3
rounds, the two measurements' own relative IQRs are added instead. Outcomes: faster / slower / within the
band. A claim **holds** when every comparison it needs goes its way beyond the band, **does not hold**
when one goes the other way beyond the band, and is **inconclusive** otherwise (the difference is within
the measured spread). Across columns: the common status, or "partly holds" (holds in some columns,
inconclusive in the rest) or "mixed" (holds in some, contradicted in others).

The paper's own numbers go through the same judges (one value each, so only ``MIN_BAND`` applies).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# median and relative IQR (0 for fewer than two values, inf for a median <= 0) are the measurement core's;
# they stay importable from here (verdicts re-exports them).
from shufflenet.measure.timing import median, relative_iqr

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

    ``effect`` is the decisive number (each guideline's judge says which), ``effect_str`` the headline
    effect as shown in the verdict line, ``detail`` the secondary effects.
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


Judge = Callable[[Speeds, int, Mapping[str, float] | None, float], ColumnVerdict]
"""A guideline's judge: ``(speeds by row label, multiplier, within-measurement spreads, min_band)`` ->
the verdict of that column. Row labels are the paper table's, in its order."""


def fmt_ratio(v: float) -> str:
    """``0.26x``."""
    return f"{v:.2f}x"


def fmt_change(v: float) -> str:
    """A speed ratio as a change: 1.17 -> ``+17%``."""
    return f"{100 * (v - 1):+.0f}%"


def status_all(comps: Sequence[Comparison], want: int) -> str:
    """``holds`` when every comparison has outcome ``want``, ``does not hold`` when one has the opposite,
    else ``inconclusive``."""
    if any(c.outcome == -want for c in comps):
        return NOT_HOLDS
    if all(c.outcome == want for c in comps):
        return HOLDS
    return INCONCLUSIVE


def compare_rows(speeds: Speeds, a: str, b: str, within: Mapping[str, float] | None,
                 min_band: float) -> Comparison:
    """:func:`compare` of rows ``a`` and ``b`` of one column, by label."""
    w = within or {}
    return compare(speeds[a], speeds[b], names=(a, b), min_band=min_band, within=(w.get(a, 0.0), w.get(b, 0.0)))


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
