"""How well the latency predictor does on networks it never saw, against the FLOPs baselines.

The paper's Sec. 1 / Fig. 1 argument -- FLOPs are an indirect metric that predicts speed badly -- made
into a measurement: networks held out from calibration are timed on this machine (:func:`shufflenet.measure`,
interleaved rounds, each network's quietest round kept, as the calibration keeps each kernel's quietest
pass) and predicted three ways:

(a) a FLOPs-only linear fit ``t = a + b * FLOPs``,
(b) a FLOPs + MAC linear fit ``t = a + b * FLOPs + c * MAC``,
(c) the calibrated predictor (:func:`~shufflenet.audit.latency.predict.predict_latency`), which never sees
    a network's time.

(a) and (b) are fitted to the *measured* times of the other held-out networks (leave-one-out), the most
favourable setting a FLOPs model can get; (c) only to timed kernels. Scores: the share of networks
predicted within +/-10%, the root-mean-square percentage error and Spearman's rank correlation -- the
metrics nn-Meter (MobiSys 2021) and LitePred (NSDI 2024) report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from shufflenet.audit.latency.calibration import Calibration
from shufflenet.audit.latency.predict import predict_latency
from shufflenet.audit.latency.variants import random_variant
from shufflenet.result import Figure, ResultBase, Table

METHODS = ("flops", "flops_mac", "predictor")
METHOD_LABELS = {"flops": "(a) FLOPs-only linear fit", "flops_mac": "(b) FLOPs + MAC linear fit",
                 "predictor": "(c) calibrated predictor"}
TARGET_WITHIN = 90.0  # % of held-out networks within +/-10%
TARGET_SPEARMAN = 0.95

TORCHVISION = ("resnet18", "resnet34", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
               "efficientnet_b0", "densenet121", "regnet_x_400mf", "regnet_y_400mf", "mnasnet0_5", "mnasnet1_0",
               "squeezenet1_0", "squeezenet1_1", "googlenet", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0",
               "shufflenet_v2_x2_0")
PACKAGE: tuple[tuple[str, dict[str, Any]], ...] = (
    ("shufflenet_v2_x0_5", {}), ("shufflenet_v2_x1_0", {}), ("shufflenet_v2_x1_5", {}), ("shufflenet_v2_x2_0", {}),
    ("shufflenet_v2_x1_0", {"se": True}), ("shufflenet_v2_x1_0", {"residual": True}),
    ("shufflenet_v2_x1_0", {"extra_dw": True}), ("shufflenet_v1_g1_x1_0", {}), ("shufflenet_v1_g3_x1_0", {}),
    ("shufflenet_v1_g8_x1_0", {}), ("shufflenet_v1_g3_x0_5", {}), ("mobilenet_v1_x0_5", {}),
    ("mobilenet_v1_x1_0", {}))
QUICK_TORCHVISION = ("resnet18", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "shufflenet_v2_x1_0")
QUICK_PACKAGE = (("shufflenet_v2_x0_5", {}), ("shufflenet_v2_x2_0", {}), ("shufflenet_v1_g3_x1_0", {}))
VARIANT_SEEDS = range(1000, 1020)
QUICK_VARIANT_SEEDS = range(1000, 1004)


@dataclass(frozen=True)
class Network:
    """A held-out network: its label, family ("torchvision", "package", "variant"), builder and input."""

    name: str
    family: str
    build: Callable[[], nn.Module]
    input_size: tuple[int, ...] = (1, 3, 224, 224)


def _registered(name: str, kwargs: dict[str, Any]) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        from shufflenet.models import create_model

        return create_model(name, **kwargs).eval()

    return build


def held_out_networks(quick: bool = False) -> list[Network]:
    """The benchmark's held-out set: 18 torchvision classifiers, 13 of this package's models and 20 random
    ShuffleNet-V2-like variants (51 networks); ``quick``: 5 + 3 + 4 of them, for the report."""
    tv, pkg, seeds = (QUICK_TORCHVISION, QUICK_PACKAGE, QUICK_VARIANT_SEEDS) if quick else (
        TORCHVISION, PACKAGE, VARIANT_SEEDS)
    nets = [Network(f"torchvision:{n}", "torchvision", _registered(f"torchvision:{n}", {})) for n in tv]
    for name, kw in pkg:
        label = name + "".join(f" {k}={v}" for k, v in kw.items())
        nets.append(Network(label, "package", _registered(name, kw)))
    for seed in seeds:
        v = random_variant(seed)
        nets.append(Network(v.name, "variant", v.build, v.input_size))
    return nets


@dataclass
class NetworkResult:
    """One held-out network: FLOPs and MAC, measured time per round, and the three predictions (seconds)."""

    name: str
    family: str
    input_size: tuple[int, ...]
    flops: int
    mac: int
    rounds_s: list[float]
    predicted_s: dict[str, float] = field(default_factory=dict)

    @property
    def measured_s(self) -> float:
        """The quietest round's median: on a shared machine other processes only ever slow a network down."""
        return min(self.rounds_s)

    @property
    def halves_s(self) -> tuple[float, float]:
        """The quietest round among the odd rounds and among the even ones: two independent measurements."""
        return min(self.rounds_s[0::2]), min(self.rounds_s[1::2] or self.rounds_s)

    def error(self, method: str) -> float:
        return self.predicted_s[method] / self.measured_s - 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "input_size": list(self.input_size),
                "flops": self.flops, "mac": self.mac, "measured_s": self.measured_s, "rounds_s": self.rounds_s,
                "predicted_s": dict(self.predicted_s),
                "error_pct": {m: 100 * self.error(m) for m in self.predicted_s}}


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation (average ranks for ties)."""
    def ranks(v: Sequence[float]) -> np.ndarray:
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v), dtype=float)
        vals = np.asarray(v, dtype=float)
        for x in np.unique(vals):
            tie = vals == x
            r[tie] = r[tie].mean()
        return r

    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def leave_one_out_fit(design: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Each network's time predicted by a linear fit (minimising relative error) on all the others."""
    out = np.empty(len(times))
    scale = np.abs(design).max(axis=0)
    x = design / np.where(scale > 0, scale, 1.0)
    for i in range(len(times)):
        keep = np.arange(len(times)) != i
        a = x[keep] / times[keep, None]
        coef = np.linalg.lstsq(a, np.ones(keep.sum()), rcond=None)[0]
        out[i] = float(x[i] @ coef)
    return out


def scores(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, float]:
    """within_10_pct, rmspe_pct, spearman and max_error_pct of predictions against measurements."""
    p, m = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    err = p / m - 1.0
    return {"within_10_pct": float(100 * np.mean(np.abs(err) <= 0.10)),
            "rmspe_pct": float(100 * math.sqrt(np.mean(err ** 2))), "spearman": spearman(p, m),
            "max_error_pct": float(100 * np.max(np.abs(err)))}


@dataclass
class PredictorEvaluation(ResultBase):
    """The three predictors' scores on the held-out networks at one thread count (the result contract)."""

    threads: int
    calibration_mode: str
    calibration_s: float
    calibration_kernels: int
    results: list[NetworkResult]
    rounds: int
    notes: list[str] = field(default_factory=list)

    def scores(self) -> dict[str, dict[str, float]]:
        measured = [r.measured_s for r in self.results]
        return {m: scores([r.predicted_s[m] for r in self.results], measured) for m in METHODS}

    def repeatability(self) -> dict[str, float]:
        """How well this machine reproduces its own measurements: the odd rounds' time as a "prediction" of
        the even rounds' time, scored like the predictors (the ceiling any predictor can reach here)."""
        halves = [r.halves_s for r in self.results]
        return scores([a for a, _ in halves], [b for _, b in halves])

    def meets_target(self) -> bool:
        s = self.scores()["predictor"]
        return s["within_10_pct"] >= TARGET_WITHIN and s["spearman"] >= TARGET_SPEARMAN

    def finding(self) -> str:
        s = self.scores()
        p, a, b = s["predictor"], s["flops"], s["flops_mac"]
        return (f"{len(self.results)} held-out networks, {self.threads} thread(s): the calibrated predictor puts "
                f"{p['within_10_pct']:.0f}% within +/-10% (Spearman {p['spearman']:.3f}, RMSPE {p['rmspe_pct']:.1f}%); "
                f"FLOPs-only {a['within_10_pct']:.0f}% ({a['spearman']:.3f}), FLOPs + MAC {b['within_10_pct']:.0f}% "
                f"({b['spearman']:.3f}), both fitted on the measured times")

    def to_dict(self) -> dict[str, Any]:
        return {"threads": self.threads, "calibration_mode": self.calibration_mode,
                "calibration_s": self.calibration_s, "calibration_kernels": self.calibration_kernels,
                "rounds": self.rounds, "networks": len(self.results), "scores": self.scores(),
                "target": {"within_10_pct": TARGET_WITHIN, "spearman": TARGET_SPEARMAN},
                "meets_target": self.meets_target(), "finding": self.finding(), "notes": list(self.notes),
                "repeatability": self.repeatability() if self.rounds >= 2 else None,
                "results": [r.to_dict() for r in self.results]}

    def score_rows(self) -> list[dict[str, Any]]:
        rows = [{"method": METHOD_LABELS[m], **v} for m, v in self.scores().items()]
        if self.rounds >= 2:
            rows.append({"method": "measurement vs itself (odd vs even rounds)", **self.repeatability()})
        return rows

    def tables(self) -> list[Table]:
        fm = {"within_10_pct": ".0f", "rmspe_pct": ".1f", "spearman": ".3f", "max_error_pct": ".0f"}
        labels = {"within_10_pct": "within +/-10% (%)", "rmspe_pct": "RMSPE (%)", "spearman": "Spearman",
                  "max_error_pct": "max |error| (%)"}
        notes = [f"target: >= {TARGET_WITHIN:.0f}% within +/-10% and Spearman >= {TARGET_SPEARMAN} "
                 f"({'met' if self.meets_target() else 'NOT met'})",
                 "(a) and (b) are fitted leave-one-out on the other held-out networks' measured times; "
                 "(c) never sees a network's time",
                 "measurement vs itself: the quietest odd round against the quietest even round of each network, "
                 "the noise floor of this machine that every predictor's score includes", *self.notes]
        rows = [{"network": r.name, "family": r.family, "mflops": r.flops / 1e6,
                 "measured_ms": r.measured_s * 1e3, "spread_pct": 100 * (max(r.rounds_s) / r.measured_s - 1),
                 "predicted_ms": r.predicted_s["predictor"] * 1e3, "error_pct": 100 * r.error("predictor"),
                 "flops_error_pct": 100 * r.error("flops"), "flops_mac_error_pct": 100 * r.error("flops_mac")}
                for r in sorted(self.results, key=lambda r: r.measured_s)]
        nfm = {"mflops": ".1f", "measured_ms": ".2f", "spread_pct": ".0f", "predicted_ms": ".2f",
               "error_pct": "+.1f", "flops_error_pct": "+.1f", "flops_mac_error_pct": "+.1f"}
        nlabels = {"spread_pct": "spread of rounds (%)", "error_pct": "(c) error (%)",
                   "flops_error_pct": "(a) error (%)", "flops_mac_error_pct": "(b) error (%)"}
        title = (f"Latency predictor on {len(self.results)} held-out networks, {self.threads} thread(s), "
                 f"batch 1 ({self.calibration_mode} calibration: {self.calibration_kernels} kernels, "
                 f"{self.calibration_s:.0f} s)")
        return [Table.from_rows(title, self.score_rows(), fmts=fm, labels=labels, notes=notes, key="latency_scores"),
                Table.from_rows(f"Per network, {self.threads} thread(s)", rows, fmts=nfm, labels=nlabels,
                                key="latency_networks")]

    def figures(self) -> list[Figure]:
        results = self.results

        def draw(fig: Any) -> None:
            ax = fig.add_subplot(111)
            meas = np.array([r.measured_s * 1e3 for r in results])
            lo, hi = meas.min() * 0.7, meas.max() * 1.4
            ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="#dddddd", label="+/-10%")
            ax.plot([lo, hi], [lo, hi], color="#888888", lw=0.8)
            styles = {"flops": ("#c44e52", "x"), "flops_mac": ("#dd8452", "+"), "predictor": ("#4c72b0", "o")}
            for m in METHODS:
                color, marker = styles[m]
                s = scores([r.predicted_s[m] for r in results], [r.measured_s for r in results])
                ax.scatter(meas, [r.predicted_s[m] * 1e3 for r in results], c=color, marker=marker, s=22,
                           label=f"{METHOD_LABELS[m]}: {s['within_10_pct']:.0f}% within 10%, "
                                 f"rho {s['spearman']:.2f}", alpha=0.85 if m == "predictor" else 0.7)
            ax.set_xscale("log")
            ax.set_yscale("log")
            from matplotlib.ticker import FuncFormatter

            plain = FuncFormatter(lambda v, _pos: f"{v:g}")
            for axis in (ax.xaxis, ax.yaxis):
                axis.set_major_formatter(plain)
                axis.set_minor_formatter(FuncFormatter(lambda v, _pos: f"{v:g}" if str(v)[0] in "25" else ""))
            ax.set_xlim(lo, hi)
            ax.set_ylim(lo, hi)
            ax.set_xlabel("measured latency (ms)")
            ax.set_ylabel("predicted latency (ms)")
            ax.set_title(f"Predicted vs measured, {len(results)} held-out networks, {self.threads} thread(s)")
            ax.legend(fontsize=7, loc="upper left")
            fig.tight_layout()

        return [Figure(f"Latency predictor: predicted vs measured ({self.threads} thread(s))", draw,
                       key=f"scatter_{self.threads}t", size=(6.5, 5.5))]

    def conventions(self) -> list[str]:
        return ["measured: median latency of each timed round (shufflenet.measure, eager fp32, batch 1), "
                "the quietest of the interleaved rounds kept",
                "FLOPs = multiply-adds; MAC = elements read + written (the paper's Sec. 2 counting)"]


def evaluate(networks: Sequence[Network], calibration: Calibration, *, rounds: int = 5,
             min_run_time: float = 0.25, progress: Callable[[str], None] | None = None) -> PredictorEvaluation:
    """Measure and predict ``networks`` at the calibration's thread count (see the module docstring)."""
    from shufflenet.cost import count_cost
    from shufflenet.measure import measure

    threads = calibration.threads
    built = [(n, n.build()) for n in networks]
    results = []
    for net, model in built:
        cost = count_cost(model, net.input_size)
        pred = predict_latency(model, net.input_size, calibration, name=net.name)
        results.append(NetworkResult(net.name, net.family, tuple(net.input_size), cost.flops, cost.mac, [],
                                     {"predictor": pred.seconds}))
    order = np.random.default_rng(0)
    for r in range(rounds):
        for i in order.permutation(len(built)):
            net, model = built[i]
            m = measure(model, net.input_size, threads=threads, min_run_time=min_run_time, warmup=3)
            results[i].rounds_s.append(m.median_s)
            if progress:
                progress(f"round {r + 1}/{rounds}: {net.name} {m.median_s * 1e3:.2f} ms")
    measured = np.array([r.measured_s for r in results])
    flops = np.array([float(r.flops) for r in results])
    mac = np.array([float(r.mac) for r in results])
    ones = np.ones(len(results))
    for method, design in (("flops", np.column_stack([ones, flops])),
                           ("flops_mac", np.column_stack([ones, flops, mac]))):
        for r, p in zip(results, leave_one_out_fit(design, measured), strict=True):
            r.predicted_s[method] = float(max(p, 1e-6))
    return PredictorEvaluation(threads, calibration.mode, calibration.seconds, len(calibration.samples), results,
                               rounds)
