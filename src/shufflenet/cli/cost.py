"""``shufflenet cost MODEL``: FLOPs and memory access cost (MAC) per layer, op type or stage."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from shufflenet.cli._common import add_model_args, add_output_args, build_model, emit_result, parse_input_size
from shufflenet.errors import cannot_run


def add_parser(sub: Any) -> None:
    p = sub.add_parser("cost", help="count FLOPs and MAC of a model (any registered or torchvision:NAME)")
    p.add_argument("model", help="model name, e.g. shufflenet_v2_x1_0 or torchvision:mobilenet_v2")
    p.add_argument("--input", default="1x3x224x224", metavar="SIZE",
                   help="input size NxCxHxW, CxHxW or one side, e.g. 224 (default: 1x3x224x224)")
    p.add_argument("--mode", choices=("paper", "deploy"), default="paper",
                   help="paper: every op as written; deploy: BN folded into conv, ReLU fused")
    p.add_argument("--by", choices=("layer", "op", "stage"), default="layer", help="grouping of the rows")
    p.add_argument("--elementwise-flops", action="store_true",
                   help="also count BN/activation/add/pooling FLOPs (not the paper's convention)")
    add_model_args(p)
    add_output_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from shufflenet.cost import count_cost

    size = parse_input_size(args.input)
    model = build_model(args.model, args)
    try:
        report = count_cost(model, size, mode=args.mode, count_elementwise_flops=args.elementwise_flops)
    except RuntimeError as exc:  # e.g. a torchvision model given the wrong number of channels
        raise cannot_run(exc, size) from exc
    report.model_name = args.model
    if not report.complete and args.format in ("json", "csv"):
        sys.stderr.write(f"shufflenet: {report.incomplete_warning()}\n")
    emit_result(report.view(args.by), args)
    return 0
