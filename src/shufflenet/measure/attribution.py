"""Joining measured ops to the cost engine's rows and classifying them into the paper's Fig. 2 buckets
(step 1 of the method in :mod:`shufflenet.measure.profile`).

Each cost row (:class:`shufflenet.cost.report.LayerCost`, in execution order) goes to the first top-level
op at or after the previous match that ran in the same module and dispatched an aten op of that name; the
op then has that row's FLOPs, MAC and kind (dense / group / depthwise conv, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from shufflenet.measure import optypes
from shufflenet.measure.profiler_passes import TopOp


def match_cost(tops: Sequence[TopOp], rows: Sequence[Any]) -> tuple[list[list[int]], int]:
    """Assign each cost row (execution order) to the first top-level op at or after the previous match that
    ran in the same module and dispatched an op of that name. Returns the row indices per op and the
    number of rows left unmatched (they still count in their layer)."""
    subtrees = [set(t.subtree) for t in tops]
    assigned: list[list[int]] = [[] for _ in tops]
    p = unmatched = 0
    for ri, r in enumerate(rows):
        j = p
        while j < len(tops) and not (tops[j].module == r.name and r.op in subtrees[j]):
            j += 1
        if j < len(tops):
            assigned[j].append(ri)
            p = j
        else:
            unmatched += 1
    return assigned, unmatched


def table_kinds(subtree: Sequence[str]) -> set[str]:
    """Cost-engine kinds of the ops of a subtree, from the cost rule tables (conv needs its arguments:
    left to the caller)."""
    from shufflenet.cost import tables

    kinds = set()
    for n in subtree:
        packet = getattr(torch.ops.aten, n, None) if "::" not in n else None
        kind = tables.OP_KINDS.get(packet) if packet is not None else None
        if isinstance(kind, str):
            kinds.add(kind)
    return kinds


def module_conv_kind(module: nn.Module | None) -> str | None:
    groups, cin = getattr(module, "groups", None), getattr(module, "in_channels", None)
    if isinstance(groups, int) and isinstance(cin, int):
        return {optypes.CONV_DENSE: "conv", optypes.CONV_GROUP: "gconv",
                optypes.CONV_DEPTHWISE: "dwconv"}[optypes.conv_bucket(groups, cin)]
    return None


def classify_ops(tops: Sequence[TopOp], rows: Sequence[Any], assigned: Sequence[Sequence[int]],
                 types: dict[str, str], modules: dict[str, nn.Module]) -> list[str]:
    """The Fig. 2 bucket of each top-level op (:func:`shufflenet.measure.optypes.classify`), from the kinds of
    its matched cost rows (else of the aten ops it dispatched, else its module's conv groups)."""
    # Shuffle sequences are looked for within runs of consecutive ops of one module.
    shuffle: set[int] = set()
    start = 0
    for i in range(1, len(tops) + 1):
        if i == len(tops) or tops[i].module != tops[start].module:
            found = optypes.shuffle_positions([t.name for t in tops[start:i]],
                                              [t.input_rank for t in tops[start:i]])
            shuffle.update(start + k for k in found)
            start = i
    buckets = []
    for i, t in enumerate(tops):
        kinds = {rows[r].kind for r in assigned[i]} or table_kinds(t.subtree)
        if optypes.short_name(t.name) in optypes.CONV_OPS and not kinds & {"conv", "gconv", "dwconv"}:
            mk = module_conv_kind(modules.get(t.module))
            if mk:
                kinds.add(mk)
        buckets.append(optypes.classify(t.name, kinds=kinds, module_type=types.get(t.module, ""),
                                        shuffle=i in shuffle))
    return buckets

