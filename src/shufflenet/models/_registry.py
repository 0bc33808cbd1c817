"""The model registry: ``register_model``, ``create_model``, ``list_models``.

Names follow torchvision's spelling (``shufflenet_v2_x1_0``) so users recognise them. A name of the form
``torchvision:NAME`` builds any torchvision classifier, and ``timm:NAME`` (with timm installed) any timm
model, both with random weights and keywords passed through. The registry resolves those names itself
(:func:`get_entry` returns an entry for them too), so no caller needs to know about the prefixes.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import inspect
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from shufflenet.errors import UnknownModelError, UserInputError, first_line
from shufflenet.models._checks import MAX_CLASSES, check_float, check_int, require_name
from shufflenet.models.user_model import is_user_spec, load_user_model

TORCHVISION_PREFIX = "torchvision:"
TIMM_PREFIX = "timm:"


@dataclass(frozen=True)
class PaperRef:
    """What a paper (or the official repository) states for a model, with the source it came from.

    ``mflops`` are multiply-adds in millions (the paper's FLOPs); ``mparams`` millions of weights.
    ``tolerance`` is how far (relative) the built model may be from them: 2% for an architecture built
    exactly from its paper, 3% for one whose widths are reconstructed to a paper's stated complexity, more
    where the paper states a complexity *level* rather than a count (said in ``source``).
    """

    mflops: float | None = None
    mparams: float | None = None
    source: str = ""
    tolerance: float = 0.02


@dataclass(frozen=True)
class ModelEntry:
    """A buildable model: its name, builder, the papers' values and the input side it is measured at.

    ``library`` is ``"shufflenet"`` for this package's models, ``"torchvision"`` or ``"timm"`` for a
    ``torchvision:NAME`` / ``timm:NAME`` name resolved on demand.
    """

    name: str
    builder: Callable[..., nn.Module]
    paper: PaperRef = field(default_factory=PaperRef)
    input_size: int = 224
    library: str = "shufflenet"

    @property
    def external(self) -> bool:
        return self.library != "shufflenet"


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
    """The entry of ``name`` (``torchvision:NAME``, ``timm:NAME`` and a user's ``package.module:callable`` or
    ``path/to/file.py:callable`` included), or :class:`UnknownModelError` listing the closest names."""
    require_name(name, "name", "get_entry")
    if name.startswith(TORCHVISION_PREFIX):
        return _torchvision_entry(name[len(TORCHVISION_PREFIX):])
    if name.startswith(TIMM_PREFIX):
        return _timm_entry(name[len(TIMM_PREFIX):])
    if is_user_spec(name):  # package.module:callable or path/to/file.py:callable
        return ModelEntry(name, lambda **kw: load_user_model(name, kw), PaperRef(source="user"), 224, "user")
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(_unknown_message(name, list(_REGISTRY))) from None


@functools.cache
def _torchvision_entry(name: str) -> ModelEntry:
    import torchvision.models as tvm

    names = _torchvision_names()
    if name not in names:
        raise UnknownModelError(_unknown_message(name, names).replace("unknown model", "unknown torchvision model"))
    side = 224
    try:  # the evaluation crop of its default weights (299 for Inception v3); metadata only, no download
        side = int(tvm.get_model_weights(name).DEFAULT.transforms().crop_size[0])
    except Exception:  # noqa: BLE001 - a model without weights is measured at 224
        pass
    return ModelEntry(f"{TORCHVISION_PREFIX}{name}", lambda **kw: _create_torchvision(name, kw),
                      PaperRef(source="torchvision"), side, "torchvision")


@functools.cache
def _timm_entry(name: str) -> ModelEntry:
    try:
        import timm
    except ImportError:
        raise UserInputError(f"{TIMM_PREFIX}{name} needs timm: pip install timm") from None
    if not timm.is_model(name):  # also takes pretrained tags (``resnet18.a1_in1k``) that list_models omits
        raise UnknownModelError(_unknown_message(name, timm.list_models()).replace("unknown model",
                                                                                  "unknown timm model"))
    side = 224
    try:
        side = int(timm.get_pretrained_cfg(name).input_size[-1])
    except Exception:  # noqa: BLE001 - no pretrained config: the usual 224
        pass
    return ModelEntry(f"{TIMM_PREFIX}{name}", lambda **kw: _create_timm(name, kw), PaperRef(source="timm"),
                      side, "timm")


def _create_timm(name: str, kwargs: dict[str, Any]) -> nn.Module:
    import timm

    full = f"{TIMM_PREFIX}{name}"
    if kwargs.pop("pretrained", False):
        raise UserInputError("timm weights are not downloaded; build the model and call load_weights()")
    for key in ("num_classes", "in_chans"):
        if key in kwargs:
            kwargs[key] = check_int(key, kwargs[key], 1, MAX_CLASSES)
    try:
        return timm.create_model(name, pretrained=False, **kwargs)
    except (TypeError, ValueError, AttributeError, IndexError, KeyError, RuntimeError) as exc:
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise UserInputError(f"{full} cannot be built with {given or 'its defaults'}: {first_line(exc)}") from exc


def _unknown_message(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.5)
    hint = f"; closest: {', '.join(close)}" if close else "; see `shufflenet models` for the list"
    return f"unknown model {name!r}{hint}"


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a model by name. Keywords left as ``None`` are dropped (so CLI defaults do not override).

    Every keyword is checked when the model is built: an unknown keyword, or a value of the wrong type or
    out of range (``layout="tv"``, ``shuffle_impl="6d"``, ``num_classes=0``), raises
    :class:`~shufflenet.errors.UserInputError` naming the model and the keyword.

    ``torchvision:NAME`` builds ``torchvision.models.get_model(NAME, weights=None, **kwargs)``; weights are
    never downloaded here (load them with :func:`shufflenet.load_weights`).
    """
    require_name(name, "name", "create_model")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    entry = get_entry(name)
    if entry.external:
        return entry.builder(**kwargs)
    _check_keywords(name, entry.builder, kwargs)
    try:
        return entry.builder(**kwargs)
    except UserInputError as exc:
        raise type(exc)(f"{name}: {exc}") from exc
    except TypeError as exc:  # e.g. a keyword the builder itself sets: say which model rejected it
        fixed = re.search(r"multiple values for (?:keyword )?argument '(\w+)'", str(exc))
        if fixed:
            raise UserInputError(f"{name}: {fixed.group(1)} is fixed by the model and cannot be given as a "
                                 "keyword") from exc
        raise UserInputError(f"{name}: {exc}") from exc


@functools.cache
def _keywords_of(builder: Callable[..., nn.Module]) -> frozenset[str] | None:
    """The keywords the class a registered builder returns takes; ``None`` when that cannot be worked out
    (the builder's own ``TypeError`` then speaks). Those the builder sets itself fail there, by name."""
    try:
        cls = typing.get_type_hints(builder).get("return")
        params = inspect.signature(cls.__init__).parameters.values()  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - best effort; not knowing is not an error
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return frozenset(p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
                     and p.name != "self")


def _check_keywords(name: str, builder: Callable[..., nn.Module], kwargs: dict[str, Any]) -> None:
    accepted = _keywords_of(builder)
    if accepted is None:
        return
    for key in kwargs:
        if key not in accepted:
            close = difflib.get_close_matches(key, sorted(accepted), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UserInputError(f"{name} has no keyword {key!r}{hint} (keywords: {', '.join(sorted(accepted))})")


def _create_torchvision(name: str, kwargs: dict[str, Any]) -> nn.Module:
    import torchvision.models as tvm

    full = f"{TORCHVISION_PREFIX}{name}"
    if "weights" in kwargs and kwargs["weights"] is not None:
        raise UserInputError("torchvision weights are not downloaded; build the model and call load_weights()")
    kwargs.pop("weights", None)
    in_chans = kwargs.pop("in_chans", 3)
    if in_chans != 3:
        raise UserInputError(f"{full}: in_chans={in_chans!r} is not supported for torchvision models")
    _check_torchvision_keywords(full, tvm.get_model_builder(name), kwargs)
    try:
        return tvm.get_model(name, weights=None, **kwargs)
    except (TypeError, ValueError, AttributeError, IndexError, KeyError, RuntimeError) as exc:
        # torchvision does not check its keywords: a bad value fails somewhere inside the constructor
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise UserInputError(f"{full} cannot be built with {given or 'its defaults'}: {first_line(exc)}") from exc


# Keywords of torchvision classifiers with an obvious valid range (torchvision checks none of them).
_TV_RANGES: dict[str, Callable[[str, Any], Any]] = {
    "num_classes": lambda k, v: check_int(k, v, 1, MAX_CLASSES),
    "width_mult": lambda k, v: check_float(k, v, above=0.0),
    "dropout": lambda k, v: check_float(k, v, at_least=0.0, below=1.0),
}


def _check_torchvision_keywords(full: str, builder: Callable[..., nn.Module], kwargs: dict[str, Any]) -> None:
    """Refuse keyword values torchvision would take and fail on later (or silently misuse): a value of
    another type than the keyword's default, an unknown keyword, an out-of-range count or multiplier."""
    try:
        for key, value in kwargs.items():
            if key in _TV_RANGES:
                _TV_RANGES[key](key, value)
    except UserInputError as exc:
        raise UserInputError(f"{full}: {exc}") from None
    params = _torchvision_params(builder)
    if params is None:
        return
    for key, value in kwargs.items():
        if key not in params:
            close = difflib.get_close_matches(key, sorted(params), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UserInputError(f"{full} has no keyword {key!r}{hint}")
        default = params[key]
        if isinstance(default, bool) and not isinstance(value, bool):
            raise UserInputError(f"{full}: {key} must be True or False, got {value!r}")
        if isinstance(default, (int, float)) and not isinstance(default, bool) and (
                isinstance(value, bool) or not isinstance(value, (int, float))):
            raise UserInputError(f"{full}: {key} must be a number (default {default!r}), got {value!r}")


def _torchvision_params(builder: Callable[..., nn.Module]) -> dict[str, Any] | None:
    """Keyword -> default of a torchvision builder and the class it builds; ``None`` if not knowable."""
    try:
        cls = inspect.signature(builder).return_annotation
        if isinstance(cls, str):
            cls = typing.get_type_hints(builder).get("return")
        own = inspect.signature(builder).parameters.values()
        params = list(inspect.signature(cls.__init__).parameters.values())
    except Exception:  # noqa: BLE001 - best effort
        return None
    if not inspect.isclass(cls) or any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    out = {p.name: p.default for p in params if p.name != "self" and p.kind is not p.VAR_POSITIONAL}
    out.update({p.name: p.default for p in own if p.kind is p.KEYWORD_ONLY and p.name != "weights"})
    return out
