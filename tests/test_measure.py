"""Mechanics of shufflenet.measure: statistics, warm-up, threads, options, environment, ceilings, suites.

No absolute time is asserted anywhere: timings only need to be present, positive and consistent.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import random
import socket
import time

import pytest
import torch
from torch import nn

from shufflenet.errors import ShuffleNetError, UserInputError
from shufflenet.measure import (
    BenchOptions,
    ModelSpec,
    capture_environment,
    is_noisy,
    load_machine,
    measure,
    measure_machine,
    run_bench,
    suites,
    summarize_times,
    unit_suite,
)
from shufflenet.measure import machine as machine_mod
from shufflenet.measure import timing as timing_mod
from shufflenet.measure.paper_speeds import TABLE8, app_table1b, table8_row
from shufflenet.measure.timing import Measurement
from shufflenet.render import render
from shufflenet.result import Result, json_safe

FAST = dict(min_run_time=0.01, warmup=3)
SIZE = (1, 3, 8, 8)


class Tiny(nn.Module):
    """A small conv net that counts its forward calls and the thread count each call saw."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.calls = 0
        self.threads_seen: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.threads_seen.append(torch.get_num_threads())
        return torch.relu(self.bn(self.conv(x)))


# ----------------------------------------------------------------------------------------- statistics
def test_summarize_known_times() -> None:
    s = summarize_times([9, 1, 5, 3, 7, 2, 8, 4, 6])  # order must not matter
    assert (s.n, s.median, s.p25, s.p75, s.iqr, s.min, s.max) == (9, 5, 3, 7, 4, 1, 9)
    assert s.mean == 5 and s.relative_iqr == pytest.approx(0.8)
    assert s.quantiles["p10"] == pytest.approx(1.8)  # 1 + 0.8 * (2 - 1), linear interpolation


def test_summarize_matches_torch_quantile() -> None:
    rng = random.Random(0)
    times = [rng.uniform(0.001, 0.002) for _ in range(37)]
    s = summarize_times(times)
    t = torch.tensor(times, dtype=torch.float64)
    for q, key in ((0.25, "p25"), (0.5, "p50"), (0.75, "p75"), (0.9, "p90")):
        assert s.quantiles[key] == pytest.approx(torch.quantile(t, q).item(), rel=1e-12)
    assert s.iqr == pytest.approx(s.p75 - s.p25)


def test_summarize_single_and_empty() -> None:
    s = summarize_times([0.5])
    assert s.median == s.p25 == s.p75 == 0.5 and s.iqr == 0
    with pytest.raises(ValueError):
        summarize_times([])


def test_noisy_flag_threshold() -> None:
    assert not is_noisy(10.0, 1.0)  # exactly 10% is not above 10%
    assert is_noisy(10.0, 1.0001)
    assert not is_noisy(10.0, 0.2)
    assert is_noisy(0.0, 0.0)
    assert is_noisy(10.0, 0.6, threshold=0.05)


def _measurement(median: float, iqr: float, batch: int = 4) -> Measurement:
    return Measurement(model="m", input_size=(batch, 3, 8, 8), device="cpu", dtype="fp32",
                       memory_format="contiguous",
                       threads=1, median_s=median, mean_s=median, iqr_s=iqr, min_s=median, max_s=median,
                       quantiles_s={}, number_per_run=2, num_blocks=5, warmup_runs=3, warmup_s=0.1,
                       min_run_time=0.1, method="blocked")


def test_measurement_derived_fields() -> None:
    m = _measurement(0.02, 0.001)
    assert m.images_per_s == pytest.approx(200) and m.batches_per_s == pytest.approx(50)
    assert m.total_runs == 10 and not m.noisy and m.relative_iqr == pytest.approx(0.05)
    assert _measurement(0.02, 0.0021).noisy
    d = m.to_dict()
    assert d["noisy"] is False and d["batch"] == 4 and d["input_size"] == [4, 3, 8, 8]


# ----------------------------------------------------------------------------------------- measure()
def test_measure_fields_present_and_positive() -> None:
    m = measure(Tiny(), SIZE, name="tiny", **FAST)
    assert m.model == "tiny" and m.input_size == SIZE and m.device == "cpu" and m.dtype == "fp32"
    assert m.warmup_runs == 3 and m.warmup_s > 0
    assert m.num_blocks >= 1 and m.number_per_run >= 1 and m.total_runs == m.num_blocks * m.number_per_run
    for v in (m.median_s, m.mean_s, m.min_s, m.max_s, m.images_per_s, m.batches_per_s):
        assert v > 0 and math.isfinite(v)
    assert m.iqr_s >= 0 and m.min_s <= m.median_s <= m.max_s
    assert m.images_per_s == pytest.approx(m.batch / m.median_s)
    assert len(m.times_s) == m.num_blocks
    assert m.noisy == (m.iqr_s > 0.1 * m.median_s)
    d = json.loads(json.dumps(m.to_dict()))
    for key in ("median_s", "iqr_s", "quantiles_s", "num_blocks", "total_runs", "warmup_runs", "images_per_s",
                "batches_per_s", "noisy", "env", "clock", "threads"):
        assert key in d


def test_warmup_runs_before_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    model = Tiny()
    seen: dict[str, int] = {}
    real = timing_mod._Timer

    class SpyTimer(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs) -> None:
            seen["calls_before_timing"] = model.calls
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(timing_mod, "_Timer", SpyTimer)
    m = measure(model, SIZE, min_run_time=0.01, warmup=5)
    assert m.warmup_runs == 5 and seen["calls_before_timing"] == 5
    assert model.calls >= 5 + m.total_runs  # plus Timer's own block-size estimation


def test_threads_honoured_and_restored() -> None:
    before = torch.get_num_threads()
    model = Tiny()
    m = measure(model, SIZE, threads=1, **FAST)
    assert m.threads == 1 and set(model.threads_seen) == {1} and m.env["threads"] == 1
    assert torch.get_num_threads() == before
    if (os.cpu_count() or 1) >= 2:
        model = Tiny()
        m = measure(model, SIZE, threads=2, **FAST)
        assert set(model.threads_seen) == {2} and m.clock == "wall"
        assert torch.get_num_threads() == before


def test_default_threads_is_one_on_cpu_with_cpu_clock() -> None:
    m = measure(Tiny(), SIZE, **FAST)
    assert m.threads == 1 and m.clock == "thread_cpu"
    assert m.wall_median_s is not None and m.wall_median_s > 0
    assert any("threads defaulted to 1" in n for n in m.notes)
    assert measure(Tiny(), SIZE, clock="wall", **FAST).clock == "wall"


def test_model_left_as_it_was() -> None:
    model = Tiny().train()
    measure(model, SIZE, **FAST)
    assert model.training
    measure(model, SIZE, dtype="bf16", **FAST)  # converted on a copy
    assert model.conv.weight.dtype == torch.float32


@pytest.mark.parametrize("dtype, name", [("bf16", "bf16"), (torch.bfloat16, "bf16"), ("fp16", "fp16")])
def test_low_precision(dtype, name) -> None:
    m = measure(Tiny(), SIZE, dtype=dtype, **FAST)
    assert m.dtype == name and m.env["dtype"] == name and m.median_s > 0
    if name == "fp16":
        assert any("fp16 on CPU" in n for n in m.notes)


def _layout_spy(model: Tiny) -> list[tuple[bool, bool]]:
    """Per forward call: whether its input and the conv weight were channels-last. The hook (and so the
    list) travels with the converted copy that measure() times."""
    seen: list[tuple[bool, bool]] = []

    def spy(module: Tiny, args: tuple[torch.Tensor, ...]) -> None:
        cl = torch.channels_last
        seen.append((args[0].is_contiguous(memory_format=cl), module.conv.weight.is_contiguous(memory_format=cl)))

    model.register_forward_pre_hook(spy)
    return seen


def test_channels_last() -> None:
    model = Tiny()
    seen = _layout_spy(model)
    m = measure(model, SIZE, memory_format="channels_last", **FAST)
    assert m.memory_format == "channels_last" and m.env["memory_format"] == "channels_last"
    # Every pass, warm-up and timed, ran an NHWC input through NHWC weights ...
    assert len(seen) >= m.warmup_runs + m.total_runs
    assert all(x_cl and w_cl for x_cl, w_cl in seen)
    # ... on a copy: the caller's model keeps its layout.
    assert not model.conv.weight.is_contiguous(memory_format=torch.channels_last)
    seen.clear()
    measure(model, SIZE, **FAST)  # the default layout really is a different one
    assert seen and not any(x_cl or w_cl for x_cl, w_cl in seen)


def test_block_of_one_pass_for_ms_scale_models() -> None:
    class Slow(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            t = time.thread_time() + 0.0015
            while time.thread_time() < t:  # burn CPU: both clocks see it
                pass
            return x

    m = measure(Slow(), SIZE, min_run_time=0.02, warmup=1)
    assert m.number_per_run == 1 and m.num_blocks >= 2


def _adaptive_stops(blocks: list[float], min_run_time: float, max_run_time: float) -> bool:
    """Timer.adaptive_autorange's rule after a block: enough time and (more than 3 blocks with IQR/median
    below 10%), or past ``max_run_time``."""
    total = sum(blocks)
    st = summarize_times(blocks)
    confident = len(blocks) > 3 and st.iqr / st.median < timing_mod.NOISY_THRESHOLD
    return (total >= min_run_time and confident) or total > max_run_time


def test_adaptive_method() -> None:
    """Real timing: blocks until the spread is below 10% (or time runs out), and not one block longer."""
    lo, hi = 0.01, 0.2
    m = measure(Tiny(), SIZE, method="adaptive", min_run_time=lo, max_run_time=hi, warmup=1)
    assert m.method == "adaptive" and m.num_blocks == len(m.times_s) >= 1
    assert m.number_per_run > 1  # a pass of microseconds is timed in blocks of many passes
    assert m.median_s == summarize_times(m.times_s).median and m.iqr_s == summarize_times(m.times_s).iqr
    blocks = [t * m.number_per_run for t in m.times_s]  # the block times the stop rule summed
    assert _adaptive_stops(blocks, lo, hi)
    assert not _adaptive_stops(blocks[:-1], lo, hi) if len(blocks) > 1 else True
    assert not m.noisy or sum(blocks) > hi  # it stops early only once the spread is below the noisy threshold


@pytest.mark.parametrize("script, blocks, median", [
    # Spread 40% after 4 blocks, 0% after 5: it stops at 5.
    ([5e-3, 1e-3, 9e-3, 5e-3, 5e-3, 5e-3], 5, 5e-3),
    # Never below 10% spread: it stops at the block that passes max_run_time (50 ms: the 11th, at 51 ms).
    ([1e-3, 9e-3] * 20, 11, 1e-3),
])
def test_adaptive_stop_rule(monkeypatch: pytest.MonkeyPatch, script: list[float], blocks: int,
                            median: float) -> None:
    """Scripted block times: the adaptive method keeps timing exactly as long as its stop rule says."""
    times = iter([2e-3, *script])  # the first call sizes the block: >= 1 ms per pass gives blocks of 1 pass
    calls: list[int] = []

    def timeit(self, number: int) -> float:
        calls.append(number)
        return next(times)

    monkeypatch.setattr(timing_mod._Timer, "_timeit", timeit)
    m = measure(Tiny(), SIZE, method="adaptive", min_run_time=0.01, max_run_time=0.05, warmup=1)
    assert m.number_per_run == 1 and calls[1:] == [1] * blocks
    assert m.num_blocks == blocks and m.times_s == pytest.approx(script[:blocks])
    assert m.median_s == pytest.approx(median) == summarize_times(m.times_s).median


def test_compile_failure_is_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(fn, **kwargs):
        def run(*args):
            raise RuntimeError("inductor: no C++ compiler found")
        return run

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.raises(ShuffleNetError, match="torch.compile failed: inductor"):
        measure(Tiny(), SIZE, compile=True, **FAST)


def test_wrong_input_is_user_error() -> None:
    with pytest.raises(UserInputError, match="cannot run on input"):
        measure(Tiny(), (1, 5, 8, 8), **FAST)


@pytest.mark.parametrize("kwargs, match", [
    ({"device": "tpu"}, "unknown device"),
    ({"device": "cuda:x"}, "unknown device"),
    ({"threads": 0}, "threads must be >= 1"),
    ({"threads": (os.cpu_count() or 1) + 1}, "logical CPU"),
    ({"dtype": "fp8"}, "unknown dtype"),
    ({"dtype": torch.int8}, "unsupported dtype"),
    ({"memory_format": "nhwc"}, "unknown memory format"),
    ({"cuda_graphs": True}, "needs --device cuda"),
    ({"clock": "sundial"}, "unknown clock"),
    ({"min_run_time": 0}, "min_run_time"),
    ({"warmup": -1}, "warmup"),
])
def test_bad_options(kwargs, match) -> None:
    with pytest.raises(UserInputError, match=match):
        measure(Tiny(), SIZE, **{**FAST, **kwargs})


@pytest.mark.parametrize("size", [(0, 3, 8, 8), (3, 8, 8), (1, 3, 8, -1)])
def test_bad_input_size(size) -> None:
    with pytest.raises(UserInputError):
        measure(Tiny(), size, **FAST)


def test_thread_cpu_clock_needs_one_cpu_thread() -> None:
    if (os.cpu_count() or 1) < 2:
        pytest.skip("needs 2 CPUs")
    with pytest.raises(UserInputError, match="thread_cpu"):
        measure(Tiny(), SIZE, threads=2, clock="thread_cpu", **FAST)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_without_cuda_is_user_error() -> None:
    with pytest.raises(UserInputError, match="no CUDA device"):
        measure(Tiny(), SIZE, device="cuda", **FAST)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("graphs", [False, True])
def test_cuda_protocol(graphs: bool) -> None:
    prior = torch.backends.cudnn.benchmark
    m = measure(Tiny(), (8, 3, 32, 32), device="cuda", cuda_graphs=graphs, **FAST)
    assert m.device.startswith("cuda") and m.cudnn_benchmark is True and m.cuda_graphs is graphs
    assert m.clock == "wall" and m.env["gpu_name"] and m.median_s > 0
    assert torch.backends.cudnn.benchmark == prior


# ----------------------------------------------------------------------------------------- environment
def test_environment_fields() -> None:
    env = capture_environment(threads=1, batch=4, memory_format="channels_last", dtype=torch.bfloat16)
    for key in ("cpu_model", "cpu_logical_cores", "cpu_physical_cores", "threads", "torch", "torchvision",
                "python", "dtype", "batch", "memory_format", "device", "gpu_name"):
        assert key in env
    assert env["cpu_logical_cores"] >= env["cpu_physical_cores"] >= 1
    got = (env["threads"], env["batch"], env["dtype"], env["memory_format"])
    assert got == (1, 4, "bf16", "channels_last")
    assert env["torch"] == torch.__version__ and isinstance(env["cpu_model"], str) and env["cpu_model"]
    host = socket.gethostname()
    if len(host) > 3:
        assert host not in json.dumps(env)  # results are committed: no hostname


# ----------------------------------------------------------------------------------------- machine
@pytest.fixture
def small_machine(monkeypatch: pytest.MonkeyPatch, tmp_path):
    monkeypatch.setenv("SHUFFLENET_CACHE", str(tmp_path))
    monkeypatch.setattr(machine_mod, "MATMUL_N", {"cpu": 128, "cuda": 1024})
    monkeypatch.setattr(machine_mod, "CONV_SHAPES", {"cpu": ((1, 32, 8, 1), (1, 16, 8, 3)),
                                                     "cuda": ((1, 64, 16, 1), (1, 32, 16, 3))})
    monkeypatch.setattr(machine_mod, "COPY_ELEMENTS", {"cpu": 1 << 18, "cuda": 1 << 22})
    monkeypatch.setattr(machine_mod, "KERNEL_MIN_RUN_TIME", 0.01)
    return tmp_path


def _fake_kernel(name: str, madds: int, precision: str = "fp32", fail: bool = False) -> machine_mod.ComputeKernel:
    """The same small matmul under every name: only the multiply-adds it claims differ."""
    def setup(dev: torch.device, threads: int):
        if fail:
            raise machine_mod.KernelUnavailable("not installed")
        a = torch.randn(32, 32)
        return (lambda: a @ a), madds, precision

    return machine_mod.ComputeKernel(name, "fake", setup, devices=("cpu",))


def test_compute_ceiling_is_the_best_kernel(small_machine) -> None:
    kernels = [_fake_kernel("slow", 10**3), _fake_kernel("fast", 10**6), _fake_kernel("missing", 10**9, fail=True),
               _fake_kernel("bf16", 10**9, precision="bf16")]
    c = measure_machine("cpu", 1, min_run_time=0.02, kernels=kernels, save=False)
    rates = {k.name: k for k in c.kernels}
    assert set(rates) == {"slow", "fast", "missing", "bf16"}
    assert rates["missing"].error == "not installed" and rates["missing"].gflops == 0
    assert not rates["bf16"].candidate and rates["bf16"].gflops > rates["fast"].gflops  # faster, but not fp32
    assert rates["fast"].gflops > 100 * rates["slow"].gflops
    assert c.compute_kernel == "fake: fast" and c.matmul_gflops == rates["fast"].gflops
    assert c.matmul_gmadds == pytest.approx(rates["fast"].gflops / 2)
    assert c.compute_fraction(rates["fast"].gflops / 4) == pytest.approx(0.5)
    from shufflenet.measure.roofline import ridge_point

    assert ridge_point(c) == pytest.approx(rates["fast"].gflops / 2 / c.copy_gb_per_s)
    assert machine_mod.best_kernel(c.kernels) is rates["fast"]
    assert any("fake: fast" in str(r["note"]) for r in c.rows())
    with pytest.raises(RuntimeError, match="no compute kernel"):
        measure_machine("cpu", 1, min_run_time=0.02, kernels=kernels[2:], save=False)


def test_kernel_rate_counts_multiply_adds_twice() -> None:
    assert machine_mod.kernel_gflops(10**9, 1.0) == 2.0
    assert machine_mod.kernel_gflops(5 * 10**8, 0.5) == 2.0 and machine_mod.kernel_gflops(1, 0.0) == 0.0


def test_default_kernels_multiply_adds_match_the_cost_engine(small_machine) -> None:
    from shufflenet.cost.engine import CostCounter

    dev = torch.device("cpu")
    seen = 0
    for k in machine_mod.default_kernels():
        if "cpu" not in k.devices or k.library == "OpenVINO":
            continue
        fn, madds, precision = k.setup(dev, 1)
        counter = CostCounter()
        with torch.inference_mode(), counter:
            fn()
        assert sum(r[5] for r in counter.rows) == madds, k.name
        assert precision == "fp32"
        seen += 1
    assert seen == 3  # torch.mm and the two oneDNN convolutions
    assert machine_mod.MATMUL_N["cpu"] == 128


def test_openvino_kernel_when_installed(small_machine) -> None:
    import importlib.util
    import sys

    if importlib.util.find_spec("openvino") is None:  # find, not import: it must not load here
        pytest.skip("openvino is not installed")
    loaded_before = "openvino" in sys.modules
    ov = [k for k in machine_mod.default_kernels() if k.library == "OpenVINO"]
    assert all(k.isolated for k in ov)
    rates = machine_mod.measure_kernels(ov, torch.device("cpu"), 1, 0.01, thread_cpu=True)
    # measured in a spawned process: OpenVINO's threads, which crash a later fork, never enter this one
    assert loaded_before or "openvino" not in sys.modules
    f32 = rates[0]
    assert not f32.error and f32.precision == "fp32" and f32.candidate and f32.madds == 128**3
    for r in rates[1:]:  # its default hint, measured only where that is not fp32 (bf16 on AVX512_BF16/AMX)
        assert r.error or (r.precision != "fp32" and not r.candidate)


ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
cpu MHz\t\t: 2596.124
flags\t\t: fpu sse2 avx fma avx2 avx512f avx512dq avx512_bf16

processor\t: 1
cpu MHz\t\t: 2500.000
"""
XEON = "vendor_id : GenuineIntel\ncpu family : 6\ncpu MHz : 2000.0\nflags : sse2 avx fma avx2 avx512f\n"
HASWELL = "vendor_id : GenuineIntel\ncpu family : 6\ncpu MHz : 2500.0\nflags : sse2 avx fma avx2\n"


def test_theoretical_peak_from_cpuinfo() -> None:
    zen4 = machine_mod.theoretical_peak(ZEN4, cores=1, arch="x86_64")
    assert (zen4.isa, zen4.fma_units, zen4.lanes) == ("AVX-512", 2, 8)  # AVX-512 on two 256-bit pipes
    assert zen4.clock_mhz == 2596.124 and "cpu MHz" in zen4.clock_source and "Zen 4" in zen4.assumption
    assert zen4.gflops_per_core == pytest.approx(2.596124 * 2 * 8 * 2)
    assert machine_mod.theoretical_peak(ZEN4, cores=4, arch="x86_64").gflops == pytest.approx(4 * 83.076, rel=1e-4)
    xeon = machine_mod.theoretical_peak(XEON, cores=2, max_mhz=3500.0, arch="x86_64")
    assert (xeon.isa, xeon.fma_units, xeon.lanes, xeon.clock_mhz) == ("AVX-512", 2, 16, 3500.0)
    assert xeon.gflops == pytest.approx(2 * 3.5 * 2 * 16 * 2) and "cpufreq" in xeon.clock_source
    hsw = machine_mod.theoretical_peak(HASWELL, arch="x86_64")
    assert hsw.isa == "AVX2+FMA" and hsw.gflops == pytest.approx(2.5 * 2 * 8 * 2)
    sse = machine_mod.theoretical_peak("cpu MHz : 1000\nflags : sse sse2\n", arch="x86_64")
    assert (sse.isa, sse.fma_units, sse.lanes, sse.gflops) == ("SSE2", 1, 4, pytest.approx(8.0))
    neon = machine_mod.theoretical_peak("Features : fp asimd\n", max_mhz=2000.0, arch="aarch64")
    assert neon.isa == "NEON" and neon.gflops == pytest.approx(2 * 2 * 4 * 2)
    assert machine_mod.theoretical_peak("model name : x\n", arch="x86_64") is None  # no flags
    assert machine_mod.theoretical_peak("flags : avx2 fma\n", arch="x86_64") is None  # no clock


def test_ceilings_report_the_peak_next_to_the_measured_best(small_machine) -> None:
    c = measure_machine("cpu", 1, min_run_time=0.02, save=False, kernels=[_fake_kernel("fast", 10**6)])
    c.peak = machine_mod.theoretical_peak(ZEN4, cores=1, arch="x86_64")
    assert c.peak_fraction == pytest.approx(c.matmul_gflops / c.peak.gflops)
    row = next(r for r in c.rows() if r["ceiling"].startswith("theoretical"))
    assert row["value"] == round(c.peak.gflops, 2) and "assumed" in row["note"]
    back = machine_mod.MachineCeilings.from_dict(json.loads(json.dumps(c.to_dict())))
    assert back.peak == c.peak and back.kernels == c.kernels and back.compute_kernel == "fake: fast"


def test_machine_ceilings_cached(small_machine) -> None:
    assert load_machine("cpu", 1) is None
    c = measure_machine("cpu", 1, min_run_time=0.02)
    assert c.matmul_gflops > 0 and c.matmul_gmadds == pytest.approx(c.matmul_gflops / 2)
    candidates = [k.gflops for k in c.kernels if k.candidate and not k.error]
    assert len(candidates) >= 3 and c.matmul_gflops == max(candidates)  # torch.mm, two oneDNN convs (+ OpenVINO)
    assert {"torch copy_", "numpy copyto"} == set(c.copy_kernels)
    assert c.copy_gb_per_s > 0 and c.copy_bytes == 2 * 4 * (1 << 18) and c.threads == 1
    path = small_machine / "machine-cpu.json"
    assert path.exists() and "1" in json.loads(path.read_text())["entries"]
    again = measure_machine("cpu", 1)  # served from the cache
    assert again.matmul_gflops == c.matmul_gflops and load_machine("cpu", 1).copy_gb_per_s == c.copy_gb_per_s
    assert c.compute_fraction(c.matmul_gmadds) == pytest.approx(1.0)
    assert c.bandwidth_fraction(c.copy_gb_per_s / 2) == pytest.approx(0.5)


def test_machine_cache_ignores_other_machine(small_machine) -> None:
    measure_machine("cpu", 1, min_run_time=0.02)
    path = small_machine / "machine-cpu.json"
    data = json.loads(path.read_text())
    data["entries"]["1"]["env"]["cpu_model"] = "some other CPU"
    path.write_text(json.dumps(data))
    assert load_machine("cpu", 1) is None


def test_machine_cache_of_one_library_is_discarded(small_machine) -> None:
    measure_machine("cpu", 1, min_run_time=0.02)
    path = small_machine / "machine-cpu.json"
    data = json.loads(path.read_text())
    old = data["entries"]["1"]
    for k in ("cache_version", "kernels", "compute_kernel", "peak", "libraries", "copy_kernel", "copy_kernels"):
        old.pop(k)  # the format before the ceiling was the best of several kernels: torch.mm only
    path.write_text(json.dumps(data))
    assert load_machine("cpu", 1) is None
    measure_machine("cpu", 1, min_run_time=0.02)
    data["entries"]["1"] = json.loads(path.read_text())["entries"]["1"]
    data["entries"]["1"]["libraries"] = {"openvino": "0.0-not-this-one"}
    path.write_text(json.dumps(data))
    assert load_machine("cpu", 1) is None  # installing or upgrading OpenVINO can raise the ceiling


# ----------------------------------------------------------------------------------------- bench rows
class _Bar(list):
    def __init__(self, items) -> None:
        super().__init__(items)
        self.postfix: list[str] = []

    def set_postfix_str(self, text: str) -> None:
        self.postfix.append(text)


def test_run_bench_rows_and_progress() -> None:
    bars: list[_Bar] = []

    def progress(items, desc, total):
        bars.append(_Bar(items))
        return bars[-1]

    spec = ModelSpec(name="tiny", build=Tiny, image_size=(3, 8, 8), family="test")
    opts = BenchOptions(min_run_time=0.01, warmup=1)
    result = run_bench([spec], [1, 2], opts, progress=progress)
    assert [r.batch for r in result.rows] == [1, 2]
    one, two = result.rows
    assert one.flops == 3 * 4 * 9 * 64 and two.flops == 2 * one.flops  # multiply-adds of the 3x3 conv
    assert two.mac > one.mac > 0 and one.mac_bytes == 4 * one.mac
    assert one.gmadds_per_s == pytest.approx(one.flops / one.latency_s / 1e9)
    assert bars and bars[0].postfix == ["tiny", "tiny batch 1", "tiny batch 2"]
    d = json.loads(json.dumps(result.to_dict(), default=str))
    assert set(d) == {"conventions", "options", "env", "machine", "rows"}
    for key in ("mflops", "mmac", "latency_ms", "iqr_ms", "images_per_s", "batches_per_s", "gmadds_per_s",
                "noisy", "measurement"):
        assert key in d["rows"][0]
    assert any("multiply-adds" in c for c in d["conventions"])


def test_bench_rows_flag_incomplete_cost_and_non_fp32_fraction() -> None:
    class WithFft(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.fft.fft(x).real

    opts = BenchOptions(min_run_time=0.01, warmup=1)
    spec = ModelSpec(name="fft", build=WithFft, image_size=(3, 8, 8), family="test")
    result = run_bench([spec], [1], opts)
    assert any("fft: FLOPs/MAC leave out ops without a cost rule (_fft_r2c)" in n for n in result.footer())
    fake = machine_mod.MachineCeilings(device="cpu", threads=1, matmul_n=1, matmul_gflops=2.0, matmul_gmadds=1.0,
                                       copy_bytes=1, copy_gb_per_s=1.0, matmul_relative_iqr=0.0,
                                       copy_relative_iqr=0.0, measured_at="now")
    spec = ModelSpec(name="tiny", build=Tiny, image_size=(3, 8, 8), family="test")
    row = run_bench([spec], [1], opts, machine=fake).rows[0]
    assert row.row()["compute_pct"] == pytest.approx(100 * row.gmadds_per_s, abs=0.1)
    row.measurement.dtype = "bf16"  # the ceilings are fp32 rates: no fraction of them for bf16
    assert row.row()["compute_pct"] is None and row.row()["bandwidth_pct"] is not None


def test_bench_options_validate_early() -> None:
    with pytest.raises(UserInputError):
        BenchOptions(device="gpu")
    with pytest.raises(UserInputError):
        BenchOptions(dtype="int4")
    with pytest.raises(UserInputError):
        BenchOptions(cuda_graphs=True)
    assert BenchOptions.make_quick().min_run_time < BenchOptions().min_run_time


# ----------------------------------------------------------------------------------------- suites, paper data
def test_table8_data() -> None:
    assert len(TABLE8) == 39
    r = table8_row("ShuffleNet v2 1x")
    assert (r.mflops, r.top1_err, r.gpu, r.arm) == (146, 30.6, 341, 24.4)
    assert table8_row("0.75 MobileNet v2 (our impl.)").input == 192
    assert table8_row("CondenseNet (G=C=8)").gpu is None
    assert app_table1b(56, "ShuffleNet v2", 64) == (216, 34.8)
    assert app_table1b(28, "MobileNet v2", 256) == (189, 13.3)


def test_fig1_entries_cover_the_paper() -> None:
    from shufflenet.models import get_entry

    fams = [e.family for e in suites.FIG1_ENTRIES]
    assert fams.count("ShuffleNet v2") == 4 and fams.count("ShuffleNet v1 (g=3)") == 4
    assert fams.count("MobileNet v2") == 6 and fams.count("MobileNet v1") == 4
    assert fams.count("Xception") == 4 and fams.count("DenseNet") == 4 and fams.count("IGCV3-D") == 3
    assert fams.count("CondenseNet") == 2 and fams.count("NASNet-A") == 1
    groups_with_v2 = {table8_row(e.table8).group for e in suites.FIG1_ENTRIES if e.family == "ShuffleNet v2"}
    for e in suites.FIG1_ENTRIES:
        row = table8_row(e.table8)
        assert row.input == e.input and suites.fig1_group(e.table8) in groups_with_v2
        if not e.name.startswith("torchvision:"):
            get_entry(e.name)
    mnv2 = {e.kwargs["width_mult"]: e.input for e in suites.FIG1_ENTRIES if e.family == "MobileNet v2"}
    assert mnv2 == {0.15: 224, 0.4: 160, 0.6: 224, 0.75: 192, 1.0: 224, 1.4: 224}


@pytest.mark.parametrize("entry", suites.FIG1_ENTRIES, ids=lambda e: e.label)
def test_fig1_entries_have_table8_flops(entry) -> None:
    """Fig. 1 / Table 8 compare speed at equal FLOPs: each model we time is within 3% of its row, or of the
    tolerance its registry entry declares (CondenseNet: its paper counts ReLU and pooling too, 5%)."""
    from shufflenet.cost import count_cost
    from shufflenet.models import create_model

    with torch.device("meta"):  # shapes are all the count needs
        model = create_model(entry.name, **entry.kwargs)
    rep = count_cost(model, (1, 3, entry.input, entry.input), device="meta")
    paper = table8_row(entry.table8).mflops
    from shufflenet.models import get_entry

    tolerance = 0.03 if entry.name.startswith("torchvision:") else max(0.03, get_entry(entry.name).paper.tolerance)
    assert rep.complete and rep.flops / 1e6 == pytest.approx(paper, rel=tolerance)


def _fig1_rows() -> list[dict]:
    rows = []
    for e in suites.FIG1_ENTRIES:
        paper = table8_row(e.table8)
        rows.append({"family": e.family, "model": e.label, "input": e.input, "mflops": float(paper.mflops),
                     "paper_mflops": paper.mflops, "b1_images_per_s": 1000.0 / paper.mflops,
                     "b8_batches_per_s": paper.gpu / 10 if paper.gpu else None, "paper_gpu": paper.gpu,
                     "paper_arm": paper.arm})
    return rows


def test_fig1_series_join_only_points_of_one_input_size() -> None:
    series = suites.fig1_series(_fig1_rows(), "paper_mflops", "paper_gpu")
    assert set(series) == {("ShuffleNet v2", 224), ("ShuffleNet v1 (g=3)", 224), ("MobileNet v2", 224),
                           ("MobileNet v2", 160), ("MobileNet v2", 192), ("MobileNet v1", 224),
                           ("Xception", 224), ("DenseNet", 224), ("IGCV3-D", 224), ("NASNet-A", 224)}
    # CondenseNet has no speeds in Table 8 ("no efficient implementation"): no paper point
    assert series[("Xception", 224)] == [(40, 384), (145, 278), (305, 219), (525, 174)]
    assert series[("MobileNet v2", 224)] == [(39, 351), (141, 249), (300, 180), (585, 137)]
    assert series[("MobileNet v2", 160)] == [(43, 333)] and series[("MobileNet v2", 192)] == [(145, 235)]
    assert all(pts == sorted(pts) for pts in series.values())


def test_fig1_figure_lines_and_legend() -> None:
    pytest.importorskip("matplotlib")
    from types import SimpleNamespace

    result = SimpleNamespace(bench=SimpleNamespace(env={"cpu_model": "test CPU", "threads": 1}), rows=_fig1_rows())
    fig = suites.fig1_figure(result, [1, 8])
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 4
    for ax in visible:
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert list(lines["MobileNet v2"].get_xdata()) == sorted(lines["MobileNet v2"].get_xdata())
        assert len(lines["MobileNet v2"].get_xdata()) == 4  # the 224 px rows only
        for side in (160, 192):  # one unjoined marker each
            odd = lines[f"MobileNet v2 @{side}x{side}"]
            assert len(odd.get_xdata()) == 1 and odd.get_linestyle() == "None"
    (legend,) = fig.legends
    assert not any(ax.get_legend() for ax in fig.axes)
    box = legend.get_window_extent(renderer)
    assert not any(box.overlaps(ax.get_window_extent(renderer)) for ax in visible)


def test_match_width_is_closest_valid_width() -> None:
    side = 8  # FLOPs of all units scale with H*W alike, so a small map solves the same widths fast
    target = unit_suite.unit_flops(unit_suite.v2_unit, 64, side)
    w1 = unit_suite.match_width(unit_suite.v1_unit, target, side, unit_suite.V1_WIDTH_STEP)
    assert w1 % 12 == 0
    err = abs(unit_suite.unit_flops(unit_suite.v1_unit, w1, side) - target)
    for other in (w1 - 12, w1 + 12):
        assert abs(unit_suite.unit_flops(unit_suite.v1_unit, other, side) - target) >= err
    w2 = unit_suite.match_width(unit_suite.mnv2_unit, target, side, 1)
    err2 = abs(unit_suite.unit_flops(unit_suite.mnv2_unit, w2, side) - target)
    for other in (w2 - 1, w2 + 1):
        assert abs(unit_suite.unit_flops(unit_suite.mnv2_unit, other, side) - target) >= err2


def test_units_suite_small() -> None:
    opts = BenchOptions(min_run_time=0.01, warmup=1)
    res = unit_suite.run_units(opts, (1,), channels=(64,), sides=(28,))
    assert [r["model"] for r in res.rows] == ["ShuffleNet v2", "ShuffleNet v1", "MobileNet v2", "Xception"]
    v2, v1, mb, xc = res.rows
    assert v2["width"] == 64 and v1["width"] % 12 == 0 and v2["b1_vs_v2"] == 1.0
    assert abs(v1["dflops_pct"]) < 15 and abs(mb["dflops_pct"]) < 5 and abs(xc["dflops_pct"]) < 5
    assert xc["width"] == 60 and (xc["paper_gpu"], xc["paper_arm"]) == (254, 117.0)  # App. Table 1(b), 28x28
    assert (v2["paper_gpu"], v2["paper_arm"], v1["paper_gpu_vs_v2"]) == (407, 174.5, round(298 / 407, 2))
    assert any("matched widths" in n for n in res.notes)
    assert res.to_dict()["rows"] == res.rows and len(res.bench.rows) == 4
    # The result contract: the CSV is what `shufflenet bench --suite units --format csv` printed.
    from helpers import rows_to_csv

    out = _formats(res)
    assert out["csv"] == rows_to_csv(res.rows) and res.figures() == []
    speed = f"{v1['b1_images_per_s']:.2f}"
    md = _md_row(out["md"], "28x28 | 64 | ShuffleNet v1")
    assert speed in md and str(v1["width"]) in md and "| b1 img/s |" in out["md"]
    assert speed in out["table"] and "Appendix Table 1(b)" in out["table"] and f">{speed}</td>" in out["html"]


# ----------------------------------------------------------------------------------------- the result contract
def _formats(result) -> dict[str, str]:
    assert isinstance(result, Result)
    out = {fmt: render(result, fmt) for fmt in ("table", "csv", "json", "md", "html")}
    assert json.loads(out["json"]) == json.loads(json.dumps(json_safe(result.to_dict())))
    return out


def _md_row(md: str, first_cell: str) -> list[str]:
    line = next(x for x in md.splitlines() if x.startswith(f"| {first_cell} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_measurement_renders_in_every_format() -> None:
    m = measure(Tiny(), SIZE, name="tiny", **FAST)
    out = _formats(m)
    (row,) = list(csv.DictReader(io.StringIO(out["csv"])))
    assert float(row["median_ms"]) == m.median_s * 1e3 and int(row["blocks"]) == m.num_blocks
    assert row["input"] == "1x3x8x8" and row["noisy"] == str(m.noisy)
    median = f"{m.median_s * 1e3:.3f}"
    assert median in _md_row(out["md"], "tiny") and median in out["table"] and f">{median}</td>" in out["html"]
    assert "median (ms)" in out["table"] and any("IQR" in c for c in m.conventions())


def test_bench_result_renders_in_every_format() -> None:
    from helpers import rows_to_csv

    fake = machine_mod.MachineCeilings(device="cpu", threads=1, matmul_n=1, matmul_gflops=2.0, matmul_gmadds=1.0,
                                       copy_bytes=1, copy_gb_per_s=1.0, matmul_relative_iqr=0.0,
                                       copy_relative_iqr=0.0, measured_at="now")
    spec = ModelSpec(name="tiny", build=Tiny, image_size=(3, 8, 8), family="test")
    result = run_bench([spec], [1, 2], BenchOptions(min_run_time=0.01, warmup=1), machine=fake)
    out = _formats(result)
    assert out["csv"] == rows_to_csv(result.csv_rows())  # what `shufflenet bench --format csv` printed
    rows = list(csv.DictReader(io.StringIO(out["csv"])))
    for r, got in zip(result.rows, rows, strict=True):
        assert float(got["latency_ms"]) == round(r.measurement.median_s * 1e3, 3)
        assert float(got["compute_pct"]) == r.row()["compute_pct"] and int(got["batch"]) == r.batch
    assert json.loads(out["json"])["rows"][1]["latency_ms"] == result.rows[1].row()["latency_ms"]
    latency = f"{result.rows[0].row()['latency_ms']:.3f}"
    md = _md_row(out["md"], "tiny")
    assert md[:3] == ["tiny", "3x8x8", "1"] and latency in md and "| latency (ms) |" in out["md"]
    assert latency in result.to_table() and result.to_table() == out["table"]
    assert "GMAdd/s" in out["table"] and "multiply-adds" in out["table"] and "ceilings (1 thread(s))" in out["table"]
    assert f">{latency}</td>" in out["html"]
    assert set(json.loads(out["json"])) == {"conventions", "options", "env", "machine", "rows"}


def test_machine_ceilings_render_in_every_format(small_machine) -> None:
    from helpers import rows_to_csv

    c = measure_machine("cpu", 1, min_run_time=0.02, save=False, kernels=[_fake_kernel("fast", 10**6)])
    out = _formats(c)
    assert out["csv"] == rows_to_csv(c.rows())  # what `shufflenet bench --machine --format csv` printed
    best = f"{round(c.matmul_gflops, 2):.2f}"
    assert best in _md_row(out["md"], "fp32 compute (best kernel)") and best in out["html"]
    assert best in c.to_table() and "machine ceilings:" in c.to_table() and "ridge point" in c.to_table()
    assert machine_mod.MachineCeilings.from_dict(json.loads(out["json"])).matmul_gflops == c.matmul_gflops


@pytest.mark.parametrize("fn", ["measure", "profile", "count_cost"])
def test_a_model_name_instead_of_a_model_is_the_packages_error(fn) -> None:
    import shufflenet
    from shufflenet.errors import UserInputError

    with pytest.raises(UserInputError, match=rf"{fn}\(\): model must be a torch.nn.Module, got str 'x'") as info:
        getattr(shufflenet, fn)("x", (1, 3, 32, 32))
    assert isinstance(info.value, TypeError)
