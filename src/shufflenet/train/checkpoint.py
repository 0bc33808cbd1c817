"""Training checkpoints: written atomically, read safely, enough state to continue *exactly*.

A checkpoint is one ``torch.save`` dict that :func:`shufflenet.load_weights` also reads (it carries the
package's format tag, the model's ``state_dict`` and ``meta``)::

    {"format": "shufflenet", "version": 1,
     "state_dict": {...},            # the model (unwrapped from DDP), on CPU
     "ema_state_dict": {...} | None,
     "meta": {"model", "model_kwargs", "num_classes", "in_chans", "class_names", "dataset",
              "preprocess", "input_convention", "config", ...},
     "train": {"optimizer", "scheduler", "scaler", "epoch", "batch_in_epoch", "step", "finished",
               "rng", "running", "history", "elapsed_s", "world_size", "final"}}

Everything in it is a tensor or a plain Python value (RNG states included: torch/CUDA states are uint8
tensors, numpy's Mersenne state an int64 tensor, Python's a list of ints), so it loads with
``torch.load(weights_only=True)``: a file that would run code on loading is refused.

The file is written to a temporary file in the same directory, flushed to disk and renamed over the old
one, so a crash mid-write never leaves a truncated ``last.pt``; a write that fails (a full disk: torch's
``RuntimeError: [enforce fail at inline_container.cc...]`` or ``OSError(ENOSPC)``) removes the temporary
file and raises :class:`~shufflenet.train.rundir.DiskFullError` saying the previous checkpoint is intact.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shufflenet._io import atomic_file
from shufflenet.errors import UserInputError, WeightsError
from shufflenet.models.weights import FORMAT_TAG, read_checkpoint
from shufflenet.train.rundir import guard_write

VERSION = 1


def capture_rng(loader_generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every RNG state that influences training, as tensors and plain values."""
    np_state = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "cuda": [s for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() and torch.cuda.is_initialized() else [],
        "numpy": {"key": str(np_state[0]), "state": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": int(py_version), "state": [int(v) for v in py_state], "gauss": py_gauss},
        "loader": loader_generator.get_state() if loader_generator is not None else None,
    }
    return state


def restore_rng(state: dict[str, Any], loader_generator: torch.Generator | None = None) -> None:
    """Put back what :func:`capture_rng` recorded (CUDA states only when CUDA is available)."""
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s for s in cuda][: torch.cuda.device_count()])
    npst = state.get("numpy")
    if npst:
        np.random.set_state((npst["key"], npst["state"].numpy().astype(np.uint32), int(npst["pos"]),
                             int(npst["has_gauss"]), float(npst["cached_gaussian"])))
    pyst = state.get("python")
    if pyst:
        random.setstate((int(pyst["version"]), tuple(int(v) for v in pyst["state"]), pyst["gauss"]))
    if loader_generator is not None and state.get("loader") is not None:
        loader_generator.set_state(state["loader"])


def cpu_state_dict(state: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.detach().cpu().clone() if isinstance(v, torch.Tensor) else v) for k, v in state.items()}


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write ``payload`` (see the module docstring) atomically: temp file, fsync, rename.

    Raises:
        DiskFullError: no space left (the previous file at ``path`` is intact, no temporary file is left).
        OutputWriteError: any other write failure (permissions, I/O error), likewise.
    """
    path = Path(path)
    payload = {"format": FORMAT_TAG, "version": VERSION, **_to_cpu(payload)}
    note = "the previous checkpoint is intact" if path.exists() else "no checkpoint was written"
    with guard_write(path, note):
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as f:
            torch.save(payload, f)
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a *training* checkpoint safely (``weights_only=True``); a clear :class:`WeightsError` when the
    file is missing, truncated, corrupted, unsafe, or only holds weights."""
    obj = read_checkpoint(path)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT_TAG or "state_dict" not in obj:
        raise WeightsError(f"{path}: not a shufflenet training checkpoint")
    train = obj.get("train")
    if not isinstance(train, dict) or "optimizer" not in train:
        raise WeightsError(f"{path}: holds weights only, no training state to resume from "
                           "(use it with eval/predict, or as initial weights)")
    if int(obj.get("version", 0)) > VERSION:
        raise WeightsError(f"{path}: checkpoint version {obj.get('version')} is newer than this package reads")
    return obj


def resolve_resume(resume: str | None, output_dir: str | os.PathLike[str] | None) -> Path | None:
    """``"auto"`` -> ``output_dir/last.pt`` when it exists (else a fresh start); a path -> that path."""
    if not resume:
        return None
    if resume == "auto":
        if output_dir is None:
            raise UserInputError("--resume without a checkpoint needs -o DIR (the run directory to continue); "
                                 "or give the checkpoint: --resume DIR/last.pt")
        candidate = Path(output_dir) / "last.pt"
        return candidate if candidate.is_file() else None
    path = Path(resume).expanduser()
    if not path.is_file():
        raise UserInputError(f"checkpoint to resume from not found: {path}")
    return path
