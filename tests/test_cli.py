"""The `models` and `cost` subcommands, in process: outputs, formats and one-line errors with exit code 2."""

import json

import pytest

from shufflenet.cli.main import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_reprints_table5(capsys) -> None:
    code, out, err = run(capsys, "models", "shufflenet_v2_x*", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    t5 = {r["width"]: r for r in data["table5"]}
    assert [t5[w]["MFLOPs"] for w in ("0.5x", "1.0x", "1.5x", "2.0x")] == [40.5, 145.8, 299.0, 590.8]
    assert [t5[w]["paper MFLOPs"] for w in ("0.5x", "1.0x", "1.5x", "2.0x")] == [41, 146, 299, 591]
    assert [t5[w]["Mweights"] for w in ("0.5x", "1.0x", "1.5x", "2.0x")] == [1.36, 2.26, 3.48, 7.37]
    assert [m["name"] for m in data["models"]] == [f"shufflenet_v2_x{w}" for w in ("0_5", "1_0", "1_5", "2_0")]


def test_models_table_and_csv(capsys, tmp_path) -> None:
    code, out, _ = run(capsys, "models", "mobilenet_v1_*")
    assert code == 0 and "mobilenet_v1_x0_25" in out and "41" in out
    dest = tmp_path / "m.csv"
    assert run(capsys, "models", "shufflenet_v1_g3_*", "--format", "csv", "--out", str(dest))[0] == 0
    lines = dest.read_text().splitlines()
    assert lines[0].startswith("name,Mparams,MFLOPs,MMAC") and len(lines) == 6


def test_cost_json_totals(capsys) -> None:
    code, out, err = run(capsys, "cost", "shufflenet_v2_x1_0", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert round(data["flops"] / 1e6, 1) == 145.8
    assert data["mac"] > 0 and data["mac_bytes"] == 4 * data["mac"]
    assert data["unsupported_ops"] == {}
    assert sum(r["flops"] for r in data["layers"]) == data["flops"]


def test_cost_torchvision_with_model_args(capsys) -> None:
    code, out, err = run(capsys, "cost", "torchvision:mobilenet_v2", "-m", "width_mult=0.75",
                         "--input", "1x3x192x192", "--by", "stage", "--format", "csv")
    assert code == 0, err
    assert out.splitlines()[0].startswith("name,")


@pytest.mark.parametrize("argv,needle", [
    (["cost", "shufflenet_v2_x3_0"], "unknown model 'shufflenet_v2_x3_0'"),
    (["cost", "shufflenet_v2_x1_0", "--input", "3x224"], "malformed --input"),
    (["cost", "shufflenet_v2_x1_0", "--input", "1x3x224"], "expects 3 input channels, got 1"),  # CxHxW
    (["cost", "shufflenet_v2_x1_0", "--input", "axbxcxd"], "malformed --input"),
    (["cost", "torchvision:resnet18", "--input", "1x2x64x64"], "cannot run on input 1x2x64x64"),
    (["cost", "shufflenet_v2_x1_0", "--input", "1x3x16x16"], "at least 32x32"),
    (["cost", "shufflenet_v2_x1_0", "--input", "1x1x64x64"], "expects 3 input channels, got 1"),
    (["cost", "shufflenet_v1_g3_x1_0", "-m", "stage_out_channels=[24,100,200,400]"], "not divisible"),
    (["cost", "shufflenet_v2_x1_0", "--mode", "fast"], "invalid choice"),
    (["models", "nothing_like_this*"], "no model matches"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_one_line_exit_2(capsys, argv: list[str], needle: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_debug_shows_traceback(capsys) -> None:
    for argv in (["--debug", "cost", "nope"], ["cost", "nope", "--debug"]):
        code, _, err = run(capsys, *argv)
        assert code == 2  # --debug adds the traceback, it does not change the exit code
        assert "Traceback (most recent call last)" in err and "UnknownModelError" in err
        assert err.splitlines()[-1] == "shufflenet: error: unknown model 'nope'; see `shufflenet models` for the list"
