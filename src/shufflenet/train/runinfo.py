"""Reading a training run back from its directory: the :class:`~shufflenet.train.engine.TrainResult` that
:func:`~shufflenet.train.engine.train` returned, rebuilt from the JSON files it wrote (no checkpoint is read).

A run directory of :func:`~shufflenet.train.engine.train` (``runs/train/<time>-<model>/``) holds
``summary.json`` (``TrainResult.to_dict()``, written when the run finishes), ``metrics.jsonl`` /
``metrics.csv`` (one row per epoch, written as it trains), ``config.json`` (the resolved config) and
``run.json`` (derived settings and the environment). :func:`load_run` reads a finished run from
``summary.json`` and an unfinished one (stopped or still training) from its metric rows; what is not a run
directory, or a file that is not JSON, raises :class:`~shufflenet.errors.UserInputError` in one line.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shufflenet.errors import UserInputError
from shufflenet.train.engine import TrainResult
from shufflenet.train.rundir import METRIC_FILES, run_contents

SUMMARY_FILE = "summary.json"
CONFIG_FILE = "config.json"
RUN_FILE = "run.json"
WEIGHT_FILES = ("model.pt", "last.pt")  # final weights first; last.pt is the resumable checkpoint


@dataclass
class RunRecord:
    """A run directory read back: its result (``status`` is ``"unfinished"`` when there is no
    ``summary.json`` yet), its config (``config.json``) and derived settings (``run.json``), both ``{}`` when
    missing."""

    directory: Path
    result: TrainResult
    config: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    weights: Path | None = None  # the weights file when it is not in the directory (a shipped checkpoint)

    @property
    def finished(self) -> bool:
        return self.result.status == "finished"

    def weights_file(self) -> Path | None:
        """``model.pt`` (the final weights) when present, else ``last.pt``, else ``None``."""
        if self.weights is not None:
            return self.weights
        for name in WEIGHT_FILES:
            if (self.directory / name).is_file():
                return self.directory / name
        return None

    def best_epoch(self) -> tuple[int, float, str] | None:
        """``(epoch, top-1, key)`` of the best validation top-1 in the history (the EMA model's when the final
        weights are the EMA ones), or ``None`` when no epoch was evaluated. Ties go to the earliest epoch."""
        ema = self.result.final.get("weights") == "ema"
        for key in (("ema_val_top1", "val_top1") if ema else ("val_top1",)):
            rows = [h for h in self.result.history if _is_number(h.get(key))]
            if rows:
                best = max(rows, key=lambda h: h[key])  # max keeps the first of equal values
                return int(best["epoch"]), float(best[key]), key
        return None


def check_run_directory(path: str | os.PathLike[str]) -> Path:
    """``path`` as a run directory of ``shufflenet train``, or :class:`UserInputError` in one line: it does
    not exist, is a file, or holds neither ``summary.json`` nor metric rows."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UserInputError(f"training run directory not found: {p}")
    if not p.is_dir():
        hint = f"; pass its directory {p.parent}" if p.suffix in (".pt", ".json", ".jsonl", ".csv") else ""
        raise UserInputError(f"{p}: is a file, not a training run directory (the directory `shufflenet "
                             f"train` writes, runs/train/<time>-<model>){hint}")
    if not {SUMMARY_FILE, *METRIC_FILES} & set(run_contents(p)):
        raise UserInputError(f"{p}: not a training run directory (no {SUMMARY_FILE} and no epoch rows in "
                             f"{' or '.join(METRIC_FILES)}, which `shufflenet train` writes)")
    return p


def load_run(path: str | os.PathLike[str]) -> RunRecord:
    """Read the run in directory ``path`` (see the module docstring); raises :class:`UserInputError` (one
    line) for what is not a run directory or a run file that is not what ``shufflenet train`` writes."""
    p = check_run_directory(path)
    config = _read_object(p / CONFIG_FILE) if (p / CONFIG_FILE).is_file() else {}
    run = _read_object(p / RUN_FILE) if (p / RUN_FILE).is_file() else {}
    if (p / SUMMARY_FILE).is_file():
        result = _from_summary(p / SUMMARY_FILE, _read_object(p / SUMMARY_FILE))
    else:
        result = _from_metrics(p, _read_history(p), config, run)
    return RunRecord(p, result, config, run)


def load_shipped_run(path: str | os.PathLike[str]) -> RunRecord:
    """The training record a shipped checkpoint carries in its metadata (``shufflenet.train.ship``), as a
    :class:`RunRecord` whose weights are the checkpoint itself."""
    from shufflenet.models.shipped import resolve_weights
    from shufflenet.models.weights import read_safetensors_metadata

    p = resolve_weights(path)
    meta = read_safetensors_metadata(p)
    training, history = meta.get("training"), meta.get("history")
    if not isinstance(training, dict) or not isinstance(history, list):
        raise UserInputError(f"{p}: the checkpoint carries no training record in its metadata")
    result = _from_summary(p, {**training, "history": history, "output_dir": str(p)})
    config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    run = meta.get("run") if isinstance(meta.get("run"), dict) else {}
    return RunRecord(p.parent, result, dict(config), dict(run), weights=p)


def _from_summary(path: Path, d: dict[str, Any]) -> TrainResult:
    history, final = d.get("history"), d.get("final", {})
    rows_ok = isinstance(history, list) and all(isinstance(h, dict) for h in history)
    if not rows_ok or not isinstance(final, dict):
        raise UserInputError(f"{path}: not a training summary (expected a 'history' list of epoch rows and a "
                             "'final' object, as `shufflenet train` writes)")
    try:
        return TrainResult(
            status=str(d.get("status", "finished")), output_dir=str(d.get("output_dir") or path.parent),
            model_name=str(d["model_name"]), epochs=int(d["epochs"]), step=int(d.get("step", 0)),
            total_steps=int(d.get("total_steps", 0)), world_size=int(d.get("world_size", 1)),
            final=dict(final), history=[dict(h) for h in history],
            wall_time_s=float(d.get("wall_time_s") or 0.0), train_time_s=float(d.get("train_time_s") or 0.0),
            images_per_s=float(d.get("images_per_s") or 0.0),
            checkpoint=d.get("checkpoint"), weights=d.get("weights"))
    except KeyError as exc:
        raise UserInputError(f"{path}: not a training summary (no {exc.args[0]!r})") from None
    except (TypeError, ValueError) as exc:
        raise UserInputError(f"{path}: not a training summary ({exc})") from None


def _from_metrics(p: Path, history: list[dict[str, Any]], config: dict[str, Any],
                  run: dict[str, Any]) -> TrainResult:
    """An unfinished run: its epochs so far; the last evaluated epoch stands for the final numbers."""
    last = history[-1] if history else {}
    evaluated = [h for h in history if _is_number(h.get("val_top1"))]
    last_eval = evaluated[-1] if evaluated else {}
    final = {k: v for k, v in last_eval.items() if k.startswith(("val_", "ema_val_"))}
    # Training images/s over the run from the per-epoch rates: each epoch's steps / its rate gives its time
    # (the batch cancels), so the total is weighted by time as TrainResult.images_per_s is.
    steps, seconds, prev = 0.0, 0.0, 0
    for h in history:
        n = int(h.get("step") or 0) - prev
        prev = int(h.get("step") or prev)
        if n > 0 and _is_number(h.get("images_per_s")) and h["images_per_s"] > 0:
            steps, seconds = steps + n, seconds + n / h["images_per_s"]
    ips = round(steps / seconds, 1) if seconds else 0.0
    weights = p / "last.pt"
    return TrainResult(
        status="unfinished", output_dir=str(p),
        model_name=str(config.get("model") or run.get("model") or "?"),
        epochs=int(config.get("epochs") or len(history)), step=int(last.get("step") or 0),
        total_steps=int(run.get("total_steps") or 0),
        world_size=int(last.get("world_size") or run.get("world_size") or 1),
        final=final, history=history, wall_time_s=float(last.get("elapsed_s") or 0.0), images_per_s=ips,
        checkpoint=str(weights) if weights.is_file() else None, weights=None)


def _read_history(p: Path) -> list[dict[str, Any]]:
    """The epoch rows of ``metrics.jsonl``, or of ``metrics.csv`` when there is no JSONL file."""
    jsonl = p / "metrics.jsonl"
    if jsonl.is_file():
        rows = []
        for i, line in enumerate(_read_text(jsonl).splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserInputError(f"{jsonl}: line {i} is not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise UserInputError(f"{jsonl}: line {i} is not an epoch row (a JSON object)")
            rows.append(row)
        return rows
    path = p / "metrics.csv"
    try:
        reader = csv.DictReader(_read_text(path).splitlines())
        return [{k: _number(v) for k, v in r.items() if k and v not in (None, "")} for r in reader]
    except csv.Error as exc:
        raise UserInputError(f"{path}: not a metrics CSV ({exc})") from None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserInputError(f"{path}: not a text file (not UTF-8)") from None
    except OSError as exc:
        raise UserInputError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _read_object(path: Path) -> dict[str, Any]:
    try:
        d = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise UserInputError(f"{path}: not JSON ({exc.msg} at {where})") from None
    if not isinstance(d, dict):
        kind = type(d).__name__
        raise UserInputError(f"{path}: holds a JSON {kind}, not the object `shufflenet train` writes")
    return d


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v
