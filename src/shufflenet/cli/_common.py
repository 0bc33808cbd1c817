"""What every subcommand shares: argument types, model construction from flags, output writing."""

from __future__ import annotations

import argparse
import ast
import csv
import io
import json
import re
import sys
from collections.abc import Sequence
from typing import Any

from torch import nn

from shufflenet._io import write_atomic
from shufflenet.errors import UserInputError

FORMATS = ("table", "json", "csv")


def parse_input_size(text: str) -> tuple[int, ...]:
    """``"1x3x224x224"`` (or ``"224"`` for 1x3x224x224) -> an NCHW tuple; a clear error otherwise."""
    parts = re.split(r"[x,×]", text.strip().lower())
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise UserInputError(f"malformed --input {text!r}: expected NxCxHxW such as 1x3x224x224") from None
    if len(dims) == 1:
        dims = (1, 3, dims[0], dims[0])
    if len(dims) != 4 or any(d <= 0 for d in dims):
        raise UserInputError(f"malformed --input {text!r}: expected four positive sizes NxCxHxW, e.g. 1x3x224x224")
    return dims


def parse_model_args(items: Sequence[str] | None) -> dict[str, Any]:
    """``["layout=torchvision", "width_mult=0.75"]`` -> keyword arguments (values read as Python literals)."""
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise UserInputError(f"malformed --model-arg {item!r}: expected KEY=VALUE, e.g. layout=torchvision")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layout", choices=("official", "torchvision"), help="ShuffleNet V2 layout")
    p.add_argument("--se", action="store_true", default=None, help="ShuffleNet V2 units with SE (App. Fig. 2b)")
    p.add_argument("--residual", action="store_true", default=None, help="units with residual (App. Fig. 2a)")
    p.add_argument("--extra-dw", action="store_true", default=None, help="ShuffleNet V2* (extra 3x3 DW conv)")
    p.add_argument("--small-input", action="store_true", default=None, help="stem for 28-64 px images")
    p.add_argument("--num-classes", type=int, help="classifier outputs (default 1000)")
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


def add_output_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    p.add_argument("--out", metavar="FILE", help="write the result to FILE (atomically) instead of stdout")


def emit(text: str, out: str | None) -> None:
    if not text.endswith("\n"):
        text += "\n"
    if out:
        write_atomic(out, text)
    else:
        sys.stdout.write(text)


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=str)


def rows_to_csv(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return ""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def rows_to_table(rows: Sequence[dict[str, Any]], title: str = "") -> str:
    """A plain aligned text table; numbers right-aligned."""
    if not rows:
        return title
    cols = list(rows[0])
    cells = [[_fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    numeric = [all(_is_num(r.get(c)) for r in rows) for c in cols]

    def line(vals: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(vals, widths, numeric, strict=True)).rstrip()

    out = [title] if title else []
    out += [line(cols), line(["-" * w for w in widths])]
    out += [line(row) for row in cells]
    return "\n".join(out)


def _is_num(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        v += 0.0  # no "-0.00"
        return f"{v:.2f}" if abs(v) < 1e5 else f"{v:.4g}"
    return str(v)


def progress(iterable: Any, desc: str, quiet: bool = False, total: int | None = None) -> Any:
    """A tqdm progress bar on stderr, shown only when stderr is a terminal and not ``--quiet``."""
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, disable=quiet or not sys.stderr.isatty(), leave=False)
