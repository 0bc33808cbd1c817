"""What every subcommand shares: argument types, model construction from flags, output writing."""

from __future__ import annotations

import argparse
import ast
import errno
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from shufflenet._io import output_problem, write_atomic
from shufflenet.errors import ShuffleNetError, UserInputError
from shufflenet.render import FORMATS, format_for_path, render, write_result
from shufflenet.result import Result

# Sanity bounds of sizes given on the command line: far above any real use, low enough that no size
# overflows torch's int64 shapes or a C long downstream.
MAX_SIDE = 1 << 16
MAX_BATCH = 1 << 16
MAX_CHANNELS = 1 << 16
MAX_ELEMENTS = (1 << 31) - 1
MAX_COUNT = 1 << 31


def int_arg(minimum: int | None = 1, maximum: int = MAX_COUNT) -> Callable[[str], int]:
    """An argparse ``type``: an integer in ``[minimum, maximum]``, else a one-line usage error.

    ``minimum=None`` leaves the lower bound to the config the value goes into (its message names the field).
    """

    def parse(text: str) -> int:
        try:
            value = int(text.strip().replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value > maximum or (minimum is not None and value < minimum):
            bound = f"from {minimum} to {maximum}" if minimum is not None else f"<= {maximum}"
            raise argparse.ArgumentTypeError(f"expected an integer {bound}, got {text!r}")
        return value

    parse.__name__ = "integer"  # argparse names the type in its messages
    return parse


def float_arg(minimum: float = 0.0, maximum: float = float("inf"), *, inclusive: bool = True
              ) -> Callable[[str], float]:
    """An argparse ``type``: a finite number ``>= minimum`` (``> minimum`` when not ``inclusive``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        low_ok = value >= minimum if inclusive else value > minimum
        if not (math.isfinite(value) and low_ok and value <= maximum):
            bound = f"{'>=' if inclusive else '>'} {minimum:g}" + (f" and <= {maximum:g}" if maximum < float("inf")
                                                                   else "")
            raise argparse.ArgumentTypeError(f"expected a finite number {bound}, got {text!r}")
        return value

    parse.__name__ = "number"
    return parse


def parse_input_size(text: str) -> tuple[int, ...]:
    """``"1x3x224x224"`` (NxCxHxW), ``"3x224x224"`` (CxHxW, N = 1) or ``"224"`` (1x3x224x224) -> an NCHW
    tuple; a clear one-line error for anything else, including sizes too large to allocate."""
    parts = re.split(r"[x,×]", text.strip().lower())
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise UserInputError(f"malformed --input {text!r}: expected NxCxHxW, CxHxW or one side, "
                             "e.g. 1x3x224x224, 3x224x224 or 224") from None
    if len(dims) == 1:
        dims = (1, 3, dims[0], dims[0])
    elif len(dims) == 3:
        dims = (1, *dims)
    if len(dims) != 4 or any(d <= 0 for d in dims):
        raise UserInputError(f"malformed --input {text!r}: expected positive sizes NxCxHxW, CxHxW or one side, "
                             "e.g. 1x3x224x224, 3x224x224 or 224")
    n, c, h, w = dims
    limits = (("batch N", n, MAX_BATCH), ("channels C", c, MAX_CHANNELS), ("height H", h, MAX_SIDE),
              ("width W", w, MAX_SIDE))
    for what, value, limit in limits:
        if value > limit:
            raise UserInputError(f"--input {text!r}: {what} = {value} is more than {limit}")
    check_elements(dims, f"--input {text!r}")
    return dims


def check_elements(shape: Sequence[int], what: str) -> None:
    """Refuse a tensor shape of more than 2^31 - 1 elements (beyond what one tensor here can sensibly hold)."""
    total = math.prod(shape)
    if total > MAX_ELEMENTS:
        raise UserInputError(f"{what}: {'x'.join(map(str, shape))} is {total:,} elements, more than "
                             f"{MAX_ELEMENTS:,} (2^31 - 1)")


def parse_model_args(items: Sequence[str] | None) -> dict[str, Any]:
    """``["layout=torchvision", "width_mult=0.75"]`` -> keyword arguments (values read as Python literals)."""
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise UserInputError(f"malformed --model-arg {item!r}: expected KEY=VALUE, e.g. layout=torchvision")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            out[key] = value
    return out


_NUM_CLASSES_HELP = {
    "train": "classifier outputs, equal to the dataset's class count (default: that count)",
    "eval": "classifier outputs (default: what the checkpoint stores or its weights show)",
    "predict": "classifier outputs (default: what the checkpoint stores or its weights show)",
}


def add_model_args(p: argparse.ArgumentParser, num_classes_help: str | None = None) -> None:
    command = p.prog.split()[-1] if p.prog else ""
    p.add_argument("--layout", choices=("official", "torchvision"), help="ShuffleNet V2 layout (default: official)")
    p.add_argument("--se", action="store_true", default=None, help="ShuffleNet V2 units with SE (App. Fig. 2b)")
    p.add_argument("--residual", action="store_true", default=None, help="units with residual (App. Fig. 2a)")
    p.add_argument("--extra-dw", action="store_true", default=None, help="ShuffleNet V2* (extra 3x3 DW conv)")
    p.add_argument("--small-input", action="store_true", default=None, help="stem for 28-64 px images")
    p.add_argument("--num-classes", type=int_arg(1, 1 << 24), metavar="N",
                   help=num_classes_help or _NUM_CLASSES_HELP.get(command, "classifier outputs (default: 1000)"))
    p.add_argument("-m", "--model-arg", action="append", metavar="KEY=VALUE",
                   help="any other model keyword, e.g. -m width_mult=0.75 for torchvision:mobilenet_v2")


def build_model(name: str, args: argparse.Namespace) -> nn.Module:
    """Create ``name`` from the model flags of :func:`add_model_args` (``-m in_chans=1`` for grey input)."""
    from shufflenet.models import create_model

    kwargs: dict[str, Any] = dict(layout=args.layout, se=args.se, residual=args.residual,
                                  extra_dw=args.extra_dw, small_input=args.small_input,
                                  num_classes=args.num_classes)
    kwargs.update(parse_model_args(args.model_arg))
    return create_model(name, **kwargs)


def add_mode_args(p: argparse.ArgumentParser, quick_help: str, full_help: str) -> None:
    """``--quick`` (the default) or ``--full``, into ``args.mode``."""
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick", help=quick_help)
    mode.add_argument("--full", dest="mode", action="store_const", const="full", help=full_help)
    p.set_defaults(mode="quick")


def add_output_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="output format (default: from --out's extension: .json, .csv, .md, .html; else table)")
    p.add_argument("--out", metavar="FILE",
                   help="write the result to FILE (atomically) instead of stdout; never over an input file")


def resolve_format(args: argparse.Namespace) -> None:
    """Set ``args.format`` from ``--out``'s extension when ``--format`` is absent; refuse a contradiction
    (``--format csv --out x.json``). Called on every parse (see ``cli/main.py``), so every subcommand gets it."""
    if not hasattr(args, "format"):
        return
    args.format = format_for_path(getattr(args, "out", None), args.format)


def emit_result(result: Result, args: argparse.Namespace, *, table: str | None = None) -> None:
    """The one way a subcommand outputs its result: rendered in ``--format`` on stdout, or written to
    ``--out`` atomically (Markdown with its figures beside it, HTML as a whole page with them embedded,
    JSON with the environment). ``table`` names the table CSV writes (default: the first)."""
    out = getattr(args, "out", None)
    if not out:
        emit(render(result, args.format, table=table), None)
        return
    check_output_path(out, "--out")
    try:
        write_result(result, out, fmt=args.format, table=table)
    except OSError as exc:
        error = UserInputError if exc.errno in _BAD_PATH_ERRNOS else ShuffleNetError
        raise error(f"cannot write --out {out}: {exc.strerror or exc}") from exc


# ------------------------------------------------------------------------------------------------- outputs

# The files the running command reads (set by cli/main.py before the command runs): no output goes there.
_command_inputs: list[str] = []


def set_command_inputs(paths: Sequence[str | os.PathLike[str]]) -> None:
    """Record the input files of the command about to run; :func:`emit` and :func:`check_output_path`
    refuse to write over any of them."""
    _command_inputs[:] = [os.fspath(p) for p in paths if os.path.isfile(p)]


def check_output_path(path: str | os.PathLike[str], flag: str = "--out", kind: str = "text",
                      inputs: Sequence[str | os.PathLike[str]] | None = None) -> Path:
    """Refuse, before any work, an output that cannot or must not be written; return it as a ``Path``.

    ``kind``: ``"text"`` (a result file), ``"png"`` (a plot) or ``"dir"`` (a directory of plots). Refused:
    a path that is (hard links and symlinks included) one of the command's input files; a directory where a
    file is wanted, or a file where a directory is; a place this process cannot create files in; an existing
    file of another kind (a binary file for a text result, a non-PNG for a plot), which is likely precious.
    """
    problem = output_problem(path, "dir" if kind == "dir" else "file")
    if problem:
        raise UserInputError(f"cannot write {flag} {path}: {problem}")
    p = Path(path)
    if kind == "dir":
        return p
    for inp in [*_command_inputs, *(inputs or ())]:
        if _same_file(p, inp):
            raise UserInputError(f"{flag} {path} is an input of this command ({inp}); refusing to write over it")
    if p.is_file():
        head = _head(p)
        if kind == "text" and head is not None and (b"\0" in head or head[:4] in _BINARY_MAGIC):
            raise UserInputError(f"{flag} {path} exists and is not a text file (a checkpoint or an image?); "
                                 "refusing to overwrite it: remove it or choose another name")
        if kind == "png" and head and not head.startswith(b"\x89PNG"):
            raise UserInputError(f"{flag} {path} exists and is not a PNG; refusing to overwrite it: remove it "
                                 "or choose another name")
    return p


_BINARY_MAGIC = {b"PK\x03\x04", b"\x89PNG", b"\x80\x02\x8a\n"}


def _head(path: Path) -> bytes | None:
    try:
        with path.open("rb") as f:
            return f.read(8192)
    except OSError:
        return None


def _same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def emit(text: str, out: str | None) -> None:
    """Print ``text``, or write it to ``out`` atomically (checked first with :func:`check_output_path`)."""
    if not text.endswith("\n"):
        text += "\n"
    if not out:
        sys.stdout.write(text)
        return
    check_output_path(out, "--out")
    try:
        write_atomic(out, text)
    except OSError as exc:
        error = UserInputError if exc.errno in _BAD_PATH_ERRNOS else ShuffleNetError
        raise error(f"cannot write --out {out}: {exc.strerror or exc}") from exc


_BAD_PATH_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EROFS,
                    errno.EEXIST, errno.ENAMETOOLONG}


def progress(iterable: Any, desc: str, quiet: bool = False, total: int | None = None) -> Any:
    """A tqdm progress bar on stderr, shown only when stderr is a terminal and not ``--quiet``."""
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, disable=quiet or not sys.stderr.isatty(), leave=False)


_RST = [
    (re.compile(r"``([^`]+)``"), r"\1"),                                     # ``code`` -> code
    (re.compile(r":(?:class|func|meth|attr|mod|data|exc|obj):`~?([^`]+)`"), r"\1"),  # :class:`X` -> X
    (re.compile(r"\*\*([^*]+)\*\*"), r"\1"),                               # **bold** -> bold
]


def plain_text(text: str) -> str:
    """Help text without reStructuredText markup (docstrings double as ``--help`` descriptions)."""
    for pattern, repl in _RST:
        text = pattern.sub(repl, text)
    return text
