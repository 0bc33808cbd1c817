"""Argument checks for the model constructors and the public API: a wrong keyword value fails when the
model is built, with a message naming the keyword, not later inside ``forward`` or as a bare ``TypeError``.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from typing import Any

from torch import nn

from shufflenet.errors import UserInputError, WrongTypeError

# Sanity bounds: far above any real network, low enough that sizes never overflow torch's int64 shapes.
MAX_CLASSES = 1 << 24
MAX_CHANNELS = 1 << 16


def require_module(obj: Any, arg: str = "model", func: str = "") -> nn.Module:
    """``obj`` if it is a ``torch.nn.Module``, else :class:`WrongTypeError` (a ``UserInputError`` and a
    ``TypeError``) saying what was given; a model *name* gets a hint to build it with ``create_model``."""
    if isinstance(obj, nn.Module):
        return obj
    where = f"{func}(): " if func else ""
    hint = f" (build it first: create_model({obj!r}))" if isinstance(obj, str) else ""
    raise WrongTypeError(f"{where}{arg} must be a torch.nn.Module, got {_describe(obj)}{hint}")


def require_name(obj: Any, arg: str = "name", func: str = "") -> str:
    """``obj`` if it is a non-empty string, else :class:`WrongTypeError` / :class:`UserInputError`."""
    where = f"{func}(): " if func else ""
    if not isinstance(obj, str):
        raise WrongTypeError(f"{where}{arg} must be a model name (str), got {_describe(obj)}")
    if not obj.strip():
        raise UserInputError(f"{where}{arg} is empty; give a model name such as 'shufflenet_v2_x1_0'")
    return obj


def require_path(obj: Any, arg: str = "path", func: str = "") -> str | os.PathLike[str]:
    """``obj`` if it is a ``str`` or ``os.PathLike``, else :class:`WrongTypeError`."""
    if isinstance(obj, (str, os.PathLike)) and str(obj):
        return obj
    where = f"{func}(): " if func else ""
    raise WrongTypeError(f"{where}{arg} must be a file path (str or os.PathLike), got {_describe(obj)}")


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise UserInputError(f"unknown {name} {value!r}; choose from {', '.join(choices)}")
    return value


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise UserInputError(f"{name} must be True or False, got {value!r}")
    return value


def check_int(name: str, value: Any, minimum: int = 1, maximum: int | None = None) -> int:
    """An integer (not a bool, not a float) in ``[minimum, maximum]``."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok and value >= minimum and (maximum is None or value <= maximum):
        return int(value)
    bound = f"an integer >= {minimum}" if maximum is None else f"an integer from {minimum} to {maximum}"
    raise UserInputError(f"{name} must be {bound}, got {value!r}")


def check_int_sequence(name: str, value: Any, minimum: int = 1, maximum: int | None = MAX_CHANNELS) -> tuple[int, ...]:
    """``value`` as a non-empty tuple of integers in ``[minimum, maximum]`` (stage widths, repeats, growth
    rates), else :class:`UserInputError` naming the entry."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise UserInputError(f"{name} must be a non-empty sequence of positive integers, got {value!r}")
    return tuple(check_int(f"{name}[{i}]", v, minimum, maximum) for i, v in enumerate(value))


def check_float(name: str, value: Any, *, above: float | None = None, at_least: float | None = None,
                below: float | None = None) -> float:
    """A finite real number (not a bool); ``above``/``below`` are exclusive bounds, ``at_least`` inclusive."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and (above is None or value > above) and (at_least is None or value >= at_least) and (
            below is None or value < below):
        return float(value)
    bounds = [f"> {above:g}" if above is not None else "", f">= {at_least:g}" if at_least is not None else "",
              f"< {below:g}" if below is not None else ""]
    bound = " and ".join(b for b in bounds if b)
    raise UserInputError(f"{name} must be a finite number{' ' + bound if bound else ''}, got {value!r}")


def check_classifier_args(num_classes: Any, in_chans: Any, drop_rate: Any, small_input: Any) -> None:
    """The keywords every classifier of this package takes (see ``models/_base.py``)."""
    check_int("num_classes", num_classes, 1, MAX_CLASSES)
    check_int("in_chans", in_chans, 1, MAX_CHANNELS)
    check_float("drop_rate", drop_rate, at_least=0.0, below=1.0)
    check_bool("small_input", small_input)


def _describe(obj: Any) -> str:
    text = repr(obj)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(obj).__name__} {text}"
