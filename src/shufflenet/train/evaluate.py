"""Evaluation: top-1/top-5 accuracy and loss of a model on a dataset; a confusion matrix PNG (<= 20 classes).

:func:`evaluate` runs a model over a loader (sharded across ranks under torchrun, every sample counted
once). :func:`run_eval` evaluates a checkpoint in any format :func:`shufflenet.load_weights` reads: this
package's training checkpoints and weight files carry the model name, its keywords, the class names and
the input preprocessing; torchvision and official Megvii checkpoints need the model name (and their input
convention is applied: ImageNet mean/std for torchvision, BGR 0-255 for Megvii).
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from shufflenet.errors import UserInputError
from shufflenet.models.weights import FORMAT_TAG, WeightsInfo, read_checkpoint
from shufflenet.render import format_cell
from shufflenet.result import Column, Figure, ResultBase, Table, json_safe
from shufflenet.train.config import EvalConfig
from shufflenet.train.data import Preprocess, ShardSampler, build_data, imagenet_preprocess, make_loader
from shufflenet.train.distributed import DistContext, cleanup, setup

ACCURACY = ("top-1 / top-5 = % of the images whose true class is the model's first / among its first five "
            "predictions")
EVAL_LOSS = "loss = mean cross-entropy of the logits against the true class (no label smoothing)"
CONFUSION = ("confusion matrix: rows = true class, columns = predicted class; colour = fraction of the true "
             "class, numbers = image counts")
MAX_CONFUSION_CLASSES = 20  # larger matrices are unreadable as a picture (EvalConfig.max_confusion_classes)
CONFUSION_DPI = 120
METRIC_COLUMNS = [Column("loss", "loss", fmt=".4f"), Column("top1", "top-1", "%", ".2f"),
                  Column("top5", "top-5", "%", ".2f"), Column("count", "images"), Column("num_classes", "classes")]


@dataclass
class EvalResult(ResultBase):
    """Loss (cross-entropy, no label smoothing), top-1/top-5 accuracy in percent, sample count; a result of
    the contract in :mod:`shufflenet.result` (its figure: the confusion matrix, up to 20 classes)."""

    loss: float
    top1: float
    top5: float
    count: int
    num_classes: int
    confusion: torch.Tensor | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return json_safe({"loss": self.loss, "top1": self.top1, "top5": self.top5, "count": self.count,
                          "num_classes": self.num_classes})

    def tables(self) -> list[Table]:
        return [Table("evaluation", list(METRIC_COLUMNS), [self.to_dict()], key="eval")]

    def figures(self) -> list[Figure]:
        if self.confusion is None or self.num_classes > MAX_CONFUSION_CLASSES:
            return []
        return [confusion_figure(self.confusion, [], f"top-1 {self.top1:.2f}%, {self.count} images")]

    def conventions(self) -> list[str]:
        return [ACCURACY, EVAL_LOSS] + ([CONFUSION] if self.figures() else [])


def autocast_context(device: torch.device, amp: str) -> contextlib.AbstractContextManager[Any]:
    """``torch.autocast`` for ``amp`` in ``("bf16", "fp16")`` (fp16 only on CUDA), else a no-op."""
    if amp == "none":
        return contextlib.nullcontext()
    if amp == "fp16" and device.type != "cuda":
        raise UserInputError("amp 'fp16' needs CUDA (use 'bf16' on CPU, or 'none')")
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.no_grad()
def evaluate(model: nn.Module, loader: Any, *, device: torch.device | str = "cpu", amp: str = "none",
             channels_last: bool = False, ctx: DistContext | None = None, num_classes: int | None = None,
             confusion: bool = True, progress: bool = False, desc: str = "eval") -> EvalResult:
    """Run ``model`` (in eval mode) over ``loader``; results summed over ranks when ``ctx`` is distributed."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    c1 = torch.zeros((), dtype=torch.int64, device=device)
    c5 = torch.zeros((), dtype=torch.int64, device=device)
    count = 0
    conf: torch.Tensor | None = None
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(loader), desc=desc, leave=False, dynamic_ncols=True)
    try:
        for x, y in loader:
            x = x.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True)
            if channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast_context(device, amp):
                logits = model(x)
            logits = logits.float()
            n_cls = logits.shape[1]
            loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").double()
            top = logits.topk(min(5, n_cls), dim=1).indices
            hit = top.eq(y[:, None])
            c1 += hit[:, 0].sum()
            c5 += hit.any(dim=1).sum()
            count += y.numel()
            if confusion:
                k = num_classes or n_cls
                if conf is None:
                    conf = torch.zeros(k * k, dtype=torch.int64, device=device)
                conf += torch.bincount(y * k + top[:, 0], minlength=k * k)[: k * k]
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        model.train(was_training)
    k = num_classes or 0
    totals = torch.stack([loss_sum, c1.double(), c5.double(), torch.tensor(float(count), device=device,
                                                                         dtype=torch.float64)])
    if ctx is not None and ctx.distributed:
        ctx.all_reduce_(totals)
        if confusion:
            if conf is None:  # a rank with no samples still joins the reduction
                conf = torch.zeros(k * k, dtype=torch.int64, device=device)
            ctx.all_reduce_(conf)
    loss_total, n1, n5, n = totals.tolist()
    n_classes = num_classes or (int(round(conf.numel() ** 0.5)) if conf is not None else 0)
    mat = conf.view(n_classes, n_classes).cpu() if conf is not None and n_classes else None
    if n <= 0:
        return EvalResult(float("nan"), float("nan"), float("nan"), 0, n_classes, mat)
    return EvalResult(loss_total / n, 100.0 * n1 / n, 100.0 * n5 / n, int(n), n_classes, mat)


def draw_confusion(fig: Any, matrix: torch.Tensor, class_names: list[str], title: str = "") -> None:
    """Draw a confusion matrix into the matplotlib Figure ``fig`` (rows: true class, columns: predicted;
    colour = row-normalised rate, text = counts). ``class_names`` of another length than the matrix's
    side are replaced by class indices."""
    k = matrix.shape[0]
    names = class_names if len(class_names) == k else [str(i) for i in range(k)]
    counts = matrix.double()
    rates = counts / counts.sum(dim=1, keepdim=True).clamp(min=1)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(rates.numpy(), cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    ax.set_xticks(range(k), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title, fontsize=10)
    for i in range(k):
        for j in range(k):
            v = int(matrix[i, j])
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                        color="white" if rates[i, j] > 0.5 else "black")
    fig.tight_layout()


def confusion_figure(matrix: torch.Tensor, class_names: list[str], title: str = "") -> Figure:
    """The confusion matrix as a :class:`shufflenet.result.Figure` (drawn only when a renderer asks)."""
    side = max(4.0, 0.55 * matrix.shape[0] + 2.5)
    return Figure(title or "confusion matrix", lambda fig: draw_confusion(fig, matrix, class_names, title),
                  key="confusion", size=(side + 1, side), dpi=CONFUSION_DPI)


def write_confusion_png(matrix: torch.Tensor, class_names: list[str], path: str | os.PathLike[str],
                        title: str = "") -> Path | None:
    """Save a confusion matrix (see :func:`draw_confusion`) as a PNG, atomically. Returns ``None`` when
    matplotlib is not installed."""
    from shufflenet.measure.plots import save_figure

    return save_figure(confusion_figure(matrix, class_names, title), path)


# ------------------------------------------------------------------------------- loading for inference

@dataclass
class LoadedModel:
    """A model with its weights and what the checkpoint says about its input and classes."""

    model: nn.Module
    name: str
    info: WeightsInfo
    meta: dict[str, Any]
    preprocess: Preprocess
    class_names: list[str]

    @property
    def num_classes(self) -> int:
        fc = getattr(self.model, "fc", None)
        if isinstance(fc, nn.Linear):
            return fc.out_features
        return len(self.class_names)


def _infer_kwargs(obj: Any) -> dict[str, Any]:
    """``num_classes``/``in_chans`` read off a plain state dict (when no metadata says them)."""
    state = obj
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state"):
            if isinstance(obj.get(key), dict):
                state = obj[key]
                break
    if not isinstance(state, dict):
        return {}
    kwargs: dict[str, Any] = {}
    for prefix in ("", "module."):
        for key in ("fc.weight", "classifier.0.weight"):
            t = state.get(prefix + key)
            if isinstance(t, torch.Tensor) and t.dim() == 2:
                kwargs["num_classes"] = int(t.shape[0])
        for key in ("conv1.0.weight", "first_conv.0.weight"):
            t = state.get(prefix + key)
            if isinstance(t, torch.Tensor) and t.dim() == 4 and t.shape[1] != 3:
                kwargs["in_chans"] = int(t.shape[1])
    return kwargs


def load_model_for_inference(checkpoint: str | os.PathLike[str], model: str | None = None,
                             model_kwargs: dict[str, Any] | None = None, *, image_size: int | None = None,
                             input_convention: str = "auto",
                             device: torch.device | str = "cpu") -> LoadedModel:
    """Build the checkpoint's model (name and keywords from its metadata, or ``model``/``model_kwargs``),
    load the weights with :func:`shufflenet.load_weights`, and work out its input preprocessing."""
    from shufflenet.models import create_model, load_weights

    obj = read_checkpoint(checkpoint)
    meta: dict[str, Any] = {}
    if isinstance(obj, dict) and obj.get("format") == FORMAT_TAG and isinstance(obj.get("meta"), dict):
        meta = dict(obj["meta"])
    name = model or meta.get("model")
    if not name:
        raise UserInputError(f"{checkpoint}: the checkpoint does not name its model; pass --model NAME "
                             "(and e.g. --layout torchvision for torchvision's ShuffleNet V2 weights)")
    if meta.get("model") == name and isinstance(meta.get("model_kwargs"), dict):
        kwargs = dict(meta["model_kwargs"])
    else:
        kwargs = _infer_kwargs(obj)
    kwargs.update({k: v for k, v in (model_kwargs or {}).items() if v is not None})
    del obj
    net = create_model(name, **kwargs)
    info = load_weights(net, checkpoint)
    if "preprocess" in meta and isinstance(meta["preprocess"], dict):
        pp = Preprocess.from_dict(meta["preprocess"])
    else:
        in_chans = int(kwargs.get("in_chans", 3))
        if in_chans == 1:
            from shufflenet.train.data import fashion_mnist_preprocess

            pp = fashion_mnist_preprocess(image_size or 28)
        else:
            pp = imagenet_preprocess(image_size or 224, "official" if info.format == "megvii" else "torchvision")
    if input_convention != "auto" and pp.in_chans == 3 and pp.kind in ("torchvision", "official"):
        pp = imagenet_preprocess(image_size or pp.image_size, input_convention)
    elif image_size and image_size != pp.image_size:
        pp = Preprocess(pp.kind, image_size, int(round(image_size * pp.resize / pp.image_size)), pp.in_chans,
                        pp.mean, pp.std, pp.bgr_255)
    net.to(torch.device(device)).eval()
    classes = [str(c) for c in meta.get("class_names") or []]
    return LoadedModel(net, name, info, meta, pp, classes)


# ------------------------------------------------------------------------------------------- run_eval

@dataclass
class EvalReport(ResultBase):
    """A checkpoint evaluated on a dataset (:func:`run_eval`), as a result of the contract in
    :mod:`shufflenet.result`: the summary (the CSV row), accuracy per class and the confusion matrix as a
    figure (both up to ``max_confusion_classes`` classes)."""

    checkpoint: str
    model: str
    dataset: str
    split: str
    result: EvalResult
    weights_format: str
    input_convention: str
    class_names: list[str]
    confusion_png: str | None = None
    note: str = ""
    max_confusion_classes: int = MAX_CONFUSION_CLASSES

    def per_class_accuracy(self) -> list[dict[str, Any]]:
        m = self.result.confusion
        if m is None:
            return []
        rows = []
        for i in range(m.shape[0]):
            total = int(m[i].sum())
            name = self.class_names[i] if i < len(self.class_names) else str(i)
            rows.append({"class": name, "count": total,
                         "top1": round(100.0 * int(m[i, i]) / total, 2) if total else None})
        return rows

    def _small(self) -> bool:
        return self.result.confusion is not None and self.result.num_classes <= MAX_CONFUSION_CLASSES

    def to_dict(self) -> dict[str, Any]:
        out = {"checkpoint": self.checkpoint, "model": self.model, "dataset": self.dataset, "split": self.split,
               **self.result.to_dict(), "weights_format": self.weights_format,
               "input_convention": self.input_convention, "confusion_png": self.confusion_png}
        if self._small():
            out["per_class"] = self.per_class_accuracy()
            out["confusion_matrix"] = self.result.confusion.tolist()  # type: ignore[union-attr]
        if self.note:
            out["note"] = self.note
        return json_safe(out)

    def tables(self) -> list[Table]:
        """The summary (one row: what ``--format csv`` writes), then accuracy per class."""
        row = {k: v for k, v in self.to_dict().items() if not isinstance(v, (list, dict))}
        cols = [Column("checkpoint"), Column("model"), Column("dataset"), Column("split"), *METRIC_COLUMNS,
                Column("weights_format", "weights format"), Column("input_convention", "input"),
                Column("confusion_png", "confusion PNG")]
        if self.note:
            cols.append(Column("note"))
        shown = [{"item": c.header, "value": format_cell(row.get(c.key), c)} for c in cols
                 if row.get(c.key) not in (None, "")]
        out = [Table(f"eval {self.checkpoint}", cols, [row], key="eval", display=False),
               Table(f"eval {self.checkpoint}", [Column("item"), Column("value")], shown, key="summary")]
        if self._small():
            out.append(Table(f"per class ({self.dataset}, {self.split})",
                             [Column("class"), Column("count", "images"), Column("top1", "top-1", "%", ".2f")],
                             self.per_class_accuracy(), key="per_class"))
        return out

    def confusion_figure(self) -> Figure | None:
        """The confusion matrix with the class names (``None`` without one, or above
        ``max_confusion_classes`` classes)."""
        r = self.result
        if r.confusion is None or r.num_classes > self.max_confusion_classes:
            return None
        title = f"{self.model} on {self.dataset} ({self.split}): top-1 {r.top1:.2f}%, {r.count} images"
        return confusion_figure(r.confusion, self.class_names, title)

    def figures(self) -> list[Figure]:
        fig = self.confusion_figure()
        return [fig] if fig is not None else []

    def conventions(self) -> list[str]:
        return [ACCURACY, EVAL_LOSS] + ([CONFUSION] if self.figures() else [])


def run_eval(cfg: EvalConfig) -> EvalReport:
    """Evaluate ``cfg.checkpoint`` on ``cfg.dataset`` (default: the one it was trained on)."""
    cfg.validate()
    ctx = setup(cfg.device)
    report = _run_eval(cfg, ctx)
    cleanup(ctx)
    return report


def _run_eval(cfg: EvalConfig, ctx: DistContext) -> EvalReport:
    loaded = load_model_for_inference(cfg.checkpoint, cfg.model, cfg.model_kwargs, image_size=cfg.image_size,
                                      input_convention=cfg.input_convention, device=ctx.device)
    meta_cfg = loaded.meta.get("config") if isinstance(loaded.meta.get("config"), dict) else {}
    dataset = cfg.dataset or loaded.meta.get("dataset") or ("imagefolder" if cfg.data_dir else "fashion-mnist")
    pp = loaded.preprocess
    synth: dict[str, Any] = {k: getattr(cfg, k) for k in ("synthetic_classes", "synthetic_val", "synthetic_chans")}
    seed = 0
    if dataset == "synthetic" and loaded.meta.get("dataset") == "synthetic":  # the run's own synthetic set
        synth.update({k: meta_cfg[k] for k in ("synthetic_classes", "synthetic_chans", "synthetic_val")
                      if k in meta_cfg})
        seed = int(meta_cfg.get("seed", 0))
    data = build_data(dataset, data_dir=cfg.data_dir, download=cfg.download, image_size=pp.image_size,
                      preprocess=pp, seed=seed, want_train=False, want_val=True, val_split=cfg.split,
                      limit_val=cfg.limit, **synth)
    if data.val is None or len(data.val) == 0:  # type: ignore[arg-type]
        raise UserInputError(f"no {cfg.split} images found for dataset {dataset}")
    if loaded.num_classes != data.num_classes:
        raise UserInputError(f"the model has {loaded.num_classes} outputs but {dataset} has {data.num_classes} "
                             "classes")
    model_chans = getattr(loaded.model, "in_chans", data.in_chans)
    if model_chans != data.in_chans:
        raise UserInputError(f"the model expects {model_chans} input channels but {dataset} images have "
                             f"{data.in_chans}")
    class_names = loaded.class_names or data.class_names
    if cfg.channels_last:
        loaded.model.to(memory_format=torch.channels_last)
    sampler = ShardSampler(len(data.val), ctx.world_size, ctx.rank)  # type: ignore[arg-type]
    loader = make_loader(data.val, cfg.batch_size, sampler, workers=cfg.workers, device=ctx.device)
    result = evaluate(loaded.model, loader, device=ctx.device, amp=cfg.amp, channels_last=cfg.channels_last,
                      ctx=ctx, num_classes=data.num_classes,
                      progress=cfg.progress and ctx.is_main and sys.stderr.isatty(),
                      desc=f"eval {Path(cfg.checkpoint).name}")
    report = EvalReport(str(cfg.checkpoint), loaded.name, dataset, cfg.split, result, loaded.info.format,
                        pp.describe(), class_names, max_confusion_classes=cfg.max_confusion_classes)
    if cfg.confusion_png and result.confusion is not None and ctx.is_main:
        fig = report.confusion_figure()
        if fig is None:
            report.note = (f"no confusion matrix PNG for {data.num_classes} classes "
                           f"(only up to {cfg.max_confusion_classes})")
        else:
            from shufflenet.measure.plots import save_figure

            dest = (Path(cfg.checkpoint).expanduser().resolve().parent / "confusion_matrix.png"
                    if cfg.confusion_png == "auto" else Path(cfg.confusion_png))
            notes: list[str] = []
            try:
                written = save_figure(fig, dest, notes)
            except OSError as exc:
                written, notes = None, [f"confusion matrix PNG not written to {dest}: {exc.strerror or exc}"]
            report.confusion_png = str(written) if written else None
            report.note = "; ".join(notes)
    return report
