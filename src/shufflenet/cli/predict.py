"""``shufflenet predict -c CHECKPOINT IMAGE...``: top-k labels with probabilities for image files.

Class names and preprocessing come from the checkpoint (``--classes FILE`` overrides the names). A file that
is missing, unreadable or not an image gets one error line on stderr; the others are still predicted, and
the exit code is 2 when any file failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from shufflenet.cli._common import (
    MAX_BATCH,
    MAX_SIDE,
    add_model_args,
    add_output_args,
    emit_result,
    int_arg,
)
from shufflenet.errors import ClassNamesMismatchError, UserInputError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("predict", help="top-k labels with probabilities for image files",
                       description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    p.add_argument("-c", "--checkpoint", required=True, help="checkpoint or model.pt of a training run")
    p.add_argument("-k", "--topk", type=int_arg(None), default=5, metavar="K", help="labels per image (default: 5)")
    p.add_argument("--model", default=None, help="model name when the checkpoint does not say it")
    p.add_argument("--classes", metavar="FILE",
                   help="class names, one per line, as many as the model's outputs (overrides the checkpoint's)")
    p.add_argument("--image-size", type=int_arg(None, MAX_SIDE), default=None, metavar="PIXELS",
                   help="input side (default: the checkpoint's preprocessing)")
    p.add_argument("--input-convention", choices=("auto", "torchvision", "official"), default="auto")
    p.add_argument("--batch-size", type=int_arg(None, MAX_BATCH), default=32, metavar="N")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    add_model_args(p)
    add_output_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from shufflenet.cli.train import model_kwargs_from_args
    from shufflenet.train.config import PredictConfig
    from shufflenet.train.predict import predict

    names = None
    if args.classes:
        try:
            names = [ln.strip() for ln in Path(args.classes).read_text(encoding="utf-8").splitlines() if ln.strip()]
        except OSError as exc:
            raise UserInputError(f"cannot read --classes {args.classes}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise UserInputError(f"--classes {args.classes}: not a UTF-8 text file of class names") from None
        if not names:
            raise UserInputError(f"--classes {args.classes}: no class names in the file")
    cfg = PredictConfig(checkpoint=args.checkpoint, images=list(args.images), topk=args.topk, model=args.model,
                        model_kwargs=model_kwargs_from_args(args), class_names=names, image_size=args.image_size,
                        input_convention=args.input_convention, batch_size=args.batch_size, device=args.device)
    try:
        result = predict(cfg)
    except ClassNamesMismatchError as exc:
        raise ClassNamesMismatchError(exc.given, exc.outputs, f"--classes {args.classes}") from None
    emit_result(result, args)
    for failed in result.failed:
        sys.stderr.write(f"shufflenet: error: {failed.path}: {failed.error}\n")
    return 2 if result.failed else 0
