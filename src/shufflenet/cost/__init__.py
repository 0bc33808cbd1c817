"""FLOPs and memory access cost (MAC) of any PyTorch model, from one dispatch-level forward pass.

``count_cost(model, input_size, mode)`` returns a :class:`CostReport`. FLOPs are multiply-adds of conv
and linear layers (the paper's convention); MAC is elements read + written per op (paper Sec. 2).
Extend the rule tables with :func:`register_flop_rule`, :func:`register_mac_rule`, :func:`ignore_ops`.
"""

from shufflenet.cost import analytic, handles, tables
from shufflenet.cost.analytic import conv1x1_flops, conv1x1_mac, g1_mac_lower_bound, g2_mac
from shufflenet.cost.engine import MODES, CostCounter, count_cost
from shufflenet.cost.report import CostGroup, CostReport, LayerCost
from shufflenet.cost.tables import ignore_ops, register_flop_rule, register_mac_rule

__all__ = [
    "MODES",
    "CostCounter",
    "CostGroup",
    "CostReport",
    "LayerCost",
    "analytic",
    "conv1x1_flops",
    "conv1x1_mac",
    "count_cost",
    "g1_mac_lower_bound",
    "g2_mac",
    "handles",
    "ignore_ops",
    "register_flop_rule",
    "register_mac_rule",
    "tables",
]
