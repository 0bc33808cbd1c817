"""Checkpoints: exact resumption (bitwise on CPU), safe and atomic files, clear errors for bad ones."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from shufflenet import create_model, load_weights
from shufflenet.cli.main import main
from shufflenet.errors import UserInputError, WeightsError
from shufflenet.train import TrainConfig, train
from shufflenet.train.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from shufflenet.train.rundir import OutputWriteError

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(out, **kw) -> TrainConfig:
    base = dict(model="shufflenet_v2_x0_5", dataset="synthetic", image_size=16, synthetic_train=72,
                synthetic_val=24, batch_size=16, epochs=2, workers=0, device="cpu", progress=False, verbose=False,
                deterministic=True, output_dir=str(out))
    base.update(kw)
    return TrainConfig(**base)


def _timeless(history):
    return [{k: v for k, v in row.items() if not k.endswith("_s")} for row in history]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("full")
    return train(tiny(out, ema_decay=0.9, lr=0.2)), out


@pytest.mark.parametrize("stop", [6, 4])  # mid-epoch 2 (4 steps per epoch), and exactly at an epoch end
def test_resume_mid_epoch_is_bitwise_identical(tmp_path, uninterrupted, stop) -> None:
    full, full_out = uninterrupted
    stopped = train(tiny(tmp_path, ema_decay=0.9, lr=0.2, stop_after_steps=stop))
    assert stopped.status == "stopped" and stopped.step == stop and stopped.weights is None
    # a different number of loader workers after the restart: augmentation is seeded per sample
    resumed = train(tiny(tmp_path, ema_decay=0.9, lr=0.2, workers=2, resume=str(tmp_path / "last.pt")))
    assert resumed.status == "finished" and resumed.step == full.step == 8
    a = torch.load(full_out / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "model.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:5]
    ca = torch.load(full_out / "last.pt", weights_only=True)
    cb = torch.load(tmp_path / "last.pt", weights_only=True)
    assert all(torch.equal(ca["state_dict"][k], cb["state_dict"][k]) for k in ca["state_dict"])
    assert _timeless(full.history) == _timeless(resumed.history)
    assert full.final == resumed.final
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]


def test_checkpoint_is_plain_data_and_readable_by_load_weights(uninterrupted) -> None:
    _, out = uninterrupted
    ck = torch.load(out / "last.pt", weights_only=True)  # no code runs on loading
    tr = ck["train"]
    assert ck["format"] == "shufflenet" and tr["finished"] and tr["step"] == 8
    assert set(tr["rng"][0]) >= {"torch", "numpy", "python", "loader"}
    assert ck["meta"]["class_names"][:2] == ["class_0", "class_1"] and ck["meta"]["config"]["epochs"] == 2
    assert tr["optimizer"]["param_groups"][0]["weight_decay"] == 4e-5
    model = create_model("shufflenet_v2_x0_5", num_classes=10, small_input=True)
    info = load_weights(model, out / "model.pt")
    assert info.format == "shufflenet" and info.meta["model"] == "shufflenet_v2_x0_5"
    assert "synthetic" in info.input_convention
    load_weights(model, out / "last.pt")  # the training checkpoint holds the weights too


def test_rng_state_round_trip() -> None:
    import random

    import numpy as np

    gen = torch.Generator().manual_seed(3)
    state = capture_rng(gen)
    a = (torch.rand(3), np.random.rand(), random.random(), torch.rand(2, generator=gen))
    restore_rng(state, gen)
    b = (torch.rand(3), np.random.rand(), random.random(), torch.rand(2, generator=gen))
    assert torch.equal(a[0], b[0]) and a[1] == b[1] and a[2] == b[2] and torch.equal(a[3], b[3])


def test_truncated_and_corrupted_checkpoints_give_clear_errors(tmp_path, uninterrupted, capsys) -> None:
    _, out = uninterrupted
    data = (out / "last.pt").read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    corrupted = tmp_path / "corrupted.pt"
    mid = len(data) // 3
    corrupted.write_bytes(data[:mid] + bytes(b ^ 0xFF for b in data[mid: mid + 4096]) + data[mid + 4096:])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    for bad in (truncated, corrupted, garbage):
        with pytest.raises(WeightsError, match="truncated or corrupted|not a readable"):
            load_checkpoint(bad)
        with pytest.raises(WeightsError):
            train(tiny(tmp_path / "r", resume=str(bad)))
    code = main(["--quiet", "train", "--resume", str(truncated)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "truncated or corrupted" in err
    code = main(["eval", str(truncated)])
    err = capsys.readouterr().err
    assert code == 1 and "truncated or corrupted" in err


def test_weights_only_file_cannot_be_resumed(uninterrupted, tmp_path) -> None:
    _, out = uninterrupted
    with pytest.raises(WeightsError, match="weights only"):
        load_checkpoint(out / "model.pt")


def test_resume_refuses_a_different_model_or_batch(uninterrupted, tmp_path) -> None:
    _, out = uninterrupted
    with pytest.raises(UserInputError, match="batch_size: 16 -> 32"):
        train(tiny(tmp_path, batch_size=32, resume=str(out / "last.pt")))


def test_resume_of_a_finished_run_does_nothing(uninterrupted, tmp_path) -> None:
    full, out = uninterrupted
    shutil.copy(out / "last.pt", tmp_path / "last.pt")
    again = train(tiny(tmp_path, ema_decay=0.9, lr=0.2, resume="auto"))
    assert again.status == "finished" and again.step == 8 and again.final == full.final


def test_save_is_atomic(tmp_path, monkeypatch) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"state_dict": {"w": torch.ones(2)}, "meta": {}, "train": {"optimizer": {}}})
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OutputWriteError, match="cannot write .*last.pt: disk full; the previous checkpoint is intact"):
        save_checkpoint(path, {"state_dict": {"w": torch.zeros(2)}})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


def test_cli_resume_uses_the_checkpoint_settings(tmp_path, capsys) -> None:
    args = ["--quiet", "train", "shufflenet_v2_x0_5", "--data", "synthetic", "--image-size", "16",
            "--synthetic-train", "48", "--synthetic-val", "16", "--batch-size", "16", "--epochs", "2",
            "--workers", "0", "--no-bn-recalibrate", "-o", str(tmp_path), "--stop-after-steps", "2"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["--quiet", "train", "--resume", str(tmp_path / "last.pt"), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "finished" and data["step"] == 6 and data["epochs"] == 2
