"""What a report section is: a key, a title, a place in the page, and a function that measures (or reads)
what it needs and returns a :class:`SectionOutput` built from other packages' results.

A section opens with its **finding**: the paper's result and this machine's, in one sentence with numbers.
Its **claims** feed the "At a glance" table and ``--compare`` (a verdict per claim); its **rankings**
(:class:`Ranked` entries, fastest first, with their spreads) let ``--compare`` list every ranking that differs between two machines.
A section that cannot run here raises :class:`SectionUnavailable` with the reason; any other exception is
shown inside the section while the others still run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from shufflenet.result import Figure, Table, json_safe

if TYPE_CHECKING:
    from shufflenet.report.context import ReportContext, ReportOptions

# The verdict words every claim uses (the guidelines' own, plus "n/a" for a claim not measurable here).
VERDICTS = ("holds", "partly holds", "mixed", "does not hold", "inconclusive", "n/a")


_PLURAL = {"holds": "hold", "partly holds": "partly hold", "does not hold": "do not hold"}


def verdict_verb(verdict: str, n: int = 1) -> str:
    """The verdict as the verb of ``n`` subjects: ``holds`` / ``hold``, ``is inconclusive`` / ``are
    inconclusive``."""
    if verdict in _PLURAL:
        return verdict if n == 1 else _PLURAL[verdict]
    return f"{'is' if n == 1 else 'are'} {verdict}"


class SectionUnavailable(RuntimeError):
    """This section cannot run here (no CUDA, a missing optional package, no trained run): the reason is
    shown in the section instead of its results, and it is not a failure of the report."""


@dataclass(frozen=True)
class Claim:
    """One row of "At a glance": a claim of the paper, what the paper measured, what this machine measured,
    and the verdict here (one of :data:`VERDICTS`)."""

    key: str
    claim: str
    paper: str
    here: str
    verdict: str

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"claim {self.key!r}: verdict {self.verdict!r} is not one of {VERDICTS}")

    def to_dict(self) -> dict[str, str]:
        return {"key": self.key, "claim": self.claim, "paper": self.paper, "here": self.here,
                "verdict": self.verdict}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Claim:
        return cls(str(d["key"]), str(d["claim"]), str(d["paper"]), str(d["here"]), str(d["verdict"]))


@dataclass(frozen=True)
class Ranked:
    """One entry of a ranking: a row's label, the value it is ranked by (a speed, a share) and that value's
    relative spread (IQR / median; 0 when not measured), so ``--compare`` can tell a reversal beyond the
    noise from one within it."""

    label: str
    value: float
    spread: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "value": self.value, "spread": self.spread}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Ranked:
        return cls(str(d["label"]), float(d["value"]), float(d.get("spread") or 0.0))


def ranked(values: Mapping[str, float | None], spreads: Mapping[str, float] | None = None) -> list[Ranked]:
    """``values`` as a ranking, highest first (labels without a value left out)."""
    sp = spreads or {}
    order = sorted(((k, v) for k, v in values.items() if v is not None), key=lambda kv: -kv[1])
    return [Ranked(k, float(v), float(sp.get(k) or 0.0)) for k, v in order]


@dataclass
class SectionOutput:
    """What a section produced: its finding sentence, tables, figures, claims, rankings and raw data.

    ``headlines`` are further one-sentence findings shown as a list under the finding (one per guideline).
    ``data`` holds the raw results the section rendered (their ``to_dict()``), JSON-safe; ``timings`` the
    relative spreads of the measurements it took (the machine section summarises them as the run's noise).
    """

    finding: str = ""
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    rankings: dict[str, list[Ranked]] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timings: list[dict[str, Any]] = field(default_factory=list)
    headlines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.data = json_safe(self.data)

    def parts(self) -> dict[str, Any]:
        """The fields of this output (shallow: the same tables, figures and claims), as keywords."""
        return {f.name: getattr(self, f.name) for f in fields(SectionOutput)}


def timing_entry(label: str, spread: float | None, noisy: bool | None) -> dict[str, Any]:
    """One measurement's noise for the machine section: its label, relative IQR and noisy flag."""
    return {"label": label, "spread": spread, "noisy": bool(noisy)}


@dataclass(frozen=True)
class Section:
    """One section of the report (see the module docstring).

    ``order`` places it in the page (lower first); sections run in registration order, except ``summary``
    sections, which run after all others and read their outputs (``ctx.outputs``): "At a glance" and the
    machine's noise summary. ``estimate_s`` gives the expected seconds for the options (the progress ETA
    and ``--sections`` planning).
    """

    key: str
    title: str
    order: int
    run: Callable[[ReportContext], SectionOutput]
    estimate_s: Callable[[ReportOptions], float] = field(default=lambda options: 1.0)
    summary: bool = False
    description: str = ""

    def expected_seconds(self, options: ReportOptions) -> float:
        return float(self.estimate_s(options))


def claims_of(outputs: Sequence[SectionOutput]) -> list[Claim]:
    return [c for o in outputs for c in o.claims]
