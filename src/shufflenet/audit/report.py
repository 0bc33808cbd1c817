"""The audit's result (:class:`AuditReport`): a summary, the top offenders, one table per guideline.

Scores (0-100, higher is better), each from the paper's own quantity:

- **G1** = 100 x (sum of the G1 lower bounds) / (sum of the MAC) over the network's 1x1 convs: 100 when
  every 1x1 conv is balanced (c1 = c2), Sec. 2, G1.
- **G2** = 100 x (sum of the MAC at g=1, equal FLOPs) / (sum of the MAC) over its group convs, Sec. 2, G2.
- **G3** = the mean over blocks of ``(13 - ops) / (13 - 3)`` clipped to [0, 1]: 100 for blocks of ResNet's
  2-3 fragmented operators or fewer, 0 at NASNet-A's 13 (Sec. 2, G3).
- **G4** = 100 x (1 - element-wise share of the network's MAC), Sec. 2, G4.

A guideline without any layer it governs (no group conv for G2) scores 100. The *cost* beside each score
is the share of the network's MAC the guideline's findings would save (G1, G2: MAC above the compliant
layer at equal FLOPs; G4: the element-wise ops' MAC). Verdicts and thresholds: :mod:`shufflenet.audit.findings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shufflenet.audit.findings import (
    G1_FLAG_EXCESS,
    G2_FLAG_OVERHEAD,
    G3_FLAG_BRANCHES,
    G3_FLAG_OPS,
    G3_NASNET_OPS,
    G4_FLAG_SHARE,
    GUIDELINES,
    TITLES,
    Finding,
)
from shufflenet.audit.graph_rules import block_score
from shufflenet.result import FLOPS, MAC, SPEED, Column, Figure, ResultBase, Table

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

TOP_PER_GUIDELINE = 3
NETWORK_MAC = ("network MAC = the paper-mode MAC of every op, less the BNs that fold into their conv "
               "(the paper measured with all optimisations on, Sec. 2); G1/G2 read 1x1 convs with the "
               "batch folded into the map and strided convs on their output grid")
SCORES = ("scores 0-100: G1 = sum(G1 bound)/sum(MAC) over 1x1 convs; G2 = sum(MAC at g=1)/sum(MAC) over "
          "group convs; G3 = mean over blocks of (13 - ops)/(13 - 3) clipped to [0, 1] (NASNet-A 13, "
          "ResNet 2-3); G4 = 1 - element-wise share of the network MAC")
THRESHOLDS = (f"flagged: G1 MAC >= {G1_FLAG_EXCESS:.0%} above the bound (about c1:c2 = 1:3); G2 MAC >= "
              f"{G2_FLAG_OVERHEAD:.0%} above g=1 at equal FLOPs; G3 > {G3_FLAG_OPS} fragmented ops or >= "
              f"{G3_FLAG_BRANCHES} side by side; G4 element-wise >= {G4_FLAG_SHARE:.0%} of the network MAC "
              "(then each block at that share of its own MAC); clean = no flagged finding")
G3_PAPER = ("the paper (Sec. 2, G3): NASNet-A has 13 fragmented operators (individual conv or pooling ops) "
            "per block, ResNet 2 or 3; Table 3: 4 fragments are up to ~3x slower on GPU than 1. Here every "
            "conv, pooling or linear kernel counts (a separable conv is 2: depthwise + 1x1); side by side = "
            "the most of them no two of which depend on each other")

_MEASURED_COLUMNS = [Column("time_ms", "time", "ms", ".3f"), Column("time_share_pct", "time share", "%", ".1f")]
_REBUILT_COLUMNS = [Column("alone_ms", "alone", "ms", ".3f"), Column("compliant", "compliant at equal FLOPs"),
                    Column("compliant_ms", "compliant", "ms", ".3f"), Column("speedup", "speed-up", "x", ".2f")]
_COLUMNS: dict[str, list[Column]] = {
    "G1": [Column("module"), Column("c1"), Column("c2"), Column("groups", "g"), Column("ratio", "c1:c2"),
           Column("map"), Column("flops", "FLOPs", fmt="si"), Column("mac", "MAC", fmt="si"),
           Column("bound", "G1 bound", fmt="si"), Column("excess_pct", "excess", "%", ".1f"),
           Column("excess_share_pct", "of network MAC", "%", ".2f"), Column("balanced", "c1=c2 at equal FLOPs")],
    "G2": [Column("module"), Column("c1"), Column("c2"), Column("groups", "g"), Column("kernel"), Column("map"),
           Column("flops", "FLOPs", fmt="si"), Column("mac", "MAC", fmt="si"),
           Column("mac_g1", "MAC at g=1", fmt="si"), Column("overhead_pct", "overhead", "%", ".1f"),
           Column("excess_share_pct", "of network MAC", "%", ".2f")],
    "G3": [Column("module", "block"), Column("type"), Column("ops", "fragmented ops"),
           Column("branches", "side by side"), Column("small_ops", "small ops"), Column("kernels"),
           Column("flops_per_kernel", "FLOPs/kernel", fmt="si"), Column("score", fmt=".0f")],
    "G4": [Column("module", "block / module"), Column("ops", "element-wise ops"),
           Column("elementwise_mac", "MAC", fmt="si"), Column("share_pct", "of network MAC", "%", ".1f"),
           Column("block_share_pct", "of its own MAC", "%", ".1f"), Column("widest", "widest map", "channels")],
}
_SORT = {"G1": "excess_mac", "G2": "excess_mac", "G3": "ops", "G4": "elementwise_mac"}


@dataclass
class AuditReport(ResultBase):
    """One network read against G1-G4 (see :func:`shufflenet.audit.audit_model`)."""

    model: str
    input_size: tuple[int, ...]
    params: int
    flops: int
    paper_mac: int
    network_mac: int
    findings: dict[str, list[Finding]]
    g1_pairs: list[dict[str, Any]] = field(default_factory=list)
    g4_types: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = True
    unsupported_ops: dict[str, int] = field(default_factory=dict)
    measured: dict[str, Any] | None = None
    env: dict[str, Any] = field(default_factory=dict)

    # -- the reading ------------------------------------------------------------------------------

    def flagged(self, guideline: str) -> list[Finding]:
        """The flagged findings of ``guideline``, costliest first."""
        return _sorted(guideline, [f for f in self.findings.get(guideline, []) if f.flagged])

    def elementwise_share(self) -> float:
        """Element-wise ops' share of the network MAC (0-1), the G4 quantity."""
        return sum(f.excess_mac for f in self.findings.get("G4", [])) / self.network_mac if self.network_mac else 0.0

    def verdict(self, guideline: str) -> str:
        """``"flagged"`` when any finding of ``guideline`` is flagged (G4: when the element-wise share of
        the network MAC reaches its threshold), else ``"clean"``."""
        if guideline == "G4":
            return "flagged" if self.elementwise_share() >= G4_FLAG_SHARE else "clean"
        return "flagged" if self.flagged(guideline) else "clean"

    def score(self, guideline: str) -> float:
        """The guideline's score, 0-100 (formulas in the module docstring)."""
        items = self.findings.get(guideline, [])
        if guideline == "G1":
            mac = sum(f.evidence["mac"] for f in items)
            return 100.0 * sum(f.evidence["bound"] for f in items) / mac if mac else 100.0
        if guideline == "G2":
            mac = sum(f.evidence["mac"] for f in items)
            return 100.0 * sum(f.evidence["mac_g1"] for f in items) / mac if mac else 100.0
        if guideline == "G3":
            return 100.0 * sum(block_score(f.evidence["ops"]) for f in items) / len(items) if items else 100.0
        return 100.0 * (1.0 - self.elementwise_share())

    def cost_share(self, guideline: str) -> float | None:
        """The share (%) of the network MAC the guideline's findings cost; ``None`` for G3."""
        if guideline == "G3":
            return None
        total = sum(f.excess_mac for f in self.findings.get(guideline, []))
        return 100.0 * total / self.network_mac if self.network_mac else 0.0

    def summary_rows(self) -> list[dict[str, Any]]:
        rows = []
        for g in GUIDELINES:
            items = self.findings.get(g, [])
            flagged = self.flagged(g)
            worst = flagged[0] if flagged else None
            row: dict[str, Any] = {
                "guideline": g, "verdict": self.verdict(g), "score": self.score(g),
                "flagged": len(flagged), "findings": len(items), "cost_pct": self.cost_share(g),
                "evidence": self._evidence(g), "worst": worst.module if worst else "",
                "suggestion": worst.suggestion if worst else (_CLEAN_ADVICE[g] if self.verdict(g) == "clean"
                                                               else _G4_NETWORK_ADVICE),
            }
            if self.measured is not None:
                row["time_share_pct"] = sum(f.measured.get("time_share_pct", 0.0) for f in flagged)
            rows.append(row)
        return rows

    def _evidence(self, g: str) -> str:
        items = self.findings.get(g, [])
        if not items:
            return {"G1": "no 1x1 conv", "G2": "no group conv", "G3": "no block found", "G4": "no element-wise op"}[g]
        if g == "G1":
            worst = max(items, key=lambda f: f.evidence["excess_pct"])
            return f"{len(items)} 1x1 convs; worst {worst.evidence['ratio']}, {worst.evidence['excess_pct']:.0f}% above the bound"
        if g == "G2":
            gs = sorted({f.evidence["groups"] for f in items})
            worst = max(items, key=lambda f: f.evidence["overhead_pct"])
            return f"{len(items)} group convs, g={','.join(map(str, gs))}; up to {worst.evidence['overhead_pct']:.0f}% MAC over g=1"
        if g == "G3":
            ops = [f.evidence["ops"] for f in items]
            br = max(f.evidence["branches"] for f in items)
            return (f"{len(items)} blocks, {min(ops)}-{max(ops)} fragmented ops (mean {sum(ops) / len(ops):.1f}), "
                    f"up to {br} side by side; paper: NASNet-A {G3_NASNET_OPS}, ResNet 2-3")
        parts = ", ".join(f"{t['type'].split(' (')[0]} {t['share_pct']:.0f}%" for t in self.g4_types)
        return f"element-wise {100 * self.elementwise_share():.0f}% of MAC ({parts})"

    def top_offenders(self) -> list[dict[str, Any]]:
        """Up to :data:`TOP_PER_GUIDELINE` flagged findings per guideline, costliest first."""
        rows = []
        for g in GUIDELINES:
            for f in self.flagged(g)[:TOP_PER_GUIDELINE]:
                row = {"guideline": g, "module": f.module, "evidence": _one_line(f), "suggestion": f.suggestion}
                if self.measured is not None:
                    row["time_share_pct"] = f.measured.get("time_share_pct")
                    row["measured"] = _measured_line(f)
                rows.append(row)
        return rows

    # -- the result contract ------------------------------------------------------------------------

    def conventions(self) -> list[str]:
        lines = [FLOPS, MAC, NETWORK_MAC, SCORES, THRESHOLDS]
        if self.measured is not None:
            lines += [SPEED, f"measured on this machine, {self.measured['options']['threads']} thread(s); time "
                             "share = the finding's ops over the profiled forward time; 'alone' and 'compliant' = "
                             "the bare layer and its guideline-compliant rebuild at equal FLOPs, timed "
                             "interleaved, median over rounds"]
        if not self.complete:
            lines.insert(0, "WARNING: incomplete cost -- ops without a rule: "
                         + ", ".join(f"{k} x{v}" for k, v in sorted(self.unsupported_ops.items())))
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "input_size": list(self.input_size), "params": self.params, "flops": self.flops,
            "paper_mac": self.paper_mac, "network_mac": self.network_mac, "complete": self.complete,
            "unsupported_ops": dict(self.unsupported_ops), "conventions": self.conventions(),
            "thresholds": {"g1_excess": G1_FLAG_EXCESS, "g2_overhead": G2_FLAG_OVERHEAD, "g3_ops": G3_FLAG_OPS,
                           "g3_branches": G3_FLAG_BRANCHES, "g4_share": G4_FLAG_SHARE},
            "scores": {g: self.score(g) for g in GUIDELINES},
            "verdicts": {g: self.verdict(g) for g in GUIDELINES},
            "summary": self.summary_rows(), "top_offenders": self.top_offenders(),
            "findings": {g: [f.to_dict(self.network_mac) for f in _sorted(g, self.findings.get(g, []))]
                         for g in GUIDELINES},
            "g1_pairs": self.g1_pairs, "g4_types": self.g4_types, "measured": self.measured, "env": self.env,
        }

    def tables(self) -> list[Table]:
        size = "x".join(map(str, self.input_size))
        head = Table(f"Audit of {self.model} (input {size}) against the ShuffleNet V2 guidelines (Sec. 2)", [
            Column("guideline"), Column("verdict"), Column("score", fmt=".0f"), Column("flagged"),
            Column("findings"), Column("cost_pct", "cost (of network MAC)", "%", ".1f"), Column("evidence"),
            *([Column("time_share_pct", "flagged time share", "%", ".1f")] if self.measured is not None else []),
            Column("worst"), Column("suggestion"),
        ], self.summary_rows(), notes=[f"network MAC {self.network_mac:,} elements, FLOPs {self.flops:,}"],
            key="summary")
        top = Table("Top offenders", [Column("guideline"), Column("module"), Column("evidence"),
                                      *([Column("time_share_pct", "time share", "%", ".1f"), Column("measured")]
                                        if self.measured is not None else []),
                                      Column("suggestion")], self.top_offenders(), key="top_offenders")
        out = [head, top]
        for g in GUIDELINES:
            cols = list(_COLUMNS[g]) + [Column("flagged"), Column("suggestion")]
            if self.measured is not None:
                cols += _MEASURED_COLUMNS + (_REBUILT_COLUMNS if g in ("G1", "G2") else [])
            rows = [f.row(self.network_mac) for f in _sorted(g, self.findings.get(g, []))]
            notes = {"G3": [G3_PAPER], "G4": [G4_NOTE]}.get(g, [])
            out.append(Table(TITLES[g], cols, rows, notes=notes, key=g.lower()))
            if g == "G1" and self.g1_pairs:
                out.append(Table("G1 pairs: Table 1's block (1x1 c1 -> c2, then 1x1 c2 -> c3) inside a block", [
                    Column("block"), Column("first"), Column("second"), Column("channels"),
                    Column("mac", "MAC", fmt="si"), Column("bound", "G1 bound", fmt="si"),
                    Column("excess_pct", "excess", "%", ".1f")], self.g1_pairs, key="g1_pairs"))
            if g == "G4" and self.g4_types:
                out.append(Table("G4 by type", [Column("type"), Column("ops"), Column("mac", "MAC", fmt="si"),
                                                Column("share_pct", "of network MAC", "%", ".1f")],
                                 self.g4_types, key="g4_types"))
        return out

    def figures(self) -> list[Figure]:
        return [Figure(f"{self.model}: guideline costs and fragmentation per block", self._draw, key="audit",
                       size=(9.0, 3.6))]

    def _draw(self, fig: MplFigure) -> None:
        fig.set_layout_engine("constrained")
        left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 2]})
        keys = ["G1", "G2", "G4"]
        left.bar(keys, [self.cost_share(k) or 0.0 for k in keys], color=["#4C72B0", "#DD8452", "#55A868"])
        left.set_ylabel("cost, % of network MAC")
        left.set_title("cost: G1/G2 excess MAC, G4 element-wise MAC", fontsize=9)
        blocks = self.findings.get("G3", [])
        right.bar(range(len(blocks)), [f.evidence["ops"] for f in blocks], color="#8172B3")
        right.axhline(G3_NASNET_OPS, color="#C44E52", linestyle="--", linewidth=0.9, label="NASNet-A (13)")
        right.axhline(3, color="grey", linestyle=":", linewidth=0.9, label="ResNet (2-3)")
        from matplotlib.ticker import MaxNLocator

        right.xaxis.set_major_locator(MaxNLocator(integer=True))  # blocks are counted, never fractional
        right.set_xlabel("block, in execution order")
        right.set_ylabel("fragmented ops")
        right.set_title("G3: fragmented operators per block", fontsize=9)
        right.legend(fontsize=7, frameon=False)


G4_NOTE = ("element-wise as the paper counts it (Sec. 2, G4): activations, adds and other element-wise "
           "arithmetic, BN that cannot fold into a conv, depthwise conv; concat/copies/shuffles are data movement")
_G4_NETWORK_ADVICE = ("element-wise ops spread over the network: fewer activations, no shortcut adds "
                      "(concat of a channel split), depthwise convs on thinner maps")
_CLEAN_ADVICE = {"G1": "none: every 1x1 conv within the threshold", "G2": "none: no group conv over the threshold",
                 "G3": "none: no block over the threshold", "G4": "none: element-wise ops under the threshold"}


def _sorted(guideline: str, items: list[Finding]) -> list[Finding]:
    key = _SORT[guideline]
    if key == "excess_mac":
        return sorted(items, key=lambda f: -f.excess_mac)
    return sorted(items, key=lambda f: -float(f.evidence[key]))


def _one_line(f: Finding) -> str:
    e = f.evidence
    if f.guideline == "G1":
        return f"{e['c1']}->{e['c2']} ({e['ratio']}) on {e['map']}: MAC {e['excess_pct']:.0f}% above the G1 bound"
    if f.guideline == "G2":
        return (f"g={e['groups']} {e['kernel']} {e['c1']}->{e['c2']} on {e['map']}: MAC {e['overhead_pct']:.0f}% "
                "above g=1 at equal FLOPs")
    if f.guideline == "G3":
        return f"{e['ops']} fragmented ops, {e['branches']} side by side, {e['small_ops']} small ops"
    return f"{e['ops']}: {e['block_share_pct']:.0f}% of its MAC, {e['share_pct']:.1f}% of the network's"


def _measured_line(f: Finding) -> str:
    m = f.measured
    if "compliant_ms" in m:
        return (f"{m['alone_ms']:.3f} ms alone; {m['compliant']} at equal FLOPs {m['compliant_ms']:.3f} ms here "
                f"({m['speedup']:.2f}x)")
    return str(m.get("rebuilt", ""))
