"""The profiler's own cost per recorded event on this machine (step 3 of the method in
:mod:`shufflenet.measure.profile`): measured on a separate workload, so it is never fitted to the profiled
model's total.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch.autograd.profiler import record_function

from shufflenet.measure.profiler_passes import FORWARD_PREFIX, count_nested, quiet_profiler, ranges, sync
from shufflenet.measure.timing import num_threads


def calibration_step(a: torch.Tensor, w: torch.Tensor, wd: torch.Tensor, bn: tuple[torch.Tensor, ...],
                     big: tuple[torch.Tensor, torch.Tensor], n: int) -> None:
    """A CNN unit's op mix on tiny tensors: conv (nested dispatch), BN, ReLU, depthwise conv, add, cat and a
    channel shuffle (view, transpose, contiguous, view); then a 2 MB copy, so that the profiler's buffers
    compete for the cache as they do in a real forward (eps grows when they do)."""
    c, h = a.shape[1], a.shape[2]
    for _ in range(n):
        y = torch.relu_(torch.nn.functional.batch_norm(torch.nn.functional.conv2d(a, w), *bn))
        y = torch.nn.functional.conv2d(y, wd, padding=1, groups=c) + a
        y = torch.cat((y, a), 1)
        y.view(1, 2, c, h, h).transpose(1, 2).contiguous().view(1, 2 * c, h, h)
        big[1].copy_(big[0])


def profiler_overhead_per_event(device: str | torch.device = "cpu", *, loops: int = 20, rounds: int = 9,
                                trials: int = 3) -> float:
    """Seconds the profiler adds per recorded event on this machine (eps of the method in :mod:`shufflenet.measure.profile`).

    A CNN unit's op mix (:func:`calibration_step`, nested events included) on tiny tensors is timed
    ``rounds`` times without the profiler (before and after) and ``rounds`` times inside one profiler
    session; eps = (fastest profiled - fastest plain) / events recorded per loop. The fastest round of each
    is the one least disturbed by other processes; tiny tensors keep the kernels short, so the difference
    is the cost of recording. The median of ``trials`` such estimates is returned. The workload is not the
    profiled model: eps is measured, not fitted to the model's total.
    """
    return statistics.median(_overhead_trial(device, loops, rounds) for _ in range(trials))


def _overhead_trial(device: str | torch.device, loops: int, rounds: int) -> float:
    dev = torch.device(device)
    c = 4
    a = torch.randn(1, c, 4, 4, device=dev)
    w = torch.randn(c, c, 1, 1, device=dev)
    wd = torch.randn(c, 1, 3, 3, device=dev)
    bn = (torch.zeros(c, device=dev), torch.ones(c, device=dev), torch.ones(c, device=dev),
          torch.zeros(c, device=dev))
    src = torch.ones(1 << 19, device=dev)  # 2 MB of fp32
    big = (src, torch.empty_like(src))

    def timed() -> float:
        sync(dev)
        t = time.perf_counter()
        calibration_step(a, w, wd, bn, big, loops)
        sync(dev)
        return time.perf_counter() - t

    # One thread: tiny ops run on the calling thread anyway, and idle OpenMP workers only add noise.
    with num_threads(1), torch.inference_mode():
        calibration_step(a, w, wd, bn, big, loops)
        plain = [timed() for _ in range(rounds)]
        profiled = []
        with quiet_profiler(dev) as prof:
            calibration_step(a, w, wd, bn, big, 2)  # the profiler's first events are slower
            for i in range(rounds):
                with record_function(f"{FORWARD_PREFIX}{i}"):
                    profiled.append(timed())
        plain += [timed() for _ in range(rounds)]
    events = statistics.median(count_nested(r) for r in ranges(prof.events(), FORWARD_PREFIX))
    eps = (min(profiled) - min(plain)) / events
    return max(eps, 0.0)

