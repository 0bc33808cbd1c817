"""This machine's ceilings: fp32 matrix-multiply rate and copy bandwidth, measured once and cached.

Later results are shown as a fraction of them (achieved multiply-adds/s over the matmul multiply-add rate,
achieved bytes/s over the copy bandwidth), the roofline view behind the paper's G1-G4 (Sec. 2): a
network with low FLOPs can still be slow when it is bound by memory access (MAC).

Cache: ``~/.cache/shufflenet/machine-<device>.json`` (``SHUFFLENET_CACHE`` overrides the directory), one
entry per thread count, discarded when the CPU/GPU model or the torch version changes.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch.utils.benchmark import Timer

from shufflenet._io import write_atomic
from shufflenet.measure.env import capture_environment
from shufflenet.measure.options import resolve_device, resolve_threads
from shufflenet.measure.timing import num_threads, resolve_clock, summarize_times

# Sizes large enough that the timing is the ceiling, not call overhead; small enough to finish in ~1 s.
MATMUL_N = {"cpu": 1024, "cuda": 8192}
COPY_ELEMENTS = {"cpu": 1 << 25, "cuda": 1 << 28}  # fp32: 128 MiB / 1 GiB per tensor, far beyond caches
_IDENTITY_KEYS = ("cpu_model", "gpu_name", "torch")


@dataclass
class MachineCeilings:
    """fp32 peak rates of one device at one thread count.

    ``matmul_gflops`` counts 2 FLOPs per multiply-add (2 n^3 per n x n matmul, the usual GFLOP/s);
    ``matmul_gmadds`` is half of it: multiply-adds/s, the unit of the paper's FLOPs (V2 footnote 1), which
    is what achieved model rates are compared against. ``copy_gb_per_s`` counts bytes read + written.
    """

    device: str
    threads: int
    matmul_n: int
    matmul_gflops: float
    matmul_gmadds: float
    copy_bytes: int
    copy_gb_per_s: float
    matmul_relative_iqr: float
    copy_relative_iqr: float
    measured_at: str
    clock: str = "wall"
    env: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MachineCeilings:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def compute_fraction(self, gmadds_per_s: float) -> float:
        """Achieved multiply-adds/s as a fraction of the matmul multiply-add rate."""
        return gmadds_per_s / self.matmul_gmadds

    def bandwidth_fraction(self, gb_per_s: float) -> float:
        return gb_per_s / self.copy_gb_per_s

    def rows(self) -> list[dict[str, Any]]:
        """Table rows: one per ceiling."""
        return [
            {"ceiling": f"fp32 matmul {self.matmul_n}x{self.matmul_n}", "value": round(self.matmul_gflops, 2),
             "unit": "GFLOP/s (2 per multiply-add)", "relative IQR": round(self.matmul_relative_iqr, 3)},
            {"ceiling": "fp32 matmul, multiply-adds", "value": round(self.matmul_gmadds, 2),
             "unit": "G multiply-adds/s (paper FLOPs/s)", "relative IQR": round(self.matmul_relative_iqr, 3)},
            {"ceiling": f"copy {self.copy_bytes // 2 // 2**20} MiB", "value": round(self.copy_gb_per_s, 2),
             "unit": "GB/s (read + write)", "relative IQR": round(self.copy_relative_iqr, 3)},
        ]


def cache_dir() -> Path:
    override = os.environ.get("SHUFFLENET_CACHE")
    return Path(override) if override else Path.home() / ".cache" / "shufflenet"


def cache_path(device: str | torch.device = "cpu") -> Path:
    """``machine-cpu.json``, ``machine-cuda.json`` or ``machine-cuda1.json`` in :func:`cache_dir`."""
    dev = torch.device(device)
    key = dev.type if not dev.index else f"{dev.type}{dev.index}"
    return cache_dir() / f"machine-{key}.json"


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and isinstance(data.get("entries"), dict) else {}


def _same_machine(env_a: dict[str, Any], env_b: dict[str, Any]) -> bool:
    return all(env_a.get(k) == env_b.get(k) for k in _IDENTITY_KEYS)


def load_machine(device: str | torch.device = "cpu", threads: int | None = None) -> MachineCeilings | None:
    """The cached ceilings of ``device`` at ``threads`` (``None``: see :func:`resolve_threads`), if any."""
    dev = resolve_device(device)
    nthreads = resolve_threads(threads, dev)
    entry = _read_cache(cache_path(dev)).get("entries", {}).get(str(nthreads))
    if not entry:
        return None
    ceilings = MachineCeilings.from_dict(entry)
    if not _same_machine(ceilings.env, capture_environment(device=dev, threads=nthreads)):
        return None
    return ceilings


def _save(ceilings: MachineCeilings, path: Path) -> None:
    data = _read_cache(path) or {"entries": {}}
    data["entries"][str(ceilings.threads)] = ceilings.to_dict()
    write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def _median_and_spread(stmt: str, globs: dict[str, Any], threads: int, min_run_time: float,
                       thread_cpu: bool) -> tuple[float, float]:
    # Same clock rule as measure(): one CPU thread is timed on its own CPU time (see timing.py).
    extra = {"timer": time.thread_time} if thread_cpu else {}
    timer = Timer(stmt=stmt, globals=globs, num_threads=threads, **extra)
    raw = timer.blocked_autorange(min_run_time=min_run_time)
    stats = summarize_times(raw.times)
    return stats.median, stats.relative_iqr


def measure_machine(
    device: str | torch.device = "cpu",
    threads: int | None = None,
    *,
    refresh: bool = False,
    save: bool = True,
    min_run_time: float = 1.0,
) -> MachineCeilings:
    """Measure (or read from the cache) fp32 matmul GFLOP/s and copy GB/s of ``device`` at ``threads``.

    ``refresh=True`` measures even when a cached entry exists; ``save=False`` leaves the cache alone.
    """
    dev = resolve_device(device)
    nthreads = resolve_threads(threads, dev)
    if not refresh:
        cached = load_machine(dev, nthreads)
        if cached is not None:
            return cached
    n, elems = MATMUL_N[dev.type], COPY_ELEMENTS[dev.type]
    thread_cpu = resolve_clock("auto", dev, nthreads) == "thread_cpu"
    with num_threads(nthreads), torch.inference_mode():
        a = torch.randn(n, n, device=dev)
        b = torch.randn(n, n, device=dev)
        c = torch.empty(n, n, device=dev)
        for _ in range(3):
            torch.mm(a, b, out=c)
        mm_s, mm_rel = _median_and_spread("torch.mm(a, b, out=c)", {"torch": torch, "a": a, "b": b, "c": c},
                                          nthreads, min_run_time, thread_cpu)
        del a, b, c
        src = torch.ones(elems, device=dev)
        dst = torch.empty(elems, device=dev)
        for _ in range(3):
            dst.copy_(src)
        cp_s, cp_rel = _median_and_spread("dst.copy_(src)", {"src": src, "dst": dst}, nthreads, min_run_time,
                                          thread_cpu)
        del src, dst
    copy_bytes = 2 * elems * 4
    gflops = 2 * n**3 / mm_s / 1e9
    ceilings = MachineCeilings(
        device=str(dev), threads=nthreads, matmul_n=n, matmul_gflops=gflops, matmul_gmadds=gflops / 2,
        copy_bytes=copy_bytes, copy_gb_per_s=copy_bytes / cp_s / 1e9, matmul_relative_iqr=mm_rel,
        copy_relative_iqr=cp_rel, clock="thread_cpu" if thread_cpu else "wall",
        measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        env=capture_environment(device=dev, threads=nthreads),
    )
    if save:
        _save(ceilings, cache_path(dev))
    return ceilings
