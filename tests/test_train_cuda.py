"""Training on CUDA: AMP (bf16/fp16), channels_last, pinned-memory loaders, resume, and a CUDA-trained
checkpoint evaluated on CPU. Skipped without a CUDA device (CI has none); run on a GPU machine with
``pytest tests/test_train_cuda.py`` (``benchmarks/gpu_session.sh`` does)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from shufflenet.train import EvalConfig, TrainConfig, run_eval, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def learnable(out: Path, device: str, **kw) -> TrainConfig:
    base = dict(model="shufflenet_v2_x0_5", dataset="synthetic", image_size=32, synthetic_train=512,
                synthetic_val=128, batch_size=64, epochs=4, lr=0.2, warmup_steps=4, workers=2, device=device,
                progress=False, verbose=False, tensorboard=False, output_dir=str(out))
    base.update(kw)
    return TrainConfig(**base)


def check_training_learns(out: Path, device: str, amp: str, channels_last: bool) -> None:
    result = train(learnable(out, device, amp=amp, channels_last=channels_last))
    assert result.status == "finished" and result.step == 4 * 8
    losses = [row["train_loss"] for row in result.history]
    assert all(torch.isfinite(torch.tensor(losses))), losses
    assert losses[-1] < losses[0] * 0.8, losses
    assert result.final["val_top1"] >= 60.0, result.final  # 10 classes: chance is 10%
    # The CUDA-trained checkpoint is plain data and evaluates on the CPU in full precision to about the
    # same accuracy (autocast changes a few borderline predictions at most).
    report = run_eval(EvalConfig(checkpoint=str(out / "model.pt"), device="cpu", workers=0, progress=False,
                                 confusion_png=None))
    assert report.result.count == 128
    assert abs(report.result.top1 - result.final["val_top1"]) <= 3.0, (report.result.top1, result.final)


@pytest.mark.parametrize(("amp", "channels_last"), [("none", False), ("bf16", True), ("fp16", True)])
def test_cuda_training_learns_and_evaluates_on_cpu(tmp_path, amp, channels_last) -> None:
    check_training_learns(tmp_path, "cuda", amp, channels_last)


def test_cuda_resume_continues_the_same_run(tmp_path) -> None:
    full = train(learnable(tmp_path / "full", "cuda", epochs=2, workers=0, deterministic=True))
    cut = learnable(tmp_path / "cut", "cuda", epochs=2, workers=0, deterministic=True)
    stopped = train(replace(cut, stop_after_steps=11))  # mid-epoch 2
    assert stopped.status == "stopped" and stopped.step == 11
    resumed = train(replace(cut, resume=str(tmp_path / "cut" / "last.pt")))
    assert resumed.status == "finished" and resumed.step == full.step == 16
    a = torch.load(tmp_path / "full" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "cut" / "model.pt", weights_only=True)["state_dict"]
    # GPU kernels are not all bitwise deterministic; the trajectory must still be the same one.
    for key in a:
        if a[key].is_floating_point():
            torch.testing.assert_close(a[key], b[key], rtol=1e-3, atol=1e-4, msg=key)
        else:
            assert torch.equal(a[key], b[key]), key
