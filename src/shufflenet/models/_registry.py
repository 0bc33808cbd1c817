"""The model registry: ``register_model``, ``create_model``, ``list_models``.

Names follow torchvision's spelling (``shufflenet_v2_x1_0``) so users recognise them. A name of the form
``torchvision:NAME`` builds any torchvision classifier (random weights; keywords pass through).
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from shufflenet.errors import UnknownModelError, UserInputError

TORCHVISION_PREFIX = "torchvision:"


@dataclass(frozen=True)
class PaperRef:
    """What a paper (or the official repository) states for a model, with the source it came from.

    ``mflops`` are multiply-adds in millions (the paper's FLOPs); ``mparams`` millions of weights.
    """

    mflops: float | None = None
    mparams: float | None = None
    source: str = ""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    paper: PaperRef = field(default_factory=PaperRef)
    input_size: int = 224


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str, paper: PaperRef | None = None, input_size: int = 224
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a builder under ``name``; registering a name twice is an error."""

    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise RuntimeError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelEntry(name, builder, paper or PaperRef(), input_size)
        return builder

    return wrap


def _torchvision_names() -> list[str]:
    import torchvision.models as tvm

    return sorted(tvm.list_models(module=tvm))


def list_models(pattern: str = "*", include_torchvision: bool = False) -> list[str]:
    """Registered model names matching a shell-style ``pattern``, sorted.

    With ``include_torchvision=True`` torchvision's classifiers are listed too, as ``torchvision:NAME``.
    """
    names = sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))
    if include_torchvision:
        names += [f"{TORCHVISION_PREFIX}{n}" for n in _torchvision_names()
                  if fnmatch.fnmatch(f"{TORCHVISION_PREFIX}{n}", pattern) or fnmatch.fnmatch(n, pattern)]
    return names


def get_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``, or :class:`UnknownModelError` listing the closest names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(_unknown_message(name, list(_REGISTRY))) from None


def _unknown_message(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.5)
    hint = f"; closest: {', '.join(close)}" if close else "; see `shufflenet models` for the list"
    return f"unknown model {name!r}{hint}"


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a model by name. Keywords left as ``None`` are dropped (so CLI defaults do not override).

    ``torchvision:NAME`` builds ``torchvision.models.get_model(NAME, weights=None, **kwargs)``; weights are
    never downloaded here (load them with :func:`shufflenet.load_weights`).
    """
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if name.startswith(TORCHVISION_PREFIX):
        return _create_torchvision(name[len(TORCHVISION_PREFIX):], kwargs)
    builder = get_entry(name).builder
    try:
        return builder(**kwargs)
    except TypeError as exc:  # an unexpected keyword: say which model rejected it
        raise UserInputError(f"{name}: {exc}") from exc


def _create_torchvision(name: str, kwargs: dict[str, Any]) -> nn.Module:
    import torchvision.models as tvm

    names = _torchvision_names()
    if name not in names:
        raise UnknownModelError(_unknown_message(name, names).replace("unknown model", "unknown torchvision model"))
    if "weights" in kwargs and kwargs["weights"] is not None:
        raise UserInputError("torchvision weights are not downloaded; build the model and call load_weights()")
    kwargs.pop("weights", None)
    in_chans = kwargs.pop("in_chans", 3)
    try:
        model = tvm.get_model(name, weights=None, **kwargs)
    except TypeError as exc:
        raise UserInputError(f"torchvision:{name}: {exc}") from exc
    if in_chans != 3:
        raise UserInputError(f"torchvision:{name}: in_chans={in_chans} is not supported for torchvision models")
    return model
