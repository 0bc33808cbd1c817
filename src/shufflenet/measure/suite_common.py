"""What the benchmark suites share: :class:`SuiteResult` (a suite's comparison rows, ours next to the
paper's) and the small helpers that build those rows. The suites themselves are in
:mod:`shufflenet.measure.suites` (Fig. 1 / Table 8) and :mod:`shufflenet.measure.unit_suite`
(Appendix Table 1(b)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shufflenet.measure.bench import BenchResult, BenchRow
from shufflenet.result import Figure, ResultBase, Table

V2 = "ShuffleNet v2"


@dataclass
class SuiteResult(ResultBase):
    """Comparison rows of a suite (ours next to the paper's), the raw bench result, notes, plot path.

    ``headers`` maps row keys to table column labels (the rows also hold keys that only JSON shows).
    ``charts`` are the suite's figures (Fig. 1's scatter for ``paper-fig1``), drawn only when rendered.
    """

    suite: str
    title: str
    rows: list[dict[str, Any]]
    bench: BenchResult
    headers: dict[str, str]
    sources: list[str]
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    plot: str | None = None
    charts: list[Figure] = field(default_factory=list, repr=False)
    verdicts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # per batch, where a suite judges

    def to_dict(self) -> dict[str, Any]:
        bench = self.bench.to_dict()
        return {"suite": self.suite, "title": self.title, "header": self.bench.header(),
                "sources": self.sources, "notes": self.notes, "footer": self.bench.footer(),
                "conventions": bench["conventions"],
                "options": bench["options"], "env": bench["env"], "machine": bench["machine"],
                "wall_s": self.wall_s, "plot": self.plot, "headers": self.headers, "rows": self.rows,
                "measurements": bench["rows"], **({"verdicts": self.verdicts} if self.verdicts else {})}

    @property
    def batches(self) -> list[int]:
        """The batch sizes timed, in the order they were run."""
        return list(dict.fromkeys(r.batch for r in self.bench.rows))

    def tables(self) -> list[Table]:
        """One table: every key of the rows (what the CSV output holds), labelled by ``headers``; the notes,
        the bench footer, the sources and the plot below it."""
        notes = [*self.notes, *self.bench.notes(),
                 f"sources: {'; '.join(self.sources)}; wall time {self.wall_s:.0f} s"]
        if self.plot:
            notes.append(f"plot: {self.plot}")
        return [Table.from_rows(f"{self.bench.title()}\n{self.title}", self.rows, labels=self.headers, notes=notes,
                                key=self.suite)]

    def figures(self) -> list[Figure]:
        return list(self.charts)

    def conventions(self) -> list[str]:
        return self.bench.conventions()


def speed_key(batch: int) -> str:
    # The paper reports ARM (batch 1) in images/s and GPU (batch 8) in batches/s.
    return "b1_images_per_s" if batch == 1 else f"b{batch}_batches_per_s"


def batches_per_s(row: BenchRow) -> float:
    return row.measurement.batches_per_s


def relative(value: float | None, base: float | None) -> float | None:
    return round(value / base, 2) if value and base else None


def noisy_batches(rows: Sequence[BenchRow]) -> str:
    return ",".join(f"b{r.batch}" for r in rows if r.measurement.noisy)
