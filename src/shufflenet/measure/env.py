"""Whether the machine was quiet while a measurement ran: :class:`LoadProbe` and :func:`wait_until_idle`.

The environment itself (CPU/GPU, threads, versions) is captured by :mod:`shufflenet.environment`, the
bottom layer every package records it with; its names are re-exported here for existing callers.
"""

from __future__ import annotations

import os
import time

from shufflenet.environment import (
    capture_environment,
    cpu_count,
    cpu_model_name,
    dtype_name,
    physical_core_count,
)

__all__ = ["LoadProbe", "capture_environment", "cpu_count", "cpu_model_name", "dtype_name", "physical_core_count",
           "wait_until_idle"]


def _busy_ticks() -> tuple[int, int] | None:
    """(busy clock ticks of all CPUs, ticks of this process) from /proc (Linux); ``None`` elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        with open("/proc/self/stat", encoding="ascii") as f:
            own = f.read().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    # user nice system idle iowait irq softirq steal ...: everything but idle and iowait is busy.
    busy = sum(fields[:3]) + sum(fields[5:8])
    return busy, int(own[11]) + int(own[12])  # utime + stime (fields 14, 15 of /proc/self/stat)


class LoadProbe:
    """How many CPUs *other* processes kept busy between :meth:`start` and :meth:`stop` (Linux only).

    A benchmark result is only as good as the machine was quiet; this records how quiet it was.
    """

    def __init__(self) -> None:
        self._start: tuple[int, int] | None = None
        self._t0 = 0.0

    def start(self) -> LoadProbe:
        self._start, self._t0 = _busy_ticks(), time.perf_counter()
        return self

    def stop(self) -> float | None:
        end, elapsed = _busy_ticks(), time.perf_counter() - self._t0
        if self._start is None or end is None or elapsed <= 0:
            return None
        ticks = (end[0] - self._start[0]) - (end[1] - self._start[1])
        return max(0.0, ticks / os.sysconf("SC_CLK_TCK") / elapsed)


def wait_until_idle(max_wait: float, threshold: float = 0.25,
                    window: float = 0.5) -> tuple[float, float | None]:
    """Wait (up to ``max_wait`` s) until other processes use at most ``threshold`` CPUs over ``window`` s.

    Returns (seconds waited, the last load seen); the load is ``None`` where /proc is unavailable.
    """
    start = time.perf_counter()
    load: float | None = None
    while True:
        probe = LoadProbe().start()
        time.sleep(window)
        load = probe.stop()
        waited = time.perf_counter() - start
        if load is None or load <= threshold or waited >= max_wait:
            return waited, load
