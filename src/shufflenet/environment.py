"""The environment a result was produced in, recorded next to every result file: CPU and GPU, cores and
threads, library versions and the settings that change speed (dtype, batch, memory format).

Hostnames, user names and paths are deliberately left out: results files are committed and shared.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import torch

DTYPE_NAMES: dict[torch.dtype, str] = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"fp32"`` (the short names the CLI takes)."""
    return DTYPE_NAMES.get(dtype, str(dtype).replace("torch.", ""))


def cpu_count() -> int:
    """Logical CPUs this process may use (its affinity mask when the OS exposes it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


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


def library_version(module: str) -> str | None:
    """``module.__version__`` as a string, or ``None`` when it is not installed (or fails to import)."""
    try:
        return str(__import__(module).__version__)
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
        "torchvision": library_version("torchvision"),
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


def package_version() -> str:
    """This package's installed version (``unknown`` when it runs from a source tree not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("shufflenet")
    except PackageNotFoundError:
        return "unknown"
