"""The paper's reading of any network (ShuffleNet V2, Sec. 2, guidelines G1-G4), on its cost report and,
optionally, this machine's measured times.

``shufflenet.audit(model, input_size)`` -- this package is callable -- is :func:`audit_model`: findings per
guideline with the module, the evidence numbers and what each costs; a summary with a score per
guideline, the top offenders and a suggestion for each (:class:`AuditReport`, the result contract).
"""

import inspect
import sys
import types

from shufflenet.audit.findings import Finding
from shufflenet.audit.guideline_audit import audit_model
from shufflenet.audit.measured import MeasureOptions
from shufflenet.audit.report import AuditReport

# reuse exports are added by the reuse module's author
from shufflenet.audit.reuse import ReuseReport, feature_reuse  # noqa: E402 - Sec. 4, Fig. 4

__all__ = ["AuditReport", "Finding", "MeasureOptions", "audit_model"]
__all__ += ["ReuseReport", "feature_reuse"]


class _CallablePackage(types.ModuleType):
    """This package's module type: calling the package calls :func:`audit_model`, so that
    ``shufflenet.audit(model, input_size)`` works while ``shufflenet.audit`` stays the package
    (``import shufflenet.audit.reuse``, ``from shufflenet.audit import AuditReport``)."""

    __call__ = staticmethod(audit_model)
    __signature__ = inspect.signature(audit_model)  # what help() and inspect show for the package called


sys.modules[__name__].__class__ = _CallablePackage
