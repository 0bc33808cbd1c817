"""The registry of guideline experiments: ``GUIDELINES`` (key -> :class:`Guideline`), in run order.

The paper's four (Sec. 2, G1-G4, Tables 1-4) are registered here; every other part of the package (rows,
runner, verdicts, plots, the CLI) iterates over this registry, so a new experiment is one module defining
a :class:`~shufflenet.guidelines.guideline.Guideline` plus one line below (or :func:`register` at run time).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from shufflenet.errors import UserInputError
from shufflenet.guidelines.g1 import G1
from shufflenet.guidelines.g2 import G2
from shufflenet.guidelines.g3 import G3
from shufflenet.guidelines.g4 import G4
from shufflenet.guidelines.guideline import Guideline

GUIDELINES: dict[str, Guideline] = {}


def register(guideline: Guideline, *, replace: bool = False) -> Guideline:
    """Add ``guideline`` to the registry (after the ones already there); returns it.

    A key already registered is an error unless ``replace`` (which keeps its place in the order).
    """
    if not isinstance(guideline, Guideline):
        raise TypeError(f"register() takes a Guideline, got {type(guideline).__name__}")
    if guideline.key in GUIDELINES and not replace:
        raise ValueError(f"guideline {guideline.key!r} is already registered")
    GUIDELINES[guideline.key] = guideline
    return guideline


def unregister(key: str) -> Guideline:
    """Remove a guideline (tests and experiments that registered their own); returns it."""
    return GUIDELINES.pop(key)


def keys() -> tuple[str, ...]:
    """The registered keys in run order (``("g1", "g2", "g3", "g4")`` for the paper's)."""
    return tuple(GUIDELINES)


def choices_text() -> str:
    """``"g1, g2, g3, g4 or all"``, for messages."""
    return ", ".join(GUIDELINES) + " or all"


def get_guideline(key: str) -> Guideline:
    """The guideline registered under ``key`` (case and surrounding space ignored); an unknown key is bad
    input."""
    k = str(key).strip().lower()
    try:
        return GUIDELINES[k]
    except KeyError:
        raise UserInputError(f"unknown guideline {key!r}: choose {choices_text()}") from None


class FieldView(Mapping[str, Any]):
    """A live read-only mapping ``key -> getattr(guideline, field)`` over the registry (the pre-registry
    dicts ``verdicts.JUDGES`` / ``PHRASES`` are such views)."""

    def __init__(self, field: str) -> None:
        self._field = field

    def __getitem__(self, key: str) -> Any:
        return getattr(GUIDELINES[key], self._field)

    def __iter__(self) -> Iterator[str]:
        return iter(GUIDELINES)

    def __len__(self) -> int:
        return len(GUIDELINES)

    def __repr__(self) -> str:
        return f"FieldView({self._field!r}: {list(GUIDELINES)})"


for _g in (G1, G2, G3, G4):
    register(_g)
