"""The ``resnets`` suite and the CIFAR ResNets it compares: exact sizes, the judging rules on made-up
timings both ways, one real (short) run through the CLI's result contract."""

from __future__ import annotations

import json

import pytest
import torch

from shufflenet.cost import count_cost
from shufflenet.measure import resnet_suite
from shufflenet.measure.bench import BenchOptions, BenchRow
from shufflenet.measure.timing import Measurement
from shufflenet.models import create_model, get_entry
from shufflenet.render import render


@pytest.mark.parametrize(("name", "mparams", "convs"), [
    ("resnet110_cifar", 1.7, 1 + 108), ("resnet1001_cifar", 10.2, 1 + 999 + 3), ("wrn_28_10", 36.5, 1 + 24 + 3)])
def test_cifar_resnets_match_their_papers(name: str, mparams: float, convs: int) -> None:
    model = create_model(name).eval()
    assert get_entry(name).input_size == 32 and get_entry(name).paper.mparams == mparams
    cost = count_cost(model, (1, 3, 32, 32))
    assert cost.params / 1e6 == pytest.approx(mparams, rel=0.02)
    # stem + 6n (ResNet-110, n=18) / 9n (ResNet-1001, n=111) / 6n (WRN-28-10, n=4) block convs, plus the
    # pre-activation networks' three 1x1 projection shortcuts
    assert resnet_suite.conv_count(model) == convs
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_cifar_flops() -> None:
    # ResNet-110: 253 M multiply-adds at 32x32 (the figure usually quoted, e.g. in the CondenseNet paper)
    assert count_cost(create_model("resnet110_cifar"), (1, 3, 32, 32)).flops / 1e6 == pytest.approx(253, rel=0.01)
    # WRN-28-10 has 3.5x ResNet-1001's FLOPs: the wide network of *more* FLOPs in the observation
    wrn = count_cost(create_model("wrn_28_10"), (1, 3, 32, 32)).flops
    deep = count_cost(create_model("resnet1001_cifar"), (1, 3, 32, 32)).flops
    assert wrn / deep == pytest.approx(3.52, abs=0.02)


def _row(name: str, mflops: float, ms: float, iqr: float = 0.0) -> BenchRow:
    s = ms / 1e3
    m = Measurement(model=name, input_size=(1, 3, 32, 32), device="cpu", dtype="fp32", memory_format="contiguous",
                    threads=1, median_s=s, mean_s=s, iqr_s=iqr * s, min_s=s, max_s=s, quantiles_s={},
                    number_per_run=1, num_blocks=5, warmup_runs=1, warmup_s=0.0, min_run_time=0.01,
                    method="blocked")
    return BenchRow(model=name, family="x", flops=int(mflops * 1e6), mac=int(mflops * 1e5), mac_bytes=0,
                    measurement=m)


def test_judging_both_ways() -> None:
    rows = {"WRN-28-10": _row("WRN-28-10", 5243, 50), "ResNet-1001": _row("ResNet-1001", 1491, 80),
            "ResNet-110": _row("ResNet-110", 253, 5), "ResNeXt-50 32x4d": _row("ResNeXt-50 32x4d", 4260, 60),
            "WRN-50-2": _row("WRN-50-2", 11400, 100)}
    wide, grouped = resnet_suite.judge(rows)
    # faster than ResNet-1001 with 3.5x its FLOPs, but slower than ResNet-110: partly
    assert wide["verdict"] == "partly holds" and "3.52x the FLOPs, 0.62x the time" in wide["evidence"]
    # ResNeXt-50: 0.37x the FLOPs in 0.6x the time -> 0.62x the GFLOP/s, at most 0.67: much slower per FLOP
    assert grouped["verdict"] == "holds" and grouped["pairs"][0]["throughput_ratio"] == pytest.approx(0.62, abs=0.01)
    rows["ResNeXt-50 32x4d"] = _row("ResNeXt-50 32x4d", 4260, 46)  # 0.81x the GFLOP/s: slower, not much
    assert resnet_suite.judge(rows)[1]["verdict"] == "partly holds"
    rows["ResNet-110"] = _row("ResNet-110", 253, 60)
    rows["ResNeXt-50 32x4d"] = _row("ResNeXt-50 32x4d", 4260, 30)
    wide, grouped = resnet_suite.judge(rows)
    assert wide["verdict"] == "holds" and grouped["verdict"] == "does not hold"
    # within the noise: a 5% difference with 10% spread on each side is no difference
    # slower in time but 2.9x the GFLOP/s: faster per FLOP only -> partly
    rows = {"WRN-28-10": _row("WRN-28-10", 5243, 85), "ResNet-1001": _row("ResNet-1001", 1491, 69)}
    (wide,) = resnet_suite.judge(rows)
    assert wide["verdict"] == "partly holds" and wide["pairs"][0]["throughput_ratio"] == pytest.approx(2.86, abs=0.01)
    # within the noise: equal FLOPs, a 5% difference with 10% spread on each side is no difference
    rows = {"WRN-50-2": _row("WRN-50-2", 11400, 95, 0.1), "ResNet-152": _row("ResNet-152", 11500, 100, 0.1)}
    (wide,) = resnet_suite.judge(rows)
    assert wide["verdict"] == "does not hold" and wide["pairs"][0]["margin"] == pytest.approx(0.2)


def test_real_short_run_renders(tmp_path) -> None:
    entries = [e for e in resnet_suite.RESNET_ENTRIES if e.label in ("ResNet-110", "WRN-28-10")]
    result = resnet_suite.run_resnets(BenchOptions(threads=1, min_run_time=0.05, warmup=1), (1,), entries=entries)
    assert [r["model"] for r in result.rows] == ["ResNet-110", "WRN-28-10"]
    wrn = result.rows[1]
    assert wrn["mflops"] == pytest.approx(5243.3, abs=0.1) and wrn["convs"] == 28 and wrn["b1_ms"] > 0
    assert result.verdicts["1"][0]["claim"].startswith("wide ResNets")
    d = json.loads(render(result, "json"))
    assert d["suite"] == "resnets" and d["verdicts"]["1"][0]["verdict"] in ("holds", "partly holds", "does not hold")
    assert "GFLOP/s" in render(result, "md")
    pytest.importorskip("matplotlib")
    from shufflenet.measure.plots import save_figure

    assert save_figure(result.charts[0], tmp_path / "r.png") is not None and (tmp_path / "r.png").stat().st_size > 0
