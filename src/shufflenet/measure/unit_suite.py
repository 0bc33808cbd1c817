"""The ``units`` suite: Appendix Table 1(b) of the ShuffleNet V2 paper on this machine.

10 stacked stride-1 units of ShuffleNet v2 (width c = 64/128/256), ShuffleNet v1 (g=3), MobileNet v2 and
Xception at 56x56 and 28x28. As in the paper, the other nets' widths are adjusted to match ShuffleNet v2's FLOPs:
here solved with the cost engine, as the valid width (v1: a multiple of 12) whose FLOPs are closest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from shufflenet.errors import UserInputError
from shufflenet.measure.bench import BenchOptions, BenchRow, ModelSpec, Progress, run_bench
from shufflenet.measure.machine import MachineCeilings
from shufflenet.measure.paper_speeds import APP_TABLE1B_CHANNELS, APP_TABLE1B_SOURCE, app_table1b
from shufflenet.measure.suite_common import V2, SuiteResult, batches_per_s, noisy_batches, relative, speed_key

UNIT_COUNT = 10  # Appendix Table 1(b): "10 stacked units"
UNIT_SIDES = (56, 28)
V1_GROUPS = 3
V1_WIDTH_STEP = 4 * V1_GROUPS  # ShuffleV1Unit: out % 4 == 0 and the bottleneck out/4 divisible by g
MNV2_WIDTH_STEP = 1  # InvertedResidual(c, c, 1, expand_ratio=6) accepts any width
XCEPTION_WIDTH_STEP = 1  # XceptionUnit(c): any width, its bottleneck round(c * 28 / 144)


def v2_unit(c: int) -> nn.Module:
    from shufflenet.models.shufflenet_v2 import ShuffleV2Unit

    return ShuffleV2Unit(c, c, 1)


def v1_unit(c: int) -> nn.Module:
    from shufflenet.models.shufflenet_v1 import ShuffleV1Unit

    return ShuffleV1Unit(c, c, 1, groups=V1_GROUPS)


def mnv2_unit(c: int) -> nn.Module:
    from torchvision.models.mobilenetv2 import InvertedResidual

    return InvertedResidual(c, c, 1, expand_ratio=6)


def xception_unit(c: int) -> nn.Module:
    from shufflenet.models.xception import XceptionUnit

    return XceptionUnit(c)


UNIT_BUILDERS: dict[str, tuple[Callable[[int], nn.Module], int]] = {
    "ShuffleNet v2": (v2_unit, 2),
    "ShuffleNet v1": (v1_unit, V1_WIDTH_STEP),
    "MobileNet v2": (mnv2_unit, MNV2_WIDTH_STEP),
    "Xception": (xception_unit, XCEPTION_WIDTH_STEP),
}


def unit_flops(make_unit: Callable[[int], nn.Module], width: int, side: int) -> int:
    """Multiply-adds of one unit at ``width`` channels on a ``side`` x ``side`` map (cost engine)."""
    from shufflenet.cost import count_cost

    return count_cost(make_unit(width), (1, width, side, side)).flops


def match_width(make_unit: Callable[[int], nn.Module], target_flops: int, side: int, step: int) -> int:
    """The multiple of ``step`` whose unit FLOPs are closest to ``target_flops`` (FLOPs grow with width)."""
    def flops(k: int) -> int:
        return unit_flops(make_unit, k * step, side)

    hi = 1
    while flops(hi) < target_flops:
        hi *= 2
    lo = max(1, hi // 2)
    while lo < hi:  # smallest k with flops(k) >= target
        mid = (lo + hi) // 2
        if flops(mid) >= target_flops:
            hi = mid
        else:
            lo = mid + 1
    best = min((k for k in (lo - 1, lo) if k >= 1), key=lambda k: abs(flops(k) - target_flops))
    return best * step


def stack(make_unit: Callable[[int], nn.Module], width: int, n: int = UNIT_COUNT) -> nn.Module:
    return nn.Sequential(*(make_unit(width) for _ in range(n)))


def matched_widths(channels: Sequence[int] = APP_TABLE1B_CHANNELS,
                   side: int = 28) -> dict[int, dict[str, int]]:
    """For each ShuffleNet v2 width c: every net's width with FLOPs closest to the v2 unit's (App. Table 1b).

    FLOPs of all three units scale with H*W alike, so one side is enough to solve for every input size.
    """
    out = {}
    for c in channels:
        target = unit_flops(v2_unit, c, side)
        out[c] = {net: (c if net == V2 else match_width(make, target, side, step))
                  for net, (make, step) in UNIT_BUILDERS.items()}
    return out


def run_units(options: BenchOptions, batches: Sequence[int] = (1,), *,
              channels: Sequence[int] = APP_TABLE1B_CHANNELS, sides: Sequence[int] = UNIT_SIDES,
              machine: MachineCeilings | None = None, progress: Progress | None = None) -> SuiteResult:
    """Appendix Table 1(b) on this machine: 10 stacked units per net, widths matched to v2's FLOPs."""
    start = time.perf_counter()
    for c in channels:
        if c not in APP_TABLE1B_CHANNELS:
            raise UserInputError(f"App. Table 1(b) has c = 64/128/256, not {c}")
    for s in sides:
        if s not in UNIT_SIDES:
            raise UserInputError(f"App. Table 1(b) has 56x56 and 28x28 inputs, not {s}")
    widths = matched_widths(channels)
    specs = []
    for side in sides:
        for c in channels:
            for net, (make, _) in UNIT_BUILDERS.items():
                w = widths[c][net]
                specs.append(ModelSpec(name=f"{net} c={c} @{side}", build=lambda m=make, w=w: stack(m, w),
                                       image_size=(w, side, side), family=net,
                                       info={"side": side, "c": c, "width": w, "units": UNIT_COUNT}))
    bench = run_bench(specs, batches, options, machine=machine, progress=progress)
    by_name: dict[str, dict[int, BenchRow]] = {}
    for r in bench.rows:
        by_name.setdefault(r.model, {})[r.batch] = r
    headers = {"input": "input", "c": "c", "model": "model", "width": "width", "mflops": "MFLOPs",
               "dflops_pct": "dFLOPs %"}
    rows = []
    for spec in specs:
        side, c, w, net = spec.info["side"], spec.info["c"], spec.info["width"], spec.family
        mine, base = by_name[spec.name], by_name[f"{V2} c={c} @{side}"]
        first = next(iter(mine.values()))
        flops = first.flops / first.batch
        v2_flops = next(iter(base.values())).flops / next(iter(base.values())).batch
        gpu, arm = app_table1b(side, net, c)
        gpu_v2, arm_v2 = app_table1b(side, V2, c)
        row: dict[str, Any] = {"input": f"{side}x{side}", "c": c, "model": net, "width": w,
                               "mflops": round(flops / 1e6, 2),
                               "dflops_pct": round(100 * (flops / v2_flops - 1), 1)}
        for b in batches:
            key = speed_key(b)
            row[key] = round(batches_per_s(mine[b]), 1)
            row[f"b{b}_vs_v2"] = relative(batches_per_s(mine[b]), batches_per_s(base[b]))
            headers[key] = f"b{b} img/s" if b == 1 else f"b{b} batch/s"
            headers[f"b{b}_vs_v2"] = f"b{b} /v2"
        row.update(paper_gpu=gpu, paper_gpu_vs_v2=relative(gpu, gpu_v2), paper_arm=arm,
                   paper_arm_vs_v2=relative(arm, arm_v2), noisy=noisy_batches(list(mine.values())))
        rows.append(row)
    headers.update(paper_gpu="paper GPU batch/s", paper_gpu_vs_v2="GPU /v2", paper_arm="paper ARM img/s",
                   paper_arm_vs_v2="ARM /v2", noisy="noisy")
    width_note = "; ".join(f"c={c}: " + ", ".join(f"{net} {w}" for net, w in ws.items())
                           for c, ws in widths.items())
    notes = [
        f"{UNIT_COUNT} stacked stride-1 units per net; the input has the unit's width (C = width)",
        f"matched widths (FLOPs closest to ShuffleNet v2's, cost engine): {width_note}",
        f"ShuffleNet v1 units use g={V1_GROUPS} (width a multiple of {V1_WIDTH_STEP}); MobileNet v2 units "
        "are torchvision's InvertedResidual with expand_ratio 6; Xception units are the light-weight Xception's "
        "block (three separable convs, bottleneck c * 28 / 144; shufflenet.models.xception)",
        "the paper measured these at batch 1 (GPU batches/s, ARM images/s; Sec. 2 and Appendix Table 1)",
        "/v2 = speed relative to ShuffleNet v2 at the same c and input",
    ]
    result = SuiteResult(suite="units", title="Appendix Table 1(b): 10 stacked units on this machine",
                         rows=rows, bench=bench, headers=headers, sources=[APP_TABLE1B_SOURCE], notes=notes)
    result.wall_s = round(time.perf_counter() - start, 1)
    return result
