"""What a report run is asked to do (:class:`ReportOptions`) and what its sections share while it runs
(:class:`ReportContext`): the progress display, the machine's ceilings (measured once, cached with their
environment by :mod:`shufflenet.measure.machine`), the timing options, and measurements one section takes
that another reuses, so the report stays within its time budget as sections are added.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shufflenet.errors import UserInputError

if TYPE_CHECKING:
    from shufflenet.measure import BenchOptions, MachineCeilings
    from shufflenet.report.section import SectionOutput

MODES = ("quick", "full")
Progress = Callable[[Iterable[Any], str, int], Iterable[Any]]


def no_progress(it: Iterable[Any], desc: str, total: int) -> Iterable[Any]:
    return it


@dataclass(frozen=True)
class ReportOptions:
    """How to run the report.

    ``mode="quick"`` is what ``make run`` runs (a few minutes on a 2-core CPU: the paper's x1 columns, short
    timing); ``"full"`` runs every section at the sizes of the committed benchmarks. ``threads=None`` is one
    thread on CPU (the paper's ARM protocol, Sec. 2). ``sections=None`` runs all registered sections.
    ``train_run`` names a training run directory for the Training section.
    """

    mode: str = "quick"
    device: str = "cpu"
    threads: int | None = None
    sections: tuple[str, ...] | None = None
    train_run: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UserInputError(f"report mode must be quick or full, got {self.mode!r}")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise UserInputError(f"threads must be a positive integer, got {self.threads!r}")

    @property
    def quick(self) -> bool:
        return self.mode == "quick"

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")

    def resolved_threads(self) -> int:
        from shufflenet.measure.options import resolve_device, resolve_threads

        return resolve_threads(self.threads, resolve_device(self.device))

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "device": self.device, "threads": self.threads,
                "sections": list(self.sections) if self.sections is not None else None,
                "train_run": self.train_run}


@dataclass
class ReportContext:
    """Shared by the sections of one run (see the module docstring)."""

    options: ReportOptions
    progress: Progress = no_progress
    log: Callable[[str], None] = lambda message: None
    outputs: dict[str, SectionOutput] = field(default_factory=dict)
    not_run: dict[str, str] = field(default_factory=dict)  # section key -> why it has no output
    titles: dict[str, str] = field(default_factory=dict)  # section key -> title, of every section run
    _shared: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def shared(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per run under ``key``; later calls (from any section) reuse the value."""
        if key not in self._shared:
            self._shared[key] = compute()
        return self._shared[key]

    def machine(self) -> MachineCeilings:
        """This device's ceilings at the report's thread count: the cache of ``shufflenet bench --machine``
        when it was measured on this machine, CPU model, thread count and torch version, else measured now
        (about 10-20 s on CPU) and cached."""
        from shufflenet.measure import measure_machine

        o = self.options
        return self.shared("machine", lambda: measure_machine(o.device, o.resolved_threads()))

    def machine_from_cache(self) -> bool:
        """Whether :meth:`machine` came from the cache (read before it is first called)."""
        from shufflenet.measure import load_machine

        o = self.options
        return self.shared("machine_cached", lambda: load_machine(o.device, o.resolved_threads()) is not None)

    def bench_options(self) -> BenchOptions:
        """The timing options of the bench-based sections (Fig. 1, Appendix Table 1(b)): the suites' own
        defaults, shortened in quick mode as ``bench --quick`` does."""
        from shufflenet.measure import BenchOptions

        o = self.options
        kwargs = {"device": o.device, "threads": o.threads}
        return BenchOptions.make_quick(**kwargs) if o.quick else BenchOptions(**kwargs)

    def train_run_dir(self) -> Path | None:
        return Path(self.options.train_run) if self.options.train_run else None
