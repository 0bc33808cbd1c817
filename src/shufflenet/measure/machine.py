"""This machine's ceilings: the best fp32 multiply-add rate and copy bandwidth, measured once and cached.

Later results are shown as a fraction of them (achieved multiply-adds/s over the compute ceiling, achieved
bytes/s over the copy bandwidth), the roofline view behind the paper's G1-G4 (Sec. 2): a network with low
FLOPs can still be slow when it is bound by memory access (MAC).

A ceiling must be the machine's, not one library's: a model run by a faster library would otherwise
reach "more than 100%". So the compute ceiling is the **maximum over several fp32 kernels** -- torch's
matmul (MKL/OpenBLAS on CPU, cuBLAS on CUDA), large dense convolutions in channels-last layout (oneDNN on
CPU, cuDNN on CUDA) and, when the optional ``openvino`` package is installed, OpenVINO's MatMul compiled
with ``INFERENCE_PRECISION_HINT=f32`` -- and the kernel that gave it is recorded. OpenVINO's *default*
precision on CPUs with AVX512_BF16 or AMX is bf16, roughly twice the fp32 rate: that rate is measured
and shown for reference but is never an fp32 ceiling. The copy bandwidth is likewise the best of torch's
``copy_`` and numpy's ``copyto``.

Beside the measured ceiling, :func:`theoretical_peak` gives the ISA's fp32 FMA peak on CPU (clock x FMA
units x fp32 lanes per unit x 2 FLOPs, per core). The FMA-unit count and width are *assumptions* per CPU
family, and the clock is the one the OS reports (in a VM often the nominal clock, below boost), so the
estimate is context, while every fraction and roofline verdict uses the measured best.

Cache: ``~/.cache/shufflenet/machine-<device>.json`` (``SHUFFLENET_CACHE`` overrides the directory), one
entry per thread count, discarded when the CPU/GPU model, the torch or OpenVINO version, or the cache
format changes.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import torch
from torch.utils.benchmark import Timer

from shufflenet._io import write_atomic
from shufflenet.environment import capture_environment, physical_core_count
from shufflenet.errors import UserInputError, first_line
from shufflenet.measure.options import resolve_device, resolve_threads
from shufflenet.measure.roofline import ridge_point
from shufflenet.measure.timing import num_threads, resolve_clock, summarize_times
from shufflenet.render import render
from shufflenet.result import GMADDS, ResultBase, Table

CACHE_VERSION = 2
# Sizes large enough that the timing is the ceiling, not call overhead; small enough that the whole
# measurement takes a few seconds.
MATMUL_N = {"cpu": 1024, "cuda": 8192}
# Dense convolutions (batch, channels in = out, side, kernel): GEMM-shaped work through oneDNN/cuDNN.
CONV_SHAPES: dict[str, tuple[tuple[int, int, int, int], ...]] = {
    "cpu": ((1, 512, 28, 1), (1, 256, 28, 3)),
    "cuda": ((32, 1024, 56, 1), (32, 512, 28, 3)),
}
COPY_ELEMENTS = {"cpu": 1 << 25, "cuda": 1 << 28}  # fp32: 128 MiB / 1 GiB per tensor, far beyond caches
KERNEL_MIN_RUN_TIME = 0.25  # per compute kernel; the copy kernels share ``min_run_time``
_IDENTITY_KEYS = ("cpu_model", "gpu_name", "torch")
CONVENTIONS = [
    GMADDS,
    "compute ceiling = the best fp32 rate over several kernels (GFLOP/s = 2 FLOPs per multiply-add); "
    "copy GB/s = bytes read + written per second by the best copy kernel",
    "every '% compute' and roofline verdict uses the measured best, never the theoretical peak",
]


class KernelUnavailable(RuntimeError):
    """A ceiling kernel cannot run here (library not installed, device unsupported)."""


# ----------------------------------------------------------------------------------------- kernels


# setup(device, threads) -> (one call, its multiply-adds, the precision it really computes in)
Setup = Callable[[torch.device, int], tuple[Callable[[], Any], int, str]]


@dataclass(frozen=True)
class ComputeKernel:
    """A candidate for the compute ceiling.

    ``setup(device, threads)`` allocates the operands and returns ``(call, madds, precision)``: a
    zero-argument function doing one call, its multiply-adds, and the arithmetic it really runs in
    ("fp32", "tf32" or "bf16"); it raises :class:`KernelUnavailable` when it cannot run here.
    ``own_threads`` marks a library with its own thread pool: with one thread it is timed on the process's
    CPU time, since the calling thread's own CPU time would miss the work. ``isolated`` runs the kernel in
    a spawned process (``setup`` must then pickle): OpenVINO's thread pool, once loaded, crashes a process
    that later forks DataLoader workers, so it never enters the caller's process.
    """

    name: str
    library: str
    setup: Setup
    devices: tuple[str, ...] = ("cpu", "cuda")
    own_threads: bool = False
    isolated: bool = False


@dataclass
class KernelRate:
    """One kernel's measured rate. ``gflops`` counts 2 FLOPs per multiply-add (the usual GFLOP/s).

    ``candidate`` is whether it may set the fp32 compute ceiling (fp32 arithmetic, or TF32 where torch
    itself runs fp32 convolutions in TF32 by default); ``error`` says why a kernel was skipped.
    """

    name: str
    library: str
    precision: str = "fp32"
    madds: int = 0
    seconds: float = 0.0
    gflops: float = 0.0
    relative_iqr: float = 0.0
    candidate: bool = True
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def kernel_gflops(madds: int, seconds: float) -> float:
    """GFLOP/s of ``madds`` multiply-adds done in ``seconds`` (2 FLOPs per multiply-add)."""
    return 2.0 * madds / seconds / 1e9 if seconds > 0 else 0.0


def best_kernel(rates: Iterable[KernelRate]) -> KernelRate | None:
    """The fastest kernel that may set the fp32 ceiling (``candidate`` and measured), if any."""
    usable = [r for r in rates if r.candidate and not r.error and r.gflops > 0]
    return max(usable, key=lambda r: r.gflops) if usable else None


def _torch_mm(dev: torch.device, threads: int) -> tuple[Callable[[], Any], int, str]:
    n = MATMUL_N[dev.type]
    a = torch.randn(n, n, device=dev)
    b = torch.randn(n, n, device=dev)
    c = torch.empty(n, n, device=dev)
    precision = "tf32" if dev.type == "cuda" and torch.backends.cuda.matmul.allow_tf32 else "fp32"
    return (lambda: torch.mm(a, b, out=c)), n**3, precision


def _conv(shape: tuple[int, int, int, int]) -> Setup:
    batch, ch, side, k = shape

    def setup(dev: torch.device, threads: int) -> tuple[Callable[[], Any], int, str]:
        cl = torch.channels_last
        x = torch.randn(batch, ch, side, side, device=dev).contiguous(memory_format=cl)
        w = torch.randn(ch, ch, k, k, device=dev).contiguous(memory_format=cl)
        conv = torch.nn.functional.conv2d
        # cuDNN runs fp32 convs in TF32 by default on Ampere+: that is what an fp32 model gets, too.
        tf32 = (dev.type == "cuda" and torch.backends.cudnn.allow_tf32
                and torch.cuda.get_device_capability(dev)[0] >= 8)
        return (lambda: conv(x, w, padding=k // 2)), batch * side * side * ch * ch * k * k, \
            "tf32" if tf32 else "fp32"

    return setup


def _openvino_setup(precision_hint: str | None, n: int, dev: torch.device, threads: int
                    ) -> tuple[Callable[[], Any], int, str]:
    if dev.type != "cpu":
        raise KernelUnavailable("measured on CPU only")
    try:
        import numpy as np
        import openvino as ov
        import openvino.opset13 as ops
    except ImportError as exc:
        raise KernelUnavailable("openvino is not installed") from exc
    rng = np.random.default_rng(0)
    a = ops.parameter([n, n], ov.Type.f32, name="a")
    b = ops.constant(rng.standard_normal((n, n), dtype=np.float32))
    model = ov.Model([ops.matmul(a, b, False, False)], [a], "matmul")
    config: dict[str, Any] = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
                              "PERFORMANCE_HINT": "LATENCY"}
    if precision_hint is not None:
        config["INFERENCE_PRECISION_HINT"] = precision_hint
    compiled = ov.Core().compile_model(model, "CPU", config)
    hint = compiled.get_property("INFERENCE_PRECISION_HINT")
    name = (hint.to_string() if hasattr(hint, "to_string") else str(hint)).lower()
    precision = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}.get(name, name)
    if precision_hint is None and precision == "fp32":
        raise KernelUnavailable("its default precision is fp32 here: same as the f32 kernel")
    request = compiled.create_infer_request()
    x = rng.standard_normal((n, n), dtype=np.float32)
    return (lambda: request.infer({0: x})), n**3, precision


def _openvino(precision_hint: str | None) -> Setup:
    # A partial of a module-level function, so the kernel can be set up in a spawned process.
    return functools.partial(_openvino_setup, precision_hint, MATMUL_N["cpu"])


def default_kernels() -> list[ComputeKernel]:
    """The compute kernels measured by :func:`measure_machine` (sizes from the module constants)."""
    cpu_conv = "oneDNN via torch" if torch.backends.mkldnn.is_available() else "torch CPU conv"
    kernels = []
    for dev in ("cpu", "cuda"):
        n = MATMUL_N[dev]
        kernels.append(ComputeKernel(f"matmul {n}x{n}", "torch.mm", _torch_mm, devices=(dev,)))
        for shape in CONV_SHAPES[dev]:
            b, c, s, k = shape
            kernels.append(ComputeKernel(f"conv {k}x{k} {c}->{c} ch {s}x{s} batch {b}, channels_last",
                                         cpu_conv if dev == "cpu" else "cuDNN via torch", _conv(shape),
                                         devices=(dev,)))
    n = MATMUL_N["cpu"]
    kernels.append(ComputeKernel(f"MatMul {n}x{n}, INFERENCE_PRECISION_HINT=f32", "OpenVINO", _openvino("f32"),
                                 devices=("cpu",), own_threads=True, isolated=True))
    kernels.append(ComputeKernel(f"MatMul {n}x{n}, its default precision hint", "OpenVINO", _openvino(None),
                                 devices=("cpu",), own_threads=True, isolated=True))
    return kernels


# ------------------------------------------------------------------------------ theoretical peak


_LANES = {"AVX-512": 16, "AVX2+FMA": 8, "AVX": 8, "SSE2": 4, "NEON": 4, "SVE": 4}


@dataclass
class PeakEstimate:
    """The ISA's fp32 FMA peak: ``clock_mhz * fma_units * lanes * 2`` FLOPs/s per core.

    ``lanes`` is fp32 lanes per FMA unit (the unit's width / 32 bits, which can be narrower than the
    ISA's registers: Zen 4 runs AVX-512 on 256-bit units). ``fma_units`` and the unit width are
    assumptions per CPU family (``assumption`` says which); ``clock_source`` says where the clock came
    from. Without FMA (plain AVX/SSE) a separate multiply and add per cycle give the same 2 FLOPs/lane.
    """

    isa: str
    fma_units: int
    lanes: int
    clock_mhz: float
    clock_source: str
    cores: int
    assumption: str

    @property
    def gflops_per_core(self) -> float:
        return self.clock_mhz / 1e3 * self.fma_units * self.lanes * 2

    @property
    def gflops(self) -> float:
        """All ``cores`` used (one thread per physical core)."""
        return self.gflops_per_core * self.cores

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "gflops_per_core": self.gflops_per_core, "gflops": self.gflops}


def fma_config(flags: Iterable[str], vendor: str = "", family: int | None = None, model: int | None = None,
               arch: str = "x86_64") -> tuple[str, int, int, str]:
    """(ISA, FMA units, fp32 lanes per unit, assumption) from ``/proc/cpuinfo`` flags and CPU family/model."""
    f = {x.lower() for x in flags}
    amd = "amd" in vendor.lower()
    if arch.startswith(("aarch64", "arm")):
        if "sve" in f:
            return "SVE", 2, 4, "2 x 128-bit FMA pipes assumed (SVE width taken as 128 bits)"
        return "NEON", 2, 4, "2 x 128-bit NEON FMA pipes assumed (Cortex-A7x/Neoverse N class)"
    if "avx512f" in f:
        if amd and family == 0x19:
            return "AVX-512", 2, 8, "Zen 4: AVX-512 on 2 x 256-bit FMA pipes assumed (double-pumped)"
        if amd:
            return "AVX-512", 2, 16, "2 x 512-bit FMA units assumed (Zen 5 desktop/server)"
        return "AVX-512", 2, 16, "2 x 512-bit FMA units assumed (Xeon Gold/Platinum; 1 on some SKUs)"
    if "avx2" in f and "fma" in f:
        if amd and family == 0x17 and model is not None and model < 0x30:
            return "AVX2+FMA", 2, 4, "Zen 1: 2 x 128-bit FMA pipes assumed"
        return "AVX2+FMA", 2, 8, "2 x 256-bit FMA units assumed (Haswell+/Zen 2-3)"
    if "avx" in f:
        return "AVX", 1, 8, "no FMA: 1 x 256-bit multiply + 1 add per cycle assumed"
    return "SSE2", 1, 4, "no FMA: 1 x 128-bit multiply + 1 add per cycle assumed"


def _cpuinfo_text() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _sys_max_mhz() -> float | None:
    try:
        khz = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text().strip()
        return int(khz) / 1e3
    except (OSError, ValueError):
        return None


def theoretical_peak(cpuinfo: str | None = None, cores: int = 1, max_mhz: float | None = None,
                     arch: str | None = None) -> PeakEstimate | None:
    """fp32 FMA peak of ``cores`` cores from ``/proc/cpuinfo`` text (this machine's when ``None``).

    The clock is the cpufreq maximum (``max_mhz``, read from ``/sys`` when ``cpuinfo`` is ``None``) or
    else the highest "cpu MHz" line -- in a VM that is often the nominal clock, below what the core
    boosts to, so a measured rate can exceed this estimate. ``None`` without flags or clock.
    """
    if cpuinfo is None:
        cpuinfo = _cpuinfo_text()
        max_mhz = _sys_max_mhz() if max_mhz is None else max_mhz
    if arch is None:
        import platform

        arch = platform.machine() or "x86_64"
    flags: list[str] = []
    vendor = ""
    family: int | None = None
    model: int | None = None
    mhz: list[float] = []
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("flags", "features") and not flags:
            flags = value.split()
        elif key == "vendor_id" and not vendor:
            vendor = value.strip()
        elif key in ("cpu family", "model") and (family if key == "cpu family" else model) is None:
            try:
                number = int(value.strip())
            except ValueError:
                continue
            if key == "cpu family":
                family = number
            else:
                model = number
        elif key == "cpu mhz":
            try:
                mhz.append(float(value.strip()))
            except ValueError:
                pass
    if not flags:
        return None
    if max_mhz:
        clock, source = float(max_mhz), "cpufreq cpuinfo_max_freq"
    elif mhz:
        clock, source = max(mhz), '/proc/cpuinfo "cpu MHz" (current or nominal clock, not boost)'
    else:
        return None
    isa, units, lanes, assumption = fma_config(flags, vendor, family, model, arch)
    return PeakEstimate(isa=isa, fma_units=units, lanes=lanes, clock_mhz=clock, clock_source=source,
                        cores=cores, assumption=assumption)


# ------------------------------------------------------------------------------------ ceilings


@dataclass
class MachineCeilings(ResultBase):
    """fp32 peak rates of one device at one thread count.

    ``matmul_gflops`` is the **compute ceiling**: the best fp32 rate over ``kernels`` (the one named by
    ``compute_kernel``), counting 2 FLOPs per multiply-add; ``matmul_gmadds`` is half of it:
    multiply-adds/s, the unit of the paper's FLOPs (V2 footnote 1), which achieved model rates are
    compared against. ``copy_gb_per_s`` counts bytes read + written, the best of ``copy_kernels``.
    ``peak`` is the ISA's theoretical fp32 FMA peak on CPU (context only; see :class:`PeakEstimate`).
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
    compute_kernel: str = ""
    kernels: list[KernelRate] = field(default_factory=list)
    copy_kernel: str = ""
    copy_kernels: dict[str, float] = field(default_factory=dict)
    peak: PeakEstimate | None = None
    cache_version: int = CACHE_VERSION
    libraries: dict[str, str | None] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["peak"] = self.peak.to_dict() if self.peak else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MachineCeilings:
        values = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        values["kernels"] = [KernelRate(**{k: v for k, v in r.items() if k in KernelRate.__dataclass_fields__})
                             for r in d.get("kernels") or []]
        peak = d.get("peak")
        values["peak"] = PeakEstimate(**{k: v for k, v in peak.items() if k in PeakEstimate.__dataclass_fields__}) \
            if peak else None
        return cls(**values)

    def compute_fraction(self, gmadds_per_s: float) -> float:
        """Achieved multiply-adds/s as a fraction of the compute ceiling (the best measured kernel)."""
        return gmadds_per_s / self.matmul_gmadds

    def bandwidth_fraction(self, gb_per_s: float) -> float:
        return gb_per_s / self.copy_gb_per_s

    @property
    def peak_fraction(self) -> float | None:
        """The measured ceiling over the theoretical FMA peak (above 1: the clock or unit count is low)."""
        return self.matmul_gflops / self.peak.gflops if self.peak and self.peak.gflops > 0 else None

    def rows(self) -> list[dict[str, Any]]:
        """Table rows: the ceilings, every kernel measured, the theoretical peak, the copy bandwidth."""
        iqr = round(self.matmul_relative_iqr, 3)
        rows = [
            {"ceiling": "fp32 compute (best kernel)", "value": round(self.matmul_gflops, 2),
             "unit": "GFLOP/s (2 per multiply-add)", "relative IQR": iqr, "note": self.compute_kernel},
            {"ceiling": "fp32 compute, multiply-adds", "value": round(self.matmul_gmadds, 2),
             "unit": "G multiply-adds/s (paper FLOPs/s)", "relative IQR": iqr,
             "note": "the ceiling of every '% compute' and roofline verdict"},
        ]
        for k in self.kernels:
            if k.error:
                rows.append({"ceiling": f"  kernel {k.library}", "value": None, "unit": "", "relative IQR": None,
                             "note": f"{k.name}: skipped, {k.error}"})
                continue
            rows.append({"ceiling": f"  kernel {k.library}", "value": round(k.gflops, 2),
                         "unit": f"GFLOP/s, {k.precision}", "relative IQR": round(k.relative_iqr, 3),
                         "note": k.name + ("" if k.candidate else f" -- {k.precision}, not an fp32 ceiling")})
        if self.peak is not None:
            p = self.peak
            note = (f"{p.clock_mhz:.0f} MHz x {p.fma_units} FMA units x {p.lanes} fp32 lanes x 2 x {p.cores} "
                    f"core(s); {p.assumption}; clock: {p.clock_source}")
            frac = self.peak_fraction
            if frac is not None:
                note += f"; the measured ceiling is {frac:.0%} of it"
                if frac > 1:
                    implied = self.matmul_gflops / (p.fma_units * p.lanes * 2 * p.cores) * 1e3
                    note += f" (so the core runs at >= {implied:.0f} MHz, e.g. boost, or has more FMA units)"
            rows.append({"ceiling": f"theoretical fp32 FMA peak ({p.isa})", "value": round(p.gflops, 2),
                         "unit": "GFLOP/s", "relative IQR": None, "note": note})
        rows.append({"ceiling": f"copy {self.copy_bytes // 2 // 2**20} MiB (best kernel)",
                     "value": round(self.copy_gb_per_s, 2), "unit": "GB/s (read + write)",
                     "relative IQR": round(self.copy_relative_iqr, 3),
                     "note": f"{self.copy_kernel}; all: "
                             + ", ".join(f"{k} {v:.1f}" for k, v in self.copy_kernels.items())})
        return rows

    def title(self) -> str:
        env = self.env
        return (f"machine ceilings: {env.get('gpu_name') or env.get('cpu_model')}, {self.device}, "
                f"{self.threads} thread(s), torch {env.get('torch')} (measured {self.measured_at})")

    def tables(self) -> list[Table]:
        """One table, the rows of :meth:`rows` (what ``shufflenet bench --machine`` prints)."""
        notes = [f"ridge point {ridge_point(self):.2f} multiply-adds per byte: layers above it are "
                 "compute-bound, below it memory-bound"] if self.copy_gb_per_s > 0 else []
        return [Table.from_rows(self.title(), self.rows(), notes=notes, key="ceilings")]

    def conventions(self) -> list[str]:
        return list(CONVENTIONS)

    def to_table(self) -> str:
        return render(self, "table")

    def summary(self) -> str:
        """One line: the ceilings and the kernel that set the compute one."""
        return (f"compute {self.matmul_gmadds:.1f} GMAdd/s ({self.matmul_gflops:.1f} GFLOP/s, best of "
                f"{sum(1 for k in self.kernels if not k.error)} kernels: {self.compute_kernel}), copy "
                f"{self.copy_gb_per_s:.1f} GB/s")


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


def _libraries() -> dict[str, str | None]:
    """Versions of the optional libraries whose kernels count (installing one changes the ceiling)."""
    try:
        ov = metadata.version("openvino")
    except metadata.PackageNotFoundError:
        ov = None
    return {"openvino": ov}


def _same_machine(ceilings: MachineCeilings, env: dict[str, Any]) -> bool:
    return (ceilings.cache_version == CACHE_VERSION and ceilings.libraries == _libraries()
            and all(ceilings.env.get(k) == env.get(k) for k in _IDENTITY_KEYS))


def load_machine(device: str | torch.device = "cpu", threads: int | None = None) -> MachineCeilings | None:
    """The cached ceilings of ``device`` at ``threads`` (``None``: see :func:`resolve_threads`), if any."""
    dev = resolve_device(device)
    nthreads = resolve_threads(threads, dev)
    entry = _read_cache(cache_path(dev)).get("entries", {}).get(str(nthreads))
    if not entry or entry.get("cache_version") != CACHE_VERSION:
        return None
    try:
        ceilings = MachineCeilings.from_dict(entry)
    except TypeError:  # a hand-edited or truncated entry
        return None
    if not _same_machine(ceilings, capture_environment(device=dev, threads=nthreads)):
        return None
    return ceilings


def _save(ceilings: MachineCeilings, path: Path) -> None:
    data = _read_cache(path) or {"entries": {}}
    data["entries"][str(ceilings.threads)] = ceilings.to_dict()
    write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def _median_and_spread(fn: Callable[[], Any], threads: int, min_run_time: float,
                       clock: Callable[[], float] | None) -> tuple[float, float]:
    # Same clock rule as measure(): one CPU thread is timed on its own CPU time (see timing.py).
    extra = {"timer": clock} if clock is not None else {}
    timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads, **extra)
    raw = timer.blocked_autorange(min_run_time=min_run_time)
    stats = summarize_times(raw.times)
    return stats.median, stats.relative_iqr


def _time_kernel(setup: Setup, dev: torch.device, threads: int, min_run_time: float,
                 clock: str | None) -> tuple[int, str, float, float]:
    """(multiply-adds, precision, median seconds, relative IQR) of one kernel, timed in this process."""
    fn, madds, precision = setup(dev, threads)
    for _ in range(3):
        fn()
    timer = {"process": time.process_time, "thread": time.thread_time}.get(clock or "")
    seconds, rel = _median_and_spread(fn, threads, min_run_time, timer)
    return madds, precision, seconds, rel


def _child_time_kernel(setup: Setup, device: str, threads: int, min_run_time: float,
                       clock: str | None) -> tuple[int, str, float, float]:
    torch.set_num_threads(threads)
    return _time_kernel(setup, torch.device(device), threads, min_run_time, clock)


def _time_in_child(setup: Setup, dev: torch.device, threads: int, min_run_time: float,
                   clock: str | None) -> tuple[int, str, float, float]:
    """:func:`_time_kernel` in a freshly spawned process (nothing of the library stays in this one)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            return pool.submit(_child_time_kernel, setup, str(dev), threads, min_run_time, clock).result()
    except BrokenProcessPool as exc:
        raise KernelUnavailable(f"its process died ({first_line(exc)})") from exc


def measure_kernels(kernels: Sequence[ComputeKernel], dev: torch.device, threads: int,
                    min_run_time: float = KERNEL_MIN_RUN_TIME, thread_cpu: bool = False) -> list[KernelRate]:
    """Time each kernel available on ``dev`` (the caller sets the thread count); errors are recorded."""
    rates = []
    for k in kernels:
        if dev.type not in k.devices:
            continue
        rate = KernelRate(name=k.name, library=k.library)
        clock = ("process" if k.own_threads else "thread") if thread_cpu else None
        try:
            if k.isolated:
                madds, precision, seconds, rel = _time_in_child(k.setup, dev, threads, min_run_time, clock)
            else:
                madds, precision, seconds, rel = _time_kernel(k.setup, dev, threads, min_run_time, clock)
        except KernelUnavailable as exc:
            rate.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - one failing library must not hide the others' ceilings
            rate.error = f"{type(exc).__name__}: {first_line(exc)}"
        else:
            rate.madds, rate.precision, rate.seconds, rate.relative_iqr = madds, precision, seconds, rel
            rate.gflops = kernel_gflops(madds, seconds)
            rate.candidate = precision in ("fp32", "tf32")
        rates.append(rate)
    return rates


def _numpy_copy(elems: int) -> Callable[[], Any]:
    import numpy as np

    src = np.ones(elems, dtype=np.float32)
    dst = np.empty_like(src)
    return lambda: np.copyto(dst, src)


def _measure(dev: torch.device, nthreads: int, elems: int, kernels: Sequence[ComputeKernel] | None,
             kernel_min_run_time: float | None, min_run_time: float, thread_cpu: bool,
             clock: Callable[[], float] | None) -> tuple[list[KernelRate], dict[str, tuple[float, float]]]:
    with num_threads(nthreads), torch.inference_mode():
        rates = measure_kernels(default_kernels() if kernels is None else kernels, dev, nthreads,
                                KERNEL_MIN_RUN_TIME if kernel_min_run_time is None else kernel_min_run_time,
                                thread_cpu)
        src = torch.ones(elems, device=dev)
        dst = torch.empty(elems, device=dev)
        copies = [("torch copy_", lambda: dst.copy_(src))]
        if dev.type == "cpu":
            copies.append(("numpy copyto", _numpy_copy(elems)))
        copy_rates: dict[str, tuple[float, float]] = {}
        for name, fn in copies:
            for _ in range(3):
                fn()
            copy_rates[name] = _median_and_spread(fn, nthreads, min_run_time / len(copies), clock)
    return rates, copy_rates


def measure_machine(
    device: str | torch.device = "cpu",
    threads: int | None = None,
    *,
    refresh: bool = False,
    save: bool = True,
    min_run_time: float = 0.5,
    kernel_min_run_time: float | None = None,
    kernels: Sequence[ComputeKernel] | None = None,
) -> MachineCeilings:
    """Measure (or read from the cache) the compute ceiling and copy bandwidth of ``device`` at ``threads``.

    The compute ceiling is the best fp32 rate over ``kernels`` (default :func:`default_kernels`), each
    timed for ``kernel_min_run_time`` seconds (default :data:`KERNEL_MIN_RUN_TIME`); the bandwidth is
    the best of two copies on CPU (one on CUDA), sharing ``min_run_time``. ``refresh=True`` measures
    even when a cached entry exists; ``save=False`` leaves the cache alone. Raises ``RuntimeError`` when no kernel could run.
    """
    dev = resolve_device(device)
    nthreads = resolve_threads(threads, dev)
    if not refresh:
        cached = load_machine(dev, nthreads)
        if cached is not None:
            return cached
    elems = COPY_ELEMENTS[dev.type]
    thread_cpu = resolve_clock("auto", dev, nthreads) == "thread_cpu"
    clock = time.thread_time if thread_cpu else None
    benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True  # cuDNN picks its fastest algorithm, as in the paper's protocol
    try:
        rates, copy_rates = _measure(dev, nthreads, elems, kernels, kernel_min_run_time, min_run_time,
                                     thread_cpu, clock)
    finally:
        torch.backends.cudnn.benchmark = benchmark
    best = best_kernel(rates)
    if best is None:
        raise RuntimeError("no compute kernel could run: " + "; ".join(f"{r.name}: {r.error}" for r in rates))
    copy_bytes = 2 * elems * 4
    copy_name, (cp_s, cp_rel) = min(copy_rates.items(), key=lambda kv: kv[1][0])
    peak = theoretical_peak(cores=min(nthreads, physical_core_count())) if dev.type == "cpu" else None
    ceilings = MachineCeilings(
        device=str(dev), threads=nthreads, matmul_n=MATMUL_N[dev.type], matmul_gflops=best.gflops,
        matmul_gmadds=best.gflops / 2, copy_bytes=copy_bytes, copy_gb_per_s=copy_bytes / cp_s / 1e9,
        matmul_relative_iqr=best.relative_iqr, copy_relative_iqr=cp_rel,
        clock="thread_cpu" if thread_cpu else "wall",
        measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        compute_kernel=f"{best.library}: {best.name}", kernels=rates, copy_kernel=copy_name,
        copy_kernels={k: round(copy_bytes / s / 1e9, 3) for k, (s, _) in copy_rates.items()},
        peak=peak, libraries=_libraries(), env=capture_environment(device=dev, threads=nthreads),
    )
    if save:
        _save(ceilings, cache_path(dev))
    return ceilings


CeilingsArg = MachineCeilings | Literal["auto", "cached", "none"] | None


def resolve_ceilings(ceilings: CeilingsArg, device: str | torch.device = "cpu",
                     threads: int | None = None) -> tuple[MachineCeilings | None, str]:
    """The ceilings a roofline verdict uses, and where they came from.

    ``"auto"``: the cache, else measured now (and cached); ``"cached"``: the cache only (``None`` without
    it); ``"none"`` / ``None``: no ceilings; a :class:`MachineCeilings`: those ("given").
    """
    if isinstance(ceilings, MachineCeilings):
        return ceilings, "given"
    if ceilings in (None, "none"):
        return None, "none"
    if ceilings not in ("auto", "cached"):
        raise UserInputError(f"ceilings must be auto, cached or none, got {ceilings!r}")
    cached = load_machine(device, threads)
    if cached is not None:
        return cached, "cache"
    if ceilings == "cached":
        return None, "none"
    return measure_machine(device, threads), "measured now (and cached)"
