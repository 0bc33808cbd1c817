"""Fashion-MNIST with the official ShuffleNet recipe, the paper's Table 8 claim on this data, and training
throughput against torchvision's ShuffleNet V2.

Three parts (``--parts``, default all three):

* ``accuracy`` — ShuffleNet V2 1.0x and 0.5x (``small_input=True``, ``in_chans=1``) trained with the recipe
  of ``shufflenet.train`` (SGD momentum 0.9, lr 0.5 x batch/1024 decayed linearly to 0 per iteration,
  weight decay 4e-5 on conv/linear weights only, label smoothing 0.1, final BN recalibration) and the light
  28x28 augmentation (random crop with 2 px padding, horizontal flip). One deviation, the same for every
  model: a 1-epoch linear lr warm-up (``--warmup-epochs``, the recipe's option; 0 = the official schedule),
  because ShuffleNet V1 diverges in its first steps on this data without it. Records test top-1/top-5 (the
  10 000-image test set), wall time and training images/s; targets 95.0% (1.0x) and 94.0% (0.5x).
* ``table8`` — at similar FLOPs: ShuffleNet V2 0.5x vs ShuffleNet V1 0.5x (g=3) vs MobileNet V2 (torchvision,
  adapted like ``small_input``: 1 input channel, stride-1 stem and first stride-2 block at stride 1, so
  the total stride is 8 as in the ShuffleNets; width multiplier chosen for the closest FLOPs), same recipe;
  accuracy next to measured inference speed (batch 8 images/s and batch 1 latency, alternating models).
* ``throughput`` — training images/s of our ``shufflenet_v2_x1_0`` (official layout, and our
  ``layout="torchvision"``) vs ``torchvision.models.shufflenet_v2_x1_0``: same batch, same random
  3x224x224 input, same process, the same recipe step (SGD groups, label smoothing, LambdaLR), models
  alternating round by round; the median over rounds.

FLOPs = multiply-adds of conv + FC (the paper's convention), at 1x1x28x28.

Full run (the issue's benchmark; set --device cuda --amp bf16 --channels-last on a GPU machine)::

    python benchmarks/train_fashion_mnist.py --epochs 80 --table8-epochs 10 --batch-size 256 --workers 8

Short smoke run (proves the pipeline end to end; its accuracies mean nothing)::

    python benchmarks/train_fashion_mnist.py --epochs 1 --limit-train 2000 --limit-test 2000 --threads 1

Writes ``benchmarks/results/train_fashion_mnist.json`` and ``.csv`` (``..._short.*`` when
``--limit-train`` is given); training runs (checkpoints, metrics) go to ``--runs-dir``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from shufflenet import count_cost, create_model
from shufflenet.environment import capture_environment
from shufflenet.render import render, write_result
from shufflenet.result import FLOPS, Column, ResultBase, Table
from shufflenet.train import TrainConfig, train
from shufflenet.train.recipe import build_loss, build_optimizer, build_scheduler

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = {"shufflenet_v2_x1_0": 95.0, "shufflenet_v2_x0_5": 94.0}


def environment(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """The package's environment record, plus this benchmark's precision settings (fp32 weights, ``amp``
    autocast on top)."""
    env = capture_environment(device=device, batch=args.batch_size,
                              memory_format="channels_last" if args.channels_last else "contiguous")
    return {**env, "amp": args.amp, "channels_last": args.channels_last}


def mobilenet_v2_small_input(width_mult: float, num_classes: int = 10) -> nn.Module:
    """torchvision's MobileNet V2 for 28x28 grey input: 1 input channel, total stride 8 (not 32)."""
    m = torchvision.models.mobilenet_v2(num_classes=num_classes, width_mult=width_mult)
    stem = m.features[0][0]
    m.features[0][0] = nn.Conv2d(1, stem.out_channels, 3, 1, 1, bias=False)
    first_down = m.features[2]  # first stride-2 inverted residual: its depthwise conv
    first_down.conv[1][0].stride = (1, 1)
    first_down.stride = 1
    return m


def pick_mobilenet_width(target_flops: int) -> tuple[float, int]:
    best = None
    for w in (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.75, 1.0):
        flops = count_cost(mobilenet_v2_small_input(w), (1, 1, 28, 28)).flops
        if best is None or abs(flops - target_flops) < abs(best[1] - target_flops):
            best = (w, flops)
    assert best is not None
    return best


RECIPE_WEIGHT_DECAY = TrainConfig.weight_decay  # 4e-5: ShuffleNet V1 paper Sec. 4 and the official code
# Settings that change what is trained (a finished run is reused only when they all match); threads,
# workers and channels_last change speed only, and each row reports the ones its run had.
RECIPE_KEYS = ("model", "dataset", "epochs", "batch_size", "lr", "momentum", "nesterov", "weight_decay",
               "label_smoothing", "warmup_steps", "random_erasing", "limit_train", "limit_val", "ema_decay", "seed",
               "bn_recalibrate", "grad_clip", "amp", "holdout")


def run_dir(label: str, epochs: int, args: argparse.Namespace) -> Path:
    """One directory per (model, recipe): a finished run there is reused, an interrupted one resumed."""
    tag = f"{label}_e{epochs}_b{args.batch_size}_s{args.seed}"
    if args.lr is not None:
        tag += f"_lr{args.lr:g}"
    if args.weight_decay != RECIPE_WEIGHT_DECAY:
        tag += f"_wd{args.weight_decay:g}"
    if args.random_erasing:
        tag += f"_re{args.random_erasing:g}"
    if args.ema:
        tag += f"_ema{args.ema:g}"
    if args.warmup_epochs != 1:
        tag += f"_wu{args.warmup_epochs}"
    if args.limit_train or args.limit_test:
        tag += f"_lim{args.limit_train}-{args.limit_test}"
    if args.holdout:
        tag += f"_ho{args.holdout}"
    return Path(args.runs_dir) / tag


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _metrics_rows(directory: Path) -> list[dict[str, Any]]:
    try:
        lines = (directory / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def _run_environment(out_dir: Path, history: list[dict[str, Any]]) -> dict[str, Any]:
    """Where and how a run trained, from its own files (not from this invocation's flags)."""
    info, saved = _read_json(out_dir / "run.json") or {}, _read_json(out_dir / "config.json") or {}
    segments = speed_segments(history)
    threads = {s["threads"] for s in segments}
    env: dict[str, Any] = {"device": info.get("device"), "device_name": info.get("device_name"),
                           "channels_last": saved.get("channels_last"), "amp": saved.get("amp")}
    if None not in threads and len(threads) == 1:
        env["threads"] = threads.pop()
    else:  # mixed, or not recorded per epoch: say what is known, not a single figure
        env["threads_at_last_start"] = info.get("threads")
    env["speed_segments"] = segments
    env["run_dir"] = str(out_dir)
    return env


def speed_segments(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stretches of epochs that ran with the same thread count and world size, with their images/s.

    A run resumed across sessions may change threads, so one blended images/s figure would mislead.
    Epochs logged before the engine recorded threads per epoch have ``threads: None`` (not recorded).
    """
    segments: list[dict[str, Any]] = []
    for h in history:
        key = (h.get("threads"), h.get("world_size"))
        if not segments or segments[-1]["key"] != key:
            segments.append({"key": key, "rows": []})
        segments[-1]["rows"].append(h)
    out = []
    for seg in segments:
        ips = [r["images_per_s"] for r in seg["rows"] if r.get("images_per_s")]
        out.append({"epochs": f"{seg['rows'][0]['epoch']}-{seg['rows'][-1]['epoch']}",
                    "threads": seg["key"][0], "world_size": seg["key"][1],
                    "median_images_per_s": round(statistics.median(ips), 1) if ips else None,
                    "images_per_s_range": [min(ips), max(ips)] if ips else None})
    return out


def train_one(label: str, args: argparse.Namespace, epochs: int, model: nn.Module | None = None,
              model_name: str | None = None) -> dict[str, Any]:
    """Train ``label`` (or reuse its finished run / resume its interrupted one) and return its result row.

    With ``--reuse-only`` nothing is trained: an unfinished run is reported as unfinished, with its last
    epoch's test accuracy.
    """
    out_dir = run_dir(label, epochs, args)
    cfg = TrainConfig(model=model_name or label, dataset="fashion-mnist", data_dir=args.data_dir,
                      download=args.download, epochs=epochs, batch_size=args.batch_size, lr=args.lr,
                      weight_decay=args.weight_decay, holdout=args.holdout,
                      random_erasing=args.random_erasing, limit_train=args.limit_train, limit_val=args.limit_test,
                      warmup_steps=args.warmup_epochs * ((args.limit_train or (60000 - (args.holdout or 0)))
                                                          // args.batch_size),
                      workers=args.workers, device=args.device, amp=args.amp, channels_last=args.channels_last,
                      ema_decay=args.ema, seed=args.seed, output_dir=str(out_dir), resume="auto",
                      progress=not args.quiet, verbose=not args.quiet, tensorboard=False)
    probe = model if model is not None else create_model(cfg.model, num_classes=10, in_chans=1, small_input=True)
    cost = count_cost(probe, (1, 1, 28, 28))
    row: dict[str, Any] = {"model": label, "MFLOPs@28": round(cost.flops / 1e6, 2),
                           "Mparams": round(cost.params / 1e6, 3)}
    summary, saved_cfg = _read_json(out_dir / "summary.json"), _read_json(out_dir / "config.json") or {}
    mine = asdict(cfg)
    differs = [k for k in RECIPE_KEYS if k in saved_cfg and saved_cfg[k] != mine[k]]
    if differs:
        raise SystemExit(f"{out_dir} holds a run with other settings ({', '.join(differs)}); "
                         "use another --runs-dir")
    if summary and summary.get("status") == "finished":
        print(f"== {label}: reusing the finished run in {out_dir}", file=sys.stderr)
        result = summary
    elif args.reuse_only or (args.only and not any(label.startswith(o) for o in args.only)):
        history = _metrics_rows(out_dir)
        last = history[-1] if history else {}
        print(f"== {label}: not finished ({len(history)}/{epochs} epochs), --reuse-only", file=sys.stderr)
        # "unfinished", not "in progress": nothing here knows whether a process is still training it.
        row.update({"status": f"unfinished: {len(history)}/{epochs} epochs" if history else "not started",
                    "epochs": epochs})
        if history:
            row.update(_run_environment(out_dir, history))
        else:
            row["run_dir"] = str(out_dir)
        if last.get("val_top1") is not None:
            row["holdout_top1_last_epoch" if args.holdout else "test_top1_last_epoch"] = last["val_top1"]
        if label in TARGETS and not args.holdout:
            row["target_top1"] = TARGETS[label]
        return row
    else:
        print(f"== training {label}: {cost.flops / 1e6:.1f} MFLOPs, {cost.params / 1e6:.2f} M params",
              file=sys.stderr)
        result = train(cfg, model=model).to_dict()
    final, history = result["final"], result["history"]
    # Summed over epochs, so a run resumed across sessions reports its real training time.
    train_time = sum(h.get("epoch_time_s", 0.0) for h in history)
    images = result["step"] * args.batch_size
    row.update({"status": "finished",
                "test_top1": round(final.get("val_top1", float("nan")), 2),
                "test_top5": round(final.get("val_top5", float("nan")), 2),
                "test_loss": round(final.get("val_loss", float("nan")), 4), "test_images": final.get("val_images"),
                "epochs": epochs, "steps": result["step"],
                "wall_time_s": round(result["wall_time_s"], 1),
                "train_time_s": round(train_time, 1),
                "train_images_per_s": round(images / train_time, 1) if train_time else None})
    row.update(_run_environment(out_dir, history))
    if args.holdout:  # validated on held-out training images: not test accuracy, no target verdict
        row = {(k.replace("test_", "holdout_", 1) if k.startswith("test_") else k): v for k, v in row.items()}
    elif label in TARGETS:
        row["target_top1"] = TARGETS[label]
        row["meets_target"] = bool(row["test_top1"] >= TARGETS[label])
    return row


@torch.no_grad()
def inference_speed(models: dict[str, nn.Module], device: torch.device, rounds: int, channels_last: bool,
                    amp: str) -> dict[str, dict[str, float]]:
    """Batch-8 images/s and batch-1 latency, models alternating round by round; medians."""
    from shufflenet.train.evaluate import autocast_context

    xs = {8: torch.randn(8, 1, 28, 28, device=device), 1: torch.randn(1, 1, 28, 28, device=device)}
    if channels_last:
        xs = {k: v.contiguous(memory_format=torch.channels_last) for k, v in xs.items()}
    for m in models.values():
        m.eval().to(device)
        if channels_last:
            m.to(memory_format=torch.channels_last)

    def run(m: nn.Module, x: torch.Tensor, reps: int) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        with autocast_context(device, amp):
            for _ in range(reps):
                m(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return (time.perf_counter() - t) / reps

    for m in models.values():  # warm-up
        run(m, xs[8], 3)
        run(m, xs[1], 3)
    samples: dict[str, dict[int, list[float]]] = {k: {8: [], 1: []} for k in models}
    names = list(models)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            for b in (8, 1):
                samples[name][b].append(run(models[name], xs[b], 10))
    return {name: {"batch8_images_per_s": round(8 / statistics.median(s[8]), 1),
                   "batch8_images_per_s_range": [round(8 / max(s[8]), 1), round(8 / min(s[8]), 1)],
                   "batch1_latency_ms": round(1e3 * statistics.median(s[1]), 3),
                   "batch1_latency_ms_range": [round(1e3 * min(s[1]), 3), round(1e3 * max(s[1]), 3)]}
            for name, s in samples.items()}


def training_throughput(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    """Ours vs torchvision's ShuffleNet V2 1.0x: train-step images/s, same batch/input/process, alternating."""
    from shufflenet.train.evaluate import autocast_context

    builders = {
        "shufflenet (official layout)": lambda: create_model("shufflenet_v2_x1_0"),
        "shufflenet (layout=torchvision)": lambda: create_model("shufflenet_v2_x1_0", layout="torchvision"),
        "torchvision.models.shufflenet_v2_x1_0": lambda: torchvision.models.shufflenet_v2_x1_0(),
    }
    b, s = args.tp_batch, args.tp_size
    torch.manual_seed(0)
    x = torch.randn(b, 3, s, s, device=device)
    y = torch.randint(0, 1000, (b,), device=device)
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    loss_fn = build_loss()
    setups = {}
    for name, build in builders.items():
        torch.manual_seed(0)
        m = build().to(device).train()
        if args.channels_last:
            m.to(memory_format=torch.channels_last)
        opt = build_optimizer(m, 0.5 * b / 1024)
        sched = build_scheduler(opt, 10**6)
        setups[name] = (m, opt, sched)

    def steps(name: str, n: int) -> float:
        m, opt, sched = setups[name]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        for _ in range(n):
            with autocast_context(device, args.amp):
                loss = loss_fn(m(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t

    for name in setups:
        steps(name, 2)  # warm-up (allocator, cudnn autotuning)
    times: dict[str, list[float]] = {k: [] for k in setups}
    names = list(setups)
    for r in range(args.tp_rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            times[name].append(steps(name, args.tp_steps) / args.tp_steps)
    ref = b / statistics.median(times["torchvision.models.shufflenet_v2_x1_0"])
    rows = []
    for name, ts in times.items():
        ips = b / statistics.median(ts)
        rows.append({"model": name, "batch": b, "input": f"{b}x3x{s}x{s}", "rounds": args.tp_rounds,
                     "steps_per_round": args.tp_steps, "train_images_per_s": round(ips, 1),
                     "spread_images_per_s": [round(b / t, 1) for t in ts],
                     "vs_torchvision": round(ips / ref, 3)})
    return rows


def recipe(args: argparse.Namespace, epochs: int) -> dict[str, Any]:
    """The training recipe of one part (each part of a merged results file keeps its own)."""
    return {"optimizer": "SGD momentum 0.9", "lr": args.lr or 0.5 * args.batch_size / 1024,
            "schedule": f"linear to 0 per iteration, after a {args.warmup_epochs}-epoch linear warm-up",
            "weight_decay": f"{args.weight_decay:g} on conv/linear weights only",
            "label_smoothing": 0.1, "bn_recalibration": "one epoch, cumulative average",
            "augmentation": "random crop 28 (2 px zero padding) + horizontal flip"
            + (f" + random erasing p={args.random_erasing}" if args.random_erasing else ""),
            "epochs": epochs, "batch": args.batch_size, "ema": args.ema, "seed": args.seed,
            "evaluated_on": (f"{args.holdout} training images held out of training (fixed random subset); "
                             "the test set unused" if args.holdout else "the 10 000-image test set")}


# Column key -> (header, unit, text format) of the printed tables.
LABELS: dict[str, tuple[str, str, str | None]] = {
    "MFLOPs@28": ("MFLOPs at 28x28", "", ".2f"), "Mparams": ("Mparams", "", ".3f"),
    "target_top1": ("target top-1", "%", ".1f"), "wall_time_s": ("wall time", "s", ".1f"),
    "train_images_per_s": ("train images/s", "", ".1f"), "batch8_images_per_s": ("batch 8 images/s", "", ".1f"),
    "batch1_latency_ms": ("batch 1 latency", "ms", ".3f"), "vs_torchvision": ("vs torchvision", "x", ".3f")}
for _ev in ("test", "holdout"):
    LABELS.update({f"{_ev}_top1": (f"{_ev} top-1", "%", ".2f"), f"{_ev}_top5": (f"{_ev} top-5", "%", ".2f"),
                   f"{_ev}_top1_last_epoch": (f"{_ev} top-1, last epoch", "%", ".2f")})


def _table(title: str, rows: list[dict[str, Any]], keys: list[str], key: str) -> Table:
    return Table(title, [Column(k, *LABELS.get(k, (k, "", None))) for k in keys], rows, key=key)


class FashionMnistResult(ResultBase):
    """The benchmark's results (the JSON file) as a result of the package's contract, so that
    :mod:`shufflenet.render` prints and writes it: one table per part."""

    def __init__(self, results: dict[str, Any], holdout: int | None) -> None:
        self.results, self.holdout = results, holdout

    def to_dict(self) -> dict[str, Any]:
        return self.results

    def conventions(self) -> list[str]:
        return [f"{FLOPS}; counted at 1x1x28x28"]

    def tables(self) -> list[Table]:
        r, ev = self.results, "holdout" if self.holdout else "test"
        out = []
        if "accuracy" in r:
            acc = r["accuracy"]
            shown = [{**row, "threads": row.get("threads", f"{row.get('threads_at_last_start')} at last start"
                                                if "threads_at_last_start" in row else None)} for row in acc["rows"]]
            where = f"held-out {self.holdout} training images" if self.holdout else "test set"
            out.append(_table(f"accuracy ({where}), {acc['recipe']['epochs']} epochs, {acc['recipe']['augmentation']}",
                              shown, ["model", "status", "MFLOPs@28", "Mparams", f"{ev}_top1", "target_top1",
                                      f"{ev}_top5", "wall_time_s", "train_images_per_s", "threads",
                                      f"{ev}_top1_last_epoch"], "accuracy"))
        if "table8" in r:
            t8 = r["table8"]
            out.append(_table(f"Table 8 on Fashion-MNIST (similar FLOPs, same recipe: {t8['recipe']['epochs']} epochs, "
                              f"{t8['recipe']['augmentation']})", t8["rows"],
                              ["model", "status", "MFLOPs@28", "Mparams", f"{ev}_top1", "train_images_per_s",
                               "batch8_images_per_s", "batch1_latency_ms"], "table8"))
        if "throughput" in r:
            out.append(_table("training throughput, alternating in one process (median of rounds)", r["throughput"],
                              ["model", "input", "train_images_per_s", "vs_torchvision"], "throughput"))
        return out

    def flat(self) -> FlatRows:
        """Every part's rows in one table (a ``part`` column first), for the CSV file; nested lists stay in
        the JSON."""
        r = self.results
        rows = [{"part": "accuracy", **{k: v for k, v in row.items() if k != "speed_segments"}}
                for row in r.get("accuracy", {}).get("rows", [])]
        rows += [{"part": "table8", **{k: v for k, v in row.items() if k != "speed_segments"}}
                 for row in r.get("table8", {}).get("rows", [])]
        rows += [{"part": "throughput", **{k: v for k, v in row.items() if k != "spread_images_per_s"}}
                 for row in r.get("throughput", [])]
        return FlatRows(Table.from_rows("train_fashion_mnist: every part's rows", rows, key="rows"))


class FlatRows(ResultBase):
    """One table as a result (the CSV file of :class:`FashionMnistResult`)."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.table.rows}

    def tables(self) -> list[Table]:
        return [self.table]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", default="accuracy,table8,throughput")
    p.add_argument("--epochs", type=int, default=80)
    p.add_argument("--models", default="shufflenet_v2_x1_0,shufflenet_v2_x0_5",
                   help="accuracy part: which of the two target models to train")
    p.add_argument("--table8-epochs", type=int, default=None, help="table8 part (default: --epochs)")
    p.add_argument("--reuse-only", action="store_true",
                   help="train nothing: report finished runs, and unfinished ones with their last epoch")
    p.add_argument("--only", default=None, metavar="PREFIXES",
                   help="train only models whose label starts with one of these (comma-separated); report the "
                        "others as with --reuse-only (to train the models of one table in parallel processes)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=None, help="default: 0.5 * batch / 1024")
    p.add_argument("--weight-decay", type=float, default=RECIPE_WEIGHT_DECAY,
                   help="on conv/linear weights only (default: the recipe's 4e-5)")
    p.add_argument("--random-erasing", type=float, default=0.0)
    p.add_argument("--warmup-epochs", type=int, default=1,
                   help="linear lr warm-up, the same for every model (ShuffleNet V1 diverges without it)")
    p.add_argument("--ema", type=float, default=None, metavar="DECAY")
    p.add_argument("--limit-train", type=int, default=None)
    p.add_argument("--limit-test", type=int, default=None)
    p.add_argument("--holdout", type=int, default=None, metavar="N",
                   help="validate on N held-out training images instead of the test set (for choosing settings; "
                        "writes ..._holdoutN.json, with no target verdicts)")
    p.add_argument("--data-dir", default=None, help="default: /usr/share/datasets/fashion-mnist")
    p.add_argument("--download", action="store_true", help="allow torchvision's download if not found")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--amp", choices=("none", "bf16", "fp16"), default="none")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--speed-rounds", type=int, default=7)
    p.add_argument("--tp-batch", type=int, default=64)
    p.add_argument("--tp-size", type=int, default=224)
    p.add_argument("--tp-rounds", type=int, default=7)
    p.add_argument("--tp-steps", type=int, default=10)
    p.add_argument("--runs-dir", default="runs/fashion_mnist")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    from shufflenet.train.distributed import resolve_device

    device = resolve_device(args.device)
    args.device = device.type
    parts = {s.strip() for s in args.parts.split(",") if s.strip()}
    args.only = [o.strip() for o in args.only.split(",") if o.strip()] if args.only else None
    short = args.limit_train is not None
    stem = "train_fashion_mnist" + (f"_holdout{args.holdout}" if args.holdout else "") + ("_short" if short else "")
    out = args.out or RESULTS / f"{stem}.json"
    results: dict[str, Any] = {
        "benchmark": "train_fashion_mnist", "short_run": short,
        "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]]),
        "environment": environment(args, device),
        "flops_convention": "multiply-adds of conv + FC (paper convention), at 1x1x28x28",
    }
    t0 = time.perf_counter()
    trained: dict[str, dict[str, Any]] = {}
    t8_epochs = args.table8_epochs or args.epochs
    if "accuracy" in parts:
        names = [n.strip() for n in args.models.split(",") if n.strip()]
        unknown = [n for n in names if n not in TARGETS]
        if unknown:
            raise SystemExit(f"--models: {', '.join(unknown)} not among {', '.join(TARGETS)}")
        for name in names:
            trained[name] = train_one(name, args, args.epochs)
        results["accuracy"] = {"recipe": recipe(args, args.epochs), "rows": [trained[n] for n in names]}
    if "table8" in parts:
        v2_flops = count_cost(create_model("shufflenet_v2_x0_5", num_classes=10, in_chans=1, small_input=True),
                              (1, 1, 28, 28)).flops
        width, _ = pick_mobilenet_width(v2_flops)
        mnv2_label = f"mobilenet_v2_w{width}_small_input"
        rows = []
        for name in ("shufflenet_v2_x0_5", "shufflenet_v1_g3_x0_5"):
            reuse = trained.get(name) if t8_epochs == args.epochs else None
            row = dict(reuse or train_one(name, args, t8_epochs))  # a copy: speed columns added below
            rows.append({k: v for k, v in row.items() if k not in ("target_top1", "meets_target")})
        torch.manual_seed(args.seed)
        rows.append(train_one(mnv2_label, args, t8_epochs, model=mobilenet_v2_small_input(width),
                              model_name=mnv2_label))
        speed_models = {
            "shufflenet_v2_x0_5": create_model("shufflenet_v2_x0_5", num_classes=10, in_chans=1, small_input=True),
            "shufflenet_v1_g3_x0_5": create_model("shufflenet_v1_g3_x0_5", num_classes=10, in_chans=1,
                                                  small_input=True),
            mnv2_label: mobilenet_v2_small_input(width),
        }
        speed = inference_speed(speed_models, device, args.speed_rounds, args.channels_last, args.amp)
        for row in rows:
            row.update(speed[row["model"]])
        results["table8"] = {"epochs": t8_epochs, "recipe": recipe(args, t8_epochs), "note": "paper Table 8 (~40 MFLOPs group, ImageNet): V2 0.5x 39.7% err, V1 0.5x g=3 "
                                     "43.2%, MobileNet V2 0.15x 55.1% / 0.4x@160 43.4%",
                             "mobilenet_v2_width": width, "rows": rows}
    if "throughput" in parts:
        results["throughput"] = training_throughput(args, device)
    results["total_time_s"] = round(time.perf_counter() - t0, 1)

    previous = _read_json(out) if out.exists() else None
    if isinstance(previous, dict) and previous.get("short_run") == short:
        # Parts not run this time are kept from the existing file (each part records its own command).
        for part in ("accuracy", "table8", "throughput"):
            if part not in results and part in previous:
                results[part] = previous[part]
                results.setdefault("kept_from_previous", {})[part] = previous.get("part_commands", {}).get(
                    part, previous.get("command"))
    results["part_commands"] = {**results.get("kept_from_previous", {}),
                                **{part: results["command"] for part in parts}}
    # Each part keeps the environment it was measured in: a part kept from the previous file was measured
    # by another command, perhaps with other threads or channels_last.
    results["part_environments"] = {
        part: (results["environment"] if part in parts
               else (previous or {}).get("part_environments", {}).get(part, (previous or {}).get("environment")))
        for part in ("accuracy", "table8", "throughput") if part in results}
    out.parent.mkdir(parents=True, exist_ok=True)
    result = FashionMnistResult(results, args.holdout)
    write_result(result, out, fmt="json")
    flat = result.flat()
    if flat.table.rows:
        write_result(flat, out.with_suffix(".csv"), fmt="csv")

    env = results["environment"]
    print(f"Fashion-MNIST, official recipe, batch {args.batch_size} on {env['device']} "
          f"({env.get('gpu_name') or env.get('cpu_model')}, {env['threads']} threads){' [SHORT RUN]' if short else ''}")
    print()
    print(render(result, "table"))
    csv_note = f" and {out.with_suffix('.csv')}" if flat.table.rows else ""
    print(f"\nwrote {out}{csv_note}")


if __name__ == "__main__":
    main()
