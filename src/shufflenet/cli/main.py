"""``shufflenet`` entry point: parses the subcommand and maps errors to one-line messages.

Exit codes: 0 success, 2 bad input (unknown model, malformed option, impossible shape), 1 failure.
``--debug`` (before or after the subcommand) also prints the traceback; the exit code stays the same.

Every parse resolves ``--format`` from ``--out``'s extension (:func:`~shufflenet.cli._common.resolve_format`);
before a command runs, its output paths are checked against its input files and the file system, so a
command never writes its result over one of its inputs and never finds out only after its work that it
cannot write.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import textwrap
import traceback
from collections.abc import Sequence
from typing import Any

from shufflenet.cli._common import check_output_path, plain_text, resolve_format, set_command_inputs
from shufflenet.errors import ShuffleNetError, UserInputError, first_line

SUBCOMMANDS = ("models", "cost", "bench", "profile", "guidelines", "audit", "reuse", "latency", "train", "evaluate", "predict", "export", "report")

DESCRIPTION = ("ShuffleNet V2 and V1 built exactly to the papers, and the ShuffleNet V2 paper's method for "
               "any PyTorch model: FLOPs and memory access cost (MAC), measured speed on this machine, "
               "the G1-G4 guideline experiments, training, evaluation and prediction, and the paper's whole "
               "evaluation run on this machine as one report.")
EPILOG = """examples:
  shufflenet report --quick                          # the paper's evaluation on this machine: HTML/MD/JSON
  shufflenet models                                  # the registry next to the papers' FLOPs (Table 5)
  shufflenet cost shufflenet_v2_x1_0 --by stage      # FLOPs and MAC per stage
  shufflenet bench shufflenet_v2_x1_0 mobilenet_v1_x1_0 --out bench.json
  shufflenet guidelines g1 --quick                   # the paper's Table 1 experiment on this machine
  shufflenet train shufflenet_v2_x0_5 --epochs 30    # Fashion-MNIST
  shufflenet eval runs/train/RUN/model.pt            # top-1/top-5 and a confusion matrix
  shufflenet export shufflenet_v2_x1_0 --format onnx --optimize   # checked in ONNX Runtime
  shufflenet COMMAND --help                          # the options of one command

--format is inferred from --out's extension (.json, .csv; anything else: a text table). Errors are one
line on stderr, exit code 2 for bad input and 1 for failures; --debug also prints the traceback."""

# Input files a subcommand may read (attribute names of its parsed arguments) and its output paths.
INPUT_ARGS = ("checkpoint", "images", "config", "classes", "resume", "init_from", "weights")
OUTPUT_ARGS = (("out", "--out", "text"), ("plot", "--plot", "png"), ("plot_dir", "--plot-dir", "dir"),
               ("confusion_png", "--confusion", "png"), ("summary", "--summary", "text"))
# Subcommands whose options default to a config dataclass's fields (default=SUPPRESS in the parser).
CONFIG_DEFAULTS = {"train": "TrainConfig", "eval": "EvalConfig"}


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help without RST markup, with defaults shown where the help does not already say them; paragraphs
    are re-wrapped to the terminal, indented lines (examples) kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out = []
        for para in re.split(r"\n\s*\n", plain_text(text).strip("\n")):
            lines = para.splitlines()
            if any(line.startswith((" ", "\t")) for line in lines[1:]) or para.startswith(" "):
                out.append("\n".join(indent + line for line in lines))
            else:
                out.append(textwrap.fill(" ".join(line.strip() for line in lines), width,
                                         initial_indent=indent, subsequent_indent=indent))
        return "\n\n".join(out)

    def _expand_help(self, action: argparse.Action) -> str:
        return plain_text(super()._expand_help(action))

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if ("default" in text.lower() or action.nargs == 0 or default in (None, argparse.SUPPRESS)
                or isinstance(default, bool) or not (action.option_strings or action.nargs in ("?", "*"))):
            return action.help
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2, formats help with
    :class:`_HelpFormatter`, and resolves ``--format`` from ``--out`` on every parse."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["formatter_class"] = _HelpFormatter  # for every subparser too, whatever it asked for
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(2)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:  # type: ignore[override]
        ns, rest = super().parse_known_args(args, namespace)
        resolve_format(ns)
        return ns, rest


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("shufflenet")
    except Exception:  # noqa: BLE001 - not installed (a source checkout on sys.path)
        # The package root is always imported before this module, so no import (and no cycle) is needed.
        return str(getattr(sys.modules.get("shufflenet"), "__version__", "unknown"))


def _add_global_flags(p: argparse.ArgumentParser, default: Any) -> None:
    p.add_argument("--debug", action="store_true", default=default,
                   help="on an error, also print the traceback (the exit code stays 2 or 1)")
    p.add_argument("--quiet", action="store_true", default=default, help="no progress bars")


def _document_config_defaults(p: argparse.ArgumentParser, config_name: str) -> None:
    """Say each SUPPRESS-default option's real default (a field of the config dataclass) in its help."""
    from dataclasses import MISSING, fields

    import shufflenet.train.config as config

    defaults = {f.name: f.default for f in fields(getattr(config, config_name)) if f.default is not MISSING}
    for action in p._actions:
        value = defaults.get(action.dest)
        if (action.default is not argparse.SUPPRESS or action.nargs == 0 or value is None
                or isinstance(value, bool) or action.help == argparse.SUPPRESS
                or "default" in (action.help or "").lower()):
            continue
        shown = str(value).replace("%", "%%")
        action.help = f"{action.help} (default: {shown})" if action.help else f"default: {shown}"


def build_parser() -> argparse.ArgumentParser:
    from importlib import import_module

    parser = _Parser(prog="shufflenet", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"shufflenet {_version()}")
    _add_global_flags(parser, False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in SUBCOMMANDS:
        import_module(f"shufflenet.cli.{name}").add_parser(sub)
    seen: set[int] = set()
    for name, p in sub.choices.items():
        if id(p) in seen:
            continue
        seen.add(id(p))
        # SUPPRESS: given after the subcommand they set the flag; absent, the top-level value stays.
        if "--debug" not in p._option_string_actions:
            _add_global_flags(p, argparse.SUPPRESS)
        if name in CONFIG_DEFAULTS:
            _document_config_defaults(p, CONFIG_DEFAULTS[name])
        for action in p._actions:  # argparse shows nothing for an option without help, not even its default
            if action.help is None and action.nargs != 0 and action.option_strings and not isinstance(
                    action.default, bool) and action.default not in (None, argparse.SUPPRESS):
                action.help = "default: %(default)s"
    return parser


def _paths(value: Any) -> list[str]:
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)]
    if isinstance(value, (list, tuple)):
        return [os.fspath(v) for v in value if isinstance(v, (str, os.PathLike))]
    return []


def prepare_outputs(args: argparse.Namespace) -> None:
    """Record the command's input files and check its output paths before it does any work."""
    inputs = [p for name in INPUT_ARGS for p in _paths(getattr(args, name, None)) if os.path.isfile(p)]
    set_command_inputs(inputs)
    seen: dict[str, str] = {}
    for attr, flag, kind in OUTPUT_ARGS:
        value = getattr(args, attr, None)
        if not isinstance(value, str) or not value or (attr == "confusion_png" and value == "auto"):
            continue
        check_output_path(value, flag, kind)
        key = os.path.realpath(value)
        if key in seen:
            raise UserInputError(f"{seen[key]} and {flag} name the same file {value}; give each its own")
        seen[key] = flag


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    set_command_inputs([])
    try:
        args = build_parser().parse_args(argv)
        args.argv = ["shufflenet", *argv]  # the exact command, for results that record it (the report)
        debug = bool(getattr(args, "debug", debug))
        prepare_outputs(args)
        return int(args.func(args) or 0)
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int) else 2
    except KeyboardInterrupt:
        sys.stderr.write("shufflenet: interrupted\n")
        return 130
    except UserInputError as exc:
        return _report(exc, f"error: {first_line(exc)}", 2, debug)
    except ShuffleNetError as exc:
        return _report(exc, f"error: {first_line(exc)}", 1, debug)
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence: one line, not a traceback
        hint = "" if debug else " (rerun with --debug)"
        return _report(exc, f"failed: {type(exc).__name__}: {first_line(exc)}{hint}", 1, debug)
    finally:
        set_command_inputs([])


def _report(exc: BaseException, message: str, code: int, debug: bool) -> int:
    if debug:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    sys.stderr.write(f"shufflenet: {message}\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
