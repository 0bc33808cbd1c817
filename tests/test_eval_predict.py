"""``evaluate`` on a set with known answers, ``eval``/``predict`` on checkpoints, per-file prediction errors."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from shufflenet.cli.main import main
from shufflenet.train import EvalConfig, PredictConfig, TrainConfig, evaluate, predict, run_eval, train

pytestmark = pytest.mark.usefixtures("one_thread")


class _Logits(nn.Module):
    """The input *is* the logits (N x C), so the answers are known in advance."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_top1_top5_loss_and_confusion_on_a_known_set() -> None:
    c = 7
    logits = torch.full((6, c), -10.0)
    order = [[0, 1, 2, 3, 4, 5, 6]] * 6  # class i gets logit 6 - rank
    for row in range(6):
        for rank, cls in enumerate(order[row]):
            logits[row, cls] = 6.0 - rank
    # targets: rank 0 (top-1 hit), rank 1, rank 4 (top-5 hit), rank 5, rank 6 (misses), rank 0
    targets = torch.tensor([0, 1, 4, 5, 6, 0])
    loader = DataLoader(TensorDataset(logits, targets), batch_size=4)
    res = evaluate(_Logits(), loader, num_classes=c)
    assert res.count == 6
    assert res.top1 == pytest.approx(100 * 2 / 6)
    assert res.top5 == pytest.approx(100 * 4 / 6)
    expected = nn.functional.cross_entropy(logits, targets).item()
    assert res.loss == pytest.approx(expected, rel=1e-6)
    assert res.confusion is not None and res.confusion.shape == (c, c)
    assert res.confusion[:, 0].sum() == 6 and res.confusion[0, 0] == 2  # every prediction is class 0
    assert math.isclose(res.to_dict()["top1"], res.top1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(model="shufflenet_v2_x0_5", dataset="synthetic", image_size=16, synthetic_train=64,
                      synthetic_val=40, synthetic_chans=1, batch_size=16, epochs=1, workers=0, device="cpu",
                      lr=0.1, progress=False, verbose=False, output_dir=str(out))
    return train(cfg), out


def test_eval_checkpoint_writes_confusion_png(trained, tmp_path) -> None:
    result, out = trained
    png = tmp_path / "cm.png"
    report = run_eval(EvalConfig(checkpoint=str(out / "model.pt"), workers=0, progress=False, confusion_png=str(png)))
    assert report.dataset == "synthetic" and report.result.count == 40 and report.model == "shufflenet_v2_x0_5"
    assert report.result.top1 == pytest.approx(result.final["val_top1"])
    assert report.result.loss == pytest.approx(result.final["val_loss"], rel=1e-5)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sum(r["count"] for r in report.per_class_accuracy()) == 40


def test_eval_cli_json_and_limit(trained, capsys) -> None:
    _, out = trained
    code = main(["--quiet", "eval", str(out / "last.pt"), "--limit", "20", "--workers", "0", "--no-confusion",
                 "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)
    assert data["count"] == 20 and data["confusion_png"] is None and len(data["per_class"]) == 10
    assert 0.0 <= data["top1"] <= data["top5"] <= 100.0


def test_eval_state_dict_without_metadata_needs_model(trained, tmp_path, capsys) -> None:
    _, out = trained
    plain = tmp_path / "plain.pth"
    state = torch.load(out / "model.pt", weights_only=True)["state_dict"]
    torch.save(state, plain)
    code = main(["eval", str(plain), "--data", "synthetic"])
    err = capsys.readouterr().err
    assert code == 2 and "does not name its model; pass --model" in err
    code = main(["--quiet", "eval", str(plain), "--model", "shufflenet_v2_x0_5", "--small-input",
                 "--data", "synthetic", "--synthetic-chans", "1", "--image-size", "16", "--workers", "0",
                 "--no-confusion", "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["weights_format"] == "state_dict"  # in_chans/num_classes read off the weights


def _png(path, size=20, value=200) -> None:
    from PIL import Image

    img = Image.new("L", (size, size + 4), color=30)
    for x in range(size // 4, 3 * size // 4):
        for y in range(size // 4, 3 * size // 4):
            img.putpixel((x, y), value)
    img.save(path, format="PNG")


def test_predict_real_png_and_per_file_errors(trained, tmp_path) -> None:
    _, out = trained
    good, good2 = tmp_path / "shirt.png", tmp_path / "other.png"
    _png(good)
    _png(good2, value=90)
    text = tmp_path / "notes.png"
    text.write_text("this is not an image\n")
    truncated = tmp_path / "half.png"
    truncated.write_bytes(good.read_bytes()[:40])
    missing = tmp_path / "missing.jpg"
    cfg = PredictConfig(checkpoint=str(out / "model.pt"), images=[str(good), str(text), str(missing),
                                                                   str(truncated), str(good2)], topk=3)
    result = predict(cfg)
    ok = [p for p in result.predictions if p.ok]
    assert [p.path for p in ok] == [str(good), str(good2)]
    for p in ok:
        assert [t["rank"] for t in p.top] == [1, 2, 3]
        assert all(t["label"].startswith("class_") for t in p.top)  # names stored in the checkpoint
        probs = [t["prob"] for t in p.top]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0 + 1e-6
    errors = {p.path: p.error for p in result.failed}
    assert "not an image file" in errors[str(text)]
    assert errors[str(missing)] == "no such file"
    assert "unreadable image" in errors[str(truncated)] or "not an image" in errors[str(truncated)]


def test_predict_cli_exit_2_when_a_file_fails(trained, tmp_path, capsys) -> None:
    _, out = trained
    good = tmp_path / "a.png"
    _png(good)
    bad = tmp_path / "b.txt"
    bad.write_text("hello")
    code = main(["predict", "-c", str(out / "model.pt"), str(good), str(bad), "-k", "2", "--format", "csv"])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.out.splitlines()
    assert lines[0] == "file,rank,label,index,prob" and len(lines) == 3 and lines[1].startswith(str(good))
    assert captured.err.splitlines() == [f"shufflenet: error: {bad}: not an image file (unrecognised format)"]
    code = main(["predict", "-c", str(out / "model.pt"), str(good)])
    captured = capsys.readouterr()
    assert code == 0 and "class_" in captured.out and captured.err == ""


def test_imagefolder_train_eval_predict(tmp_path, capsys) -> None:
    """The ImageNet-layout path: official augmentation, resize/centre-crop evaluation, names from folders."""
    from PIL import Image

    root = tmp_path / "data"
    for split, n in (("train", 6), ("val", 2)):
        for cls, colour in (("cats", (200, 40, 40)), ("dogs", (40, 40, 200))):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (40 + i, 36), color=colour).save(d / f"{i}.png")
    code = main(["--quiet", "train", "shufflenet_v2_x0_5", "--data", "imagefolder", "--data-dir", str(root),
                 "--image-size", "32", "--batch-size", "4", "--epochs", "1", "--workers", "0",
                 "-o", str(tmp_path / "run"), "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)
    assert data["final"]["val_images"] == 4 and data["step"] == 3
    meta = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["meta"]
    assert meta["class_names"] == ["cats", "dogs"] and meta["preprocess"]["resize"] == 37
    assert meta["preprocess"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    code = main(["--quiet", "eval", str(tmp_path / "run" / "model.pt"), "--data-dir", str(root), "--workers", "0",
                 "--no-confusion", "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["count"] == 4
    result = predict(PredictConfig(checkpoint=str(tmp_path / "run" / "model.pt"),
                                   images=[str(root / "val" / "dogs" / "0.png")], topk=2))
    assert {t["label"] for t in result.predictions[0].top} == {"cats", "dogs"}


def test_predict_16_bit_png_is_rescaled_not_clipped(trained, tmp_path) -> None:
    import numpy as np
    from PIL import Image

    _, out = trained
    eight = tmp_path / "eight.png"
    _png(eight, value=200)
    sixteen = tmp_path / "sixteen.png"
    Image.fromarray(np.asarray(Image.open(eight)).astype(np.uint16) * 257).save(sixteen)
    assert Image.open(sixteen).mode.startswith("I")
    result = predict(PredictConfig(checkpoint=str(out / "model.pt"), images=[str(eight), str(sixteen)], topk=3))
    a, b = result.predictions
    assert a.ok and b.ok
    assert [t["index"] for t in a.top] == [t["index"] for t in b.top]
    for x, y in zip(a.top, b.top, strict=True):
        assert x["prob"] == pytest.approx(y["prob"], abs=1e-6)
