"""The arithmetic that turns profiled forwards into a :class:`~shufflenet.measure.profile_report.ProfileReport`
(steps 3 and 4 of the method in :mod:`shufflenet.measure.profile`): the profiler overhead subtracted, the
undisturbed central forwards kept, ops joined to cost rows, buckets and layers summed. No timing here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from shufflenet.environment import capture_environment, dtype_name
from shufflenet.measure import optypes
from shufflenet.measure.attribution import classify_ops, match_cost
from shufflenet.measure.machine import MachineCeilings
from shufflenet.measure.profile_report import BucketTime, LayerTime, OpTime, ProfileReport
from shufflenet.measure.profiler_passes import Forwards, TopOp
from shufflenet.measure.roofline import roofline_bound
from shufflenet.measure.timing import Measurement

# A forward in which the calling thread had the CPU for less than this share of the wall time was
# interrupted by another process; it is left out (see assemble).
UNDISTURBED = 0.99


def assemble(label: str, size: tuple[int, int, int, int], dev: torch.device, dt: torch.dtype, nthreads: int,
             repeats: int, warmup: int, tops: list[TopOp], types: dict[str, str], modules: dict[str, nn.Module],
             cost: Any, fw: Forwards, eps_s: float, total: Measurement | None,
             machine: MachineCeilings | None, source: str, *,
             memory_format: str = "contiguous") -> ProfileReport:
    """Overhead correction, forward selection, cost join, buckets and layers (arithmetic, no timing)."""
    eps_us = eps_s * 1e6
    rows = cost.layers
    assigned, unmatched = match_cost(tops, rows)
    buckets = classify_ops(tops, rows, assigned, types, modules)
    n_top = len(tops)
    kernel_times = dev.type == "cuda"  # kernel durations carry no CPU-side recording overhead
    events = n_top + sum(fw.nested[0])
    # A layout copy nested in a compute op is shown as its own row: Shuffle when the op's module read a
    # shuffle module's output (the official V2 shuffle-split is a view; the next conv pays the copy), else Data.
    split = [fw.copy_events[0][i] > 0 and buckets[i] not in (optypes.DATA, optypes.SHUFFLE) for i in range(n_top)]
    corrected = [corrected_times(fw, j, split, 0.0 if kernel_times else eps_us) for j in range(len(fw.walls))]
    # Framework time between ops: the forward's range minus its op intervals minus the recording of the
    # top-level events (on CUDA: minus all events, the CPU-side cost that delays the launches).
    gaps = [max(wall - sum(ts) - (events if kernel_times else n_top) * eps_us, 0.0)
            for ts, wall in zip(fw.times, fw.walls, strict=True)]
    forward_totals = [sum(c) + g for c, g in zip(corrected, gaps, strict=True)]
    undisturbed = [j for j, r in enumerate(fw.cpu_ratio) if kernel_times or r >= UNDISTURBED]
    notes = []
    if len(undisturbed) < min(3, len(fw.walls)):
        notes.append(f"only {len(undisturbed)} of {len(fw.walls)} profiled forwards kept the CPU throughout "
                     "(busy machine): all of them are used")
        undisturbed = list(range(len(fw.walls)))
    keep = [undisturbed[j] for j in central_forwards([forward_totals[j] for j in undisturbed])]
    raw = [corrected_times(fw, j, split, 0.0) for j in range(len(fw.walls))]
    ops: list[OpTime] = []
    col = 0
    for i, t in enumerate(tops):
        matched = [rows[r] for r in assigned[i]]
        ops.append(OpTime(index=i, op=t.name, module=t.module, module_type=types.get(t.module, ""),
                          bucket=buckets[i], time_s=_mean(corrected, keep, col) / 1e6,
                          raw_time_s=_mean(raw, keep, col) / 1e6, nested_events=fw.nested[0][i],
                          flops=sum(r.flops for r in matched), mac=sum(r.mac for r in matched),
                          mac_bytes=sum(r.mac_bytes for r in matched), cost_ops=[r.op for r in matched]))
        col += 1
        if split[i]:
            ops.append(OpTime(index=i, op=f"aten::contiguous (in {t.name})", module=t.module,
                              module_type=types.get(t.module, ""),
                              bucket=optypes.SHUFFLE if t.reads_shuffle else optypes.DATA,
                              time_s=_mean(corrected, keep, col) / 1e6, raw_time_s=_mean(raw, keep, col) / 1e6,
                              nested_events=fw.copy_events[0][i] - 1))
            col += 1
    overhead = sum(gaps[j] for j in keep) / len(keep) / 1e6
    profiled_sum = sum(o.time_s for o in ops) + overhead

    per_bucket = dict.fromkeys(optypes.BUCKETS, 0.0)
    counts = dict.fromkeys(optypes.BUCKETS, 0)
    for o in ops:
        per_bucket[o.bucket] += o.time_s
        counts[o.bucket] += 1
    per_bucket[optypes.OVERHEAD] = overhead
    pct = optypes.percentages(per_bucket)
    bucket_list = [BucketTime(key=k, label=optypes.LABELS[k], group=optypes.GROUPS[k], time_s=per_bucket[k],
                              ops=counts[k], percent=pct[k]) for k in optypes.BUCKETS]

    layers = layer_times(ops, rows, types, machine, profiled_sum)
    unsupported = getattr(cost, "unsupported_ops", None)
    if unsupported:
        listed = ", ".join(f"{k} x{v}" for k, v in sorted(unsupported.items()))
        notes.append(f"FLOPs/MAC are incomplete: ops without a cost rule are not counted ({listed})")
    if unmatched:
        notes.append(f"{unmatched} cost row(s) could not be matched to a measured op; they count in their "
                     "layer's FLOPs/MAC only")
    if kernel_times:
        notes.append("CUDA: op time = duration of its kernels; Other (framework) = forward wall time minus "
                     "kernel time minus the profiler's CPU-side overhead (exact when launch-bound)")
    if machine is not None and dt != torch.float32:
        notes.append(f"the ceilings are fp32 rates: % compute and the bound verdicts of this {dtype_name(dt)} "
                     "run compare it with fp32 arithmetic")
    if machine is not None and any((r.compute_pct or 0.0) > 110.0 for r in layers):
        notes.append("a layer exceeds the compute ceiling: the cached ceilings are stale or were measured on a "
                     "busy machine; remeasure with `shufflenet bench --machine` (bound verdicts may be off)")
    if total is not None and total.noisy:
        notes.append("the independent latency is noisy (IQR > 10% of the median): rerun on an idle machine")
    mflops = cost.flops / size[0] / 1e6
    env = capture_environment(device=dev, threads=nthreads, dtype=dt, batch=size[0], input_size=size,
                              memory_format=memory_format)
    return ProfileReport(
        model=label, input_size=size, device=str(dev), dtype=dtype_name(dt), memory_format=memory_format,
        threads=nthreads, repeats=repeats,
        warmup=warmup, ops=ops, layers=layers, buckets=bucket_list, overhead_time_s=overhead,
        profiled_sum_s=profiled_sum, profiled_wall_s=sum(fw.walls[j] for j in keep) / len(keep) / 1e6,
        overhead_per_event_s=eps_s, events_per_forward=events, total=total, flops=cost.flops, mac=cost.mac,
        mac_bytes=cost.mac_bytes, ceilings=machine, ceilings_source=source,
        paper=optypes.fig2_reference(label, mflops if size[2:] == (224, 224) else math.inf),
        unmatched_cost_rows=unmatched, env=env, notes=notes,
        forward_totals_s=[t / 1e6 for t in forward_totals], kept_forwards=keep,
    )


def corrected_times(fw: Forwards, j: int, split: Sequence[bool], eps_us: float) -> list[float]:
    """Forward ``j``'s op times (us) less the recording of their nested events (``eps_us`` each), with a
    nested layout copy as a column of its own where ``split``.

    An op's interval holds the recording of its k nested events; a nested copy's interval holds that of
    its own kc - 1 descendants, and its own recording lies in the op's remaining time.
    """
    out = []
    for i, (t, k) in enumerate(zip(fw.times[j], fw.nested[j], strict=True)):
        if not split[i]:
            out.append(max(t - k * eps_us, 0.0))
            continue
        c, kc = fw.copy_times[j][i], fw.copy_events[j][i]
        out.append(max(t - c - (k - kc + 1) * eps_us, 0.0))
        out.append(max(c - (kc - 1) * eps_us, 0.0))
    return out


def central_forwards(totals: Sequence[float]) -> list[int]:
    """Indices of the forwards whose total lies in the middle half (the interquartile range) of all of
    them: averaging over these is robust to a forward interrupted by another process, like a median, while
    every op's time still comes from the same forwards (so the ops add up to that forward total)."""
    order = sorted(range(len(totals)), key=lambda j: totals[j])
    n = len(order)
    lo, hi = n // 4, n - n // 4
    return sorted(order[lo:hi]) or order


def _mean(values: Sequence[Sequence[float]], keep: Sequence[int], i: int) -> float:
    return sum(values[j][i] for j in keep) / len(keep)


def layer_times(ops: Sequence[OpTime], rows: Sequence[Any], types: dict[str, str],
                machine: MachineCeilings | None, total_s: float) -> list[LayerTime]:
    """Per module path: measured ops' time, and the FLOPs/MAC of *all* its cost rows (matched or not)."""
    layers: dict[str, LayerTime] = {}
    by_bucket: dict[str, dict[str, float]] = {}

    def get(name: str) -> LayerTime:
        if name not in layers:
            layers[name] = LayerTime(name=name, module_type=types.get(name, ""), ops=0, time_s=0.0, flops=0,
                                     mac=0, mac_bytes=0, bucket=optypes.OTHER)
            by_bucket[name] = {}
        return layers[name]

    for o in ops:
        lt = get(o.module)
        lt.ops += 1
        lt.time_s += o.time_s
        by_bucket[o.module][o.bucket] = by_bucket[o.module].get(o.bucket, 0.0) + o.time_s
    for r in rows:
        lt = get(r.name)
        lt.flops += r.flops
        lt.mac += r.mac
        lt.mac_bytes += r.mac_bytes
        if not lt.module_type:
            lt.module_type = r.module_type
    for name, lt in layers.items():
        if by_bucket[name]:
            lt.bucket = max(by_bucket[name].items(), key=lambda kv: kv[1])[0]
        lt.percent = 100.0 * lt.time_s / total_s if total_s > 0 else 0.0
        lt.bound = roofline_bound(lt.flops, lt.mac_bytes, machine)
        if machine is not None and lt.time_s > 0:
            lt.compute_pct = 100.0 * machine.compute_fraction(lt.gmadds_per_s)
            lt.bandwidth_pct = 100.0 * machine.bandwidth_fraction(lt.mac_gb_per_s)
    return list(layers.values())
