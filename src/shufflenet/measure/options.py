"""Validation of the measurement options (device, dtype, threads, batch, memory format).

Every bad value becomes a :class:`~shufflenet.errors.UserInputError` (CLI exit code 2) with one clear line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import torch

from shufflenet.environment import DTYPE_NAMES, cpu_count, dtype_name
from shufflenet.errors import UserInputError, cannot_run, first_line  # noqa: F401 - cannot_run re-exported

__all__ = [
    "DTYPES", "DTYPE_NAMES", "MEMORY_FORMATS", "cannot_run", "check_batches", "check_count", "check_image_size",
    "check_input_size", "check_memory_format", "cpu_count", "dtype_name", "parse_batches", "resolve_device",
    "resolve_dtype", "resolve_threads",
]

DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32, "float32": torch.float32, "float": torch.float32,
    "fp16": torch.float16, "float16": torch.float16, "half": torch.float16,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
}
MEMORY_FORMATS = ("contiguous", "channels_last")


def resolve_device(device: str | torch.device) -> torch.device:
    """``"cpu"``, ``"cuda"`` or ``"cuda:N"`` -> a usable :class:`torch.device`; CUDA must be available."""
    text = str(device).strip().lower()
    if not re.fullmatch(r"cpu|cuda(:\d+)?", text):
        raise UserInputError(f"unknown device {str(device)!r}: choose cpu or cuda (or cuda:N)")
    dev = torch.device(text)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            built = "built with CUDA " + torch.version.cuda if torch.version.cuda else "built without CUDA"
            raise UserInputError(f"--device {text} asked for, but no CUDA device is available "
                                 f"(torch {torch.__version__}, {built})")
        index = dev.index or 0
        if index >= torch.cuda.device_count():
            raise UserInputError(f"device {text}: only {torch.cuda.device_count()} CUDA device(s) present")
    return dev


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``fp32``/``fp16``/``bf16`` (or a floating :class:`torch.dtype` of those) -> the dtype."""
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPE_NAMES:
            raise UserInputError(f"unsupported dtype {dtype}: choose fp32, fp16 or bf16")
        return dtype
    key = str(dtype).strip().lower()
    if key not in DTYPES:
        raise UserInputError(f"unknown dtype {dtype!r}: choose fp32, fp16 or bf16")
    return DTYPES[key]


def resolve_threads(threads: int | None, device: torch.device) -> int:
    """The intra-op thread count to time with.

    ``None`` on CPU means **1 thread**: the paper measured its ARM numbers on one thread (Sec. 2),
    and one thread is also what stays repeatable on a shared machine. On CUDA ``None`` keeps torch's
    current setting (host threads only launch kernels there).
    """
    limit = os.cpu_count() or 1
    if threads is None:
        return 1 if device.type == "cpu" else max(1, torch.get_num_threads())
    if isinstance(threads, bool) or not isinstance(threads, int):
        raise UserInputError(f"threads must be an integer, got {threads!r}")
    if threads < 1:
        raise UserInputError(f"threads must be >= 1, got {threads}")
    if threads > limit:
        raise UserInputError(f"threads={threads} is more than this machine's {limit} logical CPU(s)")
    return threads


def check_memory_format(memory_format: str) -> torch.memory_format:
    if memory_format not in MEMORY_FORMATS:
        raise UserInputError(f"unknown memory format {memory_format!r}: choose {' or '.join(MEMORY_FORMATS)}")
    return torch.channels_last if memory_format == "channels_last" else torch.contiguous_format


def _sizes(size: Sequence[int], names: tuple[str, ...], what: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in size)
    except (TypeError, ValueError):
        raise UserInputError(f"{what} {size!r} is not a sequence of integers") from None
    if len(dims) != len(names) or any(d <= 0 for d in dims):
        count = {3: "three", 4: "four"}.get(len(names), str(len(names)))
        raise UserInputError(f"{what} {tuple(size)!r}: expected {count} positive sizes {', '.join(names)}")
    return dims


def check_input_size(input_size: Sequence[int]) -> tuple[int, int, int, int]:
    """An NCHW tuple of four positive ints (batch first)."""
    return _sizes(input_size, ("N", "C", "H", "W"), "input size")  # type: ignore[return-value]


def check_image_size(image_size: Sequence[int]) -> tuple[int, int, int]:
    """A per-image (C, H, W) tuple of three positive ints."""
    return _sizes(image_size, ("C", "H", "W"), "per-image input size")  # type: ignore[return-value]


def check_count(name: str, value: object, low: int = 0) -> int:
    """An integer option (repeats, warm-up passes) of at least ``low``; ``True``/``False`` are not counts."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UserInputError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


def check_batches(batches: Sequence[int]) -> list[int]:
    out = []
    for b in batches:
        if isinstance(b, bool) or not isinstance(b, int) or b <= 0:
            raise UserInputError(f"batch sizes must be positive integers, got {b!r}")
        out.append(b)
    if not out:
        raise UserInputError("no batch size given")
    return out


def parse_batches(text: str) -> list[int]:
    """``"1,8"`` -> ``[1, 8]``; malformed lists and sizes <= 0 are a :class:`UserInputError`."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise UserInputError(f"malformed --batch {text!r}: expected positive integers such as 1,8") from None
    if any(v <= 0 for v in values):
        raise UserInputError(f"--batch {text!r}: batch sizes must be >= 1")
    return values


RUNTIMES = ("torch", "onnxruntime", "openvino", "ncnn")


def check_runtime(runtime: str) -> str:
    """``runtime`` if it names an inference runtime models can be timed in, else :class:`UserInputError`."""
    if runtime not in RUNTIMES:
        raise UserInputError(f"unknown runtime {runtime!r}; choose from {', '.join(RUNTIMES)}")
    return runtime
