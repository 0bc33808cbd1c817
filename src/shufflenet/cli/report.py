"""``shufflenet report``: the paper's evaluation on this machine, as one self-contained report.

Runs every section (or those ``--sections`` names): the machine and its ceilings, Table 5 re-derived, G1-G4
(Tables 1-4), Figure 1 / Table 8, Figure 2, Appendix Table 1(b) and a training run, with "At a glance"
first. Writes DIR/report.html (self-contained), DIR/report.md, DIR/report.json and the figures as PNG,
atomically, into a new directory (default runs/report/<time>-<device>-<mode>). ``--from`` re-renders a
report.json without measuring; ``--compare A B`` puts two reports side by side and lists every verdict and
ranking that differs. Exit code 1 when a section failed (the others are still written), 2 for bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from shufflenet.cli._common import add_mode_args, int_arg, progress
from shufflenet.errors import UserInputError

DEFAULT_ROOT = Path("runs") / "report"


def add_parser(sub: Any) -> None:
    p = sub.add_parser("report", help="the paper's evaluation on this machine, as one HTML/Markdown/JSON report",
                       description=(__doc__ or "").split("\n\n")[0],
                       epilog="sections (for --sections): " + _section_list())
    add_mode_args(p, "the short run `make run` does (the default; about 3 minutes on a 2-core CPU)",
                  "every section at the sizes of the committed benchmarks (about 14 minutes on a 2-core CPU)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--threads", type=int_arg(1, 4096), default=None, metavar="N",
                   help="intra-op threads (default: 1 on CPU, the paper's single-thread ARM protocol)")
    p.add_argument("--out", dest="out_dir", metavar="DIR", default=None,
                   help=f"a new directory for the report (default: {DEFAULT_ROOT}/<time>-<device>-<mode>)")
    p.add_argument("--sections", metavar="LIST", default=None,
                   help="comma-separated section keys to run (default: all; 'At a glance' and 'The machine' "
                        "always come along)")
    p.add_argument("--train-run", metavar="DIR", default=None,
                   help="a run directory of `shufflenet train` for the Training section")
    p.add_argument("--from", dest="from_report", metavar="REPORT", default=None,
                   help="re-render a report.json (or its directory) without measuring again")
    p.add_argument("--compare", nargs=2, metavar=("A", "B"), default=None,
                   help="two report.json files or directories: side by side, with every verdict and ranking "
                        "that differs")
    p.set_defaults(func=run)


def _section_list() -> str:
    from shufflenet.report.selection import all_sections

    return "; ".join(f"{s.key} ({s.title})" for s in all_sections())


def parse_sections(text: str | None) -> tuple[str, ...] | None:
    from shufflenet.report.selection import get_section

    if text is None:
        return None
    keys = tuple(k.strip() for k in text.replace(" ", ",").split(",") if k.strip())
    if not keys:
        raise UserInputError("--sections is empty: name at least one section")
    return tuple(get_section(k).key for k in keys)  # an unknown key fails here, with "did you mean"


def default_out_dir(suffix: str) -> Path:
    """A new directory ``runs/report/<time>-<suffix>`` (``-2``, ``-3``... when that name is taken)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = DEFAULT_ROOT / f"{stamp}-{suffix.replace(':', '')}"
    out, n = base, 2
    while out.exists():
        out, n = base.with_name(f"{base.name}-{n}"), n + 1
    return out


def _log(quiet: bool) -> Any:
    def log(message: str) -> None:
        if not quiet:
            sys.stderr.write(message + "\n")
            sys.stderr.flush()

    return log


def run(args: argparse.Namespace) -> int:
    from shufflenet.report.writer import check_out_dir, write_report

    quiet = bool(getattr(args, "quiet", False))
    log = _log(quiet)
    if args.compare and args.from_report:
        raise UserInputError("--compare and --from are two different commands: give one")
    if args.compare:
        return _compare(args, log)
    if args.from_report:
        return _rerender(args, log)

    from shufflenet.report.context import ReportOptions
    from shufflenet.report.runner import run_report

    options = ReportOptions(mode=args.mode, device=args.device, threads=args.threads,
                            sections=parse_sections(args.sections), train_run=args.train_run)
    options.resolved_threads()  # a bad --device / --threads fails now, before anything runs
    if args.train_run:
        from shufflenet.report.sections.training import check_train_run

        check_train_run(args.train_run)
    out = Path(args.out_dir) if args.out_dir else default_out_dir(f"{args.device}-{args.mode}")
    check_out_dir(out)
    log(f"shufflenet report ({args.mode}) -> {out}")
    try:
        report = run_report(options, progress=lambda it, desc, total: progress(it, desc, quiet, total), log=log,
                            command=getattr(args, "argv", None))
    except KeyboardInterrupt:
        sys.stderr.write(f"shufflenet: interrupted; no report written ({out} is as it was)\n")
        raise SystemExit(130) from None
    check_out_dir(out)  # nothing appeared there while the report ran
    files = write_report(report, out)
    return _finish(report, files, log)


def glance_lines(report: Any) -> list[str]:
    """At a glance in a terminal: one line per claim, its verdict first."""
    rows = []
    for s in report.sections:
        if s.key == "glance" and s.tables:
            rows = s.tables[0].rows
    width = max((len(str(r.get("verdict", ""))) for r in rows), default=0)
    return [f"  {str(r.get('verdict', '')):<{width}}  {r.get('claim', '')}" for r in rows]


def _finish(report: Any, files: list[Path], log: Any) -> int:
    lines = glance_lines(report)
    if lines:
        sys.stdout.write(f"At a glance ({report.where()}):\n" + "\n".join(lines) + "\n")
    html = next(p for p in files if p.name.endswith(".html"))
    sys.stdout.write(f"report: {html} (+ {len(files) - 1} files beside it; took {report.wall_s:.0f} s)\n")
    if report.failed:  # said even with --quiet: it is why the exit code is 1
        sys.stderr.write("shufflenet: sections that failed (the others are complete): "
                         + "; ".join(f"{s.key}: {s.error}" for s in report.failed) + "\n")
        return 1
    return 0


def _rerender(args: argparse.Namespace, log: Any) -> int:
    from shufflenet.report.document import load_report
    from shufflenet.report.writer import check_out_dir, write_report

    report = load_report(args.from_report)
    out = Path(args.out_dir) if args.out_dir else default_out_dir(
        f"{report.environment.get('device') or 'cpu'}-rerendered")
    check_out_dir(out, inputs=[args.from_report])
    log(f"re-rendering {args.from_report} (measured {report.created}) without measuring")
    files = write_report(report, out)
    return _finish(report, files, log)


def _compare(args: argparse.Namespace, log: Any) -> int:
    from shufflenet.report.compare import compare_reports, write_comparison
    from shufflenet.report.document import load_report
    from shufflenet.report.writer import check_out_dir

    a_path, b_path = args.compare
    if os.path.realpath(a_path) == os.path.realpath(b_path):
        raise UserInputError(f"--compare needs two different reports, got {a_path} twice")
    a, b = load_report(a_path), load_report(b_path)
    out = Path(args.out_dir) if args.out_dir else default_out_dir("compare")
    check_out_dir(out, stem="compare", inputs=[a_path, b_path])
    comparison = compare_reports(a, b, labels=(str(a_path), str(b_path)))
    files = write_comparison(comparison, out)
    sys.stdout.write(comparison.summary_text() + "\n")
    html = next(p for p in files if p.name.endswith(".html"))
    sys.stdout.write(f"comparison: {html}\n")
    return 0
