"""``shufflenet report``: the paper's evaluation run on this machine, as one self-contained report.

Sections register in one place (:mod:`shufflenet.report.registry`); each renders other packages' results
(the cost engine's Table 5, the guideline experiments, the Fig. 1 / Table 8 and Appendix Table 1(b)
suites, the Fig. 2 profiles, a training run) and opens with the paper's finding beside this machine's.

    from shufflenet.report import ReportOptions, run_report, write_report, load_report, compare_reports
    report = run_report(ReportOptions(mode="quick"))          # measures (a few minutes on CPU)
    write_report(report, "runs/report/mine")                   # report.html / .md / .json + PNGs, atomic
    again = load_report("runs/report/mine")                    # --from: no measuring
    diff = compare_reports(again, load_report("other-machine/report.json"))
"""

from shufflenet.report.compare import Comparison, compare_reports, write_comparison
from shufflenet.report.context import ReportContext, ReportOptions
from shufflenet.report.document import FORMAT_VERSION, Report, SectionRecord, load_report
from shufflenet.report.registry import SECTIONS, register
from shufflenet.report.runner import run_report
from shufflenet.report.section import Claim, Section, SectionOutput, SectionUnavailable
from shufflenet.report.writer import write_report

__all__ = [
    "FORMAT_VERSION",
    "SECTIONS",
    "Claim",
    "Comparison",
    "Report",
    "ReportContext",
    "ReportOptions",
    "Section",
    "SectionOutput",
    "SectionRecord",
    "SectionUnavailable",
    "compare_reports",
    "load_report",
    "register",
    "run_report",
    "write_comparison",
    "write_report",
]
