"""Trained checkpoints shipped inside the package, and weight loading that says what went wrong.

The package ships ShuffleNet V2 checkpoints trained on Fashion-MNIST (``small_input=True``, one input
channel, 10 classes) as ``shufflenet/weights/*.safetensors``, so evaluation, prediction, int8 calibration,
parity checks and the report have a real trained model on a fresh install without any download. Each
file's metadata records the model, its keywords, the class names, the preprocessing, the recipe, the
per-epoch history and the test accuracy of the run that produced it.

Anywhere a checkpoint path is taken, ``shipped:NAME`` names one of them (``shufflenet models --shipped``
lists them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from shufflenet.errors import WeightsMismatchError
from shufflenet.models._shipped_files import SHIPPED_PREFIX, resolve_weights, shipped_dir, shipped_paths
from shufflenet.models.weights import WeightsInfo, load_weights, read_safetensors_metadata

__all__ = ["SHIPPED_PREFIX", "ShippedCheckpoint", "ShippedList", "load_checked_weights", "resolve_weights",
           "shipped_checkpoints", "shipped_dir", "shipped_paths"]


@dataclass(frozen=True)
class ShippedCheckpoint:
    """One shipped checkpoint: its name (``shipped:NAME``), file and metadata."""

    name: str
    path: Path
    meta: dict[str, Any]

    @property
    def model(self) -> str:
        return str(self.meta.get("model", ""))

    @property
    def model_kwargs(self) -> dict[str, Any]:
        kw = self.meta.get("model_kwargs")
        return dict(kw) if isinstance(kw, dict) else {}

    @property
    def test_top1(self) -> float | None:
        value = self.meta.get("test_top1")
        return float(value) if isinstance(value, int | float) else None


def shipped_checkpoints() -> list[ShippedCheckpoint]:
    """Every shipped checkpoint with its metadata."""
    return [ShippedCheckpoint(p.stem, p, read_safetensors_metadata(p)) for p in shipped_paths()]


def load_checked_weights(model: nn.Module, model_name: str, weights: str | os.PathLike[str]) -> WeightsInfo:
    """:func:`load_weights`, plus what the checkpoint *is* when it does not fit ``model``.

    A checkpoint whose metadata names another model, or whose shapes match another registered
    architecture or width, is refused with that model named ("weights of shufflenet_v2_x1_0, not
    shufflenet_v2_x0_5").
    """
    from shufflenet.models.weights import read_checkpoint

    path = resolve_weights(weights)
    obj = read_checkpoint(path)
    meta = obj.get("meta") if isinstance(obj, dict) and isinstance(obj.get("meta"), dict) else {}
    named = meta.get("model") if isinstance(meta.get("model"), str) else None
    try:
        return load_weights(model, path)
    except WeightsMismatchError as exc:
        if named and named != model_name:
            raise WeightsMismatchError(f"{weights} holds weights of {named} (its metadata), not {model_name}: "
                                       f"{exc}") from None
        guess = _matching_architecture(obj, model, model_name)
        if guess:
            raise WeightsMismatchError(f"{weights} holds weights of {guess}, not {model_name}: {exc}") from None
        raise


def _matching_architecture(obj: Any, model: nn.Module, model_name: str) -> str | None:
    """The registered model (built with ``model``'s input/classes/layout keywords) whose state-dict shapes
    equal the checkpoint's, if any."""
    from shufflenet.models import create_model, list_models
    from shufflenet.models.weights import _strip_prefixes, _unwrap

    try:
        state = _strip_prefixes(_unwrap(obj)[0])
    except Exception:  # noqa: BLE001 - not a state dict: nothing to match
        return None
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    kwargs: dict[str, Any] = {}
    fc = getattr(model, "fc", None)
    if isinstance(fc, nn.Linear):
        kwargs["num_classes"] = int(shapes.get("fc.weight", (fc.out_features,))[0])
    for key in ("in_chans", "layout"):
        if hasattr(model, key):
            kwargs[key] = getattr(model, key)
    units = [m for m in model.modules() if type(m).__name__ == "ShuffleV2Unit"]
    if units:
        kwargs["layout"] = units[0].layout
    if getattr(model, "min_input_size", None) in (8, 16):  # a small_input ShuffleNet V2 (stride 8 total)
        kwargs["small_input"] = True
    for name in list_models():
        if name == model_name:
            continue
        try:
            other = create_model(name, **kwargs)
        except Exception:  # noqa: BLE001 - a family without these keywords
            continue
        if {k: tuple(v.shape) for k, v in other.state_dict().items()} == shapes:
            return name
    return None


@dataclass
class ShippedList:
    """The shipped checkpoints as a result (``shufflenet models --shipped``)."""

    checkpoints: list[ShippedCheckpoint]

    def rows(self) -> list[dict[str, Any]]:
        out = []
        for c in self.checkpoints:
            training = c.meta.get("training") if isinstance(c.meta.get("training"), dict) else {}
            kwargs = ", ".join(f"{k}={v}" for k, v in c.model_kwargs.items())
            out.append({"name": SHIPPED_PREFIX + c.name, "model": c.model, "keywords": kwargs,
                        "dataset": c.meta.get("dataset"), "epochs": training.get("epochs"),
                        "test_top1": c.test_top1, "mbytes": round(c.path.stat().st_size / 1e6, 2)})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"checkpoints": self.rows()}

    def tables(self) -> list[Any]:
        from shufflenet.result import Table

        return [Table.from_rows("checkpoints shipped with the package (use NAME wherever a checkpoint is taken)",
                                self.rows(), units={"test_top1": "%", "mbytes": "MB"},
                                labels={"test_top1": "test top-1", "mbytes": "size"}, key="shipped")]

    def figures(self) -> list[Any]:
        return []

    def conventions(self) -> list[str]:
        return ["test top-1 = the run's final accuracy on the dataset's test split (Fashion-MNIST: 10 000 images)"]
