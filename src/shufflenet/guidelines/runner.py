"""Run the G1-G4 experiments: FLOPs and MAC from the cost engine, speed from the measurement core.

Protocol (choices the paper leaves open are stated; paper.md §0):

- **Batch.** The paper does not state the micro-benchmarks' batch size (paper.md §0, caveat 1). Default:
  **1 on CPU** (its one-thread ARM setting, as in Fig. 1 / Table 8) and **8 on CUDA** (its GPU setting),
  with ``cudnn.benchmark`` on there as in the paper. ``batch`` overrides both.
- **Threads.** ``None`` keeps the measurement core's default: 1 thread on CPU (the paper's ARM setting).
- **Channel set.** The paper's ARM channels on CPU and its GPU channels on CUDA by default (each set was
  measured on that kind of platform); ``channels="gpu"|"arm"`` chooses either.
- **Multipliers.** Full runs use x1, x2, x4 (the paper's three columns); quick runs x1 only.
- **Timing.** Rows of one column (one table, one multiplier) are timed in interleaved **rounds**: each
  round times every row once with :func:`shufflenet.measure.timing.measure` (median of
  ``torch.utils.benchmark`` blocks of at least ``min_run_time`` seconds, after warm-up), starting at a
  different row each round. A row's speed is the median over rounds (images/s = batch / latency); its
  spread is the interquartile range over rounds. The verdicts compare rows round by round
  (:mod:`shufflenet.guidelines.verdicts`). Quick: 15 rounds of >= 0.1 s; full: 21 rounds of >= 0.15 s.
  Many short rounds beat few long ones on a shared machine: pairing is tighter in time, and the standard
  error of the median ratio falls with the square root of the number of rounds.
- **Cost.** FLOPs (multiply-adds) and MAC (elements read + written, paper Sec. 2) of every row are counted
  per image (batch 1) by :func:`shufflenet.cost.count_cost` in ``paper`` mode.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from shufflenet.cost import count_cost
from shufflenet.errors import UserInputError
from shufflenet.guidelines.experiments import (
    GUIDELINES,
    RowSpec,
    check_channels,
    check_guideline,
    check_multipliers,
    column_rows,
    describe_choices,
)
from shufflenet.guidelines.paper_tables import ARM_UNIT, GPU_UNIT, MULTIPLIERS, TABLES, PaperTable
from shufflenet.guidelines.verdicts import Verdict, compare, judge, median, relative_iqr
from shufflenet.measure.options import resolve_device, resolve_threads

QUICK_ROUNDS, QUICK_MIN_RUN_TIME = 15, 0.1
FULL_ROUNDS, FULL_MIN_RUN_TIME = 21, 0.15
FIRST_WARMUP, FIRST_WARMUP_MAX_S = 10, 1.0  # before a row's first round (kernels picked, caches warm)
WARMUP, WARMUP_MAX_S = 1, 0.2  # before later rounds (caches refilled after the other rows)
NOISY = 0.10

CONVENTIONS = [
    "FLOPs = multiply-adds of conv layers per image (paper convention, V2 footnote 1)",
    "MAC = memory access cost per image at batch 1: elements read + written per op, weights included "
    "(paper Sec. 2)",
    "our speed = images/s (batch / median latency), median over interleaved rounds; spread = IQR over "
    "rounds / median; rel = speed relative to the column's first row (median of per-round ratios)",
    f"paper GPU speeds in {GPU_UNIT} (GTX 1080Ti), paper ARM speeds in {ARM_UNIT} (Snapdragon 810, 1 thread)",
]

Progress = Callable[[Iterable[Any], str, int], Iterable[Any]]
Timer = Callable[..., Any]


@dataclass(frozen=True)
class RunOptions:
    """What to run and how to time it; ``None`` fields take the defaults of the module docstring."""

    device: str = "cpu"
    batch: int | None = None
    threads: int | None = None
    channels: str | None = None
    quick: bool = False
    rounds: int | None = None
    min_run_time: float | None = None
    multipliers: tuple[int, ...] | None = None
    cudnn_benchmark: bool = True

    def resolved(self) -> RunOptions:
        """Validated, with every default filled in (raises :class:`UserInputError` for bad values)."""
        dev = resolve_device(self.device)
        cuda = dev.type == "cuda"
        if self.threads is not None:
            resolve_threads(self.threads, dev)  # a bad value fails here, before any work
        batch = self.batch if self.batch is not None else (8 if cuda else 1)
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise UserInputError(f"batch must be a positive integer, got {batch!r}")
        channels = check_channels(self.channels if self.channels is not None else ("gpu" if cuda else "arm"))
        rounds = self.rounds if self.rounds is not None else (QUICK_ROUNDS if self.quick else FULL_ROUNDS)
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
            raise UserInputError(f"rounds must be a positive integer, got {rounds!r}")
        mrt = self.min_run_time if self.min_run_time is not None else (
            QUICK_MIN_RUN_TIME if self.quick else FULL_MIN_RUN_TIME)
        if not mrt > 0:
            raise UserInputError(f"min_run_time must be > 0 seconds, got {mrt}")
        mults = check_multipliers(self.multipliers if self.multipliers is not None
                                  else ((1,) if self.quick else MULTIPLIERS))
        return RunOptions(device=str(dev), batch=batch, threads=self.threads, channels=channels,
                          quick=self.quick, rounds=rounds, min_run_time=float(mrt), multipliers=mults,
                          cudnn_benchmark=self.cudnn_benchmark)

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "batch": self.batch, "threads": self.threads, "channels": self.channels,
                "quick": self.quick, "rounds": self.rounds, "min_run_time": self.min_run_time,
                "multipliers": list(self.multipliers or ()), "cudnn_benchmark": self.cudnn_benchmark}


@dataclass
class RowResult:
    """One row: its configuration, cost and per-round speeds (images/s)."""

    spec: RowSpec
    flops: int
    mac: int
    batch: int
    speeds: list[float] = field(default_factory=list)
    within: list[float] = field(default_factory=list)  # each round's relative IQR inside the measurement
    relative: float = float("nan")

    @property
    def images_per_s(self) -> float:
        return median(self.speeds) if self.speeds else float("nan")

    @property
    def batches_per_s(self) -> float:
        return self.images_per_s / self.batch

    @property
    def spread(self) -> float:
        """Interquartile range of the per-round speeds over their median."""
        return relative_iqr(self.speeds)

    @property
    def within_spread(self) -> float:
        return median(self.within) if self.within else 0.0

    @property
    def noisy(self) -> bool:
        return self.spread > NOISY or self.within_spread > NOISY

    def to_dict(self) -> dict[str, Any]:
        d = self.spec.to_dict()
        d.update(flops=self.flops, mac=self.mac, batch=self.batch, images_per_s=self.images_per_s,
                 batches_per_s=self.batches_per_s, spread=self.spread, within_spread=self.within_spread,
                 relative=self.relative, noisy=self.noisy, rounds=len(self.speeds), speeds=list(self.speeds))
        return d


@dataclass
class TableResult:
    """One guideline table: its rows (all columns run) and the verdict."""

    guideline: str
    table: PaperTable
    channels: str
    rows: list[RowResult]
    verdict: Verdict | None = None

    @property
    def multipliers(self) -> list[int]:
        return sorted({r.spec.multiplier for r in self.rows})

    def column(self, multiplier: int) -> list[RowResult]:
        return [r for r in self.rows if r.spec.multiplier == multiplier]

    def display_rows(self) -> list[dict[str, Any]]:
        """Flat rows for the text table and CSV: ours beside the paper's, relative to the first row."""
        out = []
        for m in self.multipliers:
            col = self.column(m)
            first = col[0].spec
            for r in col:
                s = r.spec
                out.append({
                    "guideline": s.guideline.upper(), "column": s.column, "row": s.label, "config": s.describe(),
                    "MFLOPs": r.flops / 1e6, "MMAC": r.mac / 1e6,
                    "img/s": r.images_per_s, "spread%": 100 * r.spread, "rel": r.relative,
                    "paper_gpu": s.paper_gpu, "gpu_rel": s.paper_gpu / first.paper_gpu,
                    "paper_arm": s.paper_arm, "arm_rel": s.paper_arm / first.paper_arm,
                    "noisy": "noisy" if r.noisy else "",
                })
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"guideline": self.guideline, "table": self.table.number, "channels": self.channels,
                "paper": self.table.to_dict(), "rows": [r.to_dict() for r in self.rows],
                "verdict": self.verdict.to_dict() if self.verdict else None}


@dataclass
class GuidelinesResult:
    """Everything one run produced (JSON-ready via :meth:`to_dict`)."""

    options: RunOptions
    tables: list[TableResult]
    env: dict[str, Any]
    wall_s: float

    @property
    def verdicts(self) -> list[Verdict]:
        return [t.verdict for t in self.tables if t.verdict is not None]

    def verdict_lines(self) -> list[str]:
        return [v.line() for v in self.verdicts]

    def rows(self) -> list[dict[str, Any]]:
        return [r for t in self.tables for r in t.display_rows()]

    def to_dict(self) -> dict[str, Any]:
        return {"conventions": CONVENTIONS, "choices": describe_choices(), "options": self.options.to_dict(),
                "env": self.env, "wall_s": self.wall_s, "tables": [t.to_dict() for t in self.tables],
                "verdicts": self.verdict_lines()}


def _default_timer() -> Timer:
    from shufflenet.measure.timing import measure

    return measure


def _no_progress(it: Iterable[Any], desc: str, total: int) -> Iterable[Any]:
    return it


def check_guidelines(which: Sequence[str] | str) -> list[str]:
    """``"all"``, ``"g2"`` or a list of them -> the guideline keys in order, validated."""
    items = [which] if isinstance(which, str) else list(which)
    if not items:
        raise UserInputError("no guideline given: choose g1, g2, g3, g4 or all")
    keys: list[str] = []
    for item in items:
        if str(item).strip().lower() == "all":
            keys.extend(GUIDELINES)
        else:
            keys.append(check_guideline(item))
    return [k for k in GUIDELINES if k in keys]


def cost_of(spec: RowSpec) -> tuple[int, int]:
    """(FLOPs, MAC) per image of a row's net at batch 1, from the cost engine in paper mode.

    The engine counts one block, times the depth: every block of these nets is identical, with equal
    input and output shapes, so both totals are exactly linear in depth (the tests check it), and the
    GPU channel set's x4 nets (16 G multiply-adds) need not run ten blocks on the CPU to be counted.
    """
    one = dataclasses.replace(spec, depth=1)
    report = count_cost(one.build(), one.input_size(1), mode="paper")
    return int(report.flops) * spec.depth, int(report.mac) * spec.depth


def run_guidelines(which: Sequence[str] | str = "all", options: RunOptions | None = None, *,
                   progress: Progress | None = None, timer: Timer | None = None) -> GuidelinesResult:
    """Run the chosen guideline experiments (see the module docstring) and judge their claims.

    ``progress(iterable, desc, total)`` wraps the steps (one step = one row timed once); when what it
    returns has ``set_postfix_str`` (tqdm), the current row is shown there. ``timer`` replaces
    :func:`shufflenet.measure.timing.measure` (same call signature; returns an object with ``median_s``,
    ``iqr_s`` and optionally ``env``), e.g. for tests.
    """
    keys = check_guidelines(which)
    opts = (options or RunOptions()).resolved()
    timer = timer or _default_timer()
    progress = progress or _no_progress
    assert opts.rounds is not None and opts.batch is not None and opts.multipliers is not None
    start = time.perf_counter()

    plan = [(k, m, column_rows(k, opts.channels or "arm", m)) for k in keys for m in opts.multipliers]
    total = sum(len(rows) for _, _, rows in plan) * opts.rounds
    results: dict[str, TableResult] = {k: TableResult(k, TABLES[k], opts.channels or "arm", []) for k in keys}
    env: dict[str, Any] = {}

    def steps() -> Iterable[tuple[str, int, int, int, list[RowResult], list[torch.nn.Module]]]:
        for key, m, specs in plan:
            # on the device once, so measure() times them without copying the weights each round
            nets = [s.build().to(opts.device) for s in specs]
            rows = []
            for spec in specs:
                flops, mac = cost_of(spec)
                rows.append(RowResult(spec, flops, mac, opts.batch))
            results[key].rows.extend(rows)
            for r in range(opts.rounds):
                for j in range(len(specs)):
                    yield key, m, r, (r + j) % len(specs), rows, nets
            del nets

    bar = progress(steps(), "guidelines", total)
    for key, m, rnd, idx, rows, nets in bar:
        row = rows[idx]
        if hasattr(bar, "set_postfix_str"):
            bar.set_postfix_str(f"{key.upper()} x{m} {row.spec.label} (round {rnd + 1}/{opts.rounds})")
        first = rnd == 0
        meas = timer(nets[idx], row.spec.input_size(opts.batch), device=opts.device, threads=opts.threads,
                     cudnn_benchmark=opts.cudnn_benchmark, min_run_time=opts.min_run_time,
                     warmup=FIRST_WARMUP if first else WARMUP,
                     warmup_max_time=FIRST_WARMUP_MAX_S if first else WARMUP_MAX_S,
                     name=f"{key} x{m} {row.spec.label}")
        row.speeds.append(opts.batch / meas.median_s)
        row.within.append(meas.iqr_s / meas.median_s if meas.median_s > 0 else 0.0)
        if not env and getattr(meas, "env", None):
            env = dict(meas.env)

    for res in results.values():
        speeds: dict[int, dict[str, list[float]]] = {}
        within: dict[int, dict[str, float]] = {}
        flops: dict[int, dict[str, int]] = {}
        for m in res.multipliers:
            col = res.column(m)
            for r in col:
                r.relative = compare(r.speeds, col[0].speeds).ratio
            speeds[m] = {r.spec.label: r.speeds for r in col}
            within[m] = {r.spec.label: r.within_spread for r in col}
            flops[m] = {r.spec.label: r.flops for r in col}
        res.verdict = judge(res.guideline, speeds, within, flops_by_multiplier=flops)
    if not env:
        from shufflenet.measure.env import capture_environment

        env = capture_environment(device=opts.device, threads=opts.threads, batch=opts.batch)
    env = {**env, "input_size": None, "batch": opts.batch}
    return GuidelinesResult(opts, [results[k] for k in keys], env, time.perf_counter() - start)
