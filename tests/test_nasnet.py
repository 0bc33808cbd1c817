"""NASNet-A mobile (4 @ 1056) against the NASNet paper's Table 3 and its published cell structure."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import shufflenet.models.nasnet  # noqa: F401  (registers nasnet_a_mobile)
from helpers import assert_traceable, conv_fc_madds
from shufflenet.audit import audit_model, feature_reuse
from shufflenet.cost import count_cost
from shufflenet.errors import UserInputError
from shufflenet.models import create_model, get_entry
from shufflenet.models.nasnet import (
    FactorizedReduction,
    NASNetAMobile,
    NormalCell,
    ReductionCell,
    ReLUConvBN,
    SepConvBranch,
    StemCell,
)

NAME = "nasnet_a_mobile"
PAPER_MFLOPS, PAPER_MPARAMS = 564, 5.3  # NASNet paper Table 3, quoted in ShuffleNet V2 Table 8
CELL_TYPES = ["StemCell"] * 2 + ["NormalCell"] * 4 + ["ReductionCell"] + ["NormalCell"] * 4 + \
    ["ReductionCell"] + ["NormalCell"] * 4
CELL_FILTERS = [11, 22] + [44] * 4 + [88] * 5 + [176] * 5
CELL_OUT = [44, 88] + [264] * 4 + [352] + [528] * 4 + [704] + [1056] * 4
CELL_SIDE_224 = [56, 28] + [28] * 4 + [14] * 5 + [7] * 5
# fragmented ops per cell as the audit counts them (each depthwise / pointwise conv, pool, 1x1 conv):
# normal 25, reduction 26, +3 where h_prev goes through the factorized reduction (2 pools + 2 convs for
# one 1x1), the first stem cell 25 (no 1x1 on h_prev)
CELL_OPS = [25, 29, 28, 25, 25, 25, 26, 28, 25, 25, 25, 26, 28, 25, 25, 25]


@pytest.fixture(scope="module")
def cost_224():
    torch.manual_seed(0)
    return count_cost(create_model(NAME).eval(), (1, 3, 224, 224))


def test_complexity_matches_paper_table3(cost_224) -> None:
    mflops, mparams = cost_224.flops / 1e6, cost_224.params / 1e6
    assert abs(mflops - PAPER_MFLOPS) / PAPER_MFLOPS <= 0.02, f"{mflops:.1f} M vs {PAPER_MFLOPS} M"
    assert abs(mparams - PAPER_MPARAMS) / PAPER_MPARAMS <= 0.02, f"{mparams:.3f} M vs {PAPER_MPARAMS} M"
    assert round(mflops, 1) == 563.6 and cost_224.params == 5_289_978
    # the engine counts conv + FC multiply-adds only: the same as an independent hook count
    with torch.device("meta"):
        meta = create_model(NAME)
    assert conv_fc_madds(meta) == cost_224.flops
    paper = get_entry(NAME).paper
    assert (paper.mflops, paper.mparams, paper.tolerance) == (564, 5.3, 0.02) and "Table 3" in paper.source


def test_structure_is_the_published_mobile_model() -> None:
    with torch.device("meta"):
        model = create_model(NAME)
    conv = model.stem.conv
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding) == (
        3, 32, (3, 3), (2, 2), (0, 0))
    assert [type(c).__name__ for c in model.cells] == CELL_TYPES
    assert [c.conv_1x1.conv.out_channels for c in model.cells] == CELL_FILTERS
    assert [c.out_channels for c in model.cells] == CELL_OUT
    assert model.num_features == 1056 and model.num_conv_filters == 44 and model.min_input_size == 32
    assert model.fc.in_features == 1056 and model.fc.out_features == 1000
    # h_prev: the stem output as it is, factorized reduction after every stride-2 cell, else a 1x1 conv
    prev = [type(c.prev).__name__ for c in model.cells]
    assert prev[0] == "Identity"
    assert [i for i, p in enumerate(prev) if p == "FactorizedReduction"] == [1, 2, 7, 12]
    assert all(p == "ReLUConvBN" for i, p in enumerate(prev) if i not in (0, 1, 2, 7, 12))
    # the first stem cell's separable ops on h_prev read the stem's 32 channels
    assert model.cells[0].comb0_right.dw1.in_channels == 32 and model.cells[0].comb0_right.pw1.out_channels == 11

    sides = []
    hooks = [c.register_forward_hook(lambda _m, _i, out: sides.append(out.shape[-1])) for c in model.cells]
    with torch.no_grad():
        feats = model.forward_features(torch.zeros(1, 3, 224, 224, device="meta"))
    for h in hooks:
        h.remove()
    assert sides == CELL_SIDE_224 and tuple(feats.shape) == (1, 1056, 7, 7)


def _branch(cell: nn.Module, name: str) -> tuple[int, int]:
    b = getattr(cell, name)
    assert isinstance(b, SepConvBranch)
    # the separable conv applied twice: dw (stride) pw BN, dw pw BN, each after a ReLU
    assert [type(m).__name__ for m in b] == ["ReLU", "Conv2d", "Conv2d", "BatchNorm2d"] * 2
    assert b.dw1.groups == b.dw1.in_channels and b.dw2.groups == b.dw2.in_channels
    assert b.pw1.kernel_size == b.pw2.kernel_size == (1, 1) and b.dw2.stride == (1, 1)
    return b.dw1.kernel_size[0], b.dw1.stride[0]


def test_cell_ops_are_nasnet_a() -> None:
    normal = NormalCell(264, 264, 44)
    assert {n: _branch(normal, n) for n in ("comb0_left", "comb0_right", "comb1_left", "comb1_right",
                                            "comb4_left")} == {
        "comb0_left": (5, 1), "comb0_right": (3, 1), "comb1_left": (5, 1), "comb1_right": (3, 1),
        "comb4_left": (3, 1)}
    for n in ("comb2_left", "comb3_left", "comb3_right"):
        pool = getattr(normal, n)
        assert isinstance(pool, nn.AvgPool2d) and pool.kernel_size == 3 and pool.stride == 1
        assert not pool.count_include_pad
    assert sum(isinstance(m, SepConvBranch) for m in normal.children()) == 5

    red = ReductionCell(264, 264, 88)
    assert {n: _branch(red, n) for n in ("comb0_left", "comb0_right", "comb1_right", "comb2_right",
                                         "comb4_left")} == {
        "comb0_left": (5, 2), "comb0_right": (7, 2), "comb1_right": (7, 2), "comb2_right": (5, 2),
        "comb4_left": (3, 1)}
    assert isinstance(red.comb1_left, nn.MaxPool2d) and red.comb1_left.stride == 2
    assert isinstance(red.comb2_left, nn.AvgPool2d) and red.comb2_left.stride == 2
    assert isinstance(red.comb3_right, nn.AvgPool2d) and red.comb3_right.stride == 1
    assert isinstance(red.comb4_right, nn.MaxPool2d) and red.comb4_right.stride == 2
    assert isinstance(red.prev, ReLUConvBN) and isinstance(ReductionCell(264, 264, 88, 2).prev,
                                                           FactorizedReduction)
    assert isinstance(StemCell(32, 32, 11).prev, nn.Identity)

    torch.manual_seed(0)
    x, prev = torch.randn(2, 264, 8, 8), torch.randn(2, 264, 8, 8)
    with torch.no_grad():
        assert normal.eval()(x, prev).shape == (2, 264, 8, 8)
        assert red.eval()(x, prev).shape == (2, 352, 4, 4)
        # h_prev from before a reduction (twice the size): factorized reduction to the cell's size
        assert NormalCell(352, 264, 88, 2).eval()(torch.randn(2, 352, 4, 4), prev).shape == (2, 528, 4, 4)
        # odd sizes (the stem's 111): both paths of the factorized reduction give ceil(n / 2)
        assert FactorizedReduction(32, 22).eval()(torch.randn(1, 32, 15, 15)).shape == (1, 22, 8, 8)


def test_normal_cell_output_is_h_prev_and_the_five_blocks() -> None:
    torch.manual_seed(0)
    cell = NormalCell(12, 12, 4).eval()
    x, prev = torch.randn(1, 12, 6, 6), torch.randn(1, 12, 6, 6)
    with torch.no_grad():
        out = cell(x, prev)
        h, h_prev = cell.conv_1x1(x), cell.prev(prev)
        torch.testing.assert_close(out[:, :4], h_prev)
        torch.testing.assert_close(out[:, 4:8], cell.comb0_left(h) + cell.comb0_right(h_prev))
        torch.testing.assert_close(out[:, 12:16], cell.comb2_left(h) + h_prev)  # block 2: avg3x3(h) + h_prev
        torch.testing.assert_close(out[:, 16:20], 2 * cell.comb3_left(h_prev))  # block 3: two avg3x3(h_prev)
        torch.testing.assert_close(out[:, 20:], cell.comb4_left(h) + h)         # block 4: sep3x3(h) + h


def test_min_input_feature_map_and_too_small_an_input() -> None:
    """At 32 px the last cell leaves one position of 1056 channels, after the ReLU before the global pool;
    31 px is a clear error (forward/backward and the head contract are the registry's generic tests)."""
    torch.manual_seed(0)
    model = create_model(NAME).eval()
    assert model.min_input_size == 32
    with torch.no_grad():
        feats = model.forward_features(torch.randn(2, 3, 32, 32))
    assert feats.shape == (2, 1056, 1, 1) and feats.min() >= 0
    with pytest.raises(UserInputError, match="at least 32x32"):
        model(torch.randn(1, 3, 31, 31))


def test_small_input_fashion_mnist_and_options() -> None:
    torch.manual_seed(0)
    model = create_model(NAME, small_input=True, in_chans=1, num_classes=10, drop_rate=0.2)
    assert model.stem.conv.stride == (1, 1) and model.stem.conv.in_channels == 1
    assert [type(c).__name__ for c in model.cells][:2] == ["StemCell", "NormalCell"]
    assert len(model.cells) == 15 and model.cells[0].conv_1x1.conv.out_channels == 22
    assert model.min_input_size == 8 and model.drop_rate == 0.2
    x = torch.randn(2, 1, 28, 28)
    out = model(x)
    assert out.shape == (2, 10)
    out.sum().backward()
    assert model.stem.conv.weight.grad is not None
    model.eval()
    with torch.no_grad():
        assert model.forward_features(x).shape == (2, 1056, 4, 4)
        model.reset_classifier(4)
        assert model(x).shape == (2, 4) and model.num_classes == 4
    with pytest.raises(UserInputError, match="1 input channels"):
        model(torch.randn(1, 3, 28, 28))


def test_other_sizes_and_bad_arguments() -> None:
    with torch.device("meta"):
        small = NASNetAMobile(2, 480)
    assert small.num_features == 480 and len(small.cells) == 2 + 3 * 2 + 2
    assert [c.conv_1x1.conv.out_channels for c in small.cells][:3] == [5, 10, 20]
    with pytest.raises(UserInputError, match="multiple of 24"):
        NASNetAMobile(penultimate_filters=1000)
    with pytest.raises(UserInputError, match="penultimate_filters"):
        NASNetAMobile(penultimate_filters=48)
    with pytest.raises(UserInputError, match="num_cells"):
        NASNetAMobile(0)
    with pytest.raises(UserInputError, match="prev_stride"):
        NormalCell(8, 8, 4, prev_stride=3)
    with pytest.raises(UserInputError, match="nasnet_a_mobile has no keyword 'groups'"):
        create_model(NAME, groups=3)
    with pytest.raises(UserInputError, match="drop_rate"):
        create_model(NAME, drop_rate=1.0)


def test_audit_finds_one_block_per_cell_and_flags_them_on_g3() -> None:
    torch.manual_seed(0)
    model = create_model(NAME).eval()
    report = audit_model(model, (1, 3, 32, 32))
    g3 = report.findings["G3"]
    assert [f.module for f in g3] == [f"cells.{i}" for i in range(16)]
    assert [f.module_type for f in g3] == CELL_TYPES
    assert [f.evidence["ops"] for f in g3] == CELL_OPS
    assert all(f.flagged for f in g3)
    # the feature-reuse trace sees the same 16 cells as its blocks
    reuse = feature_reuse(model, (1, 3, 32, 32))
    assert [b.name for b in reuse.blocks] == [f"cells.{i}" for i in range(16)]


def test_fx_traceable() -> None:
    torch.manual_seed(0)
    model = create_model(NAME).eval()

    assert_traceable(model, torch.randn(1, 3, 32, 32), jit=False)
