"""Inference runtimes as modules: ONNX Runtime, OpenVINO and ncnn behind ``module(x) -> logits``.

The paper's point (Sec. 1-2) is that speed depends on the platform, and the runtime is part of it. Each
adapter here is an ``nn.Module`` taking and returning torch tensors, so the one timing protocol of
:func:`shufflenet.measure.measure` (warm-up, blocks, median and spread, environment) times a model in any
runtime exactly as it times eager PyTorch. Runtimes run their own threads, so a runtime module is timed
with the wall clock.

Every runtime is an optional extra; a missing one raises :class:`MissingRuntimeError` naming the extra.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from shufflenet.errors import UserInputError
from shufflenet.measure.options import RUNTIMES, check_runtime

__all__ = ["PRECISIONS", "RUNTIMES", "MissingRuntimeError", "NcnnModule", "OnnxRuntimeModule", "OpenVinoModule",
           "RuntimeModule", "check_precision", "check_runtime", "load_runtime", "require", "runtime_versions"]

PRECISIONS = ("fp32", "bf16", "int8")

# Python module -> (pip package, this package's extra that installs it)
_PACKAGES = {
    "onnx": ("onnx", "export"), "onnxscript": ("onnxscript", "export"), "onnxruntime": ("onnxruntime", "export"),
    "openvino": ("openvino", "openvino"), "nncf": ("nncf", "openvino"), "ncnn": ("ncnn", "ncnn"),
    "pnnx": ("pnnx", "ncnn"),
}


class MissingRuntimeError(UserInputError):
    """An optional runtime or converter is not installed (bad input: exit code 2, one line)."""


def require(module: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`MissingRuntimeError` naming the pip extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        pkg, extra = _PACKAGES.get(module, (module, "export"))
        what = f"{purpose} needs" if purpose else "this needs"
        raise MissingRuntimeError(f"{what} the '{pkg}' package, which is not installed: "
                                  f"pip install 'shufflenet[{extra}]'") from None


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise UserInputError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    return precision


class RuntimeModule(nn.Module):
    """Base of the runtime adapters: ``forward`` takes an NCHW float tensor and returns the logits."""

    runtime = ""
    wall_clock_only = True  # the runtime may compute on threads other than the caller's

    def __init__(self, path: str | os.PathLike[str], threads: int, precision: str) -> None:
        super().__init__()
        self.path = str(path)
        self.threads = int(threads)
        self.precision = precision

    def run_numpy(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        arr = x.detach().float().contiguous().cpu().numpy()
        return torch.from_numpy(np.ascontiguousarray(self.run_numpy(arr)))

    def extra_repr(self) -> str:
        return f"{self.path}, threads={self.threads}, precision={self.precision}"


class OnnxRuntimeModule(RuntimeModule):
    """An ONNX file in ONNX Runtime's CPU provider, all graph optimisations on, ``threads`` intra-op."""

    runtime = "onnxruntime"

    def __init__(self, path: str | os.PathLike[str], threads: int = 1, precision: str = "fp32") -> None:
        super().__init__(path, threads, precision)
        ort = require("onnxruntime", "the onnxruntime runtime")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        if self.threads == 1:
            # One intra-op thread computes on the caller's thread: no spinning helper thread to pay for.
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(self.path, opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def run_numpy(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x})[0]


class OpenVinoModule(RuntimeModule):
    """An OpenVINO IR (or ONNX file) compiled for the CPU plugin at an explicit inference precision.

    The precision is always set: on a CPU with AVX512_BF16 (or AMX) OpenVINO otherwise runs fp32 models in
    bf16, silently, and its speed would be compared with other runtimes' fp32.
    """

    runtime = "openvino"

    def __init__(self, path: str | os.PathLike[str], threads: int = 1, precision: str = "fp32") -> None:
        super().__init__(path, threads, precision)
        ov = require("openvino", "the openvino runtime")
        core = ov.Core()
        hint = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}[check_precision(precision)]
        config = {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": self.threads,
                  "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
                  # Pinning binds its threads to cores it picks, whatever else runs there: on a shared
                  # machine that more than halved its speed (4.4 vs 2.3 ms for ShuffleNet V2 0.5x).
                  "ENABLE_CPU_PINNING": False}
        if precision == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            raise UserInputError("this CPU has no bf16 support in OpenVINO (no AVX512_BF16 or AMX)")
        self.compiled = core.compile_model(core.read_model(self.path), "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.inference_precision = str(self.compiled.get_property("INFERENCE_PRECISION_HINT"))

    def run_numpy(self, x: np.ndarray) -> np.ndarray:
        self.request.infer({0: x})
        return self.request.get_output_tensor(0).data.copy()


class NcnnModule(RuntimeModule):
    """An ncnn ``.param`` + ``.bin`` pair (as written by ``pnnx``); ncnn takes one image at a time, so a
    batch runs image by image, as a phone app would."""

    runtime = "ncnn"

    def __init__(self, path: str | os.PathLike[str], threads: int = 1, precision: str = "fp32") -> None:
        super().__init__(path, threads, precision)
        ncnn = require("ncnn", "the ncnn runtime")
        if precision != "fp32":
            raise UserInputError("ncnn runs fp32 here (its int8 needs ncnn2table/ncnn2int8, not in the pip "
                                 "package); use --runtime onnxruntime or openvino for int8 / bf16")
        param = Path(self.path)
        weights = param.with_suffix(".bin")
        if not weights.is_file():
            raise UserInputError(f"{param}: its weights file {weights.name} is missing beside it")
        self._ncnn = ncnn
        self.net = ncnn.Net()
        self.net.opt.use_vulkan_compute = False
        self.net.opt.num_threads = self.threads
        # fp32 end to end: ncnn stores activations as fp16/bf16 on some CPUs unless told not to.
        for flag in ("use_fp16_storage", "use_fp16_packed", "use_fp16_arithmetic", "use_bf16_storage"):
            setattr(self.net.opt, flag, False)
        if self.net.load_param(str(param)) != 0 or self.net.load_model(str(weights)) != 0:
            raise UserInputError(f"{param}: ncnn cannot load this model")
        self.input_name, self.output_name = _ncnn_io_names(param)

    def run_numpy(self, x: np.ndarray) -> np.ndarray:
        outs = []
        for image in x:
            ex = self.net.create_extractor()
            ex.input(self.input_name, self._ncnn.Mat(np.ascontiguousarray(image)).clone())
            ret, out = ex.extract(self.output_name)
            if ret != 0:
                raise RuntimeError(f"ncnn failed to run the model (code {ret})")
            outs.append(np.array(out).reshape(-1))
        return np.stack(outs)


def _ncnn_io_names(param: Path) -> tuple[str, str]:
    """The first Input layer's blob and the last layer's output blob of an ncnn ``.param`` file."""
    lines = [ln.split() for ln in param.read_text().splitlines()[2:] if ln.strip()]
    inputs = [ln[1] for ln in lines if ln[0] == "Input"]
    if not inputs or not lines:
        raise UserInputError(f"{param}: not an ncnn param file with an Input layer")
    last = lines[-1]
    n_in, n_out = int(last[2]), int(last[3])
    return inputs[0], last[4 + n_in + n_out - 1]


_MODULES: dict[str, type[RuntimeModule]] = {
    "onnxruntime": OnnxRuntimeModule, "openvino": OpenVinoModule, "ncnn": NcnnModule}


def load_runtime(runtime: str, path: str | os.PathLike[str], *, threads: int = 1,
                 precision: str = "fp32") -> RuntimeModule:
    """Open an exported model file in ``runtime`` (``onnxruntime``: .onnx; ``openvino``: .xml or .onnx;
    ``ncnn``: .param)."""
    check_runtime(runtime)
    if runtime == "torch":
        raise UserInputError("the torch runtime runs the model itself; nothing to load")
    return _MODULES[runtime](path, threads=threads, precision=check_precision(precision))


def runtime_versions() -> dict[str, Any]:
    """Installed runtime versions (``None`` for a missing one), for results' environment records."""
    out: dict[str, Any] = {"torch": torch.__version__}
    for mod in ("onnxruntime", "openvino", "ncnn", "onnx", "pnnx"):
        try:
            m = importlib.import_module(mod)
            version = getattr(m, "__version__", None)
            if version is None and mod == "openvino":
                version = m.get_version()
            out[mod] = str(version) if version is not None else "installed"
        except Exception:  # noqa: BLE001 - absent or broken: report it as missing
            out[mod] = None
    return out

