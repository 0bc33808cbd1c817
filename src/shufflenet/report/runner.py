"""Running the report: each selected section in turn, failures isolated, with a progress line per section
and an ETA for the whole report.

Measuring sections run first, in registration order; summary sections ("The machine", "At a glance") run
after them and read their outputs. A section that raises :class:`SectionUnavailable` is recorded as not run
here, with the reason; any other exception is recorded in that section (its first line and traceback) and
the others still run; ``KeyboardInterrupt`` stops the run (nothing is written).
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime, timezone

from shufflenet.environment import capture_environment, package_version
from shufflenet.errors import first_line
from shufflenet.report.context import Progress, ReportContext, ReportOptions, no_progress
from shufflenet.report.document import Report, SectionRecord
from shufflenet.report.section import Section, SectionOutput, SectionUnavailable
from shufflenet.report.selection import select


def _fmt_s(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def plan(options: ReportOptions) -> list[Section]:
    """The sections to run, in run order (measuring ones, then summaries)."""
    sections = select(options.sections)
    return [s for s in sections if not s.summary] + [s for s in sections if s.summary]


def _record(section: Section, status: str, out: SectionOutput | None, wall: float, *, reason: str = "",
            error: str = "", tb: str = "") -> SectionRecord:
    return SectionRecord(**(out.parts() if out is not None else {}), key=section.key, title=section.title,
                         order=section.order, status=status, reason=reason, error=error, traceback=tb, wall_s=wall)


def run_report(options: ReportOptions, *, progress: Progress = no_progress,
               log: Callable[[str], None] = lambda message: None,
               command: Sequence[str] | None = None) -> Report:
    """Run the sections ``options`` selects and return the :class:`Report` (nothing is written here; see
    :func:`shufflenet.report.writer.write_report`)."""
    start = time.perf_counter()
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    ctx = ReportContext(options, progress=progress, log=log)
    ctx.shared("load_avg_start", lambda: round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None)
    ctx.machine_from_cache()  # before any section measures (and caches) the ceilings
    env = capture_environment(device=options.device, threads=options.resolved_threads())
    ctx.shared("where", lambda: f"{env.get('gpu_name') or env.get('cpu_model')}, {env.get('threads')} thread(s)")
    sections = plan(options)
    records: dict[str, SectionRecord] = {}
    ctx.titles.update({s.key: s.title for s in sections})
    for i, section in enumerate(sections):
        left = sum(s.expected_seconds(options) for s in sections[i:])
        log(f"[{i + 1}/{len(sections)}] {section.title} (about {_fmt_s(section.expected_seconds(options))}; "
            f"report done in about {_fmt_s(left)})")
        t0 = time.perf_counter()
        try:
            out = section.run(ctx)
        except SectionUnavailable as exc:
            records[section.key] = _record(section, "unavailable", None, time.perf_counter() - t0,
                                           reason=first_line(exc))
            ctx.not_run[section.key] = f"not run here: {first_line(exc)}"
            log(f"    not run here: {first_line(exc)}")
            continue
        except Exception as exc:  # noqa: BLE001 - one section's failure must not lose the others
            records[section.key] = _record(section, "failed", None, time.perf_counter() - t0,
                                           error=f"{type(exc).__name__}: {first_line(exc)}",
                                           tb=traceback.format_exc())
            ctx.not_run[section.key] = f"failed: {first_line(exc)}"
            log(f"    FAILED: {type(exc).__name__}: {first_line(exc)}")
            continue
        records[section.key] = _record(section, "ok", out, time.perf_counter() - t0)
        ctx.outputs[section.key] = out
        log(f"    done in {_fmt_s(time.perf_counter() - t0)}: {out.finding}")
    ordered = sorted(records.values(), key=lambda r: r.order)
    return Report(sections=ordered, options=options.to_dict(), environment=env,
                  command=list(command) if command is not None else ["shufflenet", *sys.argv[1:]],
                  created=created, wall_s=time.perf_counter() - start, version=package_version())
