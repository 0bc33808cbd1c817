"""The one result contract: what every result of this package offers, whatever computed it.

A result (a cost report, a measurement, a profile, a suite, a guideline run, a training summary, an
evaluation, predictions, the machine's ceilings) is any object with

* ``to_dict() -> dict`` — JSON-safe, stable keys (a key may be added, never silently renamed);
* ``tables() -> list[Table]`` — titled tables whose cells are raw values, with column names and units;
* ``figures() -> list[Figure]`` — titled plots, drawn only when a renderer asks for them;
* ``conventions() -> list[str]`` — the counting conventions its numbers follow (the sentences below).

:mod:`shufflenet.render` turns any such object into a terminal table, CSV, JSON, Markdown or HTML, so a
new result type never needs a renderer of its own. :class:`ResultBase` gives the defaults (no figures,
no conventions) to a result that has none.

The conventions are written here once. FLOPs are multiply-adds of convolutions and fully connected
layers, as in the ShuffleNet V2 paper (footnote 1 of Sec. 1; torchvision's ``_ops`` metadata uses the
same); MAC is the memory access cost of Sec. 2, G1: elements read plus elements written by each operation,
weights included.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

FLOPS = "FLOPs = multiply-adds of conv + FC layers (the paper's convention, V2 footnote 1)"
FLOPS_ELEMENTWISE = ("FLOPs = multiply-adds of conv + FC layers, plus element-wise ops (BN 2/element, "
                     "activations and adds 1/element); the paper counts conv + FC only")
MAC = ("MAC = elements read + written by each op (the paper's Sec. 2, G1), weights included; a tensor "
       "an op reads twice counts once, except in cat/stack, which copy every occurrence")
DEPLOY = "deploy: BN folded into the producing conv/linear, activations on its output fused"
SPEED = "speed: median over timed rounds; spread = interquartile range (IQR) relative to the median"
GMADDS = ("GMAdd/s = achieved 10^9 multiply-adds per second (= GFLOP/s / 2 when a multiply-add counts "
          "as 2 FLOPs)")
MAC_RATE = "GB/s = MAC bytes (elements read + written x bytes per element) per second"


@dataclass(frozen=True)
class Column:
    """One column of a :class:`Table`: the row key it reads, its header, its unit and how to show it.

    ``fmt`` is a format spec for text renderings (``".2f"``, ``",d"``) or ``"si"`` for decimal prefixes
    (1.235M); ``None`` shows integers as they are and floats with two decimals. CSV and JSON always carry
    the raw value.
    """

    key: str
    label: str = ""
    unit: str = ""
    fmt: str | None = None

    @property
    def header(self) -> str:
        name = self.label or self.key
        return f"{name} ({self.unit})" if self.unit else name


@dataclass
class Table:
    """A titled table: raw cell values (JSON-safe) in ``rows``, keyed by the columns' ``key``.

    ``display=False`` marks a table for CSV only (one wide row of every field, say) that the text,
    Markdown and HTML renderings leave out because another table shows the same values more readably.
    """

    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    key: str = ""
    display: bool = True

    @classmethod
    def from_rows(cls, title: str, rows: Sequence[Mapping[str, Any]], *, units: Mapping[str, str] | None = None,
                  fmts: Mapping[str, str] | None = None, labels: Mapping[str, str] | None = None,
                  notes: Iterable[str] = (), key: str = "") -> Table:
        """A table whose columns are the keys of the first row, in order (units/formats by key)."""
        units, fmts, labels = units or {}, fmts or {}, labels or {}
        keys: list[str] = []
        for r in rows:
            keys += [k for k in r if k not in keys]
        cols = [Column(k, labels.get(k, ""), units.get(k, ""), fmts.get(k)) for k in keys]
        return cls(title, cols, [dict(r) for r in rows], list(notes), key)

    def column_keys(self) -> list[str]:
        return [c.key for c in self.columns]

    def to_dict(self) -> dict[str, Any]:
        """The table as JSON-safe data (what :meth:`from_dict` reads back)."""
        return {"title": self.title, "key": self.key, "display": self.display,
                "columns": [{"key": c.key, "label": c.label, "unit": c.unit, "fmt": c.fmt} for c in self.columns],
                "rows": json_safe(self.rows), "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Table:
        """A table written by :meth:`to_dict`; raises ``KeyError``/``TypeError`` on anything else."""
        cols = [Column(str(c["key"]), str(c.get("label") or ""), str(c.get("unit") or ""), c.get("fmt"))
                for c in d["columns"]]
        rows = [dict(r) for r in d["rows"]]
        return cls(str(d.get("title") or ""), cols, rows, [str(n) for n in d.get("notes") or []],
                   str(d.get("key") or ""), bool(d.get("display", True)))


@dataclass
class Figure:
    """A titled plot, drawn on demand: ``draw`` fills a matplotlib Figure it is given.

    Nothing is drawn (and matplotlib is not imported) until a renderer calls :meth:`png`, which uses an
    object-oriented Agg canvas: the user's matplotlib backend (a notebook's inline one, say) is never
    switched.
    """

    title: str
    draw: Callable[[MplFigure], None]
    key: str = "figure"
    size: tuple[float, float] = (7.0, 4.0)
    dpi: int = 110
    drawn: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_png(cls, title: str, png: bytes, key: str = "figure", size: tuple[float, float] = (7.0, 4.0)) -> Figure:
        """A figure already drawn (read back from a PNG file): :meth:`png` returns ``png`` as it is."""
        return cls(title, _already_drawn, key=key, size=size, drawn=png)

    def png(self) -> bytes:
        """The figure as PNG bytes; raises :class:`FigureUnavailable` when matplotlib is not installed."""
        if self.drawn is not None:
            return self.drawn
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure as MplFigure
        except ImportError as exc:
            raise FigureUnavailable(f"figure {self.title!r} not drawn: matplotlib is not installed "
                                    "(pip install 'shufflenet[plots]')") from exc
        import io

        fig = MplFigure(figsize=self.size)
        FigureCanvasAgg(fig)
        self.draw(fig)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=self.dpi)
        return buf.getvalue()


def _already_drawn(fig: MplFigure) -> None:  # pragma: no cover - png() returns the stored bytes instead
    raise RuntimeError("this figure was read back from a PNG; it has nothing to draw")


class FigureUnavailable(RuntimeError):
    """A figure cannot be drawn here (matplotlib missing): renderers show a note instead of failing."""


@runtime_checkable
class Result(Protocol):
    """What every result offers (see the module docstring)."""

    def to_dict(self) -> dict[str, Any]: ...

    def tables(self) -> list[Table]: ...

    def figures(self) -> list[Figure]: ...

    def conventions(self) -> list[str]: ...


class ResultBase:
    """Defaults for the parts of the contract a result may not have: no figures, no conventions, and a
    title taken from the first table."""

    def tables(self) -> list[Table]:  # pragma: no cover - every result defines its tables
        raise NotImplementedError

    def figures(self) -> list[Figure]:
        return []

    def conventions(self) -> list[str]:
        return []


def json_safe(value: Any) -> Any:
    """``value`` with tuples as lists, non-finite floats as ``None`` and unknown objects as strings, so
    ``json.dumps`` never fails and never writes ``NaN`` (which is not JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "to_dict"):
        return json_safe(value.to_dict())
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy / torch arrays and scalars
        try:
            return json_safe(value.tolist())
        except (TypeError, ValueError, RuntimeError):
            pass
    return str(value)
