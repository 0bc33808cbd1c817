"""The report's Training section on a real tiny Fashion-MNIST run: the finding quotes the run's numbers, the
tables hold its epochs, the curves and the confusion matrix are real PNGs; no run is "unavailable", a bad
run directory is bad input in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from shufflenet.errors import UserInputError
from shufflenet.models import create_model
from shufflenet.models.weights import save_weights
from shufflenet.report.context import ReportContext, ReportOptions
from shufflenet.report.registry import SECTIONS
from shufflenet.report.section import SectionUnavailable
from shufflenet.report.sections import training
from shufflenet.train import TrainConfig, train
from shufflenet.train.data import DEBIAN_FASHION_MNIST
from shufflenet.train.runinfo import load_run

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.skipif(not (DEBIAN_FASHION_MNIST / "t10k-labels-idx1-ubyte.gz").exists(),
                                 reason="dataset-fashion-mnist is not installed")]

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("fm_run")
    try:
        train(TrainConfig(model="shufflenet_v2_x0_5", dataset="fashion-mnist", limit_train=128, limit_val=64,
                          batch_size=64, epochs=2, workers=0, device="cpu", deterministic=True,
                          progress=False, verbose=False, output_dir=str(out)))
    finally:
        torch.set_num_threads(n)
    return out


@pytest.fixture(scope="module")
def quick(run_dir):
    return training.run(ReportContext(ReportOptions(mode="quick", train_run=str(run_dir))))


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "run"
    shutil.copytree(run_dir, dest)
    return dest


def test_the_section_is_registered() -> None:
    s = SECTIONS["training"]
    assert s is training.SECTION and (s.title, s.order) == ("Training", 70)
    assert s.expected_seconds(ReportOptions()) < s.expected_seconds(ReportOptions(train_run="x", mode="full"))


def test_finding_and_tables_quote_the_run(run_dir, quick) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    top1 = summary["final"]["val_top1"]
    best = max(summary["history"], key=lambda h: h["val_top1"])
    f = quick.finding
    assert "30.6% top-1 error" not in f and "39.7% top-1 error (Table 8)" in f  # the 0.5x row of Table 8
    assert "shufflenet_v2_x0_5 on Fashion-MNIST, 2 epochs" in f
    assert f"{top1:.2f}% top-1 (best {best['val_top1']:.2f}% at epoch {best['epoch']})" in f
    assert f"{summary['images_per_s']:.0f} training images/s on 1 thread" in f
    tables = {t.key: t for t in quick.tables}
    assert [r["epoch"] for r in tables["train_history"].rows] == [1, 2]
    assert [r["val_top1"] for r in tables["train_history"].rows] == [h["val_top1"] for h in summary["history"]]
    acc = {r["item"]: r["value"] for r in tables["train_accuracy"].rows}
    assert acc["final val top-1"] == top1 and acc["best epoch"] == best["epoch"]
    config = {r["setting"]: r["run"] for r in tables["train_config"].rows}
    assert (config["batch size"], config["training images"], config["weight decay"]) == ("64", "128", "4e-05")
    assert config["epochs"] == "2 (4 iterations)"
    rows = tables["train_throughput"].rows
    assert rows[0]["images_per_s"] == summary["images_per_s"] and rows[0]["threads"] == 1
    assert rows[1]["images_per_s"] > 0 and rows[1]["threads"] == 1
    assert {"test_eval", "test_summary", "test_per_class"} <= set(tables)
    assert len(tables) == len({t.key for t in quick.tables})  # keys are unique within the section
    assert quick.claims == [] and quick.timings == []


def test_confusion_matrix_of_the_quick_subset(run_dir, quick) -> None:
    figs = {fig.key: fig for fig in quick.figures}
    assert set(figs) == {"curves", "confusion"}
    for fig in figs.values():
        png = fig.png()
        assert png.startswith(PNG) and len(png) > 1000
    ev = quick.data["evaluation"]
    assert ev["count"] == 2000 and ev["checkpoint"] == str(run_dir / "model.pt") and ev["split"] == "test"
    assert sum(map(sum, ev["confusion_matrix"])) == 2000
    assert len(ev["per_class"]) == 10 and ev["per_class"][9]["class"] == "Ankle boot"
    assert any("first 2000 of the 10000 test images" in n for n in quick.notes)
    assert quick.data["throughput"]["inference"]["images"] == 2000
    assert quick.data["summary"]["final"] == json.loads((run_dir / "summary.json").read_text())["final"]
    json.dumps(quick.data)


def test_full_mode_evaluates_the_whole_test_split(run_dir) -> None:
    out = training.run(ReportContext(ReportOptions(mode="full", train_run=str(run_dir))))
    assert out.data["evaluation"]["count"] == 10000
    assert not any("first 2000" in n for n in out.notes)


def test_missing_dataset_keeps_the_summary_and_says_why(run_dir, tmp_path) -> None:
    d = _copy(run_dir, tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    cfg["data_dir"], cfg["holdout"] = str(tmp_path / "no-such-data"), 32
    (d / "config.json").write_text(json.dumps(cfg))
    run = json.loads((d / "run.json").read_text())
    run["val_set"] = "32 training images held out of training"  # what a --holdout 32 run records
    (d / "run.json").write_text(json.dumps(run))
    out = training.run(ReportContext(ReportOptions(train_run=str(d))))
    assert [f.key for f in out.figures] == ["curves"] and out.data["evaluation"] is None
    assert any(n.startswith("no confusion matrix: data directory not found") for n in out.notes)
    assert any("val numbers are on 32 training images held out of training;" in n for n in out.notes)
    assert "2 epochs" in out.finding


def test_without_model_pt_the_checkpoint_is_evaluated(run_dir, tmp_path) -> None:
    d = _copy(run_dir, tmp_path)
    (d / "model.pt").unlink()
    out = training.run(ReportContext(ReportOptions(train_run=str(d))))
    assert out.data["evaluation"]["checkpoint"] == str(d / "last.pt")
    assert any("uses last.pt" in n for n in out.notes)


def test_an_unfinished_run_reads_from_its_metric_rows(run_dir, tmp_path) -> None:
    d = _copy(run_dir, tmp_path)
    summary = json.loads((d / "summary.json").read_text())
    (d / "summary.json").unlink()
    rec = load_run(d)
    assert rec.result.status == "unfinished" and rec.result.history == summary["history"]
    assert rec.result.final["val_top1"] == summary["history"][-1]["val_top1"]
    best = max(summary["history"], key=lambda h: h["val_top1"])
    assert rec.best_epoch() == (best["epoch"], best["val_top1"], "val_top1")
    assert abs(rec.result.images_per_s - summary["images_per_s"]) < 1.0  # per-epoch rates, time-weighted
    out = training.run(ReportContext(ReportOptions(train_run=str(d))))
    assert f"{summary['history'][-1]['val_top1']:.2f}% top-1" in out.finding
    assert any(n.startswith("the run is unfinished") for n in out.notes)
    (d / "metrics.jsonl").unlink()  # the CSV alone holds the same rows
    assert load_run(d).result.history == summary["history"]


def test_no_run_and_no_shipped_checkpoint_is_unavailable(monkeypatch, tmp_path) -> None:
    ctx = ReportContext(ReportOptions())
    monkeypatch.setattr(training, "shipped_checkpoints", lambda: [])
    with pytest.raises(SectionUnavailable, match=r"pass --train-run DIR .*no trained checkpoint ships"):
        training.run(ctx)
    bare = tmp_path / "fm_x1_0.safetensors"
    save_weights(create_model("shufflenet_v2_x0_5", num_classes=10), bare, meta={"model": "shufflenet_v2_x0_5"})
    monkeypatch.setattr(training, "shipped_checkpoints", lambda: [bare])
    with pytest.raises(SectionUnavailable, match="carries no training record in its metadata"):
        training.run(ctx)


def test_without_a_run_the_shipped_checkpoint_is_shown() -> None:
    from shufflenet.models.shipped import shipped_checkpoints

    out = training.run(ReportContext(ReportOptions()))
    shipped = {c.name: c for c in shipped_checkpoints()}
    name = "fashion_mnist-shufflenet_v2_x1_0" if "fashion_mnist-shufflenet_v2_x1_0" in shipped \
        else "fashion_mnist-shufflenet_v2_x0_5"
    meta = shipped[name].meta
    assert any(f"shipped:{name}" in n for n in out.notes)
    assert f"{meta['training']['final']['val_top1']:.2f}% top-1" in out.finding
    assert f"{meta['training']['epochs']} epochs" in out.finding
    test = out.data["evaluation"]
    assert test["count"] == training.QUICK_TEST_IMAGES and 80 < test["top1"] <= 100


def test_shipped_checkpoints_are_found_in_the_package(monkeypatch, tmp_path) -> None:
    from importlib import resources

    (tmp_path / "weights").mkdir()
    for name in ("b.safetensors", "a.safetensors", "notes.txt"):
        (tmp_path / "weights" / name).write_bytes(b"x")
    monkeypatch.setattr(resources, "files", lambda package: tmp_path)
    assert [p.name for p in training.shipped_checkpoints()] == ["a.safetensors", "b.safetensors"]


@pytest.mark.parametrize("case, message", [
    ("missing", "training run directory not found"),
    ("file", "is a file, not a training run directory"),
    ("empty", "not a training run directory (no summary.json"),
    ("summary not json", "summary.json: not JSON (Expecting"),
    ("summary a list", "summary.json: holds a JSON list"),
    ("summary without history", "summary.json: not a training summary"),
    ("config not json", "config.json: not JSON"),
    ("metrics not json", "metrics.jsonl: line 2 is not JSON"),
])
def test_a_bad_run_directory_is_bad_input_in_one_line(run_dir, tmp_path, case, message) -> None:
    d = tmp_path / "run"
    if case == "file":
        d = _copy(run_dir, tmp_path) / "model.pt"
    elif case == "empty":
        d.mkdir()
        (d / "metrics.csv").write_text("epoch,step\n")  # a header alone is no epoch
    elif case != "missing":
        d = _copy(run_dir, tmp_path)
        if case.startswith("metrics"):
            (d / "summary.json").unlink()
            (d / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2,\n')
        else:
            name = "config.json" if case.startswith("config") else "summary.json"
            text = {"summary not json": "{not json", "summary a list": "[1, 2]", "config not json": "",
                    "summary without history": '{"model_name": "m", "epochs": 1}'}[case]
            (d / name).write_text(text)
    with pytest.raises(UserInputError) as info:
        training.check_train_run(d)
    assert message in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(UserInputError, match="run directory|JSON|summary"):
        training.run(ReportContext(ReportOptions(train_run=str(d))))
