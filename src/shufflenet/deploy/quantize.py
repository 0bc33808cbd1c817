"""int8 post-training static quantization with the quantizer of the runtime that will run the model.

* **ONNX Runtime**: static QDQ quantization (``onnxruntime.quantization.quantize_static``), uint8
  activations and per-channel int8 weights, calibrated with min-max ranges on real images. On x86 with
  AVX-512 VNNI ONNX Runtime runs the QDQ convolutions as int8 ``QLinearConv`` / ``ConvInteger`` kernels.
* **OpenVINO**: NNCF's ``nncf.quantize`` (the "performance" preset: symmetric int8 weights and
  activations) on the converted model; the CPU plugin runs the result with its VNNI int8 kernels.

Calibration images are real ones, e.g. the Fashion-MNIST *training* split for the shipped checkpoints, so
the test split that judges the accuracy is never seen by the calibration (the paper's recipe evaluates on
held-out data too, Sec. 5). Each quantizer is imported only when asked for; a missing one raises
:class:`~shufflenet.deploy.runtimes.MissingRuntimeError` naming the extra.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shufflenet.deploy.runtimes import require
from shufflenet.errors import UserInputError

CALIBRATION_BATCH = 32
MIN_CALIBRATION_IMAGES = 32


def _check_images(images: torch.Tensor) -> np.ndarray:
    if images.dim() != 4 or images.shape[0] < MIN_CALIBRATION_IMAGES:
        raise UserInputError(f"int8 calibration needs at least {MIN_CALIBRATION_IMAGES} images as an NCHW "
                             f"batch, got shape {tuple(images.shape)}")
    return images.detach().float().contiguous().numpy()


def _batches(array: np.ndarray, size: int = CALIBRATION_BATCH) -> Iterator[np.ndarray]:
    for i in range(0, len(array), size):
        yield np.ascontiguousarray(array[i:i + size])


def quantize_onnx(fp32_path: str | os.PathLike[str], out_path: str | os.PathLike[str],
                  images: torch.Tensor, batch_size: int = CALIBRATION_BATCH) -> Path:
    """Write the static QDQ int8 version of the ONNX file ``fp32_path`` to ``out_path`` (``batch_size``:
    the calibration batches, which must fit a model exported for a static batch)."""
    require("onnxruntime", "int8 quantization for ONNX Runtime")
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    array = _check_images(images)

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self, name: str) -> None:
            self.name = name
            self.it = _batches(array, batch_size)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.it, None)
            return None if batch is None else {self.name: batch}

    import onnx

    fp32_path, out_path = Path(fp32_path), Path(out_path)
    prepared = out_path.with_name(out_path.stem + ".pre.onnx")
    quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
    input_name = onnx.load(str(prepared)).graph.input[0].name
    try:
        quantize_static(str(prepared), str(out_path), Reader(input_name), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                        calibrate_method=CalibrationMethod.MinMax)
    finally:
        prepared.unlink(missing_ok=True)
    return out_path


def quantize_openvino(model: Any, images: torch.Tensor, batch_size: int = CALIBRATION_BATCH) -> Any:
    """The NNCF int8 version of an OpenVINO model (``ov.Model``), calibrated on ``images``."""
    require("openvino", "int8 quantization for OpenVINO")
    nncf = require("nncf", "int8 quantization for OpenVINO")
    array = _check_images(images)
    batches = list(_batches(array, batch_size))
    dataset = nncf.Dataset(batches)
    return nncf.quantize(model, dataset, preset=nncf.QuantizationPreset.PERFORMANCE,
                         subset_size=len(batches))  # items of the dataset: batches
