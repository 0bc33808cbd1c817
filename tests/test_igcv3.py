"""IGCV3-D against the released model (homles11/IGCV3 ``models/igcv3-symbol.json``), the official width
arithmetic and Table 8's complexity; the audit reads its 2-group 1x1 convs as G2 offenders."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import shufflenet.models.igcv3  # noqa: F401  (registers igcv3_d_*)
from helpers import assert_traceable, conv_fc_madds
from shufflenet.audit import audit_model, feature_reuse
from shufflenet.cost import count_cost
from shufflenet.errors import UserInputError
from shufflenet.models import create_model, get_entry, list_models
from shufflenet.models.igcv3 import IGCV3, IGCV3Block, Permutation, stage_plan

NAMES = ["igcv3_d_x0_7", "igcv3_d_x1_0", "igcv3_d_x1_4"]
# Table 8 MFLOPs; params only where verified (IGCV3 paper / official README ImageNet table: 3.5 M at 1.0)
PAPER = {"igcv3_d_x0_7": (210, None), "igcv3_d_x1_0": (318, 3.5), "igcv3_d_x1_4": (610, None)}
# What this package builds and counts (conv + FC multiply-adds; all parameters, BN included)
BUILT = {"igcv3_d_x0_7": (167.7281, 2_447_130), "igcv3_d_x1_0": (312.970176, 3_491_688),
         "igcv3_d_x1_4": (621.45974, 6_315_568)}
REPEATS = (1, 4, 6, 8, 6, 6, 1)


@pytest.fixture(scope="module")
def costs():
    torch.manual_seed(0)
    return {n: count_cost(create_model(n).eval(), (1, 3, 224, 224)) for n in NAMES}


def test_registry_names() -> None:
    assert list_models("igcv3_*") == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_complexity_against_table8(costs, name: str) -> None:
    rep = costs[name]
    mflops, params = BUILT[name]
    assert rep.complete and rep.flops / 1e6 == pytest.approx(mflops, abs=1e-6) and rep.params == params
    # the engine counts conv + FC multiply-adds only: the same as an independent hook count
    with torch.device("meta"):
        meta = create_model(name)
    assert conv_fc_madds(meta) == rep.flops
    paper = get_entry(name).paper
    assert (paper.mflops, paper.mparams) == PAPER[name] and "Table 8" in paper.source
    gap = rep.flops / 1e6 / paper.mflops - 1
    if name == "igcv3_d_x0_7":
        # the published width-0.7 network is 20% below the paper's "IGCV3-D (0.7)"; the tolerance says so
        assert -0.21 < gap < -0.19 and paper.tolerance == 0.21 and "-20%" in paper.source
    else:
        assert abs(gap) <= 0.02 and paper.tolerance == 0.02
    if paper.mparams:
        assert abs(rep.params / 1e6 / paper.mparams - 1) <= 0.02


def test_x1_0_is_the_released_model_layer_for_layer() -> None:
    with torch.device("meta"):
        model = create_model("igcv3_d_x1_0")
    stem = model.stem[0]
    assert (stem.in_channels, stem.out_channels, stem.kernel_size, stem.stride) == (3, 32, (3, 3), (2, 2))
    assert isinstance(model.stem[2], nn.ReLU6) and model.stage_repeats == REPEATS
    assert len(model.blocks) == 32 and all(isinstance(b, IGCV3Block) for b in model.blocks)
    outs = [b.linear[0].out_channels for b in model.blocks]
    assert outs == [16] + [24] * 4 + [32] * 6 + [64] * 8 + [96] * 6 + [160] * 6 + [320]
    expanded = [b.exp[0].out_channels for b in model.blocks]
    assert expanded == [32, 96] + [144] * 4 + [192] * 6 + [384] * 8 + [576] * 6 + [960] * 6
    strides = [b.depthwise[0].stride[0] for b in model.blocks]
    assert [i for i, s in enumerate(strides) if s == 2] == [1, 5, 11, 25]
    first = {0, 1, 5, 11, 19, 25, 31}  # first unit of each stage: no shortcut
    assert [i for i, b in enumerate(model.blocks) if not b.use_shortcut] == sorted(first)
    for b in model.blocks:
        assert b.exp[0].groups == 2 and b.linear[0].groups == 2 and b.exp[0].kernel_size == (1, 1)
        assert b.depthwise[0].groups == b.depthwise[0].in_channels == b.exp[0].out_channels
        assert b.shuffle.groups == 2
        # BN only after the two group convs: the depthwise's ReLU6 is the block's one non-linearity
        assert len(b.exp) == 2 and len(b.linear) == 2 and isinstance(b.depthwise[2], nn.ReLU6)
    last = model.last_conv[0]
    assert (last.in_channels, last.out_channels, last.groups) == (320, 1280, 1)
    assert model.num_features == 1280 and model.fc.in_features == 1280 and model.min_input_size == 32
    # the released symbol: 98 convs, 34 ReLU6, 25 shortcut adds, 32 permutations
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 98
    assert sum(isinstance(m, nn.ReLU6) for m in model.modules()) == 34
    assert sum(b.use_shortcut for b in model.blocks) == 25


def test_official_width_arithmetic_at_0_7_and_1_4() -> None:
    stem, plan, last = stage_plan(0.7)
    assert (stem, last) == (22, 1280)
    assert [u[0][2] for u in plan] == [12, 18, 22, 46, 68, 112, 224]
    # first units expand round(e * t) of the twice-scaled previous width (official in_c), later t * c
    assert [u[0][1] for u in plan] == [22, 48, 114, 138, 192, 288, 468]
    assert [u[1][1] for u in plan if len(u) > 1] == [108, 132, 276, 408, 672]
    stem, plan, last = stage_plan(1.4)
    assert (stem, last) == (46, 1793)
    assert [u[0][2] for u in plan] == [22, 34, 46, 90, 134, 224, 448]
    assert [u[0][1] for u in plan] == [46, 138, 288, 384, 756, 1128, 1884]
    assert [len(u) for u in plan] == list(REPEATS)
    stem, plan, last = stage_plan(1.0)
    assert [u[0][1] for u in plan] == [32, 96, 144, 192, 384, 576, 960]


def test_permutation_is_the_official_interleaving() -> None:
    x = torch.arange(2 * 12 * 2 * 3, dtype=torch.float32).reshape(2, 12, 2, 3)
    # official: reshape (0, -4, 2, -1, -2), swapaxes(1, 2), reshape (0, -3, -2)
    expected = x.reshape(2, 2, 6, 2, 3).transpose(1, 2).reshape(2, 12, 2, 3)
    for impl in ("5d", "4d"):
        torch.testing.assert_close(Permutation(2, impl)(x), expected)
    assert Permutation(2)(x)[0, :, 0, 0].tolist() == [0, 36, 6, 42, 12, 48, 18, 54, 24, 60, 30, 66]


def test_block_computes_linear_of_depthwise_of_shuffled_expansion() -> None:
    block = IGCV3Block(8, 48, 8, shortcut=True).eval()
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        branch = block.linear(block.depthwise(block.shuffle(block.exp(x))))
        torch.testing.assert_close(block(x), x + branch)
        plain = IGCV3Block(8, 48, 16, stride=2).eval()
        assert plain(x).shape == (2, 16, 3, 3)


@pytest.mark.parametrize("name", NAMES)
def test_min_input_gives_a_1x1_feature_map(name: str) -> None:
    """Total stride 32: a 32 px input leaves one position (forward/backward and the head contract are the
    registry's generic tests)."""
    model = create_model(name).eval()
    assert model.min_input_size == 32
    with torch.no_grad():
        assert model.forward_features(torch.randn(1, 3, 32, 32)).shape == (1, model.num_features, 1, 1)


def test_small_input_fashion_mnist() -> None:
    torch.manual_seed(0)
    model = create_model("igcv3_d_x0_7", small_input=True, in_chans=1, num_classes=10)
    assert model.min_input_size == 16 and model.stem[0].stride == (1, 1) and model.stem[0].in_channels == 1
    y = model(torch.randn(2, 1, 28, 28))
    assert y.shape == (2, 10)
    y.sum().backward()
    assert model.stem[0].weight.grad is not None
    model.eval()
    with torch.no_grad():
        assert model.forward_features(torch.randn(2, 1, 28, 28)).shape == (2, 1280, 2, 2)
    with pytest.raises(UserInputError, match="at least 16x16"):
        model(torch.randn(1, 1, 8, 8))
    with pytest.raises(UserInputError, match="1 input channels"):
        model(torch.randn(1, 3, 28, 28))


def test_audit_flags_its_group_convs_on_g2() -> None:
    r = audit_model(create_model("igcv3_d_x1_0"), (1, 3, 224, 224))
    assert r.verdict("G2") == "flagged" and r.score("G2") < 90
    assert len(r.findings["G2"]) == 64  # the two 2-group 1x1 convs of each of the 32 blocks
    flagged = r.flagged("G2")
    assert flagged and all(f.evidence["groups"] == 2 and f.evidence["kernel"] == "1x1" for f in flagged)
    assert {f.module.rsplit(".", 2)[1] for f in flagged} <= {"exp", "linear"}
    first = next(f for f in flagged if f.module == "blocks.1.exp.0")
    assert (first.evidence["c1"], first.evidence["c2"], first.evidence["map"]) == (16, 96, "112x112")
    assert first.evidence["overhead_pct"] == pytest.approx(100 * (1405696 / 803584 - 1))
    # one block per unit for G3: exp, depthwise and linear conv
    assert [f.evidence["ops"] for f in r.findings["G3"]] == [3] * 32


def test_feature_reuse_sees_one_block_per_unit() -> None:
    rep = feature_reuse(create_model("igcv3_d_x1_0"), (1, 3, 64, 64))
    assert len(rep.blocks) == 32
    # every unit's output is computed (a conv, or a shortcut add): nothing passes a unit unchanged
    assert all(rep.reused(i) == 0 for i in range(32))


def test_traceable_by_fx_and_jit() -> None:
    model = create_model("igcv3_d_x1_0", shuffle_impl="4d").eval()

    graph = assert_traceable(model, torch.randn(2, 3, 32, 32))
    assert sum(n.op == "call_function" and n.target.__name__ == "channel_shuffle" for n in graph.graph.nodes) == 32


def test_bad_arguments() -> None:
    with pytest.raises(UserInputError, match="width_mult"):
        IGCV3(0.0)
    with pytest.raises(UserInputError, match="width_mult"):
        IGCV3("1.0")  # type: ignore[arg-type]
    with pytest.raises(UserInputError, match="above the limit"):
        IGCV3(100.0)
    with pytest.raises(UserInputError, match="shuffle_impl"):
        IGCV3(shuffle_impl="6d")  # type: ignore[arg-type]
    with pytest.raises(UserInputError, match="num_classes"):
        IGCV3(num_classes=0)
    with pytest.raises(UserInputError, match="shortcut"):
        IGCV3Block(8, 48, 8, stride=2, shortcut=True)
    with pytest.raises(UserInputError, match="stride"):
        IGCV3Block(8, 48, 8, stride=3)
    with pytest.raises(UserInputError, match="igcv3_d_x1_0.*width_mult"):
        create_model("igcv3_d_x1_0", width_mult=0.5)
    with pytest.raises(UserInputError, match="igcv3_d_x1_0 has no keyword 'groups'"):
        create_model("igcv3_d_x1_0", groups=4)
