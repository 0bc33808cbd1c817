"""Never lose a run or its results, and no raw exceptions: run directories (a new one per run, refusing to
overwrite, locked), Ctrl-C/SIGTERM with a resumable checkpoint, finished runs, typed config files, a full
disk, and settings that cannot work.

Tiny runs (ShuffleNet V2 0.5x, 16 px synthetic images, one torch thread); subprocesses where the behaviour
under test is that of a real process (a lock held by another process, a signal).
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from shufflenet.cli.main import main
from shufflenet.errors import ShuffleNetError, UserInputError
from shufflenet.train import TrainConfig, resolve_config, train
from shufflenet.train.checkpoint import save_checkpoint
from shufflenet.train.rundir import (
    DiskFullError,
    OutputWriteError,
    RunDirectoryError,
    RunInUseError,
    RunLock,
    check_run_dir,
    default_output_dir,
)

pytestmark = pytest.mark.usefixtures("one_thread")

# 96 images at batch 16: 6 steps per epoch, 12 in all
CLI_RUN = ["shufflenet_v2_x0_5", "--data", "synthetic", "--image-size", "16", "--synthetic-train", "96",
           "--synthetic-val", "24", "--batch-size", "16", "--epochs", "2", "--device", "cpu", "--deterministic",
           "--lr", "0.2", "--no-tensorboard"]


def tiny(out, **kw) -> TrainConfig:
    base = dict(model="shufflenet_v2_x0_5", dataset="synthetic", image_size=16, synthetic_train=48, synthetic_val=16,
                batch_size=16, epochs=1, workers=0, device="cpu", progress=False, verbose=False,
                bn_recalibrate_steps=1, tensorboard=False, output_dir=None if out is None else str(out))
    base.update(kw)
    return TrainConfig(**base)


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(k, None)
    return env


def _state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished 1-epoch run (3 steps)."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("finished")
    return train(tiny(out)), out


# ------------------------------------------------------------------------------- run directories

def test_a_fresh_start_never_overwrites_a_run(finished, capsys) -> None:
    _, out = finished
    before = {n: (out / n).read_bytes() for n in ("model.pt", "last.pt", "metrics.csv", "config.json")}
    with pytest.raises(RunDirectoryError, match=r"already holds a run \(last.pt, model.pt.*--resume"):
        train(tiny(out, lr=0.3))
    code, _, err = run_cli(capsys, "--quiet", "train", "--data", "synthetic", "-o", str(out))
    assert code == 2 and err.count("\n") == 1
    assert f"continue it with `shufflenet train --resume {out / 'last.pt'}`" in err and "another -o DIR" in err
    assert {n: (out / n).read_bytes() for n in before} == before


def test_without_output_dir_each_run_gets_a_new_directory(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    a = train(tiny(None, synthetic_train=32))
    b = train(tiny(None, synthetic_train=32))
    assert a.output_dir != b.output_dir
    for r in (a, b):
        assert re.fullmatch(r"runs/train/\d{8}-\d{6}-shufflenet_v2_x0_5(-2)?", r.output_dir), r.output_dir
        assert (tmp_path / r.output_dir / "model.pt").is_file()
        assert json.loads((tmp_path / r.output_dir / "config.json").read_text())["output_dir"] == r.output_dir
    # the CLI names it, and `--resume DIR/last.pt` continues it there
    code, out, _ = run_cli(capsys, "--quiet", "train", "--resume", f"{a.output_dir}/last.pt", "--format", "json")
    assert code == 0 and json.loads(out)["output_dir"] == a.output_dir
    # the same second and model: a suffix, never the same directory
    stamp = time.time()
    first, second = default_output_dir("torchvision:mobilenet_v2", "r", now=stamp), default_output_dir(
        "torchvision:mobilenet_v2", "r", now=stamp)
    assert first.name.endswith("-torchvision_mobilenet_v2") and second.name == first.name + "-2"


def test_a_run_that_fails_at_the_start_leaves_no_empty_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserInputError, match="data directory not found"):
        train(tiny(None, dataset="imagefolder", data_dir=str(tmp_path / "missing")))
    assert list((tmp_path / "runs" / "train").iterdir()) == []
    with pytest.raises(UserInputError, match="data directory not found"):  # nor a new -o DIR
        train(tiny(tmp_path / "new", dataset="imagefolder", data_dir=str(tmp_path / "missing")))
    assert not (tmp_path / "new").exists()


def test_which_directories_may_be_written(tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    (run / "metrics.csv").write_text("epoch,step\n")
    check_run_dir(run, None)  # started, but nothing saved yet (no checkpoint, no metric rows): reusable
    (run / "metrics.jsonl").write_text('{"epoch": 1}\n')
    with pytest.raises(RunDirectoryError, match=r"holds a run's results \(metrics.jsonl\)"):
        check_run_dir(run, None)
    (run / "last.pt").write_bytes(b"x")
    check_run_dir(run, run / "last.pt")  # resuming the run it holds
    other = tmp_path / "other" / "last.pt"
    with pytest.raises(RunDirectoryError, match="holds another run"):
        check_run_dir(run, other)
    check_run_dir(tmp_path / "empty", other)  # resuming another run into a new directory


def test_resume_auto_needs_the_run_directory(capsys) -> None:
    with pytest.raises(UserInputError, match="needs output_dir"):
        TrainConfig(resume="auto").validate()
    code, _, err = run_cli(capsys, "train", "--resume")
    assert code == 2 and err.count("\n") == 1 and "needs -o DIR" in err


# ------------------------------------------------------------------------------------------ lock

def test_a_second_process_into_a_locked_directory_is_refused(tmp_path) -> None:
    with RunLock(tmp_path) as lock:
        assert f"{os.getpid()} on " in lock.path.read_text()
        with pytest.raises(RunInUseError, match=f"in use: process {os.getpid()} on "):
            RunLock(tmp_path).acquire()  # another open file description: flock refuses it too
        proc = subprocess.run([sys.executable, "-m", "shufflenet.cli.main", "--quiet", "train", *CLI_RUN,
                               "--workers", "0", "-o", str(tmp_path)],
                              env=_env(), capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and f"is in use: process {os.getpid()} on " in proc.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == [".lock"]  # it wrote nothing
    RunLock(tmp_path).acquire().release()  # released with the first holder


# ----------------------------------------------------------------------------- signals (Ctrl-C)

BLOCKER = textwrap.dedent('''
    """Run `shufflenet ARGS...`, blocking in the training forward of step STEP until GO exists (after
    writing READY), so the test sends its signal at a known step."""
    import os, sys, time
    import torch
    torch.set_num_threads(1)
    import shufflenet.train.engine as engine
    from shufflenet.cli.main import main

    step, ready, go = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    real = engine.build_model

    def build(cfg, data):
        model = real(cfg, data)
        calls = [0]

        def hook(module, inputs):
            if module.training:
                calls[0] += 1
                if calls[0] == step:
                    open(ready, "w").close()
                    t = time.monotonic()
                    while not os.path.exists(go) and time.monotonic() - t < 60:
                        time.sleep(0.01)
        model.register_forward_pre_hook(hook)
        return model

    engine.build_model = build
    sys.exit(main(sys.argv[4:]))
''')


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("uninterrupted")
    assert main(["--quiet", "train", *CLI_RUN, "--workers", "0", "-o", str(out)]) == 0
    return out


def _same_weights(a_dir: Path, b_dir: Path) -> None:
    a, b = _state(a_dir / "model.pt"), _state(b_dir / "model.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), [
        k for k in a if not torch.equal(a[k], b[k])][:5]


def test_ctrl_c_mid_epoch_writes_a_checkpoint_that_resumes_exactly(tmp_path, uninterrupted, capsys) -> None:
    script = tmp_path / "blocker.py"
    script.write_text(BLOCKER)
    out, ready, go = tmp_path / "run", tmp_path / "ready", tmp_path / "go"
    cmd = [sys.executable, str(script), "9", str(ready), str(go), "--quiet", "train", *CLI_RUN,
           "--workers", "1", "-o", str(out)]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-2000:]
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C: the whole process group, data-loader worker included
        go.touch()
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert err == (f"shufflenet: interrupted (SIGINT) at epoch 2, step 9/12; resumable checkpoint written: "
                   f"{out / 'last.pt'}; resume with: shufflenet train --resume {out / 'last.pt'}\n")
    ck = torch.load(out / "last.pt", weights_only=True)["train"]
    assert (ck["epoch"], ck["batch_in_epoch"], ck["step"], ck["finished"]) == (1, 3, 9, False)
    assert not list(out.glob(".*.tmp"))
    assert main(["--quiet", "train", "--resume", str(out / "last.pt")]) == 0
    capsys.readouterr()
    _same_weights(uninterrupted, out)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]


def _signal_at_step(monkeypatch, step: int, *signals: int) -> None:
    """The process sends itself ``signals`` during the training forward of ``step``."""
    import shufflenet.train.engine as engine

    real = engine.build_model

    def build(cfg, data):
        model = real(cfg, data)
        calls = [0]

        def hook(module, inputs):
            if module.training:
                calls[0] += 1
                if calls[0] == step:
                    for s in signals:
                        os.kill(os.getpid(), s)
        model.register_forward_pre_hook(hook)
        return model

    monkeypatch.setattr(engine, "build_model", build)


def test_sigterm_mid_epoch_writes_a_checkpoint_that_resumes_exactly(tmp_path, uninterrupted, monkeypatch,
                                                                    capsys) -> None:
    before = signal.getsignal(signal.SIGTERM)
    _signal_at_step(monkeypatch, 9, signal.SIGTERM)
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "--quiet", "train", *CLI_RUN, "--workers", "0", "-o", str(out))
    assert code == 143 and err.count("\n") == 1
    assert f"interrupted (SIGTERM) at epoch 2, step 9/12; resumable checkpoint written: {out / 'last.pt'}" in err
    assert signal.getsignal(signal.SIGTERM) is before  # the run's handler is gone with it
    monkeypatch.undo()
    assert torch.load(out / "last.pt", weights_only=True)["train"]["step"] == 9
    assert main(["--quiet", "train", "--resume", str(out / "last.pt")]) == 0
    _same_weights(uninterrupted, out)


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys) -> None:
    _signal_at_step(monkeypatch, 9, signal.SIGINT, signal.SIGINT)
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "--quiet", "train", *CLI_RUN, "--workers", "0", "-o", str(out))
    assert code == 130 and err == (f"shufflenet: interrupted twice: stopped at once at step 8/12; the last "
                                   f"checkpoint is {out / 'last.pt'} (step 6), intact; resume with: shufflenet "
                                   f"train --resume {out / 'last.pt'}\n")
    assert torch.load(out / "last.pt", weights_only=True)["train"]["step"] == 6  # the epoch-1 checkpoint
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert not list(out.glob(".*.tmp"))


def test_a_second_sigterm_exits_as_sigterm(tmp_path, monkeypatch, capsys) -> None:
    _signal_at_step(monkeypatch, 9, signal.SIGTERM, signal.SIGTERM)
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "--quiet", "train", *CLI_RUN, "--workers", "0", "-o", str(out))
    assert code == 143 and err.startswith("shufflenet: interrupted twice: stopped at once at step 8/12")


def test_a_run_that_loses_the_lock_leaves_the_winners_directory_alone(tmp_path) -> None:
    from shufflenet.train.engine import _Trainer
    from shufflenet.train.rundir import RunLock

    out = tmp_path / "run"
    out.mkdir()
    winner = RunLock(out).acquire()  # another process made the directory and holds its lock
    try:
        loser = _Trainer.__new__(_Trainer)
        loser.lock, loser.created_dir = None, out  # it believed it had made the directory
        loser._release_lock(discard=True)
        assert out.is_dir() and (out / ".lock").exists()
    finally:
        winner.release()


# ---------------------------------------------------------------------- finished runs, init_from

def test_extending_a_finished_run_is_refused_with_the_way_to_train_further(finished, tmp_path, capsys) -> None:
    _, out = finished
    with pytest.raises(UserInputError, match=r"epochs: 1 -> 4.*finished after 1 epochs \(3 steps\).*decayed to 0"):
        train(tiny(tmp_path / "x", epochs=4, resume=str(out / "last.pt")))
    code, _, err = run_cli(capsys, "--quiet", "train", "--resume", str(out / "last.pt"), "--epochs", "4")
    assert code == 2 and err.count("\n") == 1
    assert (f"shufflenet train --config {out / 'config.json'} --init-from {out / 'model.pt'} --epochs 4 "
            "-o NEW_DIR") in err
    # resuming it unchanged still does nothing, and says finished
    again = train(tiny(None, resume=str(out / "last.pt")))
    assert again.status == "finished" and again.step == 3


def test_init_from_starts_a_new_run_from_the_weights(finished, tmp_path, capsys) -> None:
    _, out = finished
    start = _state(out / "model.pt")
    fresh = train(tiny(tmp_path / "fresh", lr=1e-6, bn_recalibrate=False))
    cont = train(tiny(tmp_path / "cont", lr=1e-6, bn_recalibrate=False, init_from=str(out / "model.pt")))
    assert cont.status == "finished" and cont.step == 3 and cont.history[0]["step"] == 3
    params = [k for k, v in start.items() if v.is_floating_point() and "running" not in k]
    cont_state, fresh_state = cont.model.state_dict(), fresh.model.state_dict()
    assert max((cont_state[k] - start[k]).abs().max().item() for k in params) < 1e-4
    assert max((fresh_state[k] - start[k]).abs().max().item() for k in params) > 0.1
    ck = torch.load(tmp_path / "cont" / "last.pt", weights_only=True)
    assert ck["train"]["scheduler"]["last_epoch"] == 3 and ck["meta"]["config"]["init_from"] == str(out / "model.pt")
    code, _, err = run_cli(capsys, "train", "--resume", str(out / "last.pt"), "--init-from", str(out / "model.pt"))
    assert code == 2 and "give one of them" in err
    code, _, err = run_cli(capsys, "train", "--data", "synthetic", "--init-from", str(tmp_path / "nope.pt"),
                           "-o", str(tmp_path / "n"))
    assert code == 2 and err.count("\n") == 1 and "initial weights to start from not found" in err


def test_resume_with_more_epochs_extends_an_unfinished_run_and_applies_new_settings(tmp_path) -> None:
    cut = tmp_path / "cut"
    train(tiny(cut, epochs=2, stop_after_steps=2))
    longer = train(tiny(cut, epochs=3, weight_decay=1e-3, resume=str(cut / "last.pt")))
    assert longer.status == "finished" and longer.step == longer.total_steps == 9
    assert [r["epoch"] for r in longer.history] == [1, 2, 3]
    groups = torch.load(cut / "last.pt", weights_only=True)["train"]["optimizer"]["param_groups"]
    assert [g["weight_decay"] for g in groups] == [1e-3, 0.0]  # this run's value, not the checkpoint's
    # from the checkpoint's step 2 on, the lr follows the schedule of 9 steps (peak 0.5 * 16 / 1024)
    assert [r["lr"] for r in longer.history] == pytest.approx([0.0078125 * (1 - s / 9) for s in (3, 6, 9)])


def test_a_run_cannot_be_shortened_below_what_it_trained(tmp_path) -> None:
    cut = tmp_path / "cut"
    train(tiny(cut, epochs=2, stop_after_steps=4))  # epoch 2, step 1 of 3
    with pytest.raises(UserInputError, match="already trained 1 epochs and 1 steps"):
        train(tiny(cut, epochs=1, resume=str(cut / "last.pt")))
    with pytest.raises(UserInputError, match="stop_after_steps 3 is not after the checkpoint's step 4"):
        train(tiny(cut, epochs=2, stop_after_steps=3, resume=str(cut / "last.pt")))


# --------------------------------------------------------------------------------- config types

@pytest.mark.parametrize("text,needle", [
    ("model_kwargs = 5\n", "config key 'model_kwargs' in {f} must be a table of keywords (dict), got 5 (int)"),
    ("epochs = '5'\n", "config key 'epochs' in {f} must be an integer, got '5' (str)"),
    ("lr = true\n", "config key 'lr' in {f} must be a number (or empty), got True (bool)"),
    ("data_dir = 5\n", "config key 'data_dir' in {f} must be a string (or empty), got 5 (int)"),
    ("workers = 1.5\n", "config key 'workers' in {f} must be an integer, got 1.5 (float)"),
    ("resume = [1]\n", "config key 'resume' in {f} must be a string (or empty), got [1] (list)"),
    ("[train]\nsync_bn = 'yes'\n", "config key 'sync_bn' in {f} must be true or false, got 'yes' (str)"),
])
def test_config_file_values_are_checked_by_type(tmp_path, capsys, text, needle) -> None:
    f = tmp_path / "run.toml"
    f.write_text(text)
    message = needle.format(f=f)
    with pytest.raises(UserInputError) as info:
        resolve_config(TrainConfig, f, section="train")
    assert str(info.value) == message
    code, _, err = run_cli(capsys, "train", "--config", str(f))
    assert code == 2 and err == f"shufflenet: error: {message}\n"


def test_config_objects_are_checked_by_type_too() -> None:
    with pytest.raises(UserInputError, match="'model_kwargs' in TrainConfig must be a table"):
        TrainConfig(model_kwargs=5).validate()  # type: ignore[arg-type]
    with pytest.raises(UserInputError, match="'lr' in TrainConfig must be a number"):
        TrainConfig(lr="0.1").validate()  # type: ignore[arg-type]
    assert isinstance(TrainConfig(lr=1).validate().lr, float)
    assert TrainConfig(output_dir=Path("runs/x")).validate().output_dir == "runs/x"  # a path is fine
    for bad in (float("nan"), float("inf")):
        with pytest.raises(UserInputError, match="lr must be a positive number"):
            TrainConfig(lr=bad).validate()
    with pytest.raises(UserInputError, match="weight_decay must be >= 0"):
        TrainConfig(weight_decay=float("nan")).validate()


# ----------------------------------------------------------------------------------- full disk

def _no_space(partial: bytes = b"PK\x03\x04 partial"):
    def save(obj, f, *args, **kwargs):
        f.write(partial)
        raise OSError(errno.ENOSPC, "No space left on device")
    return save


def _torch_writer_failure(obj, f, *args, **kwargs):
    f.write(b"PK\x03\x04 partial")
    raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file "
                       "data/0: file write failed")


@pytest.mark.parametrize("fake", [_no_space(), _torch_writer_failure], ids=["ENOSPC", "torch-RuntimeError"])
def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch, fake) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"state_dict": {"w": torch.ones(2)}, "meta": {}, "train": {"optimizer": {}}})
    before = path.read_bytes()
    monkeypatch.setattr(torch, "save", fake)
    with pytest.raises(DiskFullError, match=f"^no space left on device writing {path}.*; the previous "
                                            "checkpoint is intact$"):
        save_checkpoint(path, {"state_dict": {"w": torch.zeros(2)}})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # the temporary file is gone
    monkeypatch.setattr(torch, "save", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("unrelated bug")))
    with pytest.raises(RuntimeError, match="^unrelated bug$"):  # not every RuntimeError is a full disk
        save_checkpoint(path, {"state_dict": {}})


def test_a_full_disk_during_training_stops_with_the_last_checkpoint_named(tmp_path, monkeypatch, capsys) -> None:
    real, calls = torch.save, []

    def save(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) >= 3:
            return _no_space()(obj, f)
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "--quiet", "train", "shufflenet_v2_x0_5", "--data", "synthetic", "--image-size",
                           "16", "--synthetic-train", "64", "--batch-size", "16", "--epochs", "1", "--workers", "0",
                           "--checkpoint-every", "1", "-o", str(out))
    assert code == 1 and err.count("\n") == 1, err
    assert (f"no space left on device writing {out / 'last.pt'}; the previous checkpoint is intact (step 2); "
            f"free space, then resume: shufflenet train --resume {out / 'last.pt'}") in err
    monkeypatch.setattr(torch, "save", real)
    assert torch.load(out / "last.pt", weights_only=True)["train"]["step"] == 2
    assert not list(out.glob(".*.tmp"))


def test_a_full_disk_writing_metrics_or_weights(tmp_path, monkeypatch) -> None:
    import shufflenet.models.weights as weights
    import shufflenet.train.engine as engine

    real_write = engine.write_atomic

    def write(path, data):
        if Path(path).name == "metrics.csv" and Path(path).exists():  # not the empty file of the start
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(path, data)

    monkeypatch.setattr(engine, "write_atomic", write)
    out = tmp_path / "m"
    with pytest.raises(DiskFullError, match="writing .*metrics.csv; the previous metrics.csv is intact"):
        train(tiny(out))
    assert (out / "metrics.csv").read_text() == (
        "epoch,step,lr,train_loss,train_top1,val_loss,val_top1,val_top5,ema_val_loss,ema_val_top1,ema_val_top5,"
        "epoch_time_s,images_per_s,elapsed_s,threads,world_size\n")
    monkeypatch.setattr(engine, "write_atomic", real_write)

    out = tmp_path / "w"
    real_save = weights.torch.save
    monkeypatch.setattr(weights.torch, "save", lambda obj, f, *a, **k: _no_space()(obj, f) if "meta" in obj
                        and "train" not in obj else real_save(obj, f, *a, **k))
    with pytest.raises(DiskFullError, match=r"writing .*model.pt; .*last.pt \(the finished run\) is intact"):
        train(tiny(out))
    assert not (out / "model.pt").exists()
    monkeypatch.setattr(weights.torch, "save", real_save)
    again = train(tiny(out, resume=str(out / "last.pt")))  # the finished run writes its model.pt again
    assert again.status == "finished" and (out / "model.pt").is_file()
    assert all(torch.equal(again.model.state_dict()[k], v) for k, v in _state(out / "model.pt").items())


def test_an_unwritable_output_directory_is_one_line(tmp_path, capsys) -> None:
    (tmp_path / "file").write_text("")
    code, _, err = run_cli(capsys, "train", "--data", "synthetic", "-o", str(tmp_path / "file"))
    assert code == 2 and err.count("\n") == 1 and "is a file" in err
    code, _, err = run_cli(capsys, "train", "--data", "synthetic", "-o", str(tmp_path / "file" / "sub"))
    assert code == 2 and err.count("\n") == 1 and "cannot create output directory" in err


# ------------------------------------------------------------------------- settings that cannot work

def test_sync_bn_without_distributed_cuda_is_refused(tmp_path, capsys) -> None:
    with pytest.raises(UserInputError, match="sync_bn needs several DDP processes on CUDA"):
        train(tiny(tmp_path, sync_bn=True))
    code, _, err = run_cli(capsys, "train", "--data", "synthetic", "--sync-bn", "-o", str(tmp_path))
    assert code == 2 and err.count("\n") == 1 and "drop --sync-bn" in err
    assert not (tmp_path / "config.json").exists()


@pytest.mark.parametrize("argv,needle", [
    (["--checkpoint-every", "-1"], "checkpoint_every must be >= 0"),
    (["--workers", "-1"], "workers must be >= 0"),
    (["--epochs", "0"], "epochs must be a positive integer"),
    (["--holdout", "96"], "holdout must be between 1 and 95"),
    (["--lr", "nan"], "lr must be a positive number"),
    (["--batch-size", "200"], "batch_size 200 is larger than the training set"),
    (["--epochs", "1", "--batch-size", "16", "--warmup-steps", "7"],
     "warmup_steps 7 is more than the run's 6 steps (1 epochs of 6)"),
])
def test_impossible_settings_are_one_line_errors(tmp_path, capsys, argv, needle) -> None:
    code, _, err = run_cli(capsys, "train", "--data", "synthetic", "--synthetic-train", "96", *argv,
                           "-o", str(tmp_path / "o"))
    assert code == 2 and err.count("\n") == 1 and needle in err, err


def test_out_of_memory_is_one_line_naming_what_to_lower(tmp_path, monkeypatch, capsys) -> None:
    import shufflenet.train.engine as engine

    def oom(self, x, y):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB\nmore lines")

    monkeypatch.setattr(engine._Trainer, "_train_step", oom)
    code, _, err = run_cli(capsys, "--quiet", "train", "shufflenet_v2_x0_5", "--data", "synthetic", "--image-size", "16",
                           "--synthetic-train", "32", "--batch-size", "16", "--workers", "0", "-o", str(tmp_path))
    assert code == 1 and err == ("shufflenet: error: out of memory training shufflenet_v2_x0_5 at 16 images per "
                                 "process of 16x16 px: lower --batch-size or --image-size\n")


def test_errors_are_package_errors() -> None:
    assert issubclass(DiskFullError, OutputWriteError) and issubclass(OutputWriteError, ShuffleNetError)
    assert not issubclass(OutputWriteError, UserInputError)  # a failure: exit code 1
    assert issubclass(RunInUseError, RunDirectoryError) and issubclass(RunDirectoryError, UserInputError)


def test_a_lock_that_cannot_be_written_is_released_and_one_line(tmp_path, monkeypatch) -> None:
    import builtins

    from shufflenet.train.rundir import RunDirectoryError, RunLock

    real_open = builtins.open

    class FullDisk:
        def __init__(self, f):
            self.f = f

        def __getattr__(self, name):
            return getattr(self.f, name)

        def write(self, _text):
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(builtins, "open", lambda *a, **k: FullDisk(real_open(*a, **k)))
    with pytest.raises(RunDirectoryError, match="cannot write .*No space left on device"):
        RunLock(tmp_path).acquire()
    monkeypatch.undo()
    RunLock(tmp_path).acquire().release()  # nothing was left holding it


def test_temp_files_of_a_killed_write_are_removed_on_the_next_start(tmp_path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    stale = [out / ".last.pt.abc123.tmp", out / ".metrics.csv.x9.tmp"]
    for p in stale:
        p.write_bytes(b"\0" * 1024)  # what a SIGKILL mid-save leaves behind
    unrelated = out / ".notes.txt.k.tmp"  # not a run file: someone else's, left alone
    unrelated.write_text("x")
    assert train(tiny(out)).status == "finished"
    assert not any(p.exists() for p in stale) and unrelated.exists()
