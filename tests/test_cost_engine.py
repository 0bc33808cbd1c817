"""The counting engine: paper formulas, torch/torchvision agreement, attribution, deploy mode, reports."""

from __future__ import annotations

import csv
import io
import json

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from shufflenet.cost import (
    CostCounter,
    analytic,
    count_cost,
    handles,
    register_mac_rule,
    tables,
)
from shufflenet.errors import UserInputError


@torch.library.custom_op("shufflenet_test::double", mutates_args=())
def _double(x: torch.Tensor) -> torch.Tensor:
    return x * 2


def conv1x1(c1: int, c2: int, groups: int = 1) -> nn.Module:
    return nn.Conv2d(c1, c2, 1, groups=groups, bias=False)


# --- the paper's closed forms (Sec. 2) -------------------------------------------------------------


@pytest.mark.parametrize(("h", "w", "c1", "c2"), [(56, 56, 64, 64), (14, 14, 32, 96), (7, 9, 5, 11)])
def test_lone_1x1_conv_matches_paper_mac(h, w, c1, c2):
    rep = count_cost(conv1x1(c1, c2), (1, c1, h, w))
    assert rep.mac == h * w * (c1 + c2) + c1 * c2 == analytic.conv1x1_mac(h, w, c1, c2)
    assert rep.flops == h * w * c1 * c2 == analytic.conv1x1_flops(h, w, c1, c2)
    assert rep.mac_bytes == 4 * rep.mac and rep.params == c1 * c2


def test_g1_bound_holds_and_is_tight_at_equal_width():
    h = w = 56
    flops = h * w * 64 * 64
    bound = analytic.g1_mac_lower_bound(h, w, flops)
    equal = count_cost(conv1x1(64, 64), (1, 64, h, w))
    assert equal.flops == flops and equal.mac == bound  # exact: 2*sqrt(hw*B) = 2*hw*64
    for c1, c2 in [(32, 128), (128, 32), (16, 256), (8, 512)]:
        rep = count_cost(conv1x1(c1, c2), (1, c1, h, w))
        assert rep.flops == flops and rep.mac > bound > 0


@pytest.mark.parametrize(("c", "g"), [(128, 1), (180, 2), (256, 4), (360, 8)])  # Table 2 shapes (GPU x1)
def test_group_conv_mac_equals_g2_formula(c, g):
    h = w = 56
    rep = count_cost(conv1x1(c, c, g), (1, c, h, w))
    assert rep.flops == analytic.conv1x1_flops(h, w, c, c, g)
    assert rep.mac == analytic.conv1x1_mac(h, w, c, c, g) == analytic.g2_mac(h, w, c, rep.flops, g)
    assert rep.layers[0].kind == ("conv" if g == 1 else "gconv")


def test_g2_mac_grows_with_groups_at_fixed_flops():
    h = w = 56
    c1, flops = 64, 56 * 56 * 64 * 64
    macs = [analytic.g2_mac(h, w, c1, flops, g) for g in (1, 2, 4, 8)]
    assert macs == sorted(macs) and len(set(macs)) == 4


# --- agreement with torch and torchvision ----------------------------------------------------------


@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0"])
def test_flops_equal_half_of_torch_flop_counter(name):
    model = getattr(torchvision.models, name)().eval()
    # One forward pass feeds both counters: ours is the inner mode and re-dispatches to torch's.
    with FlopCounterMode(display=False) as counter:
        rep = count_cost(model)
    assert 2 * rep.flops == counter.get_total_flops() > 0
    assert rep.unsupported_ops == {}
    assert rep.params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("width", "params"), [("0_5", 1366792), ("1_0", 2278604), ("1_5", 3503624), ("2_0", 7393996)]
)
def test_torchvision_shufflenet_v2_matches_weights_metadata(width, params):
    model = getattr(torchvision.models, f"shufflenet_v2_x{width}")()
    meta = getattr(torchvision.models, f"ShuffleNet_V2_X{width.upper()}_Weights").IMAGENET1K_V1.meta
    rep = count_cost(model)
    assert round(rep.flops / 1e9, 3) == meta["_ops"]
    assert rep.params == params == meta["num_params"]
    assert rep.unsupported_ops == {}


# --- engine behaviour ------------------------------------------------------------------------------


def conv_bn_relu(bias: bool = False, inplace: bool = True) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(8, 16, 3, padding=1, bias=bias), nn.BatchNorm2d(16), nn.ReLU(inplace))


@pytest.mark.parametrize("mode", ["paper", "deploy"])
@pytest.mark.parametrize("elementwise", [False, True])
def test_rows_sum_to_totals(mode, elementwise):
    rep = count_cost(torchvision.models.shufflenet_v2_x0_5(), mode=mode, count_elementwise_flops=elementwise)
    for field in ("flops", "mac", "mac_bytes"):
        total = getattr(rep, field)
        assert total > 0
        assert sum(getattr(r, field) for r in rep.layers) == total
        for groups in (rep.by_layer(), rep.by_op(), rep.by_stage()):
            assert sum(getattr(g, field) for g in groups) == total
    assert sum(g.calls for g in rep.by_op()) == len(rep.layers)


def test_paper_mode_prices_each_op_of_conv_bn_relu():
    model = conv_bn_relu()
    rep = count_cost(model, (1, 8, 10, 10))
    conv, bn, relu = rep.layers
    n_in, n_out = 8 * 100, 16 * 100
    assert [r.name for r in rep.layers] == ["0", "1", "2"]
    assert [r.module_type for r in rep.layers] == ["Conv2d", "BatchNorm2d", "ReLU"]
    assert conv.mac == handles.conv_mac((1, 8, 10, 10), (16, 8, 3, 3), (1, 16, 10, 10))
    assert bn.mac == 2 * n_out + 4 * 16
    assert (relu.op, relu.mac) == ("relu_", 2 * n_out)  # in place: reads and writes its input
    assert rep.flops == conv.flops == n_out * 8 * 9
    assert rep.mac == conv.mac + bn.mac + relu.mac and n_in < conv.mac


@pytest.mark.parametrize("inplace", [True, False])
def test_deploy_mode_folds_bn_and_fuses_relu(inplace):
    model = conv_bn_relu(bias=False, inplace=inplace)
    paper = count_cost(model, (1, 8, 10, 10))
    deploy = count_cost(model, (1, 8, 10, 10), mode="deploy")
    conv_mac = paper.layers[0].mac
    assert deploy.mac == conv_mac + 16  # + the folded bias
    assert deploy.flops == paper.flops
    assert deploy.layers[0].params == 16 * 8 * 9 + 16
    assert [(r.mac, r.flops) for r in deploy.layers[1:]] == [(0, 0), (0, 0)]
    assert deploy.params == paper.params  # the model's own parameter count does not change


def test_deploy_mode_keeps_existing_bias_and_unfusable_ops():
    model = nn.Sequential(conv_bn_relu(bias=True), nn.BatchNorm2d(16), nn.Sigmoid())
    paper = count_cost(model, (1, 8, 4, 4))
    deploy = count_cost(model, (1, 8, 4, 4), mode="deploy")
    # conv reads its own bias already; the second BN reads an activation, not a conv output.
    assert [r.mac for r in deploy.layers] == [paper.layers[0].mac, 0, 0, paper.layers[3].mac, paper.layers[4].mac]


class ConvBnAlsoRaw(nn.Module):
    """conv -> BN -> ReLU, and the raw conv output feeds a second consumer (a shortcut add)."""

    def __init__(self, second: str = "add") -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.second = second

    def forward(self, x):
        y = self.conv(x)
        z = torch.relu(self.bn(y))
        if self.second == "add":
            return z + y
        if self.second == "view":
            return z, y.flatten(1)
        if self.second == "output":
            return {"out": z, "raw": y}  # the caller reads y
        return torch.cat([z, y], 1)


@pytest.mark.parametrize("second", ["add", "view", "cat", "output"])
def test_deploy_does_not_fold_bn_into_a_conv_output_read_elsewhere(second):
    model = ConvBnAlsoRaw(second)
    paper = count_cost(model, (1, 8, 6, 6))
    deploy = count_cost(model, (1, 8, 6, 6), mode="deploy")
    # The unnormalised conv output must be materialised for its other reader: BN runs, and so does ReLU.
    assert [(r.op, r.mac, r.params) for r in deploy.layers] == [(r.op, r.mac, r.params) for r in paper.layers]
    assert deploy.mac == paper.mac


def test_deploy_folds_bn_but_does_not_fuse_an_activation_of_a_shared_output():
    class BnOutShared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(8, 8, 1, bias=False)
            self.bn = nn.BatchNorm2d(8)

        def forward(self, x):
            y = self.bn(self.conv(x))
            return torch.relu(y) + y

    paper = count_cost(BnOutShared(), (1, 8, 4, 4))
    deploy = count_cost(BnOutShared(), (1, 8, 4, 4), mode="deploy")
    conv, bn, relu, add = deploy.layers
    assert conv.mac == paper.layers[0].mac + 8 and (bn.mac, bn.params) == (0, 0)  # folded: BN is conv's only reader
    assert relu.mac == paper.layers[2].mac > 0  # the BN-folded output is also read by the add


def test_deploy_does_not_fuse_an_activation_after_an_in_place_residual_add():
    class Residual(nn.Module):  # torchvision's BasicBlock tail: out = bn(conv(x)); out += x; relu(out)
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(8, 8, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(8)
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            out = self.bn(self.conv(x))
            out += x
            return self.relu(out)

    paper = count_cost(Residual(), (1, 8, 5, 5))
    deploy = count_cost(Residual(), (1, 8, 5, 5), mode="deploy")
    assert [r.kind for r in deploy.layers] == ["conv", "norm", "elementwise", "act"]
    assert deploy.layers[1].mac == 0  # BN still folds
    assert deploy.layers[3].mac == paper.layers[3].mac > 0  # ReLU reads the sum, not the conv's output


def test_deploy_fusion_in_torchvision_resnet_block():
    block = torchvision.models.resnet.BasicBlock(8, 8)
    paper = count_cost(block, (1, 8, 6, 6))
    deploy = count_cost(block, (1, 8, 6, 6), mode="deploy")
    ops = [(r.kind, r.mac == 0) for r in deploy.layers]
    # conv1+bn1+relu fuse; conv2+bn2 fold; the add and the final ReLU run on their own.
    assert ops == [("conv", False), ("norm", True), ("act", True), ("conv", False), ("norm", True),
                   ("elementwise", False), ("act", False)]
    assert deploy.mac == paper.mac - sum(paper.layers[i].mac for i in (1, 2, 4)) + 2 * 8


def test_channel_shuffle_costs_one_copy():
    class Shuffle(nn.Module):
        def forward(self, x):
            n, c, h, w = x.shape
            return x.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)

    rep = count_cost(Shuffle(), (2, 8, 5, 5))
    assert rep.mac == 2 * 2 * 8 * 5 * 5 == handles.channel_shuffle_mac((2, 8, 5, 5))
    assert rep.flops == 0 and [(r.op, r.kind) for r in rep.layers] == [("clone", "data")]


def test_chunk_costs_nothing():
    class Split(nn.Module):
        def forward(self, x):
            return x.chunk(2, dim=1)

    rep = count_cost(Split(), (1, 8, 4, 4))
    assert (rep.mac, rep.flops, rep.layers, rep.unsupported_ops) == (0, 0, [], {})


def test_unsupported_ops_are_reported_not_zeroed():
    class Odd(nn.Module):
        def forward(self, x):
            return torch.fft.fft(_double(x)).real + 1

    rep = count_cost(Odd(), (4, 8))
    assert rep.unsupported_ops == {"shufflenet_test::double": 1, "_fft_r2c": 1}
    assert [r.op for r in rep.layers] == ["add"]
    assert "unsupported ops" in rep.to_table()


def test_rules_are_extensible():
    class Odd(nn.Module):
        def forward(self, x):
            return _double(x)

    mac_rules = {"shufflenet_test::double": lambda a, k, o: 2 * o.numel()}
    rep = CostCounter(mac_rules=mac_rules).run(Odd(), (torch.randn(3, 4),))
    assert (rep.mac, rep.unsupported_ops) == (24, {"shufflenet_test::double": 1})  # still no FLOP rule
    rep = CostCounter(mac_rules=mac_rules, flop_rules={"shufflenet_test::double": None}).run(
        Odd(), (torch.randn(3, 4),)
    )
    assert (rep.mac, rep.flops, rep.unsupported_ops) == (24, 0, {})  # FLOPs declared zero
    op = torch.ops.shufflenet_test.double
    try:
        register_mac_rule(op, lambda a, k, o: (o.numel(), 1), kind="elementwise")
        tables.register_flop_rule(op, None)
        rep = count_cost(Odd(), (3, 4))
        assert (rep.mac, rep.mac_bytes, rep.unsupported_ops, rep.layers[0].kind) == (12, 1, {}, "elementwise")
    finally:
        tables.MAC_RULES.pop(op, None)
        tables.FLOP_IGNORE.discard(op)
        tables.OP_KINDS.pop(op, None)
    assert count_cost(Odd(), (3, 4)).unsupported_ops == {"shufflenet_test::double": 1}


def test_attribution_of_shared_and_repeated_modules():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.act = nn.ReLU()
            self.block = nn.Sequential(nn.Conv2d(3, 3, 1), self.act)

        def forward(self, x):
            x = self.block(x)
            return self.act(x) + x

    rep = count_cost(Net(), (1, 3, 4, 4))
    assert [(r.name, r.op) for r in rep.layers] == [
        ("block.0", "convolution"), ("act", "relu"), ("act", "relu"), ("(root)", "add")
    ]
    assert rep.layers[-1].module_type == "Net" and rep.model_name == "Net"
    assert [(g.name, g.calls) for g in rep.by_layer()] == [("block.0", 1), ("act", 2), ("(root)", 1)]
    assert [g.name for g in rep.by_stage()] == ["block", "act", "(root)"]


def test_training_flags_are_restored():
    model = conv_bn_relu().train()
    model[1].eval()
    before = [m.training for m in model.modules()]
    rep = count_cost(model, (1, 8, 4, 4))
    assert [m.training for m in model.modules()] == before
    assert rep.layers[1].op in ("native_batch_norm", "_native_batch_norm_legit_no_training")
    assert model[1].running_mean.abs().sum() == 0  # ran in eval mode: running stats untouched


def test_meta_device_counts_without_computing():
    real = count_cost(torchvision.models.shufflenet_v2_x0_5(), mode="deploy")
    meta = count_cost(torchvision.models.shufflenet_v2_x0_5().to("meta"), mode="deploy", device="meta")
    assert (meta.flops, meta.mac, meta.mac_bytes, meta.params) == (real.flops, real.mac, real.mac_bytes, real.params)


@pytest.mark.parametrize("mode", ["bogus", "PAPER", ""])
def test_bad_mode_raises_user_input_error(mode):
    with pytest.raises(UserInputError, match="mode"):
        count_cost(conv1x1(2, 2), (1, 2, 3, 3), mode=mode)
    with pytest.raises(ValueError):
        count_cost(conv1x1(2, 2), (1, 2, 3, 3), mode=mode)


@pytest.mark.parametrize("size", [(), (1, 0, 3), (1, -2), (1, 2.5), "abc"])
def test_bad_input_size_raises_user_input_error(size):
    with pytest.raises(UserInputError, match="input_size"):
        count_cost(conv1x1(2, 2), size)


def test_report_rendering():
    rep = count_cost(torchvision.models.shufflenet_v2_x0_5(), mode="deploy")
    d = json.loads(json.dumps(rep.to_dict(by="stage")))
    assert (d["flops"], d["mac"], d["params"], d["mode"]) == (rep.flops, rep.mac, rep.params, "deploy")
    assert d["input_size"] == [1, 3, 224, 224] and len(d["layers"]) == len(rep.layers)
    assert d["layers"][0]["output_shape"] == [1, 24, 112, 112]
    assert sum(g["mac"] for g in d["groups"]) == rep.mac
    for by in ("layer", "op", "stage", "row"):
        table = rep.to_table(by=by)
        assert "FLOPs = multiply-adds of conv + FC layers (the paper's convention" in table
        assert "MAC = elements read + written by each op (the paper's Sec. 2, G1)" in table
        assert table.splitlines()[-1].split()[:3] == ["whole", "model", f"{rep.params / 1e6:.3f}M"]
        rows = list(csv.DictReader(io.StringIO(rep.to_csv(by=by))))
        assert sum(int(r["mac"]) for r in rows) == rep.mac
        assert sum(int(r["flops"]) for r in rows) == rep.flops
    assert {g.kind for g in rep.by_op()} >= {"conv", "dwconv", "norm", "act", "data", "pool", "linear"}
    assert rep.intensity == rep.flops / rep.mac
    assert rep.layers[0].intensity == rep.layers[0].flops / rep.layers[0].mac
    with pytest.raises(UserInputError):
        rep.to_table(by="nope")
