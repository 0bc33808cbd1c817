"""Inference speed of every deployment path, side by side, and int8 / bf16 accuracy on real data.

For each ShuffleNet V2 width, batch size and thread count, the same 3x224x224 input is timed through:

* torchvision's model: eager PyTorch (NCHW and channels_last), and its export run by each peer runtime —
  ONNX Runtime, OpenVINO (fp32, set explicitly) and ncnn (through pnnx);
* this package's model: eager, :func:`~shufflenet.deploy.optimize` (eager, channels_last), and the
  optimised network exported to each runtime; int8 (ONNX Runtime QDQ, OpenVINO NNCF) and bf16 (OpenVINO).

Protocol (the machine is shared and noisy, so everything is a ratio measured in one process): every path
of a cell is timed once per round, in a rotated order, for ``rounds`` rounds; each timing is a block of
calls lasting at least ``block_s``; a path's latency is the median over rounds, its spread the
interquartile range. The **compute floor** is the model's multiply-adds (the paper's FLOPs) over this
machine's measured fp32 ceiling at that thread count (:func:`shufflenet.measure.measure_machine`: the best
of torch, oneDNN and OpenVINO kernels), so "% of floor" is the machine's limit, not one library's.

Random weights are used for speed (it does not depend on the values); accuracy is measured on the shipped
Fashion-MNIST checkpoints over the whole test split.
"""

from __future__ import annotations

import copy
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from shufflenet.result import FLOPS, ResultBase, Table

WIDTHS = ("0.5", "1.0", "2.0")
TV_NAMES = {"0.5": "shufflenet_v2_x0_5", "1.0": "shufflenet_v2_x1_0", "1.5": "shufflenet_v2_x1_5",
            "2.0": "shufflenet_v2_x2_0"}
PEER_RUNTIMES = ("onnxruntime", "openvino", "ncnn")
TARGET_BEST_VS_PEER = 0.7  # our best fp32 path, as a fraction of the best peer runtime's latency
TARGET_EAGER_VS_TV = 0.5  # optimised eager PyTorch, as a fraction of torchvision eager
TARGET_LOW_PRECISION = 0.5  # int8 / bf16, as a fraction of the best fp32 peer (= 2x faster)
TARGET_ACCURACY_DROP = 0.3  # points of Fashion-MNIST test top-1

Progress = Callable[[Iterable[Any], str, int], Iterable[Any]]


@dataclass(frozen=True)
class DeployPath:
    """One way of running one width: its label, who built the network, the runtime and precision."""

    label: str
    source: str  # "torchvision" or "ours"
    runtime: str  # "torch" or a runtime name
    precision: str = "fp32"
    optimized: bool = False
    compiled: bool = False  # eager through torch.compile (Inductor, frozen weights)


@dataclass
class PathTiming:
    """The timings of one path in one cell (width, batch, threads)."""

    path: DeployPath
    width: str
    batch: int
    threads: int
    times_s: list[float] = field(default_factory=list)  # per round, seconds per batch

    @property
    def median_s(self) -> float:
        from shufflenet.measure.timing import median

        return median(self.times_s)

    @property
    def iqr_s(self) -> float:
        from shufflenet.measure.timing import quantile

        s = sorted(self.times_s)
        return quantile(s, 0.75) - quantile(s, 0.25)


def paths(include_ncnn: bool = True, low_precision: bool = True, compiled: bool = False) -> list[DeployPath]:
    out = [DeployPath("torchvision eager", "torchvision", "torch"),
           DeployPath("torchvision eager channels_last", "torchvision", "torch", optimized=True),
           *[DeployPath(f"torchvision -> {r}", "torchvision", r) for r in PEER_RUNTIMES
             if include_ncnn or r != "ncnn"],
           DeployPath("ours eager", "ours", "torch"),
           DeployPath("ours optimised eager", "ours", "torch", optimized=True),
           *([DeployPath("ours optimised torch.compile", "ours", "torch", optimized=True, compiled=True)]
             if compiled else []),
           *[DeployPath(f"ours optimised -> {r}", "ours", r, optimized=True) for r in PEER_RUNTIMES
             if include_ncnn or r != "ncnn"]]
    if low_precision:
        out += [DeployPath("ours optimised -> onnxruntime int8", "ours", "onnxruntime", "int8", True),
                DeployPath("ours optimised -> openvino int8", "ours", "openvino", "int8", True),
                DeployPath("ours optimised -> openvino bf16", "ours", "openvino", "bf16", True)]
    return out


def _installed(*modules: str) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in modules)


def _cpu_has_bf16() -> bool:
    """Whether OpenVINO's CPU plugin runs bf16 here (AVX512_BF16 or AMX)."""
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


RUNTIME_MODULES = {"onnxruntime": ("onnx", "onnxruntime"), "openvino": ("openvino",), "ncnn": ("ncnn", "pnnx")}


def available_paths() -> tuple[list[DeployPath], list[str]]:
    """:func:`paths` whose runtimes (and quantizers) are installed, and the names of those that are not."""
    missing = sorted({m for mods in RUNTIME_MODULES.values() for m in mods if not _installed(m)}
                     | ({"nncf"} if not _installed("nncf") else set()))
    keep = []
    for p in paths():
        if p.runtime != "torch" and not _installed(*RUNTIME_MODULES[p.runtime]):
            continue
        if p.precision == "int8" and p.runtime == "openvino" and not _installed("nncf"):
            continue
        if p.precision == "bf16" and not _cpu_has_bf16():
            continue
        keep.append(p)
    return keep, missing


def _build_networks(width: str) -> tuple[nn.Module, nn.Module]:
    import torchvision

    from shufflenet.models import create_model

    torch.manual_seed(0)
    tv = getattr(torchvision.models, TV_NAMES[width])().eval()
    ours = create_model(TV_NAMES[width]).eval()
    return tv, ours


def _artifacts(width: str, batch: int, chosen: Sequence[DeployPath], directory: Path) -> dict[DeployPath, Any]:
    """Per path: an eager module, or the exported file its runtime opens, exported for a static ``batch``
    (every runtime at its best: no shape arithmetic left in the graph)."""
    from shufflenet.deploy.export import convert_for_runtime
    from shufflenet.deploy.optimize import optimize
    from shufflenet.deploy.quantize import quantize_onnx, quantize_openvino

    tv, ours = _build_networks(width)
    opt_export = optimize(ours, channels_last=False)
    out: dict[DeployPath, Any] = {}
    shape = (3, 224, 224)
    calibration = torch.randn(64, *shape, generator=torch.Generator().manual_seed(0))
    for i, p in enumerate(chosen):
        if p.runtime == "torch":
            if p.source == "torchvision":
                net = copy.deepcopy(tv).to(memory_format=torch.channels_last) if p.optimized else tv
                out[p] = ("torch", net, p.optimized)
            else:
                out[p] = ("torch", optimize(ours, compile=p.compiled) if p.optimized else ours, p.optimized)
            continue
        model = tv if p.source == "torchvision" else opt_export
        d = directory / f"{i}"
        d.mkdir()
        if p.precision == "int8" and p.runtime == "onnxruntime":
            fp32 = convert_for_runtime(model, "onnxruntime", shape, d, batch)
            out[p] = ("file", quantize_onnx(fp32, d / "int8.onnx", calibration, batch))
        elif p.precision == "int8" and p.runtime == "openvino":
            import openvino as ov

            xml = convert_for_runtime(model, "openvino", shape, d, batch)
            q = quantize_openvino(ov.Core().read_model(str(xml)), calibration, batch)
            ov.save_model(q, str(d / "int8.xml"), compress_to_fp16=False)
            out[p] = ("file", d / "int8.xml")
        else:
            out[p] = ("file", convert_for_runtime(model, p.runtime, shape, d, batch))
    return out


def _runner(p: DeployPath, artifact: Any, threads: int) -> Callable[[torch.Tensor], Any]:
    from shufflenet.deploy.runtimes import load_runtime

    if artifact[0] == "torch":
        net, channels_last = artifact[1], artifact[2]

        def run(x: torch.Tensor) -> Any:
            with torch.inference_mode():
                return net(x.contiguous(memory_format=torch.channels_last) if channels_last else x)

        return run
    return load_runtime(p.runtime, artifact[1], threads=threads, precision=p.precision)


def _time_block(fn: Callable[[torch.Tensor], Any], x: torch.Tensor, block_s: float) -> float:
    n, start = 0, time.perf_counter()
    while True:
        fn(x)
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= block_s:
            return elapsed / n


@dataclass
class InferenceSpeed(ResultBase):
    """The speed table of every path in every cell, the per-cell verdicts and (optionally) accuracy."""

    timings: list[PathTiming]
    floors_s: dict[str, float]  # "width|batch|threads" -> seconds per batch at the compute ceiling
    ceilings: dict[int, dict[str, Any]]  # threads -> the machine ceiling used
    mflops: dict[str, float]  # width -> multiply-adds per image (ours, official layout)
    rounds: int
    env: dict[str, Any]
    accuracy: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def cells(self) -> list[tuple[str, int, int]]:
        seen: list[tuple[str, int, int]] = []
        for t in self.timings:
            key = (t.width, t.batch, t.threads)
            if key not in seen:
                seen.append(key)
        return seen

    def _cell(self, cell: tuple[str, int, int]) -> dict[str, PathTiming]:
        return {t.path.label: t for t in self.timings if (t.width, t.batch, t.threads) == cell}

    def verdicts(self) -> list[dict[str, Any]]:
        """Per cell: the best peer, our best fp32 path, the eager ratio and the low-precision speed-up."""
        rows = []
        for cell in self.cells():
            ts = self._cell(cell)
            peers = [t for t in ts.values() if t.path.source == "torchvision" and t.path.runtime != "torch"]
            ours32 = [t for t in ts.values() if t.path.source == "ours" and t.path.precision == "fp32"]
            low = [t for t in ts.values() if t.path.precision != "fp32"]
            best_peer = min(peers, key=lambda t: t.median_s) if peers else None
            best_ours = min(ours32, key=lambda t: t.median_s) if ours32 else None
            best_low = min(low, key=lambda t: t.median_s) if low else None
            tv = ts.get("torchvision eager")
            opt = ts.get("ours optimised eager")
            floor = self.floors_s.get(_key(*cell))
            row: dict[str, Any] = {"width": cell[0], "batch": cell[1], "threads": cell[2]}
            if best_peer is not None and best_ours is not None:
                ratio = best_ours.median_s / best_peer.median_s
                row.update(best_peer=best_peer.path.label, best_peer_ms=_ms(best_peer.median_s),
                           ours_best=best_ours.path.label, ours_best_ms=_ms(best_ours.median_s),
                           ours_vs_peer=round(ratio, 3), meets_0_7=ratio <= TARGET_BEST_VS_PEER)
                if floor:
                    row["ours_floor_pct"] = round(100 * floor / best_ours.median_s, 1)
                    row["peer_floor_pct"] = round(100 * floor / best_peer.median_s, 1)
            if tv is not None and opt is not None:
                ratio = opt.median_s / tv.median_s
                row.update(eager_vs_tv=round(ratio, 3), meets_0_5=ratio <= TARGET_EAGER_VS_TV)
            if best_low is not None and best_peer is not None:
                ratio = best_low.median_s / best_peer.median_s
                row.update(low_best=best_low.path.label, low_ms=_ms(best_low.median_s),
                           low_speedup=round(1 / ratio, 2), meets_2x=ratio <= TARGET_LOW_PRECISION)
            rows.append(row)
        return rows

    def target_rows(self) -> list[dict[str, Any]]:
        """One row per cell and target: what was compared, the measured ratio, the target and the verdict."""
        rows = []
        for v in self.verdicts():
            cell = f"{v['width']}x, batch {v['batch']}, {v['threads']} thread(s)"
            if "ours_vs_peer" in v:
                rows.append({"cell": cell, "target": "our best fp32 / best peer runtime",
                             "compared": f"{v['ours_best']} {v['ours_best_ms']} ms vs {v['best_peer']} "
                                         f"{v['best_peer_ms']} ms", "measured": v["ours_vs_peer"],
                             "goal": f"<= {TARGET_BEST_VS_PEER}", "met": v["meets_0_7"]})
            if "eager_vs_tv" in v:
                rows.append({"cell": cell, "target": "optimised eager / torchvision eager",
                             "compared": "ours optimised eager vs torchvision eager", "measured": v["eager_vs_tv"],
                             "goal": f"<= {TARGET_EAGER_VS_TV}", "met": v["meets_0_5"]})
            if "low_speedup" in v:
                rows.append({"cell": cell, "target": "int8/bf16 speed-up over the best fp32 peer",
                             "compared": f"{v['low_best']} {v['low_ms']} ms", "measured": v["low_speedup"],
                             "goal": f">= {1 / TARGET_LOW_PRECISION:g}", "met": v["meets_2x"]})
        return rows

    def table_rows(self) -> list[dict[str, Any]]:
        rows = []
        for cell in self.cells():
            ts = self._cell(cell)
            floor = self.floors_s.get(_key(*cell))
            peers = [t.median_s for t in ts.values() if t.path.source == "torchvision" and t.path.runtime != "torch"]
            best_peer = min(peers) if peers else None
            for t in ts.values():
                rows.append({"width": t.width, "batch": t.batch, "threads": t.threads, "path": t.path.label,
                             "precision": t.path.precision, "latency_ms": _ms(t.median_s),
                             "iqr_ms": _ms(t.iqr_s), "images_per_s": round(t.batch / t.median_s, 1),
                             # the floor is an fp32 rate: an int8/bf16 path's fraction of it means nothing
                             "floor_pct": round(100 * floor / t.median_s, 1)
                             if floor and t.path.precision == "fp32" else None,
                             "vs_best_peer": round(t.median_s / best_peer, 3) if best_peer else None})
        return rows

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InferenceSpeed:
        """Read back :meth:`to_dict` (to re-render a committed result without timing again)."""
        by_label = {p.label: p for p in paths(compiled=True)}
        timings = [PathTiming(by_label[t["path"]], t["width"], int(t["batch"]), int(t["threads"]),
                              [x / 1e3 for x in t["times_ms"]]) for t in d["timings"]]
        return cls(timings, {k: v / 1e3 for k, v in d["floors_ms"].items()},
                   {int(k): v for k, v in d["ceilings"].items()}, dict(d["mflops"]), int(d["rounds"]),
                   dict(d["env"]), list(d.get("accuracy") or []), list(d.get("notes") or []))

    def to_dict(self) -> dict[str, Any]:
        return {"rounds": self.rounds, "env": self.env, "mflops": self.mflops, "ceilings": self.ceilings,
                "floors_ms": {k: v * 1e3 for k, v in self.floors_s.items()}, "rows": self.table_rows(),
                "verdicts": self.verdicts(), "accuracy": self.accuracy, "notes": self.notes,
                "timings": [{"width": t.width, "batch": t.batch, "threads": t.threads, "path": t.path.label,
                             "times_ms": [x * 1e3 for x in t.times_s]} for t in self.timings]}

    def tables(self) -> list[Table]:
        units = {"latency_ms": "ms", "iqr_ms": "ms", "floor_pct": "%", "best_peer_ms": "ms", "ours_best_ms": "ms",
                 "low_ms": "ms", "ours_floor_pct": "%", "peer_floor_pct": "%"}
        labels = {"latency_ms": "latency", "iqr_ms": "IQR", "images_per_s": "images/s", "floor_pct": "of floor",
                  "vs_best_peer": "x best peer", "best_peer_ms": "best peer", "ours_best_ms": "ours best",
                  "ours_vs_peer": "ours/peer", "meets_0_7": "<= 0.7", "eager_vs_tv": "opt eager/tv eager",
                  "meets_0_5": "<= 0.5", "low_ms": "int8/bf16", "low_speedup": "speed-up vs peer",
                  "meets_2x": ">= 2x", "ours_floor_pct": "ours of floor", "peer_floor_pct": "peer of floor",
                  "best_peer": "best peer path", "ours_best": "our best path", "low_best": "best int8/bf16 path"}
        out = [Table.from_rows("Deployment targets per cell (ShuffleNet V2, 3x224x224)", self.target_rows(),
                               units={"measured": "x"}, key="targets", notes=list(self.notes)),
               _csv_only(Table.from_rows("Best paths per cell", self.verdicts(), units=units, labels=labels,
                                         key="best")),
               Table.from_rows("Every path, side by side (median over interleaved rounds)", self.table_rows(),
                               units=units, labels=labels, key="paths")]
        if self.accuracy:
            out.append(Table.from_rows("Fashion-MNIST test accuracy of the shipped checkpoints by path",
                                       self.accuracy, units={"top1": "%", "drop": "pt"}, key="accuracy"))
        return out

    def conventions(self) -> list[str]:
        return [FLOPS, "latency: median over interleaved rounds of wall-clock blocks; IQR across rounds",
                "floor: multiply-adds / this machine's best measured fp32 rate at that thread count"]


def _csv_only(table: Table) -> Table:
    """The same numbers as the targets table, one wide row per cell: for CSV and JSON readers only."""
    table.display = False
    return table


def _key(width: str, batch: int, threads: int) -> str:
    return f"{width}|{batch}|{threads}"


def _ms(s: float) -> float:
    return round(s * 1e3, 3)


def run_inference_speed(widths: Sequence[str] = WIDTHS, batches: Sequence[int] = (1, 32),
                        threads: Sequence[int] = (1, 2), *, rounds: int = 7, block_s: float = 0.2,
                        chosen: Sequence[DeployPath] | None = None,
                        progress: Progress | None = None) -> InferenceSpeed:
    """Time every path of :func:`paths` (or ``chosen``) in every cell (module docstring)."""
    from shufflenet.cost import count_cost
    from shufflenet.environment import capture_environment
    from shufflenet.measure.machine import measure_machine
    from shufflenet.measure.timing import num_threads

    chosen = list(chosen or paths())
    ceilings = {t: measure_machine("cpu", t) for t in threads}
    timings: list[PathTiming] = []
    floors: dict[str, float] = {}
    mflops: dict[str, float] = {}
    total = len(widths) * len(threads) * len(batches) * rounds
    steps = iter(progress(range(total), "inference", total) if progress else range(total))
    for width in widths:
        _, ours = _build_networks(width)
        flops = count_cost(ours, (1, 3, 224, 224)).flops
        mflops[width] = round(flops / 1e6, 1)
        for batch in batches:
            with tempfile.TemporaryDirectory(prefix="shufflenet-speed-") as tmp:
                artifacts = _artifacts(width, batch, chosen, Path(tmp))
                for nt in threads:
                    runners = {p: _runner(p, artifacts[p], nt) for p in chosen}
                    floors[_key(width, batch, nt)] = flops * batch / (ceilings[nt].matmul_gmadds * 1e9)
                    x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(batch))
                    cell = [PathTiming(p, width, batch, nt) for p in chosen]
                    with num_threads(nt):
                        for t in cell:
                            for _ in range(2):
                                runners[t.path](x)  # warm-up: kernels picked, caches filled
                        for r in range(rounds):
                            order = cell[r % len(cell):] + cell[:r % len(cell)]
                            for t in order:
                                t.times_s.append(_time_block(runners[t.path], x, block_s))
                            next(steps, None)
                    timings += cell
                    del runners
    env = capture_environment(device=torch.device("cpu"), threads=max(threads), dtype=torch.float32)
    from shufflenet.deploy.runtimes import runtime_versions

    env["runtimes"] = runtime_versions()
    return InferenceSpeed(timings, floors, {t: c.to_dict() for t, c in ceilings.items()}, mflops, rounds, env)


def accuracy_by_path(checkpoints: Sequence[str], *, test_images: int | None = None,
                     calibration_images: int = 512) -> list[dict[str, Any]]:
    """Fashion-MNIST test top-1 of each shipped checkpoint run fp32 (eager, optimised, ONNX Runtime) and in
    int8 (ONNX Runtime QDQ, OpenVINO NNCF) and bf16 (OpenVINO), calibrated on the training split."""
    from shufflenet.deploy.export import convert_for_runtime
    from shufflenet.deploy.optimize import optimize
    from shufflenet.deploy.quantize import quantize_onnx, quantize_openvino
    from shufflenet.deploy.runtimes import load_runtime
    from shufflenet.models import create_model
    from shufflenet.models.shipped import load_checked_weights, resolve_weights
    from shufflenet.models.weights import read_safetensors_metadata
    from shufflenet.train.data import fashion_mnist_images

    x, y = fashion_mnist_images("val", test_images or 10_000)
    n = len(y)
    calibration, _ = fashion_mnist_images("train", calibration_images, spread=True)
    rows: list[dict[str, Any]] = []
    for spec in checkpoints:
        meta = read_safetensors_metadata(resolve_weights(spec))
        model = create_model(meta["model"], **meta.get("model_kwargs", {}))
        load_checked_weights(model, meta["model"], spec)
        model.eval()
        opt = optimize(model, channels_last=False)
        with tempfile.TemporaryDirectory(prefix="shufflenet-acc-") as tmp:
            d = Path(tmp)
            runs: list[tuple[str, str, Any]] = [("eager", "fp32", model), ("optimised eager", "fp32", optimize(model))]
            if _installed(*RUNTIME_MODULES["onnxruntime"]):
                onnx32 = convert_for_runtime(opt, "onnxruntime", (1, 28, 28), d)
                runs += [("onnxruntime", "fp32", load_runtime("onnxruntime", onnx32)),
                         ("onnxruntime", "int8", load_runtime("onnxruntime", quantize_onnx(
                             onnx32, d / "int8.onnx", calibration)))]
            if _installed("openvino"):
                import openvino as ov

                xml32 = convert_for_runtime(opt, "openvino", (1, 28, 28), d)
                runs.append(("openvino", "fp32", load_runtime("openvino", xml32)))
                if _installed("nncf"):
                    q_xml = d / "int8.xml"
                    ov.save_model(quantize_openvino(ov.Core().read_model(str(xml32)), calibration), str(q_xml),
                                  compress_to_fp16=False)
                    runs.append(("openvino", "int8", load_runtime("openvino", q_xml, precision="int8")))
                if "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
                    runs.append(("openvino", "bf16", load_runtime("openvino", xml32, precision="bf16")))
            base = None
            for path, precision, runner in runs:
                with torch.inference_mode():
                    pred = torch.cat([torch.as_tensor(runner(x[i:i + 500])).argmax(1) for i in range(0, n, 500)])
                top1 = round(100 * (pred == y).double().mean().item(), 2)
                base = top1 if base is None else base
                rows.append({"checkpoint": spec, "path": path, "precision": precision, "top1": top1,
                             "drop": round(base - top1, 2), "images": n,
                             "within_0_3": base - top1 <= TARGET_ACCURACY_DROP})
    return rows
