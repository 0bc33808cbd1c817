"""The latency predictor's evaluation on held-out networks and its calibration blocks: the scores (Spearman,
leave-one-out FLOPs fits, within-10% / RMSPE), the evaluation's result contract on hand-made results, one
tiny end-to-end ``evaluate``, the held-out set and the random ShuffleNet-V2-like variants, the random
calibration blocks (one kernel per step), the footprint rings, block-context samples, and the report's
"latency" section (its verdict rule, and one run on a tiny plan with two tiny networks).

Everything is deterministic and small: no real calibration beyond the tiny plan (a few seconds), and no
torchvision network is built.
"""

from __future__ import annotations

import importlib
import json
import math
from collections import Counter

import numpy as np
import pytest
import torch
from torch import nn

from shufflenet.audit.latency import Calibration, default_path, predict_latency, trace_kernels
from shufflenet.audit.latency import blocks as B
from shufflenet.audit.latency.benches import RING, Sample
from shufflenet.audit.latency.calibration import MIN_BLOCK_SAMPLES
from shufflenet.audit.latency.evaluate import (
    METHOD_LABELS,
    METHODS,
    TARGET_SPEARMAN,
    TARGET_WITHIN,
    Network,
    NetworkResult,
    PredictorEvaluation,
    evaluate,
    held_out_networks,
    leave_one_out_fit,
    scores,
    spearman,
)
from shufflenet.audit.latency.kernels import conv_features
from shufflenet.audit.latency.variants import VariantUnit, random_variant
from shufflenet.cost import count_cost
from shufflenet.environment import capture_environment

BENCHES = importlib.import_module("shufflenet.audit.latency.benches")
EVALUATE = importlib.import_module("shufflenet.audit.latency.evaluate")
TINY = {"conv": 4, "other": 1, "networks": 3, "rounds": 2, "passes": 1, "block_s": 0.0002, "blocks": 2}
TINY_PLAN = {"quick": dict(TINY), "full": dict(TINY)}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MS = 1e-3


# -- the scores ------------------------------------------------------------------------------------------


def test_spearman_perfect_reversed_ties_and_constant() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 45]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ties get their average rank: [1, 2, 2, 3] -> ranks [0, 1.5, 1.5, 3]; against [0, 1, 2, 3]:
    # cov 4.5, variances 4.5 and 5 -> 4.5 / sqrt(22.5) = sqrt(0.9)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(math.sqrt(0.9), rel=1e-12)
    assert spearman([1, 2, 3, 4], [1, 2, 2, 3]) == pytest.approx(math.sqrt(0.9), rel=1e-12)
    # only the order counts, not the values
    assert spearman([1, 2, 3, 100], [0.1, 0.2, 0.3, 0.4]) == pytest.approx(1.0)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))  # no order to correlate


def test_scores_on_a_hand_made_example() -> None:
    predicted, measured = [1.05, 0.8, 2.0, 4.2], [1.0, 1.0, 2.0, 4.0]  # errors +5%, -20%, 0, +5%
    s = scores(predicted, measured)
    assert set(s) == {"within_10_pct", "rmspe_pct", "spearman", "max_error_pct"}
    assert s["within_10_pct"] == pytest.approx(75.0)
    assert s["rmspe_pct"] == pytest.approx(100 * math.sqrt((0.05 ** 2 + 0.2 ** 2 + 0 + 0.05 ** 2) / 4), rel=1e-9)
    assert s["rmspe_pct"] == pytest.approx(10.6066, rel=1e-4)
    assert s["max_error_pct"] == pytest.approx(20.0)
    # measured ranks [0.5, 0.5, 2, 3] (a tie), predicted [1, 0, 2, 3]: 4.5 / sqrt(5 * 4.5)
    assert s["spearman"] == pytest.approx(math.sqrt(0.9), rel=1e-12)
    exact = scores([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert exact == {"within_10_pct": 100.0, "rmspe_pct": 0.0, "spearman": pytest.approx(1.0),
                     "max_error_pct": 0.0}


def test_leave_one_out_fit_is_exact_on_a_linear_law_and_never_uses_the_point_itself() -> None:
    x = np.array([1e6, 3e6, 7e6, 2e7, 5e7, 1.1e8])
    law = 2e-4 + 3e-11 * x
    design = np.column_stack([np.ones(len(x)), x])
    np.testing.assert_allclose(leave_one_out_fit(design, law), law, rtol=1e-9)
    # with two terms (FLOPs + MAC) too
    mac = np.array([5e5, 1e6, 4e6, 3e6, 2e7, 2e7])
    law2 = 1e-4 + 2e-11 * x + 5e-10 * mac
    np.testing.assert_allclose(leave_one_out_fit(np.column_stack([np.ones(6), x, mac]), law2), law2, rtol=1e-9)
    # a point off the law: it is predicted from the others only (exactly the law), and it spoils the others
    off = law.copy()
    off[3] *= 2.0
    pred = leave_one_out_fit(design, off)
    assert pred[3] == pytest.approx(law[3], rel=1e-9)
    others = np.arange(len(x)) != 3
    assert np.all(np.abs(pred[others] / law[others] - 1) > 1e-3)


# -- the evaluation's results, built by hand (no timing) -------------------------------------------------


def test_network_result_measured_halves_and_error() -> None:
    r = NetworkResult("n", "variant", (1, 3, 32, 32), 10, 20, [5.0, 5.8, 5.9, 5.7, 5.2],
                      {"predictor": 5.5, "flops": 4.0})
    assert r.measured_s == 5.0
    assert r.halves_s == (5.0, 5.7)  # rounds 1, 3, 5 (indices 0, 2, 4) and rounds 2, 4 (indices 1, 3)
    assert r.error("predictor") == pytest.approx(0.1)
    assert r.error("flops") == pytest.approx(-0.2)
    assert NetworkResult("one", "x", (1,), 0, 0, [3.0]).halves_s == (3.0, 3.0)  # one round: both halves
    d = r.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["measured_s"] == 5.0
    assert d["error_pct"] == {"predictor": pytest.approx(10.0), "flops": pytest.approx(-20.0)}


# measured (ms) 1..5; each network's rounds, and its predictions as ratios of the measured time
ROUNDS = {"n1": [1.00, 1.02, 1.01, 1.03], "n2": [2.04, 2.00, 2.02, 2.06], "n3": [3.0, 3.0, 3.0, 3.0],
          "n4": [4.1, 4.0, 4.3, 4.2], "n5": [5.0, 5.8, 5.9, 5.7]}
RATIOS = {"predictor": [1.05, 0.97, 1.02, 0.92, 1.08], "flops": [1.5, 0.6, 1.0, 1.3, 0.7],
          "flops_mac": [1.12, 1.0, 0.95, 1.0, 1.0]}


def _hand_evaluation(rounds: int = 4, order: tuple[int, ...] = (2, 4, 0, 3, 1)) -> PredictorEvaluation:
    results = []
    for i in order:
        name = f"n{i + 1}"
        measured = min(ROUNDS[name]) * MS
        results.append(NetworkResult(name, "variant" if i % 2 else "package", (1, 3, 32, 32), (i + 1) * 10**6,
                                     (i + 1) * 2 * 10**6, [t * MS for t in ROUNDS[name][:rounds]],
                                     {m: RATIOS[m][i] * measured for m in METHODS}))
    return PredictorEvaluation(1, "quick", 12.3, 456, results, rounds)


def _rmspe(errors: list[float]) -> float:
    return 100 * math.sqrt(sum(e * e for e in errors) / len(errors))


def test_evaluation_scores_the_three_methods() -> None:
    ev = _hand_evaluation()
    s = ev.scores()
    assert list(s) == list(METHODS)
    p, a, b = s["predictor"], s["flops"], s["flops_mac"]
    assert p["within_10_pct"] == 100.0 and p["spearman"] == pytest.approx(1.0)
    assert p["rmspe_pct"] == pytest.approx(_rmspe([0.05, -0.03, 0.02, -0.08, 0.08]), rel=1e-9)
    assert p["max_error_pct"] == pytest.approx(8.0)
    # (a): predicted [1.5, 1.2, 3, 5.2, 3.5] ms: rank differences +-1 four times -> 1 - 6 * 4 / (5 * 24)
    assert a["within_10_pct"] == 20.0 and a["spearman"] == pytest.approx(0.8)
    assert a["rmspe_pct"] == pytest.approx(_rmspe([0.5, -0.4, 0, 0.3, -0.3]), rel=1e-9)
    assert a["max_error_pct"] == pytest.approx(50.0)
    assert b["within_10_pct"] == 80.0 and b["spearman"] == pytest.approx(1.0)
    assert b["max_error_pct"] == pytest.approx(12.0)
    # the order the results are listed in changes nothing
    listed = _hand_evaluation(order=(0, 1, 2, 3, 4)).scores()
    assert all(listed[m] == pytest.approx(s[m], rel=1e-12) for m in METHODS)


def test_repeatability_scores_odd_rounds_against_even_rounds() -> None:
    rep = _hand_evaluation().repeatability()
    # halves (ms): (1, 1.02), (2.02, 2), (3, 3), (4.1, 4), (5, 5.7)
    errors = [1 / 1.02 - 1, 2.02 / 2 - 1, 0.0, 4.1 / 4 - 1, 5 / 5.7 - 1]
    assert rep["within_10_pct"] == 80.0  # n5's odd rounds are 12% faster than its even ones
    assert rep["spearman"] == pytest.approx(1.0)
    assert rep["rmspe_pct"] == pytest.approx(_rmspe(errors), rel=1e-9)
    assert rep["max_error_pct"] == pytest.approx(100 * (1 - 5 / 5.7), rel=1e-9)


def _ratio_evaluation(ratios: list[float], measured_ms: list[float] | None = None) -> PredictorEvaluation:
    measured_ms = measured_ms or [float(i + 1) for i in range(len(ratios))]
    results = [NetworkResult(f"n{i}", "variant", (1, 3, 32, 32), 1, 1, [m * MS, m * MS],
                             {"predictor": r * m * MS, "flops": m * MS, "flops_mac": m * MS})
               for i, (r, m) in enumerate(zip(ratios, measured_ms, strict=True))]
    return PredictorEvaluation(1, "quick", 1.0, 10, results, 2)


def test_meets_target_at_its_thresholds() -> None:
    assert (TARGET_WITHIN, TARGET_SPEARMAN) == (90.0, 0.95)
    at = _ratio_evaluation([1.0] * 9 + [1.2])  # 9 of 10 within 10% (exactly the target), order kept
    assert at.scores()["predictor"]["within_10_pct"] == 90.0 and at.meets_target()
    below = _ratio_evaluation([1.0] * 8 + [1.2, 1.2])
    assert below.scores()["predictor"]["within_10_pct"] == 80.0 and not below.meets_target()
    # every network within 10%, but on closely spaced times the errors scramble the order
    close = _ratio_evaluation([1.09, 0.92] * 5, [10.0 + i for i in range(10)])
    s = close.scores()["predictor"]
    assert s["within_10_pct"] == 100.0 and s["spearman"] < TARGET_SPEARMAN and not close.meets_target()


def test_finding_tables_figure_and_dict() -> None:
    ev = _hand_evaluation()
    finding = ev.finding()
    for text in ("5 held-out networks, 1 thread(s)", "puts 100% within +/-10% (Spearman 1.000, RMSPE 5.8%)",
                 "FLOPs-only 20% (0.800)", "FLOPs + MAC 80% (1.000)"):
        assert text in finding, finding
    scores_table, per_net = ev.tables()
    assert (scores_table.key, per_net.key) == ("latency_scores", "latency_networks")
    assert [r["method"] for r in scores_table.rows] == [*(METHOD_LABELS[m] for m in METHODS),
                                                        "measurement vs itself (odd vs even rounds)"]
    assert scores_table.rows[3]["within_10_pct"] == 80.0
    assert scores_table.notes[0] == "target: >= 90% within +/-10% and Spearman >= 0.95 (met)"
    assert "456 kernels, 12 s" in scores_table.title
    assert [r["network"] for r in per_net.rows] == ["n1", "n2", "n3", "n4", "n5"]  # by measured time
    assert [r["measured_ms"] for r in per_net.rows] == pytest.approx([1.0, 2.0, 3.0, 4.0, 5.0])
    n5 = per_net.rows[-1]
    assert n5["spread_pct"] == pytest.approx(18.0) and n5["error_pct"] == pytest.approx(8.0)
    assert n5["flops_error_pct"] == pytest.approx(-30.0) and n5["mflops"] == 5.0
    assert n5["predicted_ms"] == pytest.approx(5.4)
    # one round: no repeatability row, none in the dict
    one = _hand_evaluation(rounds=1)
    assert len(one.tables()[0].rows) == 3 and one.to_dict()["repeatability"] is None
    (fig,) = ev.figures()
    assert fig.key == "scatter_1t" and fig.png().startswith(PNG_MAGIC)
    d = ev.to_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert (d["networks"], d["rounds"], d["meets_target"], d["finding"]) == (5, 4, True, finding)
    assert d["target"] == {"within_10_pct": 90.0, "spearman": 0.95}
    assert d["repeatability"]["within_10_pct"] == 80.0 and len(d["results"]) == 5
    assert "(NOT met)" in _ratio_evaluation([1.0] * 8 + [1.2, 1.2]).tables()[0].notes[0]


# -- evaluate() end to end on tiny networks and a synthetic calibration ----------------------------------

LAWS = {
    "conv": lambda f: 2e-6 + 1e-10 * f["macs"] + 2e-10 * f["out_numel"],
    "batch_norm": lambda f: 5e-7 + 3e-10 * f["in_numel"],
    "relu_": lambda f: 3e-7 + 1e-10 * f["in_numel"],
    "adaptive_avg_pool2d": lambda f: 8e-7 + 1.5e-10 * f["in_numel"],
    "linear": lambda f: 1e-6 + 2e-10 * f["macs"],
    "copy": lambda f: 5e-7 + 4e-10 * f["in_numel"],
}


def _law_features(kind: str, rng: np.random.Generator) -> dict[str, float]:
    c, h = int(2 ** rng.uniform(3, 7)), int(rng.choice([4, 8, 16, 32]))
    numel = c * h * h
    if kind == "conv":
        f = conv_features(1, c, int(2 ** rng.uniform(3, 7)), h, h, 3, 1, 1, 1, bool(rng.random() < 0.5))
    elif kind == "linear":
        cin, cout = int(2 ** rng.uniform(3, 8)), int(2 ** rng.uniform(3, 8))
        f = {"rows": 1, "in": cin, "out": cout, "macs": cin * cout, "w_numel": cin * cout, "in_numel": cin,
             "out_numel": cout}
    elif kind == "batch_norm":
        f = {"c": c, "hw": h * h, "in_numel": numel, "out_numel": numel}
    elif kind == "adaptive_avg_pool2d":
        f = {"c": c, "h": h, "in_numel": numel, "out_numel": c, "k": 0}
    else:
        f = {"in_numel": numel, "out_numel": numel}
    return {k: float(v) for k, v in f.items()}


def _law_calibration(per_kind: int = 20) -> Calibration:
    rng = np.random.default_rng(3)
    samples = [Sample(kind, "conv2d" if kind == "conv" else kind, f, law(f), 0.01)
               for kind, law in LAWS.items() for f in (_law_features(kind, rng) for _ in range(per_kind))]
    samples.append(Sample("view", "flatten", {}, 1e-6, 0.01))
    return Calibration(1, "quick", samples, {"Conv2d": 2e-6}, 1.5e-6, capture_environment(threads=1),
                       created="2024-01-01T00:00:00", seconds=7.0)


def _tiny_net(width: int, side: int) -> Network:
    def build() -> nn.Module:
        return nn.Sequential(nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                             nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(width, 10)).eval()

    return Network(f"tiny-w{width}-{side}", "package", build, (1, 3, side, side))


def test_evaluate_end_to_end_on_tiny_networks(one_thread) -> None:
    cal = _law_calibration()
    nets = [_tiny_net(8, 16), _tiny_net(16, 32), _tiny_net(32, 24)]
    messages: list[str] = []
    ev = evaluate(nets, cal, rounds=2, min_run_time=0.005, progress=messages.append)
    assert isinstance(ev, PredictorEvaluation)
    assert (ev.threads, ev.calibration_mode, ev.calibration_s, ev.calibration_kernels, ev.rounds) == (
        1, "quick", 7.0, len(cal.samples), 2)
    assert [r.name for r in ev.results] == [n.name for n in nets]
    assert len(messages) == 6 and sum(m.startswith("round 2/2: ") for m in messages) == 3
    for net, r in zip(nets, ev.results, strict=True):
        model = net.build()
        cost = count_cost(model, net.input_size)
        assert (r.flops, r.mac, r.input_size, r.family) == (cost.flops, cost.mac, net.input_size, "package")
        assert len(r.rounds_s) == 2 and all(t > 0 for t in r.rounds_s)
        assert set(r.predicted_s) == set(METHODS) and all(v > 0 for v in r.predicted_s.values())
        assert r.predicted_s["predictor"] == pytest.approx(
            predict_latency(model, net.input_size, cal, name=net.name).seconds, rel=1e-12)
    # (a) and (b) are the leave-one-out fits of the measured times
    measured = np.array([r.measured_s for r in ev.results])
    flops = np.array([float(r.flops) for r in ev.results])
    mac = np.array([float(r.mac) for r in ev.results])
    loo = leave_one_out_fit(np.column_stack([np.ones(3), flops]), measured)
    assert [r.predicted_s["flops"] for r in ev.results] == pytest.approx(np.maximum(loo, 1e-6), rel=1e-12)
    loo2 = leave_one_out_fit(np.column_stack([np.ones(3), flops, mac]), measured)
    assert [r.predicted_s["flops_mac"] for r in ev.results] == pytest.approx(np.maximum(loo2, 1e-6), rel=1e-12)
    assert set(ev.scores()) == set(METHODS) and len(ev.tables()[0].rows) == 4


# -- the held-out networks and the random variants -------------------------------------------------------


def test_held_out_networks_full_and_quick() -> None:
    full, quick = held_out_networks(), held_out_networks(quick=True)
    assert len(full) == 51 and len(quick) == 12
    assert Counter(n.family for n in full) == {"torchvision": 18, "package": 13, "variant": 20}
    assert Counter(n.family for n in quick) == {"torchvision": 5, "package": 3, "variant": 4}
    for nets in (full, quick):
        assert len({n.name for n in nets}) == len(nets)
    assert {n.name for n in quick} <= {n.name for n in full}
    assert all(n.name.startswith("torchvision:") and n.input_size == (1, 3, 224, 224)
               for n in full if n.family == "torchvision")
    package = [n.name for n in full if n.family == "package"]
    assert "shufflenet_v2_x1_0 se=True" in package and "shufflenet_v2_x1_0 residual=True" in package
    variants = [n for n in full if n.family == "variant"]
    assert [n.name.split("-")[1] for n in variants] == [str(s) for s in range(1000, 1020)]
    assert all(n.name.endswith(f"-{n.input_size[-1]}") and n.input_size[2] in (160, 192, 224) for n in variants)
    assert all(callable(n.build) for n in full)


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_variants_are_reproducible_per_seed() -> None:
    (a, b) = [n for n in held_out_networks(quick=True) if n.family == "variant"][:2]
    m1, m2 = a.build(), a.build()
    assert _params(m1) == _params(m2)
    assert all(torch.equal(x, y) for x, y in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True))
    assert random_variant(1000) == random_variant(1000)
    assert a.name != b.name and _params(m1) != _params(b.build())
    assert len({random_variant(s).name for s in range(1000, 1020)}) == 20


@pytest.mark.parametrize("seed", [1000, 1001, 1002])  # k5 g1 SE, k3 g4 SE, k7 g2
def test_random_variant_structure_matches_its_name(seed) -> None:
    v = random_variant(seed)
    k, g = v.params["kernel"], v.params["groups"]
    assert f"-k{k}g{g}{'se' if v.params['se'] else ''}-" in v.name
    assert v.name.endswith(f"-{v.input_size[-1]}") and v.input_size[:2] == (1, 3)
    model = v.build()
    units = [m for m in model.modules() if isinstance(m, VariantUnit)]
    assert len(units) == sum(v.params["repeats"])
    dw = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups == m.in_channels > 1]
    assert len(dw) == len(units) + 3  # each unit's, and the projection branch of each stage's first unit
    assert all(m.kernel_size == (k, k) for m in dw)
    for u in units:
        (pw2,) = [m for m in u.pw2.modules() if isinstance(m, nn.Conv2d)]
        (pw1,) = [m for m in u.pw1.modules() if isinstance(m, nn.Conv2d)]
        assert pw2.groups == g and pw2.kernel_size == (1, 1)
        assert pw1.groups == (g if pw1.in_channels % g == 0 else 1)
    assert v.params["se"] == any(type(m).__name__ == "SqueezeExcite" for m in model.modules())


def test_a_variant_runs_at_its_size_and_traces_its_kernel(one_thread) -> None:
    v = random_variant(1002)  # k7, two groups, 160 px
    model = v.build()
    with torch.inference_mode():
        assert model(torch.randn(v.input_size)).shape == (1, 1000)
    trace = trace_kernels(model, v.input_size)
    kinds = Counter(k.kind for k in trace.kernels)
    dw = [k for k in trace.kernels if k.kind == "dwconv"]
    assert len(dw) == sum(v.params["repeats"]) + 3 and {k.features["k"] for k in dw} == {7.0}
    grouped = [m for m in model.modules() if isinstance(m, nn.Conv2d) and 1 < m.groups < m.in_channels]
    assert kinds["gconv"] == len(grouped)
    assert kinds["gconv"] >= 2 * sum(v.params["repeats"]) - 3
    # torchvision layout: a copy per channel shuffle (after every unit, and after each grouped first 1x1)
    assert kinds["copy"] == 2 * sum(v.params["repeats"])


# -- the calibration blocks ------------------------------------------------------------------------------


def _step_kernels(program: B.Program) -> list:
    """The kernel of each step, recorded under inference mode as run_blocks records them (outside it the
    dispatch mode sees conv2d and batch_norm already decomposed into convolution / native_batch_norm)."""
    with torch.inference_mode():
        return BENCHES._step_kernels(program)


BLOCKS = {
    "v2 basic": (lambda: B.shufflenet_v2_unit(32, 8, 3, 1, False, False, False), 14),
    "v2 down": (lambda: B.shufflenet_v2_unit(32, 8, 5, 1, True, False, False), 18),
    "v2 official": (lambda: B.shufflenet_v2_unit(32, 8, 3, 1, False, True, False), 14),
    "v2 grouped se": (lambda: B.shufflenet_v2_unit(32, 8, 7, 2, False, False, True), 24),
    "invres": (lambda: B.inverted_residual(16, 8, 4, 3, 1, "hardswish_", "hardsigmoid", 16), 15),
    "invres e1 s2": (lambda: B.inverted_residual(16, 8, 1, 5, 2, "relu_", None, 24), 5),
    "resnet basic s2": (lambda: B.resnet_block(16, 8, False, 1, 2, 16), 9),
    "resnet bottleneck grouped": (lambda: B.resnet_block(16, 8, True, 4, 1, 32), 10),
    "v1": (lambda: B.shufflenet_v1_unit(48, 8, 3, False), 13),
    "v1 down": (lambda: B.shufflenet_v1_unit(48, 8, 3, True), 14),
    "dense": (lambda: B.dense_layers(16, 8, 12, 2, True), 19),
    "stem": (lambda: B.stem(32, 16, 3, True), 4),
    "head": (lambda: B.head(32, 4, 64, 10, True), 6),
    "head mean": (lambda: B.head(32, 4, 64, 10, False), 5),
    "fire": (lambda: B.fire(32, 8, 16, 32), 7),
    "inception": (lambda: B.inception(32, 8, (16, 16, 16, 16)), 20),
}
# what each block is made of: (kind, op) -> calls
BLOCK_KERNELS = {
    "v2 basic": {("view", "chunk"): 1, ("conv1x1", "conv2d"): 2, ("batch_norm", "batch_norm"): 3,
                 ("relu_", "relu_"): 2, ("dwconv", "conv2d"): 1, ("cat", "cat"): 1, ("view", "view"): 2,
                 ("view", "transpose"): 1, ("copy", "contiguous"): 1},
    "v2 down": {("dwconv", "conv2d"): 2, ("conv1x1", "conv2d"): 3, ("batch_norm", "batch_norm"): 5,
                ("relu_", "relu_"): 3, ("cat", "cat"): 1, ("view", "view"): 2, ("view", "transpose"): 1,
                ("copy", "contiguous"): 1},
    "v2 official": {("view", "reshape"): 2, ("view", "permute"): 1, ("view", "select"): 2,
                    ("conv1x1", "conv2d"): 2, ("batch_norm", "batch_norm"): 3, ("relu_", "relu_"): 2,
                    ("dwconv", "conv2d"): 1, ("cat", "cat"): 1},
    "v2 grouped se": {("view", "chunk"): 1, ("gconv", "conv2d"): 2, ("batch_norm", "batch_norm"): 3,
                      ("relu_", "relu_"): 2, ("view", "view"): 4, ("view", "transpose"): 2,
                      ("copy", "contiguous"): 2,
                      ("dwconv", "conv2d"): 1, ("adaptive_avg_pool2d", "adaptive_avg_pool2d"): 1,
                      ("conv1x1", "conv2d"): 2, ("relu", "relu"): 1, ("sigmoid", "sigmoid"): 1,
                      ("mul_bcast", "mul"): 1, ("cat", "cat"): 1},
    "invres": {("conv1x1", "conv2d"): 4, ("batch_norm", "batch_norm"): 3, ("hardswish_", "hardswish_"): 2,
               ("dwconv", "conv2d"): 1, ("adaptive_avg_pool2d", "adaptive_avg_pool2d"): 1, ("relu", "relu"): 1,
               ("hardsigmoid", "hardsigmoid"): 1, ("mul_bcast", "mul"): 1, ("add", "add"): 1},
    "invres e1 s2": {("dwconv", "conv2d"): 1, ("batch_norm", "batch_norm"): 2, ("relu_", "relu_"): 1,
                     ("conv1x1", "conv2d"): 1},
    "resnet basic s2": {("conv", "conv2d"): 2, ("batch_norm", "batch_norm"): 3, ("relu_", "relu_"): 2,
                        ("conv1x1", "conv2d"): 1, ("add_", "add_"): 1},
    "resnet bottleneck grouped": {("conv1x1", "conv2d"): 2, ("gconv", "conv2d"): 1,
                                  ("batch_norm", "batch_norm"): 3, ("relu_", "relu_"): 3, ("add_", "add_"): 1},
    "v1": {("gconv", "conv2d"): 2, ("batch_norm", "batch_norm"): 3, ("relu_", "relu_"): 2, ("view", "view"): 2,
           ("view", "transpose"): 1, ("copy", "contiguous"): 1, ("dwconv", "conv2d"): 1, ("add", "add"): 1},
    "v1 down": {("gconv", "conv2d"): 2, ("batch_norm", "batch_norm"): 3, ("relu_", "relu_"): 2,
                ("view", "view"): 2, ("view", "transpose"): 1, ("copy", "contiguous"): 1, ("dwconv", "conv2d"): 1,
                ("avg_pool2d", "avg_pool2d"): 1, ("cat", "cat"): 1},
    "dense": {("cat", "cat"): 3, ("batch_norm", "batch_norm"): 5, ("relu_", "relu_"): 5, ("conv1x1", "conv2d"): 3,
              ("conv", "conv2d"): 2, ("avg_pool2d", "avg_pool2d"): 1},
    "stem": {("conv", "conv2d"): 1, ("batch_norm", "batch_norm"): 1, ("relu_", "relu_"): 1,
             ("max_pool2d", "max_pool2d"): 1},
    "head": {("conv1x1", "conv2d"): 1, ("batch_norm", "batch_norm"): 1, ("relu_", "relu_"): 1,
             ("adaptive_avg_pool2d", "adaptive_avg_pool2d"): 1, ("view", "flatten"): 1, ("linear", "linear"): 1},
    "head mean": {("conv1x1", "conv2d"): 1, ("batch_norm", "batch_norm"): 1, ("relu_", "relu_"): 1,
                  ("mean", "mean"): 1, ("linear", "linear"): 1},
    "fire": {("conv1x1", "conv2d"): 2, ("conv", "conv2d"): 1, ("relu_", "relu_"): 3, ("cat", "cat"): 1},
    "inception": {("conv1x1", "conv2d"): 4, ("conv", "conv2d"): 2, ("batch_norm", "batch_norm"): 6,
                  ("relu_", "relu_"): 6, ("max_pool2d", "max_pool2d"): 1, ("cat", "cat"): 1},
}


@pytest.mark.parametrize("name", list(BLOCKS))
def test_every_block_step_is_exactly_one_kernel(name) -> None:
    build, steps = BLOCKS[name]
    program = build()
    kernels = _step_kernels(program)
    assert len(program.steps) == len(kernels) == steps
    assert None not in kernels  # every step calls exactly one op: each timed step is one calibrated kernel
    assert dict(Counter((k[0], k[1]) for k in kernels)) == BLOCK_KERNELS[name]
    assert sum(BLOCK_KERNELS[name].values()) == steps
    # the data flows: running the block twice from fresh inputs gives the same kernels
    assert _step_kernels(program) == kernels


def test_official_v2_unit_convolves_a_strided_select_and_copies_nothing() -> None:
    program = B.shufflenet_v2_unit(32, 8, 3, 1, False, True, False)
    kernels = _step_kernels(program)
    assert not [k for k in kernels if k[0] == "copy"]
    first_conv = next(i for i, k in enumerate(kernels) if k[1] == "conv2d")
    assert [k[1] for k in kernels[:first_conv]] == ["reshape", "permute", "reshape", "select", "select"]
    with torch.inference_mode():  # as the blocks run (their inputs are inference tensors once recorded)
        state = program.start()
        for step in program.steps[:first_conv]:
            step(state)
    assert state["b"].shape == (1, 16, 8, 8) and not state["b"].is_contiguous()
    assert kernels[first_conv][0] == "conv1x1" and kernels[first_conv][2]["cin"] == 16.0
    torchvision = _step_kernels(B.shufflenet_v2_unit(32, 8, 3, 1, False, False, False))
    assert [k for k in torchvision if k[0] == "copy"][0][2]["in_numel"] == 32 * 8 * 8  # the output's shuffle


def test_random_blocks_cover_many_block_types() -> None:
    s = BENCHES._Shapes(7)
    names = [B.random_block(s).name for _ in range(30)]
    prefixes = Counter(n.split()[0] for n in names)
    assert len(prefixes) >= 6, prefixes
    assert set(prefixes) <= {"v2unit", "invres", "resnet", "v1unit", "dense", "stem", "head", "fire", "inception"}
    again = BENCHES._Shapes(7)
    assert [B.random_block(again).name for _ in range(30)] == names  # reproducible from the seed


# -- the rings -------------------------------------------------------------------------------------------


def _passes(rings: list[list[int]], n: int) -> list[list[list[int]]]:
    out, current, filled = [], [], 0
    for ring in rings:
        current.append(ring)
        filled += len(ring)
        if filled == n:
            out.append(current)
            current, filled = [], 0
    assert not current
    return out


def test_rings_cover_every_bench_once_per_pass_among_similar_footprints() -> None:
    items = BENCHES.benches("quick", 0)
    n = len(items)
    rings = BENCHES._rings(items, 3, 0)
    passes = _passes(rings, n)
    assert len(passes) == 3
    level = [math.log2(1.0 + BENCHES.footprint(it[2])) for it in items]
    jitter = BENCHES.JITTER
    spans = []
    for p in passes:
        assert sorted(i for ring in p for i in ring) == list(range(n))  # each kernel once per pass
        assert all(0 < len(ring) <= RING for ring in p)
        assert all(len(ring) == RING for ring in p[1:-1])
        # rings are consecutive runs of the jittered footprint order: a kernel in an earlier ring is never
        # more than 2 * JITTER doublings larger than one in a later ring
        earlier_max = -math.inf
        for ring in p:
            lv = [level[i] for i in ring]
            assert earlier_max - min(lv) <= 2 * jitter
            earlier_max = max(earlier_max, *lv)
            spans.append(max(lv) - min(lv))
    assert float(np.median(spans)) < 2 * jitter < (max(level) - min(level)) / 10
    assert passes[0] != passes[1]  # each pass reshuffles
    assert BENCHES._rings(items, 3, 0) == rings and BENCHES._rings(items, 3, 1) != rings
    # the jitter does reorder: rings are not a plain sort by footprint
    plain = sorted(range(n), key=lambda i: level[i])
    assert [i for ring in passes[0] for i in ring] != plain


# -- kernels timed in blocks, and which samples a kind's model is fitted on ------------------------------


def test_run_blocks_on_the_tiny_plan(monkeypatch, one_thread) -> None:
    monkeypatch.setattr(BENCHES, "_PLAN", TINY_PLAN)
    programs = BENCHES.block_programs("quick", 0)
    assert len(programs) == TINY["networks"]
    expected = [k for p in programs for k in _step_kernels(p)]
    ticks: list[None] = []
    samples = BENCHES.run_blocks(programs, 1, "quick", 0, progress=lambda: ticks.append(None))
    assert len(ticks) == TINY["passes"] * math.ceil(len(programs) / BENCHES.GROUP)
    assert len(samples) == sum(len(p.steps) for p in programs) == len([k for k in expected if k is not None])
    assert all(s.context == "block" and s.seconds > 0 and s.spread >= 0 for s in samples)
    assert [(s.kind, s.op, s.features) for s in samples] == [k for k in expected if k is not None]
    assert Counter(s.kind for s in samples) == Counter(k[0] for k in expected if k is not None)


def _sample(kind: str, t: float, context: str, op: str | None = None) -> Sample:
    numel = 100.0 * t * 1e6
    return Sample(kind, op or kind, {"in_numel": numel, "out_numel": numel, "inputs": 2.0}, t, 0.01, context)


def test_by_kind_prefers_block_samples_when_a_kind_has_enough() -> None:
    n = MIN_BLOCK_SAMPLES
    samples = ([_sample("relu_", 1e-6 * (i + 1), "block") for i in range(n)]
               + [_sample("relu_", 9e-6, "ring") for _ in range(5)]
               + [_sample("cat", 2e-6 * (i + 1), "block") for i in range(n - 1)]
               + [_sample("cat", 7e-6 + 1e-7 * i, "ring") for i in range(5)]
               + [_sample("copy", 3e-6 * (i + 1), "block") for i in range(4)]
               + [_sample("view", 1e-6, "block", "view") for _ in range(3)]
               + [_sample("view", 5e-6, "ring", "view")]
               + [_sample("view", 2e-6, "block", "reshape") for _ in range(2)]
               + [_sample("view", 4e-6, "ring", "reshape")])
    cal = Calibration(1, "quick", samples, {}, 1e-6, {})
    groups = cal.by_kind()
    assert len(groups["relu_"]) == n and all(s.context == "block" for s in groups["relu_"])
    assert len(groups["cat"]) == 5 and all(s.context == "ring" for s in groups["cat"])  # one block sample short
    assert len(groups["copy"]) == 4 and all(s.context == "block" for s in groups["copy"])  # only block ones
    assert set(cal.models) == {"relu_", "cat", "copy"}
    # views: an op's block times when it has at least 3 of them, else its ring times
    assert cal.view_s["view"] == 1e-6 and cal.view_s["reshape"] == 4e-6
    assert cal.view_s["*"] == pytest.approx(2.5e-6)


# -- the report section ----------------------------------------------------------------------------------


def _score(within: float, rho: float) -> dict[str, float]:
    return {"within_10_pct": within, "spearman": rho, "rmspe_pct": 10.0, "max_error_pct": 20.0}


def test_latency_verdict_rule() -> None:
    from shufflenet.report.sections.latency import verdict

    def v(p: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> str:
        return verdict({"predictor": _score(*p), "flops": _score(*a), "flops_mac": _score(*b)})

    assert v((90, 0.98), (20, 0.80), (40, 0.90)) == "holds"
    assert v((90, 0.85), (20, 0.80), (40, 0.90)) == "partly holds"  # beats both on within 10% only
    assert v((30, 0.95), (20, 0.80), (40, 0.90)) == "partly holds"  # on Spearman only
    assert v((40, 0.90), (20, 0.80), (40, 0.90)) == "does not hold"  # a tie is no win
    assert v((10, 0.50), (20, 0.80), (40, 0.90)) == "does not hold"
    assert v((90, float("nan")), (20, 0.80), (40, 0.90)) == "partly holds"


@pytest.fixture
def tiny_section(monkeypatch, tmp_path):
    """The latency section on the tiny plan, two tiny networks, a short timing and a cache under tmp_path
    (the machine's ceilings faked: nothing else is measured)."""
    from shufflenet.measure import MachineCeilings
    from shufflenet.report.context import ReportContext

    monkeypatch.setenv("SHUFFLENET_CACHE", str(tmp_path))
    monkeypatch.setattr(BENCHES, "_PLAN", TINY_PLAN)
    nets = [_tiny_net(8, 16), _tiny_net(24, 32)]
    asked: list[bool] = []

    def held_out(quick: bool = False) -> list[Network]:
        asked.append(quick)
        return nets

    monkeypatch.setattr(EVALUATE, "held_out_networks", held_out)
    real_evaluate = EVALUATE.evaluate
    monkeypatch.setattr(EVALUATE, "evaluate", lambda networks, cal, *, rounds, min_run_time, progress=None:
                        real_evaluate(networks, cal, rounds=rounds, min_run_time=0.005, progress=progress))
    ceilings = MachineCeilings("cpu", 1, 256, 20.0, 10.0, 1 << 20, 10.0, 0.01, 0.01, "2024-01-01T00:00:00")
    monkeypatch.setattr(ReportContext, "machine", lambda self: ceilings)
    monkeypatch.setattr(ReportContext, "machine_from_cache", lambda self: True)
    return nets, asked


def test_latency_section_runs_and_reuses_its_cached_calibration(tiny_section, tmp_path, one_thread) -> None:
    from shufflenet.report.context import ReportOptions
    from shufflenet.report.runner import run_report

    nets, asked = tiny_section
    options = ReportOptions(mode="quick", threads=1, sections=("latency",))
    report = run_report(options)
    sec = report.section("latency")
    assert sec.status == "ok", (sec.error, sec.traceback)
    assert (sec.order, asked) == (58, [True])
    (claim,) = sec.claims
    assert claim.key == "latency" and claim.verdict in ("holds", "partly holds", "does not hold")
    assert [t.key for t in sec.tables] == ["latency_scores", "latency_networks"]
    measured = {r["name"]: r["measured_s"] for r in sec.data["results"]}
    assert set(measured) == {n.name for n in nets}
    assert [r["network"] for r in sec.tables[1].rows] == sorted(measured, key=measured.get)
    assert len(sec.figures) == 1 and sec.figures[0].png().startswith(PNG_MAGIC)
    assert [t["label"] for t in sec.timings] == [n.name for n in nets]
    assert sec.finding.startswith("The paper (Sec. 1)") and "2 networks held out" in sec.finding
    assert sec.data["networks"] == 2 and sec.data["rounds"] == 4
    path = default_path(1)
    assert path.parent.parent == tmp_path and path.exists()
    (note,) = [n for n in sec.data["notes"] if n.startswith("calibration: ")]
    assert note.startswith("calibration: quick calibration run for this report (") and f"cached at {path}" in note
    assert any(n.startswith("calibration: quick calibration run") for n in sec.tables[0].notes)
    assert "latency" in {r["key"] for r in report.section("glance").data["claims"]}  # summarised there
    first_file = path.read_text()

    again = run_report(options).section("latency")
    assert again.status == "ok", again.error
    (note,) = [n for n in again.data["notes"] if n.startswith("calibration: ")]
    assert note.startswith("calibration: cached quick calibration of ") and str(path) in note
    assert path.read_text() == first_file  # read, not timed again
    assert again.data["calibration_kernels"] == sec.data["calibration_kernels"]
