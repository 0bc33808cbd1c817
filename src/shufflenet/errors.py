"""Error types shared by the whole package.

The CLI maps :class:`UserInputError` to a one-line message and exit code 2 (bad input) and any other
:class:`ShuffleNetError` to exit code 1 (a failure while doing valid work).
"""

from __future__ import annotations

from collections.abc import Sequence


class ShuffleNetError(Exception):
    """Base class of every error this package raises on purpose."""


class UserInputError(ShuffleNetError, ValueError):
    """The caller asked for something invalid: unknown name, bad shape, bad option value."""


class UnknownModelError(UserInputError, KeyError):
    """A model name is not in the registry."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class WeightsError(ShuffleNetError):
    """A checkpoint cannot be read or does not fit the model."""


class CheckpointNotFoundError(WeightsError, UserInputError):
    """The checkpoint path names no file: bad input (exit code 2), still a :class:`WeightsError`."""


class InvalidCheckpointError(WeightsError, UserInputError):
    """The file given as a checkpoint is not one: empty, a directory, truncated or corrupted, or a pickle that
    would run code when loaded. Bad input (exit code 2), still a :class:`WeightsError`."""


class WrongTypeError(UserInputError, TypeError):
    """A function of the API got an argument of the wrong type (a model name where a model is expected, ...).

    A :class:`TypeError` too, so code written against plain Python conventions still catches it.
    """


class WeightsMismatchError(WeightsError, UserInputError):
    """A readable checkpoint does not fit the model it is loaded into (keys or shapes): bad input, since the
    caller chose the pair (often the wrong ``layout``); exit code 2, still a :class:`WeightsError`."""


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, or its type name when the message is empty: the detail a
    one-line error message quotes from an exception raised by torch or another library."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def cannot_run(exc: BaseException, input_size: Sequence[int]) -> UserInputError:
    """The one-line error for a model that fails on an input (wrong channel count, a map smaller than its
    strides): raise it ``from exc``."""
    return UserInputError(f"the model cannot run on input {'x'.join(map(str, input_size))}: {first_line(exc)}")


class ClassNamesMismatchError(UserInputError):
    """The class names given for a model's outputs are not one per output (too few or too many).

    ``what`` names where the names came from in the message (``class_names``, a CLI flag and its file).
    """

    def __init__(self, given: int, outputs: int, what: str = "class_names") -> None:
        super().__init__(f"{what} has {given} names but the model has {outputs} outputs; give one name per output")
        self.given, self.outputs = given, outputs
