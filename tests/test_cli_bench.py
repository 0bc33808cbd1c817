"""`shufflenet bench`: output formats, suites (shrunk), --machine, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import os

import pytest
import torch

from shufflenet.cli.main import main
from shufflenet.measure import machine as machine_mod
from shufflenet.measure import suites, unit_suite

FAST = ["--min-run-time", "0.01", "--warmup", "1"]
SMALL = ["shufflenet_v2_x0_5", "--input", "1x3x64x64", *FAST]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_bench_json_mirrors_to_dict(capsys) -> None:
    code, out, err = run(capsys, "--quiet", "bench", *SMALL, "--batch", "1,2", "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    assert set(d) == {"conventions", "options", "env", "machine", "rows"}
    assert [r["batch"] for r in d["rows"]] == [1, 2]
    row = d["rows"][0]
    for key in ("model", "mflops", "mmac", "latency_ms", "iqr_ms", "images_per_s", "batches_per_s",
                "gmadds_per_s", "noisy", "measurement"):
        assert key in row
    assert row["latency_ms"] > 0 and row["images_per_s"] > 0
    assert d["rows"][1]["mflops"] == pytest.approx(2 * row["mflops"], abs=0.11)
    assert d["env"]["threads"] == 1 and d["env"]["cpu_model"] and d["env"]["torch"] == torch.__version__
    assert row["measurement"]["warmup_runs"] >= 1


def test_bench_table_and_csv(capsys, tmp_path) -> None:
    code, out, _ = run(capsys, "--quiet", "bench", *SMALL)
    assert code == 0
    assert "GMAdd/s" in out and "multiply-adds" in out and "shufflenet_v2_x0_5" in out
    dest = tmp_path / "b.csv"
    assert run(capsys, "--quiet", "bench", *SMALL, "--format", "csv", "--out", str(dest))[0] == 0
    lines = dest.read_text().splitlines()
    assert lines[0].startswith("model,input,batch,mflops") and len(lines) == 2


def test_input_batch_is_used_without_batch_flag(capsys) -> None:
    code, out, _ = run(capsys, "--quiet", "bench", "shufflenet_v2_x0_5", "--input", "2x3x64x64", *FAST,
                       "--format", "json")
    assert code == 0 and [r["batch"] for r in json.loads(out)["rows"]] == [2]


def test_machine_flag(capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SHUFFLENET_CACHE", str(tmp_path))
    monkeypatch.setattr(machine_mod, "MATMUL_N", {"cpu": 128, "cuda": 1024})
    monkeypatch.setattr(machine_mod, "COPY_ELEMENTS", {"cpu": 1 << 18, "cuda": 1 << 22})
    monkeypatch.setattr(machine_mod, "CONV_SHAPES", {"cpu": ((1, 32, 8, 1), (1, 16, 8, 3)), "cuda": ()})
    monkeypatch.setattr(machine_mod, "KERNEL_MIN_RUN_TIME", 0.01)
    code, out, err = run(capsys, "bench", "--machine")
    assert code == 0, err
    assert "GFLOP/s" in out and "GB/s" in out and (tmp_path / "machine-cpu.json").exists()
    assert "best kernel" in out and "kernel torch.mm" in out and "kernel oneDNN via torch" in out
    code, out, _ = run(capsys, "--quiet", "bench", *SMALL, "--format", "json")
    assert json.loads(out)["machine"]["matmul_gflops"] > 0  # cached ceilings are used for the fractions
    code, out, _ = run(capsys, "--quiet", "bench", *SMALL)
    assert "compute (%)" in out  # the compute column, now with its unit in the header


def test_units_suite_shrunk(capsys, monkeypatch) -> None:
    real = unit_suite.run_units
    monkeypatch.setattr(unit_suite, "run_units", lambda *a, **k: real(*a, channels=(64,), sides=(28,), **k))
    code, out, err = run(capsys, "--quiet", "bench", "--suite", "units", "--quick", *FAST)
    assert code == 0, err
    assert "Appendix Table 1(b)" in out and "matched widths" in out and "paper GPU batch/s" in out


def test_fig1_suite_shrunk(capsys, monkeypatch, tmp_path) -> None:
    keep = {"ShuffleNet v2 0.5x", "MobileNet v1 0.25"}
    monkeypatch.setattr(suites, "FIG1_ENTRIES", tuple(e for e in suites.FIG1_ENTRIES if e.label in keep))
    dest = tmp_path / "fig1.json"
    code, _, err = run(capsys, "--quiet", "bench", "--suite", "paper-fig1", "--batch", "1", *FAST,
                       "--format", "json", "--out", str(dest))
    assert code == 0, err
    d = json.loads(dest.read_text())
    assert d["suite"] == "paper-fig1" and len(d["rows"]) == 2 and d["env"]["cpu_model"]
    v2 = d["rows"][0]
    assert (v2["paper_arm"], v2["paper_gpu"], v2["paper_mflops"], v2["b1_vs_v2"]) == (57.0, 417, 41, 1.0)
    assert d["plot"] == str(tmp_path / "fig1.png") and (tmp_path / "fig1.png").stat().st_size > 1000


def _one_line_error(capsys, *argv: str) -> str:
    code, out, err = run(capsys, *argv)
    assert code == 2, (code, err)
    assert err.startswith("shufflenet") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("argv, match", [
    (["bench", "shufflenet_v2_x0_5", "--device", "tpu"], "unknown device"),
    (["bench", "shufflenet_v2_x0_5", "--batch", "0"], "batch"),
    (["bench", "shufflenet_v2_x0_5", "--batch", "1,x"], "malformed --batch"),
    (["bench", "shufflenet_v2_x0_5", "--batch", "-1"], "batch"),
    (["bench", "shufflenet_v2_x0_5", "--threads", str((os.cpu_count() or 1) + 1)], "logical CPU"),
    (["bench", "shufflenet_v2_x0_5", "--threads", "0"], "threads"),
    (["bench", "shufflenet_v2_x0_5", "--dtype", "fp8"], "unknown dtype"),
    (["bench", "no_such_net"], "no_such_net"),
    (["bench", "shufflenet_v2_x0_5", "--input", "3x"], "malformed --input"),
    (["bench"], "nothing to measure"),
    (["bench", "shufflenet_v2_x0_5", "--suite", "units"], "not both"),
    (["bench", "--suite", "nope"], "invalid choice"),
    (["bench", "shufflenet_v2_x0_5", "--cuda-graphs"], "cuda"),
])
def test_bad_input_exits_2_with_one_line(capsys, argv, match) -> None:
    assert match in _one_line_error(capsys, *argv)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_without_cuda_exits_2(capsys) -> None:
    assert "no CUDA device" in _one_line_error(capsys, "bench", "shufflenet_v2_x0_5", "--device", "cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bench_defaults_to_batch_8(capsys) -> None:
    code, out, err = run(capsys, "--quiet", "bench", *SMALL, "--device", "cuda", "--cuda-graphs",
                         "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    assert [r["batch"] for r in d["rows"]] == [8] and d["env"]["gpu_name"]
    assert d["rows"][0]["measurement"]["cudnn_benchmark"] is True
