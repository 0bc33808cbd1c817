"""ShuffleNet V1 against the V1 paper (Fig. 2, Table 1, Table 2) and the official channel tables."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers import conv_fc_madds, weight_count
from shufflenet.errors import UserInputError
from shufflenet.models import create_model, get_entry, list_models
from shufflenet.models.layers import ChannelShuffle
from shufflenet.models.shufflenet_v1 import OFFICIAL_CHANNELS, ShuffleNetV1, ShuffleV1Unit, stage_channels

GROUPS = (1, 2, 3, 4, 8)
WIDTHS = {"0_25": 0.25, "0_5": 0.5, "1_0": 1.0, "1_5": 1.5, "2_0": 2.0}


def _madds_and_weights(model: nn.Module) -> tuple[float, float]:
    """(conv + FC multiply-adds, conv + FC weights) in millions."""
    return conv_fc_madds(model) / 1e6, weight_count(model) / 1e6


def _meta(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, **kwargs)


@pytest.mark.parametrize("g, paper", [(1, 143), (2, 140), (3, 137), (4, 133), (8, 137)])
def test_table1_complexity_at_1x(g: int, paper: int) -> None:
    madds, _ = _madds_and_weights(_meta(f"shufflenet_v1_g{g}_x1_0"))
    assert abs(madds - paper) / paper <= 0.02, f"g={g}: {madds:.1f}M vs Table 1 {paper}M"
    assert get_entry(f"shufflenet_v1_g{g}_x1_0").paper.mflops == paper


# Computed from the official repository's channel tables; the README lists 38/138/292/524 and 40/138/290/522.
OFFICIAL_MADDS = {
    3: {"0_5": 37.6, "1_0": 137.5, "1_5": 292.4, "2_0": 524.0},
    8: {"0_5": 40.5, "1_0": 138.4, "1_5": 290.2, "2_0": 521.9},
}
OFFICIAL_G3_WEIGHTS = {"0_5": 0.71, "1_0": 1.84, "1_5": 3.40, "2_0": 5.40}


@pytest.mark.parametrize("g", [3, 8])
@pytest.mark.parametrize("w", ["0_5", "1_0", "1_5", "2_0"])
def test_official_channel_tables(g: int, w: str) -> None:
    model = _meta(f"shufflenet_v1_g{g}_x{w}")
    assert tuple(model.stage_out_channels) == OFFICIAL_CHANNELS[g, WIDTHS[w]]
    madds, weights = _madds_and_weights(model)
    assert abs(madds - OFFICIAL_MADDS[g][w]) <= 0.1, f"{madds:.2f}M"
    if g == 3:
        assert abs(weights - OFFICIAL_G3_WEIGHTS[w]) <= 0.01, f"{weights:.3f}M"


def test_derived_widths_follow_the_rule() -> None:
    # Table 1 at 1x, exactly.
    assert [stage_channels(g, 1.0)[1] for g in GROUPS] == [144, 200, 240, 272, 384]
    # The rule reproduces the official tables (which are returned verbatim anyway).
    for g in GROUPS:
        for s in WIDTHS.values():
            c1, c2, c3, c4 = stage_channels(g, s)
            assert c2 % (4 * g) == 0 and (c3, c4) == (2 * c2, 4 * c2)
            assert c1 % g == 0 and (c2 - c1) % g == 0


def test_registry_names_and_paper_refs() -> None:
    v1 = list_models("shufflenet_v1_*")
    assert v1 == sorted(f"shufflenet_v1_g{g}_x{w}" for g in GROUPS for w in WIDTHS)
    assert get_entry("shufflenet_v1_g3_x2_0").paper.mflops == 524
    assert get_entry("shufflenet_v1_g8_x0_5").paper.mparams == 1.0
    assert get_entry("shufflenet_v1_g4_x0_25").paper.mflops == 13
    assert get_entry("shufflenet_v1_g2_x0_5").paper.source.startswith("V1 Table 2")
    assert get_entry("shufflenet_v1_g2_x0_5").paper.tolerance == 0.25  # a complexity level, not a count


def test_stride1_unit_adds_identity() -> None:
    unit = ShuffleV1Unit(48, 48, 1, groups=3).eval()
    assert isinstance(unit.shortcut, nn.Identity)
    x = torch.randn(2, 48, 8, 8).relu()
    with torch.no_grad():
        expected = torch.relu(unit.pw2(unit.dw(unit.shuffle(unit.pw1(x)))) + x)
        torch.testing.assert_close(unit(x), expected)


def test_stride2_unit_concatenates_avgpool_shortcut() -> None:
    unit = ShuffleV1Unit(24, 240, 2, groups=3).eval()
    assert isinstance(unit.shortcut, nn.AvgPool2d)
    assert (unit.shortcut.kernel_size, unit.shortcut.stride, unit.shortcut.padding) == (3, 2, 1)
    assert unit.pw2[0].out_channels == 240 - 24  # branch outputs out - in
    x = torch.randn(2, 24, 8, 8).relu()
    with torch.no_grad():
        y = unit(x)
        assert y.shape == (2, 240, 4, 4)
        torch.testing.assert_close(y[:, :24], nn.functional.avg_pool2d(x, 3, 2, 1))
        torch.testing.assert_close(y[:, 24:], torch.relu(unit.branch(x)))


def test_unit_layers() -> None:
    model = ShuffleNetV1(groups=3)
    first, later = model.stage2[0], model.stage2[1]
    # No ReLU after the depthwise conv nor after the second pointwise GConv (Fig. 2).
    for unit in (first, later):
        assert [type(m) for m in unit.dw] == [nn.Conv2d, nn.BatchNorm2d]
        assert [type(m) for m in unit.pw2] == [nn.Conv2d, nn.BatchNorm2d]
        assert isinstance(unit.pw1[2], nn.ReLU)
        assert unit.dw[0].groups == unit.dw[0].in_channels == 60  # bottleneck = 240 / 4
        assert isinstance(unit.shuffle, ChannelShuffle) and unit.shuffle.groups == 3
        assert unit.pw2[0].groups == 3
    # Stage2's first pointwise layer is not grouped; every other one is.
    assert first.pw1[0].groups == 1 and first.pw1[0].in_channels == 24
    assert later.pw1[0].groups == 3
    assert model.stage3[0].pw1[0].groups == 3
    assert [len(getattr(model, s)) for s in ("stage2", "stage3", "stage4")] == [4, 8, 4]
    assert isinstance(model.maxpool, nn.MaxPool2d) and model.conv1[0].stride == (2, 2)
    assert not hasattr(model, "conv5")
    # g=1 has no shuffle at all.
    assert isinstance(ShuffleNetV1(groups=1).stage3[1].shuffle, nn.Identity)


def test_small_input_forward_backward() -> None:
    model = create_model("shufflenet_v1_g3_x0_5", small_input=True, in_chans=1, num_classes=10)
    assert model.min_input_size == 8 and isinstance(model.maxpool, nn.Identity)
    x = torch.randn(2, 1, 32, 32)
    y = model(x)
    assert y.shape == (2, 10)
    y.sum().backward()
    assert model.conv1[0].weight.grad is not None
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 8, 8)).shape == (1, 10)
    with pytest.raises(UserInputError):
        model(torch.randn(1, 1, 7, 7))


def test_min_input_size_default_stem() -> None:
    model = create_model("shufflenet_v1_g8_x0_25").eval()
    assert model.min_input_size == 32
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 1000)
    with pytest.raises(UserInputError):
        model(torch.randn(1, 3, 28, 28))


def test_forward_equals_head_of_features_and_reset_classifier() -> None:
    model = create_model("shufflenet_v1_g2_x0_5", drop_rate=0.2).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, model.num_features, 2, 2)
        torch.testing.assert_close(model(x), model.forward_head(feats))
        assert model.forward_head(feats, pre_logits=True).shape == (2, model.num_features)
    model.reset_classifier(7)
    assert model.num_classes == 7 and model.fc.bias is None  # official: no classifier bias
    with torch.no_grad():
        assert model(x).shape == (2, 7)


def test_shuffle_impls_agree() -> None:
    a = create_model("shufflenet_v1_g4_x0_25", small_input=True).eval()
    b = create_model("shufflenet_v1_g4_x0_25", small_input=True, shuffle_impl="4d").eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x))


def test_group_mismatch_raises_user_input_error() -> None:
    # Bottleneck 200 / 4 = 50 is not divisible by 3.
    with pytest.raises(UserInputError, match="50 channels are not divisible by groups=3"):
        ShuffleNetV1(groups=3, stage_out_channels=[24, 200, 400, 800])
    with pytest.raises(UserInputError, match="groups=5"):
        ShuffleNetV1(groups=5)
    with pytest.raises(UserInputError, match="stage_out_channels"):
        ShuffleNetV1(groups=3, stage_out_channels=[24, 240, 480])
    with pytest.raises(UserInputError):
        create_model("shufflenet_v1_g3_x1_0", bogus=1)
