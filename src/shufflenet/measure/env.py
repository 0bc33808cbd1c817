"""The environment a measurement ran in, recorded next to every result (ARCHITECTURE.md conventions).

Hostnames, user names and paths are deliberately left out: results files are committed and shared.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import torch

from shufflenet.measure.options import cpu_count, dtype_name


@lru_cache(maxsize=1)
def cpu_model_name() -> str:
    """The CPU's marketing name from ``/proc/cpuinfo`` (Linux), else :mod:`platform`'s best guess."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "Processor") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


@lru_cache(maxsize=1)
def physical_core_count() -> int:
    """Distinct (package, core) pairs in ``/proc/cpuinfo``; the logical count when that is unavailable."""
    cores: set[tuple[str, str]] = set()
    phys = core = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "physical id":
                    phys = value.strip()
                elif key == "core id":
                    core = value.strip()
                elif not key and (phys or core):  # a blank line ends one logical CPU's block
                    cores.add((phys, core))
                    phys = core = ""
        if phys or core:
            cores.add((phys, core))
    except OSError:
        pass
    return len(cores) or (os.cpu_count() or 1)


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except Exception:  # noqa: BLE001 - an optional package that fails to import is simply absent
        return None


def capture_environment(
    *,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    dtype: torch.dtype = torch.float32,
    batch: int | None = None,
    memory_format: str = "contiguous",
    input_size: Sequence[int] | None = None,
) -> dict[str, Any]:
    """A JSON-ready dict: CPU model and core counts, threads, GPU (when CUDA), versions, and the settings.

    ``threads`` defaults to torch's current intra-op thread count.
    """
    dev = torch.device(device)
    env: dict[str, Any] = {
        "device": str(dev),
        "cpu_model": cpu_model_name(),
        "cpu_arch": platform.machine(),
        "cpu_logical_cores": os.cpu_count(),
        "cpu_physical_cores": physical_core_count(),
        "cpu_usable": cpu_count(),
        "threads": torch.get_num_threads() if threads is None else threads,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "dtype": dtype_name(dtype),
        "batch": batch,
        "memory_format": memory_format,
        "input_size": list(input_size) if input_size is not None else None,
        "mkldnn": torch.backends.mkldnn.is_available(),
    }
    if hasattr(os, "getloadavg"):  # a busy machine explains noisy results
        env["load_avg_1min"] = round(os.getloadavg()[0], 2)
    if dev.type == "cuda" and torch.cuda.is_available():
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        env.update({
            "gpu_name": torch.cuda.get_device_name(index),
            "gpu_capability": ".".join(map(str, torch.cuda.get_device_capability(index))),
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
        })
    else:
        env["gpu_name"] = None
    return env


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
