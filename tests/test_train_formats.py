"""``train``, ``eval`` and ``predict`` follow the result contract: every ``--format`` (table, json, csv, md,
html) and ``--out`` by extension, the same numbers in each, figures embedded in HTML."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import torch

from shufflenet.cli.main import main
from shufflenet.errors import ClassNamesMismatchError, UserInputError
from shufflenet.render import render
from shufflenet.result import Result
from shufflenet.train import EvalConfig, PredictConfig, Predictions, TrainConfig, predict, run_eval, train

pytestmark = pytest.mark.usefixtures("one_thread")

FORMATS = ("table", "json", "csv", "md", "html")
TINY = ["--data", "synthetic", "--image-size", "16", "--synthetic-train", "64", "--synthetic-val", "40",
        "--synthetic-chans", "1", "--batch-size", "16", "--workers", "0", "--device", "cpu", "--lr", "0.1",
        "--deterministic"]


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["--quiet", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("run")
    train(TrainConfig(model="shufflenet_v2_x0_5", dataset="synthetic", image_size=16, synthetic_train=64,
                      synthetic_val=40, synthetic_chans=1, batch_size=16, epochs=1, workers=0, device="cpu",
                      lr=0.1, progress=False, verbose=False, output_dir=str(out)))
    return out


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    from PIL import Image

    d = tmp_path_factory.mktemp("img")
    paths = []
    for name, value in (("a.png", 200), ("b.png", 90)):
        img = Image.new("L", (20, 24), color=30)
        img.paste(value, (5, 5, 15, 15))
        img.save(d / name)
        paths.append(d / name)
    return paths


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# --------------------------------------------------------------------------------------------- eval

def test_eval_in_every_format(run_dir, capsys, tmp_path) -> None:
    outs = {}
    for fmt in FORMATS:
        png = tmp_path / f"cm_{fmt}.png"
        code, out, err = cli(capsys, "eval", str(run_dir / "model.pt"), "--workers", "0", "--confusion", str(png),
                             "--format", fmt)
        assert code == 0, err
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # --confusion PATH still written, in every format
        outs[fmt] = out
    data = json.loads(outs["json"])
    top1 = data["top1"]
    assert data["count"] == 40 and len(data["per_class"]) == 10 and len(data["confusion_matrix"]) == 10
    for key in ("checkpoint", "model", "dataset", "split", "loss", "top1", "top5", "count", "num_classes",
                "weights_format", "input_convention", "confusion_png"):
        assert key in data
    (row,) = _csv(outs["csv"])
    assert outs["csv"].splitlines()[0] == ("checkpoint,model,dataset,split,loss,top1,top5,count,num_classes,"
                                           "weights_format,input_convention,confusion_png")
    assert float(row["top1"]) == pytest.approx(top1) and float(row["loss"]) == pytest.approx(data["loss"])
    assert f"{top1:.2f}" in outs["table"] and "top-1 (%)" in outs["table"] and "per class" in outs["table"]
    md = outs["md"]
    assert "| top-1 (%) |" in md.replace("| top-5 (%) |", "")  # headers with units
    assert any(line.startswith("| ") and f"| {top1:.2f} |" in line for line in md.splitlines())
    assert "data:image/png;base64," not in md  # Markdown on stdout links no figure
    html = outs["html"]
    assert html.count("data:image/png;base64,") == 1 and f">{top1:.2f}</td>" in html  # the confusion matrix
    assert "confusion matrix" in html


def test_eval_out_md_writes_the_confusion_png_beside_it(run_dir, capsys, tmp_path) -> None:
    out = tmp_path / "eval.md"
    code, stdout, err = cli(capsys, "eval", str(run_dir / "model.pt"), "--workers", "0", "--no-confusion",
                            "--out", str(out))
    assert code == 0 and stdout == "", err
    text = out.read_text()
    assert "](<eval_confusion.png>)" in text and "*environment: " in text
    assert (tmp_path / "eval_confusion.png").read_bytes()[:4] == b"\x89PNG"
    page = tmp_path / "eval.html"
    assert cli(capsys, "eval", str(run_dir / "model.pt"), "--workers", "0", "--no-confusion", "--out",
               str(page))[0] == 0
    assert page.read_text().startswith("<!doctype html>") and "data:image/png;base64," in page.read_text()


def test_eval_report_is_a_result(run_dir) -> None:
    report = run_eval(EvalConfig(checkpoint=str(run_dir / "model.pt"), workers=0, progress=False,
                                 confusion_png=None))
    assert isinstance(report, Result) and isinstance(report.result, Result)
    json.dumps(report.to_dict(), allow_nan=False)
    assert [t.key for t in report.tables()] == ["eval", "summary", "per_class"]
    assert [t.display for t in report.tables()] == [False, True, True]  # the wide CSV row is not shown
    assert [f.key for f in report.figures()] == ["confusion"] and report.figures()[0].png()[:4] == b"\x89PNG"
    assert report.confusion_png is None and any("cross-entropy" in c for c in report.conventions())
    inner = report.result
    assert render(inner, "csv").splitlines()[0] == "loss,top1,top5,count,num_classes"
    assert [f.key for f in inner.figures()] == ["confusion"]


# ------------------------------------------------------------------------------------------ predict

def test_predict_in_every_format(run_dir, images, capsys) -> None:
    outs = {}
    for fmt in FORMATS:
        code, out, err = cli(capsys, "predict", "-c", str(run_dir / "model.pt"), *map(str, images), "-k", "3",
                             "--format", fmt)
        assert code == 0, err
        outs[fmt] = out
    data = json.loads(outs["json"])
    assert set(data) >= {"checkpoint", "model", "input_convention", "predictions", "errors"}
    first = data["predictions"][0]["top"][0]
    rows = _csv(outs["csv"])
    assert outs["csv"].splitlines()[0] == "file,rank,label,index,prob" and len(rows) == 6
    assert rows[0]["label"] == first["label"] and float(rows[0]["prob"]) == pytest.approx(first["prob"])
    pct = f"{100 * first['prob']:.2f}%"
    for fmt in ("table", "md", "html"):
        assert pct in outs[fmt] and first["label"] in outs[fmt], fmt
    assert outs["md"].count("\n| ") >= 7 and "<table>" in outs["html"]


def test_predict_lists_failed_files_in_the_result_and_on_stderr(run_dir, images, tmp_path, capsys) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("hello")
    code, out, err = cli(capsys, "predict", "-c", str(run_dir / "model.pt"), str(images[0]), str(bad),
                         "--format", "md")
    assert code == 2 and f"not predicted: {bad}: not an image file" in out
    assert err == f"shufflenet: error: {bad}: not an image file (unrecognised format)\n"


def test_predict_refuses_class_names_of_the_wrong_length(run_dir, images) -> None:
    cfg = PredictConfig(checkpoint=str(run_dir / "model.pt"), images=[str(images[0])], class_names=["a", "b"])
    with pytest.raises(ClassNamesMismatchError, match="class_names has 2 names but the model has 10 outputs") as info:
        predict(cfg)
    assert isinstance(info.value, UserInputError)
    names = [f"n{i}" for i in range(10)]
    result = predict(PredictConfig(checkpoint=str(run_dir / "model.pt"), images=[str(images[0])],
                                   class_names=names, topk=2))
    assert isinstance(result, Predictions) and isinstance(result, Result)
    assert {t["label"] for t in result.predictions[0].top} <= set(names)


# -------------------------------------------------------------------------------------------- train

def test_train_in_every_format(capsys, tmp_path) -> None:
    outs = {}
    for fmt in FORMATS:
        code, out, err = cli(capsys, "train", "shufflenet_v2_x0_5", *TINY, "--epochs", "2", "-o",
                             str(tmp_path / fmt), "--format", fmt)
        assert code == 0, err
        outs[fmt] = out
    data = json.loads(outs["json"])
    for key in ("status", "output_dir", "model_name", "epochs", "step", "total_steps", "world_size", "final",
                "history", "wall_time_s", "train_time_s", "images_per_s", "checkpoint", "weights"):
        assert key in data
    val_top1 = data["final"]["val_top1"]
    last_epoch_top1 = data["history"][-1]["val_top1"]
    lines = outs["csv"].splitlines()
    assert lines[0] == ("epoch,step,lr,train_loss,train_top1,val_loss,val_top1,val_top5,epoch_time_s,"
                        "images_per_s,elapsed_s,threads,world_size")
    rows = _csv(outs["csv"])
    assert [r["epoch"] for r in rows] == ["1", "2"] and float(rows[-1]["val_top1"]) == pytest.approx(last_epoch_top1)
    # --deterministic on CPU: every format's run trained the same weights
    assert f"{val_top1:.2f}" in outs["table"] and "metrics per epoch" in outs["table"]
    assert f"| val_top1 | {val_top1:.2f} |" in outs["md"] and "| val top-1 (%) |" in outs["md"]
    html = outs["html"]
    assert html.count("data:image/png;base64,") == 1 and "loss and top-1 per epoch" in html  # the curves
    assert f"<td>{val_top1:.2f}</td>" in html


def test_train_csv_with_evaluation_only_at_the_end(capsys, tmp_path) -> None:
    """Epochs without evaluation have no val_* keys: the CSV still has the columns (empty there)."""
    code, out, err = cli(capsys, "train", "shufflenet_v2_x0_5", *TINY, "--epochs", "2", "--eval-every", "0",
                         "--no-bn-recalibrate", "-o", str(tmp_path / "run"), "--format", "csv")
    assert code == 0, err
    rows = _csv(out)
    assert rows[0]["val_top1"] == "" and rows[1]["val_top1"] != ""
    assert out.splitlines()[0].startswith("epoch,step,lr,train_loss,train_top1,val_loss,val_top1")


def test_train_result_contract_and_run_environment(capsys, tmp_path) -> None:
    result = train(TrainConfig(model="shufflenet_v2_x0_5", dataset="synthetic", image_size=16, synthetic_train=32,
                               synthetic_val=16, synthetic_chans=1, batch_size=16, epochs=1, workers=0,
                               device="cpu", progress=False, verbose=False, bn_recalibrate=False,
                               output_dir=str(tmp_path / "run")))
    assert isinstance(result, Result)
    json.dumps(result.to_dict(), allow_nan=False)
    assert [t.key for t in result.tables()] == ["history", "summary"]
    assert [f.key for f in result.figures()] == ["curves"] and result.figures()[0].png()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "run" / "summary.json").read_text()) == result.to_dict()
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    for key in ("device", "device_name", "torch", "python", "threads", "cpu_model", "per_rank_batch"):
        assert key in info  # the run's settings, then shufflenet.environment's record
    assert info["device_name"] == info["cpu_model"] and info["batch"] == 16


def test_figures_use_no_pyplot() -> None:
    """Figures draw on the Figure the renderer gives (object-oriented Agg): no pyplot, no backend switch."""
    root = Path(__file__).parents[1] / "src" / "shufflenet" / "train"
    for path in root.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "pyplot" not in text and "matplotlib.use" not in text, path


def test_fashion_mnist_benchmark_renders_through_the_package_renderer(tmp_path) -> None:
    import importlib.util

    path = Path(__file__).parents[1] / "benchmarks" / "train_fashion_mnist.py"
    spec = importlib.util.spec_from_file_location("train_fashion_mnist_formats", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    recipe = {"epochs": 1, "augmentation": "random crop"}
    results = {"environment": {"device": "cpu"},
               "accuracy": {"recipe": recipe, "rows": [
                   {"model": "shufflenet_v2_x0_5", "status": "finished", "MFLOPs@28": 9.04, "test_top1": 91.234,
                    "target_top1": 94.0, "threads_at_last_start": 2, "speed_segments": [{"epochs": "1-1"}]}]},
               "throughput": [{"model": "ours", "input": "2x3x64x64", "train_images_per_s": 57.3,
                               "vs_torchvision": 1.09, "spread_images_per_s": [57.0, 58.0]}]}
    result = bench.FashionMnistResult(results, None)
    text = render(result, "table")
    assert "91.23" in text and "2 at last start" in text and "test top-1 (%)" in text and "1.090" in text
    assert json.loads(render(result, "json")) == results
    flat = _csv(render(result.flat(), "csv"))
    assert [r["part"] for r in flat] == ["accuracy", "throughput"] and "speed_segments" not in flat[0]
    assert flat[0]["test_top1"] == "91.234" and "spread_images_per_s" not in flat[1]
