"""Parity: does a deployed model compute what the original computes?

The tolerance is relative to the output scale, ``max|candidate - reference| / max|reference|``: an
absolute tolerance would pass anything on a randomly initialised classifier, whose logits are mostly its
bias, and fail a trained one with large logits. Top-1 agreement is reported beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

FP32_TOLERANCE = 1e-4  # relative to the output scale: float32 reordering of sums stays far below it


@dataclass(frozen=True)
class Parity:
    """How far ``candidate`` is from ``reference`` on the same inputs."""

    max_abs_error: float
    output_scale: float  # max |reference output|
    top1_agreement: float  # fraction of rows whose arg-max class agrees
    count: int  # rows compared

    @property
    def relative_error(self) -> float:
        return self.max_abs_error / self.output_scale if self.output_scale > 0 else self.max_abs_error

    def ok(self, tolerance: float = FP32_TOLERANCE) -> bool:
        return self.relative_error <= tolerance

    def to_dict(self) -> dict[str, float]:
        return {"max_abs_error": self.max_abs_error, "output_scale": self.output_scale,
                "relative_error": self.relative_error, "top1_agreement": self.top1_agreement,
                "count": self.count}


def compare_outputs(reference: torch.Tensor | np.ndarray, candidate: torch.Tensor | np.ndarray) -> Parity:
    """:class:`Parity` of two output arrays of the same shape (rows = images)."""
    ref = torch.as_tensor(np.asarray(reference, dtype=np.float64) if not isinstance(reference, torch.Tensor)
                          else reference.detach().double())
    cand = torch.as_tensor(np.asarray(candidate, dtype=np.float64) if not isinstance(candidate, torch.Tensor)
                           else candidate.detach().double())
    if ref.shape != cand.shape:
        raise ValueError(f"outputs differ in shape: {tuple(ref.shape)} vs {tuple(cand.shape)}")
    flat_r, flat_c = ref.reshape(ref.shape[0], -1), cand.reshape(cand.shape[0], -1)
    agree = (flat_r.argmax(1) == flat_c.argmax(1)).double().mean().item() if flat_r.shape[1] > 1 else 1.0
    return Parity(float((ref - cand).abs().max()), float(ref.abs().max()), agree, int(ref.shape[0]))


def compare(reference: Callable[[torch.Tensor], torch.Tensor], candidate: Callable[[torch.Tensor], torch.Tensor],
            inputs: torch.Tensor) -> Parity:
    """Run both on ``inputs`` (no gradients) and compare their outputs."""
    with torch.inference_mode():
        return compare_outputs(reference(inputs), candidate(inputs))
