"""Where the time goes: measured time per op, per layer and per Fig. 2 op type, next to FLOPs and MAC.

The paper's Fig. 2 (Sec. 1) shows that the ops FLOPs ignore (element-wise, data movement, shuffle) take a
large share of the runtime; this module measures that share for any model on this machine.

Method (why it is not a rescaling):

1. **Attribution pass** (one forward, ``torch.profiler`` with shapes): module pre/post hooks open a
   ``record_function`` range per module, so every *top-level* aten op (one that no other aten op called,
   e.g. ``aten::conv2d`` with its ``convolution -> mkldnn_convolution`` children) gets the path of the
   innermost module it ran in. The cost engine's rows (:func:`shufflenet.cost.count_cost`) are matched to
   these ops in execution order (same module, op name found in the op's subtree), which gives each op its
   FLOPs, MAC and kind (dense / group / depthwise conv).
2. **Timing pass** (``repeats`` forwards after ``warmup`` untimed ones, profiler on, *no* hooks): each
   forward is one ``record_function`` range; its top-level ops must be the same sequence as in pass 1.
   On CPU an op's time is its wall interval; on CUDA the summed duration of the kernels it launched.
3. **Profiler overhead, measured and subtracted**: recording one event costs this machine a roughly
   constant time eps, found by timing a CNN unit's op mix on tiny tensors with and without the profiler
   (:func:`~shufflenet.measure.overhead.profiler_overhead_per_event`; a separate workload, so eps is
   measured, not fitted to the model).
   A top-level op's interval contains the recording of its k nested events, so its corrected time is
   ``interval - k * eps``. The time between top-level ops in the same forward (Python, module calls,
   dispatch: the framework overhead) is ``forward range - sum of op intervals - n_top * eps`` and goes to
   the "Other (framework, between ops)" bucket: measured in the profiled run itself, never derived from
   the independent total.
4. **Which forwards count**: a forward in which the calling thread had the CPU for less than 99% of the
   wall time (``time.thread_time``) was interrupted by another process and is left out; of the others,
   the forwards whose corrected total lies in the interquartile range are averaged, per op and for the
   framework gap (robust like a median, while the ops still add up to a forward's total).
5. **Coverage**: the sum of all buckets divided by the latency of :func:`shufflenet.measure.timing.measure`
   on the same model with no profiler attached (its default clock: thread CPU time for one CPU thread,
   wall time otherwise), timed in ``TOTAL_CHUNKS`` parts that alternate with the profiled forwards so a
   shared machine's changing load hits both alike. Nothing is rescaled to make it 1.

Units: FLOPs are multiply-adds (paper V2 footnote 1) and rates ``GMAdd/s`` (as ``shufflenet bench``); MAC
is the paper's memory access cost (Sec. 2, G1), in bytes per second as ``MAC GB/s``. The roofline verdict
compares a layer's intensity (multiply-adds per MAC byte) with the machine's ridge point (compute ceiling
in GMAdd/s -- the best of several fp32 kernels, not one library's -- over copy GB/s,
:mod:`shufflenet.measure.roofline`): above it the layer is compute-bound, below it memory-bound.

Where each step lives: the profiler passes in :mod:`~shufflenet.measure.profiler_passes`, the overhead
calibration in :mod:`~shufflenet.measure.overhead`, the join with the cost rows in
:mod:`~shufflenet.measure.attribution`, the arithmetic in :mod:`~shufflenet.measure.profile_assembly`, the
result in :mod:`~shufflenet.measure.profile_report`; this module runs them (:func:`profile`) and re-exports
their public names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from shufflenet.errors import ShuffleNetError
from shufflenet.measure.machine import CeilingsArg, MachineCeilings, resolve_ceilings
from shufflenet.measure.options import (
    cannot_run,
    check_count,
    check_input_size,
    check_memory_format,
    resolve_device,
    resolve_dtype,
    resolve_threads,
)
from shufflenet.measure.overhead import profiler_overhead_per_event
from shufflenet.measure.profile_assembly import UNDISTURBED, assemble
from shufflenet.measure.profile_report import (
    CONVENTIONS,
    COVERAGE_TOLERANCE,
    BucketTime,
    LayerTime,
    OpTime,
    ProfileReport,
    ProfileView,
)
from shufflenet.measure.profiler_passes import ROOT, Forwards, attribution_pass, sync, timing_pass
from shufflenet.measure.roofline import ridge_point, roofline_bound
from shufflenet.measure.timing import Measurement, measure, num_threads, pool_measurements, prepare_model
from shufflenet.models._checks import require_module

__all__ = [
    "CONVENTIONS", "COVERAGE_TOLERANCE", "DEFAULT_REPEATS", "DEFAULT_WARMUP", "ROOT", "TOTAL_CHUNKS",
    "TOTAL_MIN_RUN_TIME", "UNDISTURBED", "BucketTime", "CeilingsArg", "LayerTime", "MachineCeilings", "OpTime",
    "ProfileReport", "ProfileView", "profile", "profiler_overhead_per_event", "ridge_point", "roofline_bound",
    "stage_count",
]

DEFAULT_REPEATS = 60
DEFAULT_WARMUP = 5
TOTAL_CHUNKS = 6  # rounds of (profiled forwards, independent timing), see profile()
# Seconds of independent timing in all (measure()'s blocks; about as long as the profiled forwards take).
TOTAL_MIN_RUN_TIME = 1.2
_POOLED = " alternating with the profiled forwards"


def profile(
    model: nn.Module,
    input_size: Sequence[int] = (1, 3, 224, 224),
    *,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    dtype: str | torch.dtype = torch.float32,
    memory_format: str = "contiguous",
    repeats: int = DEFAULT_REPEATS,
    warmup: int = DEFAULT_WARMUP,
    ceilings: CeilingsArg = "auto",
    measure_total: bool = True,
    min_run_time: float = TOTAL_MIN_RUN_TIME,
    name: str | None = None,
    on_stage: Callable[[str], None] | None = None,
    overhead_per_event_s: float | None = None,
) -> ProfileReport:
    """Measure where ``model``'s forward time goes: per op, per layer and per Fig. 2 bucket.

    See the module docstring for the method. ``threads=None`` means 1 on CPU (as :func:`measure`).

    Args:
        memory_format: ``"contiguous"`` (NCHW, PyTorch's default) or ``"channels_last"`` (NHWC): the layout
            of the model's weights and of the input in every pass (attribution, timing and the independent
            :func:`measure` total), recorded in the report. The paper's Fig. 2 does not depend on a layout;
            a kernel that is much slower in one of them is the library's, not the architecture's.
        repeats: profiled forwards (split over ``TOTAL_CHUNKS`` profiler sessions; per op the mean over the
            central half of the uninterrupted ones is reported); ``warmup``: untimed forwards before.
        ceilings: the machine's compute/copy ceilings for the roofline verdict: ``"auto"`` reads the cache
            of ``shufflenet bench --machine`` and measures them once (a few seconds, then cached) when absent;
            ``"cached"`` only reads the cache (verdict "unknown" without it); ``"none"`` skips them; or a
            :class:`MachineCeilings`.
        measure_total: also time the model with :func:`measure` (no profiler) for the coverage ratio.
        min_run_time: seconds of timed blocks for that independent measurement, in all (split over the
            chunks that alternate with the profiled forwards).
        name: the model's label; a Fig. 2 model name (``shufflenet_v1_g3_x1_0``, ``torchvision:mobilenet_v2``)
            adds the paper's percentages to the report.
        on_stage: called with the name of each stage as it starts (for progress display).
        overhead_per_event_s: the profiler's cost per recorded event, when already measured in this process
            (:func:`profiler_overhead_per_event`; a caller profiling several models measures it once);
            ``None`` measures it now (about 2 s).
    """
    require_module(model, "model", "profile")
    dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    size = check_input_size(input_size)
    nthreads = resolve_threads(threads, dev)
    check_count("repeats", repeats, 1)
    check_count("warmup", warmup, 0)
    mf = check_memory_format(memory_format)
    stage = on_stage or (lambda s: None)
    label = name or type(model).__name__
    was_training = model.training
    net = prepare_model(model, dev, dt, mf)
    try:
        stage("cost")
        from shufflenet.cost import count_cost

        try:
            cost = count_cost(net, size, mode="paper", dtype=dt, device=dev)
        except RuntimeError as exc:
            raise cannot_run(exc, size) from exc
        stage("ceilings")
        machine, source = resolve_ceilings(ceilings, dev, nthreads)
        net.eval()
        with num_threads(nthreads), torch.inference_mode():
            x = torch.randn(size, device=dev, dtype=dt).contiguous(memory_format=mf)
            stage("warm-up")
            for _ in range(max(warmup, 1)):
                net(x)
            sync(dev)
            stage("attribution")
            tops, types = attribution_pass(net, x, dev)
            stage("calibration")
            eps_s = profiler_overhead_per_event(dev) if overhead_per_event_s is None else overhead_per_event_s
        # Profiled forwards and the independent timing alternate in `chunks` rounds, so that a shared
        # machine's changing load hits both alike.
        chunks = _chunks(measure_total, repeats)
        forwards: Forwards | None = None
        parts: list[Measurement] = []
        for k in range(chunks):
            stage("profile" if k == 0 else f"profile {k + 1}/{chunks}")
            n = repeats // chunks + (1 if k < repeats % chunks else 0)
            with num_threads(nthreads), torch.inference_mode():
                chunk = timing_pass(net, x, dev, n)
            if chunk.names != [top.name for top in tops]:
                raise ShuffleNetError("the op sequence differs between the attribution and timing passes; "
                                      "profile needs a deterministic forward")
            if forwards is None:
                forwards = chunk
            else:
                forwards.extend(chunk)
            if measure_total:
                stage("total" if k == 0 else f"total {k + 1}/{chunks}")
                parts.append(measure(net, size, device=dev, threads=nthreads, dtype=dt,
                                     memory_format=memory_format, min_run_time=min_run_time / chunks,
                                     warmup=warmup if k == 0 else 1, name=label))
        total = pool_measurements(parts, _POOLED) if parts else None
    finally:
        if net is model:
            model.train(was_training)
    assert forwards is not None
    return assemble(label, size, dev, dt, nthreads, repeats, warmup, tops, types, dict(net.named_modules()),
                    cost, forwards, eps_s, total, machine, source, memory_format=memory_format)


def _chunks(measure_total: bool, repeats: int) -> int:
    return min(TOTAL_CHUNKS if measure_total else 1, repeats)


def stage_count(measure_total: bool = True, repeats: int = DEFAULT_REPEATS) -> int:
    """How many times :func:`profile` calls ``on_stage`` (for a progress bar's total)."""
    chunks = _chunks(measure_total, repeats)
    return 5 + chunks * (2 if measure_total else 1)
