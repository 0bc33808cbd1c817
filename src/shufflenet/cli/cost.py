"""``shufflenet cost MODEL``: FLOPs and memory access cost (MAC) per layer, op type or stage."""

from __future__ import annotations

import argparse
from typing import Any

from shufflenet.cli._common import (
    add_model_args,
    add_output_args,
    build_model,
    emit,
    parse_input_size,
    to_json,
)
from shufflenet.errors import UserInputError


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
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserInputError(f"{args.model} cannot run on input {args.input}: {first}") from exc
    report.model_name = args.model
    if args.format == "json":
        text = to_json(report.to_dict())
    elif args.format == "csv":
        text = report.to_csv(by=args.by)
    else:
        text = report.to_table(by=args.by)
    emit(text, args.out)
    return 0
