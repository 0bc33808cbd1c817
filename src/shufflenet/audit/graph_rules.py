"""G3 and G4 over a traced network: fragmentation per block, and the element-wise ops' share of MAC.

- **G3** (Sec. 2, G3; Table 3): per block (:mod:`shufflenet.audit.blocks`), its fragmented operators (the
  paper's count: individual conv or pooling ops), how many of them could run side by side, and its small
  ops, beside the paper's "NASNet-A: 13 per block, ResNet: 2 or 3".
- **G4** (Sec. 2, G4; Table 4): the element-wise ops as the paper counts them -- ReLU and other
  activations, AddTensor and other element-wise arithmetic, BN where it cannot fold into a conv (a
  BN that reads anything but a conv output read by nothing else), and depthwise convolution, which has a
  high MAC/FLOPs ratio. Their MAC is taken from the cost engine (elements read + written). The network
  MAC they are a share of leaves out the BNs that fold into their conv (the paper ran with "all
  optimisations on", Sec. 2); concat, copies and shuffles are data movement (Fig. 2's Data/Shuffle), not G4.
"""

from __future__ import annotations

from collections import Counter

from shufflenet.audit.blocks import Block
from shufflenet.audit.findings import (
    G3_FLAG_BRANCHES,
    G3_FLAG_OPS,
    G3_NASNET_OPS,
    G3_RESNET_OPS,
    G4_FLAG_SHARE,
    Finding,
)
from shufflenet.audit.trace import Graph, Node
from shufflenet.cost import CostReport

ELEMENTWISE_KINDS = frozenset({"act", "elementwise", "dwconv"})
G4_TYPES = {"act": "activations (ReLU, ...)", "elementwise": "element-wise arithmetic (add, mul, ...)",
            "norm": "BN / norm not folded into a conv", "dwconv": "depthwise conv"}


def block_score(ops: int) -> float:
    """1 at ResNet's 3 fragmented operators or fewer, 0 at NASNet-A's 13 or more, linear between."""
    top = max(G3_RESNET_OPS)
    return min(1.0, max(0.0, (G3_NASNET_OPS - ops) / (G3_NASNET_OPS - top)))


def g3_findings(blocks: list[Block]) -> list[Finding]:
    """One finding per block (see :mod:`shufflenet.audit.blocks` for how blocks are found)."""
    out = []
    for b in blocks:
        flagged = b.ops > G3_FLAG_OPS or b.branches >= G3_FLAG_BRANCHES
        advice = ""
        if flagged:
            why = []
            if b.ops > G3_FLAG_OPS:
                why.append(f"{b.ops} fragmented ops (NASNet-A: {G3_NASNET_OPS}, ResNet: 2-3)")
            if b.branches >= G3_FLAG_BRANCHES:
                why.append(f"{b.branches} ops side by side (Table 3: 4 parallel fragments ~3x slower on GPU)")
            advice = "; ".join(why) + ": merge branches into fewer, wider convs"
        out.append(Finding("G3", b.path, b.module_type, {
            "ops": b.ops, "branches": b.branches, "small_ops": b.small_ops, "kernels": b.kernels,
            "flops_per_kernel": round(b.flops / b.kernels) if b.kernels else 0, "score": 100 * block_score(b.ops),
        }, 0.0, flagged, advice))
    return out


def folded_bn(report: CostReport, deploy: CostReport) -> set[int]:
    """Indices of the BN rows that fold into their conv: their deploy-mode MAC is 0 (same op sequence)."""
    if len(report.layers) != len(deploy.layers) or any(
            a.op != b.op for a, b in zip(report.layers, deploy.layers, strict=True)):
        return set()
    return {i for i, (a, b) in enumerate(zip(report.layers, deploy.layers, strict=True))
            if a.kind == "norm" and a.mac and not b.mac}


def g4_kind(node: Node, folded: set[int]) -> str | None:
    """The G4 type of ``node`` (a key of :data:`G4_TYPES`), or ``None`` when it is not element-wise."""
    kind = node.row.kind
    if kind in ELEMENTWISE_KINDS:
        return kind
    if kind == "norm" and node.index not in folded:
        return kind
    return None


def owner_of(module: str, blocks: list[Block]) -> str:
    """The block ``module`` is part of; else the module beside the blocks that holds it (``features.0``
    next to ``features.1``, ...) or its top-level module; ``(root)`` for the model's own ops."""
    for b in blocks:
        if b.path == "(root)" or module == b.path or module.startswith(b.path + "."):
            return b.path
    if module in ("", "(root)"):
        return "(root)"
    parents = sorted({b.path.rpartition(".")[0] for b in blocks if "." in b.path}, key=len, reverse=True)
    for parent in parents:
        if module.startswith(parent + "."):
            return parent + "." + module[len(parent) + 1:].split(".", 1)[0]
    return module.split(".", 1)[0]


def g4_findings(graph: Graph, blocks: list[Block], folded: set[int], network_mac: int,
                module_types: dict[str, str] | None = None) -> tuple[list[Finding], list[dict]]:
    """Per block (or top-level module outside blocks): its element-wise ops and their MAC; and the totals
    per G4 type (rows of the by-type table). ``module_types`` maps module paths to class names."""
    groups: dict[str, dict] = {}
    by_type: dict[str, dict] = {}
    types = {**(module_types or {}), **{b.path: b.module_type for b in blocks}}
    for node in graph.nodes:
        owner = owner_of(node.module, blocks)
        g = groups.setdefault(owner, {"mac": 0, "ew": 0, "ops": Counter(), "widest": 0})
        if node.index not in folded:  # a BN folded into its conv is not there at inference
            g["mac"] += node.row.mac
        kind = g4_kind(node, folded)
        if kind is None:
            continue
        g["ew"] += node.row.mac
        g["ops"][_short(node)] += 1
        shape = node.row.output_shape
        if len(shape) >= 2:
            g["widest"] = max(g["widest"], int(shape[1]))
        t = by_type.setdefault(kind, {"type": G4_TYPES[kind], "ops": 0, "mac": 0})
        t["ops"] += 1
        t["mac"] += node.row.mac
    out = []
    for owner, g in groups.items():
        if not g["ew"]:
            continue
        own = g["ew"] / g["mac"] if g["mac"] else 0.0
        flagged = own >= G4_FLAG_SHARE
        ops = ", ".join(f"{k} {v}" for k, v in g["ops"].items())
        advice = ""
        if flagged:
            advice = _g4_advice(g["ops"], g["widest"])
        out.append(Finding("G4", owner, types.get(owner, ""), {
            "ops": ops, "elementwise_mac": g["ew"], "share_pct": 100 * g["ew"] / network_mac if network_mac else 0,
            "block_share_pct": 100 * own, "widest": g["widest"],
        }, float(g["ew"]), flagged, advice))
    rows = [{**t, "share_pct": 100 * t["mac"] / network_mac if network_mac else 0.0} for t in by_type.values()]
    return out, rows


_ACTIVATION_MODULES = {"relu", "relu6", "hardswish", "hardsigmoid", "silu", "gelu", "sigmoid", "tanh", "elu",
                       "leakyrelu", "mish", "prelu", "selu", "celu", "softplus"}


def _short(node: Node) -> str:
    """A short name of an element-wise op: ``dwconv``, ``bn``, the activation module's name (``relu6``,
    which runs as aten ``hardtanh``), else the aten op (``add``, ``mul``)."""
    if node.row.kind == "dwconv":
        return "dwconv"
    if node.row.kind == "norm":
        return "bn"
    module = node.row.module_type.lower()
    if node.row.kind == "act" and module in _ACTIVATION_MODULES:
        return module
    return node.row.op.rstrip("_")


def _g4_advice(ops: Counter, widest: int) -> str:
    parts = []
    if ops.get("dwconv"):
        parts.append(f"depthwise conv on {widest}-channel maps: keep it on thin maps")
    acts = sum(v for k, v in ops.items() if k not in ("dwconv", "bn", "add"))
    if acts:
        parts.append(f"{acts} activation(s): drop the ones not needed, or fuse them into the conv")
    if ops.get("add"):
        parts.append("the shortcut add: a concat of a channel split avoids it (ShuffleNet V2)")
    if ops.get("bn"):
        parts.append("BN that cannot fold: move it directly after a conv")
    return "; ".join(parts)
