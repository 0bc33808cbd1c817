"""Turn a finished training run into a checkpoint that ships with the package.

The shipped file is safetensors (tensors only, nothing to unpickle) whose metadata carries what a user of
the weights needs without the run directory: the model and its keywords, class names, preprocessing and
input convention (as in ``model.pt``), the run's config, its per-epoch history, the final test accuracy,
wall time and where it was trained. :mod:`shufflenet.models.shipped` reads them back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from shufflenet.errors import UserInputError
from shufflenet.models.weights import FORMAT_TAG, read_checkpoint

# Keys of summary.json worth keeping (paths to the run directory are not).
_SUMMARY_KEYS = ("status", "model_name", "epochs", "step", "total_steps", "world_size", "final",
                 "wall_time_s", "train_time_s", "images_per_s")


def shipping_metadata(run_dir: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The state dict and metadata of a finished run's ``model.pt`` plus its ``summary.json``."""
    d = Path(run_dir)
    summary_path, weights = d / "summary.json", d / "model.pt"
    if not summary_path.is_file() or not weights.is_file():
        raise UserInputError(f"{d}: not a finished training run (needs summary.json and model.pt)")
    summary = json.loads(summary_path.read_text())
    if summary.get("status") != "finished":
        raise UserInputError(f"{d}: the run is not finished (status {summary.get('status')!r})")
    obj = read_checkpoint(weights)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT_TAG:
        raise UserInputError(f"{weights}: not a checkpoint of this package")
    meta = dict(obj.get("meta") or {})
    history = summary.get("history") or []
    final = summary.get("final") or {}
    run_file = d / "run.json"
    meta.update({
        "run": json.loads(run_file.read_text()) if run_file.is_file() else {},
        "training": {k: summary[k] for k in _SUMMARY_KEYS if k in summary},
        "history": history,
        "test_top1": final.get("val_top1", history[-1].get("val_top1") if history else None),
        "test_top5": final.get("val_top5", history[-1].get("val_top5") if history else None),
        "evaluated_on": "the 10 000-image Fashion-MNIST test split" if meta.get("dataset") == "fashion-mnist"
        else meta.get("val_set", "the validation split"),
    })
    return dict(obj["state_dict"]), meta


def ship_run(run_dir: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Write the run's weights and metadata to ``out`` (a new ``.safetensors`` file, written atomically)."""
    from safetensors.torch import save

    from shufflenet._io import write_atomic

    out = Path(out)
    if out.suffix != ".safetensors":
        raise UserInputError(f"{out}: a shipped checkpoint is a .safetensors file")
    if out.exists():
        raise UserInputError(f"{out} exists; a shipped checkpoint is never replaced in place")
    state, meta = shipping_metadata(run_dir)
    text = {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    return write_atomic(out, save(tensors, metadata={**text, "format": FORMAT_TAG}))
