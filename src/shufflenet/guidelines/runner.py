"""Run the guideline experiments: FLOPs and MAC from the cost engine, speed from the measurement core.

Protocol (choices the paper leaves open are stated; the paper's speed protocol is that of Sec. 2):

- **Batch.** The paper does not state the micro-benchmarks' batch size (Sec. 2 gives batch sizes only for
  the whole networks of Fig. 1 / Table 8). Default: **1 on CPU** (its one-thread ARM setting, as in
  Fig. 1 / Table 8) and **8 on CUDA** (its GPU setting), with ``cudnn.benchmark`` on there as in the
  paper. ``batch`` overrides both.
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
- **Cost.** FLOPs (multiply-adds) and MAC (elements read + written, paper Sec. 2, G1) of every row are
  counted per image (batch 1) by :func:`shufflenet.cost.count_cost` in ``paper`` mode.

Every guideline registered in :mod:`shufflenet.guidelines.registry` can be run; the results follow the
result contract of :mod:`shufflenet.result` (``to_dict``, ``tables``, ``figures``, ``conventions``), so
:func:`shufflenet.render.render` writes them as a terminal table, CSV, JSON, Markdown or HTML.
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
from shufflenet.guidelines.judging import MIN_BAND
from shufflenet.guidelines.paper_tables import ARM_UNIT, GPU_UNIT, MULTIPLIERS, PaperTable
from shufflenet.guidelines.plots import table_chart
from shufflenet.guidelines.registry import choices_text, get_guideline
from shufflenet.guidelines.verdicts import Verdict, compare, judge
from shufflenet.measure.options import check_runtime, resolve_device, resolve_threads
from shufflenet.measure.timing import median, prepare_runtime, relative_iqr
from shufflenet.result import FLOPS, MAC, SPEED, Figure, ResultBase, Table

QUICK_ROUNDS, QUICK_MIN_RUN_TIME = 15, 0.1
FULL_ROUNDS, FULL_MIN_RUN_TIME = 21, 0.15
FIRST_WARMUP, FIRST_WARMUP_MAX_S = 10, 1.0  # before a row's first round (kernels picked, caches warm)
WARMUP, WARMUP_MAX_S = 1, 0.2  # before later rounds (caches refilled after the other rows)
NOISY = 0.10

CONVENTIONS = [
    FLOPS,
    MAC,
    SPEED,
    "here: FLOPs and MAC per image (batch 1); our speed = images/s (batch / median latency) over interleaved "
    "rounds, spread over rounds; rel = speed relative to the column's first row (median of per-round ratios)",
    f"paper GPU speeds in {GPU_UNIT} (GTX 1080Ti), paper ARM speeds in {ARM_UNIT} (Snapdragon 810, 1 thread)",
]
VERDICTS_TITLE = (f"Verdicts (noise-aware; differences within the measured spread or under {MIN_BAND:.0%} are "
                  "'inconclusive')")

Progress = Callable[[Iterable[Any], str, int], Iterable[Any]]
Timer = Callable[..., Any]

# the columns of one table row as shown (text, Markdown, HTML) and written (CSV, under these keys)
ROW_UNITS = {"paper_gpu": GPU_UNIT, "paper_arm": ARM_UNIT}


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
    runtime: str = "torch"

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
        runtime = check_runtime(self.runtime)
        if runtime != "torch" and cuda:
            raise UserInputError(f"--runtime {runtime} runs on the CPU; drop --device {self.device}")
        return RunOptions(device=str(dev), batch=batch, threads=self.threads, channels=channels,
                          quick=self.quick, rounds=rounds, min_run_time=float(mrt), multipliers=mults,
                          cudnn_benchmark=self.cudnn_benchmark, runtime=runtime)

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "batch": self.batch, "threads": self.threads, "channels": self.channels,
                "quick": self.quick, "rounds": self.rounds, "min_run_time": self.min_run_time,
                "multipliers": list(self.multipliers or ()), "cudnn_benchmark": self.cudnn_benchmark,
                "runtime": self.runtime}


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


def _row_table(title: str, rows: list[dict[str, Any]], notes: Iterable[str], key: str) -> Table:
    return Table.from_rows(title, rows, units=ROW_UNITS, notes=notes, key=key)


@dataclass
class TableResult(ResultBase):
    """One guideline table: its rows (all columns run) and the verdict.

    A result of its own (:mod:`shufflenet.result`): one table (the rows; the verdict's headline and line
    and the deviations as notes), one figure (the bar chart of :mod:`shufflenet.guidelines.plots`).
    ``device`` names where it ran (the chart's legend says "ours (cpu)").
    """

    guideline: str
    table: PaperTable
    channels: str
    rows: list[RowResult]
    verdict: Verdict | None = None
    device: str = ""

    @property
    def multipliers(self) -> list[int]:
        return sorted({r.spec.multiplier for r in self.rows})

    @property
    def name(self) -> str:
        return self.guideline.upper()

    @property
    def title(self) -> str:
        """``G1 — paper Table 1: Equal channel width minimises MAC (10 blocks, 56x56; claim: ...)``."""
        spec = self.rows[0].spec if self.rows else None
        depth, hw = (spec.depth, spec.hw) if spec else (get_guideline(self.guideline).depth,
                                                         get_guideline(self.guideline).hw)
        return (f"{self.name} — paper Table {self.table.number}: {self.table.title} "
                f"({depth} blocks, {hw}x{hw}; claim: {self.table.claim})")

    def column(self, multiplier: int) -> list[RowResult]:
        return [r for r in self.rows if r.spec.multiplier == multiplier]

    def headline(self) -> str:
        """The verdict's one-sentence headline (the paper's effect, ours, the status)."""
        return self.verdict.headline() if self.verdict else f"{self.name}: not judged"

    def notes(self) -> list[str]:
        """The deviations from the paper of this table's rows, each once."""
        return sorted({n for r in self.rows for n in r.spec.notes})

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

    # -- the result contract ------------------------------------------------------------------------------

    def tables(self) -> list[Table]:
        rows = [{k: v for k, v in r.items() if k != "guideline"} for r in self.display_rows()]
        notes = ([self.verdict.headline(), self.verdict.line()] if self.verdict else []) + self.notes()
        return [_row_table(self.title, rows, notes, self.guideline)]

    def figure(self, platform: str | None = None) -> Figure:
        """The bar chart of this table (drawn when a renderer asks); ``platform`` defaults to the device."""
        if platform is None:
            platform = f" ({self.device})" if self.device else ""
        return table_chart(self, platform)

    def figures(self) -> list[Figure]:
        return [self.figure()] if self.rows else []

    def conventions(self) -> list[str]:
        return list(CONVENTIONS)

    def to_dict(self) -> dict[str, Any]:
        return {"guideline": self.guideline, "table": self.table.number, "channels": self.channels,
                "paper": self.table.to_dict(), "rows": [r.to_dict() for r in self.rows],
                "verdict": self.verdict.to_dict() if self.verdict else None}


@dataclass
class GuidelinesResult(ResultBase):
    """Everything one run produced: ``results`` = one :class:`TableResult` per guideline, in run order.

    Follows the result contract (:mod:`shufflenet.result`): ``to_dict()`` (JSON-ready), ``tables()`` (the
    rows of every table, as CSV writes them, then the verdicts), ``figures()`` (one bar chart per
    guideline) and ``conventions()``.
    """

    options: RunOptions
    results: list[TableResult]
    env: dict[str, Any]
    wall_s: float

    @property
    def verdicts(self) -> list[Verdict]:
        return [t.verdict for t in self.results if t.verdict is not None]

    def verdict_lines(self) -> list[str]:
        return [v.line() for v in self.verdicts]

    def headlines(self) -> list[str]:
        """One sentence per guideline: the paper's effect, ours, the status (:meth:`Verdict.headline`)."""
        return [v.headline() for v in self.verdicts]

    def result(self, key: str) -> TableResult:
        """The result of one guideline (``"g2"``)."""
        k = str(key).strip().lower()
        for t in self.results:
            if t.guideline == k:
                return t
        raise KeyError(f"guideline {key!r} was not run (ran: {', '.join(t.guideline for t in self.results)})")

    def rows(self) -> list[dict[str, Any]]:
        return [r for t in self.results for r in t.display_rows()]

    def notes(self) -> list[str]:
        return sorted({n for t in self.results for n in t.notes()})

    def title(self) -> str:
        """The run in one line: where, how, how long (the first line of the text output)."""
        o, env = self.options, self.env
        where = env.get("gpu_name") or env.get("cpu_model") or o.device
        names = ", ".join(f"{t.name} (paper Table {t.table.number})" for t in self.results) or "none"
        runtime = getattr(o, "runtime", "torch")
        where += f" in {runtime}" if runtime != "torch" else ""
        return (f"shufflenet guidelines: {names} on {where} ({o.device}, batch {o.batch}, "
                f"threads {env.get('threads', o.threads)}, {(o.channels or '').upper()} channel set, "
                f"{o.rounds} rounds x >= {o.min_run_time:g} s, {'quick' if o.quick else 'full'}; "
                f"{self.wall_s:.0f} s)")

    def verdict_rows(self) -> list[dict[str, Any]]:
        """One row per guideline: status and effects here and in the paper's GPU and ARM data (the claim
        and details are in the verdict lines, the table's notes)."""
        out = []
        for t in self.results:
            v = t.verdict
            if v is None:
                continue
            out.append({"guideline": v.name, "table": t.table.number, "status": v.status,
                        "here": ", ".join(c.effect_str for c in v.columns),
                        "paper_gpu": ", ".join(c.effect_str for c in v.paper_gpu),
                        "paper_gpu_status": v.paper_gpu_status,
                        "paper_arm": ", ".join(c.effect_str for c in v.paper_arm),
                        "paper_arm_status": v.paper_arm_status})
        return out

    # -- the result contract ------------------------------------------------------------------------------

    def tables(self) -> list[Table]:
        """Every row (what CSV writes; each table's paper title and claim, then the deviations from the
        paper, as notes), then the verdicts (each guideline's headline, then its verdict line, as notes)."""
        titles = [t.title for t in self.results]
        rows = _row_table(self.title(), self.rows(), [*titles, *self.notes()], "rows")
        notes = [*self.headlines(), *self.verdict_lines()]
        verdicts = Table.from_rows(VERDICTS_TITLE, self.verdict_rows(), notes=notes,
                                   labels={"paper_gpu": "paper GPU", "paper_gpu_status": "GPU status",
                                           "paper_arm": "paper ARM", "paper_arm_status": "ARM status"},
                                   key="verdicts")
        return [rows, verdicts]

    def figures(self) -> list[Figure]:
        return [f for t in self.results for f in t.figures()]

    def conventions(self) -> list[str]:
        return list(CONVENTIONS)

    def to_dict(self) -> dict[str, Any]:
        return {"conventions": self.conventions(), "choices": describe_choices(),
                "options": self.options.to_dict(),
                "env": self.env, "wall_s": self.wall_s, "tables": [t.to_dict() for t in self.results],
                "verdicts": self.verdict_lines(), "headlines": self.headlines()}


def _default_timer() -> Timer:
    from shufflenet.measure.timing import measure

    return measure


def _no_progress(it: Iterable[Any], desc: str, total: int) -> Iterable[Any]:
    return it


def check_guidelines(which: Sequence[str] | str) -> list[str]:
    """``"all"``, ``"g2"`` or a list of them -> the guideline keys in order, validated."""
    items = [which] if isinstance(which, str) else list(which)
    if not items:
        raise UserInputError(f"no guideline given: choose {choices_text()}")
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
    results: dict[str, TableResult] = {k: TableResult(k, get_guideline(k).table, opts.channels or "arm", [],
                                                      device=opts.device) for k in keys}
    env: dict[str, Any] = {}

    def steps() -> Iterable[tuple[str, int, int, int, list[RowResult], list[torch.nn.Module]]]:
        for key, m, specs in plan:
            # on the device once, so measure() times them without copying the weights each round
            nets = [prepare_runtime(s.build().to(opts.device).eval(), opts.runtime, s.input_size(opts.batch),
                                    opts.threads or 1) for s in specs]
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
