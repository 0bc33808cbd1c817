"""A latency calibration: the kernels timed on one machine, its environment, and the models fitted on them.

Saved as one JSON document (``format: shufflenet-latency-calibration``, :data:`FORMAT_VERSION`), written
atomically. It keeps the raw timed kernels, not only the fitted coefficients, so the models are refitted
exactly when it is read and a later version of the predictor can reuse an old calibration's measurements.
A calibration read on another CPU, at another thread count or with another torch version still predicts,
with a warning naming what differs (:meth:`Calibration.differences`): kernel speeds are a property of the
platform -- hardware *and* library (Sec. 1 of the paper).
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shufflenet import result
from shufflenet._io import write_atomic
from shufflenet.audit.latency import benches as _benches
from shufflenet.audit.latency.benches import MODES, Sample
from shufflenet.audit.latency.fit import SPECS, KindModel, fit_kind, leave_one_out_errors
from shufflenet.environment import capture_environment
from shufflenet.errors import UserInputError
from shufflenet.measure.timing import median
from shufflenet.result import Table

FORMAT = "shufflenet-latency-calibration"
FORMAT_VERSION = 1
MIN_BLOCK_SAMPLES = 12
# Environment fields that change kernel speeds, with how a difference is named.
PLATFORM_FIELDS = {"cpu_model": "CPU", "threads": "threads", "torch": "torch", "cpu_arch": "architecture",
                   "mkldnn": "oneDNN (mkldnn) availability"}


def cache_dir() -> Path:
    """Where calibrations live by default: ``$SHUFFLENET_CACHE/latency`` or ``~/.cache/shufflenet/latency``."""
    override = os.environ.get("SHUFFLENET_CACHE")
    return (Path(override) if override else Path.home() / ".cache" / "shufflenet") / "latency"


def default_path(threads: int) -> Path:
    """The default calibration file of this machine at ``threads``."""
    return cache_dir() / f"calibration-cpu-{threads}t.json"


@dataclass
class Calibration:
    """Timed kernels of one machine at one thread count, and the per-op-type models fitted on them."""

    threads: int
    mode: str
    samples: list[Sample]
    wrapper_s: dict[str, float]
    module_call_s: float
    environment: dict[str, Any]
    created: str = ""
    seconds: float = 0.0
    path: str = ""
    _models: dict[str, KindModel] | None = field(default=None, repr=False)
    _views: dict[str, float] | None = field(default=None, repr=False)

    # -- the fitted models ------------------------------------------------------------------------

    def by_kind(self) -> dict[str, list[Sample]]:
        """The samples each kind's model is fitted on: those timed in blocks where a kind has at least
        :data:`MIN_BLOCK_SAMPLES` of them (the context a layer runs in), else those timed in rings."""
        rings: dict[str, list[Sample]] = defaultdict(list)
        blocks: dict[str, list[Sample]] = defaultdict(list)
        for s in self.samples:
            (blocks if s.context == "block" else rings)[s.kind].append(s)
        kinds = dict.fromkeys([*blocks, *rings])
        return {k: blocks[k] if len(blocks.get(k, ())) >= MIN_BLOCK_SAMPLES else rings.get(k) or blocks[k]
                for k in kinds}

    @property
    def models(self) -> dict[str, KindModel]:
        if self._models is None:
            self._models = {kind: fit_kind(kind, [s.features for s in group], [s.seconds for s in group])
                            for kind, group in self.by_kind().items() if kind in SPECS and len(group) >= 3}
        return self._models

    @property
    def view_s(self) -> dict[str, float]:
        """Dispatch cost of each view-like op (``"*"``: their median, for ops not timed)."""
        if self._views is None:
            per_op: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
            for s in self.samples:
                if s.kind == "view":
                    per_op[s.op][s.context].append(s.seconds)
            views = {op: median(ctx["block"] if len(ctx["block"]) >= 3 else ctx["ring"] or ctx["block"])
                     for op, ctx in per_op.items()}
            self._views = {**views, "*": median(list(views.values())) if views else 1e-6}
        return self._views

    def kind_errors(self) -> dict[str, list[float]]:
        """Per kind, each calibrated kernel's relative error predicted without itself as a neighbour."""
        out = {}
        for kind, group in self.by_kind().items():
            if kind in self.models:
                out[kind] = leave_one_out_errors(self.models[kind], [s.features for s in group],
                                                 [s.seconds for s in group])
        return out

    # -- the platform it describes ----------------------------------------------------------------

    def differences(self, threads: int | None = None, environment: dict[str, Any] | None = None) -> list[str]:
        """What differs between this calibration's platform and ``environment`` (default: this process)
        at ``threads``: a list of "CPU: A here, B in the calibration" strings, empty when nothing does."""
        if environment is None:
            environment = capture_environment(threads=threads if threads is not None else self.threads)
        env = environment
        if threads is not None:
            env = {**env, "threads": threads}
        out = []
        for key, label in PLATFORM_FIELDS.items():
            ours, theirs = env.get(key), self.environment.get(key)
            if ours != theirs:
                out.append(f"{label}: {ours} here, {theirs} in the calibration")
        return out

    # -- the result contract ------------------------------------------------------------------------

    def summary_rows(self) -> list[dict[str, Any]]:
        errors = self.kind_errors()
        rows = []
        for kind, group in sorted(self.by_kind().items()):
            times = sorted(s.seconds for s in group)
            errs = sorted(abs(e) for e in errors.get(kind, []))
            rows.append({
                "kind": kind, "kernels": len(group), "min_us": times[0] * 1e6, "median_us": median(times) * 1e6,
                "max_us": times[-1] * 1e6,
                "median_error_pct": 100 * median(errs) if errs else None,
                "within_10pct": 100 * sum(e <= 0.10 for e in errs) / len(errs) if errs else None,
            })
        return rows

    def tables(self) -> list[Table]:
        overhead = [{"module": "(any module call)", "overhead_us": self.module_call_s * 1e6}]
        overhead += [{"module": k, "overhead_us": v * 1e6} for k, v in sorted(self.wrapper_s.items())]
        return [
            Table.from_rows(f"Latency calibration ({self.mode}, {self.threads} thread(s)): kernels per op type",
                            self.summary_rows(), fmts={"min_us": ".1f", "median_us": ".1f", "max_us": ".1f",
                                                       "median_error_pct": ".1f", "within_10pct": ".0f"},
                            labels={"median_error_pct": "median |error| (held out, %)",
                                    "within_10pct": "within 10% (%)"}, key="kinds"),
            Table.from_rows("Python call overhead per module type (beyond its functional call)", overhead,
                            fmts={"overhead_us": ".2f"}, key="overheads"),
        ]

    def figures(self) -> list[result.Figure]:
        return []

    def conventions(self) -> list[str]:
        return ["error: each calibrated kernel predicted with itself left out of the neighbour table "
                "(the linear part is fitted on all of them)",
                "times: median of the timed blocks; thread CPU time at 1 thread, wall time otherwise"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION, "threads": self.threads, "mode": self.mode,
            "created": self.created, "seconds": self.seconds, "environment": self.environment,
            "module_call_s": self.module_call_s, "wrapper_s": dict(self.wrapper_s),
            "kinds": self.summary_rows(), "samples": [s.to_dict() for s in self.samples],
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the calibration atomically (a temporary file renamed into place)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, json.dumps(result.json_safe(self.to_dict()), indent=1))
        self.path = str(target)
        return target


def calibrate(mode: str = "quick", threads: int = 1, *, seed: int = 0,
              progress: Callable[[int, int], None] | None = None) -> Calibration:
    """Time this machine's kernels (see :mod:`~shufflenet.audit.latency.benches`) at ``threads``."""
    if mode not in MODES:
        raise UserInputError(f"unknown calibration mode {mode!r}: choose {' or '.join(MODES)}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise UserInputError(f"threads must be a positive integer, got {threads!r}")
    start = time.perf_counter()
    items = _benches.benches(mode, seed)
    programs = _benches.block_programs(mode, seed)
    plan = _benches._PLAN[mode]
    rings_total = len(_benches._rings(items, plan["passes"], seed)) + 1
    total = rings_total + plan["passes"] * ((len(programs) + _benches.GROUP - 1) // _benches.GROUP)
    done = [0]

    def tick_rings(d: int, _: int) -> None:
        done[0] = d
        if progress:
            progress(min(d, rings_total), total)

    def tick_blocks() -> None:
        done[0] += 1
        if progress:
            progress(min(done[0], total), total)

    samples, wrappers, module_call = _benches.run_benches(items, threads, mode, seed, tick_rings)
    done[0] = rings_total
    samples += _benches.run_blocks(programs, threads, mode, seed, tick_blocks)
    return Calibration(threads, mode, samples, wrappers, module_call, capture_environment(threads=threads),
                       created=time.strftime("%Y-%m-%dT%H:%M:%S"), seconds=time.perf_counter() - start)


def from_dict(d: Any, source: str = "calibration") -> Calibration:
    """A calibration from :meth:`Calibration.to_dict`'s JSON; one-line :class:`UserInputError` otherwise."""
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise UserInputError(f"{source} is not a latency calibration (no \"format\": \"{FORMAT}\")")
    version = d.get("format_version")
    if version != FORMAT_VERSION:
        raise UserInputError(f"{source} has calibration format version {version!r}; this shufflenet reads "
                             f"version {FORMAT_VERSION}: run `shufflenet latency calibrate` again")
    try:
        samples = [Sample(str(s["kind"]), str(s["op"]), {str(k): float(v) for k, v in s["features"].items()},
                          float(s["seconds"]), float(s.get("spread") or 0.0), str(s.get("context") or "ring"))
                   for s in d["samples"]]
        cal = Calibration(int(d["threads"]), str(d["mode"]), samples,
                          {str(k): float(v) for k, v in d["wrapper_s"].items()}, float(d["module_call_s"]),
                          dict(d["environment"]), str(d.get("created") or ""), float(d.get("seconds") or 0.0))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UserInputError(f"{source} is a corrupt latency calibration ({type(exc).__name__}: {exc})") from None
    if not samples or any(not s.seconds > 0 for s in samples):
        raise UserInputError(f"{source} is a corrupt latency calibration (no timed kernels, or a time <= 0)")
    return cal


def load_calibration(path: str | os.PathLike[str]) -> Calibration:
    """Read a calibration written by :meth:`Calibration.save`; bad files raise a one-line error."""
    p = Path(path)
    if not p.exists():
        raise UserInputError(f"no latency calibration at {p}: run `shufflenet latency calibrate` first")
    if p.is_dir():
        raise UserInputError(f"{p} is a directory, not a latency calibration")
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserInputError(f"{p} is not a readable latency calibration ({type(exc).__name__})") from None
    cal = from_dict(d, str(p))
    cal.path = str(p)
    return cal
