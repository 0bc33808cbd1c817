"""``--measure``: this machine's view of each finding, and the paper's controlled experiment on the user's layers.

- **Time share** of every finding, from one :func:`shufflenet.measure.profile` of the whole model: the
  measured time of its ops (G1/G2: the conv's module; G3: every op of the block; G4: the block's
  element-wise and depthwise-conv ops) over the profiled forward time.
- **Rebuilt layer** (G1 and G2 findings that are flagged): the layer alone, timed next to the same layer
  rebuilt guideline-compliant at equal FLOPs, as the paper's Tables 1 and 2 compare rows at equal FLOPs --
  G1: ``c1 -> c2`` becomes ``c -> c`` with ``c = round(sqrt(c1*c2))``; G2: ``g`` groups become 1 with
  ``c2/g`` outputs on the same input. Both are bare convs (no bias, BN or ReLU), stride and kernel as the
  layer's, timed with :func:`shufflenet.measure.measure` in interleaved rounds that alternate which runs
  first; each reported time is the median over rounds. Layers of identical shape are timed once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from shufflenet.audit.findings import Finding
from shufflenet.audit.trace import ConvInfo, Graph
from shufflenet.measure import measure, profile
from shufflenet.measure.timing import median

Progress = Callable[[Iterable[Any], str, int], Iterable[Any]]
DEFAULT_ROUNDS = 5
DEFAULT_MIN_RUN_TIME = 0.05
DEFAULT_REBUILD_TOP = 12
PROFILE_REPEATS = 30
_TIMED_BUCKETS_G4 = frozenset({"elemwise", "conv_depthwise"})


@dataclass(frozen=True)
class MeasureOptions:
    """How ``--measure`` times: threads (1 = the paper's one-thread ARM setting, Sec. 2), the profile's
    forwards, the rounds and seconds per timed block of the rebuilt layers, and how many distinct layer
    shapes to rebuild (the costliest first)."""

    threads: int = 1
    repeats: int = PROFILE_REPEATS
    rounds: int = DEFAULT_ROUNDS
    min_run_time: float = DEFAULT_MIN_RUN_TIME
    rebuild_top: int = DEFAULT_REBUILD_TOP

    def to_dict(self) -> dict[str, Any]:
        return {"threads": self.threads, "repeats": self.repeats, "rounds": self.rounds,
                "min_run_time": self.min_run_time, "rebuild_top": self.rebuild_top}


def _in(module: str, path: str, whole: bool) -> bool:
    """``module`` runs inside ``path``; ``(root)`` is the whole model when ``whole`` (the model is one block),
    else only the ops of the model's own ``forward``."""
    if path == "(root)":
        return whole or module == path
    return module == path or module.startswith(path + ".")


def attach_time_shares(findings: dict[str, list[Finding]], report: Any) -> float:
    """Add ``time_ms`` and ``time_share_pct`` to every finding from a :class:`ProfileReport`; returns the
    profiled forward time in seconds."""
    total = float(report.profiled_sum_s)
    ops = report.ops
    whole = any(f.module == "(root)" for f in findings.get("G3", []))
    for key, items in findings.items():
        for f in items:
            if key in ("G1", "G2"):
                t = sum(o.time_s for o in ops if o.module == f.module)
            elif key == "G3":
                t = sum(o.time_s for o in ops if _in(o.module, f.module, whole))
            else:
                t = sum(o.time_s for o in ops if _in(o.module, f.module, whole) and o.bucket in _TIMED_BUCKETS_G4)
            f.measured.update(time_ms=1e3 * t, time_share_pct=100.0 * t / total if total > 0 else 0.0)
    return total


def compliant_conv(guideline: str, conv: ConvInfo) -> tuple[nn.Conv2d, int, str]:
    """The layer rebuilt guideline-compliant at equal FLOPs: (conv, its input channels, description)."""
    k, s = conv.kernel, conv.stride
    pad = (k[0] // 2, k[1] // 2)
    if guideline == "G1":
        g = conv.groups  # G1 alone: the same groups, balanced widths (a multiple of g)
        c = max(g, round(math.sqrt(conv.c1 * conv.c2) / g) * g)
        return nn.Conv2d(c, c, k, s, pad, groups=g, bias=False), c, f"{c}->{c}" + (f" g={g}" if g > 1 else "")
    c2 = conv.c2 // conv.groups
    return nn.Conv2d(conv.c1, c2, k, s, pad, bias=False), conv.c1, f"{conv.c1}->{c2} g=1"


def _original(conv: ConvInfo) -> nn.Conv2d:
    k = conv.kernel
    return nn.Conv2d(conv.c1, conv.c2, k, conv.stride, (k[0] // 2, k[1] // 2), groups=conv.groups, bias=False)


def rebuild_plan(findings: dict[str, list[Finding]], graph: Graph, batch: int, top: int
                 ) -> list[tuple[tuple, list[Finding]]]:
    """The distinct (guideline, layer shape) of flagged G1/G2 findings, costliest first, at most ``top``."""
    convs = {n.module: n.conv for n in graph.nodes if n.conv is not None}
    groups: dict[tuple, list[Finding]] = {}
    for key in ("G1", "G2"):
        for f in findings.get(key, []):
            conv = convs.get(f.module)
            if f.flagged and conv is not None:
                groups.setdefault((key, conv, batch), []).append(f)
    plan = sorted(groups.items(), key=lambda kv: -sum(f.excess_mac for f in kv[1]))
    for _, items in plan[top:]:
        for f in items:
            f.measured["rebuilt"] = f"not timed (beyond the {top} costliest layer shapes)"
    return plan[:top]


def time_rebuilt(plan: Sequence[tuple[tuple, list[Finding]]], options: MeasureOptions,
                 progress: Progress | None = None) -> None:
    """Time each planned layer alone and rebuilt compliant (see the module docstring); fills the findings'
    ``alone_ms``, ``compliant``, ``compliant_ms`` and ``speedup``."""
    steps = [(i, r) for i in range(len(plan)) for r in range(options.rounds)]
    times: list[tuple[list[float], list[float]]] = [([], []) for _ in plan]
    nets = []
    for (key, conv, batch), _ in plan:
        fixed, c_in, desc = compliant_conv(key, conv)
        nets.append((_original(conv), (batch, conv.c1, *conv.in_hw), fixed, (batch, c_in, *conv.in_hw), desc))
    it: Iterable[Any] = steps if progress is None else progress(steps, "rebuilt layers", len(steps))
    for i, r in it:
        orig, size, fixed, fixed_size, _ = nets[i]
        pair = [(0, orig, size), (1, fixed, fixed_size)]
        for slot, net, shape in (pair if r % 2 == 0 else pair[::-1]):
            m = measure(net, shape, threads=options.threads, min_run_time=options.min_run_time,
                        warmup=3 if r == 0 else 1, warmup_max_time=0.5)
            times[i][slot].append(m.median_s)
    for ((_, _, _), items), (a, b), net in zip(plan, times, nets, strict=True):
        alone, fixed = median(a), median(b)
        for f in items:
            f.measured.update(alone_ms=1e3 * alone, compliant=net[4], compliant_ms=1e3 * fixed,
                              speedup=alone / fixed if fixed > 0 else None)


def run_profile(model: nn.Module, input_size: tuple[int, ...], options: MeasureOptions, name: str,
                on_stage: Callable[[str], None] | None = None) -> Any:
    """One :func:`shufflenet.measure.profile` of the model (no roofline ceilings, no independent total)."""
    return profile(model, input_size, threads=options.threads, repeats=options.repeats, ceilings="none",
                   measure_total=False, name=name, on_stage=on_stage)
