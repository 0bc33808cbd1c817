"""What one audit finding is, and the thresholds that flag one (ShuffleNet V2, Sec. 2, G1-G4).

Every finding names a module, carries its evidence numbers and what it costs: ``excess_mac``, the memory
access (elements) that the guideline-compliant layer at equal FLOPs would not need (0 for G3, whose cost
is parallelism, not memory traffic). A finding is **flagged** when its evidence passes its guideline's
threshold; a network is **clean** on a guideline when none of its findings is flagged.

Thresholds, each tied to the paper's own numbers:

- **G1** (Table 1): a 1x1 conv's MAC at least :data:`G1_FLAG_EXCESS` (15%) above the G1 lower bound at equal
  FLOPs: about c1:c2 = 1:3 where the feature maps dominate (Table 1's 1:2 row is 6% above the bound, 1:6 is
  43%, 1:12 is 88%); a layer whose weights dominate its MAC stays near the bound whatever its ratio.
- **G2** (Table 2): a group conv whose MAC is at least :data:`G2_FLAG_OVERHEAD` (10%) above the same conv at
  g=1 with equal FLOPs (same input, c2/g outputs).
- **G3** (Sec. 2, G3: "NASNet-A 13 fragmented operators per block, ResNet 2 or 3"; Table 3): a block with
  more than :data:`G3_FLAG_OPS` (8, nearer NASNet-A's 13 than ResNet's 3) fragmented operators, or with at
  least :data:`G3_FLAG_BRANCHES` (4) operators side by side (Table 3's 4-fragment-parallel block, about 3x
  slower than 1-fragment on the paper's GPU).
- **G4** (Table 4, Fig. 2): element-wise ops (ReLU and other activations, adds and other element-wise
  arithmetic, BN that does not fold into a conv, depthwise conv) taking at least :data:`G4_FLAG_SHARE` (50%)
  of the network's MAC; per block, the same share of the block's own MAC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

G1_FLAG_EXCESS = 0.15
G2_FLAG_OVERHEAD = 0.10
G3_FLAG_OPS = 8
G3_FLAG_BRANCHES = 4
G4_FLAG_SHARE = 0.50

# The paper's G3 reference points (Sec. 2, G3): fragmented operators per block.
G3_NASNET_OPS = 13
G3_RESNET_OPS = (2, 3)

GUIDELINES = ("G1", "G2", "G3", "G4")
TITLES = {
    "G1": "G1: equal channel width minimises MAC",
    "G2": "G2: excessive group convolution increases MAC",
    "G3": "G3: network fragmentation reduces the degree of parallelism",
    "G4": "G4: element-wise operations are non-negligible",
}


@dataclass
class Finding:
    """One layer or block read against one guideline.

    ``evidence`` holds the guideline's numbers (keys are the columns of its table); ``excess_mac`` what it
    costs in elements of memory access; ``measured`` the ``--measure`` numbers (time, time share, and for
    G1/G2 the rebuilt compliant layer's time) when measured.
    """

    guideline: str
    module: str
    module_type: str
    evidence: dict[str, Any]
    excess_mac: float
    flagged: bool
    suggestion: str
    measured: dict[str, Any] = field(default_factory=dict)

    def row(self, network_mac: int) -> dict[str, Any]:
        """The finding as one table row: module, evidence, cost, flag, suggestion, measured numbers."""
        share = 100.0 * self.excess_mac / network_mac if network_mac else 0.0
        out: dict[str, Any] = {"module": self.module, "type": self.module_type, **self.evidence}
        if self.guideline in ("G1", "G2"):
            out.update(excess_mac=round(self.excess_mac), excess_share_pct=share)
        out.update(flagged=self.flagged, suggestion=self.suggestion, **self.measured)
        return out

    def to_dict(self, network_mac: int) -> dict[str, Any]:
        return {"guideline": self.guideline, **self.row(network_mac)}


def ratio_text(c1: int, c2: int) -> str:
    """``c1:c2`` normalised to the smaller side, e.g. ``1:6.0`` or ``4.0:1``."""
    if c1 <= c2:
        return f"1:{c2 / c1:.1f}"
    return f"{c1 / c2:.1f}:1"
