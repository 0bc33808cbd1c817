"""``shufflenet reuse MODEL``: feature reuse (the ShuffleNet V2 paper, Sec. 4, Fig. 4).

Counts, by tracing one forward pass, how many channels of block i reach block j unchanged (through split,
concat, shuffle, slicing, views and copies only) for every pair i < j; the paper's ShuffleNet V2 gives
c * 0.5^j. With ``--weights``, also the mean absolute weight block j's first conv puts on block i's channels
(as DenseNet's Fig. 5). ``--plot`` writes the Fig. 4-like heatmap.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from shufflenet._io import write_atomic
from shufflenet.cli._common import (
    add_model_args,
    add_output_args,
    build_model,
    check_output_path,
    emit_result,
    parse_input_size,
)
from shufflenet.errors import UserInputError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("reuse", help="feature reuse (Fig. 4): channels of block i reaching block j unchanged",
                       description=__doc__)
    p.add_argument("model", help="model name, e.g. shufflenet_v2_x1_0 or torchvision:densenet121")
    p.add_argument("--input", default="1x3x224x224", metavar="SIZE",
                   help="input size NxCxHxW, CxHxW or one side, e.g. 224 (default: 1x3x224x224)")
    p.add_argument("--weights", metavar="PATH",
                   help="load this checkpoint and add the learned view: mean |w| of each block's first conv "
                        "by the block its input channels came from")
    p.add_argument("--blocks", metavar="CLASSNAMES",
                   help="comma-separated block class names, e.g. BasicBlock,Bottleneck (default: known "
                        "units, else the children of the model's nn.Sequential stages)")
    p.add_argument("--log", action="store_true", help="logarithmic colour scale in the heatmaps")
    p.add_argument("--plot", metavar="PNG",
                   help="write the heatmap to PNG (with --weights also the learned one, as PNG_learned.png)")
    add_model_args(p)
    add_output_args(p)
    p.set_defaults(func=run)


def _learned_path(plot: str) -> Path:
    p = Path(plot)
    return p.with_name(f"{p.stem}_learned{p.suffix}")


def run(args: argparse.Namespace) -> int:
    from shufflenet.audit.reuse import feature_reuse

    # Cheap checks first: a bad option fails before any model is built.
    size = parse_input_size(args.input)
    blocks = [b.strip() for b in args.blocks.split(",") if b.strip()] if args.blocks else None
    if args.blocks is not None and not blocks:
        raise UserInputError(f"--blocks {args.blocks!r}: expected comma-separated class names, e.g. BasicBlock")
    if args.plot:
        if not args.plot.lower().endswith(".png"):
            raise UserInputError(f"--plot {args.plot!r}: the heatmap is written as PNG; give a .png file name")
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UserInputError("--plot needs matplotlib: pip install 'shufflenet[plots]' "
                                 "(or pip install matplotlib)") from None
        if args.weights:
            check_output_path(_learned_path(args.plot), "--plot (learned heatmap)", "png")
    model = build_model(args.model, args)
    if args.weights:
        from shufflenet.models import load_weights

        load_weights(model, args.weights)
    report = feature_reuse(model, size, blocks=blocks, learned=bool(args.weights), model_name=args.model,
                           log_scale=args.log)
    if args.plot:
        figures = report.figures()
        write_atomic(args.plot, figures[0].png())
        if len(figures) > 1:
            write_atomic(_learned_path(args.plot), figures[1].png())
    emit_result(report, args, table="links")
    return 0
