"""Each cost handle and rule against its closed form on hand-sized shapes (fvcore's test pattern)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import conv_flop_count

from shufflenet.cost import CostCounter, CostReport, handles, tables
from shufflenet.errors import UserInputError


class Fn(nn.Module):
    """Wraps a function so the engine can run it as a model."""

    def __init__(self, fn, *params: nn.Module) -> None:
        super().__init__()
        self.fn = fn
        self.mods = nn.ModuleList(params)

    def forward(self, *xs):
        return self.fn(*xs)


def cost(fn, *inputs: torch.Tensor, mods: tuple[nn.Module, ...] = (), **kw) -> CostReport:
    return CostCounter(**kw).run(Fn(fn, *mods), inputs)


def only_row(report: CostReport):
    assert len(report.layers) == 1, [(r.op, r.mac) for r in report.layers]
    return report.layers[0]


# --- pure handles ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "w", "out", "transposed"),
    [
        ((2, 8, 7, 7), (16, 8, 3, 3), (2, 16, 5, 5), False),
        ((2, 8, 7, 7), (16, 2, 3, 3), (2, 16, 7, 7), False),  # groups=4
        ((1, 8, 9, 9), (8, 1, 3, 3), (1, 8, 5, 5), False),  # depthwise, stride 2
        ((1, 16, 4, 4), (16, 4, 2, 2), (1, 8, 8, 8), True),  # transposed, groups=2
        ((3, 4, 10), (6, 4, 3), (3, 6, 8), False),  # 1-d
    ],
)
def test_conv_flops_is_half_of_torch_flop_counter(x, w, out, transposed):
    assert handles.conv_flops(x, w, out, transposed) * 2 == conv_flop_count(x, w, out, transposed)


def test_conv_flops_closed_forms():
    # batch * Cout * H_out * W_out * Cin/g * k^2
    assert handles.conv_flops((2, 8, 7, 7), (16, 8, 3, 3), (2, 16, 5, 5)) == 2 * 16 * 25 * 8 * 9
    assert handles.conv_flops((2, 8, 7, 7), (16, 2, 3, 3), (2, 16, 7, 7)) == 2 * 16 * 49 * 2 * 9
    assert handles.conv_flops((1, 8, 9, 9), (8, 1, 3, 3), (1, 8, 5, 5)) == 8 * 25 * 9


def test_matmul_linear_attention_flops():
    assert handles.matmul_flops((3, 4), (4, 5)) == 3 * 4 * 5
    assert handles.matmul_flops((7, 3, 4), (7, 4, 5)) == 7 * 3 * 4 * 5
    assert handles.linear_flops((2, 6, 10), (4, 10)) == 2 * 6 * 10 * 4
    assert handles.attention_flops((2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 4)) == 2 * 3 * 5 * 7 * (8 + 4)


def test_elementwise_and_pool_flops():
    assert handles.per_element_flops((2, 3, 4)) == 24
    assert handles.per_element_flops((2, 3, 4), 2) == 48
    assert handles.window_pool_flops((1, 4, 5, 5), (3, 3)) == 100 * 9
    assert handles.reduce_flops((1, 4, 5, 5)) == 100


def test_mac_closed_forms():
    x, w, o = (1, 8, 6, 6), (16, 8, 1, 1), (1, 16, 6, 6)
    assert handles.conv_mac(x, w, o) == 36 * (8 + 16) + 8 * 16
    assert handles.conv_mac(x, w, o, bias=True) == 36 * (8 + 16) + 8 * 16 + 16
    assert handles.linear_mac((3, 10), (4, 10), (3, 4), bias=True) == 30 + 40 + 4 + 12
    assert handles.batch_norm_mac((2, 5, 3, 3)) == 2 * 90 + 4 * 5
    assert handles.elementwise_mac([(2, 3), (2, 3)], (2, 3)) == 18
    assert handles.elementwise_mac([(2, 3, 4, 4), (2, 3, 1, 1)], (2, 3, 4, 4)) == 96 + 6 + 96
    assert handles.copy_mac((2, 3)) == 12
    assert handles.cat_mac([(1, 2, 4), (1, 3, 4)]) == 2 * 20
    assert handles.cat_mac([(1, 2, 4), (1, 3, 4)], (1, 5, 4)) == 2 * 20
    assert handles.pool_mac((1, 4, 8, 8), (1, 4, 4, 4)) == 256 + 64
    assert handles.view_mac((1, 2, 3)) == 0
    assert handles.channel_shuffle_mac((1, 8, 5, 5)) == 400
    assert handles.io_elements([(2, 2), (3,)], [(4,)]) == 11


# --- rules applied to real ops ---------------------------------------------------------------------


@pytest.mark.parametrize(("groups", "kind"), [(1, "conv"), (4, "gconv"), (8, "dwconv")])
def test_conv_rule(groups, kind):
    conv = nn.Conv2d(8, 16 if groups < 8 else 8, 3, stride=2, padding=1, groups=groups, bias=True)
    x = torch.randn(2, 8, 9, 9)
    row = only_row(cost(conv, x, mods=(conv,)))
    out = (2, conv.out_channels, 5, 5)
    assert row.op == "convolution" and row.kind == kind and row.output_shape == out
    assert row.flops == handles.conv_flops(x.shape, conv.weight.shape, out)
    assert row.mac == handles.conv_mac(x.shape, conv.weight.shape, out, bias=True)
    assert row.params == sum(p.numel() for p in conv.parameters())
    assert row.mac_bytes == 4 * row.mac


def test_linear_rule_2d_and_3d():
    lin = nn.Linear(10, 4)
    row = only_row(cost(lin, torch.randn(3, 10), mods=(lin,)))
    assert row.op == "addmm" and row.kind == "linear"
    assert row.flops == 3 * 10 * 4
    assert row.mac == handles.linear_mac((3, 10), (4, 10), (3, 4), bias=True)
    assert row.params == 44  # the weight is read through its ``t()`` view
    rep = cost(lin, torch.randn(2, 3, 10), mods=(lin,))
    assert rep.flops == handles.linear_flops((2, 3, 10), (4, 10))


def test_matmul_rules():
    a, b = torch.randn(5, 3, 4), torch.randn(5, 4, 6)
    row = only_row(cost(torch.bmm, a, b))
    assert (row.op, row.flops, row.mac, row.params) == ("bmm", 5 * 3 * 4 * 6, 60 + 120 + 90, 0)


def test_cat_clone_copy_pad_rules():
    a, b = torch.randn(1, 2, 4), torch.randn(1, 3, 4)
    row = only_row(cost(lambda x, y: torch.cat((x, y), 1), a, b))
    assert (row.op, row.kind, row.mac, row.flops) == ("cat", "data", handles.cat_mac([a.shape, b.shape]), 0)
    assert only_row(cost(lambda x: x.transpose(1, 2).contiguous(), a)).mac == 2 * a.numel()
    assert only_row(cost(lambda x: x.clone(), a)).op == "clone"
    assert only_row(cost(lambda x, y: x.copy_(y), a.clone(), a)).mac == 2 * a.numel()
    row = only_row(cost(lambda x: F.pad(x, (1, 1)), a))
    assert (row.op, row.mac) == ("constant_pad_nd", 8 + 12)


def test_cat_reads_every_occurrence_of_a_repeated_input():
    x, y = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
    n, m = x.numel(), y.numel()
    assert only_row(cost(lambda a: torch.cat([a, a], 1), x)).mac == 4 * n  # x is copied twice
    assert only_row(cost(lambda a, b: torch.cat([a, b], 1), x, y)).mac == 2 * (n + m)
    assert only_row(cost(lambda a, b: torch.cat([a, b, a], 1), x, y)).mac == 2 * (2 * n + m)
    assert only_row(cost(lambda a: torch.stack([a, a, a]), x)).mac == 6 * n
    row = only_row(cost(lambda a: torch.cat([a, a], 1), x.double()))
    assert row.mac_bytes == 4 * n * 8
    assert handles.cat_mac([x.shape, x.shape]) == 4 * n


def test_streaming_ops_read_a_repeated_operand_once():
    # add(x, x) and mul(x, x) load both operands from the same addresses in one pass: x is read once.
    x = torch.randn(2, 3, 4)
    n = x.numel()
    assert only_row(cost(lambda a: a + a, x)).mac == 2 * n
    assert only_row(cost(lambda a: a * a, x)).mac == 2 * n
    assert only_row(cost(lambda a, b: a + b, x, x.clone())).mac == 3 * n
    sq = torch.randn(4, 4)
    assert only_row(cost(lambda a: a @ a, sq)).mac == 2 * 16


def test_copying_reshape_is_charged_once():
    x = torch.randn(2, 3, 4)
    row = only_row(cost(lambda t: t.transpose(1, 2).reshape(2, 12), x))
    assert (row.op, row.mac) == ("clone", 48)  # clone + _unsafe_view: the view is free


def test_elementwise_rules():
    x, y = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 1, 1)
    assert only_row(cost(torch.add, x, x.clone())).mac == 3 * 96
    assert only_row(cost(torch.mul, x, y)).mac == handles.elementwise_mac([x.shape, y.shape], x.shape)
    assert only_row(cost(lambda t: t * 2, x)).mac == 2 * 96  # python scalars are free
    assert only_row(cost(lambda t: t + t, x)).mac == 2 * 96  # one tensor read once per op
    row = only_row(cost(lambda t: t.add_(1), x.clone()))
    assert (row.op, row.kind, row.mac) == ("add_", "elementwise", 2 * 96)


@pytest.mark.parametrize(("fn", "op"), [(F.relu, "relu"), (torch.relu_, "relu_"), (F.hardswish, "hardswish"),
                                        (torch.sigmoid, "sigmoid"), (F.relu6, "hardtanh")])
def test_activation_rules(fn, op):
    x = torch.randn(2, 3, 5, 5)
    row = only_row(cost(fn, x.clone()))
    assert (row.op, row.kind, row.mac, row.flops, row.params) == (op, "act", 2 * 150, 0, 0)
    row = only_row(cost(fn, x.clone(), count_elementwise_flops=True))
    assert row.flops == 150


def test_pool_rules():
    x = torch.randn(1, 4, 8, 8)
    row = only_row(cost(lambda t: F.max_pool2d(t, 3, 2, 1), x))
    assert (row.kind, row.mac, row.flops) == ("pool", 256 + 64, 0)
    assert only_row(cost(lambda t: F.max_pool2d(t, 3, 2, 1), x, count_elementwise_flops=True)).flops == 64 * 9
    assert only_row(cost(lambda t: F.avg_pool2d(t, 2), x, count_elementwise_flops=True)).flops == 64 * 4
    row = only_row(cost(lambda t: F.adaptive_avg_pool2d(t, 2), x, count_elementwise_flops=True))
    assert (row.mac, row.flops) == (256 + 16, 256)
    row = only_row(cost(lambda t: t.mean([2, 3]), x, count_elementwise_flops=True))
    assert (row.op, row.mac, row.flops) == ("mean", 256 + 4, 256)


def test_batch_norm_rule_eval_and_train():
    bn = nn.BatchNorm2d(5).eval()
    x = torch.randn(2, 5, 3, 3)
    row = only_row(cost(bn, x, mods=(bn,)))
    assert (row.kind, row.flops, row.params) == ("norm", 0, 10)
    assert row.mac == handles.batch_norm_mac(x.shape)
    assert only_row(cost(bn, x, mods=(bn,), count_elementwise_flops=True)).flops == 2 * 90

    def train_bn(t):
        return F.batch_norm(t, torch.zeros(5), torch.ones(5), bn.weight, bn.bias, training=True)

    row = [r for r in cost(train_bn, x, mods=(bn,)).layers if r.kind == "norm"][0]
    assert row.mac == handles.batch_norm_mac(x.shape)


def test_views_cost_nothing():
    x = torch.randn(2, 8, 4, 4)
    for fn in (lambda t: t.view(2, 128), lambda t: t.transpose(1, 2), lambda t: t.permute(0, 2, 3, 1),
               lambda t: t.chunk(2, dim=1), lambda t: t.split([3, 5], dim=1), lambda t: t[:, 2:5],
               lambda t: t.unsqueeze(0).squeeze(0), lambda t: t.flatten(1), lambda t: t.expand(3, 2, 8, 4, 4),
               lambda t: t.unbind(0), lambda t: t.narrow(1, 0, 2), lambda t: t.detach()):
        rep = cost(fn, x)
        assert rep.layers == [] and rep.mac == 0 and rep.unsupported_ops == {}


def test_mac_bytes_follow_dtype():
    x = torch.randn(4, 4, dtype=torch.float64)
    row = only_row(cost(torch.relu, x))
    assert row.mac_bytes == 8 * row.mac
    row = only_row(cost(lambda t: t.to(torch.float32), x))  # read 8-byte, write 4-byte elements
    assert (row.op, row.mac, row.mac_bytes) == ("_to_copy", 32, 16 * 8 + 16 * 4)


def test_tables_resolve_overloads_and_names():
    assert tables.as_op_keys("aten::relu") == [torch.ops.aten.relu]
    assert tables.as_op_keys("add.Tensor") == [torch.ops.aten.add.Tensor]
    assert tables.lookup(tables.MAC_RULES, torch.ops.aten.max.other) is tables.mac_read_all_write_all
    assert tables.lookup(tables.MAC_IGNORE, torch.ops.aten.view.default)
    assert not tables.lookup(tables.MAC_IGNORE, torch.ops.aten.clone.default)
    with pytest.raises(UserInputError, match="unknown op"):
        tables.as_op_keys("aten::no_such_op")
