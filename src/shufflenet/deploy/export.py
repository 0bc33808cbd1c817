"""Export a model to the formats people deploy with, and check it in its own runtime before keeping it.

Formats: ``onnx`` (ONNX Runtime), ``openvino`` (IR ``.xml`` + ``.bin``), ``ncnn`` (``.param`` + ``.bin``
through the ``pnnx`` converter), ``torchscript`` (a traced ``.pt``) and ``pt2`` (a ``torch.export``
program). After converting, the exported file is loaded in its runtime and its outputs are compared with
the eager PyTorch model on the same inputs (:mod:`shufflenet.deploy.parity`); the ONNX graph is also
checked to hold only standard ops and no tensor above 4-D (the rank TFLite, CoreML and TensorRT reject in
channel-shuffle graphs). The op histogram of the exported graph is reported.

Nothing is left half-written: every file is produced in a temporary directory beside the destination and
moved into place only after the check passed; an existing destination is never replaced.
"""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from shufflenet.deploy.parity import FP32_TOLERANCE, Parity, compare_outputs
from shufflenet.deploy.runtimes import check_precision, load_runtime, require, runtime_versions
from shufflenet.errors import ShuffleNetError, UserInputError, first_line
from shufflenet.result import ResultBase, Table

FORMATS = ("onnx", "openvino", "ncnn", "torchscript", "pt2")
RUNTIME_OF = {"onnx": "onnxruntime", "openvino": "openvino", "ncnn": "ncnn", "torchscript": "torch", "pt2": "torch"}
SUFFIX = {"onnx": ".onnx", "openvino": ".xml", "ncnn": ".param", "torchscript": ".pt", "pt2": ".pt2"}
SIDECAR = {"openvino": ".bin", "ncnn": ".bin"}  # the weights file written beside the main file
# bf16 is a run-time choice where the format stores fp32 weights (OpenVINO) or a cast of the model (torch).
PRECISIONS_OF = {"onnx": ("fp32", "int8"), "openvino": ("fp32", "bf16", "int8"), "ncnn": ("fp32",),
                 "torchscript": ("fp32", "bf16"), "pt2": ("fp32", "bf16")}
TOLERANCE: dict[str, float] = {}  # per format, where it must differ from FP32_TOLERANCE
BF16_TOLERANCE = 0.05
# int8 changes logits by design; the check is that the classes stay: at least 90% of the check images keep
# their top-1 class and no logit moves by more than a quarter of the output scale. The accuracy itself is
# measured on the whole test split by benchmarks/inference.py.
INT8_TOLERANCE = 0.25
INT8_MIN_AGREEMENT = 0.9
ONNX_MAX_RANK = 4


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise UserInputError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    return fmt


def default_output(name: str, fmt: str, *, optimized: bool = False, precision: str = "fp32") -> Path:
    """``NAME[-optimized][-PRECISION].SUFFIX`` in the current directory."""
    stem = name.replace(":", "_").replace("/", "_") + ("-optimized" if optimized else "")
    stem += "" if precision == "fp32" else f"-{precision}"
    return Path(stem + (".torchscript" if fmt == "torchscript" else "") + SUFFIX[fmt])


def output_files(path: str | os.PathLike[str], fmt: str) -> list[Path]:
    """Every file an export to ``path`` writes: the main file and, for OpenVINO and ncnn, the weights."""
    main = Path(path)
    files = [main]
    if fmt in SIDECAR:
        files.append(main.with_suffix(SIDECAR[fmt]))
    return files


@dataclass
class ExportResult(ResultBase):
    """What ``shufflenet export`` wrote and how it checked out."""

    model: str
    format: str
    precision: str
    path: str
    files: dict[str, int]  # file name -> bytes
    optimized: bool
    deploy_steps: list[str]
    dynamic_batch: bool
    input_shape: list[int]  # (C, H, W)
    runtime: str
    runtime_version: str | None
    parity: Parity
    parity_inputs: str
    tolerance: float
    op_histogram: dict[str, int]
    max_rank: int | None = None  # ONNX only: the largest tensor rank in the graph
    nonstandard_ops: list[str] = field(default_factory=list)
    export_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "format": self.format, "precision": self.precision, "path": self.path,
                "files": dict(self.files), "optimized": self.optimized, "deploy_steps": list(self.deploy_steps),
                "dynamic_batch": self.dynamic_batch, "input_shape": list(self.input_shape),
                "runtime": self.runtime, "runtime_version": self.runtime_version,
                "parity": self.parity.to_dict(), "parity_inputs": self.parity_inputs,
                "tolerance": self.tolerance, "parity_ok": self.parity.ok(self.tolerance),
                "op_histogram": dict(self.op_histogram), "max_rank": self.max_rank,
                "nonstandard_ops": list(self.nonstandard_ops), "export_s": self.export_s, "notes": list(self.notes)}

    def tables(self) -> list[Table]:
        p = self.parity
        summary = [
            {"item": "model", "value": self.model}, {"item": "format", "value": self.format},
            {"item": "precision", "value": self.precision},
            {"item": "files", "value": ", ".join(f"{n} ({b / 1e6:.2f} MB)" for n, b in self.files.items())},
            {"item": "optimized", "value": "; ".join(self.deploy_steps) if self.optimized else "no"},
            {"item": "dynamic batch", "value": "yes" if self.dynamic_batch else "no (batch 1)"},
            {"item": "input", "value": "x".join(map(str, self.input_shape))},
            {"item": f"parity in {self.runtime}",
             "value": f"max |error| {p.max_abs_error:.3g} = {p.relative_error:.2e} of the output scale "
                      f"{p.output_scale:.3g} (tolerance {self.tolerance:.2g}); top-1 agrees on "
                      f"{100 * p.top1_agreement:.1f}% of {p.count} {self.parity_inputs}"},
        ]
        if self.max_rank is not None:
            summary.append({"item": "largest tensor rank", "value": str(self.max_rank)})
        if self.format == "onnx":
            summary.append({"item": "non-standard ops",
                            "value": ", ".join(self.nonstandard_ops) if self.nonstandard_ops else "none"})
        summary.append({"item": "export time", "value": f"{self.export_s:.1f} s"})
        ops = [{"op": k, "count": v} for k, v in sorted(self.op_histogram.items(), key=lambda kv: (-kv[1], kv[0]))]
        return [Table.from_rows(f"export {self.model} -> {self.format} ({self.precision})", summary, key="export",
                                notes=self.notes),
                Table.from_rows(f"ops in the exported graph ({sum(self.op_histogram.values())})", ops,
                                key="ops")]


def _rank4_shuffles(model: nn.Module) -> nn.Module:
    """``model``, or a copy of it whose channel shuffles use the rank-4 formulation (``impl="4d"``, the same
    permutation): the 5-D reshape/transpose is what TFLite, CoreML and TensorRT reject."""
    import copy

    from shufflenet.models.layers import SHUFFLE_IMPLS

    if not any(getattr(m, "impl", None) == "5d" for m in model.modules()):
        return model
    model = copy.deepcopy(model)
    for m in model.modules():
        if getattr(m, "impl", None) in SHUFFLE_IMPLS:
            m.impl = "4d"
    return model


class _CastInput(nn.Module):
    """A reduced-precision model that takes and returns float32 (so callers feed what they always feed)."""

    def __init__(self, module: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.module = module
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x.to(self.dtype)).float()


@contextlib.contextmanager
def _quiet_fds(log: Path) -> Iterator[None]:
    """Send file descriptors 1 and 2 to ``log`` (converters written in C++ print their passes there)."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "ab") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _write_onnx(model: nn.Module, example: torch.Tensor, path: Path, dynamic: bool) -> None:
    require("onnx", "ONNX export")
    require("onnxscript", "ONNX export")
    shapes = ({0: torch.export.Dim("batch", min=1, max=4096)},) if dynamic else None
    torch.onnx.export(model, (example,), str(path), dynamo=True, dynamic_shapes=shapes, input_names=["input"],
                      output_names=["logits"], optimize=True, verbose=False, external_data=False)


def _write_onnx_fast(model: nn.Module, example: torch.Tensor, path: Path, dynamic: bool) -> None:
    """ONNX for timing only: the TorchScript-based exporter (about 10x faster to convert than the
    ``torch.export`` one ``export`` uses), falling back to that one for a model it cannot trace."""
    try:
        torch.onnx.export(model, (example,), str(path), dynamo=False, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}
                          if dynamic else None, opset_version=17)
    except Exception:  # noqa: BLE001 - untraceable by TorchScript: the exporter that ships
        path.unlink(missing_ok=True)
        _write_onnx(model, example, path, dynamic)


def convert_for_runtime(model: nn.Module, runtime: str, image_shape: tuple[int, ...], directory: Path,
                        batch: int | None = None) -> Path:
    """Convert ``model`` into ``directory`` for ``runtime`` (for timing: no checks) and return the file that
    :func:`~shufflenet.deploy.runtimes.load_runtime` opens. With ``batch`` the graph has that static batch
    size (no shape arithmetic in it: a runtime at its best), else any batch."""
    example = torch.randn(batch or 2, *image_shape)
    writer, fmt = {"onnxruntime": (_write_onnx_fast, "onnx"), "openvino": (_write_openvino, "openvino"),
                   "ncnn": (_write_ncnn, "ncnn")}[runtime]
    for module in {"onnxruntime": ("onnx",), "openvino": ("openvino",), "ncnn": ("pnnx", "ncnn")}[runtime]:
        require(module, f"the {runtime} runtime")
    path = directory / f"model{SUFFIX[fmt]}"
    try:
        with torch.no_grad(), _quiet_fds(directory / "converter.log"):
            writer(model, example, path, batch is None)
    except UserInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - a converter failure of any kind: one clear line
        raise ShuffleNetError(f"converting the model for {runtime} failed: {first_line(exc)}") from exc
    return path


def _write_openvino(model: nn.Module, example: torch.Tensor, path: Path, dynamic: bool) -> None:
    ov = require("openvino", "OpenVINO export")
    shape = [-1 if dynamic else example.shape[0], *example.shape[1:]]
    converted = ov.convert_model(model, example_input=example, input=[ov.PartialShape(shape)])
    ov.save_model(converted, str(path), compress_to_fp16=False)  # its default would halve the weights


def _write_ncnn(model: nn.Module, example: torch.Tensor, path: Path, dynamic: bool) -> None:
    pnnx = require("pnnx", "ncnn export")
    require("ncnn", "ncnn export")
    work = path.parent / "pnnx"
    work.mkdir()
    # fp16=False: pnnx otherwise stores the ncnn weights in half precision (1.3e-3 of the output scale
    # on the trained Fashion-MNIST model, against 1e-6 with fp32 weights).
    pnnx.export(model, str(work / "model.pt"), (example[:1],), fp16=False)
    os.replace(work / "model.ncnn.param", path)
    os.replace(work / "model.ncnn.bin", path.with_suffix(".bin"))


def _write_torchscript(model: nn.Module, example: torch.Tensor, path: Path, dynamic: bool) -> None:
    traced = torch.jit.trace(model, example, check_trace=False)
    torch.jit.save(traced, str(path))


def _write_pt2(model: nn.Module, example: torch.Tensor, path: Path, dynamic: bool) -> None:
    shapes = ({0: torch.export.Dim("batch", min=1, max=4096)},) if dynamic else None
    program = torch.export.export(model, (example,), dynamic_shapes=shapes)
    torch.export.save(program, str(path))


def _write_int8(fmt: str, model: nn.Module, example: torch.Tensor, path: Path, dynamic: bool,
                calibration: torch.Tensor) -> None:
    from shufflenet.deploy import quantize

    if fmt == "onnx":
        fp32 = path.with_name("fp32-" + path.name)
        _write_onnx(model, example, fp32, dynamic)
        quantize.quantize_onnx(fp32, path, calibration)
        fp32.unlink()
        return
    ov = require("openvino", "OpenVINO export")
    shape = [-1 if dynamic else example.shape[0], *example.shape[1:]]
    converted = ov.convert_model(model, example_input=example, input=[ov.PartialShape(shape)])
    ov.save_model(quantize.quantize_openvino(converted, calibration), str(path), compress_to_fp16=False)


_WRITERS = {"onnx": _write_onnx, "openvino": _write_openvino, "ncnn": _write_ncnn,
            "torchscript": _write_torchscript, "pt2": _write_pt2}


def _load(fmt: str, path: Path, precision: str, threads: int) -> Any:
    if fmt == "torchscript":
        return torch.jit.load(str(path), map_location="cpu").eval()
    if fmt == "pt2":
        return torch.export.load(str(path)).module()
    runtime = RUNTIME_OF[fmt]
    return load_runtime(runtime, path, threads=threads, precision=precision)


def onnx_graph_facts(path: str | os.PathLike[str]) -> tuple[dict[str, int], int, list[str]]:
    """The op histogram of an ONNX file, the largest rank of any tensor in it (inputs, outputs, weights and
    every intermediate value, after shape inference) and the ops outside the standard ONNX domain."""
    onnx = require("onnx", "reading ONNX files")
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    ops = collections.Counter(n.op_type for n in g.node)
    ranks = [len(v.type.tensor_type.shape.dim) for v in [*g.input, *g.output, *g.value_info]
             if v.type.HasField("tensor_type") and v.type.tensor_type.HasField("shape")]
    ranks += [len(t.dims) for t in g.initializer]
    ranks += [len(a.t.dims) for n in g.node for a in n.attribute if a.type == onnx.AttributeProto.TENSOR]
    nonstandard = sorted({f"{n.domain}::{n.op_type}" for n in g.node if n.domain not in ("", "ai.onnx")})
    return dict(ops), max(ranks) if ranks else 0, nonstandard


def _histogram(fmt: str, path: Path, loaded: Any) -> dict[str, int]:
    if fmt == "onnx":
        return onnx_graph_facts(path)[0]
    if fmt == "openvino":
        ov = require("openvino")
        ops = ov.Core().read_model(str(path)).get_ordered_ops()
        return dict(collections.Counter(op.get_type_name() for op in ops
                                        if op.get_type_name() not in ("Parameter", "Result", "Constant")))
    if fmt == "ncnn":
        lines = [ln.split() for ln in path.read_text().splitlines()[2:] if ln.strip()]
        return dict(collections.Counter(ln[0] for ln in lines if ln[0] not in ("Input", "MemoryData")))
    if fmt == "torchscript":
        graph = loaded.inlined_graph
        return dict(collections.Counter(n.kind() for n in graph.nodes()
                                        if n.kind().startswith("aten::")))
    program = torch.export.load(str(path))
    return dict(collections.Counter(str(n.target) for n in program.graph.nodes if n.op == "call_function"))


def export_model(model: nn.Module, out: str | os.PathLike[str], *, fmt: str, input_shape: tuple[int, int, int],
                 name: str = "", check_inputs: torch.Tensor | None = None, inputs_label: str = "",
                 dynamic_batch: bool = True, precision: str = "fp32", optimized: bool = False,
                 deploy_steps: list[str] | None = None, reference: nn.Module | None = None,
                 threads: int = 1, calibration: torch.Tensor | None = None,
                 calibration_label: str = "") -> ExportResult:
    """Export ``model`` to ``out`` in format ``fmt``, check it in its runtime, and keep it only if it passes.

    Args:
        model: the network to export (for ``optimized=True``, the output of :func:`~shufflenet.deploy.optimize`
            built with ``channels_last=False`` and without ``compile``).
        out: the main output file; OpenVINO and ncnn also write a ``.bin`` beside it.
        input_shape: (C, H, W) of one image.
        check_inputs: the images the parity check runs on (default: 8 random N(0, 1) images).
        reference: the model the exported one must match (default: ``model``), run in eager PyTorch fp32.
        calibration: int8 only: the real images the activation ranges are calibrated on (never the
            images of the parity check); ``calibration_label`` says which they are.
        dynamic_batch: any batch size at run time (ONNX, OpenVINO, pt2); ncnn runs one image at a time and
            TorchScript traces are shape-generic for these networks.

    Raises:
        UserInputError: an unknown format or precision, a format without that precision, an output that
            exists, a missing runtime (:class:`~shufflenet.deploy.runtimes.MissingRuntimeError`).
        ShuffleNetError: the converter failed, or the exported model does not match (nothing is written).
    """
    check_format(fmt)
    check_precision(precision)
    if precision not in PRECISIONS_OF[fmt]:
        raise UserInputError(f"{fmt} export supports --precision {', '.join(PRECISIONS_OF[fmt])}; for "
                             f"{precision} choose {' or '.join(f for f, p in PRECISIONS_OF.items() if precision in p)}")
    if precision == "int8" and calibration is None:
        raise UserInputError("int8 export needs calibration images (real ones, e.g. the Fashion-MNIST "
                             "training split)")
    out = Path(out)
    if out.suffix != SUFFIX[fmt]:
        raise UserInputError(f"{fmt} export writes a {SUFFIX[fmt]} file; got --out {out}")
    targets = output_files(out, fmt)
    existing = [str(p) for p in targets if p.exists() or p.is_symlink()]
    if existing:
        raise UserInputError(f"{', '.join(existing)} already exist(s); choose another --out (an export never "
                             "replaces a file)")
    runtime = RUNTIME_OF[fmt]
    # Fail on a missing runtime before any work, naming the extra to install.
    for module in {"onnx": ("onnx", "onnxscript", "onnxruntime"), "openvino": ("openvino",),
                   "ncnn": ("pnnx", "ncnn")}.get(fmt, ()):
        require(module, f"{fmt} export")
    reference = (reference if reference is not None else model).eval()
    net = _rank4_shuffles(model.eval())
    if precision == "bf16" and fmt in ("torchscript", "pt2"):
        import copy

        net = _CastInput(copy.deepcopy(net).to(torch.bfloat16), torch.bfloat16).eval()
    example = torch.randn(2, *input_shape)
    if check_inputs is None:
        check_inputs = torch.randn(8, *input_shape, generator=torch.Generator().manual_seed(0))
        inputs_label = inputs_label or "random N(0, 1) images"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".export", dir=out.parent))
    notes: list[str] = []
    try:
        staged = tmp / out.name
        start = time.perf_counter()
        try:
            with torch.no_grad(), _quiet_fds(tmp / "converter.log"):
                if precision == "int8":
                    assert calibration is not None
                    _write_int8(fmt, net, example, staged, dynamic_batch, calibration)
                else:
                    _WRITERS[fmt](net, example, staged, dynamic_batch)
        except (UserInputError, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - a converter failure of any kind: one clear line
            raise ShuffleNetError(f"{fmt} export failed: {first_line(exc)}") from exc
        export_s = time.perf_counter() - start
        max_rank, nonstandard = None, []
        if fmt == "onnx":
            _, max_rank, nonstandard = onnx_graph_facts(staged)
            if max_rank > ONNX_MAX_RANK or nonstandard:
                raise ShuffleNetError(f"the ONNX graph has a rank-{max_rank} tensor or non-standard ops "
                                      f"({', '.join(nonstandard) or 'none'}); nothing was written")
        loaded = _load(fmt, staged, precision, threads)
        with torch.inference_mode():
            expected = reference(check_inputs)
            got = loaded(check_inputs)
            if dynamic_batch and fmt != "ncnn":  # the same images one at a time: the batch really is dynamic
                single = loaded(check_inputs[:1])
                if single.shape[0] != 1 or compare_outputs(got[:1], single).relative_error > (
                        INT8_TOLERANCE if precision == "int8" else 1e-3):
                    raise ShuffleNetError(f"the exported {fmt} model does not run at batch 1 as at batch "
                                          f"{check_inputs.shape[0]}")
        parity = compare_outputs(expected, got)
        tolerance = {"bf16": BF16_TOLERANCE, "int8": INT8_TOLERANCE}.get(precision,
                                                                         TOLERANCE.get(fmt, FP32_TOLERANCE))
        if precision == "int8" and parity.top1_agreement < INT8_MIN_AGREEMENT:
            raise ShuffleNetError(f"the int8 {fmt} model keeps the top-1 class of only "
                                  f"{100 * parity.top1_agreement:.1f}% of the check images (needs "
                                  f"{100 * INT8_MIN_AGREEMENT:.0f}%); nothing was written")
        if not parity.ok(tolerance):
            raise ShuffleNetError(f"the exported {fmt} model differs from PyTorch by {parity.relative_error:.2e} "
                                  f"of the output scale (tolerance {tolerance:.2g}); nothing was written")
        histogram = _histogram(fmt, staged, loaded)
        if fmt == "openvino":
            actual = getattr(loaded, "inference_precision", "")
            notes.append(f"OpenVINO compiled at inference precision {actual} (set explicitly: on CPUs with bf16 "
                         "it otherwise runs fp32 models in bf16)")
        if fmt == "ncnn":
            notes.append("ncnn runs one image at a time (no batch dimension); the converter was pnnx")
        if precision == "int8":
            quantizer = ("ONNX Runtime static QDQ (uint8 activations, per-channel int8 weights, min-max)"
                         if fmt == "onnx" else "NNCF (performance preset)")
            notes.append(f"int8 by {quantizer}, calibrated on {calibration.shape[0] if calibration is not None else 0} "
                         f"{calibration_label or 'images'}")
        del loaded
        for dst in targets:
            if dst.exists():
                raise UserInputError(f"{dst} appeared while exporting; nothing was replaced")
        moved: list[Path] = []
        try:
            for src_file, dst in zip(output_files(staged, fmt), targets, strict=True):
                os.replace(src_file, dst)
                moved.append(dst)
        except BaseException:
            for p in moved:
                p.unlink(missing_ok=True)
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    versions = runtime_versions()
    return ExportResult(
        model=name or type(model).__name__, format=fmt, precision=precision, path=str(out),
        files={p.name: p.stat().st_size for p in targets}, optimized=optimized, deploy_steps=list(deploy_steps or []),
        dynamic_batch=dynamic_batch and fmt != "ncnn", input_shape=list(input_shape), runtime=runtime,
        runtime_version=versions.get(runtime), parity=parity, parity_inputs=inputs_label, tolerance=tolerance,
        op_histogram=histogram, max_rank=max_rank, nonstandard_ops=nonstandard, export_s=export_s, notes=notes)


def to_runtime(model: nn.Module, runtime: str, input_size: tuple[int, ...], *, threads: int = 1,
               precision: str = "fp32") -> nn.Module:
    """``model`` converted for ``runtime`` and loaded there, as a module taking an NCHW batch of
    ``input_size``'s per-image shape (any batch for ONNX Runtime and OpenVINO; ncnn runs image by image).

    Conversion goes through a temporary directory that is removed once the runtime has loaded the model.
    ``runtime="torch"`` returns ``model`` itself.
    """
    from shufflenet.deploy.runtimes import check_runtime

    check_runtime(runtime)
    if runtime == "torch":
        return model
    with tempfile.TemporaryDirectory(prefix="shufflenet-runtime-") as tmp:
        path = convert_for_runtime(model.eval(), runtime, tuple(input_size[1:]) if len(input_size) == 4
                                   else tuple(input_size), Path(tmp))
        return load_runtime(runtime, path, threads=threads, precision=precision)


def _adapter(model: nn.Module, runtime: str, input_size: tuple[int, ...], threads: int) -> nn.Module:
    return to_runtime(model, runtime, input_size, threads=threads)


def _register() -> None:
    # measure/ times models in runtimes through this adapter: it cannot import deploy (a layer above it).
    from shufflenet.measure.timing import register_runtime_adapter

    register_runtime_adapter(_adapter)


_register()
