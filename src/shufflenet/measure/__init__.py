"""Speed on this machine, the paper's direct metric (its protocol: Sec. 2 and the captions of Fig. 1 / Table 8).

- :func:`measure` times a model with :class:`torch.utils.benchmark.Timer` -> :class:`Measurement`.
- :func:`capture_environment` records where a result was measured.
- :func:`measure_machine` gives this machine's fp32 compute ceiling (best of several kernels) and copy
  bandwidth (cached).
- :func:`run_bench` / :func:`run_suite`: model x batch rows and the paper's Fig. 1 / App. Table 1(b) suites.
- :func:`profile`: where the time goes, per layer and per op type (the paper's Fig. 2 buckets).
- :func:`ridge_point` / :func:`roofline_bound`: the roofline verdict against the machine's ceilings.

Every result here (:class:`Measurement`, :class:`BenchResult`, :class:`ProfileReport`, :class:`SuiteResult`,
:class:`MachineCeilings`) follows the result contract of :mod:`shufflenet.result`, so
:func:`shufflenet.render.render` shows any of them as a table, CSV, JSON, Markdown or HTML.
"""

import logging

# torch.utils.benchmark imports torch.utils.cpp_extension, which logs "No CUDA runtime is found" on CUDA
# builds of torch without a driver: noise on every command (and a second line under one-line errors).
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)

from shufflenet.measure.bench import BenchOptions, BenchResult, BenchRow, ModelSpec, registry_spec, run_bench  # noqa: E402
from shufflenet.measure.env import capture_environment  # noqa: E402
from shufflenet.measure.machine import MachineCeilings, load_machine, measure_machine  # noqa: E402
from shufflenet.measure.profile import ProfileReport, profile  # noqa: E402
from shufflenet.measure.roofline import ridge_point, roofline_bound  # noqa: E402
from shufflenet.measure.suites import SUITES, SuiteResult, run_suite  # noqa: E402
from shufflenet.measure.timing import Measurement, TimeStats, is_noisy, measure, summarize_times  # noqa: E402

__all__ = [
    "SUITES",
    "BenchOptions",
    "BenchResult",
    "BenchRow",
    "MachineCeilings",
    "Measurement",
    "ModelSpec",
    "ProfileReport",
    "SuiteResult",
    "TimeStats",
    "capture_environment",
    "is_noisy",
    "load_machine",
    "measure",
    "measure_machine",
    "profile",
    "registry_spec",
    "ridge_point",
    "roofline_bound",
    "run_bench",
    "run_suite",
    "summarize_times",
]
