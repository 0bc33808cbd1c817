"""The deployment speed comparison: its verdict arithmetic, a real (tiny) run, and the report section."""

from __future__ import annotations

import json

import pytest

from shufflenet.deploy import speed
from shufflenet.deploy.speed import DeployPath, InferenceSpeed, PathTiming
from shufflenet.render import render
from shufflenet.report.context import ReportContext, ReportOptions
from shufflenet.report.sections import deploy as deploy_section

P = {p.label: p for p in speed.paths()}


def _made_up(times_ms: dict[str, float], width: str = "1.0", floor_ms: float = 1.0) -> InferenceSpeed:
    timings = [PathTiming(P[label], width, 1, 1, [t / 1e3] * 3) for label, t in times_ms.items()]
    return InferenceSpeed(timings, {f"{width}|1|1": floor_ms / 1e3}, {}, {width: 146.0}, 3, {})


TIMES = {"torchvision eager": 8.0, "torchvision eager channels_last": 6.0, "torchvision -> onnxruntime": 2.5,
         "torchvision -> openvino": 2.9, "torchvision -> ncnn": 3.0, "ours eager": 8.5, "ours optimised eager": 3.9,
         "ours optimised -> onnxruntime": 2.0, "ours optimised -> openvino": 1.7, "ours optimised -> ncnn": 2.8,
         "ours optimised -> onnxruntime int8": 1.3, "ours optimised -> openvino int8": 1.2,
         "ours optimised -> openvino bf16": 1.4}


def test_verdicts_compare_against_the_best_peer() -> None:
    v = _made_up(TIMES).verdicts()[0]
    assert v["best_peer"] == "torchvision -> onnxruntime" and v["best_peer_ms"] == 2.5
    assert v["ours_best"] == "ours optimised -> openvino" and v["ours_vs_peer"] == round(1.7 / 2.5, 3)
    assert v["meets_0_7"] is True  # 0.68
    assert v["eager_vs_tv"] == round(3.9 / 8.0, 3) and v["meets_0_5"] is True
    assert v["low_best"] == "ours optimised -> openvino int8" and v["low_speedup"] == round(2.5 / 1.2, 2)
    assert v["meets_2x"] is True
    assert v["ours_floor_pct"] == round(100 * 1.0 / 1.7, 1) and v["peer_floor_pct"] == 40.0
    slower = _made_up({**TIMES, "ours optimised -> openvino": 1.76, "ours optimised eager": 4.1,
                       "ours optimised -> openvino int8": 1.3}).verdicts()[0]
    assert not slower["meets_0_7"] and not slower["meets_0_5"] and not slower["meets_2x"]


def test_low_precision_rows_have_no_fp32_floor_fraction() -> None:
    rows = {r["path"]: r for r in _made_up(TIMES).table_rows()}
    assert rows["ours optimised -> openvino int8"]["floor_pct"] is None
    assert rows["torchvision -> onnxruntime"]["floor_pct"] == 40.0
    assert rows["torchvision -> onnxruntime"]["vs_best_peer"] == 1.0


def test_a_real_tiny_run_times_every_chosen_path() -> None:
    chosen = [P["torchvision eager"], P["ours optimised eager"], P["torchvision -> onnxruntime"],
              P["ours optimised -> onnxruntime"], P["ours optimised -> onnxruntime int8"]]
    result = speed.run_inference_speed(("0.5",), (1,), (1,), rounds=2, block_s=0.01, chosen=chosen)
    assert [t.path for t in result.timings] == chosen
    assert all(len(t.times_s) == 2 and t.median_s > 0 for t in result.timings)
    assert result.mflops["0.5"] == pytest.approx(40.5, abs=0.5)  # Table 5's 41 MFLOPs (official layout)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["verdicts"][0]["best_peer"] == "torchvision -> onnxruntime"
    assert "Deployment targets per cell" in render(result, "table")


def test_report_section_claims_follow_the_numbers(monkeypatch) -> None:
    made = _made_up(TIMES)
    monkeypatch.setattr(speed, "run_inference_speed", lambda *a, **k: made)
    monkeypatch.setattr(speed, "accuracy_by_path", lambda *a, **k: [
        {"checkpoint": "c", "path": "eager", "precision": "fp32", "top1": 94.0, "drop": 0.0, "within_0_3": True},
        {"checkpoint": "c", "path": "openvino", "precision": "int8", "top1": 93.6, "drop": 0.4, "within_0_3": False}])
    out = deploy_section.run(ReportContext(ReportOptions(mode="quick")))
    claims = {c.key: c for c in out.claims}
    # folded shuffle vs torchvision in the same runtime: 2.0/2.5, 1.7/2.9 and 2.8/3.0, all faster
    assert claims["deploy-g4"].verdict == "holds" and "3 of 3" in claims["deploy-g4"].here
    # 2.08x faster, but the int8 model loses 0.4 pt > 0.3
    assert claims["deploy-int8"].verdict == "partly holds" and "0.40 pt" in claims["deploy-int8"].here
    assert "0.68x the time of the best peer" in out.headlines[0]
    assert out.rankings and out.data["verdicts"][0]["meets_2x"] is True


def test_section_without_runtimes_is_unavailable(monkeypatch) -> None:
    from shufflenet.report.section import SectionUnavailable

    monkeypatch.setattr(speed, "available_paths", lambda: ([p for p in speed.paths() if p.runtime == "torch"],
                                                           ["ncnn", "onnxruntime", "openvino"]))
    with pytest.raises(SectionUnavailable, match=r"no inference runtime is installed .*shufflenet\[deploy\]"):
        deploy_section.run(ReportContext(ReportOptions(mode="quick")))


def test_paths_name_each_runtime_once() -> None:
    labels = [p.label for p in speed.paths(compiled=True)]
    assert len(labels) == len(set(labels)) and "ours optimised torch.compile" in labels
    assert DeployPath("x", "ours", "torch").precision == "fp32"


def test_a_committed_result_reads_back_unchanged() -> None:
    made = _made_up(TIMES)
    back = InferenceSpeed.from_dict(json.loads(json.dumps(made.to_dict())))
    assert back.to_dict() == made.to_dict()
    assert render(back, "md") == render(made, "md")
