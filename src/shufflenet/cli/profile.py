"""``shufflenet profile MODEL``: where the forward time goes — per layer, per op and per Fig. 2 op type.

Measured time next to FLOPs (multiply-adds) and MAC (paper Sec. 2), achieved GMAdd/s and GB/s, a
roofline verdict against this machine's ceilings, and the paper's Fig. 2 buckets (Conv dense/group/
depthwise, Elemwise, Data, Shuffle, Pooling, FC, Other) as a table and, with ``--plot``, as a PNG.
"""

from __future__ import annotations

import argparse
from typing import Any

from shufflenet.cli._common import (
    add_model_args,
    add_output_args,
    build_model,
    emit_result,
    int_arg,
    parse_input_size,
    progress,
)
from shufflenet.errors import UserInputError

BY = ("op-type", "layer", "op")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("profile", help="time per layer / op / Fig. 2 op type, next to FLOPs and MAC")
    p.add_argument("model", help="model name, e.g. shufflenet_v1_g3_x1_0 or torchvision:mobilenet_v2")
    p.add_argument("--input", default="1x3x224x224", metavar="SIZE",
                   help="input size NxCxHxW, CxHxW or one side, e.g. 224 (default: 1x3x224x224)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--threads", type=int, help="intra-op threads (default: 1 on CPU, the paper's ARM setting)")
    p.add_argument("--dtype", default="fp32", help="fp32, fp16 or bf16 (default: fp32)")
    p.add_argument("--by", choices=BY, default="op-type",
                   help="rows: op-type (Fig. 2 buckets, default), layer (module path) or op (each aten op)")
    p.add_argument("--top", type=int_arg(1), metavar="K", help="only the K slowest layers/ops")
    p.add_argument("--repeats", type=int_arg(1, 100_000), default=60, metavar="N",
                   help="profiled forward passes (default: 60)")
    p.add_argument("--warmup", type=int_arg(0, 100_000), default=5, metavar="N",
                   help="untimed forward passes first (default: 5)")
    p.add_argument("--ceilings", choices=("auto", "cached", "none"), default="auto",
                   help="machine ceilings for the compute/memory-bound verdict: auto = cached, else measured "
                        "once (a few seconds) and cached; cached = only if cached; none = skip")
    p.add_argument("--no-total", action="store_true",
                   help="skip the independent latency measurement (no coverage ratio)")
    p.add_argument("--plot", metavar="PNG", help="also write the op-type breakdown chart to PNG")
    add_model_args(p)
    add_output_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from shufflenet.measure.options import resolve_device, resolve_dtype, resolve_threads
    from shufflenet.measure.profile import profile, stage_count

    # Cheap checks first: a bad option fails in milliseconds, before any model is built.
    size = parse_input_size(args.input)
    dev = resolve_device(args.device)
    resolve_threads(args.threads, dev)
    dtype = resolve_dtype(args.dtype)
    if args.plot and not args.plot.lower().endswith(".png"):
        raise UserInputError(f"--plot {args.plot!r}: the chart is written as PNG; give a .png file name")
    model = build_model(args.model, args)
    bar = progress(None, f"profile {args.model}", args.quiet, total=stage_count(not args.no_total, args.repeats))

    def on_stage(stage: str) -> None:
        bar.set_postfix_str(stage)
        bar.update(1)

    try:
        report = profile(model, size, device=dev, threads=args.threads, dtype=dtype, repeats=args.repeats,
                         warmup=args.warmup, ceilings=args.ceilings, measure_total=not args.no_total,
                         name=args.model, on_stage=on_stage)
    finally:
        bar.close()
    if args.plot:
        from shufflenet.measure.plots import plot_breakdown

        plot_breakdown(report, args.plot)
    emit_result(report.view(args.by, args.top), args)
    return 0
