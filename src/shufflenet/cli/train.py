"""``shufflenet train [MODEL]``: train with the official recipe on Fashion-MNIST, an ImageFolder tree or
synthetic data — one process, or many under torchrun (DDP) — resumable exactly.

Settings: the defaults of :class:`shufflenet.train.TrainConfig` < ``--config FILE`` (TOML, YAML with PyYAML,
JSON) < the flags given. ``--resume CKPT`` alone continues a run with the settings stored in its checkpoint.

Each run gets a new directory ``runs/train/<YYYYmmdd-HHMMSS>-<model>`` unless ``-o DIR`` names one; a
directory holding a run is only continued (``--resume``), never overwritten, and is locked while a run
writes it. Ctrl-C (SIGINT) or SIGTERM writes a resumable ``last.pt`` at the current step and prints the
resume command (exit code 130 / 143).
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any

from shufflenet.cli._common import add_model_args, add_output_args, emit_result, parse_model_args

S = argparse.SUPPRESS
EPILOG = """examples:
  shufflenet train shufflenet_v2_x0_5 --epochs 30 --batch-size 256          # Fashion-MNIST (Debian path)
  shufflenet train shufflenet_v2_x1_0 --data imagefolder --data-dir /data/imagenet --epochs 240 \\
      --batch-size 1024 --amp bf16 --channels-last --workers 8
  torchrun --standalone --nproc_per_node 4 -m shufflenet.cli.main train shufflenet_v2_x1_0 ...
  shufflenet train --resume runs/train/20250101-120000-shufflenet_v2_x0_5/last.pt   # continue exactly
  shufflenet train --config RUN/config.json --init-from RUN/model.pt --epochs 60 -o runs/longer
                                                   # a new run (new schedule) from a finished run's weights
  shufflenet train --config run.toml --lr 0.25                              # flags override the file"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("train", help="train a model with the paper's recipe (DDP via torchrun, resumable)",
                       description=__doc__.split("\n\n")[0], epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", default=S, help="model name (default shufflenet_v2_x1_0)")
    p.add_argument("--config", metavar="FILE", help="TOML/YAML/JSON file of TrainConfig keys")
    g = p.add_argument_group("data")
    g.add_argument("--data", dest="dataset", choices=("fashion-mnist", "imagefolder", "synthetic"), default=S,
                   help="dataset (default fashion-mnist, from /usr/share/datasets/fashion-mnist)")
    g.add_argument("--data-dir", default=S, metavar="DIR",
                   help="Fashion-MNIST idx files, or ImageFolder root with train/ and val/")
    g.add_argument("--download", action="store_true", default=S,
                   help="allow torchvision to download Fashion-MNIST when it is not found")
    g.add_argument("--image-size", type=int, default=S, help="input size (28 Fashion-MNIST, 224 ImageFolder)")
    g.add_argument("--input-convention", choices=("auto", "torchvision", "official"), default=S,
                   help="ImageFolder input: torchvision = RGB ImageNet mean/std; official = BGR 0-255")
    g.add_argument("--random-erasing", type=float, default=S, metavar="P", help="random erasing probability")
    g.add_argument("--limit-train", type=int, default=S, metavar="N", help="use the first N training images")
    g.add_argument("--limit-val", type=int, default=S, metavar="N", help="use the first N validation images")
    g.add_argument("--holdout", type=int, default=S, metavar="N",
                   help="validate on N training images held out of training (a fixed random subset), not on "
                        "the validation/test set: for choosing settings without seeing the test set")
    g.add_argument("--synthetic-train", type=int, default=S, metavar="N", help="synthetic training images")
    g.add_argument("--synthetic-val", type=int, default=S, metavar="N", help="synthetic validation images")
    g.add_argument("--synthetic-classes", type=int, default=S, metavar="N")
    g.add_argument("--synthetic-chans", type=int, default=S, metavar="N")
    g.add_argument("--workers", type=int, default=S, help="DataLoader worker processes per rank (default 4)")
    r = p.add_argument_group("recipe (defaults: the official one)")
    r.add_argument("--epochs", type=int, default=S)
    r.add_argument("--batch-size", type=int, default=S, help="global batch over all processes (default 256)")
    r.add_argument("--lr", type=float, default=S, help="peak lr (default 0.5 * batch / 1024)")
    r.add_argument("--momentum", type=float, default=S)
    r.add_argument("--nesterov", action="store_true", default=S)
    r.add_argument("--weight-decay", type=float, default=S, help="on conv/linear weights only (default 4e-5)")
    r.add_argument("--label-smoothing", type=float, default=S, help="default 0.1")
    r.add_argument("--warmup-steps", type=int, default=S, help="linear warm-up steps (default 0)")
    r.add_argument("--grad-clip", type=float, default=S, metavar="NORM", help="clip the gradient norm")
    r.add_argument("--ema", dest="ema_decay", type=float, default=S, metavar="DECAY",
                   help="keep an EMA of the weights (e.g. 0.9999); final weights are the EMA")
    r.add_argument("--no-bn-recalibrate", dest="bn_recalibrate", action="store_false", default=S,
                   help="skip the final BN-statistics recalibration pass")
    r.add_argument("--bn-recalibrate-steps", type=int, default=S, metavar="N",
                   help="batches of the recalibration pass (default one epoch)")
    r.add_argument("--freeze-bn", action="store_true", default=S, help="BN layers use running statistics")
    r.add_argument("--sync-bn", action="store_true", default=S, help="SyncBatchNorm under DDP (torchrun on GPUs only)")
    e = p.add_argument_group("execution")
    e.add_argument("--device", choices=("auto", "cpu", "cuda"), default=S)
    e.add_argument("--amp", choices=("none", "bf16", "fp16"), default=S, help="mixed precision (CUDA; bf16 also CPU)")
    e.add_argument("--channels-last", action="store_true", default=S)
    e.add_argument("--deterministic", action="store_true", default=S,
                   help="deterministic algorithms (bitwise-reproducible on CPU)")
    e.add_argument("--seed", type=int, default=S)
    o = p.add_argument_group("outputs and control")
    o.add_argument("-o", "--output-dir", default=S, metavar="DIR",
                   help="run directory (default: a new runs/train/<YYYYmmdd-HHMMSS>-<model>); one holding a run "
                        "is only continued with --resume")
    o.add_argument("--checkpoint-every", type=int, default=S, metavar="STEPS",
                   help="also write last.pt every STEPS optimizer steps")
    o.add_argument("--eval-every", type=int, default=S, metavar="EPOCHS", help="0: evaluate only at the end")
    o.add_argument("--stop-after-steps", type=int, default=S, metavar="N",
                   help="stop after N optimizer steps with a checkpoint (resume later)")
    o.add_argument("--resume", nargs="?", const="auto", default=S, metavar="CKPT",
                   help="continue from CKPT (without a value: -o DIR's last.pt when it exists)")
    o.add_argument("--init-from", default=S, metavar="WEIGHTS",
                   help="start a new run from these weights (e.g. a finished run's model.pt) with a new "
                        "optimizer and lr schedule")
    o.add_argument("--no-tensorboard", dest="tensorboard", action="store_false", default=S)
    add_model_args(p)
    add_output_args(p)
    p.set_defaults(func=run)


def model_kwargs_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The model flags of :func:`add_model_args` that were given, as ``create_model`` keywords."""
    kwargs = {k: getattr(args, k, None) for k in ("layout", "se", "residual", "extra_dw", "small_input",
                                                   "num_classes")}
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    kwargs.update(parse_model_args(getattr(args, "model_arg", None)))
    return kwargs


def resolve_train_config(args: argparse.Namespace) -> Any:
    """TrainConfig from defaults < checkpoint config (``--resume`` without ``--config``) < file < flags."""
    from shufflenet.errors import UserInputError
    from shufflenet.train.checkpoint import load_checkpoint, resolve_resume
    from shufflenet.train.config import TrainConfig, check_values, load_config_file, resolve_config

    names = {f.name for f in fields(TrainConfig)}
    overrides: dict[str, Any] = {k: v for k, v in vars(args).items() if k in names and k != "model_kwargs"}
    if overrides.get("resume") and overrides.get("init_from"):
        raise UserInputError("--resume continues a run, --init-from starts a new one from given weights: "
                             "give one of them")
    if args.quiet:  # only a given flag overrides the config file
        overrides["progress"] = overrides["verbose"] = False
    cli_kwargs = model_kwargs_from_args(args)
    file_data = load_config_file(args.config) if args.config else {}
    if isinstance(file_data.get("train"), dict):
        file_data = {**{k: v for k, v in file_data.items() if not isinstance(v, dict) or k == "model_kwargs"},
                     **file_data["train"]}
    file_data = check_values(TrainConfig, file_data, str(args.config)) if args.config else {}
    base: dict[str, Any] | None = None
    resume = overrides.get("resume", file_data.get("resume"))
    if resume and not args.config:
        out = overrides.get("output_dir", TrainConfig.output_dir)
        path = resolve_resume(resume, out)
        if path is not None:
            saved = load_checkpoint(path)["train"].get("config") or {}
            # How the first run printed is not part of the run: this invocation's --quiet decides.
            base = {k: v for k, v in saved.items() if k in names and k not in ("progress", "verbose")}
            base["stop_after_steps"] = None
            base["resume"] = str(path)
    merged_kwargs = dict((base or {}).get("model_kwargs") or {})
    merged_kwargs.update(file_data.get("model_kwargs") or {})
    merged_kwargs.update(cli_kwargs)
    overrides["model_kwargs"] = merged_kwargs
    return resolve_config(TrainConfig, args.config, overrides, base=base, section="train")


def run(args: argparse.Namespace) -> int:
    import sys

    from shufflenet.train import train
    from shufflenet.train.distributed import env_ranks
    from shufflenet.train.engine import TrainingInterrupted

    cfg = resolve_train_config(args)
    try:
        result = train(cfg)
    except TrainingInterrupted as exc:
        if env_ranks()[0] == 0:
            sys.stderr.write(f"shufflenet: {exc}\n")
        return exc.exit_code
    if env_ranks()[0] != 0:
        return 0
    emit_result(result, args)  # CSV: the metrics per epoch
    return 0
