"""The paper's closed forms for a 1x1 convolution (ShuffleNet V2, Sec. 2, guidelines G1 and G2).

A 1x1 conv on an ``h x w`` map with ``c1`` input and ``c2`` output channels in ``g`` groups has
``B = h*w*c1*c2/g`` FLOPs (multiply-adds) and, if the cache holds every feature map and weight, reads
the input, the weights and writes the output once: ``MAC = hw(c1+c2) + c1*c2/g``. Batch size 1, no bias.
These are the oracles the engine is tested against and the formulas the G1/G2 experiments and the audit
use.
"""

from __future__ import annotations

import math


def conv1x1_flops(h: int, w: int, c1: int, c2: int, groups: int = 1) -> int:
    """``B = h*w*c1*c2/g`` multiply-adds of a 1x1 (group) conv (paper Sec. 2, G1 and G2)."""
    _check_groups(c1, c2, groups)
    return h * w * c1 * c2 // groups


def conv1x1_mac(h: int, w: int, c1: int, c2: int, groups: int = 1) -> int:
    """``MAC = hw(c1+c2) + c1*c2/g``: input and output maps plus the weights (paper Sec. 2, G1/G2)."""
    _check_groups(c1, c2, groups)
    return h * w * (c1 + c2) + c1 * c2 // groups


def g1_mac_lower_bound(h: int, w: int, flops: float) -> float:
    """G1 (paper Sec. 2, Table 1): for fixed ``B``, ``MAC >= 2*sqrt(hw*B) + B/(hw)`` by the AM-GM
    inequality, with equality exactly when ``c1 == c2`` (equal channel width minimises MAC)."""
    hw = h * w
    return 2.0 * math.sqrt(hw * flops) + flops / hw


def g2_mac(h: int, w: int, c1: int, flops: float, groups: int) -> float:
    """G2 (paper Sec. 2, Table 2): ``MAC = hw*c1 + B*g/c1 + B/(hw)`` for a 1x1 group conv with input
    ``h x w x c1`` and ``B`` FLOPs: with the input and ``B`` fixed, MAC grows with ``g``."""
    hw = h * w
    return hw * c1 + flops * groups / c1 + flops / hw


def g2_mac_exact(h: int, w: int, c1: int, flops: int, groups: int) -> int:
    """:func:`g2_mac` in integers when ``B*g`` is divisible by ``c1`` and ``B`` by ``hw`` (as for any real
    conv, where ``B*g/c1 = hw*c2`` and ``B/(hw) = c1*c2/g``)."""
    hw = h * w
    if (flops * groups) % c1 or flops % hw:
        raise ValueError("flops does not correspond to an integer channel count")
    return hw * c1 + flops * groups // c1 + flops // hw


def _check_groups(c1: int, c2: int, groups: int) -> None:
    if groups < 1 or c1 % groups or c2 % groups:
        raise ValueError(f"channels ({c1}, {c2}) must be divisible by groups={groups}")
