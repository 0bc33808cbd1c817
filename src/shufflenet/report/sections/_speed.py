"""Noise-aware speed rankings shared by the whole-network and unit sections: who is fastest in a group of
rows measured at about equal FLOPs, and whether ShuffleNet v2 is, with the guidelines' own rules (a
difference counts only beyond the measured spreads, and never under the minimum band; see
:mod:`shufflenet.guidelines.judging`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shufflenet.guidelines.judging import HOLDS, INCONCLUSIVE, MIN_BAND, NOT_HOLDS, combine
from shufflenet.result import Column, Table


def ranking(speeds: Mapping[str, float | None]) -> list[str]:
    """Labels by speed, fastest first (rows without a speed left out)."""
    return [k for k, v in sorted(speeds.items(), key=lambda kv: -(kv[1] or 0.0)) if v]


def fastest_status(speeds: Mapping[str, float | None], spreads: Mapping[str, float], who: str,
                   min_band: float = MIN_BAND) -> str:
    """Whether ``who`` is the fastest of ``speeds``: ``holds`` when it beats the fastest other row by more
    than the band (the two rows' relative spreads added, at least ``min_band``), ``does not hold`` when
    another row beats it by more than that, else ``inconclusive``. Paper rows pass no spreads."""
    mine = speeds.get(who)
    others = {k: v for k, v in speeds.items() if k != who and v}
    if not mine or not others:
        return INCONCLUSIVE
    rival, best = max(others.items(), key=lambda kv: kv[1])
    band = max(min_band, spreads.get(who, 0.0) + spreads.get(rival, 0.0))
    ratio = mine / best
    if ratio > 1 + band:
        return HOLDS
    if ratio < 1 / (1 + band):
        return NOT_HOLDS
    return INCONCLUSIVE


def combined(statuses: Sequence[str]) -> str:
    return combine(list(statuses))


def count_of(statuses: Sequence[str], status: str = HOLDS) -> int:
    return sum(1 for s in statuses if s == status)


def spread_of(measurement: Mapping[str, Any]) -> float:
    v = measurement.get("relative_iqr")
    return float(v) if isinstance(v, (int, float)) else 0.0


def suite_table(result: Any, key: str) -> Table:
    """A suite's rows as the report shows them: only the columns its ``headers`` name (what the text table of
    ``shufflenet bench --suite`` shows), its notes below; the JSON keeps every field."""
    cols = [Column(k, label) for k, label in result.headers.items()]
    notes = [*result.notes, *result.bench.notes()]
    return Table(result.title, cols, [dict(r) for r in result.rows], notes, key=key)
