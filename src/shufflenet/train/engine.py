"""The training loop: the recipe of :mod:`shufflenet.train.recipe` on one process or many (DDP).

:func:`train` takes a :class:`~shufflenet.train.config.TrainConfig` and writes into ``output_dir``:

* ``config.json`` — the resolved config (a valid ``--config`` file), ``run.json`` — derived settings and
  the environment;
* ``last.pt`` — the resumable checkpoint (every epoch, every ``checkpoint_every`` steps, at a
  ``stop_after_steps`` stop, and at the end), written atomically;
* ``model.pt`` — the final weights after BN recalibration (the EMA weights when EMA is on), with the
  metadata ``shufflenet eval``/``predict`` need;
* ``metrics.csv`` and ``metrics.jsonl`` — one row per epoch; ``tb/`` — TensorBoard scalars when the
  ``tensorboard`` package is installed; ``summary.json`` — the final result.

``output_dir=None`` (the default) makes a new ``runs/train/<YYYYmmdd-HHMMSS>-<model>``; a directory that
already holds a run is only written by resuming that run, and is locked while a run writes it (see
:mod:`shufflenet.train.rundir`). Every file is written atomically; a full disk raises
:class:`~shufflenet.train.rundir.DiskFullError` with the previous file intact.

SIGINT (Ctrl-C) and SIGTERM stop the run at the end of the current step with a resumable ``last.pt`` of that
step, then raise :class:`TrainingInterrupted`, whose message names the resume command (a signal during an
epoch-end evaluation stops after it; one during the final BN recalibration stops at once, ``last.pt`` of
the end of training being current). A second SIGINT in one process stops at once, naming the previous
``last.pt`` (intact). Under torchrun, which forwards the signal to every rank, the ranks agree (through the
all-reduce that checks the loss every step) on the step to stop at, and rank 0 writes.

Under DDP the BN running statistics are averaged over ranks after every step (timm's ``distribute_bn``),
so every rank holds the same buffers and rank 0's checkpoint is every rank's state. A run with BN is then
not the same as one process at the same global batch (each rank normalises with its own sub-batch's
statistics): one step equals one step of a single process whose BN normalises the ranks' sub-batches
separately (ghost batch norm of the per-rank batch); without BN the runs are the same (both tested).

Resuming with other ``epochs``/``lr``/``warmup_steps`` recomputes the linear schedule for the new total from
the checkpoint's step on (the lr jumps to the new schedule's value there; a warning says so), and other
``momentum``/``nesterov``/``weight_decay`` apply from there on; a run cannot be shortened below the steps it
has trained, and a *finished* run (its lr decayed to 0) cannot be extended: start a new run from its
weights with ``init_from`` (fresh optimizer and schedule).

Only rank 0 writes files and logs. A non-finite loss (or non-finite gradients, except under fp16 loss
scaling, which skips such steps itself) stops the run with :class:`TrainingDiverged` before
the bad step is applied; nothing is written after it, so ``last.pt`` stays the last good checkpoint.

Exactness: data order comes from :class:`~shufflenet.train.data.EpochSampler` (seed + epoch), augmentation
from per-sample seeds, and the checkpoint holds every RNG state, so a run stopped anywhere and resumed
with the same world size follows the uninterrupted run's trajectory; on CPU with ``deterministic=True``
the final weights are bitwise identical (tested, after a stop, SIGINT and SIGTERM; and for 2 gloo processes).
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from shufflenet._io import write_atomic
from shufflenet.environment import capture_environment
from shufflenet.errors import ShuffleNetError, UserInputError, WeightsError, first_line
from shufflenet.result import Column, Figure, ResultBase, Table, json_safe
from shufflenet.train.checkpoint import (
    capture_rng,
    load_checkpoint,
    resolve_resume,
    restore_rng,
    save_checkpoint,
)
from shufflenet.train.config import BASE_BATCH, BASE_LR, DEFAULT_RUNS_ROOT, TrainConfig
from shufflenet.train.data import DataBundle, EpochSampler, ShardSampler, build_data, make_loader
from shufflenet.train.distributed import DistContext, cleanup, setup, unwrap, wrap_model
from shufflenet.train.evaluate import ACCURACY, EVAL_LOSS, EvalResult, autocast_context, evaluate
from shufflenet.train.recipe import LinearDecay, build_loss, build_optimizer, build_scheduler, recalibrate_bn
from shufflenet.train.rundir import (
    OutputWriteError,
    RunDirectoryError,
    RunInUseError,
    RunLock,
    check_run_dir,
    default_output_dir,
    guard_write,
    remove_stale_temp_files,
)

METRIC_COLUMNS = ["epoch", "step", "lr", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5",
                  "ema_val_loss", "ema_val_top1", "ema_val_top5", "epoch_time_s", "images_per_s", "elapsed_s",
                  "threads", "world_size"]  # per epoch: a resumed run may change them, and images/s with them
# Settings a resumed run must share with its checkpoint (others may change, e.g. workers or progress).
RESUME_FIXED = ("model", "model_kwargs", "dataset", "batch_size", "image_size", "synthetic_classes",
                "synthetic_chans", "limit_train", "holdout")
# Settings that change the trajectory from the checkpoint on (allowed on an unfinished run, with a warning).
RESUME_CHANGEABLE = ("epochs", "lr", "warmup_steps", "momentum", "nesterov", "weight_decay", "label_smoothing",
                     "ema_decay", "seed", "grad_clip", "random_erasing", "freeze_bn", "amp")


class TrainingDiverged(ShuffleNetError):
    """The loss became NaN or infinite; the run stopped before applying that step."""


class TrainingInterrupted(ShuffleNetError):
    """SIGINT/SIGTERM stopped the run; ``checkpoint`` (when not None) resumes it exactly."""

    def __init__(self, message: str, signum: int, checkpoint: str | None) -> None:
        super().__init__(message)
        self.signum, self.checkpoint = signum, checkpoint

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by this signal (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + int(self.signum)


class _StopSignals:
    """SIGINT/SIGTERM set a flag the loop polls (installed from the main thread only).

    With one process a second signal raises ``KeyboardInterrupt`` at once. Under torchrun a rank usually
    gets the signal twice (from the terminal's process group and forwarded by torchrun), so repeats are
    ignored there; torchrun itself kills ranks that do not exit within its grace period.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, distributed: bool) -> None:
        self.distributed = distributed
        self.signum: int | None = None
        self.second: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            self.signum = signum
            return
        if not self.distributed:
            self.second = signum  # its exit code is the one the shell expects (143 for a repeated SIGTERM)
            self.restore()
            raise KeyboardInterrupt

    def install(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.getsignal(s)
                signal.signal(s, self._handle)
        return self

    def restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}


class ModelEMA:
    """Exponential moving average of a model's parameters and buffers (a copy updated after each step).

    The decay ramps up as ``min(decay, (1 + n) / (10 + n))`` over the first updates (as TensorFlow's and
    timm's EMA), so early averages are not dominated by the random initialisation.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        ema_state, state = self.module.state_dict(), model.state_dict()
        floats_e, floats_m = [], []
        for k, e in ema_state.items():
            m = state[k].detach()
            if e.is_floating_point():
                floats_e.append(e)
                floats_m.append(m)
            else:
                e.copy_(m)
        if floats_e:
            torch._foreach_mul_(floats_e, d)
            torch._foreach_add_(floats_e, floats_m, alpha=1.0 - d)

    def state_dict(self) -> dict[str, Any]:
        return {"state_dict": self.module.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["state_dict"])
        self.updates = int(state["updates"])


TRAIN_CONVENTIONS = [
    "train loss / train top-1 = the training criterion (with the run's label smoothing) and top-1 on the "
    "augmented training batches in train mode, averaged over the epoch",
    f"val = the validation set (or the --holdout images) in eval mode; {ACCURACY}; val {EVAL_LOSS}",
    "images/s = training images per second of training time (data loading included, checkpoint saving and "
    "evaluation excluded), over all processes",
]
_METRIC_LABELS = {c.key: c for c in [
    Column("epoch"), Column("step"), Column("lr", fmt=".4g"), Column("train_loss", "train loss", fmt=".4f"),
    Column("train_top1", "train top-1", "%", ".2f"), Column("val_loss", "val loss", fmt=".4f"),
    Column("val_top1", "val top-1", "%", ".2f"), Column("val_top5", "val top-5", "%", ".2f"),
    Column("ema_val_loss", "EMA val loss", fmt=".4f"), Column("ema_val_top1", "EMA val top-1", "%", ".2f"),
    Column("ema_val_top5", "EMA val top-5", "%", ".2f"), Column("epoch_time_s", "epoch time", "s", ".1f"),
    Column("images_per_s", "train images/s", fmt=".1f"), Column("elapsed_s", "elapsed", "s", ".1f"),
    Column("threads"), Column("world_size", "processes")]}


@dataclass
class TrainResult(ResultBase):
    """What :func:`train` did. ``status`` is ``"finished"`` or ``"stopped"`` (``stop_after_steps``).

    A result of the contract in :mod:`shufflenet.result`: the metrics per epoch (the CSV), a summary, and the
    loss/accuracy curves as a figure.
    """

    status: str
    output_dir: str
    model_name: str
    epochs: int
    step: int
    total_steps: int
    world_size: int
    final: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    wall_time_s: float = 0.0
    train_time_s: float = 0.0
    images_per_s: float = 0.0
    checkpoint: str | None = None
    weights: str | None = None
    model: nn.Module | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return json_safe({f.name: getattr(self, f.name) for f in fields(self) if f.name != "model"})

    def tables(self) -> list[Table]:
        """The metrics per epoch (what ``--format csv`` writes: ``metrics.csv``'s columns), then the summary."""
        keys = [k for k in METRIC_COLUMNS if any(k in h for h in self.history)]
        keys += [k for h in self.history for k in h if k not in keys]
        epochs = Table(f"train {self.model_name}: metrics per epoch", [_METRIC_LABELS.get(k, Column(k)) for k in keys],
                       [dict(h) for h in self.history], key="history")
        summary = {"status": self.status, "model": self.model_name, "epochs": self.epochs,
                   "steps": f"{self.step}/{self.total_steps}", "processes": self.world_size,
                   **{k: v for k, v in self.final.items() if k.startswith("val_")},
                   "wall_time_s": self.wall_time_s, "images_per_s": self.images_per_s,
                   "checkpoint": self.checkpoint, "weights": self.weights}
        rows = [{"item": k, "value": v} for k, v in json_safe(summary).items()]
        return [epochs, Table(f"train {self.model_name} -> {self.output_dir}", [Column("item"), Column("value")],
                              rows, key="summary")]

    def figures(self) -> list[Figure]:
        """Loss and accuracy per epoch (when the run has trained an epoch)."""
        if not self.history:
            return []
        return [Figure(f"train {self.model_name}: loss and top-1 per epoch", self._draw_curves, key="curves",
                       size=(10.0, 4.0))]

    def _draw_curves(self, fig: Any) -> None:
        from matplotlib.ticker import MaxNLocator

        panels = (("loss", ("train_loss", "val_loss", "ema_val_loss")),
                  ("top-1 (%)", ("train_top1", "val_top1", "ema_val_top1")))
        for i, (ylabel, keys) in enumerate(panels, start=1):
            ax = fig.add_subplot(1, 2, i)
            for k in keys:
                pts = [(h["epoch"], h[k]) for h in self.history if isinstance(h.get(k), (int, float))]
                if pts:
                    ax.plot(*zip(*pts, strict=True), marker="o", markersize=3, label=_METRIC_LABELS[k].label)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
            if ax.get_lines():
                ax.legend(fontsize=8)
        fig.tight_layout()

    def conventions(self) -> list[str]:
        return list(TRAIN_CONVENTIONS)


def build_model(cfg: TrainConfig, data: DataBundle) -> nn.Module:
    """The model of ``cfg`` sized for ``data``: ``num_classes``/``in_chans`` from the data and
    ``small_input`` from the dataset (True for Fashion-MNIST) unless ``model_kwargs`` says otherwise."""
    from shufflenet.models import create_model

    return create_model(cfg.model, **model_kwargs_for(cfg, data))


def model_kwargs_for(cfg: TrainConfig, data: DataBundle) -> dict[str, Any]:
    kwargs = {k: v for k, v in cfg.model_kwargs.items() if v is not None}
    is_tv = cfg.model.startswith("torchvision:")
    if "num_classes" in kwargs and kwargs["num_classes"] != data.num_classes:
        raise UserInputError(f"num_classes={kwargs['num_classes']} but dataset {data.name} has "
                             f"{data.num_classes} classes")
    kwargs["num_classes"] = data.num_classes
    if data.in_chans != 3 or not is_tv:
        kwargs.setdefault("in_chans", data.in_chans)
    if not is_tv:
        kwargs.setdefault("small_input", data.small_input)
    return kwargs


def train(cfg: TrainConfig, *, model: nn.Module | None = None) -> TrainResult:
    """Train with the official recipe; see the module docstring for what is written where.

    ``model`` replaces the one ``cfg.model`` names (a custom network; its checkpoints then need the same
    code to be rebuilt). Under torchrun every process calls this; rank 0 writes.
    """
    cfg.validate(check_model=model is None)
    ctx = setup(cfg.device)
    det_state = (torch.are_deterministic_algorithms_enabled(),
                 torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        result = _Trainer(cfg, ctx, model).run()
    finally:
        torch.use_deterministic_algorithms(det_state[0], warn_only=det_state[1])
    cleanup(ctx)  # on success only: after a failure on one rank, waiting for the others could hang
    return result


class _MetricsLog:
    """metrics.csv + metrics.jsonl (+ TensorBoard), rewritten from the history on resume."""

    def __init__(self, out: Path, enabled: bool, tensorboard: bool) -> None:
        self.out, self.enabled = out, enabled
        self.tb = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tb"))
            except Exception:  # noqa: BLE001 - tensorboard not installed (or broken): CSV/JSON only
                self.tb = None

    def reset(self, history: list[dict[str, Any]]) -> None:
        """Rewrite both files from ``history``, atomically: a full disk or a crash mid-write leaves the
        previous complete files, never a torn last row (one row per epoch: rewriting is cheap)."""
        if not self.enabled:
            return
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(history)
        for name, text in (("metrics.csv", buf.getvalue()),
                           ("metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))):
            with guard_write(self.out / name):
                write_atomic(self.out / name, text)

    def append(self, row: dict[str, Any], history: list[dict[str, Any]]) -> None:
        """``row`` was just appended to ``history``."""
        if not self.enabled:
            return
        self.reset(history)
        if self.tb is not None:
            for k, v in row.items():
                if k not in ("epoch", "step") and isinstance(v, (int, float)):
                    self.tb.add_scalar(k, v, int(row["step"]))
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _write_json(path: Path, data: Any) -> None:
    with guard_write(path):
        write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


class _Trainer:
    def __init__(self, cfg: TrainConfig, ctx: DistContext, model: nn.Module | None) -> None:
        self.cfg, self.ctx, self.custom_model = cfg, ctx, model
        self.bar: Any = None
        self.last_saved: tuple[Path, int] | None = None
        self.lock: RunLock | None = None
        self.metrics: _MetricsLog | None = None
        self.stop = _StopSignals(ctx.distributed)
        self.stop_signum = 0  # the signal every rank agreed to stop for (set with the per-step finiteness check)
        self.bn_buffers: list[torch.Tensor] = []
        self.created_dir: Path | None = None
        self.was_finished = False

    # ------------------------------------------------------------------------------------ logging
    def log(self, msg: str) -> None:
        if self.ctx.is_main and self.cfg.verbose:
            if self.bar is not None:
                self.bar.write(msg, file=sys.stderr)
            else:
                print(msg, file=sys.stderr, flush=True)

    # -------------------------------------------------------------------------------------- setup
    def _setup(self) -> None:
        cfg, ctx = self.cfg, self.ctx
        if cfg.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
        elif ctx.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        if cfg.amp == "fp16" and ctx.device.type != "cuda":
            raise UserInputError("amp 'fp16' needs CUDA (use 'bf16' on CPU, or 'none')")
        if ctx.world_size > 1 and cfg.batch_size % ctx.world_size:
            raise UserInputError(f"batch_size {cfg.batch_size} (global) is not divisible by the "
                                 f"{ctx.world_size} processes")
        if cfg.sync_bn and not (ctx.distributed and ctx.device.type == "cuda"):
            raise UserInputError(
                "sync_bn needs several DDP processes on CUDA (torchrun --nproc_per_node N on GPUs): PyTorch's "
                "SyncBatchNorm runs on GPUs only, and with one process it would change nothing; drop --sync-bn")
        if cfg.init_from and not Path(cfg.init_from).expanduser().is_file():
            raise UserInputError(f"initial weights to start from not found: {cfg.init_from}")
        self.per_rank_batch = cfg.batch_size // ctx.world_size
        self.resume_path = resolve_resume(cfg.resume, cfg.output_dir)
        self.out = self._claim_run_dir()  # also a barrier: rank 0 has finished any earlier write of last.pt
        self.ckpt = load_checkpoint(self.resume_path) if self.resume_path else None  # fail fast if corrupted
        self.cfg = cfg = replace(cfg, output_dir=str(self.out))
        if self.ckpt is not None:
            self._check_resume_config(self.ckpt["train"].get("config") or self.ckpt["meta"].get("config") or {},
                                      self.ckpt["train"])

        torch.manual_seed(cfg.seed)
        import random

        import numpy as np

        random.seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)

        if cfg.download and ctx.distributed and not ctx.is_main:
            ctx.barrier()  # rank 0 downloads first
        self.data = build_data(
            cfg.dataset, data_dir=cfg.data_dir, download=cfg.download, image_size=cfg.image_size,
            input_convention=cfg.input_convention, seed=cfg.seed, limit_train=cfg.limit_train,
            limit_val=cfg.limit_val, random_erasing=cfg.random_erasing, synthetic_classes=cfg.synthetic_classes,
            synthetic_train=cfg.synthetic_train, synthetic_val=cfg.synthetic_val,
            synthetic_chans=cfg.synthetic_chans, holdout=cfg.holdout)
        if cfg.download and ctx.distributed and ctx.is_main:
            ctx.barrier()
        if self.data.train is None or len(self.data.train) == 0:  # type: ignore[arg-type]
            raise UserInputError(f"no training images found for dataset {cfg.dataset}")

        self.model_kwargs = model_kwargs_for(self.cfg, self.data) if self.custom_model is None else {}
        raw = self.custom_model if self.custom_model is not None else build_model(cfg, self.data)
        if cfg.init_from and self.ckpt is None:
            from shufflenet.models.weights import load_weights

            info = load_weights(raw, Path(cfg.init_from).expanduser())
            self.log(f"initial weights from {cfg.init_from} ({info.format}); a new optimizer and lr schedule")
        raw.to(ctx.device)
        if cfg.channels_last:
            raw.to(memory_format=torch.channels_last)
        self.model = wrap_model(raw, ctx, sync_bn=cfg.sync_bn)
        self.raw = unwrap(self.model)
        if ctx.distributed and not cfg.sync_bn:
            self.bn_buffers = [b for m in self.raw.modules()
                               if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
                               for b in (m.running_mean, m.running_var) if b is not None]
        torch.manual_seed(cfg.seed + ctx.rank)  # per-rank stream for dropout etc. (model init is rank 0's)

        self.lr = cfg.effective_lr()
        self.optimizer = build_optimizer(self.raw, self.lr, momentum=cfg.momentum,
                                         weight_decay=cfg.weight_decay, nesterov=cfg.nesterov)
        self.loader_gen = torch.Generator().manual_seed(cfg.seed)
        self.sampler = EpochSampler(self.data.train, ctx.world_size, ctx.rank, shuffle=True, seed=cfg.seed)
        self.steps_per_epoch = self.sampler.num_samples // self.per_rank_batch
        if self.steps_per_epoch == 0:
            raise UserInputError(f"batch_size {cfg.batch_size} is larger than the training set "
                                 f"({len(self.data.train)} images)")  # type: ignore[arg-type]
        self.total_steps = cfg.epochs * self.steps_per_epoch
        if cfg.warmup_steps > self.total_steps:
            raise UserInputError(f"warmup_steps {cfg.warmup_steps} is more than the run's {self.total_steps} steps "
                                 f"({cfg.epochs} epochs of {self.steps_per_epoch}): the lr would never reach its peak")
        self.scheduler = build_scheduler(self.optimizer, self.total_steps, cfg.warmup_steps)
        self.scaler = torch.amp.GradScaler("cuda") if cfg.amp == "fp16" else None
        self.ema = ModelEMA(self.raw, cfg.ema_decay) if cfg.ema_decay else None
        self.criterion = build_loss(cfg.label_smoothing)
        self.loader = make_loader(self.data.train, self.per_rank_batch, self.sampler, workers=cfg.workers,
                                  device=ctx.device, drop_last=True, generator=self.loader_gen)
        self.val_loader = None
        if self.data.val is not None and len(self.data.val) > 0:  # type: ignore[arg-type]
            vs = ShardSampler(len(self.data.val), ctx.world_size, ctx.rank)  # type: ignore[arg-type]
            self.val_loader = make_loader(self.data.val, self.per_rank_batch, vs, workers=cfg.workers,
                                          device=ctx.device)

        # progress state
        self.epoch, self.batch_in_epoch, self.step = 0, 0, 0
        self.finished = False
        self.running = {"loss_sum": 0.0, "correct": 0, "count": 0, "train_time": 0.0, "images": 0}
        self.totals = {"train_time": 0.0, "images": 0}
        self.history: list[dict[str, Any]] = []
        self.prior_elapsed = 0.0
        self.final: dict[str, Any] = {}
        self.rng_to_restore: dict[str, Any] | None = None
        if self.ckpt is not None:
            self._load_state(self.ckpt)

        if ctx.is_main and not self.finished:  # a finished run's files stay as they are
            # config.json describes the run (a valid --config for a new one): not how this call resumed it
            _write_json(self.out / "config.json", {**asdict(cfg), "resume": None})
            _write_json(self.out / "run.json", self._run_info())
        self.metrics = _MetricsLog(self.out, ctx.is_main and not self.finished, cfg.tensorboard)
        self.metrics.reset(self.history)

    def _claim_run_dir(self) -> Path:
        """Rank 0 picks (or makes) the run directory, locks it and checks it may be written; every rank
        learns the directory, or raises the same error."""
        cfg, ctx = self.cfg, self.ctx
        out: Path | None = None
        error: ShuffleNetError | None = None
        if ctx.is_main:
            try:
                if cfg.output_dir:
                    out = Path(cfg.output_dir).expanduser()
                    if out.exists() and not out.is_dir():
                        raise RunDirectoryError(f"output directory {out} is a file")
                    try:
                        out.parent.mkdir(parents=True, exist_ok=True)
                        try:  # atomic: only the process whose mkdir succeeded made it (and may discard it)
                            out.mkdir()
                            self.created_dir = out
                        except FileExistsError:
                            pass
                    except OSError as exc:
                        raise RunDirectoryError(f"cannot create output directory {out}: "
                                                f"{exc.strerror or exc}") from None
                elif self.resume_path is not None:
                    out = self.resume_path.parent  # continue the run where it lives
                else:
                    out = default_output_dir(cfg.model, DEFAULT_RUNS_ROOT)
                    self.created_dir = out
                self.lock = RunLock(out).acquire()
                check_run_dir(out, self.resume_path)
                stale = remove_stale_temp_files(out)  # safe: we hold the lock, so no writer is live
                if stale:
                    self.log(f"removed {len(stale)} temporary file(s) of an interrupted write: {', '.join(stale)}")
            except ShuffleNetError as exc:
                self._release_lock(discard=True)
                error = exc
        if ctx.distributed:
            import torch.distributed as dist

            box: list[Any] = [None if out is None else str(out),
                              None if error is None else (type(error).__name__, str(error))]
            dist.broadcast_object_list(box, src=0)
            if not ctx.is_main:
                if box[1] is not None:
                    kinds = {c.__name__: c for c in (RunInUseError, RunDirectoryError, UserInputError)}
                    raise kinds.get(box[1][0], ShuffleNetError)(box[1][1])
                out = Path(box[0])
        if error is not None:
            raise error
        assert out is not None
        return out

    def _release_lock(self, discard: bool = False) -> None:
        """Drop the run-directory lock; ``discard``: also remove a directory this run made and left empty
        (only while holding its lock: a run that lost the lock never touches the winner's directory)."""
        created = self.created_dir if self.lock is not None else None
        try:
            leftover = {p.name for p in created.iterdir()} if discard and created is not None else None
        except OSError:  # never made (the mkdir failed)
            leftover = None
        if created is not None and leftover is not None and leftover <= {".lock"}:
            (created / ".lock").unlink(missing_ok=True)
            if self.lock is not None:
                self.lock.release()
                self.lock = None
            try:
                created.rmdir()
            except OSError:
                pass
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def _check_resume_config(self, saved: dict[str, Any], tr: dict[str, Any]) -> None:
        now = asdict(self.cfg)
        diffs = [k for k in RESUME_FIXED if k in saved and saved[k] != now.get(k)]
        if diffs:
            what = ", ".join(f"{k}: {saved[k]!r} -> {now[k]!r}" for k in diffs)
            raise UserInputError(f"cannot resume {self.resume_path}: settings differ from the checkpoint ({what})")

        def differs(k: str) -> bool:
            if k == "lr":  # None means the recipe's scaled lr: compare the lr actually used
                lr = saved.get("lr")
                saved_lr = float(lr) if lr is not None else BASE_LR * int(saved.get("batch_size", 0)) / BASE_BATCH
                return "batch_size" in saved and saved_lr != self.cfg.effective_lr()
            return k in saved and saved[k] != now.get(k)

        changed = [k for k in RESUME_CHANGEABLE if differs(k)]
        step, epoch, batch = int(tr.get("step", 0)), int(tr.get("epoch", 0)), int(tr.get("batch_in_epoch", 0))
        what = ", ".join(f"{k}: {saved.get(k)!r} -> {now[k]!r}" for k in changed)
        if tr.get("finished") and changed:
            weights = self.resume_path.parent / "model.pt" if self.resume_path else None
            weights = weights if weights is not None and weights.is_file() else self.resume_path
            flags = " ".join(f"--{k.replace('_', '-')} {now[k]}" for k in ("epochs", "lr", "warmup_steps")
                             if k in changed)
            raise UserInputError(
                f"cannot resume {self.resume_path} with other settings ({what}): that run finished after "
                f"{saved.get('epochs')} epochs ({step} steps) with its linear lr schedule decayed to 0, so there is "
                f"nothing to continue; to train further, start a new run from its weights (a new optimizer and "
                f"schedule): shufflenet train --config {self.resume_path.parent / 'config.json'} --init-from "
                f"{weights} {flags + ' ' if flags else ''}-o NEW_DIR")
        if epoch > self.cfg.epochs or (epoch == self.cfg.epochs and batch > 0):
            raise UserInputError(f"cannot resume {self.resume_path} with epochs {self.cfg.epochs}: it has already "
                                 f"trained {epoch} epochs{f' and {batch} steps' if batch else ''} (step {step})")
        if self.cfg.stop_after_steps is not None and self.cfg.stop_after_steps <= step and not tr.get("finished"):
            raise UserInputError(f"stop_after_steps {self.cfg.stop_after_steps} is not after the checkpoint's "
                                 f"step {step}")
        if changed:
            self.log(f"warning: resuming with changed settings ({what}) from step {step}; the run will not match "
                     "an uninterrupted one")

    def _load_state(self, ck: dict[str, Any]) -> None:
        tr = ck["train"]
        try:
            self.raw.load_state_dict(ck["state_dict"])
            self.optimizer.load_state_dict(tr["optimizer"])
            self.scheduler.load_state_dict(tr["scheduler"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise WeightsError(f"{self.resume_path}: does not fit this model/optimizer "
                               f"({first_line(exc)[:200]})") from None
        # load_state_dict restores the saved hyper-parameters; this run's config must be what applies (and
        # what config.json records): group 0 holds the conv/linear weights (recipe.parameter_groups)
        for i, g in enumerate(self.optimizer.param_groups):
            g["momentum"], g["nesterov"] = self.cfg.momentum, self.cfg.nesterov
            if i == 0:
                g["weight_decay"] = self.cfg.weight_decay
        lr_before = self.optimizer.param_groups[0]["lr"]
        # the current config wins for the schedule when epochs/lr/warm-up changed (see the warning above)
        lam = LinearDecay(self.total_steps, self.cfg.warmup_steps)
        if (any(vars(f) != vars(lam) for f in self.scheduler.lr_lambdas)
                or any(b != self.lr for b in self.scheduler.base_lrs)):
            self.scheduler.lr_lambdas = [LinearDecay(self.total_steps, self.cfg.warmup_steps)
                                         for _ in self.optimizer.param_groups]
            self.scheduler.base_lrs = [self.lr for _ in self.optimizer.param_groups]
            for g in self.optimizer.param_groups:
                g["initial_lr"] = self.lr
                g["lr"] = self.lr * lam(self.scheduler.last_epoch)
            self.log(f"lr schedule recomputed for {self.total_steps} steps (peak {self.lr:.4g}, warm-up "
                     f"{self.cfg.warmup_steps}): the lr at step {self.scheduler.last_epoch} goes from "
                     f"{lr_before:.4g} to {self.optimizer.param_groups[0]['lr']:.4g}")
        if self.scaler is not None and tr.get("scaler"):
            self.scaler.load_state_dict(tr["scaler"])
        if self.ema is not None:
            if ck.get("ema_state_dict") is not None:
                self.ema.load_state_dict(ck["ema_state_dict"])
            else:
                self.ema = ModelEMA(self.raw, self.cfg.ema_decay or 0.9999)
        self.epoch, self.batch_in_epoch, self.step = int(tr["epoch"]), int(tr["batch_in_epoch"]), int(tr["step"])
        self.finished = self.was_finished = bool(tr.get("finished", False))
        self.running = dict(tr.get("running") or self.running)
        self.totals = dict(tr.get("totals") or self.totals)
        self.history = list(tr.get("history") or [])
        self.prior_elapsed = float(tr.get("elapsed_s", 0.0))
        self.final = dict(tr.get("final") or {})
        rngs = tr.get("rng") or []
        if rngs:
            same_world = int(tr.get("world_size", 1)) == self.ctx.world_size
            self.rng_to_restore = rngs[self.ctx.rank] if same_world and self.ctx.rank < len(rngs) else rngs[0]
            if not same_world:
                self.log(f"warning: resuming on {self.ctx.world_size} processes a run saved on "
                         f"{tr.get('world_size')}: data order continues approximately, not exactly")
        self.log(f"resumed from {self.resume_path}: epoch {self.epoch + 1}, step {self.step}/{self.total_steps}")

    def _run_info(self) -> dict[str, Any]:
        """The run's derived settings, then the environment it runs in (``threads`` as at this start)."""
        dev, size = self.ctx.device, self.data.preprocess.image_size
        env = capture_environment(device=dev, batch=self.per_rank_batch,
                                  memory_format="channels_last" if self.cfg.channels_last else "contiguous",
                                  input_size=(self.per_rank_batch, self.data.in_chans, size, size))
        return {
            "model": self.cfg.model, "model_kwargs": self.model_kwargs, "dataset": self.cfg.dataset,
            "train_images": len(self.data.train),  # type: ignore[arg-type]
            "val_images": len(self.data.val) if self.data.val is not None else 0,  # type: ignore[arg-type]
            "val_set": (f"{self.cfg.holdout} training images held out of training" if self.cfg.holdout
                        else "the dataset's validation/test split"),
            "world_size": self.ctx.world_size, "backend": self.ctx.backend,
            "global_batch": self.cfg.batch_size, "per_rank_batch": self.per_rank_batch, "peak_lr": self.lr,
            "steps_per_epoch": self.steps_per_epoch, "total_steps": self.total_steps,
            "params": sum(p.numel() for p in self.raw.parameters()), "amp": self.cfg.amp,
            **env, "device_name": env.get("gpu_name") or env["cpu_model"],
        }

    # ------------------------------------------------------------------------------- checkpoints
    def _meta(self, target: nn.Module | None = None) -> dict[str, Any]:
        return {
            "model": self.cfg.model, "model_kwargs": self.model_kwargs, "custom_model": self.custom_model is not None,
            "num_classes": self.data.num_classes, "in_chans": self.data.in_chans,
            "class_names": list(self.data.class_names), "dataset": self.cfg.dataset,
            "preprocess": self.data.preprocess.to_dict(), "input_convention": self.data.preprocess.describe(),
            "epoch": self.epoch, "step": self.step, "config": asdict(self.cfg),
        }

    def _gather_rng(self) -> list[dict[str, Any]]:
        state = capture_rng(self.loader_gen)
        if not self.ctx.distributed:
            return [state]
        import torch.distributed as dist

        out: list[Any] = [None] * self.ctx.world_size
        dist.all_gather_object(out, state)
        return out

    def save(self) -> Path | None:
        """Write last.pt (rank 0); every rank must call it (RNG states are gathered)."""
        rngs = self._gather_rng()
        if not self.ctx.is_main:
            # Rank 0 writes it; the other ranks still need to name it if the run diverges later.
            self.last_saved = (self.out / "last.pt", self.step)
            return None
        payload = {
            "state_dict": self.raw.state_dict(),
            "ema_state_dict": self.ema.state_dict() if self.ema is not None else None,
            "meta": self._meta(),
            "train": {
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "step": self.step,
                "finished": self.finished, "rng": rngs, "running": dict(self.running), "totals": dict(self.totals),
                "history": self.history, "elapsed_s": self.elapsed(), "world_size": self.ctx.world_size,
                "config": asdict(self.cfg), "final": self.final,
            },
        }
        try:
            path = save_checkpoint(self.out / "last.pt", payload)
        except OutputWriteError as exc:
            if self.last_saved is not None or (self.resume_path is not None and self.resume_path.parent == self.out):
                at = f" (step {self.last_saved[1]})" if self.last_saved is not None else ""
                hint = f"{at}; free space, then resume: shufflenet train --resume {self.out / 'last.pt'}"
            else:
                hint = ""
            raise type(exc)(f"{exc}{hint}") from None
        self.last_saved = (path, self.step)
        return path

    def elapsed(self) -> float:
        return self.prior_elapsed + (time.perf_counter() - self.t_start)

    # ------------------------------------------------------------------------------------ training
    def _set_train_mode(self) -> None:
        self.model.train()
        if self.cfg.freeze_bn:
            for m in self.model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()

    def _to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.to(self.ctx.device, non_blocking=True)
        y = y.to(self.ctx.device, non_blocking=True)
        if self.cfg.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    def _check_finite(self, loss: torch.Tensor, grad_norm: torch.Tensor | None = None) -> float:
        """The loss as a float; stops the run when it (or the gradient norm, when given) is not finite.

        Called before ``optimizer.step()``, so a bad step is never applied and ``last.pt`` keeps good
        weights. One host sync for both values (and one all-reduce under DDP, so every rank stops).
        """
        probe = loss.detach().float().reshape(1)
        if grad_norm is not None:
            probe = torch.cat([probe, grad_norm.detach().float().reshape(1).to(probe.device)])
        values = probe.tolist()
        value = values[0]
        bad_loss = not math.isfinite(value)
        bad_grad = len(values) > 1 and not math.isfinite(values[1])
        if self.ctx.distributed:
            # the same all-reduce lets the ranks agree on a stop signal, so all stop after the same step
            flag = torch.tensor([float(bad_loss), float(bad_grad), float(self.stop.signum or 0)])
            self.ctx.all_reduce_(flag, "max")
            bad_loss, bad_grad = bool(flag[0] > 0), bool(flag[1] > 0)
            self.stop_signum = int(flag[2])
        if bad_loss or bad_grad:
            if self.last_saved is not None:
                keep = f"the last good checkpoint is {self.last_saved[0]} (step {self.last_saved[1]})"
            elif self.resume_path is not None:
                keep = f"the last good checkpoint is {self.resume_path}"
            else:
                keep = "no checkpoint had been written yet"
            what = f"non-finite loss ({value})" if bad_loss else f"non-finite gradients (loss {value:.4g})"
            raise TrainingDiverged(
                f"{what} at epoch {self.epoch + 1}, step {self.step + 1}: training stopped "
                f"before applying it; {keep}. Lower the learning rate (--lr), add --grad-clip, or use "
                "--amp bf16/none instead of fp16")
        return value

    def _train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, torch.Tensor]:
        cfg = self.cfg
        x, y = self._to_device(x, y)
        with autocast_context(self.ctx.device, cfg.amp):
            logits = self.model(x)
            loss = self.criterion(logits.float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            # fp16: the scaler itself skips steps with inf/NaN gradients (and lowers the scale); only
            # a non-finite loss is divergence.
            value = self._check_finite(loss)
            self.scaler.scale(loss).backward()
            if cfg.grad_clip:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.raw.parameters(), cfg.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            if cfg.grad_clip:
                norm = nn.utils.clip_grad_norm_(self.raw.parameters(), cfg.grad_clip)
            else:
                norm = _grad_norm(self.raw.parameters())
            value = self._check_finite(loss, norm)
            self.optimizer.step()
        self.scheduler.step()
        self._average_bn_stats()
        if self.ema is not None:
            self.ema.update(self.raw)
        correct = (logits.detach().argmax(1) == y).sum()
        return value, correct

    @torch.no_grad()
    def _average_bn_stats(self) -> None:
        """DDP: set every rank's BN running mean/var to their mean over ranks (timm's ``distribute_bn``,
        reduce mode), after every step.

        Each rank updates its running statistics from its own part of the batch, and only rank 0 writes
        checkpoints. Averaging after every step (not only before evaluation and saving) keeps the buffers
        identical on all ranks at any step a checkpoint may be written (a signal can come at any step),
        so resuming is exact and every rank evaluates the same model. ``num_batches_tracked`` is equal on
        all ranks already. One all-reduce of a few thousand floats per step.
        """
        if not self.bn_buffers or self.cfg.freeze_bn:
            return
        from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

        groups: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
        for b in self.bn_buffers:
            groups.setdefault((b.dtype, b.device), []).append(b)
        for bufs in groups.values():
            flat = _flatten_dense_tensors(bufs)
            self.ctx.all_reduce_(flat)
            flat /= self.ctx.world_size
            torch._foreach_copy_(bufs, list(_unflatten_dense_tensors(flat, bufs)))  # one launch, not one per BN

    def _signal_now(self) -> int:
        """The stop signal received so far by any rank (one all-reduce under DDP; 0 for none)."""
        signum = float(self.stop.signum or 0)
        if self.ctx.distributed:
            t = torch.tensor([signum])
            self.ctx.all_reduce_(t, "max")
            signum = float(t[0])
        return int(signum)

    def _interrupted(self, signum: int, where: str, checkpoint: Path | None, written: bool) -> TrainingInterrupted:
        name = signal.Signals(signum).name if signum in signal.valid_signals() else f"signal {signum}"
        if checkpoint is None:
            return TrainingInterrupted(f"interrupted ({name}) {where}; no checkpoint had been written yet", signum,
                                       None)
        how = (f"shufflenet train --resume {checkpoint}" if self.ctx.world_size == 1
               else f"the same torchrun command with --resume {checkpoint}")
        state = "resumable checkpoint written" if written else "the resumable checkpoint is current"
        return TrainingInterrupted(f"interrupted ({name}) {where}; {state}: {checkpoint}; resume with: {how}",
                                   signum, str(checkpoint))

    def _out_of_memory(self) -> ShuffleNetError:
        size = self.data.preprocess.image_size if hasattr(self, "data") else self.cfg.image_size
        where = f"{self.ctx.device.type} memory" if self.ctx.device.type == "cuda" else "memory"
        if self.last_saved is not None:
            keep = f"; the last checkpoint is {self.last_saved[0]} (step {self.last_saved[1]})"
        else:
            keep = ""
        return ShuffleNetError(
            f"out of {where} training {self.cfg.model} at {getattr(self, 'per_rank_batch', '?')} images per process"
            f"{f' of {size}x{size} px' if size else ''}: lower --batch-size or --image-size{keep}")

    def _stopped_at_once(self) -> TrainingInterrupted:
        """A second signal (one process): nothing was written for this step; name the last checkpoint."""
        signum = self.stop.second or signal.SIGINT
        if self.last_saved is not None:
            ck, at = self.last_saved
        elif self.resume_path is not None and self.ckpt is not None:
            ck, at = self.resume_path, int(self.ckpt["train"].get("step", 0))
        else:
            return TrainingInterrupted("interrupted twice: stopped at once; no checkpoint had been written yet",
                                       signum, None)
        return TrainingInterrupted(
            f"interrupted twice: stopped at once at step {self.step}/{self.total_steps}; the last checkpoint is "
            f"{ck} (step {at}), intact; resume with: shufflenet train --resume {ck}", signum, str(ck))

    def _epoch(self, epoch: int) -> bool:
        """Train (the rest of) one epoch; False when stopped by ``stop_after_steps``."""
        cfg = self.cfg
        start = self.batch_in_epoch
        self.sampler.set_epoch(epoch)
        self.sampler.set_start(start * self.per_rank_batch)
        self._set_train_mode()
        show = cfg.progress and self.ctx.is_main and sys.stderr.isatty()
        from tqdm import tqdm

        self.bar = tqdm(total=self.steps_per_epoch, initial=start, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                        disable=not show, leave=False, dynamic_ncols=True, unit="it", file=sys.stderr)
        seg_t0, seg_images = time.perf_counter(), 0
        t_prev = seg_t0  # training time = wall time between steps (data loading included, saving excluded)
        correct_t = torch.zeros((), dtype=torch.int64, device=self.ctx.device)
        try:
            for b, (x, y) in enumerate(self.loader, start=start):
                if b >= self.steps_per_epoch:
                    break
                value, correct = self._train_step(x, y)
                n = int(y.shape[0])
                correct_t += correct
                self.running["loss_sum"] += value * n
                self.running["count"] += n
                self.step += 1
                self.batch_in_epoch = b + 1
                seg_images += n * self.ctx.world_size
                self.running["images"] += n * self.ctx.world_size
                now = time.perf_counter()
                self.running["train_time"] += now - t_prev
                t_prev = now
                if show:
                    elapsed = time.perf_counter() - seg_t0
                    ips = seg_images / elapsed if elapsed > 0 else 0.0
                    steps_left = self.total_steps - self.step
                    eta = steps_left * elapsed / max(1, b + 1 - start)
                    self.bar.set_postfix_str(
                        f"loss {self.running['loss_sum'] / max(1, self.running['count']):.4f} "
                        f"lr {self.optimizer.param_groups[0]['lr']:.4g} {ips:.0f} img/s "
                        f"run ETA {_hms(eta)}", refresh=False)
                    self.bar.update(1)
                stop = cfg.stop_after_steps is not None and self.step >= cfg.stop_after_steps
                signum = self.stop_signum if self.ctx.distributed else (self.stop.signum or 0)
                if stop or signum or (cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0):
                    self.running["correct"] += int(correct_t.item())
                    correct_t.zero_()
                    self.save()
                    t_prev = time.perf_counter()
                if signum:
                    # torchrun stops the other ranks when one exits: no rank leaves before rank 0 has written
                    self.ctx.barrier()
                    raise self._interrupted(signum, f"at epoch {epoch + 1}, step {self.step}/{self.total_steps}",
                                            self.out / "last.pt", True)
                if stop:
                    return False
        finally:
            self.bar.close()
            self.bar = None
        self.running["correct"] += int(correct_t.item())
        return True

    def _end_epoch(self, epoch: int, epoch_wall: float) -> None:
        cfg = self.cfg
        sums = torch.tensor([self.running["loss_sum"], float(self.running["correct"]), float(self.running["count"])],
                            dtype=torch.float64)
        self.ctx.all_reduce_(sums)
        loss_sum, correct, count = sums.tolist()
        row: dict[str, Any] = {
            "epoch": epoch + 1, "step": self.step, "lr": self.optimizer.param_groups[0]["lr"],
            "train_loss": loss_sum / count if count else None,
            "train_top1": 100.0 * correct / count if count else None,
        }
        last = epoch + 1 == cfg.epochs
        if self.val_loader is not None and ((cfg.eval_every and (epoch + 1) % cfg.eval_every == 0) or last):
            res = self._evaluate(self.raw)
            row.update(val_loss=res.loss, val_top1=res.top1, val_top5=res.top5)
            if self.ema is not None:
                res = self._evaluate(self.ema.module)
                row.update(ema_val_loss=res.loss, ema_val_top1=res.top1, ema_val_top5=res.top5)
            self._set_train_mode()
        t = self.running["train_time"]
        row.update(epoch_time_s=round(epoch_wall, 3), images_per_s=round(self.running["images"] / t, 1) if t else None,
                   elapsed_s=round(self.elapsed(), 3), threads=torch.get_num_threads(),
                   world_size=self.ctx.world_size)
        self.totals["train_time"] += self.running["train_time"]
        self.totals["images"] += self.running["images"]
        self.history.append(row)
        self.running = {"loss_sum": 0.0, "correct": 0, "count": 0, "train_time": 0.0, "images": 0}
        self.epoch, self.batch_in_epoch = epoch + 1, 0
        assert self.metrics is not None
        self.metrics.append(row, self.history)
        msg = (f"epoch {epoch + 1}/{cfg.epochs} step {self.step}/{self.total_steps} "
               f"loss {row['train_loss']:.4f} train_top1 {row['train_top1']:.2f}")
        if "val_top1" in row:
            msg += f" val_loss {row['val_loss']:.4f} val_top1 {row['val_top1']:.2f} val_top5 {row['val_top5']:.2f}"
        if "ema_val_top1" in row:
            msg += f" ema_val_top1 {row['ema_val_top1']:.2f}"
        msg += f" lr {row['lr']:.4g} {row['images_per_s'] or 0:.0f} img/s {epoch_wall:.1f}s"
        self.log(msg)
        self.save()

    def _evaluate(self, model: nn.Module) -> EvalResult:
        assert self.val_loader is not None
        return evaluate(model, self.val_loader, device=self.ctx.device, amp=self.cfg.amp,
                        channels_last=self.cfg.channels_last, ctx=self.ctx, num_classes=self.data.num_classes,
                        confusion=False, progress=self.cfg.progress and self.ctx.is_main and sys.stderr.isatty())

    def _recalibrate(self, target: nn.Module) -> int:
        cfg = self.cfg
        steps = cfg.bn_recalibrate_steps or self.steps_per_epoch
        self.sampler.set_epoch(cfg.epochs)  # a fresh order, the same on every run
        self.sampler.set_start(0)

        def batches() -> Any:
            for i, (x, y) in enumerate(self.loader):
                if i >= steps:
                    break
                signum = self._signal_now()
                if signum:  # nothing to save: last.pt of the end of training is current
                    raise self._interrupted(signum, "during the final BN recalibration (all epochs trained)",
                                            self.out / "last.pt", False)
                yield self._to_device(x, y)[0]

        def fwd(m: nn.Module, x: torch.Tensor) -> None:
            with autocast_context(self.ctx.device, cfg.amp):
                m(x)

        world = self.ctx.world_size
        reduce = (lambda t: self.ctx.all_reduce_(t.clone()) / world) if self.ctx.distributed else None
        return recalibrate_bn(target, batches(), forward=fwd, all_reduce_mean=reduce)

    # ------------------------------------------------------------------------------------------ run
    def run(self) -> TrainResult:
        self.t_start = time.perf_counter()
        failed = True
        try:
            try:
                self._setup()
                self.stop.install()
                result = self._run()
            except KeyboardInterrupt:
                if self.stop.signum is None:
                    raise
                raise self._stopped_at_once() from None
            except RuntimeError as exc:  # torch.OutOfMemoryError (CUDA) included
                if not (isinstance(exc, torch.OutOfMemoryError) or "can't allocate memory" in str(exc)):
                    raise
                raise self._out_of_memory() from None
            failed = False
            return result
        finally:
            self.stop.restore()
            if self.metrics is not None:
                self.metrics.close()
            self._release_lock(discard=failed)

    def _run(self) -> TrainResult:
        cfg = self.cfg
        if self.ctx.is_main and not self.finished:
            self.log(f"training {cfg.model} on {cfg.dataset} ({len(self.data.train)} images, "  # type: ignore[arg-type]
                     f"{self.data.num_classes} classes) for {cfg.epochs} epochs = {self.total_steps} steps, "
                     f"global batch {cfg.batch_size} on {self.ctx.world_size} x {self.ctx.device.type}, "
                     f"peak lr {self.lr:.4g}; outputs in {self.out}")
        if self.rng_to_restore is not None:
            restore_rng(self.rng_to_restore, self.loader_gen)
        stopped = False
        for epoch in range(self.epoch, cfg.epochs):
            if self.finished:
                break
            t0 = time.perf_counter()
            if not self._epoch(epoch):
                stopped = True
                break
            self._end_epoch(epoch, time.perf_counter() - t0)
            signum = self._signal_now()  # one that came during the epoch-end evaluation or save
            if signum:
                self.ctx.barrier()  # rank 0 has written last.pt (see _epoch)
                raise self._interrupted(signum, f"after epoch {epoch + 1} (step {self.step}/{self.total_steps})",
                                        self.out / "last.pt", True)
        if stopped:
            self.log(f"stopped after step {self.step} (stop_after_steps); resume with --resume "
                     f"{self.out / 'last.pt'}")
            return self._result("stopped")
        if not self.finished:
            self._finish()
        elif self.ctx.is_main and not (self.out / "model.pt").exists():
            self._write_weights()  # a finished run whose model.pt failed to be written (full disk)
        return self._result("finished")

    def _finish(self) -> None:
        cfg = self.cfg
        target = self.ema.module if self.ema is not None else self.raw
        final: dict[str, Any] = {}
        if cfg.bn_recalibrate:
            t0 = time.perf_counter()
            n = self._recalibrate(target)
            final["bn_recalibration_batches"] = n
            self.log(f"BN statistics recalibrated over {n} batches ({time.perf_counter() - t0:.1f}s)")
        if self.val_loader is not None:
            res = self._evaluate(target)
            final.update(val_loss=res.loss, val_top1=res.top1, val_top5=res.top5, val_images=res.count)
            self.log(f"final{' (EMA)' if self.ema is not None else ''}: val_loss {res.loss:.4f} "
                     f"val_top1 {res.top1:.2f} val_top5 {res.top5:.2f}")
        final["weights"] = "ema" if self.ema is not None else "model"
        self.final = final
        self.finished = True
        self.save()
        if self.ctx.is_main:
            self._write_weights()

    def _write_weights(self) -> None:
        from shufflenet.models.weights import save_weights

        target = self.ema.module if self.ema is not None else self.raw
        path = self.out / "model.pt"
        with guard_write(path, f"{self.out / 'last.pt'} (the finished run) is intact: free space, then "
                               f"`shufflenet train --resume {self.out / 'last.pt'}` writes {path.name}"):
            save_weights(target, path, meta=self._meta())

    def _result(self, status: str) -> TrainResult:
        t, imgs = self.totals["train_time"] + self.running["train_time"], self.totals["images"] + self.running["images"]
        weights = self.out / "model.pt"
        result = TrainResult(
            status=status, output_dir=str(self.out), model_name=self.cfg.model, epochs=self.cfg.epochs,
            step=self.step, total_steps=self.total_steps, world_size=self.ctx.world_size, final=dict(self.final),
            history=list(self.history), wall_time_s=round(self.elapsed(), 3), train_time_s=round(t, 3),
            images_per_s=round(imgs / t, 1) if t else 0.0,
            checkpoint=str(self.out / "last.pt") if self.last_saved or self.resume_path else None,
            weights=str(weights) if status == "finished" and weights.exists() else None,
            model=(self.ema.module if self.ema is not None and status == "finished" else self.raw))
        if self.ctx.is_main and status == "finished" and not (self.was_finished and (self.out / "summary.json").exists()):
            _write_json(self.out / "summary.json", result.to_dict())
        return result


def _hms(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _grad_norm(parameters: Iterable[nn.Parameter]) -> torch.Tensor:
    """The total 2-norm of the gradients (what ``clip_grad_norm_`` computes), without changing them."""
    grads = [p.grad.detach() for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    if hasattr(nn.utils, "get_total_norm"):  # torch >= 2.6: fused (foreach) kernels
        return nn.utils.get_total_norm(grads)
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads]))
