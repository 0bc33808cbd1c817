"""``shufflenet latency calibrate|predict``: predict a model's latency on this machine without timing it.

``calibrate`` times this machine's kernels (convolutions of every kind, normalisation, activations,
element-wise ops, pooling, concat, copies, views) and the Python cost of a module call, and writes them as
one JSON calibration file, atomically. The file is ``--out FILE`` when given (an existing file is refused
unless ``--force``), otherwise the cache ``$SHUFFLENET_CACHE/latency/calibration-cpu-<N>t.json`` (default
``~/.cache/shufflenet/latency/...``), which a newer calibration replaces. The per-op-type summary (kernels
timed, how well each op type's model predicts its own kernels held out) goes to stdout, rendered in
``--format``; progress and the final ``calibration written to PATH`` line go to stderr.

``predict MODEL`` traces one forward pass (no timing) and sums each kernel's predicted time from the
calibration: the summary, the time per op type and per module, rendered in ``--format`` on stdout or
written to ``--out`` (CSV writes the summary row). A calibration made on another CPU, at another thread
count or with another torch version still predicts, with a one-line warning on stderr naming what differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from shufflenet.cli._common import (
    add_mode_args,
    add_model_args,
    add_output_args,
    build_model,
    check_output_path,
    emit,
    emit_result,
    int_arg,
    parse_input_size,
    progress,
)
from shufflenet.errors import ShuffleNetError, UserInputError
from shufflenet.render import FORMATS, render

MAX_THREADS = 1024

EPILOG = """examples:
  shufflenet latency calibrate                        # about 30 s, 1 thread, into the cache
  shufflenet latency calibrate --full --threads 4     # 4x the kernels (about 4 minutes here), at 4 threads
  shufflenet latency predict shufflenet_v2_x1_0       # uses the cached 1-thread calibration
  shufflenet latency predict torchvision:mobilenet_v2 --input 160 --out mnv2.json
  shufflenet latency predict mypkg.nets:build -m width=64 --calibration cal.json"""

CALIBRATE_EPILOG = """examples:
  shufflenet latency calibrate                        # quick, 1 thread, into the cache (replacing it)
  shufflenet latency calibrate --full --threads 2
  shufflenet latency calibrate --out cal.json         # a file of your own (refused if it exists)
  shufflenet latency calibrate --out cal.json --force # replace it"""

PREDICT_EPILOG = """examples:
  shufflenet latency predict shufflenet_v2_x1_0
  shufflenet latency predict shufflenet_v2_x0_5 -m layout=torchvision --format json
  shufflenet latency predict path/to/net.py:make --input 1x3x64x64 --calibration cal.json
  shufflenet latency predict timm:mobilenetv3_small_100 --threads 2 --out pred.md"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("latency", help="predict a model's latency from timed kernels (calibrate once, then "
                                       "predict any model without timing it)",
                       description=__doc__, epilog=EPILOG)
    actions = p.add_subparsers(dest="latency_command", metavar="ACTION")
    actions.required = True

    c = actions.add_parser("calibrate", help="time this machine's kernels and write the calibration file",
                           description=(__doc__ or "").split("\n\n")[1], epilog=CALIBRATE_EPILOG)
    add_mode_args(c, "about 2700 kernels, about 30 s on one thread (the default)",
                  "about 10 800 kernels with more repeats each (about 4 minutes on one thread)")
    c.add_argument("--threads", type=int_arg(1, MAX_THREADS), default=1, metavar="N",
                   help="intra-op threads the kernels run with (1 = the paper's one-thread ARM setting)")
    c.add_argument("--seed", type=int_arg(0), default=0, metavar="N",
                   help="seed of the kernel shapes and of the order they are timed in")
    c.add_argument("--out", dest="calibration_out", metavar="FILE", default=None,
                   help="write the calibration (JSON) to FILE, atomically (default: the cache, "
                        "$SHUFFLENET_CACHE/latency/calibration-cpu-<N>t.json or "
                        "~/.cache/shufflenet/latency/calibration-cpu-<N>t.json)")
    c.add_argument("--force", action="store_true", help="replace an existing --out FILE")
    c.add_argument("--format", choices=FORMATS, default="table",
                   help="how the per-op-type summary printed on stdout is rendered (json: the whole "
                        "calibration, as in the file)")
    _add_global_flags(c)
    c.set_defaults(func=run_calibrate)

    q = actions.add_parser("predict", help="predict a model's latency from a calibration (no timing)",
                           description=(__doc__ or "").split("\n\n")[2], epilog=PREDICT_EPILOG)
    q.add_argument("model", help="a registered name, torchvision:NAME, timm:NAME, package.module:callable or "
                                 "path/to/file.py:callable (keywords with -m KEY=VALUE)")
    q.add_argument("--input", default=None, metavar="SIZE",
                   help="input size NxCxHxW, CxHxW or one side (default: the model's usual side, 224 for most)")
    q.add_argument("--calibration", metavar="FILE", default=None,
                   help="the calibration to predict with (default: this machine's cached one at --threads, "
                        "written by `shufflenet latency calibrate`)")
    q.add_argument("--threads", type=int_arg(1, MAX_THREADS), default=None, metavar="N",
                   help="the thread count to predict for: selects the cached calibration of N threads "
                        "(default: 1), and with --calibration warns when that file was made at another count")
    add_model_args(q)
    add_output_args(q)
    _add_global_flags(q)
    q.set_defaults(func=run_predict)


def _add_global_flags(p: argparse.ArgumentParser) -> None:
    """``--debug`` and ``--quiet`` after the action too (``shufflenet latency calibrate --quiet``); absent,
    the top-level values stay (``argparse.SUPPRESS``)."""
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="on an error, also print the traceback (the exit code stays 2 or 1)")
    p.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars")


def _threads_flag(threads: int) -> str:
    return f" --threads {threads}" if threads != 1 else ""


# ------------------------------------------------------------------------------------------------ calibrate


def _older(path: Path) -> str:
    """A few words on the calibration file about to be replaced."""
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        return f"{d['mode']}, created {d['created']}" if isinstance(d, dict) and d.get("created") else "undated"
    except (OSError, ValueError, KeyError, TypeError):
        return "unreadable"


def run_calibrate(args: argparse.Namespace) -> int:
    from shufflenet.audit.latency.calibration import calibrate, default_path

    threads = args.threads
    explicit = args.calibration_out
    # Every check before any timing: a calibration takes minutes.
    if explicit:
        target = check_output_path(explicit, "--out")
        if target.exists() and not args.force:
            raise UserInputError(f"--out {explicit} exists: add --force to replace it, or choose another file")
    else:
        target = default_path(threads)
        try:
            check_output_path(target, "the calibration cache")
        except UserInputError as exc:
            raise UserInputError(f"{exc}: set SHUFFLENET_CACHE to a writable directory or give --out FILE") from None
    older = _older(target) if target.is_file() else None
    quiet = bool(getattr(args, "quiet", False))
    bar: list[Any] = []

    def step(done: int, total: int) -> None:
        if not bar:
            bar.append(progress(None, f"calibrating ({args.mode}, {threads} thread(s))", quiet, total))
        bar[0].update(done - bar[0].n)

    try:
        cal = calibrate(args.mode, threads, seed=args.seed, progress=step)
    finally:
        if bar:
            bar[0].close()
    try:
        cal.save(target)
    except OSError as exc:
        raise ShuffleNetError(f"cannot write the calibration {target}: {exc.strerror or exc}") from exc
    emit(render(cal, args.format), None)
    if older is not None:
        sys.stderr.write(f"replaced an older calibration ({older}) at {target}\n")
    sys.stderr.write(f"calibration written to {target} ({len(cal.samples)} kernels, {cal.seconds:.1f} s)\n")
    return 0


# -------------------------------------------------------------------------------------------------- predict


def _calibration_path(args: argparse.Namespace) -> Path:
    """The calibration file to read; a missing one is a one-line error saying how to make it."""
    from shufflenet.audit.latency.calibration import default_path

    threads = args.threads if args.threads is not None else 1
    if args.calibration:
        path = Path(args.calibration)
        if not path.exists():
            raise UserInputError(f"no latency calibration at {path}: make one with `shufflenet latency calibrate"
                                 f"{_threads_flag(threads)} --out {path}`")
        return path
    path = default_path(threads)
    if not path.exists():
        raise UserInputError(f"no latency calibration of this machine at {threads} thread(s) ({path}): run "
                             f"`shufflenet latency calibrate{_threads_flag(threads)}` first (about 30 s)")
    return path


def run_predict(args: argparse.Namespace) -> int:
    from shufflenet.audit.latency.calibration import load_calibration
    from shufflenet.audit.latency.kernels import trace_kernels
    from shufflenet.audit.latency.predict import FALLBACK_KIND, cached_ceilings, predict_trace
    from shufflenet.models import get_entry

    # Cheap checks first: a bad name, size, output or calibration fails before the model is built.
    if args.input is None:
        side = get_entry(args.model).input_size  # an unknown name fails here
        size: tuple[int, ...] = (1, 3, side, side)
    else:
        size = parse_input_size(args.input)
    path = _calibration_path(args)
    if args.out:
        check_output_path(args.out, "--out", inputs=[path])  # never over the calibration read
    cal = load_calibration(path)
    model = build_model(args.model, args)
    trace = trace_kernels(model, size)
    untimed = {k.kind for k in trace.kernels if k.kind != "view"} - set(cal.models)
    if untimed and FALLBACK_KIND not in cal.models:
        raise UserInputError(f"{path} is too small a calibration: it has no model of {', '.join(sorted(untimed))} "
                             f"nor of {FALLBACK_KIND} to price them; run `shufflenet latency calibrate"
                             f"{_threads_flag(cal.threads)}` again")
    differences = cal.differences(threads=args.threads if args.threads is not None else cal.threads)
    prediction = predict_trace(trace, cal, name=args.model, differences=differences,
                               ceilings=cached_ceilings(cal.threads))
    if differences:
        sys.stderr.write(f"shufflenet: warning: calibration {path} is of another platform "
                         f"({'; '.join(differences)}): predicting for that platform at {cal.threads} "
                         "thread(s); kernel speeds here may differ\n")
    emit_result(prediction, args)
    return 0
