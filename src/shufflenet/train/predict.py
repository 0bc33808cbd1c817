"""Top-k prediction for image files.

The checkpoint's metadata (this package's training checkpoints and weight files) gives the model, the
class names and the preprocessing (grey 28x28 for Fashion-MNIST; resize 256 / centre crop 224 with the
ImageNet or the official BGR convention otherwise). Each file is read on its own: a missing, unreadable or
non-image file gets an error line in the result and the other files are still predicted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from shufflenet.errors import ClassNamesMismatchError, first_line
from shufflenet.result import Column, ResultBase, Table, json_safe
from shufflenet.train.config import PredictConfig
from shufflenet.train.distributed import resolve_device
from shufflenet.train.evaluate import load_model_for_inference


@dataclass
class FilePrediction:
    """One file: ``top`` holds ``{"rank", "label", "index", "prob"}`` dicts, or ``error`` says why not."""

    path: str
    top: list[dict[str, Any]] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.path, "top": self.top} if self.ok else {"file": self.path, "error": self.error}


PROBABILITY = "prob = softmax probability of the label (a fraction in CSV and JSON, a percentage in tables)"


@dataclass
class Predictions(ResultBase):
    """The top-k labels of each image file (:func:`predict`), as a result of the contract in
    :mod:`shufflenet.result`: one table of (file, rank, label, index, prob) rows, the files that could not
    be predicted as its notes."""

    checkpoint: str
    model: str
    input_convention: str
    predictions: list[FilePrediction] = field(default_factory=list)

    @property
    def failed(self) -> list[FilePrediction]:
        return [p for p in self.predictions if not p.ok]

    def rows(self) -> list[dict[str, Any]]:
        """Flat rows (file, rank, label, index, prob) of the successful predictions."""
        return [{"file": p.path, **t} for p in self.predictions if p.ok for t in p.top or []]

    def to_dict(self) -> dict[str, Any]:
        return json_safe({"checkpoint": self.checkpoint, "model": self.model,
                          "input_convention": self.input_convention,
                          "predictions": [p.to_dict() for p in self.predictions if p.ok],
                          "errors": [p.to_dict() for p in self.predictions if not p.ok]})

    def tables(self) -> list[Table]:
        cols = [Column("file"), Column("rank"), Column("label"), Column("index", "class index"),
                Column("prob", "probability", fmt=".2%")]
        notes = [f"not predicted: {p.path}: {p.error}" for p in self.failed]
        return [Table(f"predict with {self.model} ({self.checkpoint}); input {self.input_convention}", cols,
                      self.rows(), notes, key="predictions")]

    def conventions(self) -> list[str]:
        return [PROBABILITY]


PredictResult = Predictions  # the name before the result contract


def read_image(path: str | Path) -> Any:
    """Open an image file fully with PIL; raises ``ValueError`` with a short reason when it cannot."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.exists():
        raise ValueError("no such file")
    if p.is_dir():
        raise ValueError("is a directory, not an image file")
    try:
        with Image.open(p) as im:
            im.load()
            return im.copy()
    except UnidentifiedImageError:
        raise ValueError("not an image file (unrecognised format)") from None
    except Image.DecompressionBombError as exc:
        raise ValueError(f"image too large ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupted image data, permissions
        raise ValueError(f"unreadable image ({first_line(exc)})") from None


@torch.no_grad()
def predict(cfg: PredictConfig) -> Predictions:
    """Predict the top-``cfg.topk`` classes of every image in ``cfg.images``.

    ``cfg.class_names``, when given, must name every output of the model (else
    :class:`~shufflenet.errors.ClassNamesMismatchError`); by default the checkpoint's names label the
    classes, or their indices when it has none (or not one per output).
    """
    cfg.validate()
    device = resolve_device(cfg.device)
    loaded = load_model_for_inference(cfg.checkpoint, cfg.model, cfg.model_kwargs, image_size=cfg.image_size,
                                      input_convention=cfg.input_convention, device=device)
    n_classes = loaded.num_classes
    if cfg.class_names is not None and len(cfg.class_names) != n_classes:
        raise ClassNamesMismatchError(len(cfg.class_names), n_classes)
    names = list(cfg.class_names or loaded.class_names)
    if len(names) != n_classes:
        names = [str(i) for i in range(n_classes)]
    k = min(cfg.topk, n_classes)
    transform = loaded.preprocess.pil_transform()
    result = Predictions(str(cfg.checkpoint), loaded.name, loaded.preprocess.describe())
    pending: list[tuple[FilePrediction, torch.Tensor]] = []

    def flush() -> None:
        if not pending:
            return
        batch = torch.stack([t for _, t in pending]).to(device)
        probs = torch.softmax(loaded.model(batch).float(), dim=1)
        top = probs.topk(k, dim=1)
        for (entry, _), values, indices in zip(pending, top.values.tolist(), top.indices.tolist(), strict=True):
            entry.top = [{"rank": r + 1, "label": names[i], "index": i, "prob": round(v, 6)}
                         for r, (v, i) in enumerate(zip(values, indices, strict=True))]
        pending.clear()

    for path in cfg.images:
        entry = FilePrediction(str(path))
        result.predictions.append(entry)
        try:
            tensor = transform(read_image(path))
        except ValueError as exc:
            entry.error = str(exc)
            continue
        pending.append((entry, tensor))
        if len(pending) >= cfg.batch_size:
            flush()
    flush()
    return result
