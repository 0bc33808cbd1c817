"""Export to ONNX / OpenVINO / ncnn / TorchScript / torch.export, checked in each runtime; runtimes in bench."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from shufflenet.cli.main import main
from shufflenet.deploy import export as export_mod
from shufflenet.deploy.export import export_model, onnx_graph_facts
from shufflenet.deploy.optimize import optimize
from shufflenet.deploy.runtimes import MissingRuntimeError, _ncnn_io_names, load_runtime, require
from shufflenet.errors import ShuffleNetError, UserInputError
from shufflenet.models import create_model
from shufflenet.models.shipped import load_checked_weights, shipped_checkpoints
from shufflenet.train.data import FashionMNIST, find_fashion_mnist

SHIPPED_05 = "shipped:fashion_mnist-shufflenet_v2_x0_5"
FM_ARGS = ["--small-input", "-m", "in_chans=1", "--num-classes", "10"]


@pytest.fixture(scope="module")
def trained() -> torch.nn.Module:
    """The shipped Fashion-MNIST ShuffleNet V2 0.5x: parity on real weights and real images."""
    model = create_model("shufflenet_v2_x0_5", small_input=True, in_chans=1, num_classes=10)
    load_checked_weights(model, "shufflenet_v2_x0_5", SHIPPED_05)
    return model.eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    data = FashionMNIST(find_fashion_mnist(), "val")
    return torch.stack([x for x, _ in data.__getitems__(list(range(32)))])


def test_shipped_checkpoints_carry_their_record() -> None:
    shipped = {c.name: c for c in shipped_checkpoints()}
    c = shipped["fashion_mnist-shufflenet_v2_x0_5"]
    assert c.model == "shufflenet_v2_x0_5" and c.model_kwargs == {"small_input": True, "num_classes": 10,
                                                                  "in_chans": 1}
    assert c.meta["class_names"][0] == "T-shirt/top" and len(c.meta["history"]) == c.meta["training"]["epochs"]
    assert c.test_top1 == c.meta["training"]["final"]["val_top1"]  # after BN recalibration


def test_optimized_trained_model_matches_on_real_images(trained, images) -> None:
    from shufflenet.deploy.parity import compare

    for channels_last in (False, True):
        parity = compare(trained, optimize(trained, channels_last=channels_last), images)
        assert parity.ok() and parity.top1_agreement == 1.0, parity


@pytest.mark.parametrize("fmt", ["onnx", "openvino", "ncnn", "torchscript", "pt2"])
def test_export_checks_in_its_runtime(fmt, trained, images, tmp_path) -> None:
    opt = optimize(trained, channels_last=False)
    out = tmp_path / f"m{export_mod.SUFFIX[fmt]}"
    result = export_model(opt, out, fmt=fmt, input_shape=(1, 28, 28), name="x0_5", check_inputs=images,
                          inputs_label="Fashion-MNIST test images", reference=trained, optimized=True,
                          deploy_steps=opt.deploy_steps)
    assert result.parity.ok(result.tolerance) and result.parity.top1_agreement == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(result.files)  # no temporary left behind
    assert result.op_histogram and sum(result.op_histogram.values()) > 50
    data = result.to_dict()
    assert data["parity_ok"] and json.loads(json.dumps(data)) == data
    if fmt == "onnx":
        ops, rank, nonstandard = onnx_graph_facts(out)
        assert rank <= 4 and not nonstandard and result.max_rank == rank
        assert "Transpose" not in ops and "Reshape" not in ops  # the shuffle is folded into the weights
        assert ops["Conv"] == 56
        runner = load_runtime("onnxruntime", out)
        for batch in (1, 5):  # dynamic batch
            assert runner(images[:batch]).shape == (batch, 10)
    if fmt in ("openvino", "ncnn"):
        assert (tmp_path / "m.bin").is_file()


def test_unoptimized_torchvision_layout_exports_without_5d_tensors(tmp_path) -> None:
    model = create_model("shufflenet_v2_x0_5", layout="torchvision", shuffle_impl="4d").eval()
    result = export_model(model, tmp_path / "tv.onnx", fmt="onnx", input_shape=(3, 64, 64))
    assert result.max_rank == 4 and result.parity.ok()


def test_export_refuses_existing_and_bad_requests(trained, tmp_path) -> None:
    (tmp_path / "m.bin").write_bytes(b"precious")
    with pytest.raises(UserInputError, match="m.bin already exist"):
        export_model(trained, tmp_path / "m.xml", fmt="openvino", input_shape=(1, 28, 28))
    assert (tmp_path / "m.bin").read_bytes() == b"precious"
    with pytest.raises(UserInputError, match="unknown export format"):
        export_model(trained, tmp_path / "m.tflite", fmt="tflite", input_shape=(1, 28, 28))
    with pytest.raises(UserInputError, match="writes a .onnx file"):
        export_model(trained, tmp_path / "m.xml", fmt="onnx", input_shape=(1, 28, 28))
    with pytest.raises(UserInputError, match="onnx export supports --precision fp32, int8; for bf16 choose openvino or torchscript or pt2"):
        export_model(trained, tmp_path / "m.onnx", fmt="onnx", input_shape=(1, 28, 28), precision="bf16")


def test_a_failed_check_or_converter_leaves_nothing(trained, tmp_path, monkeypatch) -> None:
    def broken(model, example, path, dynamic):
        path.write_bytes(b"half a file")
        raise RuntimeError("converter crashed")

    monkeypatch.setitem(export_mod._WRITERS, "torchscript", broken)
    with pytest.raises(ShuffleNetError, match="torchscript export failed: converter crashed"):
        export_model(trained, tmp_path / "m.pt", fmt="torchscript", input_shape=(1, 28, 28))
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    other = create_model("shufflenet_v2_x0_5", small_input=True, in_chans=1, num_classes=10).eval()
    with pytest.raises(ShuffleNetError, match="differs from PyTorch .* nothing was written"):
        export_model(trained, tmp_path / "m.pt", fmt="torchscript", input_shape=(1, 28, 28), reference=other)
    assert list(tmp_path.iterdir()) == []


def test_missing_runtime_names_the_extra(monkeypatch) -> None:
    import builtins

    real = builtins.__import__

    def no_ncnn(name, *args, **kwargs):
        if name == "ncnn":
            raise ImportError("No module named 'ncnn'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ncnn)
    monkeypatch.delitem(__import__("sys").modules, "ncnn", raising=False)
    with pytest.raises(MissingRuntimeError, match=r"needs the 'ncnn' package.*pip install 'shufflenet\[ncnn\]'"):
        require("ncnn", "ncnn export")


def test_ncnn_param_names(tmp_path) -> None:
    param = tmp_path / "m.param"
    param.write_text("7767517\n3 3\nInput in0 0 1 in0\nConvolution conv_0 1 1 in0 1 0=8\n"
                     "InnerProduct fc 1 1 1 out0 0=10\n")
    assert _ncnn_io_names(param) == ("in0", "out0")


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_export_onnx_prints_parity_and_ops(tmp_path, capsys) -> None:
    out = tmp_path / "fm.onnx"
    summary = tmp_path / "export.json"
    code, text, err = _cli(["--quiet", "export", "shufflenet_v2_x0_5", *FM_ARGS, "--weights", SHIPPED_05,
                            "--format", "onnx", "--optimize", "--out", str(out), "--summary", str(summary)], capsys)
    assert code == 0, err
    assert "parity in onnxruntime" in text and "Fashion-MNIST test images" in text and "Concat" in text
    data = json.loads(summary.read_text())
    assert data["parity_ok"] and data["max_rank"] == 4 and data["parity"]["count"] == 64
    code, _, err = _cli(["export", "shufflenet_v2_x0_5", *FM_ARGS, "--weights", SHIPPED_05, "--format", "onnx",
                         "--out", str(out)], capsys)
    assert code == 2 and "already exist" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, message", [
    (["shufflenet_v2_x1_0", *FM_ARGS, "--weights", SHIPPED_05],
     "holds weights of shufflenet_v2_x0_5 (its metadata), not shufflenet_v2_x1_0"),
    (["shufflenet_v2_x0_5", *FM_ARGS, "--weights", "shipped:nope"], "no shipped checkpoint 'shipped:nope'"),
    (["shufflenet_v2_x0_5", *FM_ARGS, "--weights", "missing.pt"], "checkpoint not found"),
    (["shufflenet_v2_x0_5", "--format", "tflite"], "invalid choice: 'tflite'"),
])
def test_cli_export_bad_input_is_one_line_exit_2(argv, message, tmp_path, capsys) -> None:
    if "--format" not in argv:
        argv = [*argv, "--format", "onnx"]
    os.chdir(tmp_path)
    code, _, err = _cli(["export", *argv], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert list(Path(tmp_path).iterdir()) == []


def test_cli_export_names_the_width_of_unlabelled_weights(tmp_path, capsys) -> None:
    model = create_model("shufflenet_v2_x1_0", small_input=True, in_chans=1, num_classes=10)
    path = tmp_path / "w.pt"
    torch.save(model.state_dict(), path)
    code, _, err = _cli(["export", "shufflenet_v2_x0_5", *FM_ARGS, "--weights", str(path), "--format", "onnx",
                         "--out", str(tmp_path / "m.onnx")], capsys)
    assert code == 2 and "holds weights of shufflenet_v2_x1_0, not shufflenet_v2_x0_5" in err, err


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino", "ncnn"])
def test_bench_times_in_a_runtime(runtime, capsys, tmp_path) -> None:
    out = tmp_path / "b.json"
    code, _, err = _cli(["--quiet", "bench", "shufflenet_v2_x0_5", "--input", "3x64x64", "--runtime", runtime,
                         "--quick", "--min-run-time", "0.05", "--warmup", "1", "--out", str(out)], capsys)
    assert code == 0, err
    data = json.loads(out.read_text())
    meas = data["rows"][0]["measurement"]
    assert data["options"]["runtime"] == runtime and meas["runtime"] == runtime and meas["clock"] == "wall"
    assert meas["median_s"] > 0
    code, _, err = _cli(["bench", "shufflenet_v2_x0_5", "--runtime", runtime, "--channels-last"], capsys)
    assert code == 2 and "drop --device/--dtype/--channels-last/--compile" in err


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_int8_export_keeps_the_classes(fmt, trained, images, tmp_path) -> None:
    data = FashionMNIST(find_fashion_mnist(), "train")
    calibration = torch.stack([x for x, _ in data.__getitems__(list(range(0, 60000, 600)))])
    result = export_model(optimize(trained, channels_last=False), tmp_path / f"q{export_mod.SUFFIX[fmt]}", fmt=fmt,
                          input_shape=(1, 28, 28), check_inputs=images, reference=trained, precision="int8",
                          calibration=calibration, calibration_label="Fashion-MNIST training images")
    assert result.parity.top1_agreement >= export_mod.INT8_MIN_AGREEMENT
    assert 0 < result.parity.relative_error < export_mod.INT8_TOLERANCE  # int8 really changed the numbers
    quantized = {"onnx": "QuantizeLinear", "openvino": "FakeQuantize"}[fmt]
    assert result.op_histogram.get(quantized, 0) > 20
    assert any("calibrated on 100 Fashion-MNIST training images" in n for n in result.notes)
    with pytest.raises(UserInputError, match="needs calibration images"):
        export_model(trained, tmp_path / f"r{export_mod.SUFFIX[fmt]}", fmt=fmt, input_shape=(1, 28, 28),
                     precision="int8")


def test_guidelines_run_in_a_runtime(capsys) -> None:
    code, text, err = _cli(["--quiet", "guidelines", "g4", "--quick", "--runtime", "onnxruntime", "--rounds", "1",
                            "--min-run-time", "0.02"], capsys)
    assert code == 0, err
    assert "in onnxruntime (cpu, batch 1" in text and "G4" in text


def test_shipped_names_work_where_checkpoints_do(capsys, tmp_path) -> None:
    code, text, err = _cli(["--quiet", "models", "--shipped", "--format", "json"], capsys)
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(text)["checkpoints"]}
    assert rows[SHIPPED_05]["model"] == "shufflenet_v2_x0_5" and rows[SHIPPED_05]["dataset"] == "fashion-mnist"
    out = tmp_path / "e.json"
    code, _, err = _cli(["--quiet", "eval", SHIPPED_05, "--limit", "300", "--out", str(out)], capsys)
    assert code == 0, err
    result = json.loads(out.read_text())
    assert result["count"] == 300 and result["model"] == "shufflenet_v2_x0_5" and result["top1"] > 70


def test_cli_exports_a_users_own_model(tmp_path, capsys) -> None:
    src = tmp_path / "net.py"
    src.write_text("from torch import nn\n\ndef build(num_classes=10):\n    return nn.Sequential(nn.Conv2d(3, 8, 3, "
                   "padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), "
                   "nn.Linear(8, num_classes))\n")
    summary = tmp_path / "s.json"
    code, _, err = _cli(["--quiet", "export", f"{src}:build", "--format", "onnx", "--optimize", "--input", "3x32x32",
                         "--out", str(tmp_path / "net.onnx"), "--summary", str(summary)], capsys)
    assert code == 0, err
    data = json.loads(summary.read_text())
    assert data["parity_ok"] and data["deploy_steps"][0] == "BN folded into convolutions (1)"
    assert "BatchNormalization" not in data["op_histogram"] and data["input_shape"] == [3, 32, 32]
