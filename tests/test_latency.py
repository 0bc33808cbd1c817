"""The latency predictor: the kernel trace, the per-op-type fits, calibrations (their file format and
errors) and ``shufflenet latency calibrate|predict``.

Everything here is fast and deterministic: the fits and predictions are checked on synthetic calibrations
whose kernel times follow known laws, and the one real calibration is timed on a tiny plan (~2 s).
"""

from __future__ import annotations

import importlib
import json
import shutil
from collections import Counter

import numpy as np
import pytest
import torch
from torch import nn

from shufflenet.audit.latency import (
    FORMAT_VERSION,
    Calibration,
    calibrate,
    default_path,
    load_calibration,
    predict_latency,
    predict_trace,
    trace_kernels,
)
from shufflenet.audit.latency.benches import Sample
from shufflenet.audit.latency.fit import fit_kind, leave_one_out_errors, nnls
from shufflenet.audit.latency.kernels import conv_features
from shufflenet.cli.main import main
from shufflenet.environment import capture_environment
from shufflenet.errors import UserInputError
from shufflenet.models import create_model

CALIBRATE = importlib.import_module("shufflenet.audit.latency.benches")
TINY = {"conv": 4, "other": 2, "networks": 0, "rounds": 2, "passes": 1, "block_s": 0.0002, "blocks": 2}
TINY_PLAN = {"quick": dict(TINY), "full": dict(TINY)}
SMALL_INPUT = (1, 3, 64, 64)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str, needle: str) -> None:
    assert err.count("\n") == 1 and err.startswith("shufflenet: error:") and "Traceback" not in err, err
    assert needle in err, err


# -- the kernel trace ------------------------------------------------------------------------------------


def _hooked_forward(model: nn.Module, size: tuple[int, ...]) -> tuple[int, list[tuple[str, nn.Module]]]:
    """(module calls, the (name, module) of each call in order), counted with our own hooks."""
    calls: list[tuple[str, nn.Module]] = []
    handles = [m.register_forward_pre_hook(lambda mod, _inp, name=name: calls.append((name, mod)))
               for name, m in model.named_modules()]
    model.eval()
    with torch.inference_mode():
        model(torch.zeros(size))
    for h in handles:
        h.remove()
    return len(calls), calls


@pytest.fixture(scope="module")
def v2_traces():
    size = (1, 3, 224, 224)
    out = {}
    for layout in ("official", "torchvision"):
        model = create_model("shufflenet_v2_x0_5", layout=layout)
        out[layout] = (model, trace_kernels(model, size), *_hooked_forward(model, size))
    return out


def test_shufflenet_v2_trace_counts_every_kernel_kind(v2_traces) -> None:
    model, trace, module_calls, calls = v2_traces["official"]
    kinds = Counter(k.kind for k in trace.kernels)
    convs = [m for _, m in calls if isinstance(m, nn.Conv2d)]
    expected = {
        "conv1x1": sum(m.kernel_size == (1, 1) and m.groups == 1 for m in convs),
        "dwconv": sum(m.groups == m.in_channels > 1 for m in convs),
        "conv": sum(m.kernel_size != (1, 1) and m.groups == 1 for m in convs),
        "batch_norm": sum(isinstance(m, nn.BatchNorm2d) for _, m in calls),
        "relu_": sum(isinstance(m, nn.ReLU) for _, m in calls),
        "cat": sum(type(m).__name__ == "ShuffleV2Unit" for _, m in calls),
        # each basic unit's shuffle + split: reshape, permute, reshape, then y[0] and y[1]
        "view": 5 * sum(type(m).__name__ == "ShuffleSplit" for _, m in calls),
        "max_pool2d": 1, "mean": 1, "linear": 1,
    }
    assert dict(kinds) == expected
    # and the numbers themselves (Table 5's 0.5x: 3 + 7 + 3 basic units, 16 units in all)
    assert expected == {"conv1x1": 36, "dwconv": 19, "conv": 1, "batch_norm": 56, "relu_": 37, "cat": 16,
                        "view": 65, "max_pool2d": 1, "mean": 1, "linear": 1}
    assert Counter(k.op for k in trace.kernels if k.kind == "view") == {"reshape": 26, "select": 26, "permute": 13}
    assert trace.module_calls == module_calls == 205


def test_every_conv_module_call_is_one_wrapped_kernel_in_execution_order(v2_traces) -> None:
    model, trace, _, calls = v2_traces["official"]
    assert [k.index for k in trace.kernels] == list(range(len(trace.kernels)))
    conv_kernels = [k for k in trace.kernels if k.op == "conv2d"]
    conv_calls = [name for name, m in calls if isinstance(m, nn.Conv2d)]
    assert [k.module for k in conv_kernels] == conv_calls  # the same convs, in the order they ran
    assert all(k.wrapper == "Conv2d" and k.module_type == "Conv2d" for k in conv_kernels)
    bn = [k for k in trace.kernels if k.kind == "batch_norm"]
    assert all(k.wrapper == "BatchNorm2d" for k in bn)
    assert not any(k.wrapper for k in trace.kernels if k.kind in ("cat", "view"))  # functional calls
    assert trace.wrapped == len(conv_kernels) + len(bn) + 37 + 2  # + the ReLUs, the max-pool and the fc
    assert trace.bare_module_calls == trace.module_calls - trace.wrapped
    first, last = trace.kernels[0], trace.kernels[-1]
    assert (first.module, first.kind, last.module, last.op) == ("conv1.0", "conv", "fc", "linear")
    assert first.features["macs"] == first.flops == 24 * 112 * 112 * 3 * 3 * 3
    assert first.bytes == 4 * (3 * 224 * 224 + 24 * 112 * 112 + 24 * 3 * 3 * 3)
    assert sum(k.flops for k in conv_kernels) + last.flops == pytest.approx(41e6, rel=0.03)  # Table 5: 41 M


def test_torchvision_layout_pays_sixteen_shuffle_copies_official_none(v2_traces) -> None:
    _, official, _, _ = v2_traces["official"]
    _, tv, module_calls, _ = v2_traces["torchvision"]
    assert not [k for k in official.kernels if k.kind == "copy"]
    copies = [k for k in tv.kernels if k.kind == "copy"]
    assert len(copies) == 16
    assert all(k.op == "contiguous" and k.module_type == "ChannelShuffle" for k in copies)
    assert all(k.features["in_numel"] == k.features["out_numel"] > 0 for k in copies)
    assert Counter(k.op for k in tv.kernels if k.kind == "view") == {"view": 32, "transpose": 16, "chunk": 13}
    assert tv.module_calls == module_calls


def test_trace_errors_are_one_line() -> None:
    v2, plain = create_model("shufflenet_v2_x0_5"), nn.Sequential(nn.Conv2d(3, 8, 3))
    for model, size, needle in ((v2, (1, 1, 64, 64), "ShuffleNetV2 expects 3 input channels, got 1"),
                                (plain, (1, 1, 64, 64), "cannot run on input 1x1x64x64"),
                                (v2, (1, 3, 0, 64), "positive integers"), (v2, "abc", "positive integers")):
        with pytest.raises(UserInputError, match=needle) as info:
            trace_kernels(model, size)
        assert "\n" not in str(info.value)


# -- the fits --------------------------------------------------------------------------------------------


def test_nnls_recovers_a_known_nonnegative_solution() -> None:
    rng = np.random.default_rng(1)
    a = rng.uniform(0.1, 1.0, (40, 6))
    x_true = np.array([0.5, 0.0, 2.0, 0.0, 1.5, 0.1])
    np.testing.assert_allclose(nnls(a, a @ x_true), x_true, atol=1e-9)


def test_nnls_meets_the_kkt_conditions_where_least_squares_goes_negative() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(size=(30, 5))
    b = a @ np.array([1.0, -2.0, 0.5, -1.0, 3.0]) + 0.1 * rng.normal(size=30)
    assert (np.linalg.lstsq(a, b, rcond=None)[0] < 0).any()  # the constraint binds
    x = nnls(a, b)
    grad = a.T @ (b - a @ x)  # minus half the gradient of ||ax - b||^2
    assert (x >= 0).all() and (x == 0).sum() >= 2
    assert np.abs(grad[x > 0]).max() < 1e-9 and grad[x == 0].max() < 1e-9


def conv1x1_law(f) -> float:
    return 2e-6 + 1e-10 * f["macs"] + 2e-10 * f["out_numel"]


def _conv1x1_shapes(rng: np.random.Generator, n: int) -> list[dict]:
    out = []
    for _ in range(n):
        h = int(rng.choice([7, 14, 28, 56]))
        cin, cout = (int(2 ** rng.uniform(3, 9)) for _ in range(2))
        out.append(conv_features(1, cin, cout, h, h, 1, int(rng.choice([1, 1, 2])), 1, 0, False))
    return out


def test_fit_kind_predicts_new_shapes_of_a_known_law() -> None:
    rng = np.random.default_rng(3)
    train = _conv1x1_shapes(rng, 40)
    model = fit_kind("conv1x1", train, [conv1x1_law(f) for f in train])
    new = _conv1x1_shapes(np.random.default_rng(4), 30)
    errors = [model.predict(f) / conv1x1_law(f) - 1 for f in new]
    assert max(map(abs, errors)) < 0.01
    assert max(abs(e) for e in leave_one_out_errors(model, train, [conv1x1_law(f) for f in train])) < 0.01


def test_neighbour_correction_pulls_towards_a_calibrated_point_off_the_law() -> None:
    rng = np.random.default_rng(3)
    train = _conv1x1_shapes(rng, 40)
    odd = conv_features(1, 300, 300, 5, 5, 1, 1, 1, 0, False)  # a shape no other kernel has, 2x slower
    times = [conv1x1_law(f) for f in train] + [2 * conv1x1_law(odd)]
    model = fit_kind("conv1x1", [*train, odd], times)
    law = conv1x1_law(odd)
    # The correction, recomputed from its definition: the Gaussian-weighted mean log-ratio (measured over
    # linear) of the 6 calibrated kernels nearest in shape, shrunk by a prior weight of 0.5 towards ratio 1.
    from shufflenet.audit.latency.fit import BANDWIDTH, NEIGHBOURS, PRIOR_WEIGHT, SPECS

    coords = np.array([SPECS["conv1x1"].coords(f) for f in [*train, odd]])
    ratios = np.log(np.array(times) / np.array([model.linear(f) for f in [*train, odd]]))
    d2 = ((coords - coords[-1]) ** 2).sum(axis=1)
    near = np.argsort(d2)[:NEIGHBOURS]
    w = np.exp(-d2[near] / (2 * BANDWIDTH ** 2))
    expected = model.linear(odd) * np.exp((w * ratios[near]).sum() / (w.sum() + PRIOR_WEIGHT))
    assert model.predict(odd) == pytest.approx(expected, rel=1e-9)
    assert model.predict(odd) > 1.3 * model.linear(odd)  # by the correction, not by the linear part
    assert model.linear(odd) == pytest.approx(law, rel=0.1)
    far = conv_features(1, 32, 32, 56, 56, 1, 1, 1, 0, False)  # nowhere near it: the law, barely moved
    assert model.predict(far) == pytest.approx(conv1x1_law(far), rel=0.05)
    assert leave_one_out_errors(model, [*train, odd], times)[-1] < -0.3  # without itself: the law's half


# -- predictions on a synthetic calibration -------------------------------------------------------------

LAWS = {
    "conv": lambda f: 2e-6 + 1e-10 * f["macs"] + 2e-10 * f["out_numel"],
    "conv1x1": conv1x1_law,
    "dwconv": lambda f: 1e-6 + 4e-10 * f["macs"] + 1e-10 * f["in_numel"],
    "linear": lambda f: 1e-6 + 2e-10 * f["macs"],
    "batch_norm": lambda f: 5e-7 + 3e-10 * f["in_numel"],
    "relu_": lambda f: 3e-7 + 1e-10 * f["in_numel"],
    "cat": lambda f: 1e-6 + 2e-10 * f["out_numel"] + 2e-7 * f["inputs"],
    "adaptive_avg_pool2d": lambda f: 8e-7 + 1.5e-10 * f["in_numel"],
    "copy": lambda f: 5e-7 + 4e-10 * f["in_numel"],
}
VIEW_S = {"flatten": 1.1e-6, "view": 0.8e-6, "reshape": 0.9e-6}
WRAPPER_S = {"Conv2d": 2e-6, "BatchNorm2d": 1.5e-6, "ReLU": 1e-6, "AdaptiveAvgPool2d": 1.2e-6, "Linear": 1.3e-6}
MODULE_CALL_S = 1.7e-6


def _features(kind: str, rng: np.random.Generator) -> dict[str, float]:
    c, h = int(2 ** rng.uniform(3, 9)), int(rng.choice([4, 7, 14, 28, 56]))
    numel = c * h * h
    if kind in ("conv", "conv1x1"):
        k = 1 if kind == "conv1x1" else int(rng.choice([3, 5]))
        return conv_features(1, c, int(2 ** rng.uniform(3, 9)), h, h, k, int(rng.choice([1, 2])), 1, k // 2, False)
    if kind == "dwconv":
        k = int(rng.choice([3, 5]))
        return conv_features(1, c, c, h, h, k, int(rng.choice([1, 2])), c, k // 2, False)
    if kind == "linear":
        cin, cout = int(2 ** rng.uniform(4, 11)), int(2 ** rng.uniform(3, 10))
        return {"rows": 1, "in": cin, "out": cout, "macs": cin * cout, "w_numel": cin * cout, "in_numel": cin,
                "out_numel": cout}
    if kind == "batch_norm":
        return {"c": c, "hw": h * h, "in_numel": numel, "out_numel": numel}
    if kind == "cat":
        inputs = int(rng.choice([2, 3, 4, 8]))
        return {"out_numel": numel, "inputs": inputs, "in_numel": numel}
    if kind == "adaptive_avg_pool2d":
        return {"c": c, "h": h, "in_numel": numel, "out_numel": c, "k": 0}
    return {"in_numel": numel, "out_numel": numel}  # relu_, copy


def law_calibration(seed: int = 0, per_kind: int = 30) -> Calibration:
    """A calibration whose every kernel time is exactly its kind's law (no timing)."""
    rng = np.random.default_rng(seed)
    samples = []
    for kind, law in LAWS.items():
        for _ in range(per_kind):
            f = {k: float(v) for k, v in _features(kind, rng).items()}
            samples.append(Sample(kind, "conv2d" if "conv" in kind else kind, f, law(f), 0.01))
    samples += [Sample("view", op, {}, s, 0.01) for op, s in VIEW_S.items()]
    return Calibration(1, "quick", samples, dict(WRAPPER_S), MODULE_CALL_S, capture_environment(threads=1),
                       created="2024-01-01T00:00:00")


class Small(nn.Module):
    def __init__(self, sigmoid: bool = False) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True))
        self.pw = nn.Conv2d(16, 32, 1)
        self.dw = nn.Conv2d(32, 32, 3, 1, 1, groups=32)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, 10)
        self.sigmoid = sigmoid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dw(self.pw(self.stem(x)))
        x = torch.cat((x, x), 1)
        if self.sigmoid:
            x = torch.sigmoid(x)
        return self.fc(torch.flatten(self.pool(x), 1))


@pytest.fixture(scope="module")
def law_cal() -> Calibration:
    return law_calibration()


def test_prediction_is_the_laws_sum_plus_the_overheads(law_cal) -> None:
    model, size = Small(), (1, 3, 32, 32)
    trace = trace_kernels(model, size)
    assert [k.kind for k in trace.kernels] == ["conv", "batch_norm", "relu_", "conv1x1", "dwconv", "cat",
                                               "adaptive_avg_pool2d", "view", "linear"]
    assert trace.kernels[0].features["macs"] == 16 * 16 * 16 * 3 * 3 * 3
    # module calls: the root, the stem Sequential and 7 standard leaves, each of which is one wrapped kernel
    assert (trace.module_calls, trace.wrapped, trace.bare_module_calls) == (9, 7, 2)
    expected = sum(VIEW_S[k.op] if k.kind == "view" else LAWS[k.kind](k.features) for k in trace.kernels)
    expected += sum(WRAPPER_S[k.wrapper] for k in trace.kernels if k.wrapper) + 2 * MODULE_CALL_S
    pred = predict_latency(model, size, law_cal, name="small")
    assert pred.seconds == pytest.approx(expected, rel=1e-6)
    assert pred.module_overhead_s == pytest.approx(2 * MODULE_CALL_S)
    assert pred.warnings == []  # same platform, every op type calibrated
    for kp in pred.kernels:
        k = kp.kernel
        law = VIEW_S[k.op] if k.kind == "view" else LAWS[k.kind](k.features)
        assert kp.seconds == pytest.approx(law + WRAPPER_S.get(k.wrapper, 0.0), rel=1e-6), k.kind
    assert pred.flops == sum(k.flops for k in trace.kernels) == 110592 + 131072 + 73728 + 640


def test_shares_breakdowns_and_json_round_trip(law_cal) -> None:
    pred = predict_latency(Small(), (1, 3, 32, 32), law_cal, name="small")
    kinds = pred.by_kind()
    assert sum(r["share_pct"] for r in kinds) == pytest.approx(100.0)
    assert [r["us"] for r in kinds] == sorted((r["us"] for r in kinds), reverse=True)
    assert {r["kind"]: r["calls"] for r in kinds}["(module calls)"] == 9
    modules = pred.by_module()
    assert sum(r["us"] for r in modules) * 1e-6 + pred.module_overhead_s == pytest.approx(pred.seconds)
    assert [r["module"] for r in modules] == ["stem.0", "stem.1", "stem.2", "pw", "dw", "(root)", "pool", "fc"]
    d = pred.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["predicted_ms"] == pytest.approx(pred.seconds * 1e3) and len(d["kernels"]) == 9
    assert [t.key for t in pred.tables()] == ["summary", "kinds", "modules"]


def test_an_untimed_op_type_is_priced_as_a_copy_with_a_warning(law_cal) -> None:
    pred = predict_latency(Small(sigmoid=True), (1, 3, 32, 32), law_cal)
    (sig,) = [k for k in pred.kernels if k.kernel.kind == "sigmoid"]
    assert not sig.calibrated
    assert sig.seconds == pytest.approx(LAWS["copy"](sig.kernel.features), rel=1e-6)
    assert pred.warnings == ["op types without a calibrated model (not timed, or too few kernels), priced as "
                             "copies of their tensors: sigmoid"]


def test_another_platform_is_named_in_the_warnings(law_cal) -> None:
    other = law_calibration()
    other.environment = {**other.environment, "cpu_model": "Some Other CPU"}
    pred = predict_latency(Small(), (1, 3, 32, 32), other)
    assert len(pred.warnings) == 1 and "CPU: " in pred.warnings[0] and "Some Other CPU in the calibration" \
        in pred.warnings[0]
    assert predict_latency(Small(), (1, 3, 32, 32), other, check_platform=False).warnings == []


# -- a real (tiny) calibration and its file --------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A calibration timed on a tiny plan (~2 s), saved once."""
    steps: list[tuple[int, int]] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(CALIBRATE, "_PLAN", TINY_PLAN)
        n_benches = len(CALIBRATE.benches("quick", 0))
        cal = calibrate("quick", 1, seed=0, progress=lambda done, total: steps.append((done, total)))
    path = tmp_path_factory.mktemp("calibration") / "cal.json"
    cal.save(path)
    return cal, path, steps, n_benches


@pytest.fixture(scope="module")
def v2_small_trace():
    return trace_kernels(create_model("shufflenet_v2_x0_5"), SMALL_INPUT)


def test_tiny_calibration_times_every_kernel_of_its_plan(tiny) -> None:
    cal, path, steps, n_benches = tiny
    assert len(cal.samples) == n_benches and all(s.seconds > 0 for s in cal.samples)
    counts = {kind: len(group) for kind, group in cal.by_kind().items()}
    assert all(counts[k] == 4 for k in ("conv1x1", "conv", "gconv", "dwconv"))
    assert counts["view"] == 48 and counts["copy"] == 4  # 16 view ops x 3; 2 x "other" shuffles
    assert steps[-1][0] == steps[-1][1] and [d for d, _ in steps] == list(range(1, len(steps) + 1))
    assert (cal.threads, cal.mode, cal.path) == (1, "quick", str(path))
    assert cal.environment["threads"] == 1 and cal.seconds > 0 and set(WRAPPER_S) <= set(cal.wrapper_s)
    d = json.loads(path.read_text())
    assert (d["format"], d["format_version"]) == ("shufflenet-latency-calibration", FORMAT_VERSION)
    assert len(d["samples"]) == n_benches and d["kinds"][0]["kind"] == "adaptive_avg_pool2d"
    assert [t.key for t in cal.tables()] == ["kinds", "overheads"]


def test_save_load_round_trip_predicts_identically(tiny, v2_small_trace, tmp_path) -> None:
    cal, path, _, _ = tiny
    loaded = load_calibration(path)
    assert loaded.samples == cal.samples and loaded.wrapper_s == cal.wrapper_s
    assert loaded.module_call_s == cal.module_call_s and loaded.path == str(path)
    a, b = predict_trace(v2_small_trace, cal), predict_trace(v2_small_trace, loaded)
    assert a.seconds == b.seconds > 0
    assert [k.seconds for k in a.kernels] == [k.seconds for k in b.kernels]
    # saved again (over an older file too), atomically: nothing but the file is left in the directory
    out = tmp_path / "again" / "cal.json"
    loaded.save(out)
    loaded.save(out)
    assert [p.name for p in out.parent.iterdir()] == ["cal.json"]
    assert predict_trace(v2_small_trace, load_calibration(out)).seconds == a.seconds


def _edits(d: dict, key: str) -> str:
    if key == "format":
        d["format"] = "something-else"
    elif key == "version":
        d["format_version"] = 99
    elif key == "zero":
        d["samples"][3]["seconds"] = 0
    elif key == "no-samples-key":
        del d["samples"]
    return json.dumps(d)


@pytest.mark.parametrize("case, needle", [
    ("corrupt", "is not a readable latency calibration (JSONDecodeError)"),
    ("truncated", "is not a readable latency calibration (JSONDecodeError)"),
    ("format", "is not a latency calibration"),
    ("version", "has calibration format version 99; this shufflenet reads version 1"),
    ("zero", "a time <= 0"),
    ("no-samples-key", "is a corrupt latency calibration (KeyError"),
    ("missing", "no latency calibration at"),
    ("directory", "is a directory"),
])
def test_bad_calibration_files_are_one_line_errors(tiny, tmp_path, case, needle) -> None:
    _, path, _, _ = tiny
    text = path.read_text()
    bad = tmp_path / "bad.json"
    if case == "corrupt":
        bad.write_text("{not json")
    elif case == "truncated":
        bad.write_text(text[: len(text) // 2])
    elif case == "directory":
        bad.mkdir()
    elif case != "missing":
        bad.write_text(_edits(json.loads(text), case))
    with pytest.raises(UserInputError) as info:
        load_calibration(bad)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_differences_name_what_differs(tiny) -> None:
    cal, _, _, _ = tiny
    assert cal.differences() == []
    here = capture_environment(threads=1)
    env = {**here, "cpu_model": "Other CPU 9000", "torch": "0.0.1"}
    diffs = cal.differences(environment=env)
    assert diffs == [f"CPU: Other CPU 9000 here, {cal.environment['cpu_model']} in the calibration",
                     f"torch: 0.0.1 here, {torch.__version__} in the calibration"]
    assert cal.differences(threads=4) == ["threads: 4 here, 1 in the calibration"]


def test_default_path_follows_the_cache_variable(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SHUFFLENET_CACHE", str(tmp_path))
    assert default_path(3) == tmp_path / "latency" / "calibration-cpu-3t.json"


# -- the CLI ---------------------------------------------------------------------------------------------


@pytest.fixture
def cache(monkeypatch, tmp_path):
    """An empty calibration cache: nothing here touches ~/.cache."""
    monkeypatch.setenv("SHUFFLENET_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_cli_predict_with_a_calibration_file(capsys, tiny, v2_small_trace, cache) -> None:
    cal, path, _, _ = tiny
    code, out, err = run(capsys, "latency", "predict", "shufflenet_v2_x0_5", "--input", "64",
                         "--calibration", str(path), "--format", "json")
    assert code == 0 and err == "", err
    d = json.loads(out)
    assert d["predicted_ms"] > 0 and d["model"] == "shufflenet_v2_x0_5" and d["input_size"] == list(SMALL_INPUT)
    assert d["predicted_ms"] == pytest.approx(predict_trace(v2_small_trace, cal).seconds * 1e3, rel=1e-9)
    assert d["calibration"] == str(path) and d["threads"] == 1
    assert not any("another platform" in w for w in d["warnings"])


def test_cli_predict_from_the_cache_and_as_a_table(capsys, tiny, cache, tmp_path) -> None:
    _, path, _, _ = tiny
    default_path(1).parent.mkdir(parents=True)
    shutil.copy(path, default_path(1))
    code, out, err = run(capsys, "latency", "predict", "shufflenet_v2_x0_5", "--input", "1x3x64x64")
    assert code == 0, err
    assert "Predicted latency" in out and "Predicted time per op type" in out and "stage2.0" in out
    csv = tmp_path / "pred.csv"
    code, _, err = run(capsys, "latency", "predict", "shufflenet_v2_x0_5", "--input", "64", "--out", str(csv))
    assert code == 0, err
    assert csv.read_text().splitlines()[0].startswith("model,input,threads,predicted_ms")


@pytest.mark.parametrize("threads, needle", [
    ((), "run `shufflenet latency calibrate` first"),
    (("--threads", "3"), "run `shufflenet latency calibrate --threads 3` first"),
])
def test_cli_predict_without_a_calibration(capsys, cache, threads, needle) -> None:
    code, _, err = run(capsys, "latency", "predict", "shufflenet_v2_x0_5", *threads)
    assert code == 2
    one_line_error(err, needle)
    code, _, err = run(capsys, "latency", "predict", "shufflenet_v2_x0_5", "--calibration", str(cache / "x.json"))
    assert code == 2
    one_line_error(err, f"--out {cache / 'x.json'}")


def test_cli_predict_with_a_corrupt_calibration(capsys, cache, tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "shufflenet-latency-calibration", "format_version": 1, "samples": [')
    code, _, err = run(capsys, "latency", "predict", "shufflenet_v2_x0_5", "--calibration", str(bad))
    assert code == 2
    one_line_error(err, "is not a readable latency calibration")


def test_cli_predict_warns_about_another_platform_and_thread_count(capsys, tiny, cache, tmp_path) -> None:
    _, path, _, _ = tiny
    d = json.loads(path.read_text())
    d["environment"]["cpu_model"] = "Other CPU 9000"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(d))
    code, out, err = run(capsys, "latency", "predict", "shufflenet_v2_x0_5", "--input", "64",
                         "--calibration", str(other), "--format", "json")
    assert code == 0, err
    assert err.count("\n") == 1 and err.startswith(f"shufflenet: warning: calibration {other} ")
    here = capture_environment()["cpu_model"]
    assert f"(CPU: {here} here, Other CPU 9000 in the calibration)" in err
    assert json.loads(out)["predicted_ms"] > 0
    code, _, err = run(capsys, "latency", "predict", "shufflenet_v2_x0_5", "--input", "64",
                       "--calibration", str(path), "--threads", "2", "--format", "json")
    assert code == 0 and err.count("\n") == 1 and "(threads: 2 here, 1 in the calibration)" in err, err


@pytest.mark.parametrize("argv, needle", [
    (("nosuchpkg.mod:fn",), "cannot import module 'nosuchpkg.mod'"),
    (("no_such_model_zz",), "unknown model"),
    (("shufflenet_v2_x0_5", "--input", "1x1x64x64"), "ShuffleNetV2 expects 3 input channels, got 1"),
    (("shufflenet_v2_x0_5", "--input", "64x"), "malformed --input"),
])
def test_cli_predict_bad_input_is_one_line_exit_2(capsys, tiny, cache, argv, needle) -> None:
    _, path, _, _ = tiny
    code, _, err = run(capsys, "latency", "predict", *argv, "--calibration", str(path))
    assert code == 2
    one_line_error(err, needle)


def test_cli_predict_never_writes_over_its_calibration(capsys, tiny, cache, tmp_path) -> None:
    _, path, _, _ = tiny
    copy = tmp_path / "cal.json"
    shutil.copy(path, copy)
    code, _, err = run(capsys, "latency", "predict", "shufflenet_v2_x0_5", "--calibration", str(copy),
                       "--out", str(copy))
    assert code == 2
    one_line_error(err, "is an input of this command")
    assert copy.read_text() == path.read_text()


def test_cli_calibrate_refuses_an_existing_out_and_bad_places_before_timing(capsys, cache, tmp_path,
                                                                            monkeypatch) -> None:
    def no_timing(*_a, **_k):
        raise AssertionError("timed kernels before refusing")

    monkeypatch.setattr(CALIBRATE, "benches", no_timing)
    existing = tmp_path / "cal.json"
    existing.write_text("precious")
    code, _, err = run(capsys, "latency", "calibrate", "--out", str(existing))
    assert code == 2
    one_line_error(err, "exists: add --force")
    assert existing.read_text() == "precious"
    (tmp_path / "afile").write_text("x")
    for bad, needle in ((tmp_path, "is a directory"), (tmp_path / "afile" / "cal.json", "is a file, not a directory")):
        code, _, err = run(capsys, "latency", "calibrate", "--out", str(bad))
        assert code == 2
        one_line_error(err, needle)
    (tmp_path / "cache").write_text("not a directory")  # the cache itself cannot be created
    code, _, err = run(capsys, "latency", "calibrate")
    assert code == 2
    one_line_error(err, "set SHUFFLENET_CACHE to a writable directory or give --out FILE")
    code, _, err = run(capsys, "latency", "calibrate", "--threads", "0")
    assert code == 2 and "--threads" in err


def test_cli_calibrate_force_writes_a_loadable_file(capsys, cache, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(CALIBRATE, "_PLAN", TINY_PLAN)
    target = tmp_path / "cal.json"
    target.write_text("older")
    code, out, err = run(capsys, "latency", "calibrate", "--out", str(target), "--force", "--quiet")
    assert code == 0, err
    cal = load_calibration(target)
    assert "Latency calibration (quick, 1 thread(s)): kernels per op type" in out and "conv1x1" in out
    lines = err.splitlines()
    assert lines[-1].startswith(f"calibration written to {target} ({len(cal.samples)} kernels, ")
    assert lines[-1].endswith(" s)")
    assert not cache.exists()  # an explicit --out leaves the cache alone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cal.json"]


def test_cli_calibrate_replaces_the_cached_calibration(capsys, tiny, cache, monkeypatch) -> None:
    _, path, _, _ = tiny
    monkeypatch.setattr(CALIBRATE, "_PLAN", TINY_PLAN)
    target = default_path(1)
    target.parent.mkdir(parents=True)
    older = json.loads(path.read_text())
    older["created"] = "2000-01-01T00:00:00"
    target.write_text(json.dumps(older))
    code, out, err = run(capsys, "latency", "calibrate", "--quick", "--seed", "1", "--format", "json")
    assert code == 0, err
    assert err.splitlines()[-2] == f"replaced an older calibration (quick, created 2000-01-01T00:00:00) at {target}"
    assert err.splitlines()[-1].startswith(f"calibration written to {target} (")
    new = load_calibration(target)
    assert new.created != "2000-01-01T00:00:00"
    assert json.loads(out)["samples"] == json.loads(target.read_text())["samples"]  # --format json: the file
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


def test_cli_latency_help_and_missing_action(capsys) -> None:
    code, out, _ = run(capsys, "latency", "calibrate", "--help")
    assert code == 0 and "--force" in out and "calibration-cpu-<N>t.json" in out and "``" not in out
    code, out, _ = run(capsys, "latency", "predict", "--help")
    assert code == 0 and "--calibration FILE" in out
    code, _, err = run(capsys, "latency")
    assert code == 2 and "ACTION" in err


def test_roofline_columns_from_the_machine_ceilings(law_cal) -> None:
    from types import SimpleNamespace

    ceilings = SimpleNamespace(matmul_gmadds=50.0, copy_gb_per_s=25.0)  # ridge point: 2 multiply-adds per byte
    pred = predict_latency(Small(), (1, 3, 32, 32), law_cal, name="small", ceilings=ceilings)
    floors = [max(k.kernel.flops / 50e9, k.kernel.bytes / 25e9) for k in pred.kernels]
    assert pred.floor_s() == pytest.approx(sum(floors))
    rows = {r["kind"]: r for r in pred.by_kind()}
    conv = [k for k in pred.kernels if k.kernel.kind == "conv"][0]
    assert rows["conv"]["floor_us"] == pytest.approx(1e6 * max(conv.kernel.flops / 50e9, conv.kernel.bytes / 25e9))
    assert rows["conv"]["bound"] == ("compute" if conv.kernel.flops / conv.kernel.bytes >= 2 else "memory")
    assert rows["relu_"]["bound"] == "memory" and rows["view"]["bound"] == "n/a"
    assert rows["conv"]["x_floor"] == pytest.approx(rows["conv"]["us"] / rows["conv"]["floor_us"])
    summary = pred.tables()[0].rows[0]
    assert summary["x_floor"] == pytest.approx(pred.seconds / pred.floor_s())
    bare = predict_latency(Small(), (1, 3, 32, 32), law_cal, name="small", ceilings=None)
    assert bare.floor_s() is None and "bound" not in bare.by_kind()[0]
