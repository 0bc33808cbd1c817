"""``shufflenet bench MODEL...``: latency and throughput on this machine, next to FLOPs and MAC.

Also ``--suite paper-fig1`` (Fig. 1 / Table 8), ``--suite units`` (Appendix Table 1b), ``--suite resnets``
(FLOPs vs speed of ResNets, ResNeXts and wide ResNets) and ``--machine``
(this machine's matmul and copy ceilings). Protocol: the paper's (Sec. 2 and the table captions): batch 1
and one thread on CPU by default, as its ARM numbers; batch 8 with cudnn.benchmark on CUDA, as its GPU numbers.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from shufflenet.cli._common import (
    MAX_BATCH,
    add_model_args,
    add_output_args,
    build_model,
    check_elements,
    check_output_path,
    emit_result,
    float_arg,
    int_arg,
    parse_input_size,
    progress,
)
from shufflenet.errors import UserInputError
from shufflenet.measure.options import RUNTIMES

RESULTS_DIR = Path("benchmarks") / "results"


def add_parser(sub: Any) -> None:
    p = sub.add_parser("bench", help="latency and throughput; the paper's Fig. 1 / App. Table 1b suites")
    p.add_argument("models", nargs="*", metavar="MODEL", help="model names, e.g. shufflenet_v2_x1_0")
    p.add_argument("--batch", help="batch sizes, e.g. 1,8 (default: 1 on CPU, 8 on CUDA, as the paper's Sec. 2)")
    p.add_argument("--input", action="append", metavar="SIZE",
                   help="input size 224, CxHxW or NxCxHxW (N is the batch when --batch is absent); "
                        "repeatable")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--threads", type=int,
                   help="intra-op threads (default: 1 on CPU, the paper's ARM setting)")
    p.add_argument("--dtype", default="fp32", help="fp32, fp16 or bf16 (default: fp32)")
    p.add_argument("--channels-last", action="store_true", help="NHWC memory format for model and input")
    p.add_argument("--compile", action="store_true", help="run through torch.compile")
    p.add_argument("--cuda-graphs", action="store_true", help="CUDA only: replay a captured CUDA graph")
    p.add_argument("--no-cudnn-benchmark", action="store_true",
                   help="CUDA only: leave cudnn.benchmark off (the paper had it on)")
    p.add_argument("--min-run-time", type=float_arg(0.0, 3600.0, inclusive=False), metavar="SECONDS",
                   help="seconds of timed blocks per row (default 3, --quick 0.5)")
    p.add_argument("--warmup", type=int_arg(0, 100_000), metavar="N",
                   help="untimed warm-up passes (default 10, --quick 3)")
    p.add_argument("--clock", default="auto", choices=("auto", "wall", "thread_cpu"),
                   help="auto: the thread's CPU time for 1-thread CPU runs, else wall time")
    p.add_argument("--wait-idle", type=float_arg(0.0, 86_400.0), default=0.0, metavar="SECONDS",
                   help="before each row, wait up to SECONDS for other processes to go quiet")
    p.add_argument("--runtime", choices=RUNTIMES, default="torch",
                   help="time in this inference runtime (converted from the PyTorch model; fp32, CPU, wall "
                        "clock): the runtime is part of the platform")
    p.add_argument("--suite", choices=("paper-fig1", "units", "resnets"), help="the paper's comparisons on this machine")
    p.add_argument("--quick", action="store_true", help="shorter timing (fewer warm-ups and repeats)")
    p.add_argument("--machine", action="store_true",
                   help="measure this machine's fp32 matmul and copy ceilings (cached) and print them")
    add_model_args(p)
    add_output_args(p)
    p.set_defaults(func=run)


def _options(args: argparse.Namespace) -> Any:
    from shufflenet.measure.bench import BenchOptions

    kwargs: dict[str, Any] = dict(
        device=args.device, threads=args.threads, dtype=args.dtype,
        memory_format="channels_last" if args.channels_last else "contiguous", compile=args.compile,
        cuda_graphs=args.cuda_graphs, cudnn_benchmark=not args.no_cudnn_benchmark, clock=args.clock,
        wait_idle=args.wait_idle, runtime=args.runtime)
    if args.min_run_time is not None:
        kwargs["min_run_time"] = args.min_run_time
    if args.warmup is not None:
        kwargs["warmup"] = args.warmup
    return BenchOptions.make_quick(**kwargs) if args.quick else BenchOptions(**kwargs)


def _inputs(texts: list[str] | None) -> list[tuple[tuple[int, int, int] | None, int | None]]:
    """Per ``--input``: the per-image (C, H, W) and the batch N when written out (NxCxHxW)."""
    if not texts:
        return [(None, None)]
    out = []
    for text in texts:
        dims = parse_input_size(text)
        explicit_n = len([p for p in re.split(r"[x,×]", text.strip().lower()) if p]) == 4
        out.append(((dims[1], dims[2], dims[3]), dims[0] if explicit_n else None))
    return out


def _specs(args: argparse.Namespace, batches: list[int] | None) -> list[Any]:
    from shufflenet.measure.bench import ModelSpec, default_batches
    from shufflenet.models import get_entry

    specs = []
    inputs = _inputs(args.input)
    for name in args.models:
        default_side = get_entry(name).input_size  # unknown names (torchvision:/timm: too) fail here, before timing
        for chw, n in inputs:
            size = chw or (3, default_side, default_side)
            spec_batches = batches or ([n] if n else default_batches(args.device))
            for b in spec_batches:
                check_elements((b, *size), f"{name} input at batch {b}")
            specs.append(ModelSpec(name=name, build=lambda name=name: build_model(name, args),
                                   image_size=size, batches=tuple(spec_batches)))
    return specs


def _plot_path(args: argparse.Namespace, device: str) -> Path:
    if args.out:
        if Path(args.out).suffix.lower() == ".png":
            raise UserInputError(f"--out {args.out}: the suite's plot goes beside the result as .png; give --out "
                                 "a .json, .csv, .md, .html or .txt name")
        path = Path(args.out).with_suffix(".png")
    else:
        path = RESULTS_DIR / f"{args.suite}-{device}{'-quick' if args.quick else ''}.png"
    return check_output_path(path, "the suite's plot", "png")


def run(args: argparse.Namespace) -> int:
    from shufflenet.measure.machine import load_machine, measure_machine
    from shufflenet.measure.options import parse_batches, resolve_device

    if not (args.models or args.suite or args.machine):
        raise UserInputError("nothing to measure: give MODEL names, --suite paper-fig1|units|resnets, or --machine")
    if args.models and args.suite:
        raise UserInputError("give MODEL names or --suite, not both")
    if args.suite and args.input:
        raise UserInputError(f"--input does not apply to --suite {args.suite} (the suite fixes its inputs)")
    options = _options(args)  # validates device, dtype, threads before anything is built
    device = resolve_device(options.device)
    batches = parse_batches(args.batch) if args.batch else None
    if batches and max(batches) > MAX_BATCH:
        raise UserInputError(f"--batch {args.batch!r}: batch sizes must be <= {MAX_BATCH}")
    machine = measure_machine(device, options.threads, refresh=True) if args.machine \
        else load_machine(device, options.threads)
    if not (args.models or args.suite):
        assert machine is not None  # --machine alone: just measured
        emit_result(machine, args)
        return 0

    def bar(items: Any, desc: str, total: int) -> Any:
        return progress(items, desc, args.quiet, total)

    if args.suite:
        from shufflenet.measure.suites import run_suite

        plot = _plot_path(args, device.type) if args.suite in ("paper-fig1", "resnets") else None
        suite = run_suite(args.suite, options, batches, machine=machine, progress=bar, plot_path=plot)
        emit_result(suite, args)
        return 0

    from shufflenet.measure.bench import run_bench

    result = run_bench(_specs(args, batches), batches or [1], options, machine=machine, progress=bar)
    emit_result(result, args)
    return 0
