"""The training recipe against the V1 paper's Sec. 4 and the official training code, the config layering, the data pipeline, and a non-finite loss.

Tiny models (ShuffleNet V2 0.5x, small_input, 16 px synthetic images) and one torch thread: on a busy
2-core machine several intra-op threads make these small tensors much slower, not faster.
"""

from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from shufflenet import create_model
from shufflenet.cli.main import main
from shufflenet.errors import UnknownModelError, UserInputError
from shufflenet.train import TrainConfig, TrainingDiverged, resolve_config, train
from shufflenet.train.data import FashionMNIST, SyntheticImages, build_data, read_idx
from shufflenet.train.recipe import (
    LABEL_SMOOTHING,
    build_loss,
    build_optimizer,
    build_scheduler,
    parameter_groups,
    recalibrate_bn,
    scaled_lr,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(tmp_path, **kw) -> TrainConfig:
    base = dict(model="shufflenet_v2_x0_5", dataset="synthetic", image_size=16, synthetic_train=64,
                synthetic_val=32, batch_size=16, epochs=1, workers=0, device="cpu", progress=False, verbose=False,
                output_dir=str(tmp_path / "run"))
    base.update(kw)
    return TrainConfig(**base)


# ------------------------------------------------------------------------------------------ recipe

@pytest.mark.parametrize("layout", ["official", "torchvision"])
def test_weight_decay_only_on_conv_and_linear_weights(layout) -> None:
    model = create_model("shufflenet_v2_x0_5", layout=layout, num_classes=10)
    decay, no_decay = parameter_groups(model)
    assert decay["weight_decay"] == 4e-5 and no_decay["weight_decay"] == 0.0
    modules = dict(model.named_modules())
    for name in decay["names"]:
        owner = modules[name.rpartition(".")[0]]
        assert name.endswith(".weight") and isinstance(owner, (nn.Conv2d, nn.Linear)), name
    for name in no_decay["names"]:
        owner = modules[name.rpartition(".")[0]]
        assert isinstance(owner, nn.BatchNorm2d) or name.endswith(".bias"), name
    convs_and_fc = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(decay["params"]) == len(convs_and_fc)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    biases = [m for m in convs_and_fc if m.bias is not None]
    assert len(no_decay["params"]) == 2 * len(bns) + len(biases)
    assert ("fc.bias" in no_decay["names"]) == (layout == "torchvision")
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_optimizer_is_sgd_momentum_09_with_the_groups() -> None:
    model = create_model("shufflenet_v2_x0_5", num_classes=10)
    opt = build_optimizer(model, 0.125)
    assert isinstance(opt, torch.optim.SGD)
    assert [g["weight_decay"] for g in opt.param_groups] == [4e-5, 0.0]
    assert all(g["momentum"] == 0.9 and g["lr"] == 0.125 and not g["nesterov"] for g in opt.param_groups)


def test_lr_scales_linearly_with_global_batch() -> None:
    assert scaled_lr(1024) == 0.5 and scaled_lr(256) == 0.125 and scaled_lr(2048) == 1.0
    assert TrainConfig(batch_size=512).effective_lr() == 0.25
    assert TrainConfig(batch_size=512, lr=0.1).effective_lr() == 0.1


def test_lr_decays_linearly_to_zero_per_iteration() -> None:
    model = nn.Linear(4, 2)
    lr0, total = scaled_lr(256), 40
    opt = build_optimizer(model, lr0)
    sched = build_scheduler(opt, total)
    seen = []
    for _ in range(total + 3):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    for step, lrs in enumerate(seen):
        expected = lr0 * max(0.0, 1.0 - step / total)
        assert lrs == pytest.approx([expected, expected], abs=1e-12), step
    assert seen[0][0] == lr0 and seen[total][0] == 0.0 and seen[-1][0] == 0.0


def test_optional_warmup_then_linear_decay() -> None:
    opt = build_optimizer(nn.Linear(4, 2), 1.0)
    sched = build_scheduler(opt, 100, warmup_steps=4)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([0.25 * 1.0, 0.5 * 0.99, 0.75 * 0.98, 1.0 * 0.97])
    assert lrs[4:] == pytest.approx([0.96, 0.95])


def test_label_smoothing_01_in_the_loss() -> None:
    assert LABEL_SMOOTHING == 0.1 and TrainConfig().label_smoothing == 0.1
    loss = build_loss()
    assert loss.label_smoothing == 0.1
    logits, target = torch.randn(5, 7), torch.tensor([0, 3, 6, 2, 2])
    logp = logits.log_softmax(1)
    manual = (0.9 * -logp.gather(1, target[:, None]).squeeze(1) + 0.1 * -logp.mean(1)).mean()
    assert loss(logits, target).item() == pytest.approx(manual.item(), rel=1e-6)


def test_bn_recalibration_is_a_cumulative_average() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3, momentum=0.1))
    model[1].running_mean.fill_(5.0)
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    batches = [torch.randn(4, 2, 5, 5) * (i + 1) for i in range(6)]
    with torch.no_grad():
        outs = [model[0](b) for b in batches]
    n = recalibrate_bn(model, batches)
    assert n == 6
    bn = model[1]
    expected_mean = torch.stack([o.mean((0, 2, 3)) for o in outs]).mean(0)
    expected_var = torch.stack([o.var((0, 2, 3), unbiased=True) for o in outs]).mean(0)
    assert torch.allclose(bn.running_mean, expected_mean, atol=1e-5)
    assert torch.allclose(bn.running_var, expected_var, rtol=1e-4)
    assert bn.momentum == 0.1 and model.training
    for k, v in weights.items():
        assert torch.equal(model.state_dict()[k], v), k


# ------------------------------------------------------------------------------------------ config

def test_config_layers_defaults_file_flags(tmp_path) -> None:
    f = tmp_path / "run.toml"
    f.write_text('epochs = 7\nbatch-size = 64\nlr = 1\n[model_kwargs]\nlayout = "torchvision"\n')
    cfg = resolve_config(TrainConfig, f, {"epochs": 3})
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.momentum) == (3, 64, 1.0, 0.9)
    assert cfg.model_kwargs == {"layout": "torchvision"} and isinstance(cfg.lr, float)
    j = tmp_path / "saved.json"
    j.write_text(json.dumps({"epochs": 2, "dataset": "synthetic"}))
    assert resolve_config(TrainConfig, j).dataset == "synthetic"


def test_cli_quiet_overrides_the_config_file_only_when_given(tmp_path) -> None:
    from shufflenet.cli.main import build_parser
    from shufflenet.cli.train import resolve_train_config

    f = tmp_path / "run.toml"
    f.write_text('dataset = "synthetic"\nprogress = false\nverbose = false\n')
    cfg = resolve_train_config(build_parser().parse_args(["train", "--config", str(f)]))
    assert (cfg.progress, cfg.verbose) == (False, False)  # no --quiet: the file's values stand
    f.write_text('dataset = "synthetic"\n')
    cfg = resolve_train_config(build_parser().parse_args(["train", "--config", str(f)]))
    assert (cfg.progress, cfg.verbose) == (True, True)
    cfg = resolve_train_config(build_parser().parse_args(["--quiet", "train", "--config", str(f)]))
    assert (cfg.progress, cfg.verbose) == (False, False)


def test_resume_takes_quiet_from_this_invocation_not_the_checkpoint(tmp_path) -> None:
    from shufflenet.cli.main import build_parser
    from shufflenet.cli.train import resolve_train_config

    train(tiny(tmp_path))  # saved with progress=False, verbose=False
    last = tmp_path / "run" / "last.pt"
    cfg = resolve_train_config(build_parser().parse_args(["train", "--resume", str(last)]))
    assert (cfg.epochs, cfg.dataset, cfg.progress, cfg.verbose) == (1, "synthetic", True, True)
    cfg = resolve_train_config(build_parser().parse_args(["--quiet", "train", "--resume", str(last)]))
    assert (cfg.progress, cfg.verbose) == (False, False)


def test_config_yaml_when_pyyaml_is_installed(tmp_path) -> None:
    pytest.importorskip("yaml")
    f = tmp_path / "run.yaml"
    f.write_text("train:\n  epochs: 5\n  amp: bf16\n")
    cfg = resolve_config(TrainConfig, f, section="train")
    assert cfg.epochs == 5 and cfg.amp == "bf16"


@pytest.mark.parametrize("text,needle", [
    ("lrr = 0.1\n", "unknown config key 'lrr'"),
    ("epochs = 'many'\n", "config key 'epochs'"),
    ("epochs = 0\n", "epochs must be a positive integer"),
    ("amp = 'fp8'\n", "amp must be one of"),
    ("epochs = \n", "cannot parse config file"),
])
def test_config_errors_are_one_line(tmp_path, text, needle) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(UserInputError, match=needle.replace("(", r"\(")):
        resolve_config(TrainConfig, f)


def test_unknown_model_fails_before_any_data_is_read() -> None:
    with pytest.raises(UnknownModelError, match="unknown model 'shufflenet_v3'"):
        TrainConfig(model="shufflenet_v3", dataset="imagefolder", data_dir="/nonexistent").validate()


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv,needle", [
    (["train", "shufflenet_v2_x0_5", "--data", "imagefolder", "--data-dir", "/nonexistent/imagenet"],
     "data directory not found: /nonexistent/imagenet"),
    (["train", "shufflenet_v2_x0_5", "--data-dir", "/nonexistent/fmnist"], "data directory not found"),
    (["train", "shufflenet_v3_x1_0", "--data", "synthetic"], "unknown model 'shufflenet_v3_x1_0'"),
    (["train", "--data", "synthetic", "--epochs", "0"], "epochs must be a positive integer"),
    (["train", "--resume", "/nonexistent/last.pt"], "checkpoint to resume from not found"),
    (["train", "--data", "synthetic", "--nesterov", "--momentum", "0"], "nesterov needs a momentum > 0"),
    (["eval", "/nonexistent/model.pt"], "checkpoint not found: /nonexistent/model.pt"),
    (["predict", "-c", "/nonexistent/model.pt", "x.png"], "checkpoint not found: /nonexistent/model.pt"),
    (["predict", "-c", "/nonexistent/model.pt", "x.png", "--image-size", "0"], "image_size must be a positive"),
])
def test_train_cli_errors_exit_2_with_one_line(capsys, tmp_path, argv, needle) -> None:
    code, out, err = run_cli(capsys, *argv, *(["-o", str(tmp_path / "o")] if argv[0] == "train" else []))
    assert err.count("\n") == 1 and needle in err, err
    assert code == 2


def test_train_cli_bad_config_key_exit_2(capsys, tmp_path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("epochz = 3\n")
    code, _, err = run_cli(capsys, "train", "--config", str(f))
    assert code == 2 and "unknown config key 'epochz'" in err and "did you mean epochs" in err
    assert err.count("\n") == 1


# -------------------------------------------------------------------------------------------- data

def _write_idx(path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_reader_and_deterministic_light_augmentation(tmp_path) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("t10k", 6)):
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    assert read_idx(tmp_path / "train-images-idx3-ubyte.gz").shape == (12, 28, 28)
    data = build_data("fashion-mnist", data_dir=str(tmp_path))
    assert (len(data.train), len(data.val), data.in_chans, data.num_classes, data.small_input) == (12, 6, 1, 10, True)
    x, y = data.val[3]
    assert x.shape == (1, 28, 28) and y == 3
    ds: FashionMNIST = data.train  # type: ignore[assignment]
    a = ds[(0, 5)][0]
    assert torch.equal(a, ds[(0, 5)][0])  # same (seed, epoch, index) -> same crop/flip
    assert any(not torch.equal(a, ds[(e, 5)][0]) for e in range(1, 6))  # other epochs -> other crops
    batch = ds.__getitems__([(2, i) for i in range(12)])
    assert all(torch.equal(batch[i][0], ds[(2, i)][0]) for i in range(12))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b broken")
    with pytest.raises(UserInputError):
        build_data("fashion-mnist", data_dir=str(tmp_path))


def test_fashion_mnist_from_the_debian_package_when_installed() -> None:
    from shufflenet.train.data import DEBIAN_FASHION_MNIST

    if not (DEBIAN_FASHION_MNIST / "t10k-labels-idx1-ubyte.gz").exists():
        pytest.skip("dataset-fashion-mnist is not installed")
    data = build_data("fashion-mnist", want_train=False)
    assert len(data.val) == 10000 and data.class_names[9] == "Ankle boot"
    labels = data.val.targets  # type: ignore[union-attr]
    assert torch.bincount(labels).tolist() == [1000] * 10


def test_holdout_splits_the_training_set_never_the_test_set(tmp_path) -> None:
    from shufflenet.train.data import holdout_split

    keep, held = holdout_split(100, 20)
    assert (len(keep), len(held)) == (80, 20) and sorted(keep + held) == list(range(100))
    assert holdout_split(100, 20) == (keep, held)  # fixed: the same images for every run and seed
    assert held != list(range(80, 100))  # random, not the tail (the files may be sorted by class)
    with pytest.raises(UserInputError, match="holdout must be between 1 and 99"):
        holdout_split(100, 100)

    rng = np.random.default_rng(0)
    for split, n in (("train", 30), ("t10k", 6)):
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    plain = build_data("fashion-mnist", data_dir=str(tmp_path))
    data = build_data("fashion-mnist", data_dir=str(tmp_path), holdout=10)
    assert (len(data.train), len(data.val)) == (20, 10)
    keep, held = holdout_split(30, 10)
    base_train = plain.train
    base_plain = FashionMNIST(tmp_path, "train")
    for j, i in enumerate(held):  # validation = the held-out training images, not augmented
        assert torch.equal(data.val[j][0], base_plain[i][0]) and data.val[j][1] == base_plain[i][1]
    for j, i in enumerate(keep):  # training = the rest, augmented exactly as in the full set
        assert torch.equal(data.train[(3, j)][0], base_train[(3, i)][0])
    batch = data.train.__getitems__([(1, j) for j in range(20)])
    assert all(torch.equal(batch[j][0], base_train[(1, keep[j])][0]) for j in range(20))


def test_train_with_holdout_records_its_validation_set(tmp_path) -> None:
    result = train(tiny(tmp_path, holdout=16, synthetic_train=64, bn_recalibrate_steps=1))
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert (info["train_images"], info["val_images"]) == (48, 16)
    assert info["val_set"] == "16 training images held out of training"
    assert result.status == "finished" and result.final["val_images"] == 16
    with pytest.raises(UserInputError, match="holdout must be a positive integer"):
        tiny(tmp_path, holdout=0).validate()


def test_16_bit_images_are_rescaled_by_the_image_folder_loader(tmp_path) -> None:
    from PIL import Image

    from shufflenet.train.data import _image_folder, load_image

    pixels = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 4)
    (tmp_path / "a").mkdir()
    Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / "a" / "eight.png")
    Image.fromarray(pixels * 257).save(tmp_path / "a" / "sixteen.png")
    eight, sixteen = load_image(str(tmp_path / "a" / "eight.png")), load_image(str(tmp_path / "a" / "sixteen.png"))
    assert eight.mode == sixteen.mode == "RGB"
    assert np.array_equal(np.asarray(eight), np.asarray(sixteen))  # not clipped to white
    folder = _image_folder(tmp_path)
    assert np.array_equal(np.asarray(folder[0][0]), np.asarray(folder[1][0]))


def test_synthetic_data_is_deterministic() -> None:
    a = SyntheticImages(8, 4, 16, 3, seed=1, train_augment=True)
    b = SyntheticImages(8, 4, 16, 3, seed=1, train_augment=True)
    assert torch.equal(a[(3, 5)][0], b[(3, 5)][0]) and a[5][1] == 1


# ----------------------------------------------------------------------------------- non-finite loss

class _NaNAfter(nn.Module):
    """Wraps a model; from the ``n``-th training forward on, the output is NaN (``grad_only``: the output
    stays finite and only its gradient is NaN)."""

    def __init__(self, inner: nn.Module, n: int, grad_only: bool = False) -> None:
        super().__init__()
        self.inner, self.n, self.grad_only, self.calls = inner, n, grad_only, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inner(x)
        if self.training:
            self.calls += 1
            if self.calls >= self.n:
                if not self.grad_only:
                    return out * float("nan")
                out.register_hook(lambda g: g * float("nan"))
        return out


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch) -> None:
    import shufflenet.train.engine as engine

    losses = []
    real_build_loss = engine.build_loss

    def spy_loss(smoothing):
        losses.append(smoothing)
        return real_build_loss(smoothing)

    monkeypatch.setattr(engine, "build_loss", spy_loss)
    monkeypatch.setattr(engine, "build_model", lambda cfg, data: _NaNAfter(
        create_model("shufflenet_v2_x0_5", num_classes=10, small_input=True), 3))
    cfg = tiny(tmp_path, checkpoint_every=1, epochs=2)
    with pytest.raises(TrainingDiverged) as info:
        train(cfg)
    msg = str(info.value)
    assert losses == [0.1]
    assert "non-finite loss (nan) at epoch 1, step 3" in msg and "last good checkpoint" in msg and "last.pt" in msg
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert ckpt["train"]["step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())
    assert not (tmp_path / "run" / "model.pt").exists()


@pytest.mark.parametrize("grad_clip", [None, 1.0])
def test_non_finite_gradients_stop_before_the_step(tmp_path, monkeypatch, grad_clip) -> None:
    import shufflenet.train.engine as engine

    monkeypatch.setattr(engine, "build_model", lambda cfg, data: _NaNAfter(
        create_model("shufflenet_v2_x0_5", num_classes=10, small_input=True), 3, grad_only=True))
    cfg = tiny(tmp_path, checkpoint_every=1, epochs=2, grad_clip=grad_clip)
    with pytest.raises(TrainingDiverged) as info:
        train(cfg)
    msg = str(info.value)
    assert "non-finite gradients (loss " in msg and "at epoch 1, step 3" in msg and "(step 2)" in msg
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert ckpt["train"]["step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


def test_grad_norm_matches_clip_grad_norm(monkeypatch) -> None:
    from shufflenet.train.engine import _grad_norm

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    model(torch.randn(6, 5)).square().sum().backward()
    before = [p.grad.clone() for p in model.parameters()]
    norm = _grad_norm(model.parameters())
    assert all(torch.equal(a, p.grad) for a, p in zip(before, model.parameters(), strict=True))
    torch.testing.assert_close(norm, nn.utils.clip_grad_norm_(model.parameters(), 1e9))
    assert _grad_norm(nn.Linear(2, 2).parameters()).item() == 0.0
    monkeypatch.delattr(nn.utils, "get_total_norm", raising=False)  # the torch < 2.6 path
    torch.testing.assert_close(_grad_norm(model.parameters()), norm)


def test_non_finite_loss_cli_exit_1(capsys, tmp_path, monkeypatch) -> None:
    import shufflenet.train.engine as engine

    monkeypatch.setattr(engine, "build_model", lambda cfg, data: _NaNAfter(
        create_model("shufflenet_v2_x0_5", num_classes=10, small_input=True), 1))
    code, _, err = run_cli(capsys, "--quiet", "train", "--data", "synthetic", "--image-size", "16",
                           "--batch-size", "16", "--synthetic-train", "32", "--workers", "0", "-o", str(tmp_path))
    assert code == 1 and "non-finite loss" in err and "no checkpoint had been written yet" in err


def test_train_cli_end_to_end_json(capsys, tmp_path) -> None:
    code, out, err = run_cli(capsys, "--quiet", "train", "shufflenet_v2_x0_5", "--data", "synthetic",
                             "--image-size", "16", "--synthetic-train", "48", "--synthetic-val", "16",
                             "--batch-size", "16", "--epochs", "1", "--workers", "0", "--lr", "0.05",
                             "--bn-recalibrate-steps", "2", "-o", str(tmp_path), "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["status"] == "finished" and data["step"] == data["total_steps"] == 3
    assert data["final"]["bn_recalibration_batches"] == 2 and math.isfinite(data["final"]["val_loss"])
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["lr"] == 0.05 and saved["model"] == "shufflenet_v2_x0_5" and saved["progress"] is False
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,step,lr,train_loss") and len(rows) == 2
    first = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert first["epoch"] == 1 and first["threads"] == 1 and first["world_size"] == 1  # one_thread fixture
    assert rows[0].endswith(",threads,world_size") and rows[1].endswith(",1,1")
    assert resolve_config(TrainConfig, tmp_path / "config.json").lr == 0.05  # the saved config is a valid --config


def test_benchmark_reports_speed_per_thread_segment() -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / "train_fashion_mnist.py"
    spec = importlib.util.spec_from_file_location("train_fashion_mnist_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    history = ([{"epoch": e, "images_per_s": 160.0 + e} for e in (1, 2, 3)]  # before threads were recorded
               + [{"epoch": e, "images_per_s": 250.0 + e, "threads": 2, "world_size": 1} for e in (4, 5)]
               + [{"epoch": 6, "images_per_s": 170.0, "threads": 1, "world_size": 1}])
    segs = bench.speed_segments(history)
    assert [(s["epochs"], s["threads"], s["median_images_per_s"]) for s in segs] == [
        ("1-3", None, 162.0), ("4-5", 2, 254.5), ("6-6", 1, 170.0)]
    assert segs[1]["images_per_s_range"] == [254.0, 255.0]
