"""The latency predictor: calibrate on this machine by timing kernels, predict any model without timing it.

``calibrate(mode, threads)`` -> :class:`Calibration` (save / :func:`load_calibration`);
``predict_latency(model, input_size, calibration)`` -> :class:`LatencyPrediction` (the result contract).
"""

from shufflenet.audit.latency.calibration import (
    FORMAT_VERSION,
    Calibration,
    calibrate,
    default_path,
    load_calibration,
)
from shufflenet.audit.latency.kernels import Kernel, KernelTrace, trace_kernels
from shufflenet.audit.latency.predict import LatencyPrediction, predict_latency, predict_trace

__all__ = ["FORMAT_VERSION", "Calibration", "Kernel", "KernelTrace", "LatencyPrediction", "calibrate",
           "default_path", "load_calibration", "predict_latency", "predict_trace", "trace_kernels"]
