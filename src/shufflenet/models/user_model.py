"""A user's own model as a spec: ``package.module:callable`` or ``path/to/file.py:callable``.

The callable (a function or class, also ``module:Class.factory``) is called with the given keywords and
must return a :class:`torch.nn.Module`; an ``nn.Module`` instance named by the spec is used as it is. The
current directory is importable while the module is imported and the callable runs (as with
``python -m``), and a file's own directory while the file is executed, so a file may import its neighbours.

Every failure is a one-line :class:`~shufflenet.errors.UserInputError`: a file that does not exist, a module
that does not import (named, with its error's first line), no such attribute, an attribute that is not
callable, a call that fails, and a result that is not an ``nn.Module``.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from torch import nn

from shufflenet.errors import UserInputError, first_line

PREFIXES = ("torchvision:", "timm:")


def is_user_spec(name: str) -> bool:
    """``True`` for ``a.b:c`` or ``path/x.py:c``: a ``:`` that is not a library prefix, and a ``.`` or ``/``."""
    if not isinstance(name, str) or ":" not in name or name.startswith(PREFIXES):
        return False
    return "." in name or "/" in name or os.sep in name


def split_spec(spec: str) -> tuple[str, str]:
    """``"pkg.mod:make"`` -> ``("pkg.mod", "make")``; the last ``:`` separates (a path may hold one)."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr or not all(part.isidentifier() for part in attr.split(".")):
        raise UserInputError(f"malformed model spec {spec!r}: expected package.module:callable or "
                             "path/to/file.py:callable")
    return target, attr


def _is_file(target: str) -> bool:
    return target.endswith(".py") or "/" in target or os.sep in target


@contextmanager
def _on_path(*dirs: str) -> Iterator[None]:
    added = [d for d in dirs if d not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for d in added:
            if d in sys.path:
                sys.path.remove(d)


def _import_file(target: str, spec: str) -> ModuleType:
    path = Path(target).expanduser()
    if not path.is_file():
        raise UserInputError(f"model spec {spec!r}: no such file {target}")
    resolved = path.resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:10]
    name = f"_shufflenet_user_{resolved.stem}_{digest}"
    loader_spec = importlib.util.spec_from_file_location(name, resolved)
    if loader_spec is None or loader_spec.loader is None:
        raise UserInputError(f"model spec {spec!r}: cannot load {target} as Python")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module
    try:
        with _on_path(str(resolved.parent)):
            loader_spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(name, None)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise UserInputError(f"cannot import {target} (model spec {spec!r}): {type(exc).__name__}: "
                             f"{first_line(exc)}") from exc
    return module


def _import_module(target: str, spec: str) -> ModuleType:
    try:
        return importlib.import_module(target)
    except Exception as exc:  # noqa: BLE001 - anything the module raises while importing is the user's
        raise UserInputError(f"cannot import module {target!r} (model spec {spec!r}): {type(exc).__name__}: "
                             f"{first_line(exc)}") from exc


def _attribute(module: ModuleType, attr: str, target: str, spec: str) -> Any:
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UserInputError(f"model spec {spec!r}: {target} has no attribute {attr!r}{hint}")
        obj = getattr(obj, part)
    return obj


def load_user_model(spec: str, kwargs: dict[str, Any] | None = None) -> nn.Module:
    """Build the model a user spec names (see the module docstring), calling it with ``kwargs``."""
    kwargs = dict(kwargs or {})
    target, attr = split_spec(spec)
    cwd = os.getcwd()
    with _on_path(cwd):
        module = _import_file(target, spec) if _is_file(target) else _import_module(target, spec)
        obj = _attribute(module, attr, target, spec)
        if isinstance(obj, nn.Module):
            if kwargs:
                raise UserInputError(f"model spec {spec!r} names a module instance, which takes no keywords "
                                     f"(got {', '.join(sorted(kwargs))})")
            return obj
        if not callable(obj):
            raise UserInputError(f"model spec {spec!r}: {attr} is not callable (it is of type "
                                 f"{type(obj).__name__}); name a function or class that returns an nn.Module")
        try:
            model = obj(**kwargs)
        except Exception as exc:  # noqa: BLE001 - the user's code: one line, the traceback under --debug
            given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
            raise UserInputError(f"model spec {spec!r}: {attr}({given}) failed: {type(exc).__name__}: "
                                 f"{first_line(exc)}") from exc
    if not isinstance(model, nn.Module):
        raise UserInputError(f"model spec {spec!r}: {attr}() returned {type(model).__name__}, not a "
                             "torch.nn.Module")
    return model
