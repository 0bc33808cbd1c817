"""Checkpoint loading: this package's files, torchvision state dicts, official Megvii checkpoints, safety."""

import os
import re
from functools import partial

import pytest
import torch
import torch.nn.functional as F
import torchvision

from shufflenet import create_model, load_weights
from shufflenet.errors import WeightsError
from shufflenet.models.weights import OFFICIAL_INPUT, save_weights


def _randomise(model: torch.nn.Module) -> torch.nn.Module:
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g) + 0.5 if "running_var" in name
                        else torch.randn(t.shape, generator=g) * 0.2)
    return model.eval()


def _to_megvii(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Our official-layout keys -> the official repository's keys (as saved from DataParallel)."""
    units = [f"{s}.{i}" for s in model.stage_names for i in range(len(getattr(model, s)))]
    out = {}
    for k, v in model.state_dict().items():
        for idx, u in enumerate(units):
            if k.startswith(u + "."):
                k = f"features.{idx}." + k[len(u) + 1:].replace("branch1.", "branch_proj.").replace(
                    "branch2.", "branch_main.")
                break
        k = re.sub(r"^conv1\.", "first_conv.", k)
        k = re.sub(r"^conv5\.", "conv_last.", k)
        k = re.sub(r"^fc\.", "classifier.0.", k)
        out["module." + k] = v.clone()
    return out


def _bn(sd: dict[str, torch.Tensor], x: torch.Tensor, p: str) -> torch.Tensor:
    return F.batch_norm(x, sd[p + ".running_mean"], sd[p + ".running_var"], sd[p + ".weight"],
                        sd[p + ".bias"], False, 0.0, 1e-5)


def _conv(sd: dict[str, torch.Tensor], x: torch.Tensor, p: str, stride: int = 1) -> torch.Tensor:
    w = sd[p + ".weight"]
    return F.conv2d(x, w, None, stride, w.shape[-1] // 2, 1, x.shape[1] // w.shape[1])


def _megvii_v2_reference(sd: dict[str, torch.Tensor], x: torch.Tensor, n_units: int) -> torch.Tensor:
    """An independent functional forward of the official ShuffleNetV2 network from its own keys."""
    sd = {k[len("module."):]: v for k, v in sd.items()}
    bn, conv = partial(_bn, sd), partial(_conv, sd)

    def main(x, p, stride):
        x = F.relu(bn(conv(x, p + ".0"), p + ".1"))
        x = bn(conv(x, p + ".3", stride), p + ".4")
        return F.relu(bn(conv(x, p + ".5"), p + ".6"))

    x = F.relu(bn(conv(x, "first_conv.0", 2), "first_conv.1"))
    x = F.max_pool2d(x, 3, 2, 1)
    for i in range(n_units):
        p = f"features.{i}"
        if f"{p}.branch_proj.0.weight" in sd:  # stride-2 unit: both branches see the whole input
            proj = bn(conv(x, p + ".branch_proj.0", 2), p + ".branch_proj.1")
            proj = F.relu(bn(conv(proj, p + ".branch_proj.2"), p + ".branch_proj.3"))
            x = torch.cat((proj, main(x, p + ".branch_main", 2)), 1)
        else:  # official fused shuffle + split: even channels pass through
            b, c, h, w = x.shape
            y = x.reshape(b * c // 2, 2, h * w).permute(1, 0, 2).reshape(2, -1, c // 2, h, w)
            x = torch.cat((y[0], main(y[1], p + ".branch_main", 1)), 1)
    x = F.relu(bn(conv(x, "conv_last.0"), "conv_last.1")).mean((2, 3))
    return F.linear(x, sd["classifier.0.weight"])


def test_megvii_checkpoint_maps_to_official_layout(tmp_path) -> None:
    src = _randomise(create_model("shufflenet_v2_x0_5"))
    megvii = _to_megvii(src)
    path = tmp_path / "ShuffleNetV2.0.5x.pth.tar"
    torch.save({"state_dict": megvii}, path)
    model = create_model("shufflenet_v2_x0_5").eval()
    info = load_weights(model, path)
    assert info.format == "megvii" and info.input_convention == OFFICIAL_INPUT
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = _megvii_v2_reference(megvii, x, n_units=16)
        torch.testing.assert_close(model(x), ref, atol=1e-4, rtol=1e-4)


def test_torchvision_state_dict(tmp_path) -> None:
    tv = torchvision.models.shufflenet_v2_x0_5().eval()
    path = tmp_path / "tv.pth"
    torch.save(tv.state_dict(), path)
    model = create_model("shufflenet_v2_x0_5", layout="torchvision").eval()
    assert load_weights(model, path).format == "torchvision"
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), tv(x))
    with pytest.raises(WeightsError, match=r"unexpected \(e\.g\. fc\.bias\).*layout='torchvision'"):
        load_weights(create_model("shufflenet_v2_x0_5"), path)
    torch.save(torchvision.models.shufflenet_v2_x1_0().state_dict(), path)
    with pytest.raises(WeightsError, match=r"stage2\.0\.branch1\.2\.weight: checkpoint \(58, 24, 1, 1\) "
                       r"vs model \(24, 24, 1, 1\).*layout='torchvision'"):
        load_weights(create_model("shufflenet_v2_x1_0"), path)


def test_torchvision_model_roundtrip_with_module_prefix(tmp_path) -> None:
    tv = torchvision.models.mobilenet_v2().eval()
    path = tmp_path / "ddp.pth"
    torch.save({"model": {f"module.{k}": v for k, v in tv.state_dict().items()}, "epoch": 3}, path)
    other = create_model("torchvision:mobilenet_v2").eval()
    load_weights(other, path)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(other(x), tv(x))


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_own_format_roundtrip(tmp_path, suffix: str) -> None:
    a = _randomise(create_model("shufflenet_v2_x0_5", num_classes=10))
    path = tmp_path / f"w{suffix}"
    save_weights(a, path, meta={"arch": "shufflenet_v2_x0_5"})
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind
    b = create_model("shufflenet_v2_x0_5", num_classes=10).eval()
    info = load_weights(b, path)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
    if suffix == ".pt":
        assert info.format == "shufflenet" and info.meta["arch"] == "shufflenet_v2_x0_5"


def test_shape_mismatch_names_parameter(tmp_path) -> None:
    path = tmp_path / "w.pt"
    save_weights(create_model("shufflenet_v2_x0_5", num_classes=10), path)
    with pytest.raises(WeightsError, match=r"shape mismatch for fc\.weight: checkpoint \(10, 1024\) vs model \(1000, 1024\)"):
        load_weights(create_model("shufflenet_v2_x0_5"), path)


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['EVIL_MARKER']}",))


def test_code_executing_pickle_is_refused(tmp_path, monkeypatch) -> None:
    marker = tmp_path / "pwned"
    monkeypatch.setenv("EVIL_MARKER", str(marker))
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"fc.weight": torch.zeros(1)}, "payload": _Evil()}, path)
    with pytest.raises(WeightsError, match="refused"):
        load_weights(create_model("shufflenet_v2_x0_5"), path)
    assert not marker.exists()


def test_truncated_and_missing_files(tmp_path) -> None:
    path = tmp_path / "w.pt"
    save_weights(create_model("shufflenet_v2_x0_5"), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated or corrupted"):
        load_weights(create_model("shufflenet_v2_x0_5"), path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(WeightsError, match="truncated or corrupted"):
        load_weights(create_model("shufflenet_v2_x0_5"), tmp_path / "junk.pt")
    with pytest.raises(WeightsError, match="not found"):
        load_weights(create_model("shufflenet_v2_x0_5"), tmp_path / "nope.pt")


def _to_megvii_v1(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Random official-format ShuffleNet V1 keys with the shapes of ``model`` (official names)."""
    names = {"pw1.0": "branch_main_1.0", "pw1.1": "branch_main_1.1", "dw.0": "branch_main_1.3",
             "dw.1": "branch_main_1.4", "pw2.0": "branch_main_2.0", "pw2.1": "branch_main_2.1"}
    units = [f"{s}.{i}" for s in model.stage_names for i in range(len(getattr(model, s)))]
    out = {}
    for k, v in model.state_dict().items():
        for idx, u in enumerate(units):
            if k.startswith(u + "."):
                mod, _, leaf = k[len(u) + 1:].rpartition(".")
                k = f"features.{idx}.{names[mod]}.{leaf}"
                break
        k = re.sub(r"^conv1\.", "first_conv.", k)
        k = re.sub(r"^fc\.", "classifier.0.", k)
        out["module." + k] = v.clone()
    return out


def _megvii_v1_reference(sd: dict[str, torch.Tensor], x: torch.Tensor, n_units: int, g: int) -> torch.Tensor:
    """Independent functional forward of the official ShuffleNetV1 (shuffle after DW, (C/g, g) reshape)."""
    sd = {k[len("module."):]: v for k, v in sd.items()}
    bn, conv = partial(_bn, sd), partial(_conv, sd)

    x = F.relu(bn(conv(x, "first_conv.0", 2), "first_conv.1"))
    x = F.max_pool2d(x, 3, 2, 1)
    for i in range(n_units):
        p = f"features.{i}"
        stride = 2 if i in (0, 4, 12) else 1  # first unit of each stage (repeats 4, 8, 4)
        y = F.relu(bn(conv(x, p + ".branch_main_1.0"), p + ".branch_main_1.1"))
        y = bn(conv(y, p + ".branch_main_1.3", stride), p + ".branch_main_1.4")
        b, c, h, w = y.shape
        y = y.reshape(b, c // g, g, h, w).permute(0, 2, 1, 3, 4).reshape(b, c, h, w)
        y = bn(conv(y, p + ".branch_main_2.0"), p + ".branch_main_2.1")
        x = F.relu(x + y) if stride == 1 else torch.cat((F.avg_pool2d(x, 3, 2, 1), F.relu(y)), 1)
    return F.linear(x.mean((2, 3)), sd["classifier.0.weight"])


def test_megvii_v1_checkpoint_reorders_depthwise_weights(tmp_path) -> None:
    megvii = _to_megvii_v1(_randomise(create_model("shufflenet_v1_g3_x0_5")))
    path = tmp_path / "ShuffleNetV1.g3.0.5x.pth.tar"
    torch.save({"state_dict": megvii}, path)
    model = create_model("shufflenet_v1_g3_x0_5").eval()
    assert load_weights(model, path).format == "megvii"
    assert model.stage3[1].shuffle_order == "official"
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = _megvii_v1_reference(megvii, x, n_units=16, g=3)
        torch.testing.assert_close(model(x), ref, atol=1e-4, rtol=1e-4)
