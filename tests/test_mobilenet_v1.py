"""MobileNet V1 (the papers' comparison net) against the MobileNet paper's complexity figures."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers import conv_fc_madds
from shufflenet.errors import UserInputError
from shufflenet.models import create_model, get_entry, list_models
from shufflenet.models.mobilenet_v1 import DepthwiseSeparable, MobileNetV1

# MobileNet paper Table 6/7 via V2 Table 8 / V1 Table 5: (MFLOPs, M params).
PAPER = {"0_25": (41, 0.5), "0_5": (149, 1.3), "0_75": (325, 2.6), "1_0": (569, 4.2)}


def _madds_and_params(model: nn.Module) -> tuple[float, float]:
    """(conv + FC multiply-adds, all parameters) in millions."""
    return conv_fc_madds(model) / 1e6, sum(p.numel() for p in model.parameters()) / 1e6


@pytest.mark.parametrize("w", list(PAPER))
def test_complexity_matches_paper(w: str) -> None:
    with torch.device("meta"):
        model = create_model(f"mobilenet_v1_x{w}")
    madds, params = _madds_and_params(model)
    mflops, mparams = PAPER[w]
    assert abs(madds - mflops) / mflops <= 0.03, f"{madds:.1f}M vs {mflops}M"
    assert abs(params - mparams) / mparams <= 0.07, f"{params:.3f}M vs {mparams}M"
    assert get_entry(f"mobilenet_v1_x{w}").paper.mflops == mflops


def test_registry_names() -> None:
    assert list_models("mobilenet_v1_*") == [f"mobilenet_v1_x{w}" for w in ("0_25", "0_5", "0_75", "1_0")]


def test_structure() -> None:
    model = MobileNetV1(0.75)
    assert model.stem[0].out_channels == 24 and model.stem[0].stride == (2, 2)
    assert len(model.blocks) == 13 and all(isinstance(b, DepthwiseSeparable) for b in model.blocks)
    widths = [b.pw[0].out_channels for b in model.blocks]
    assert widths == [int(c * 0.75) for c in (64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024)]
    strides = [b.dw[0].stride[0] for b in model.blocks]
    assert strides == [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]
    for b in model.blocks:
        assert b.dw[0].groups == b.dw[0].in_channels
        assert isinstance(b.dw[2], nn.ReLU) and isinstance(b.pw[2], nn.ReLU)
    assert model.num_features == 768 and model.min_input_size == 32


def test_small_input_forward_backward() -> None:
    model = create_model("mobilenet_v1_x0_25", small_input=True, in_chans=1, num_classes=10)
    assert model.min_input_size == 16
    y = model(torch.randn(2, 1, 32, 32))
    assert y.shape == (2, 10)
    y.sum().backward()
    assert model.stem[0].weight.grad is not None
    with pytest.raises(UserInputError):
        model(torch.randn(1, 1, 8, 8))
    with pytest.raises(UserInputError):
        model(torch.randn(1, 3, 32, 32))


def test_forward_equals_head_of_features_and_reset_classifier() -> None:
    model = create_model("mobilenet_v1_x0_25", drop_rate=0.1).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, 256, 2, 2)
        torch.testing.assert_close(model(x), model.forward_head(feats))
    model.reset_classifier(5)
    with torch.no_grad():
        assert model(x).shape == (2, 5)


def test_bad_arguments() -> None:
    with pytest.raises(UserInputError):
        MobileNetV1(0.0)
    with pytest.raises(UserInputError):
        create_model("mobilenet_v1_x1_0", groups=3)
