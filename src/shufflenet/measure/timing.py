"""Latency of a model on this machine, timed with :class:`torch.utils.benchmark.Timer`.

Protocol (the paper's Sec. 2 and the captions of Fig. 1 / Table 8, adapted): the model runs in eval mode under :func:`torch.inference_mode`, is warmed
up before any timing, and is then timed in repeated blocks (``blocked_autorange``) with an explicit thread
count; Timer synchronises CUDA around each block. The paper averages 100 runs; we report the **median**
and the interquartile range of the blocks because the median is robust to the interruptions of a shared
machine, and flag a run as ``noisy`` when its IQR exceeds 10% of the median. On CUDA the paper's GPU
protocol applies: ``cudnn.benchmark`` on (batch 8 is the CLI default there), optionally CUDA-graph replay.

Clock: on CPU with one thread (the paper's ARM setting and our CPU default) the blocks are timed with the
calling thread's **CPU time** (``clock="auto"``), which all the work runs on: on an idle machine it equals
wall time, and on a shared one it leaves out the time the OS gave the core to other processes, which
is what made back-to-back wall-clock medians differ by 10-60% on a busy 2-core VM. The wall-clock median
of the same blocks is recorded beside it (``wall_median_s``). Multi-threaded and CUDA runs use wall time.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.benchmark import Timer

from shufflenet.errors import ShuffleNetError, UserInputError, first_line
from shufflenet.measure.env import LoadProbe, capture_environment, wait_until_idle
from shufflenet.measure.options import (
    cannot_run,
    check_count,
    check_input_size,
    check_memory_format,
    dtype_name,
    resolve_device,
    resolve_dtype,
    resolve_threads,
)
from shufflenet.models._checks import require_module
from shufflenet.result import SPEED, ResultBase, Table

NOISY_THRESHOLD = 0.10  # a spread above 10% of the median marks the run as noisy
DEFAULT_MIN_RUN_TIME = 3.0
DEFAULT_WARMUP = 10
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)

Method = Literal["blocked", "adaptive"]
Clock = Literal["auto", "wall", "thread_cpu"]
CLOCKS = ("auto", "wall", "thread_cpu")

# The timing conventions, written once (bench, profile and suites state them too).
NOISY = "noisy = IQR > 10% of the median"
LATENCY = ("latency = median of timed blocks (torch.utils.benchmark, after warm-up); IQR = interquartile range; "
           + NOISY)
CLOCK = ("clock: CPU with 1 thread = the thread's CPU time (equals wall time on an idle machine, ignores time "
         "taken by other processes); otherwise wall time")


@dataclass(frozen=True)
class TimeStats:
    """Order statistics of per-run times (seconds), quantiles linearly interpolated as numpy/torch do."""

    n: int
    median: float
    mean: float
    p25: float
    p75: float
    iqr: float
    min: float
    max: float
    quantiles: dict[str, float]

    @property
    def relative_iqr(self) -> float:
        return self.iqr / self.median if self.median > 0 else math.inf


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-quantile of already sorted values, linear interpolation between closest ranks."""
    if not sorted_values:
        raise ValueError("quantile of no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile q must lie in [0, 1], got {q}")
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    """The median of ``values`` (any order), interpolated as :func:`quantile`."""
    return quantile(sorted(values), 0.5)


def relative_iqr(values: Sequence[float]) -> float:
    """Interquartile range over the median of ``values`` (0 for fewer than two values, inf for a median <= 0)."""
    v = sorted(values)
    if len(v) < 2:
        return 0.0
    med = quantile(v, 0.5)
    return (quantile(v, 0.75) - quantile(v, 0.25)) / med if med > 0 else math.inf


def summarize_times(times: Sequence[float]) -> TimeStats:
    """Median, quartiles, IQR, mean and extremes of per-run times."""
    values = sorted(float(t) for t in times)
    if not values:
        raise ValueError("no times to summarise")
    qs = {f"p{round(q * 100)}": quantile(values, q) for q in QUANTILES}
    p25, p75 = qs["p25"], qs["p75"]
    return TimeStats(n=len(values), median=qs["p50"], mean=sum(values) / len(values), p25=p25, p75=p75,
                     iqr=p75 - p25, min=values[0], max=values[-1], quantiles=qs)


def is_noisy(median: float, iqr: float, threshold: float = NOISY_THRESHOLD) -> bool:
    """True when the interquartile range exceeds ``threshold`` (10%) of the median."""
    return median <= 0 or iqr > threshold * median


@dataclass
class Measurement(ResultBase):
    """The timing of one model at one input size, with its environment (JSON-ready via :meth:`to_dict`).

    Times are seconds per forward pass of a whole batch, on ``clock`` (``thread_cpu`` or ``wall``; see the
    module docstring). ``num_blocks`` blocks of ``number_per_run`` forward passes each were timed
    (``total_runs`` in all) after ``warmup_runs`` untimed warm-up passes. ``other_load`` is how many
    CPUs other processes kept busy while the blocks were timed (Linux; ``None`` elsewhere).
    """

    model: str
    input_size: tuple[int, int, int, int]
    device: str
    dtype: str
    memory_format: str
    threads: int
    median_s: float
    mean_s: float
    iqr_s: float
    min_s: float
    max_s: float
    quantiles_s: dict[str, float]
    number_per_run: int
    num_blocks: int
    warmup_runs: int
    warmup_s: float
    min_run_time: float
    method: str
    clock: str = "wall"
    other_load: float | None = None
    wait_idle_s: float = 0.0
    wall_median_s: float | None = None
    wall_iqr_s: float | None = None
    compile: bool = False
    cuda_graphs: bool = False
    runtime: str = "torch"
    cudnn_benchmark: bool | None = None
    noisy_threshold: float = NOISY_THRESHOLD
    times_s: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    env: dict[str, Any] = field(default_factory=dict)

    @property
    def batch(self) -> int:
        return self.input_size[0]

    @property
    def total_runs(self) -> int:
        return self.number_per_run * self.num_blocks

    @property
    def relative_iqr(self) -> float:
        return self.iqr_s / self.median_s if self.median_s > 0 else math.inf

    @property
    def noisy(self) -> bool:
        return is_noisy(self.median_s, self.iqr_s, self.noisy_threshold)

    @property
    def batches_per_s(self) -> float:
        return 1.0 / self.median_s

    @property
    def images_per_s(self) -> float:
        return self.batch / self.median_s

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        d.update(batch=self.batch, total_runs=self.total_runs, relative_iqr=self.relative_iqr,
                 noisy=self.noisy, images_per_s=self.images_per_s, batches_per_s=self.batches_per_s)
        return d

    def table_row(self) -> dict[str, Any]:
        """The row of :meth:`tables`: the settings, the latency statistics in ms and the throughput."""
        row: dict[str, Any] = {
            "model": self.model, "input": "x".join(map(str, self.input_size)), "device": self.device,
            "dtype": self.dtype, "memory_format": self.memory_format, "threads": self.threads, "clock": self.clock,
            "median_ms": self.median_s * 1e3, "iqr_ms": self.iqr_s * 1e3, "min_ms": self.min_s * 1e3,
            "max_ms": self.max_s * 1e3, "images_per_s": self.images_per_s, "batches_per_s": self.batches_per_s,
            "blocks": self.num_blocks, "runs_per_block": self.number_per_run, "noisy": self.noisy,
        }
        if self.wall_median_s is not None and self.clock != "wall":
            row["wall_median_ms"] = self.wall_median_s * 1e3
        return row

    def tables(self) -> list[Table]:
        units = {k: "ms" for k in ("median_ms", "iqr_ms", "min_ms", "max_ms", "wall_median_ms")}
        labels = {"median_ms": "median", "iqr_ms": "IQR", "min_ms": "min", "max_ms": "max",
                  "images_per_s": "images/s", "batches_per_s": "batches/s", "runs_per_block": "runs/block",
                  "memory_format": "memory format", "wall_median_ms": "wall median"}
        fmts = {k: ".3f" for k in units}
        return [Table.from_rows(f"latency of {self.model}", [self.table_row()], units=units, labels=labels,
                                fmts=fmts, notes=self.notes, key="measurement")]

    def conventions(self) -> list[str]:
        return [SPEED, LATENCY, CLOCK]

    def summary(self) -> str:
        flag = "  NOISY" if self.noisy else ""
        return (f"{self.model} {'x'.join(map(str, self.input_size))} {self.device} {self.dtype} "
                f"threads={self.threads}: median {self.median_s * 1e3:.3f} ms "
                f"(IQR {self.iqr_s * 1e3:.3f} ms, {self.num_blocks} blocks x {self.number_per_run}), "
                f"{self.images_per_s:.1f} images/s{flag}")


class _Timer(Timer):
    """:class:`Timer` that times one forward pass per block whenever a single pass takes >= 1 ms.

    Timer grows the block until the clock's own cost is <= 0.01% of it. A clock read costs ~0.3-0.8 us
    (the CPU-time clock is a syscall), so ms-scale models flipped between blocks of 1 and 10 passes from
    one run to the next, and a median of 10-pass means is not the median of passes: that alone moved
    back-to-back medians by several percent. At >= 1 ms per pass the overhead is < 0.1% anyway.
    """

    def _estimate_block_size(self, min_run_time: float) -> int:
        if self._timeit(1) >= 1e-3:
            return 1
        return super()._estimate_block_size(min_run_time)


class _ThreadCpuClock:
    """A Timer clock returning this thread's CPU time that also notes the wall time of every call.

    Timer's timeit template reads the clock once before and once after each block, so the last
    ``2 * num_blocks`` wall readings are the start/end pairs of the measured blocks.
    """

    def __init__(self) -> None:
        self.walls: list[float] = []

    def __call__(self) -> float:
        self.walls.append(time.perf_counter())
        return time.thread_time()

    def block_walls(self, num_blocks: int) -> list[float] | None:
        w = self.walls[-2 * num_blocks:]
        if len(w) != 2 * num_blocks:
            return None
        return [end - start for start, end in zip(w[::2], w[1::2], strict=True)]


def resolve_clock(clock: str, device: torch.device, threads: int) -> str:
    """``auto`` -> ``thread_cpu`` on CPU with one thread, else ``wall``; impossible choices are an error."""
    if clock not in CLOCKS:
        raise UserInputError(f"unknown clock {clock!r}: choose {', '.join(CLOCKS)}")
    single = device.type == "cpu" and threads == 1
    if clock == "auto":
        return "thread_cpu" if single else "wall"
    if clock == "thread_cpu" and not single:
        raise UserInputError("clock thread_cpu times only the calling thread: it needs --device cpu and "
                             "--threads 1 (use --clock wall otherwise)")
    return clock


@contextmanager
def num_threads(n: int) -> Iterator[None]:
    """Set torch's intra-op thread count for the block and restore the previous one afterwards."""
    prior = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prior)


@contextmanager
def _cudnn_benchmark(enabled: bool | None) -> Iterator[None]:
    prior = torch.backends.cudnn.benchmark
    if enabled is not None:
        torch.backends.cudnn.benchmark = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = prior


def prepare_model(model: nn.Module, device: torch.device, dtype: torch.dtype,
                  memory_format: torch.memory_format = torch.contiguous_format) -> nn.Module:
    """The model on the right device/dtype/layout: the caller's own when it already is, else a converted copy
    (so a conversion never changes the caller's model)."""
    params = list(model.parameters()) + list(model.buffers())
    same = (all(p.device == device for p in params)
            and all(p.dtype == dtype for p in params if p.is_floating_point())
            and memory_format == torch.contiguous_format)
    if same:
        return model
    net = copy.deepcopy(model).to(device=device, dtype=dtype)
    if memory_format == torch.channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net


def _compile(net: nn.Module, cuda_graphs: bool) -> Callable[..., Any]:
    try:
        # "reduce-overhead" is torch.compile's own CUDA-graph mode; a hand capture of a compiled graph is not.
        return torch.compile(net, mode="reduce-overhead" if cuda_graphs else None)
    except Exception as exc:  # noqa: BLE001 - any compiler failure becomes one clear error
        raise ShuffleNetError(f"torch.compile failed: {first_line(exc)} (rerun without --compile)") from exc


def _run_once(fn: Callable[..., Any], x: torch.Tensor, *, compiled: bool, dtype: torch.dtype,
              device: torch.device, size: tuple[int, ...]) -> None:
    try:
        fn(x)
    except torch.cuda.OutOfMemoryError as exc:
        raise ShuffleNetError(f"out of memory on {device} at input {size}: {first_line(exc)}") from exc
    except ShuffleNetError:
        raise
    except Exception as exc:
        if compiled:
            raise ShuffleNetError(f"torch.compile failed: {first_line(exc)} "
                                  "(rerun without --compile)") from exc
        if not isinstance(exc, RuntimeError):
            raise
        msg = first_line(exc)
        if dtype != torch.float32 and ("not implemented for" in msg or "not supported" in msg):
            raise UserInputError(f"dtype {dtype_name(dtype)} is not supported on {device} "
                                 f"by this model: {msg}") from exc
        raise cannot_run(exc, size) from exc


def _warm_up(fn: Callable[..., Any], x: torch.Tensor, runs: int, max_time: float,
             **kw: Any) -> tuple[int, float]:
    """Untimed passes before timing: oneDNN/cuDNN pick and cache kernels, caches and clocks settle.

    Stops after ``runs`` passes, or earlier once 3 passes are done and ``max_time`` has elapsed (a slow
    model needs fewer passes to warm up than it would take to run them all).
    """
    start = time.perf_counter()
    done = 0
    for done in range(1, runs + 1):
        _run_once(fn, x, **kw)
        if done >= 3 and time.perf_counter() - start > max_time:
            break
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
    return done, time.perf_counter() - start


def _capture_cuda_graph(fn: Callable[..., Any], x: torch.Tensor) -> torch.cuda.CUDAGraph:
    """Capture one forward pass; warm-up on a side stream first, as CUDA-graph capture requires."""
    side = torch.cuda.Stream(device=x.device)
    side.wait_stream(torch.cuda.current_stream(x.device))
    with torch.cuda.stream(side):
        for _ in range(3):
            fn(x)
    torch.cuda.current_stream(x.device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn(x)
    graph.replay()
    torch.cuda.synchronize(x.device)
    return graph


# Converts a model for an inference runtime: (model, runtime, input size, threads) -> module. The deploy
# package, which builds on this one, registers it when it is imported (``import shufflenet`` does).
RuntimeAdapter = Callable[[nn.Module, str, tuple[int, ...], int], nn.Module]
_runtime_adapter: list[RuntimeAdapter] = []


def register_runtime_adapter(adapter: RuntimeAdapter) -> None:
    """Make :func:`measure` (``runtime=...``) and :func:`prepare_runtime` able to run other runtimes."""
    _runtime_adapter[:] = [adapter]


def prepare_runtime(model: nn.Module, runtime: str, input_size: Sequence[int], threads: int) -> nn.Module:
    """``model`` converted for ``runtime`` once (so repeated :func:`measure` calls do not convert again);
    ``"torch"`` returns it unchanged. The result is timed with the wall clock."""
    if runtime == "torch":
        return model
    if not _runtime_adapter:
        raise UserInputError(f"timing in {runtime} needs shufflenet.deploy (import shufflenet.deploy first)")
    return _runtime_adapter[0](model, runtime, tuple(input_size), threads)


def measure(
    model: nn.Module,
    input_size: Sequence[int],
    *,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    dtype: str | torch.dtype = torch.float32,
    memory_format: str = "contiguous",
    compile: bool = False,
    cuda_graphs: bool = False,
    cudnn_benchmark: bool = True,
    min_run_time: float = DEFAULT_MIN_RUN_TIME,
    warmup: int = DEFAULT_WARMUP,
    warmup_max_time: float = 2.0,
    method: Method = "blocked",
    max_run_time: float = 30.0,
    clock: Clock = "auto",
    wait_idle: float = 0.0,
    name: str | None = None,
    runtime: str = "torch",
) -> Measurement:
    """Time ``model`` on a random NCHW input of ``input_size`` (batch first); see the module docstring.

    Args:
        threads: intra-op threads; ``None`` = 1 on CPU (the paper's one-thread ARM setting, Sec. 2).
        dtype: ``fp32``/``fp16``/``bf16`` or the torch dtype. fp16 on CPU runs but is noted as slow.
        memory_format: ``"contiguous"`` (NCHW) or ``"channels_last"`` (NHWC) for model and input.
        compile: run through :func:`torch.compile` (a failure raises :class:`ShuffleNetError`).
        cuda_graphs: CUDA only: replay one captured CUDA graph per forward pass (Sec. 2: all optimisations on).
        cudnn_benchmark: CUDA only: cuDNN picks the fastest algorithm per conv, as the paper did (Sec. 2).
        min_run_time: seconds of timed blocks (``blocked``), or before checking the spread (``adaptive``).
        warmup: untimed warm-up passes (at least one, which also checks that model, input and dtype
            work together; see :func:`_warm_up`).
        method: ``"blocked"`` = ``Timer.blocked_autorange``; ``"adaptive"`` = ``Timer.adaptive_autorange``
            (repeats until IQR/median < 10% or ``max_run_time``).
        clock: ``"auto"`` (thread CPU time on CPU with 1 thread, else wall), ``"wall"`` or ``"thread_cpu"``.
        wait_idle: wait up to this many seconds for other processes to go quiet before warming up.
        name: the model's label in the result (default: its class name).
        runtime: ``"torch"`` (eager PyTorch), or ``"onnxruntime"``, ``"openvino"``, ``"ncnn"``: the model
            is converted and run there (fp32, NCHW input), timed with the wall clock, since a runtime may
            compute on threads of its own.

    Model and input are converted on a copy, so the caller's model is left as it was (its train/eval
    mode is restored).
    """
    require_module(model, "model", "measure")
    dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    mf = check_memory_format(memory_format)
    size = check_input_size(input_size)
    nthreads = resolve_threads(threads, dev)
    if cuda_graphs and dev.type != "cuda":
        raise UserInputError("CUDA-graph replay needs --device cuda")
    if not min_run_time > 0:
        raise UserInputError(f"min_run_time must be > 0 seconds, got {min_run_time}")
    check_count("warmup", warmup, 0)
    if method not in ("blocked", "adaptive"):
        raise UserInputError(f"unknown timing method {method!r}: choose blocked or adaptive")
    if getattr(model, "wall_clock_only", False) and clock == "auto":
        clock = "wall"  # a model already converted for a runtime (prepare_runtime)
    if runtime != "torch":
        if dev.type != "cpu" or dt != torch.float32 or compile or mf != torch.contiguous_format:
            raise UserInputError(f"--runtime {runtime} times fp32 on the CPU with its own layouts and graph "
                                 "optimisations: drop --device/--dtype/--channels-last/--compile")
        if clock == "thread_cpu":
            raise UserInputError(f"--runtime {runtime} computes on threads of its own: use --clock wall")
        clock = "wall"
    clock_used = resolve_clock(clock, dev, nthreads)
    notes: list[str] = []
    if dt == torch.float16 and dev.type == "cpu":
        notes.append("fp16 on CPU: most kernels are not vectorised for fp16 here; expect it slower than fp32")
    if dev.type == "cpu" and threads is None:
        notes.append("threads defaulted to 1 (the paper's one-thread ARM setting, Sec. 2)")

    waited = wait_until_idle(wait_idle)[0] if wait_idle > 0 else 0.0
    was_training = model.training
    net = prepare_model(model, dev, dt, mf)
    net.eval()
    if runtime != "torch":
        net = prepare_runtime(net, runtime, size, nthreads)
        notes.append(f"timed in {runtime} ({nthreads} thread(s)), converted from the PyTorch model")
    cudnn_flag = cudnn_benchmark if dev.type == "cuda" else None
    try:
        with _cudnn_benchmark(cudnn_flag), num_threads(nthreads), torch.inference_mode():
            x = torch.randn(size, device=dev, dtype=dt).contiguous(memory_format=mf)
            fn: Callable[..., Any] = _compile(net, cuda_graphs) if compile else net
            kw = dict(compiled=compile, dtype=dt, device=dev, size=size)
            # The first pass checks that model, input and dtype work together before any timing.
            warmup_runs, warmup_s = _warm_up(fn, x, max(warmup, 1), warmup_max_time, **kw)
            stmt, globs = "model(x)", {"model": fn, "x": x}
            if cuda_graphs and not compile:
                stmt, globs = "graph.replay()", {"graph": _capture_cuda_graph(fn, x)}
                warmup_runs += 4
            env = capture_environment(device=dev, threads=nthreads, dtype=dt, batch=size[0],
                                      memory_format=memory_format, input_size=size)
            cpu_clock = _ThreadCpuClock() if clock_used == "thread_cpu" else None
            timer = _Timer(stmt=stmt, globals=globs, num_threads=nthreads,
                          label=name or type(model).__name__, description="x".join(map(str, size)),
                          **({"timer": cpu_clock} if cpu_clock is not None else {}))
            probe = LoadProbe().start()
            if method == "adaptive":
                raw = timer.adaptive_autorange(threshold=NOISY_THRESHOLD, min_run_time=min_run_time,
                                               max_run_time=max(max_run_time, min_run_time))
            else:
                raw = timer.blocked_autorange(min_run_time=min_run_time)
            other_load = probe.stop()
    finally:
        if net is model:
            model.train(was_training)
    stats = summarize_times(raw.times)
    if other_load is not None and other_load > 0.5:
        notes.append("other processes kept CPUs busy while timing (see other_load): "
                     "shared caches and memory bandwidth make such results slower and less repeatable")
    wall = stats
    if cpu_clock is not None:
        walls = cpu_clock.block_walls(len(raw.raw_times))
        wall = summarize_times([w / raw.number_per_run for w in walls]) if walls else None
        if wall is not None and wall.median > 1.1 * stats.median:
            notes.append("the machine was busy: wall-clock latency exceeded CPU time by more than 10% "
                         "(the CPU-time median is reported; see wall_median_s)")
    return Measurement(
        model=name or type(model).__name__, input_size=size, device=str(dev), dtype=dtype_name(dt),
        memory_format=memory_format, threads=nthreads, median_s=stats.median, mean_s=stats.mean,
        iqr_s=stats.iqr, min_s=stats.min, max_s=stats.max, quantiles_s=stats.quantiles,
        number_per_run=raw.number_per_run, num_blocks=len(raw.times), warmup_runs=warmup_runs,
        warmup_s=warmup_s, min_run_time=min_run_time, method=method, clock=clock_used,
        other_load=other_load, wait_idle_s=waited, wall_median_s=wall.median if wall else None,
        wall_iqr_s=wall.iqr if wall else None, compile=compile,
        cuda_graphs=cuda_graphs, runtime=runtime, cudnn_benchmark=cudnn_flag, times_s=list(raw.times),
        notes=notes, env=env,
    )


def pool_measurements(parts: Sequence[Measurement], context: str = "") -> Measurement:
    """One :class:`Measurement` from the timed blocks of several (the same model, input and settings);
    ``context`` says in its note how they were taken (e.g. " alternating with the profiled forwards")."""
    if len(parts) == 1:
        return parts[0]
    blocks = [t for m in parts for t in m.times_s]
    st = summarize_times(blocks)
    return dataclasses.replace(
        parts[0], median_s=st.median, mean_s=st.mean, iqr_s=st.iqr, min_s=st.min, max_s=st.max,
        quantiles_s=st.quantiles, num_blocks=len(blocks), times_s=blocks,
        min_run_time=sum(m.min_run_time for m in parts),
        notes=[*parts[0].notes, f"pooled from {len(parts)} measure() calls{context} "
                                f"(blocks of {', '.join(str(m.number_per_run) for m in parts)} runs)"])
