"""The inference-optimised models: BN folding, the folded channel shuffle, channels_last, parity."""

from __future__ import annotations

import itertools

import pytest
import torch
import torchvision
from torch import nn

from shufflenet.deploy.fold import FoldedConv, fold_bn
from shufflenet.deploy.optimize import optimize
from shufflenet.deploy.parity import FP32_TOLERANCE, compare, compare_outputs
from shufflenet.deploy.shufflenet_v2 import BranchStep, ConcatStep, FoldedShuffleNetV2
from shufflenet.errors import WrongTypeError
from shufflenet.models import create_model
from shufflenet.models.layers import ChannelShuffle
from shufflenet.models.shufflenet_v2 import ShuffleSplit


def _trained_like(model: nn.Module, seed: int = 0) -> nn.Module:
    """BN statistics and affine parameters far from the identity, as after training: folding them wrong
    (or permuting a channel's statistics onto another) then changes the output well above rounding."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) * 2 + 0.2)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.3)
    return model.eval()


def test_fold_bn_equals_conv_then_bn() -> None:
    conv = nn.Conv2d(8, 16, 3, 2, 1, bias=False)
    bn = _trained_like(nn.Sequential(nn.BatchNorm2d(16)))[0]
    w, b = fold_bn(conv, bn)
    x = torch.randn(2, 8, 9, 9)
    with torch.no_grad():
        expected = bn(conv(x))
        got = nn.functional.conv2d(x, w, b, 2, 1)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_folded_conv_permutations_move_channels() -> None:
    conv = nn.Conv2d(6, 4, 1, bias=True)
    fc = FoldedConv.from_conv_bn(conv, None, relu=False)
    order_in, order_out = torch.tensor([3, 0, 5, 1, 4, 2]), torch.tensor([2, 0, 3, 1])
    x = torch.randn(1, 6, 5, 5)
    with torch.no_grad():
        expected = conv(x)[:, order_out]
        fc.permute_inputs(order_in)
        fc.permute_outputs(order_out)
        got = fc(x[:, order_in])
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)  # only the summation order differs
    with pytest.raises(ValueError, match="not a permutation"):
        fc.permute_inputs(torch.tensor([0, 0, 1, 2, 3, 4]))


VARIANTS = list(itertools.product(["official", "torchvision"], [False, True], [False, True], [False, True]))


@pytest.mark.parametrize("layout, se, residual, extra_dw", VARIANTS)
def test_folded_shufflenet_v2_matches_every_variant(layout: str, se: bool, residual: bool, extra_dw: bool) -> None:
    model = _trained_like(create_model("shufflenet_v2_x0_5", layout=layout, se=se, residual=residual,
                                       extra_dw=extra_dw))
    opt = optimize(model, channels_last=False)
    assert isinstance(opt, FoldedShuffleNetV2)
    parity = compare(model, opt, torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)))
    assert parity.ok(), parity
    assert parity.top1_agreement == 1.0


@pytest.mark.parametrize("name", ["shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_folded_shufflenet_v2_matches_every_width(name: str, channels_last: bool) -> None:
    model = _trained_like(create_model(name))
    opt = optimize(model, channels_last=channels_last)
    parity = compare(model, opt, torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2)))
    assert parity.ok(), parity


def test_folded_graph_has_no_shuffle_and_reads_one_slice_per_source() -> None:
    model = _trained_like(create_model("shufflenet_v2_x1_0"))
    opt = optimize(model, channels_last=False)
    assert not any(isinstance(m, ChannelShuffle | ShuffleSplit | nn.BatchNorm2d) for m in opt.modules())
    units = [u for s in model.stage_names for u in getattr(model, s)]
    branches = [s for s in opt.steps if isinstance(s, BranchStep)]
    concats = [s for s in opt.steps if isinstance(s, ConcatStep)]
    # one branch per basic unit, two per downsampling unit; one concat per stage after the first
    assert len(branches) == sum(1 if u.basic else 2 for u in units)
    assert len(concats) == len(model.stage_names) - 1
    for pieces in opt.pieces:
        sources = [s for s, _, _ in pieces]
        assert len(sources) == len(set(sources)), "a source read in more than one slice"
    # A basic unit's branch reads half the channels: the identity half is never copied.
    widths = {u.branch2[0].in_channels for u in units if u.basic}
    read = {sum(b - a for _, a, b in pieces) for step, pieces in zip(opt.steps, opt.pieces, strict=True)
            if isinstance(step, BranchStep) and step.body[0].in_channels in widths}
    assert read <= widths


def test_torchvision_shufflenet_gets_the_folding_with_its_own_weights() -> None:
    tv = _trained_like(torchvision.models.shufflenet_v2_x1_0())
    opt = optimize(tv)
    assert isinstance(opt, FoldedShuffleNetV2)
    assert any("folded into weight permutations" in s for s in opt.deploy_steps)
    parity = compare(tv, opt, torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(3)))
    assert parity.ok(), parity


def test_other_networks_get_bn_folding_and_channels_last() -> None:
    net = _trained_like(torchvision.models.resnet18())
    opt = optimize(net)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in opt.modules())
    assert opt.deploy_steps == ["BN folded into convolutions (20)", "channels_last"]
    assert compare(net, opt, torch.randn(2, 3, 64, 64)).ok()
    v1 = _trained_like(create_model("shufflenet_v1_g3_x1_0"))
    assert compare(v1, optimize(v1), torch.randn(2, 3, 64, 64)).ok()


def test_optimize_leaves_the_model_alone() -> None:
    model = _trained_like(create_model("shufflenet_v2_x0_5"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimize(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(WrongTypeError, match="takes an nn.Module"):
        optimize("shufflenet_v2_x0_5")  # type: ignore[arg-type]


def test_parity_is_relative_to_the_output_scale() -> None:
    ref = torch.tensor([[10.0, -20.0], [5.0, 1.0]], dtype=torch.float64)
    p = compare_outputs(ref, ref + torch.tensor([[0.0, 0.002], [0.0, 0.0]], dtype=torch.float64))
    assert p.max_abs_error == pytest.approx(0.002) and p.output_scale == 20.0
    assert p.relative_error == pytest.approx(1e-4) and p.ok(FP32_TOLERANCE * 1.01) and not p.ok(FP32_TOLERANCE * 0.99)
    flipped = compare_outputs(ref, torch.tensor([[10.0, -20.0], [1.0, 5.0]]))
    assert flipped.top1_agreement == 0.5
