"""CondenseNet (converted form) against the CondenseNet paper's Table 5 / the V2 paper's Table 8, the official
code's structure (ShichenLiu/CondenseNet), the audit's G2 reading and the feature-reuse trace."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.fx
from torch import nn

import shufflenet.models.condensenet  # noqa: F401  (registers the models)
from helpers import assert_traceable, conv_fc_madds
from shufflenet.audit.conv_rules import g2_findings
from shufflenet.audit.reuse import feature_reuse
from shufflenet.audit.trace import trace
from shufflenet.cost import count_cost
from shufflenet.cost.report import CostReport
from shufflenet.errors import UserInputError
from shufflenet.models import create_model, get_entry, list_models
from shufflenet.models.condensenet import CondensedGroupConv, CondenseNet, DenseLayer
from shufflenet.models.layers import channel_shuffle

NAMES = ("condensenet_g4", "condensenet_g8")
GROUPS = {"condensenet_g4": 4, "condensenet_g8": 8}
PAPER = {"condensenet_g4": (529, 4.8), "condensenet_g8": (274, 2.9)}  # CondenseNet Table 5 / V2 Table 8
# Exact counts at 224x224: conv + FC multiply-adds, and all parameters (BN included).
MADDS = {"condensenet_g4": 516_640_576, "condensenet_g8": 261_545_792}
PARAMS = {"condensenet_g4": 4_773_944, "condensenet_g8": 2_935_416}
STAGES, GROWTH = (4, 6, 8, 10, 8), (8, 16, 32, 64, 128)


@functools.cache
def _costs(name: str) -> tuple[CostReport, CostReport]:
    """(conv + FC count, count with element-wise ops) at 224x224, once per model."""
    torch.manual_seed(0)
    model = create_model(name).eval()
    size = (1, 3, 224, 224)
    return count_cost(model, size), count_cost(model, size, count_elementwise_flops=True)


def _block_inputs() -> list[list[int]]:
    """Input width of every dense layer, per block: stem 2*8 = 16, each layer adds its block's growth."""
    out, c = [], 2 * GROWTH[0]
    for n, k in zip(STAGES, GROWTH, strict=True):
        out.append([c + j * k for j in range(n)])
        c += n * k
    return out


def test_registry_names_and_paper_refs() -> None:
    assert list_models("condensenet_*") == list(NAMES)
    for name in NAMES:
        paper = get_entry(name).paper
        assert (paper.mflops, paper.mparams) == PAPER[name]
        assert paper.source.startswith("CondenseNet paper Table 5")


@pytest.mark.parametrize("name", NAMES)
def test_complexity_matches_the_paper(name: str) -> None:
    rep, rep_elem = _costs(name)
    mflops, mparams = PAPER[name]
    assert rep.flops == MADDS[name] and rep.params == PARAMS[name] and not rep.unsupported_ops
    assert abs(rep.params / 1e6 - mparams) / mparams <= 0.02  # 4.77 M (-0.5%), 2.94 M (+1.2%)
    # The paper's FLOPs are the official utils.measure_model: conv + FC multiply-adds, plus one op per ReLU
    # output, the average-pool window sums (global pool: 1 per input element) and the FC bias adds.
    extra = sum(r.flops for r in rep_elem.layers if r.kind in ("act", "pool")) + 1000
    assert abs((rep.flops + extra) / 1e6 - mflops) / mflops <= 0.002  # 529.3, 274.2
    # conv + FC alone is lower by exactly those ops: 2.3% (G=4) and 4.6% (G=8)
    assert 0.02 < 1 - rep.flops / 1e6 / mflops < 0.05
    assert get_entry(name).paper.tolerance == 0.05


def test_engine_agrees_with_an_independent_count() -> None:
    with torch.device("meta"):
        model = create_model("condensenet_g8")
    assert conv_fc_madds(model) == MADDS["condensenet_g8"]


@pytest.mark.parametrize("name", NAMES)
def test_structure_follows_the_official_imagenet_config(name: str) -> None:
    g = GROUPS[name]
    model = create_model(name)
    stem = model.features.init_conv
    assert (stem.in_channels, stem.out_channels, stem.kernel_size, stem.stride) == (3, 16, (3, 3), (2, 2))
    blocks = [getattr(model.features, f"denseblock_{i}") for i in range(1, 6)]
    assert [len(b) for b in blocks] == list(STAGES) and sum(map(len, blocks)) == 36
    pools = [m for m in model.features if isinstance(m, nn.AvgPool2d)]
    assert len(pools) == 4 and all((p.kernel_size, p.stride) == (2, 2) for p in pools)
    for block, widths, k in zip(blocks, _block_inputs(), GROWTH, strict=True):
        assert all(type(layer) is DenseLayer for layer in block)
        for layer, c in zip(block, widths, strict=True):
            c1 = layer.conv_1
            # kept channels: G groups x in/C each (C = G) = in_channels; per group in/C of them
            assert c1.index.dtype == torch.long and c1.index.tolist() == list(range(c))
            assert c1.norm.num_features == c and c1.groups == g
            assert c1.conv.weight.shape == (4 * k, c // g, 1, 1) and c1.conv.groups == g
            c2 = layer.conv_2.conv
            assert c2.weight.shape == (k, 4 * k // g, 3, 3) and c2.groups == g and c2.padding == (1, 1)
    assert model.body_channels == 2064 and model.features.norm_last.num_features == 2064
    # the condensed classifier reads int(2064 * 0.5) features, spread over every dense layer's output
    assert model.num_features == 1032 and model.fc.in_features == 1032
    assert model.select.index.tolist() == list(range(0, 2064, 2))
    assert model.min_input_size == 32
    keys = set(model.state_dict())
    assert {"features.denseblock_5.denselayer_8.conv_1.index", "select.index"} <= keys


def test_output_shapes() -> None:
    model = create_model("condensenet_g8").eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert model.forward_features(x).shape == (2, 2064, 2, 2)
        assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, 1032)
        assert model(x).shape == (2, 1000)


def test_condensed_conv_equals_the_learned_masked_conv() -> None:
    """The converted layer (official CondensingConv) computes the learned group conv it came from: a dense 1x1
    conv whose output channel o belongs to group o % G and reads only that group's in/C kept channels."""
    c_in, c_out, g = 16, 32, 4
    kept = [torch.randperm(c_in)[: c_in // g].sort().values for _ in range(g)]
    kept[1][0] = kept[0][0]  # a channel kept by two groups
    weight = torch.randn(c_out, c_in, 1, 1)
    mask = torch.zeros_like(weight)
    for i in range(g):
        mask[i::g, kept[i]] = 1
    bn = nn.BatchNorm2d(c_in).eval()
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.normal_()
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2.0)

    conv = CondensedGroupConv(c_in, c_out, g).eval()
    index = torch.cat(kept)
    conv.index.copy_(index)
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(conv.norm, name).data.copy_(getattr(bn, name).data[index])
    d = c_out // g
    for i in range(g):
        for k in range(d):  # converted output i*d + k is learned output i + k*G
            conv.conv.weight.data[i * d + k] = weight[i + k * g, kept[i]]
    x = torch.randn(2, c_in, 5, 5)
    with torch.no_grad():
        ref = nn.functional.conv2d(torch.relu(bn(x)), weight * mask)
        torch.testing.assert_close(conv(x), ref)
        # the 4-D, shape-free shuffle is the package's channel shuffle
        y = torch.randn(2, c_out, 3, 3)
        flat = y.flatten(2).unflatten(1, (g, -1)).transpose(1, 2).flatten(1, 2).reshape_as(y)
        torch.testing.assert_close(flat, channel_shuffle(y, g))


def test_kept_indices_travel_with_the_weights() -> None:
    src = create_model("condensenet_g8", num_classes=10).eval()
    sd = src.state_dict()
    sd["features.denseblock_1.denselayer_2.conv_1.index"] = torch.tensor([0] * 8 + list(range(8, 24)))
    sd["select.index"] = torch.arange(1032, 2064)
    dst = create_model("condensenet_g8", num_classes=10).eval()
    dst.load_state_dict(sd)
    assert dst.select.index[0] == 1032 and dst.features.denseblock_1.denselayer_2.conv_1.index[:9].sum() == 8
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(dst(x), src(x))


def test_options_small_input_drop_rate_and_reset_classifier() -> None:
    model = create_model("condensenet_g4", num_classes=10, in_chans=1, small_input=True, drop_rate=0.2)
    assert model.features.init_conv.stride == (1, 1) and model.min_input_size == 8
    assert "transition_1" not in model.features._modules and "transition_2" in model.features._modules
    assert model.drop_rate == 0.2 and model.in_chans == 1
    model.eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert model.forward_features(x).shape == (2, 2064, 3, 3)  # 28, 28, 14, 7, 3
        assert model(x).shape == (2, 10)
        assert model(torch.randn(1, 1, 8, 8)).shape == (1, 10)
    model.reset_classifier(4)
    assert model.num_classes == 4 and model.fc.in_features == 1032
    with torch.no_grad():
        assert model(torch.randn(1, 1, 32, 32)).shape == (1, 4)
    with pytest.raises(UserInputError):
        model(torch.randn(1, 3, 28, 28))


def test_traceable_by_fx_and_jit() -> None:
    model = create_model("condensenet_g8").eval()

    assert_traceable(model, torch.randn(2, 3, 32, 32))


def test_bad_arguments() -> None:
    with pytest.raises(UserInputError, match="divisible by groups=3"):
        CondenseNet(groups=3)
    with pytest.raises(UserInputError, match="one entry per dense block"):
        CondenseNet((4, 6), (8, 16, 32))
    with pytest.raises(UserInputError, match="stages"):
        CondenseNet("4-6-8")
    with pytest.raises(UserInputError, match="growth"):
        CondenseNet((4, 6), (8, 0))
    with pytest.raises(UserInputError, match="classifier_keep"):
        CondenseNet(classifier_keep=1.5)
    with pytest.raises(UserInputError, match="condensenet_g4.*groups"):
        create_model("condensenet_g4", groups=2)
    with pytest.raises(UserInputError, match="num_classes"):
        create_model("condensenet_g8", num_classes=0)


def test_audit_flags_the_group_convs_on_g2() -> None:
    """Sec. 2, G2: every 1x1 and 3x3 conv is a 4-group conv; on the 112-14 px maps of blocks 1-4 each costs
    at least 10% more MAC than g=1 at equal FLOPs (flagged); on block 5's 7x7 maps the overhead is small."""
    _, graph, _ = trace(create_model("condensenet_g4"), (1, 3, 224, 224))
    found = g2_findings(graph)
    assert len(found) == 72 and {f.evidence["groups"] for f in found} == {4}
    kernels = [f.evidence["kernel"] for f in found]
    assert kernels.count("1x1") == kernels.count("3x3") == 36
    flagged = {f.module for f in found if f.flagged}
    early = {f.module for f in found if ".denseblock_5." not in f.module}
    assert flagged == early and len(early) == 56


def test_feature_reuse_is_dense_inside_a_block() -> None:
    """Every layer's growth channels reach every later layer of its dense block unchanged (DenseNet-like,
    no decay with distance) and nothing crosses a transition (average pooling computes new values)."""
    r = feature_reuse(create_model("condensenet_g4"), (1, 3, 64, 64))
    assert len(r.blocks) == 36 and {b.type for b in r.blocks} == {"DenseLayer"}
    first = 0
    for n, k, widths in zip(STAGES, GROWTH, _block_inputs(), strict=True):
        block = range(first, first + n)
        for t in block:
            assert r.blocks[t].new_channels == k and r.blocks[t].in_channels == widths[t - first]
            assert r.outside[t] == widths[0]  # the stem's / the pooled channels reach every layer
            for i in range(len(r.blocks)):
                assert r.channels[i][t] == (k if i in block and i < t else 0), (i, t)
        first += n
    assert [s.r for s in r.stages()] == [1.0] * 5


def test_spread_classifier_selection_trains_the_last_layer() -> None:
    """The condensed classifier keeps every other feature at init, so the last dense layer's output reaches
    the loss (an ``arange`` selection would keep none of it); too small an input is a clear error."""
    model = create_model("condensenet_g8", num_classes=7)
    size = model.min_input_size
    model(torch.randn(2, 3, size, size)).square().mean().backward()
    assert model.features.denseblock_5.denselayer_8.conv_2.conv.weight.grad.abs().sum() > 0
    with pytest.raises(UserInputError):
        model(torch.randn(1, 3, size - 1, size - 1))
