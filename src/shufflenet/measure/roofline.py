"""The roofline view of a layer or a model against this machine's ceilings (:mod:`shufflenet.measure.machine`).

A piece of work of ``flops`` multiply-adds (the paper's FLOPs, V2 footnote 1) that moves ``mac_bytes`` bytes
(the paper's memory access cost, Sec. 2, G1, in bytes) has an *intensity* of flops / mac_bytes multiply-adds
per byte. The machine's *ridge point* is its compute ceiling (GMAdd/s, the best measured fp32 kernel) over
its copy bandwidth (GB/s): work above it is bound by compute, work below it by memory -- which is why low
FLOPs alone do not make a network fast (the paper's G1-G4).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shufflenet.measure.machine import MachineCeilings

COMPUTE, MEMORY, NO_MEMORY, UNKNOWN = "compute", "memory", "n/a", "unknown"


def intensity(flops: float, mac_bytes: float) -> float:
    """Multiply-adds per byte of memory access (0 without memory access)."""
    return flops / mac_bytes if mac_bytes else 0.0


def ridge_point(ceilings: MachineCeilings) -> float:
    """Multiply-adds per byte at which the roofline turns: compute ceiling GMAdd/s over copy GB/s."""
    return ceilings.matmul_gmadds / ceilings.copy_gb_per_s


def roofline_bound(flops: int, mac_bytes: int, ceilings: MachineCeilings | None) -> str:
    """``"compute"`` when the intensity (multiply-adds per MAC byte) reaches the ridge point, ``"memory"``
    below it, ``"n/a"`` for an op without memory access (a view), ``"unknown"`` without ceilings."""
    if ceilings is None:
        return UNKNOWN
    if mac_bytes <= 0:
        return NO_MEMORY
    return COMPUTE if flops / mac_bytes >= ridge_point(ceilings) else MEMORY
