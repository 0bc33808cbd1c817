"""Speed on this machine, the paper's direct metric (Sec. 2; protocol in paper.md §0).

- :func:`measure` times a model with :class:`torch.utils.benchmark.Timer` -> :class:`Measurement`.
- :func:`capture_environment` records where a result was measured.
- :func:`measure_machine` gives this machine's fp32 matmul and copy ceilings (cached).
- :func:`run_bench` / :func:`run_suite`: model x batch rows and the paper's Fig. 1 / App. Table 1(b) suites.
"""

from shufflenet.measure.bench import BenchOptions, BenchResult, BenchRow, ModelSpec, registry_spec, run_bench
from shufflenet.measure.env import capture_environment
from shufflenet.measure.machine import MachineCeilings, load_machine, measure_machine
from shufflenet.measure.suites import SUITES, SuiteResult, run_suite
from shufflenet.measure.timing import Measurement, TimeStats, is_noisy, measure, summarize_times

__all__ = [
    "SUITES",
    "BenchOptions",
    "BenchResult",
    "BenchRow",
    "MachineCeilings",
    "Measurement",
    "ModelSpec",
    "SuiteResult",
    "TimeStats",
    "capture_environment",
    "is_noisy",
    "load_machine",
    "measure",
    "measure_machine",
    "registry_spec",
    "run_bench",
    "run_suite",
    "summarize_times",
]
