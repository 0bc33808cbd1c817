"""``shufflenet export MODEL --format FMT``: export a model for deployment and check it in its runtime.

Formats: onnx (checked in ONNX Runtime, no tensor above 4-D, standard ops only, op histogram printed),
openvino (IR .xml + .bin, checked in OpenVINO at an explicit precision), ncnn (.param + .bin through
pnnx, checked in ncnn), torchscript (a traced .pt) and pt2 (a torch.export program), each against eager
PyTorch. ``--optimize`` exports the inference-optimised network (BN folded, ShuffleNet V2's channel
shuffle folded into the weights). Parity runs on real images when the model takes Fashion-MNIST's 1x28x28
input, else on random ones. Nothing is written unless the check passes; an existing file is never
replaced.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import torch

from shufflenet.cli._common import add_model_args, build_model, emit_result, int_arg, parse_input_size
from shufflenet.errors import UserInputError

EPILOG = """examples:
  shufflenet export shufflenet_v2_x1_0 --format onnx --optimize          # shufflenet_v2_x1_0-optimized.onnx
  shufflenet export shufflenet_v2_x1_0 --small-input -m in_chans=1 --num-classes 10 \\
      --weights shipped:fashion_mnist-shufflenet_v2_x1_0 --format openvino --optimize --out fm.xml
  shufflenet export torchvision:shufflenet_v2_x1_0 --layout torchvision --format ncnn
  shufflenet export shufflenet_v2_x0_5 --format pt2 --precision bf16 --summary export.json"""

PARITY_IMAGES = 64


def add_parser(sub: Any) -> None:
    from shufflenet.deploy.export import FORMATS
    from shufflenet.deploy.runtimes import PRECISIONS

    p = sub.add_parser("export", help="export to ONNX / OpenVINO / ncnn / TorchScript / torch.export, checked "
                                      "in the target runtime", description=__doc__, epilog=EPILOG)
    p.add_argument("model", help="a registered name, torchvision:NAME, timm:NAME or package.module:callable")
    p.add_argument("--weights", metavar="PATH",
                   help="checkpoint to load (this package's, torchvision's or the official ones; "
                        "shipped:NAME for a checkpoint shipped with the package)")
    p.add_argument("--format", dest="export_format", choices=FORMATS, required=True, help="what to export to")
    p.add_argument("--out", dest="export_out", metavar="PATH",
                   help="the exported file (default: MODEL[-optimized][-PRECISION].SUFFIX here); OpenVINO and "
                        "ncnn write a .bin beside it")
    p.add_argument("--optimize", action="store_true", help="export the inference-optimised network")
    p.add_argument("--dynamic-batch", dest="dynamic_batch", action="store_true", default=True,
                   help="any batch size at run time (the default; ncnn always runs one image at a time)")
    p.add_argument("--static-batch", dest="dynamic_batch", action="store_false", help="a fixed batch of 1")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="fp32; bf16 (OpenVINO, TorchScript, pt2); int8 (post-training static quantization)")
    p.add_argument("--input", default=None, metavar="SIZE",
                   help="input CxHxW or one side (default: the model's: 1x28x28 for --small-input -m in_chans=1)")
    p.add_argument("--calibration-images", type=int_arg(32, 60000), default=512, metavar="N",
                   help="int8: calibrate on N Fashion-MNIST training images, spread evenly over the split")
    p.add_argument("--threads", type=int, default=1, help="runtime threads for the parity check")
    p.add_argument("--summary", metavar="FILE", help="also write the export summary (.json, .md, .csv, .html)")
    add_model_args(p)
    p.set_defaults(func=run)


def _input_shape(args: argparse.Namespace, model: torch.nn.Module, default_side: int) -> tuple[int, int, int]:
    in_chans = int(getattr(model, "in_chans", 3))
    if args.input:
        size = parse_input_size(args.input)
        if len(size) == 1:
            return (in_chans, size[0], size[0])
        if len(size) == 4:
            size = size[1:]
        if len(size) != 3:
            raise UserInputError(f"--input {args.input}: give CxHxW or one side")
        return (size[0], size[1], size[2])
    side = 28 if in_chans == 1 else default_side
    return (in_chans, side, side)


def _parity_images(shape: tuple[int, int, int]) -> tuple[torch.Tensor | None, str]:
    """Fashion-MNIST test images for a 1x28x28 model (the real data the shipped checkpoints saw), else none."""
    if shape != (1, 28, 28):
        return None, ""
    from shufflenet.train.data import fashion_mnist_images

    try:
        images, _ = fashion_mnist_images("val", PARITY_IMAGES)  # "val" = the 10 000 test images
    except UserInputError:
        return None, ""
    return images, "Fashion-MNIST test images"


def _calibration_images(shape: tuple[int, int, int], count: int) -> tuple[torch.Tensor, str]:
    """``count`` Fashion-MNIST *training* images, evenly spread (the parity check uses test images)."""
    if shape != (1, 28, 28):
        raise UserInputError(f"int8 export calibrates on real images; the CLI has them for Fashion-MNIST models "
                             f"(1x28x28 input), not {'x'.join(map(str, shape))}: call "
                             "shufflenet.deploy.export_model(..., calibration=images) with your own")
    from shufflenet.train.data import fashion_mnist_images

    images, _ = fashion_mnist_images("train", count, spread=True)
    return images, "Fashion-MNIST training images"


def run(args: argparse.Namespace) -> int:
    from shufflenet.deploy.export import default_output, export_model, output_files
    from shufflenet.deploy.optimize import optimize
    from shufflenet.models import get_entry
    from shufflenet.models.shipped import load_checked_weights, resolve_weights

    entry = get_entry(args.model)  # unknown names fail here, before anything is built
    model = build_model(args.model, args).eval()
    if args.weights:
        load_checked_weights(model, args.model, args.weights)
    shape = _input_shape(args, model, entry.input_size)
    out = Path(args.export_out) if args.export_out else default_output(args.model, args.export_format,
                                                                       optimized=args.optimize,
                                                                       precision=args.precision)
    weights_file = resolve_weights(args.weights) if args.weights else None
    for path in output_files(out, args.export_format):
        if weights_file is not None and path.exists() and weights_file.exists() and os.path.samefile(path, weights_file):
            raise UserInputError(f"--out {path} is the --weights file; refusing to write over it")
    net, steps = model, []
    if args.optimize:
        net = optimize(model, channels_last=False)
        steps = list(getattr(net, "deploy_steps", []))
    calibration, calibration_label = (_calibration_images(shape, args.calibration_images)
                                      if args.precision == "int8" else (None, ""))
    images, label = _parity_images(shape)
    result = export_model(net, out, fmt=args.export_format, input_shape=shape, name=args.model,
                          check_inputs=images, inputs_label=label, dynamic_batch=args.dynamic_batch,
                          precision=args.precision, optimized=args.optimize, deploy_steps=steps, reference=model,
                          threads=args.threads, calibration=calibration, calibration_label=calibration_label)
    from shufflenet.render import format_for_path

    view = argparse.Namespace(out=None, format="table")
    emit_result(result, view)
    if args.summary:
        emit_result(result, argparse.Namespace(out=args.summary, format=format_for_path(args.summary, None)))
    return 0
