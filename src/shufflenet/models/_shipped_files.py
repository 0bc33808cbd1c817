"""Where the shipped checkpoints live, and ``shipped:NAME`` resolved to a file (no weight reading here, so
that :mod:`shufflenet.models.weights` can resolve the names too)."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from shufflenet.errors import CheckpointNotFoundError

SHIPPED_PREFIX = "shipped:"
SHIPPED_DIR = "weights"


def shipped_dir() -> Path:
    """``shufflenet/weights`` inside the installed package."""
    return Path(str(resources.files("shufflenet").joinpath(SHIPPED_DIR)))


def shipped_paths() -> list[Path]:
    """The shipped ``*.safetensors`` files, sorted by name (empty when none ships)."""
    d = shipped_dir()
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.suffix == ".safetensors" and p.is_file())


def resolve_weights(spec: str | os.PathLike[str]) -> Path:
    """A checkpoint path, with ``shipped:NAME`` resolved to the shipped file (unknown names list the known)."""
    text = os.fspath(spec)
    if not text.startswith(SHIPPED_PREFIX):
        return Path(text)
    name = text[len(SHIPPED_PREFIX):]
    for path in shipped_paths():
        if path.stem == name:
            return path
    known = ", ".join(SHIPPED_PREFIX + p.stem for p in shipped_paths()) or "none ships with this install"
    raise CheckpointNotFoundError(f"no shipped checkpoint {text!r}; shipped: {known}")
