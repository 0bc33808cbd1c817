"""The per-op-type latency models fitted on a calibration's timed kernels.

Each kind of kernel (:mod:`shufflenet.audit.latency.kernels`) gets two layers:

1. **A linear cost model**, the roofline's two terms plus a per-call overhead: ``t = c0 + c1 * FLOPs +
   c2 * (FLOPs on 16-lane padded channels) + c3 * elements read + c4 * elements written (+ weights)``,
   with non-negative coefficients (Lawson-Hanson NNLS) fitted to minimise the *relative* error. This is the
   paper's statement (Sec. 2) made quantitative per op type: time follows FLOPs *and* memory access *and*
   a fixed cost per operator; the padded-FLOPs term is the vector width of the CPU (AVX-512 holds 16
   fp32 lanes), the kind of platform effect FLOPs do not see.
2. **A nearest-kernel correction**: the log-ratio measured/linear of the calibrated kernels nearest in
   shape (log2 channels, log2 spatial size, kernel size, stride: distance in doublings), Gaussian-weighted
   and shrunk towards 1 when no calibrated kernel is near. The kernel libraries switch algorithms by shape
   (oneDNN's blocked formats, PyTorch's parallel grain sizes), which no smooth formula captures.

View-like kernels (no data moved) are one constant per op: the dispatch cost.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from shufflenet.audit.latency.kernels import BINARY_OPS, CONV_KINDS, POOL_OPS, UNARY_OPS, log2

LANES = 16  # fp32 lanes of one AVX-512 register: channels are processed in blocks of this many
NEIGHBOURS = 6
BANDWIDTH = 0.75  # doublings: kernels within about one doubling of every shape number inform a prediction
PRIOR_WEIGHT = 0.5  # pseudo-count of "no correction" (ratio 1)

Features = Mapping[str, float]


def _pad(c: float) -> float:
    return math.ceil(c / LANES) * LANES


def _conv_design(f: Features) -> list[float]:
    g = f["groups"]
    padded = f["macs"] * (_pad(f["cin"] / g) / (f["cin"] / g)) * (_pad(f["cout"] / g) / (f["cout"] / g))
    return [1.0, f["macs"], padded, f["in_numel"], f["out_numel"], f["w_numel"]]


def _dw_design(f: Features) -> list[float]:
    padded = f["macs"] * _pad(f["cin"]) / f["cin"]
    return [1.0, f["macs"], padded, f["in_numel"], f["out_numel"]]


def _conv_z(f: Features) -> list[float]:
    z = [log2(f["cin"]), log2(f["cout"]), log2(f["h"]), f["k"] / 2, f["stride"]]
    if f["groups"] > 1:
        z.append(log2(f["cin"] / f["groups"]))
    return z


def _dw_z(f: Features) -> list[float]:
    return [log2(f["cin"]), log2(f["h"]), f["k"] / 2, f["stride"]]


def _stream_design(f: Features) -> list[float]:
    return [1.0, f["in_numel"], f["out_numel"]]


def _stream_z(f: Features) -> list[float]:
    return [log2(f["in_numel"]), log2(f["out_numel"]) / 4]


@dataclass(frozen=True)
class KindSpec:
    """How one kind's model reads a kernel's features: the linear design row and the shape coordinates."""

    design: Callable[[Features], list[float]]
    coords: Callable[[Features], list[float]]


SPECS: dict[str, KindSpec] = {
    "conv1x1": KindSpec(_conv_design, _conv_z),
    "conv": KindSpec(_conv_design, _conv_z),
    "gconv": KindSpec(_conv_design, _conv_z),
    "dwconv": KindSpec(_dw_design, _dw_z),
    "linear": KindSpec(lambda f: [1.0, f["macs"], f["w_numel"]], lambda f: [log2(f["in"]), log2(f["out"])]),
    "batch_norm": KindSpec(lambda f: [1.0, f["in_numel"], f["c"]], lambda f: [log2(f["c"]), log2(f["hw"])]),
    "cat": KindSpec(lambda f: [1.0, f["out_numel"], f["inputs"]],
                    lambda f: [log2(f["out_numel"]), log2(f["inputs"])]),
    "copy": KindSpec(_stream_design, _stream_z),
}
for _op in (*UNARY_OPS, *BINARY_OPS, "mul_bcast", "add_bcast"):
    SPECS[_op] = KindSpec(_stream_design, _stream_z)
for _op in POOL_OPS:
    SPECS[_op] = KindSpec(_stream_design, lambda f: [log2(f["in_numel"]), log2(f["out_numel"]) / 2,
                                                     f.get("k", 0) / 2])
assert set(CONV_KINDS) <= set(SPECS)


def nnls(a: np.ndarray, b: np.ndarray, iterations: int = 200) -> np.ndarray:
    """min ||a x - b|| subject to x >= 0 (Lawson and Hanson's active-set method)."""
    n = a.shape[1]
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    w = a.T @ (b - a @ x)
    for _ in range(iterations):
        if passive.all() or w[~passive].max(initial=0) <= 1e-12 * max(1.0, abs(w).max()):
            break
        j = int(np.argmax(np.where(passive, -np.inf, w)))
        passive[j] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if (z[passive] > 0).all():
                x = z
                break
            bad = passive & (z <= 0)
            alpha = np.min(x[bad] / (x[bad] - z[bad] + 1e-300))
            x = x + alpha * (z - x)
            passive &= x > 1e-15
        w = a.T @ (b - a @ x)
    return x


@dataclass
class KindModel:
    """The fitted model of one kind: NNLS coefficients and the calibrated kernels' coordinates/log-ratios."""

    kind: str
    coef: np.ndarray
    scale: np.ndarray
    coords: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    log_ratio: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def linear(self, f: Features) -> float:
        row = np.asarray(SPECS[self.kind].design(f), dtype=float) / self.scale
        return float(max(row @ self.coef, 1e-9))

    def correction(self, z: Sequence[float], exclude: int | None = None) -> float:
        """exp of the Gaussian-weighted mean log-ratio of the nearest calibrated kernels (1 if none)."""
        if not len(self.log_ratio):
            return 1.0
        d2 = ((self.coords - np.asarray(z, dtype=float)) ** 2).sum(axis=1)
        if exclude is not None:
            d2 = d2.copy()
            d2[exclude] = np.inf
        nearest = np.argsort(d2)[:NEIGHBOURS]
        w = np.exp(-d2[nearest] / (2 * BANDWIDTH ** 2))
        return float(math.exp((w * self.log_ratio[nearest]).sum() / (w.sum() + PRIOR_WEIGHT)))

    def predict(self, f: Features) -> float:
        return self.linear(f) * self.correction(SPECS[self.kind].coords(f))


def fit_kind(kind: str, features: Sequence[Features], seconds: Sequence[float]) -> KindModel:
    """Fit one kind's model to its timed kernels (relative least squares, then the neighbour table)."""
    spec = SPECS[kind]
    x = np.asarray([spec.design(f) for f in features], dtype=float)
    t = np.asarray(seconds, dtype=float)
    scale = np.maximum(np.abs(x).max(axis=0), 1e-30)
    a = (x / scale) / t[:, None]  # rows weighted by 1/t: the fit minimises relative error
    coef = nnls(a, np.ones(len(t)))
    model = KindModel(kind, coef, scale)
    lin = np.maximum(x / scale @ coef, 1e-9)
    model.coords = np.asarray([spec.coords(f) for f in features], dtype=float)
    model.log_ratio = np.log(t / lin)
    return model


def leave_one_out_errors(model: KindModel, features: Sequence[Features], seconds: Sequence[float]) -> list[float]:
    """Relative error of each calibrated kernel predicted without itself in the neighbour table."""
    errs = []
    for i, (f, t) in enumerate(zip(features, seconds, strict=True)):
        pred = model.linear(f) * model.correction(SPECS[model.kind].coords(f), exclude=i)
        errs.append(pred / t - 1.0)
    return errs
