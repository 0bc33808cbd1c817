"""The report as data: :class:`Report` (the run: options, environment, exact command, every section) and
:class:`SectionRecord` (one section's status, finding, tables, figures, claims, rankings and raw results).

``Report.to_dict()`` is ``report.json``: versioned (:data:`FORMAT_VERSION`), every raw result, the tables as
data and each figure's PNG file name, so :func:`load_report` can re-render a report (``--from``) or compare
two (``--compare``) without measuring again. A report of a newer format version, or a file that is not a
report, is refused with one line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shufflenet.errors import UserInputError
from shufflenet.report.section import Claim, Ranked, SectionOutput
from shufflenet.result import Figure, FigureUnavailable, ResultBase, Table, json_safe

FORMAT = "shufflenet-report"
FORMAT_VERSION = 1
STATUSES = ("ok", "unavailable", "failed")
JSON_NAME = "report.json"


def figure_file(section: str, index: int, key: str) -> str:
    """The PNG file name of a section's figure (unique within a report)."""
    slug = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in key).strip("-") or "figure"
    return f"fig_{section}_{index}_{slug}.png"


@dataclass(kw_only=True)
class SectionRecord(SectionOutput):
    """One section of a report: what it produced (the fields of :class:`SectionOutput`) and how it ran.
    ``status`` is ``ok``, ``unavailable`` (``reason`` says why: no CUDA, a missing package, no training
    run) or ``failed`` (``error`` is the exception's first line, ``traceback`` the whole of it)."""

    key: str
    title: str
    order: int
    status: str
    reason: str = ""
    error: str = ""
    traceback: str = ""
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def message(self) -> str:
        """Why the section has no results (empty when it has)."""
        if self.status == "unavailable":
            return f"not run here: {self.reason}"
        if self.status == "failed":
            return f"failed: {self.error}"
        return ""

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "order": self.order, "status": self.status,
                "finding": self.finding, "headlines": list(self.headlines),
                "claims": [c.to_dict() for c in self.claims], "rankings": {k: [r.to_dict() for r in v] for k, v in self.rankings.items()},
                "tables": [t.to_dict() for t in self.tables],
                "figures": [{"key": f.key, "title": f.title, "file": figure_file(self.key, i, f.key),
                             "size": list(f.size)} for i, f in enumerate(self.figures)],
                "notes": list(self.notes), "timings": json_safe(self.timings), "reason": self.reason,
                "error": self.error, "traceback": self.traceback, "wall_s": round(self.wall_s, 2),
                "data": json_safe(self.data)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], base: Path | None = None) -> SectionRecord:
        status = str(d["status"])
        if status not in STATUSES:
            raise ValueError(f"section {d.get('key')!r} has an unknown status {status!r}")
        figures = [_stored_figure(f, base) for f in d.get("figures") or []]
        return cls(key=str(d["key"]), title=str(d["title"]), order=int(d["order"]), status=status,
                   finding=str(d.get("finding") or ""), headlines=[str(h) for h in d.get("headlines") or []],
                   tables=[Table.from_dict(t) for t in d.get("tables") or []], figures=figures,
                   claims=[Claim.from_dict(c) for c in d.get("claims") or []],
                   rankings={str(k): [Ranked.from_dict(x) for x in v] for k, v in (d.get("rankings") or {}).items()},
                   data=dict(d.get("data") or {}), notes=[str(n) for n in d.get("notes") or []],
                   timings=list(d.get("timings") or []), reason=str(d.get("reason") or ""),
                   error=str(d.get("error") or ""), traceback=str(d.get("traceback") or ""),
                   wall_s=float(d.get("wall_s") or 0.0))


def _stored_figure(f: Mapping[str, Any], base: Path | None) -> Figure:
    title, key, name = str(f["title"]), str(f.get("key") or "figure"), str(f["file"])
    w, h = (f.get("size") or (7.0, 4.0))[:2]
    path = (base / name) if base is not None else None
    if path is not None and path.is_file():
        return Figure.from_png(title, path.read_bytes(), key=key, size=(float(w), float(h)))
    return MissingFigure(title, _nothing, key=key, size=(float(w), float(h)), file=name)


def _nothing(fig: Any) -> None:  # pragma: no cover - MissingFigure.png never draws
    return None


@dataclass
class MissingFigure(Figure):
    """A figure whose PNG file is not beside the report.json: renderers show a note instead (as they do for
    a figure drawn without matplotlib)."""

    file: str = ""

    def png(self) -> bytes:
        raise FigureUnavailable(f"figure {self.title!r} not shown: its file {self.file} is not beside the "
                                "report.json")


@dataclass
class Report(ResultBase):
    """A whole report (see the module docstring). A result of the contract: ``tables()`` and ``figures()``
    are every section's, in page order, so ``render(report, "csv", table=KEY)`` works like any result."""

    sections: list[SectionRecord]
    options: dict[str, Any]
    environment: dict[str, Any]
    command: list[str]
    created: str
    wall_s: float = 0.0
    version: str = ""
    format_version: int = FORMAT_VERSION

    def section(self, key: str) -> SectionRecord:
        for s in self.sections:
            if s.key == key:
                return s
        raise KeyError(f"no section {key!r} in this report (it has: {', '.join(s.key for s in self.sections)})")

    @property
    def failed(self) -> list[SectionRecord]:
        return [s for s in self.sections if s.status == "failed"]

    def claims(self) -> list[tuple[str, Claim]]:
        return [(s.key, c) for s in self.sections for c in s.claims]

    def where(self) -> str:
        env = self.environment
        return str(env.get("gpu_name") or env.get("cpu_model") or env.get("device") or "unknown machine")

    def title(self) -> str:
        mode = self.options.get("mode", "")
        return (f"ShuffleNet V2 paper on {self.where()} ({self.environment.get('device', 'cpu')}, "
                f"{self.environment.get('threads')} thread(s), {mode})")

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": self.format_version, "shufflenet_version": self.version,
                "created": self.created, "command": list(self.command), "options": json_safe(self.options),
                "environment": json_safe(self.environment), "wall_s": round(self.wall_s, 1),
                "failed_sections": [s.key for s in self.failed],
                "sections": [s.to_dict() for s in self.sections]}

    def tables(self) -> list[Table]:
        return [t for s in self.sections for t in s.tables]

    def figures(self) -> list[Figure]:
        return [f for s in self.sections for f in s.figures]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], base: Path | None = None) -> Report:
        return cls(sections=[SectionRecord.from_dict(s, base) for s in d["sections"]],
                   options=dict(d.get("options") or {}), environment=dict(d.get("environment") or {}),
                   command=[str(c) for c in d.get("command") or []], created=str(d.get("created") or ""),
                   wall_s=float(d.get("wall_s") or 0.0), version=str(d.get("shufflenet_version") or ""),
                   format_version=int(d.get("format_version") or FORMAT_VERSION))


def report_json_path(path: str | os.PathLike[str]) -> Path:
    """``path`` itself, or ``path/report.json`` when ``path`` is a directory."""
    p = Path(path)
    return p / JSON_NAME if p.is_dir() else p


def load_report(path: str | os.PathLike[str]) -> Report:
    """Read a ``report.json`` (or the directory holding one); its figures from the PNGs beside it.

    Raises :class:`UserInputError` (one line) when the file is missing, is not JSON, is not a shufflenet
    report, or was written by a newer format version than this package reads.
    """
    p = report_json_path(path)
    if not p.exists():
        raise UserInputError(f"{os.fspath(path)}: no such report (give a report.json or a directory holding one)")
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserInputError(f"{p} is not a shufflenet report: not JSON ({exc})") from exc
    except OSError as exc:
        raise UserInputError(f"{p}: cannot read it ({exc.strerror or exc})") from exc
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise UserInputError(f"{p} is not a shufflenet report (no \"format\": \"{FORMAT}\" in it)")
    version = d.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise UserInputError(f"{p} is not a shufflenet report: format_version is {version!r}")
    if version > FORMAT_VERSION:
        raise UserInputError(f"{p} is a report of format version {version}, written by a newer shufflenet; this "
                             f"one reads up to version {FORMAT_VERSION}: upgrade shufflenet to read it")
    try:
        return Report.from_dict(d, p.parent)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UserInputError(f"{p} is not a valid shufflenet report: {type(exc).__name__}: {exc}") from exc
