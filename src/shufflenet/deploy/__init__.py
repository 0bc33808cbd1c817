"""Deployment: inference-optimised models, export to the runtimes people deploy with, int8 / bf16.

- :func:`optimize` — BN folded, ReLU fused, ShuffleNet V2's split/concat/shuffle folded into weight
  permutations, channels_last, optionally ``torch.compile``.
- :func:`export_model` — ONNX, OpenVINO IR, ncnn, TorchScript, ``torch.export``; checked in the target
  runtime (parity, ONNX rank and op checks) before anything is written -> :class:`ExportResult`.
- :func:`load_runtime` / :func:`to_runtime` — ONNX Runtime, OpenVINO and ncnn as ``nn.Module`` s, so the
  one timing protocol of :mod:`shufflenet.measure` times any runtime.
- :mod:`shufflenet.deploy.quantize` — int8 post-training static quantization (ONNX Runtime QDQ, NNCF).
"""

from shufflenet.deploy.export import FORMATS, ExportResult, export_model, to_runtime
from shufflenet.deploy.optimize import optimize
from shufflenet.deploy.parity import Parity, compare, compare_outputs
from shufflenet.deploy.runtimes import RUNTIMES, MissingRuntimeError, load_runtime

__all__ = ["FORMATS", "RUNTIMES", "ExportResult", "MissingRuntimeError", "Parity", "compare", "compare_outputs",
           "export_model", "load_runtime", "optimize", "to_runtime"]
