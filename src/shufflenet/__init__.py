"""shufflenet: ShuffleNet V2/V1 exact to the papers, and the paper's method — FLOPs *and* memory access
cost (MAC), measured speed, the G1-G4 guideline experiments and model audits — for any PyTorch model — and
the paper's whole evaluation run on this machine as one report (:func:`run_report`)."""

from shufflenet import audit  # the package is callable: shufflenet.audit(model, input_size) -> AuditReport
from shufflenet.audit import AuditReport, audit_model
from shufflenet.cost import CostReport, count_cost
from shufflenet.deploy import ExportResult, export_model, optimize
from shufflenet.measure import Measurement, ProfileReport, measure, profile
from shufflenet.models import create_model, list_models, load_weights
from shufflenet.render import render, write_result
from shufflenet.report import ReportOptions, compare_reports, load_report, run_report, write_report

__version__ = "0.1.0"
__all__ = [
    "AuditReport",
    "CostReport",
    "ExportResult",
    "Measurement",
    "ProfileReport",
    "ReportOptions",
    "__version__",
    "audit",
    "audit_model",
    "compare_reports",
    "count_cost",
    "create_model",
    "export_model",
    "list_models",
    "load_report",
    "load_weights",
    "measure",
    "optimize",
    "profile",
    "render",
    "run_report",
    "write_report",
    "write_result",
]
