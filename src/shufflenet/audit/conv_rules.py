"""G1 and G2 over a traced network: every 1x1 conv against the G1 bound, every group conv against g=1.

Both use the paper's closed forms (:mod:`shufflenet.cost.analytic`, Sec. 2): a 1x1 conv on an ``h x w`` map
with ``c1 -> c2`` channels in ``g`` groups has ``B = hw*c1*c2/g`` FLOPs and ``MAC = hw(c1+c2) + c1*c2/g``.

- **G1**: ``MAC >= 2*sqrt(hw*B) + B/(hw)``, with equality at ``c1 = c2``. A g-group 1x1 conv is ``g``
  independent 1x1 convs of ``c1/g -> c2/g`` channels, so its bound is ``g`` times the bound at ``B/g``: the
  excess then measures the imbalance alone (the groups are G2's business). Depthwise convs (one channel per
  group) are balanced by construction; they count in G4.
- **G2**: ``MAC = hw*c1 + B*g/c1 + B/(hw)`` grows with ``g`` at fixed input and FLOPs; the reference is the
  same input at g=1 with ``c2/g`` outputs (equal FLOPs). A ``k x k`` group conv reads ``k*k`` times the
  weights of a 1x1 one; that term is the same at both ``g`` (``k*k*c1*c2/g`` = ``k*k*c1*(c2/g)``).

Conventions: the batch folds into the map (``hw = N*H*W``: a 1x1 conv treats every position of every
image alike, so the bound's algebra is unchanged); a strided 1x1 conv is read on its output grid (it is a
subsampling followed by a 1x1 conv); the first conv reading the model's input is not flagged on G1 (its
c1 is the data's).
"""

from __future__ import annotations

import math

from shufflenet.audit.findings import G1_FLAG_EXCESS, G2_FLAG_OVERHEAD, Finding, ratio_text
from shufflenet.audit.trace import ConvInfo, Graph, Node
from shufflenet.cost import analytic


def _grid(node: Node) -> tuple[int, int]:
    """(N*H, W) of a conv's output: the map its closed forms use, the batch folded into the height."""
    shape = node.row.output_shape
    return int(shape[0]) * int(shape[2]), int(shape[3])


def g1_numbers(h: int, w: int, c1: int, c2: int, groups: int = 1) -> tuple[int, int, float]:
    """(FLOPs, MAC, G1 lower bound at equal FLOPs) of a 1x1 conv, from the paper's forms (Sec. 2, G1)."""
    flops = analytic.conv1x1_flops(h, w, c1, c2, groups)
    mac = analytic.conv1x1_mac(h, w, c1, c2, groups)
    bound = groups * analytic.g1_mac_lower_bound(h, w, flops / groups)
    return flops, mac, bound


def g2_numbers(h: int, w: int, conv: ConvInfo) -> tuple[int, float, float]:
    """(FLOPs, MAC at its g, MAC at g=1 with c2/g outputs) of a (k x k) group conv (Sec. 2, G2)."""
    g, c1 = conv.groups, conv.c1
    flops = analytic.conv1x1_flops(h, w, c1, conv.c2, g)  # per kernel tap
    weights_extra = (conv.taps - 1) * c1 * conv.c2 / g  # the same at both g: k*k*c1*c2/g weights in all
    mac_g = analytic.g2_mac(h, w, c1, flops, g) + weights_extra
    mac_1 = analytic.g2_mac(h, w, c1, flops, 1) + weights_extra
    return flops * conv.taps, mac_g, mac_1


def g1_findings(graph: Graph) -> list[Finding]:
    """One finding per 1x1 conv that is not depthwise (see the module docstring)."""
    out = []
    for node in graph.nodes:
        conv = node.conv
        if conv is None or not conv.pointwise or node.row.kind == "dwconv":
            continue
        h, w = _grid(node)
        flops, mac, bound = g1_numbers(h, w, conv.c1, conv.c2, conv.groups)
        excess = mac / bound - 1.0 if bound else 0.0
        per = (conv.c1 // conv.groups, conv.c2 // conv.groups)
        balanced = math.sqrt(per[0] * per[1]) * conv.groups
        stem = conv.reads_model_input
        flagged = excess >= G1_FLAG_EXCESS and not stem
        if stem:
            advice = "reads the model's input: c1 is the data's (not flagged)"
        elif flagged:
            advice = (f"balance it: {conv.c1}->{conv.c2} is {ratio_text(conv.c1, conv.c2)}; c1 = c2 = "
                      f"{round(balanced)} has the same FLOPs and {100 * (1 - bound / mac):.0f}% less MAC")
        else:
            advice = ""
        out.append(Finding("G1", node.module, node.row.module_type, {
            "c1": conv.c1, "c2": conv.c2, "groups": conv.groups, "ratio": ratio_text(conv.c1, conv.c2),
            "map": _map(node), "flops": flops, "mac": mac, "bound": round(bound), "excess_pct": 100 * excess,
            "balanced": round(balanced),
        }, max(0.0, mac - bound), flagged, advice))
    return out


def g1_pairs(graph: Graph, findings: list[Finding], blocks: list[tuple[str, set[int]]]) -> list[dict]:
    """Table 1's block inside the network: two 1x1 convs of one block where the second reads (through any
    ops) the first's ``c2`` channels, e.g. an (inverted) bottleneck's expansion and projection."""
    by_module = {f.module: f for f in findings}
    rows = []
    for path, members in blocks:
        convs = [n for n in graph.nodes if n.index in members and n.conv is not None and n.conv.pointwise
                 and n.row.kind != "dwconv" and n.module in by_module]
        for a, b in zip(convs, convs[1:], strict=False):
            if b.conv is None or a.conv is None or b.conv.c1 != a.conv.c2:
                continue
            fa, fb = by_module[a.module], by_module[b.module]
            mac = fa.evidence["mac"] + fb.evidence["mac"]
            bound = fa.evidence["bound"] + fb.evidence["bound"]
            rows.append({"block": path, "first": a.module, "second": b.module,
                         "channels": f"{a.conv.c1}->{a.conv.c2}->{b.conv.c2}", "mac": mac, "bound": bound,
                         "excess_pct": 100 * (mac / bound - 1) if bound else 0.0})
    return rows


def g2_findings(graph: Graph) -> list[Finding]:
    """One finding per group conv (1 < g, not depthwise), any kernel size."""
    out = []
    for node in graph.nodes:
        conv = node.conv
        if conv is None or conv.groups <= 1 or node.row.kind == "dwconv":
            continue
        h, w = _grid(node)
        flops, mac_g, mac_1 = g2_numbers(h, w, conv)
        overhead = mac_g / mac_1 - 1.0 if mac_1 else 0.0
        flagged = overhead >= G2_FLAG_OVERHEAD
        advice = (f"g={conv.groups} costs {100 * overhead:.0f}% more MAC than g=1 at equal FLOPs "
                  f"({conv.c1}->{conv.c2 // conv.groups}); use fewer groups, or g=1 with a channel split "
                  "(ShuffleNet V2)") if flagged else ""
        out.append(Finding("G2", node.module, node.row.module_type, {
            "c1": conv.c1, "c2": conv.c2, "groups": conv.groups, "kernel": f"{conv.kernel[0]}x{conv.kernel[1]}",
            "map": _map(node), "flops": flops, "mac": round(mac_g), "mac_g1": round(mac_1),
            "overhead_pct": 100 * overhead,
        }, max(0.0, mac_g - mac_1), flagged, advice))
    return out


def _map(node: Node) -> str:
    shape = node.row.output_shape
    return f"{shape[2]}x{shape[3]}" + (f" x{shape[0]}" if shape[0] != 1 else "")
