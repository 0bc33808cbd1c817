"""Writing a report directory atomically, never over anything already there.

Every file (``report.html``, ``report.md``, ``report.json``, the figures' PNGs) is first written into a
staging directory beside the destination; a new destination is then one ``rename`` of that directory, and
an existing one (empty, or holding unrelated files) receives the files by ``os.replace``, ``report.json``
last. So a crash or Ctrl-C mid-write leaves either no report or the staging directory (a dot-name, removed
on the next run), never a half report that looks whole. A directory that already holds a report is refused:
a new run never writes over an earlier one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from shufflenet._io import output_problem, write_atomic
from shufflenet.errors import UserInputError
from shufflenet.render import to_json
from shufflenet.report.document import JSON_NAME, Report
from shufflenet.report.layout import figure_names, report_html, report_markdown
from shufflenet.result import FigureUnavailable

STAGING_PREFIX = ".report-staging-"


def report_files(stem: str = "report") -> tuple[str, str, str]:
    return f"{stem}.html", f"{stem}.md", f"{stem}.json"


def check_out_dir(path: str | os.PathLike[str], stem: str = "report",
                  inputs: Sequence[str | os.PathLike[str]] = ()) -> Path:
    """Refuse (one line, :class:`UserInputError`) an output directory that is a file, cannot be written,
    already holds a report, or holds one of ``inputs`` (``--from`` / ``--compare`` files are never written
    over). Returns the path."""
    out = Path(path)
    problem = output_problem(out, "dir")
    if problem:
        raise UserInputError(f"--out {os.fspath(path)}: {problem}")
    if out.is_dir():
        taken = [n for n in report_files(stem) if (out / n).exists()] + sorted(p.name for p in out.glob("fig_*.png"))
        if taken:
            what = ", ".join(taken[:3]) + (", ..." if len(taken) > 3 else "")
            raise UserInputError(f"--out {os.fspath(path)} already holds a report ({what}); a report never "
                                 "overwrites another: choose a new --out (or remove the old report)")
        for inp in inputs:
            src = Path(inp)
            src_dir = src if src.is_dir() else src.parent
            if src_dir.exists() and src_dir.resolve() == out.resolve():
                raise UserInputError(f"--out {os.fspath(path)} is the directory of the input {os.fspath(inp)}; "
                                     "write the new report elsewhere")
    return out


def draw_figures(report: Report) -> tuple[dict[str, bytes], dict[str, str]]:
    """Every figure as PNG bytes by file name, and the reason for each one that cannot be drawn
    (matplotlib missing, a figure file gone from a report read back, or a drawing that raised)."""
    pngs: dict[str, bytes] = {}
    missing: dict[str, str] = {}
    for s, i, name in figure_names(report):
        fig = s.figures[i]
        try:
            pngs[name] = fig.png()
        except FigureUnavailable as exc:
            missing[name] = str(exc)
        except Exception as exc:  # noqa: BLE001 - one bad plot must not lose the report
            missing[name] = f"figure {fig.title!r} could not be drawn: {type(exc).__name__}: {exc}"
    return pngs, missing


def _clean_stale_staging(parent: Path) -> None:
    for old in parent.glob(f"{STAGING_PREFIX}*"):
        try:
            pid = int(old.name.rsplit("-", 1)[-1])
        except ValueError:
            continue
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(old, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_files(out: str | os.PathLike[str], files: dict[str, bytes | str]) -> list[Path]:
    """Write ``files`` (name -> content, the last one written last) into the directory ``out`` through a
    staging directory (see the module docstring); returns the paths written."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale_staging(out.parent)
    staging = out.parent / f"{STAGING_PREFIX}{out.name}-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    try:
        for name, data in files.items():
            write_atomic(staging / name, data)
        if not out.exists():
            os.rename(staging, out)
        else:
            for name in files:
                os.replace(staging / name, out / name)
            staging.rmdir()
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return [out / n for n in files]


def write_report(report: Report, out: str | os.PathLike[str]) -> list[Path]:
    """Write ``report`` into the directory ``out``: its figures as PNG, ``report.html``, ``report.md`` and,
    last, ``report.json`` (what ``--from`` reads); returns the files written."""
    pngs, missing = draw_figures(report)
    html_name, md_name, json_name = report_files()
    files: dict[str, bytes | str] = dict(pngs)
    files[html_name] = report_html(report, pngs, missing)
    files[md_name] = report_markdown(report, {n: n for n in pngs}, missing)
    files[json_name] = to_json(report.to_dict()) + "\n"
    return write_files(out, files)


__all__ = ["JSON_NAME", "check_out_dir", "draw_figures", "report_files", "write_files", "write_report"]
