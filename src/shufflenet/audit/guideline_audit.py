"""Read any network the way the ShuffleNet V2 paper reads networks (Sec. 2, guidelines G1-G4).

:func:`audit_model` traces one forward pass (the cost engine's, with its data flow), finds the building
blocks, and reads

- **G1** every 1x1 conv against the G1 lower bound at equal FLOPs (and Table 1's conv pairs),
- **G2** every group conv against the same FLOPs at g=1,
- **G3** every block's fragmented operators and parallel branches, beside NASNet-A's 13 and ResNet's 2-3,
- **G4** the element-wise ops' share of the network's MAC (ReLU, adds, BN outside a conv, depthwise conv),

and, with ``measure=True``, adds this machine's view: each finding's measured time share and, for flagged
G1/G2 findings, the layer timed alone next to its guideline-compliant rebuild at equal FLOPs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from torch import nn

from shufflenet.audit.blocks import find_blocks
from shufflenet.audit.conv_rules import g1_findings, g1_pairs, g2_findings
from shufflenet.audit.findings import G4_FLAG_SHARE
from shufflenet.audit.graph_rules import folded_bn, g3_findings, g4_findings
from shufflenet.audit.measured import (
    MeasureOptions,
    attach_time_shares,
    rebuild_plan,
    run_profile,
    time_rebuilt,
)
from shufflenet.audit.report import AuditReport
from shufflenet.audit.trace import Graph, check_input_size, trace
from shufflenet.errors import WrongTypeError
from shufflenet.measure import capture_environment
from shufflenet.measure.profile import stage_count
from shufflenet.models import create_model

Progress = Callable[[Iterable[Any], str, int], Iterable[Any]]


def audit_model(
    model: nn.Module | str,
    input_size: Sequence[int] = (1, 3, 224, 224),
    measure: bool = False,
    *,
    options: MeasureOptions | None = None,
    name: str | None = None,
    progress: Progress | None = None,
) -> AuditReport:
    """Audit ``model`` (a module, or a name for :func:`shufflenet.create_model`) on an input of ``input_size``.

    Args:
        measure: also profile the model and time the flagged G1/G2 layers against their compliant rebuilds
            on this machine (``options``: threads, rounds, ...; default 1 thread, the paper's ARM setting).
        name: the model's label in the report (default: the name given, else the module's class name).
        progress: ``progress(iterable, desc, total)`` wraps the measuring steps (e.g. a tqdm bar).

    The model is run in eval mode and its train/eval flags are restored. Bad input (not a module, a shape
    the model rejects) raises :class:`~shufflenet.errors.UserInputError` with a one-line message.
    """
    if isinstance(model, str):
        name = name or model
        model = create_model(model)
    if not isinstance(model, nn.Module):
        raise WrongTypeError(f"audit expects a torch.nn.Module or a model name, got {type(model).__name__}")
    size = check_input_size(input_size)
    label = name or type(model).__name__
    report, graph, deploy = trace(model, size)
    blocks = find_blocks(model, graph)
    folded = folded_bn(report, deploy)
    network_mac = report.mac - sum(report.layers[i].mac for i in folded)
    g1 = g1_findings(graph)
    types = {path or "(root)": type(m).__name__ for path, m in model.named_modules()}
    g4, g4_types = g4_findings(graph, blocks, folded, network_mac, types)
    findings = {"G1": g1, "G2": g2_findings(graph), "G3": g3_findings(blocks), "G4": g4}
    _network_g4(findings, network_mac)
    pairs = g1_pairs(graph, g1, [(b.path, set(b.nodes)) for b in blocks])
    result = AuditReport(model=label, input_size=size, params=report.params, flops=report.flops,
                         paper_mac=report.mac, network_mac=network_mac, findings=findings, g1_pairs=pairs,
                         g4_types=g4_types, complete=report.complete, unsupported_ops=dict(report.unsupported_ops))
    if measure:
        _measure(result, model, graph, size, options or MeasureOptions(), label, progress)
    return result


def _network_g4(findings: dict[str, list[Any]], network_mac: int) -> None:
    """G4 is a network-level reading: its blocks are flagged only when the network's element-wise share
    passes the threshold (see :mod:`shufflenet.audit.findings`)."""
    share = sum(f.excess_mac for f in findings["G4"]) / network_mac if network_mac else 0.0
    if share < G4_FLAG_SHARE:
        for f in findings["G4"]:
            f.flagged = False
            f.suggestion = ""


def _measure(result: AuditReport, model: nn.Module, graph: Graph, size: tuple[int, ...], options: MeasureOptions,
             label: str, progress: Progress | None) -> None:
    start = time.perf_counter()
    total = stage_count(measure_total=False, repeats=options.repeats)
    stages = iter(progress(range(total), "profile", total)) if progress is not None else None

    def on_stage(stage: str) -> None:
        if stages is not None:
            next(stages, None)

    prof = run_profile(model, size, options, label, on_stage)
    if stages is not None:
        for _ in stages:  # finish (and close) the bar
            pass
    forward_s = attach_time_shares(result.findings, prof)
    plan = rebuild_plan(result.findings, graph, size[0], options.rebuild_top)
    time_rebuilt(plan, options, progress)
    result.measured = {"options": options.to_dict(), "forward_ms": 1e3 * forward_s,
                       "rebuilt_layers": len(plan), "wall_s": time.perf_counter() - start}
    result.env = capture_environment(device="cpu", threads=options.threads, batch=size[0], input_size=size)
