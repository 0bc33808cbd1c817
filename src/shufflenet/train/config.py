"""Typed configuration of training, evaluation and prediction.

Precedence: the dataclass defaults < a config file (TOML; YAML when PyYAML is installed; JSON, which is
what a run saves as ``config.json``) < explicit overrides (CLI flags). :func:`resolve_config` applies it
and validates every key and value, raising :class:`~shufflenet.errors.UserInputError` with a one-line
message (unknown keys get the closest valid names).

A config file is flat (``epochs = 30``); keys may use ``-`` or ``_``; ``model_kwargs`` is a table
(``[model_kwargs]`` in TOML) of keywords for :func:`shufflenet.create_model`. A ``[train]``/``[eval]``
section is accepted as an alternative to top-level keys.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, Union

from shufflenet.errors import UserInputError, first_line

DATASETS = ("fashion-mnist", "imagefolder", "synthetic")
DEFAULT_RUNS_ROOT = "runs/train"
AMP_MODES = ("none", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")
INPUT_CONVENTIONS = ("auto", "torchvision", "official")

# The official recipe (ShuffleNet V1 paper Sec. 4; megvii train.py): lr 0.5 at batch 1024, scaled linearly
# with the global batch.
BASE_LR = 0.5
BASE_BATCH = 1024


@dataclass
class TrainConfig:
    """Everything one training run needs. ``batch_size`` is the *global* batch (all processes together).

    Recipe defaults are the official ShuffleNet V1/V2 ones (V1 paper Sec. 4, megvii train.py): SGD momentum
    0.9, lr ``0.5 * batch_size / 1024`` decayed linearly to 0 per iteration, weight decay 4e-5 on conv/linear
    weights only, label smoothing 0.1, and a BN-statistics recalibration pass at the end.
    """

    # model
    model: str = "shufflenet_v2_x1_0"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    # data
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    download: bool = False
    image_size: int | None = None  # default: 28 (Fashion-MNIST), 224 (ImageFolder), 32 (synthetic)
    input_convention: str = "auto"  # ImageFolder input: torchvision (RGB, ImageNet mean/std) | official (BGR 0-255)
    random_erasing: float = 0.0  # probability of random erasing after the light Fashion-MNIST augmentation
    limit_train: int | None = None
    limit_val: int | None = None
    # validate on this many training images (a fixed random subset, held out of training) instead of the
    # validation/test set: for choosing settings without looking at the test set
    holdout: int | None = None
    synthetic_classes: int = 10
    synthetic_train: int = 512
    synthetic_val: int = 128
    synthetic_chans: int = 3
    workers: int = 4
    # recipe
    epochs: int = 30
    batch_size: int = 256
    lr: float | None = None  # None: BASE_LR * batch_size / BASE_BATCH
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 4e-5
    label_smoothing: float = 0.1
    warmup_steps: int = 0
    grad_clip: float | None = None
    ema_decay: float | None = None
    bn_recalibrate: bool = True
    bn_recalibrate_steps: int | None = None  # None: one epoch of training batches (the official pass)
    freeze_bn: bool = False
    sync_bn: bool = False
    # execution
    device: str = "auto"
    amp: str = "none"
    channels_last: bool = False
    deterministic: bool = False
    seed: int = 0
    # outputs and control
    # None: a new directory DEFAULT_RUNS_ROOT/<YYYYmmdd-HHMMSS>-<model> per run (never an earlier run's)
    output_dir: str | None = None
    checkpoint_every: int = 0  # also every N optimizer steps (0: only at epoch ends)
    eval_every: int = 1  # evaluate every N epochs (0: only at the end)
    stop_after_steps: int | None = None  # stop (with a checkpoint) after this many optimizer steps
    resume: str | None = None  # a checkpoint path, or "auto" (output_dir/last.pt when it exists)
    # a new run (fresh optimizer and lr schedule) starting from these weights (any file load_weights
    # reads); ignored when a checkpoint is resumed, whose weights win
    init_from: str | None = None
    tensorboard: bool = True
    progress: bool = True
    verbose: bool = True

    def effective_lr(self) -> float:
        """The peak learning rate: ``lr`` or the recipe's linear scaling ``0.5 * batch / 1024``."""
        return float(self.lr) if self.lr is not None else BASE_LR * self.batch_size / BASE_BATCH

    def validate(self, *, check_model: bool = True) -> TrainConfig:
        """Check every value (``check_model=False``: ``model`` names a custom network, not the registry)."""
        check_types(self)
        _check_choice("dataset", self.dataset, DATASETS)
        _check_choice("amp", self.amp, AMP_MODES)
        _check_choice("device", self.device, DEVICES)
        _check_choice("input_convention", self.input_convention, INPUT_CONVENTIONS)
        for name in ("epochs", "batch_size", "synthetic_classes", "synthetic_train", "synthetic_val",
                     "synthetic_chans"):
            _check_positive(name, getattr(self, name))
        for name in ("image_size", "limit_train", "limit_val", "holdout", "bn_recalibrate_steps",
                     "stop_after_steps"):
            if getattr(self, name) is not None:
                _check_positive(name, getattr(self, name))
        for name in ("workers", "warmup_steps", "checkpoint_every", "eval_every"):
            if getattr(self, name) < 0:
                raise UserInputError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise UserInputError(f"lr must be a positive number, got {self.lr}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)) or not 0 <= self.momentum < 1:
            raise UserInputError("weight_decay must be >= 0 and momentum in [0, 1)")
        if self.nesterov and self.momentum == 0:
            raise UserInputError("nesterov needs a momentum > 0 (--momentum)")
        if not 0 <= self.label_smoothing < 1:
            raise UserInputError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0 <= self.random_erasing <= 1:
            raise UserInputError(f"random_erasing must be a probability, got {self.random_erasing}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise UserInputError(f"grad_clip must be positive, got {self.grad_clip}")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise UserInputError(f"ema_decay must be in (0, 1), got {self.ema_decay}")
        if self.dataset == "imagefolder" and not self.data_dir:
            raise UserInputError("dataset 'imagefolder' needs data_dir (--data-dir ROOT with train/ and val/)")
        if self.resume == "auto" and not self.output_dir:
            raise UserInputError("resume 'auto' (--resume without a checkpoint) needs output_dir (-o DIR), the "
                                 "run directory whose last.pt to continue; or give the checkpoint: --resume DIR/last.pt")
        for name in ("output_dir", "resume", "init_from", "data_dir"):
            if getattr(self, name) == "":
                raise UserInputError(f"{name} must not be empty")
        if check_model:
            _check_model_name(self.model)
        return self


@dataclass
class EvalConfig:
    """Evaluation of a checkpoint (any format :func:`shufflenet.load_weights` reads) on a dataset.

    ``model``/``dataset``/preprocessing default to what a training checkpoint stores; a torchvision or
    official Megvii checkpoint needs ``model`` (and ``model_kwargs`` such as ``layout="torchvision"``).
    """

    checkpoint: str = ""
    model: str | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    dataset: str | None = None
    data_dir: str | None = None
    download: bool = False
    split: str = "val"  # "val" (ImageFolder val/, Fashion-MNIST test set) or "train"
    image_size: int | None = None
    input_convention: str = "auto"
    limit: int | None = None
    synthetic_classes: int = 10
    synthetic_val: int = 128
    synthetic_chans: int = 3
    batch_size: int = 256
    workers: int = 4
    device: str = "auto"
    amp: str = "none"
    channels_last: bool = False
    confusion_png: str | None = "auto"  # "auto": confusion_matrix.png beside the checkpoint; None: no PNG
    max_confusion_classes: int = 20
    progress: bool = True

    def validate(self) -> EvalConfig:
        check_types(self)
        if not self.checkpoint:
            raise UserInputError("a checkpoint is required")
        if self.dataset is not None:
            _check_choice("dataset", self.dataset, DATASETS)
        _check_choice("split", self.split, ("val", "train"))
        _check_choice("amp", self.amp, AMP_MODES)
        _check_choice("device", self.device, DEVICES)
        _check_choice("input_convention", self.input_convention, INPUT_CONVENTIONS)
        _check_positive("batch_size", self.batch_size)
        if self.workers < 0:
            raise UserInputError(f"workers must be >= 0, got {self.workers}")
        for name in ("image_size", "limit"):
            if getattr(self, name) is not None:
                _check_positive(name, getattr(self, name))
        if self.model is not None:
            _check_model_name(self.model)
        return self


@dataclass
class PredictConfig:
    """Top-k prediction for image files with a checkpoint (class names come from training checkpoints)."""

    checkpoint: str = ""
    images: list[str] = field(default_factory=list)
    topk: int = 5
    model: str | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    class_names: list[str] | None = None
    image_size: int | None = None
    input_convention: str = "auto"
    batch_size: int = 32
    device: str = "auto"

    def validate(self) -> PredictConfig:
        check_types(self)
        if not self.checkpoint:
            raise UserInputError("a checkpoint is required (--checkpoint FILE)")
        if not self.images:
            raise UserInputError("no image files given")
        _check_positive("topk", self.topk)
        _check_positive("batch_size", self.batch_size)
        if self.image_size is not None:
            _check_positive("image_size", self.image_size)
        _check_choice("device", self.device, DEVICES)
        _check_choice("input_convention", self.input_convention, INPUT_CONVENTIONS)
        if self.model is not None:
            _check_model_name(self.model)
        return self


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserInputError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _check_positive(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UserInputError(f"{name} must be a positive integer, got {value!r}")


def _check_model_name(name: str) -> None:
    """Fail early (before data loading) on an unknown model name (``torchvision:NAME`` included)."""
    from shufflenet.models import get_entry

    get_entry(name)


# --------------------------------------------------------------------------------------------- files

def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML, YAML (when PyYAML is installed) or JSON config file into a flat dict."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"config file not found: {path}")
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8")
    try:
        if suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise UserInputError(
                    f"{path}: YAML config files need PyYAML (pip install pyyaml); or use TOML/JSON") from None
            data = yaml.safe_load(text) or {}
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise UserInputError(f"{path}: unknown config format {suffix!r} (use .toml, .yaml/.yml or .json)")
    except UserInputError:
        raise
    except Exception as exc:  # parse errors of any of the three formats
        raise UserInputError(f"{path}: cannot parse config file: {first_line(exc)}") from None
    if not isinstance(data, Mapping):
        raise UserInputError(f"{path}: a config file must hold a table of keys")
    return dict(data)


C = TypeVar("C", TrainConfig, EvalConfig, PredictConfig)


def resolve_config(cls: type[C], file: str | os.PathLike[str] | None = None,
                   overrides: Mapping[str, Any] | None = None, *, base: C | Mapping[str, Any] | None = None,
                   section: str | None = None) -> C:
    """``cls`` defaults < ``base`` < the config ``file`` < ``overrides``, validated.

    ``section`` ("train", "eval") lets a file keep several commands' settings in tables of that name.
    """
    values: dict[str, Any] = {}
    if base is not None:
        values.update(check_values(cls, dataclasses.asdict(base) if dataclasses.is_dataclass(base) else base,
                                   "the base config"))
    if file is not None:
        data = load_config_file(file)
        if section and isinstance(data.get(section), Mapping):
            data = {**{k: v for k, v in data.items() if not isinstance(v, Mapping) or k == "model_kwargs"},
                    **data[section]}
        values.update(check_values(cls, data, str(file)))
    if overrides:
        values.update(check_values(cls, overrides, "the overrides"))
    cfg = cls(**values)
    return cfg.validate()


def _normalise_keys(data: Mapping[str, Any], cls: type, source: str) -> dict[str, Any]:
    names = [f.name for f in dataclasses.fields(cls)]
    out = {}
    for key, value in data.items():
        k = str(key).replace("-", "_")
        if k not in names:
            close = difflib.get_close_matches(k, names, n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; valid keys: {', '.join(names)}"
            raise UserInputError(f"unknown config key {key!r} in {source}{hint}")
        out[k] = value
    return out


_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
               dict: "a table of keywords (dict)", list: "a list of strings"}


def _coerce(cls: type, name: str, value: Any, source: str) -> Any:
    """Check ``value`` against the field's annotation (ints pass for floats); a clear error otherwise."""
    hints = typing.get_type_hints(cls)
    hint = hints[name]
    options = typing.get_args(hint) if typing.get_origin(hint) in (Union, types.UnionType) else (hint,)
    if value is None:
        if type(None) in options:
            return None
        raise UserInputError(f"config key {name!r} in {source} cannot be empty")
    for opt in options:
        origin = typing.get_origin(opt) or opt
        if origin is type(None):
            continue
        if origin is bool and isinstance(value, bool):
            return value
        if origin is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if origin is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if origin is str and isinstance(value, (str, os.PathLike)):
            return os.fspath(value)
        if origin is dict and isinstance(value, Mapping):
            if not all(isinstance(k, str) for k in value):
                raise UserInputError(f"config key {name!r} in {source} must have string keys, got {dict(value)!r}")
            return dict(value)
        if origin is list and isinstance(value, (list, tuple)):
            return [str(v) for v in value]
    words = [_TYPE_WORDS.get(typing.get_origin(o) or o, getattr(o, "__name__", str(o)))
             for o in options if o is not type(None)]
    expected = " or ".join(words) + (" (or empty)" if type(None) in options else "")
    raise UserInputError(f"config key {name!r} in {source} must be {expected}, got {value!r} "
                         f"({type(value).__name__})")


def check_types(cfg: Any, source: str | None = None) -> None:
    """Check (and normalise: int -> float where a float is expected) every field of a config dataclass by
    its annotation, so a wrong type is a one-line :class:`UserInputError`, never a ``TypeError`` later."""
    source = source or type(cfg).__name__
    for f in dataclasses.fields(cfg):
        setattr(cfg, f.name, _coerce(type(cfg), f.name, getattr(cfg, f.name), source))


def check_values(cls: type, data: Mapping[str, Any], source: str) -> dict[str, Any]:
    """``data`` (a config file's table) with its keys normalised and every value type-checked against
    ``cls``; unknown keys and wrong types raise :class:`UserInputError` naming the key and ``source``."""
    return {k: _coerce(cls, k, v, source) for k, v in _normalise_keys(data, cls, source).items()}


def config_to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
