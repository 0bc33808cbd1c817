"""Error types shared by the whole package.

The CLI maps :class:`UserInputError` to a one-line message and exit code 2 (bad input) and any other
:class:`ShuffleNetError` to exit code 1 (a failure while doing valid work).
"""

from __future__ import annotations


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
