"""The report's "Training" section: a run of ``shufflenet train`` read back from its directory.

The paper trains on ImageNet with ShuffleNet v1's recipe (V2 Sec. 5: "all other hyper-parameters and
protocols are exactly the same as ShuffleNet v1"; V1 Sec. 4: batch 1024, 3x10^5 iterations, learning rate
0.5 decayed linearly to 0, weight decay 4e-5) and reports top-1 error on ImageNet val (Table 8: 30.6% for
ShuffleNet v2 1x). This section shows a run on this machine — usually Fashion-MNIST, so there is no verdict
against the paper — its accuracy, curves, training and inference throughput and config, and the confusion
matrix of its weights on the dataset's test split (the first 2000 images in quick mode, all in full mode).

The run directory comes from ``--train-run DIR`` (:meth:`ReportContext.train_run_dir`). Without one the
section looks for trained checkpoints shipped with the package, as ``shufflenet/weights/*.safetensors``
(:func:`shipped_checkpoints`) and shows the 1.0x one from the training record its metadata carries (history,
config, final accuracy; :mod:`shufflenet.train.ship`), evaluated again on the test split.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from shufflenet.errors import ShuffleNetError, first_line
from shufflenet.report.context import ReportContext, ReportOptions
from shufflenet.report.registry import register
from shufflenet.report.section import Section, SectionOutput, SectionUnavailable
from shufflenet.result import Column, Table

if TYPE_CHECKING:
    from shufflenet.train.evaluate import EvalReport
    from shufflenet.train.runinfo import RunRecord

QUICK_TEST_IMAGES = 2000  # quick mode: the first 2000 test images (deterministic), full mode: all of them
EVAL_BATCH = 256
SHIPPED_DIR = "weights"  # inside the installed package: shufflenet/weights/*.safetensors

# Table 8 top-1 errors (ImageNet val) of the ShuffleNet v2 widths, by this package's model names.
_TABLE8_LABELS = {"shufflenet_v2_x0_5": "ShuffleNet v2 0.5x", "shufflenet_v2_x1_0": "ShuffleNet v2 1x",
                  "shufflenet_v2_x1_5": "ShuffleNet v2 1.5x", "shufflenet_v2_x2_0": "ShuffleNet v2 2x"}

_EPOCH_THROUGHPUT = ("epoch", "images_per_s", "epoch_time_s", "threads", "world_size")
_DATASET_NAMES = {"fashion-mnist": "Fashion-MNIST", "synthetic": "synthetic images",
                  "imagefolder": "an ImageFolder dataset"}

# The paper's recipe beside the run's config: V1 Sec. 4 (which V2 Sec. 5 adopts), and what only the
# official code states (label smoothing, BN recalibration, momentum) marked as such.
_RECIPE: list[tuple[str, str, str]] = [
    ("model", "model", "ShuffleNet v2 (Table 5)"),
    ("dataset", "dataset", "ImageNet 2012, 224x224 crops (Sec. 5)"),
    ("epochs", "epochs", "3x10^5 iterations at batch 1024 (~240 epochs; V1 Sec. 4)"),
    ("batch_size", "batch size", "1024 (V1 Sec. 4)"),
    ("lr", "peak learning rate", "0.5, linear decay to 0 (V1 Sec. 4)"),
    ("warmup_steps", "warm-up steps", "none stated"),
    ("momentum", "momentum", "0.9 (not stated; the official code's SGD)"),
    ("nesterov", "Nesterov", "no (official code)"),
    ("weight_decay", "weight decay", "4e-5 (V1 Sec. 4; official code: conv/FC weights only)"),
    ("label_smoothing", "label smoothing", "0.1 in the official code only (not in the papers)"),
    ("ema_decay", "EMA decay", "none"),
    ("bn_recalibrate", "BN recalibration", "one pass at the end, official code only"),
    ("amp", "mixed precision", "not stated"),
    ("random_erasing", "random erasing", "no"),
    ("limit_train", "training images", "1.28M"),
    ("limit_val", "validation images", "50k (ImageNet val)"),
    ("holdout", "hold-out validation images", "no (val set)"),
    ("seed", "seed", ""),
    ("workers", "data workers", ""),
]


def shipped_checkpoints() -> list[Path]:
    """Trained checkpoints shipped with the package (``shufflenet/weights/*.safetensors``), sorted by name."""
    from shufflenet.models.shipped import shipped_paths

    return shipped_paths()


def _shipped_record(paths: list[Path]) -> RunRecord:
    """The shipped checkpoint the section shows: the widest ShuffleNet V2 whose metadata has a training
    record (the 1.0x one when it ships)."""
    from shufflenet.train.runinfo import load_shipped_run

    errors = []
    for path in sorted(paths, key=lambda p: ("x1_0" not in p.stem, "x0_5" not in p.stem, p.stem)):
        try:
            return load_shipped_run(path)
        except ShuffleNetError as exc:
            errors.append(first_line(exc))
    raise SectionUnavailable(f"no training run: pass --train-run DIR; the shipped checkpoints carry no "
                             f"training record ({'; '.join(errors)})")


def check_train_run(path: str | os.PathLike[str]) -> None:
    """Check ``--train-run DIR`` before the report measures anything: :class:`UserInputError` (one line)
    when it is missing, a file, not a run directory of ``shufflenet train``, or its files are not JSON."""
    from shufflenet.train.runinfo import load_run

    load_run(path)


def estimate_s(options: ReportOptions) -> float:
    """Reading the run is instant; the test-split evaluation takes a few seconds (quick) to ~30 s (full)."""
    if not options.train_run:
        return 0.1
    return 5.0 if options.quick else 30.0


def run(ctx: ReportContext) -> SectionOutput:
    from shufflenet.train.runinfo import load_run

    directory = ctx.train_run_dir()
    notes: list[str] = []
    if directory is None:
        shipped = shipped_checkpoints()
        if not shipped:
            raise SectionUnavailable("no training run: pass --train-run DIR (a run directory of `shufflenet "
                                     "train`); no trained checkpoint ships with this install")
        record = _shipped_record(shipped)
        notes.append(f"no --train-run: this is the checkpoint shipped as shipped:{record.weights_file().stem}"  # type: ignore[union-attr]
                     " (its training record is in its metadata); pass --train-run DIR for a run of yours")
    else:
        record = load_run(directory)
    result = record.result
    if not record.finished:
        notes.append(f"the run is unfinished (no summary.json): {len(result.history)} of {result.epochs} "
                     "epochs; the last evaluated epoch stands for the final numbers")
    evaluation, inference, eval_notes = _evaluate(ctx, record)
    notes += eval_notes
    cfg = record.config
    best = record.best_epoch()
    train_threads = _train_threads(record)
    throughput = {
        "train_images_per_s": result.images_per_s or None, "train_threads": train_threads,
        "processes": result.world_size, "wall_time_s": result.wall_time_s or None,
        "train_time_s": result.train_time_s or None, "device": record.run.get("device") or cfg.get("device"),
        "per_epoch": [{k: h.get(k) for k in _EPOCH_THROUGHPUT} for h in result.history],
        "inference": inference,
    }
    # keys apart from other sections' and from the evaluation's ("summary" is in both results)
    tables = [replace(t, key=f"train_{t.key}") for t in result.tables()]
    tables.append(_accuracy_table(record, best, evaluation))
    tables.append(_throughput_table(record, throughput))
    tables.append(_config_table(record))
    figures = result.figures()
    if evaluation is not None:
        tables += [replace(t, key=f"test_{t.key}") for t in evaluation.tables()]
        figures += evaluation.figures()
    if cfg.get("holdout"):
        held = record.run.get("val_set") or f"{cfg['holdout']} held-out training images"
        notes.append(f"the run's val numbers are on {held}; the confusion matrix is on the dataset's test "
                     "split")
    data = {"directory": str(record.directory), "summary": result.to_dict(), "config": cfg, "run": record.run,
            "best": {"epoch": best[0], "top1": best[1], "key": best[2]} if best else None,
            "evaluation": evaluation.to_dict() if evaluation is not None else None, "throughput": throughput}
    return SectionOutput(_finding(record, best, train_threads), tables=tables, figures=figures, data=data,
                         notes=notes)


def _finding(record: RunRecord, best: tuple[int, float, str] | None, threads: int | None) -> str:
    """The paper's ImageNet result (Table 8, recipe of V2 Sec. 5) beside this run's, with numbers."""
    from shufflenet.measure.paper_speeds import table8_row

    r, cfg = record.result, record.config
    label = _TABLE8_LABELS.get(r.model_name, "ShuffleNet v2 1x")
    paper = (f"The paper trains on ImageNet (Sec. 5, with ShuffleNet v1's recipe: batch 1024, 3x10^5 "
             f"iterations) and reports {label} at {table8_row(label).top1_err:.1f}% top-1 error (Table 8)")
    top1 = r.final.get("val_top1")
    dataset = cfg.get("dataset") or record.run.get("dataset") or "?"
    here = f"this run: {r.model_name} on {_DATASET_NAMES.get(dataset, dataset)}"
    done = len(r.history)
    here += f", {_plural(r.epochs, 'epoch')}" if done >= r.epochs else f", {done} of {r.epochs} epochs so far"
    if isinstance(top1, (int, float)):
        here += f", {top1:.2f}% top-1"
        if best is not None:
            here += f" (best {best[1]:.2f}% at epoch {best[0]})"
    else:
        here += ", no validation accuracy recorded"
    if r.images_per_s:
        on = _plural(threads, "thread") if threads else "? threads"
        if r.world_size > 1:
            on += f" x {r.world_size} processes"
        here += f", {r.images_per_s:.0f} training images/s on {on}"
    return f"{paper}; {here}."


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _train_threads(record: RunRecord) -> int | None:
    rows = [h.get("threads") for h in record.result.history if isinstance(h.get("threads"), int)]
    if rows:
        return int(rows[-1])
    t = record.run.get("threads")
    return int(t) if isinstance(t, int) else None


def _accuracy_table(record: RunRecord, best: tuple[int, float, str] | None,
                    evaluation: EvalReport | None) -> Table:
    r = record.result
    f = r.final
    rows: list[dict[str, Any]] = [
        {"item": "final val top-1", "value": f.get("val_top1"), "unit": "%"},
        {"item": "final val top-5", "value": f.get("val_top5"), "unit": "%"},
        {"item": "final val loss", "value": f.get("val_loss"), "unit": ""},
        {"item": "val images", "value": f.get("val_images") or record.run.get("val_images"), "unit": ""},
        {"item": "final weights", "value": f.get("weights"), "unit": ""},
    ]
    if best is not None:
        rows += [{"item": "best epoch", "value": best[0], "unit": ""},
                 {"item": f"best {'EMA ' if best[2].startswith('ema') else ''}val top-1", "value": best[1],
                  "unit": "%"}]
    if evaluation is not None:
        res = evaluation.result
        rows += [{"item": f"test top-1 ({res.count} images, {Path(evaluation.checkpoint).name})",
                  "value": res.top1, "unit": "%"},
                 {"item": "test top-5", "value": res.top5, "unit": "%"}]
    rows = [row for row in rows if row["value"] is not None]
    note = "val = the run's validation set (Fashion-MNIST: its test split, or the --holdout images)"
    if f.get("bn_recalibration_batches"):
        note += "; final = after the run's BN recalibration (the weights of model.pt)"
    return Table(f"training {r.model_name}: accuracy", [Column("item"), Column("value", fmt=".6g"),
                                                        Column("unit")], rows, key="train_accuracy",
                 notes=[note])


def _throughput_table(record: RunRecord, t: dict[str, Any]) -> Table:
    r = record.result
    batch = record.config.get("batch_size") or record.run.get("global_batch")
    rows = [{"what": "training (whole run)", "images_per_s": t["train_images_per_s"], "batch": batch,
             "threads": t["train_threads"], "processes": r.world_size, "device": t["device"],
             "time_s": t["train_time_s"] or t["wall_time_s"]}]
    inf = t.get("inference")
    if inf:
        rows.append({"what": f"inference ({inf['images']} test images, one pass)",
                     "images_per_s": inf["images_per_s"], "batch": inf["batch"], "threads": inf["threads"],
                     "processes": 1, "device": inf["device"], "time_s": inf["seconds"]})
    cols = [Column("what"), Column("images_per_s", "images/s", fmt=".1f"), Column("batch"), Column("threads"),
            Column("processes"), Column("device"), Column("time_s", "time", "s", ".1f")]
    notes = ["training images/s = training images per second of training time (data loading included, "
             "evaluation and checkpoint saving excluded), over all processes; per epoch in the metrics table",
             f"run wall time {r.wall_time_s:.1f} s (evaluation and saving included)" if r.wall_time_s else "",
             "inference images/s = one timed pass of the evaluation below (eval mode, data loading "
             "included); not a benchmark: the Fig. 1 section times the models properly" if inf else ""]
    return Table(f"training {r.model_name}: throughput", cols, rows, key="train_throughput",
                 notes=[n for n in notes if n])


def _config_table(record: RunRecord) -> Table:
    cfg, run = record.config, record.run
    rows = []
    for key, label, paper in _RECIPE:
        value: Any = cfg.get(key)
        if key == "lr" and value is None and run.get("peak_lr") is not None:
            value = f"{run['peak_lr']:.4g} (0.5 x batch / 1024)"
        elif key == "epochs" and run.get("total_steps"):
            value = f"{cfg.get('epochs')} ({_plural(int(run['total_steps']), 'iteration')})"
        elif key == "limit_train" and run.get("train_images") is not None:
            value = run["train_images"]
        elif key == "limit_val" and run.get("val_images") is not None:
            value = run["val_images"]
        if key in ("model", "dataset") and value is None:
            value = run.get(key)
        if key not in cfg and value is None:
            continue
        rows.append({"setting": label, "run": _setting(value), "paper": paper})
    if cfg.get("model_kwargs"):
        rows.insert(1, {"setting": "model keywords", "run": _setting(cfg["model_kwargs"]), "paper": ""})
    return Table(f"training {record.result.model_name}: config vs the paper's recipe",
                 [Column("setting"), Column("run"), Column("paper", "paper (ImageNet)")], rows, key="train_config",
                 notes=["paper = ShuffleNet v1's recipe, which the V2 paper uses unchanged (V2 Sec. 5, "
                        "V1 Sec. 4); label smoothing and BN recalibration are in the official code only"])


def _setting(value: Any) -> str:
    """A config value as text: settings of mixed types share one column (4e-05, not 0.00)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_setting(v)}" for k, v in value.items()) or "-"
    return str(value)


def _evaluate(ctx: ReportContext, record: RunRecord) -> tuple[EvalReport | None, dict[str, Any] | None,
                                                               list[str]]:
    """The run's weights on its dataset's test split, with the package's evaluation code (as ``shufflenet
    eval``): the :class:`EvalReport` (``None`` when it cannot run here, with the reason as a note), the
    inference throughput of that pass, and notes."""
    from shufflenet.measure.options import resolve_device, resolve_threads
    from shufflenet.train.data import ShardSampler, build_data, make_loader
    from shufflenet.train.evaluate import EvalReport, evaluate, load_model_for_inference

    weights = record.weights_file()
    if weights is None:
        return None, None, ["no confusion matrix: the run directory has no model.pt or last.pt"]
    notes = []
    if weights.name == "last.pt":
        notes.append("the confusion matrix uses last.pt (the resumable checkpoint: no BN recalibration, "
                     "no EMA): the run wrote no model.pt")
    cfg = record.config
    quick = ctx.options.quick
    try:
        device = resolve_device(ctx.options.device)
        loaded = load_model_for_inference(weights, device=device)
        dataset = cfg.get("dataset") or loaded.meta.get("dataset") or "fashion-mnist"
        synth = {k: cfg[k] for k in ("synthetic_classes", "synthetic_chans", "synthetic_val") if k in cfg}
        data = build_data(dataset, data_dir=cfg.get("data_dir"), image_size=loaded.preprocess.image_size,
                          preprocess=loaded.preprocess, seed=int(cfg.get("seed") or 0), want_train=False,
                          want_val=True, limit_val=QUICK_TEST_IMAGES if quick else None, **synth)
    except (ShuffleNetError, OSError) as exc:
        return None, None, [*notes, f"no confusion matrix: {first_line(exc)}"]
    n = len(data.val) if data.val is not None else 0  # type: ignore[arg-type]
    if n == 0:
        return None, None, [*notes, f"no confusion matrix: no test images found for dataset {dataset}"]
    if loaded.num_classes != data.num_classes:
        return None, None, [*notes, f"no confusion matrix: the model has {loaded.num_classes} outputs but "
                                    f"{dataset} has {data.num_classes} classes"]
    loader = make_loader(data.val, EVAL_BATCH, ShardSampler(n), workers=0, device=device)
    threads = resolve_threads(ctx.options.threads, device)
    ctx.log(f"    evaluating {weights} on {n} {dataset} test images")
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        batches = ctx.progress(loader, f"training: evaluate {weights.name}", len(loader))
        t0 = time.perf_counter()
        result = evaluate(loaded.model, batches, device=device, num_classes=data.num_classes)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - t0
    finally:
        torch.set_num_threads(previous)
    split = "test" if dataset == "fashion-mnist" else "val"
    report = EvalReport(str(weights), loaded.name, dataset, split, result, loaded.info.format,
                        loaded.preprocess.describe(), loaded.class_names or data.class_names)
    full = _full_test_size(dataset, cfg)
    if quick and full is not None and n < full:
        notes.append(f"quick mode: the confusion matrix is on the first {n} of the {full} test images "
                     "(--mode full evaluates all)")
    inference = {"images": result.count, "seconds": round(seconds, 3),
                 "images_per_s": round(result.count / seconds, 1) if seconds > 0 else None,
                 "batch": EVAL_BATCH, "threads": threads if device.type == "cpu" else None,
                 "device": str(device)}
    return report, inference, notes


def _full_test_size(dataset: str, cfg: dict[str, Any]) -> int | None:
    if dataset == "fashion-mnist":
        return 10000
    if dataset == "synthetic":
        return int(cfg.get("synthetic_val") or 0) or None
    return None


SECTION = register(Section(
    key="training", title="Training", order=70, run=run, estimate_s=estimate_s,
    description="a training run read back: accuracy, curves, throughput, config, and the confusion matrix on "
                "the test split"))
