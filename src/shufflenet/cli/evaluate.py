"""``shufflenet eval CHECKPOINT``: top-1/top-5 accuracy and loss on a dataset, with a confusion matrix PNG
(up to 20 classes). Reads any checkpoint ``load_weights`` reads; this package's checkpoints carry their
model, classes and preprocessing, others need ``--model`` (e.g. ``--model shufflenet_v2_x1_0 --layout
torchvision --data imagefolder --data-dir /data/imagenet`` for torchvision's weights).
"""

from __future__ import annotations

import argparse
from typing import Any

from shufflenet.cli._common import (
    MAX_BATCH,
    MAX_SIDE,
    add_model_args,
    add_output_args,
    check_output_path,
    emit_result,
    int_arg,
)
from shufflenet.errors import UserInputError

S = argparse.SUPPRESS


def add_parser(sub: Any) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint: top-1/top-5, loss, confusion matrix",
                       description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("checkpoint", help="checkpoint file (training checkpoint, model.pt, torchvision, Megvii)")
    p.add_argument("--model", default=S, help="model name when the checkpoint does not say it")
    p.add_argument("--config", metavar="FILE", help="TOML/YAML/JSON file of EvalConfig keys ([eval] section)")
    p.add_argument("--data", dest="dataset", choices=("fashion-mnist", "imagefolder", "synthetic"), default=S,
                   help="dataset (default: the checkpoint's; else fashion-mnist)")
    p.add_argument("--data-dir", default=S, metavar="DIR",
                   help="Fashion-MNIST idx files, or an ImageFolder root with val/ (and train/)")
    p.add_argument("--download", action="store_true", default=S,
                   help="allow torchvision to download Fashion-MNIST when it is not found")
    p.add_argument("--split", choices=("val", "train"), default=S, help="val (Fashion-MNIST: test set) or train")
    p.add_argument("--image-size", type=int_arg(None, MAX_SIDE), default=S, metavar="PIXELS",
                   help="input side (default: the checkpoint's preprocessing)")
    p.add_argument("--input-convention", choices=("auto", "torchvision", "official"), default=S)
    p.add_argument("--limit", type=int_arg(None), default=S, metavar="N", help="evaluate the first N images only")
    p.add_argument("--synthetic-val", type=int_arg(1, 1 << 24), default=S, metavar="N", help="synthetic images")
    p.add_argument("--synthetic-classes", type=int_arg(1, 1 << 24), default=S, metavar="N")
    p.add_argument("--synthetic-chans", type=int_arg(1, 1 << 16), default=S, metavar="N")
    p.add_argument("--batch-size", type=int_arg(None, MAX_BATCH), default=S, metavar="N")
    p.add_argument("--workers", type=int_arg(None, 1024), default=S, metavar="N")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=S)
    p.add_argument("--amp", choices=("none", "bf16", "fp16"), default=S)
    p.add_argument("--channels-last", action="store_true", default=S)
    p.add_argument("--confusion", dest="confusion_png", metavar="PNG", default=S,
                   help="confusion matrix PNG path (default: confusion_matrix.png beside the checkpoint)")
    p.add_argument("--no-confusion", dest="confusion_png", action="store_const", const=None, default=S,
                   help="write no confusion matrix PNG")
    add_model_args(p)
    add_output_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import fields

    from shufflenet.cli.train import model_kwargs_from_args
    from shufflenet.train.config import EvalConfig, resolve_config
    from shufflenet.train.evaluate import run_eval

    names = {f.name for f in fields(EvalConfig)}
    overrides = {k: v for k, v in vars(args).items() if k in names and k != "model_kwargs"}
    if args.quiet:  # only a given flag overrides the config file
        overrides["progress"] = False
    kwargs = model_kwargs_from_args(args)
    if kwargs:
        overrides["model_kwargs"] = kwargs
    cfg = resolve_config(EvalConfig, args.config, overrides, section="eval")
    _check_confusion_path(cfg.confusion_png, cfg.checkpoint)
    report = run_eval(cfg)
    from shufflenet.train.distributed import env_ranks

    if env_ranks()[0] != 0:
        return 0
    emit_result(report, args)  # CSV: the summary row
    return 0


def _check_confusion_path(path: str | None, checkpoint: str) -> None:
    """An asked-for confusion PNG (``--confusion`` or the config's ``confusion_png``) that cannot be
    written is bad input, found before the evaluation rather than after it."""
    if not path or path == "auto":
        return
    if not str(path).lower().endswith(".png"):
        raise UserInputError(f"--confusion {path!r}: the confusion matrix is written as PNG; give a .png file name")
    check_output_path(path, "--confusion", "png", inputs=[checkpoint])
