"""``shufflenet`` entry point: parses the subcommand and maps errors to one-line messages.

Exit codes: 0 success, 2 bad input (unknown model, malformed option, impossible shape), 1 failure.
``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from shufflenet.errors import ShuffleNetError, UserInputError

SUBCOMMANDS = ("models", "cost", "bench", "profile", "guidelines", "train", "evaluate", "predict")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    from importlib import import_module

    parser = _Parser(prog="shufflenet", description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in SUBCOMMANDS:
        import_module(f"shufflenet.cli.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int) else 2
    except KeyboardInterrupt:
        sys.stderr.write("shufflenet: interrupted\n")
        return 130
    except UserInputError as exc:
        if debug:
            raise
        sys.stderr.write(f"shufflenet: error: {_one_line(exc)}\n")
        return 2
    except ShuffleNetError as exc:
        if debug:
            raise
        sys.stderr.write(f"shufflenet: error: {_one_line(exc)}\n")
        return 1
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence: one line, not a traceback
        if debug:
            raise
        sys.stderr.write(f"shufflenet: failed: {type(exc).__name__}: {_one_line(exc)} (rerun with --debug)\n")
        return 1


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
