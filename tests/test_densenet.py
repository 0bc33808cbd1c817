"""The V2 paper's light DenseNet ("DenseNet (our impl.)", Table 8) against Table 8's FLOPs, its reconstructed
structure (Table 5 macro-structure, DenseNet-BC stages), the block audit and the feature-reuse trace."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.fx
from torch import nn

import shufflenet.models.densenet  # noqa: F401  (registers the models)
from helpers import assert_traceable, conv_fc_madds
from shufflenet.audit.blocks import find_blocks
from shufflenet.audit.reuse import feature_reuse
from shufflenet.audit.trace import trace
from shufflenet.cost import count_cost
from shufflenet.cost.report import CostReport
from shufflenet.errors import UserInputError
from shufflenet.models import create_model, get_entry, list_models
from shufflenet.models.densenet import DenseLayer, DenseNetLight, Transition, growth_for

WIDTHS = ("0_5", "1_0", "1_5", "2_0")
NAMES = tuple(f"densenet_light_x{w}" for w in WIDTHS)
PAPER_MFLOPS = dict(zip(NAMES, (42, 142, 295, 519), strict=True))  # V2 paper Table 8
# Exact counts at 224x224: conv + FC multiply-adds, and all parameters (BN included).
MADDS = dict(zip(NAMES, (41_635_984, 139_972_712, 286_304_352, 530_767_408), strict=True))
PARAMS = dict(zip(NAMES, (1_223_940, 1_667_434, 2_276_149, 4_598_620), strict=True))
GROWTH = dict(zip(NAMES, (10, 21, 31, 42), strict=True))
LAYERS = (4, 8, 4)
SMALL = (2, 3, 64, 64)


@functools.cache
def _cost(name: str) -> CostReport:
    torch.manual_seed(0)
    return count_cost(create_model(name).eval(), (1, 3, 224, 224))


def _widths(k: int) -> list[tuple[int, int]]:
    """(transition output, stage output) per stage: the entry transition gives k, later ones halve."""
    out, c = [], None
    for i, n in enumerate(LAYERS):
        t = k if i == 0 else c // 2
        c = t + n * k
        out.append((t, c))
    return out


def test_registry_names_and_paper_refs() -> None:
    assert list_models("densenet_light_*") == list(NAMES)
    for name in NAMES:
        paper = get_entry(name).paper
        assert (paper.mflops, paper.mparams) == (PAPER_MFLOPS[name], None)
        assert paper.source == "ShuffleNet V2 Table 8 (our impl.); widths reconstructed"
        assert paper.tolerance == 0.03


@pytest.mark.parametrize("name", NAMES)
def test_flops_match_table8_within_3_percent(name: str) -> None:
    rep = _cost(name)
    assert rep.flops == MADDS[name] and rep.params == PARAMS[name] and not rep.unsupported_ops
    # -0.9%, -1.4%, -2.95%, +2.3%
    assert abs(rep.flops / 1e6 - PAPER_MFLOPS[name]) / PAPER_MFLOPS[name] < 0.03


def test_engine_agrees_with_an_independent_count() -> None:
    with torch.device("meta"):
        model = create_model("densenet_light_x1_5")
    assert conv_fc_madds(model) == MADDS["densenet_light_x1_5"]


def test_growth_rule() -> None:
    assert [growth_for(w) for w in (0.5, 1.0, 1.5, 2.0)] == [10, 21, 31, 42]
    for name in NAMES:
        assert create_model(name).growth == GROWTH[name]


@pytest.mark.parametrize("name", NAMES)
def test_structure(name: str) -> None:
    k = GROWTH[name]
    model = create_model(name)
    conv1 = model.stem[0]
    assert (conv1.in_channels, conv1.out_channels, conv1.kernel_size, conv1.stride) == (3, 24, (3, 3), (2, 2))
    assert isinstance(model.maxpool, nn.MaxPool2d) and model.maxpool.stride == 2
    prev = 24
    for s, (n, (t, c)) in enumerate(zip(LAYERS, _widths(k), strict=True), start=2):
        trans = getattr(model, f"transition{s}")
        assert type(trans) is Transition
        assert (trans.conv.in_channels, trans.conv.out_channels, trans.conv.kernel_size) == (prev, t, (1, 1))
        assert (trans.pool.kernel_size, trans.pool.stride) == (2, 2)
        stage = getattr(model, f"stage{s}")
        assert type(stage) is nn.Sequential and len(stage) == n
        for j, layer in enumerate(stage):
            assert type(layer) is DenseLayer
            assert layer.conv1.weight.shape == (4 * k, t + j * k, 1, 1)  # DenseNet-BC bottleneck 4k
            assert layer.conv2.weight.shape == (k, 4 * k, 3, 3) and layer.conv2.padding == (1, 1)
        assert stage[-1].out_channels == c
        prev = c
    final = 2048 if name.endswith("2_0") else 1024
    assert model.body_channels == prev and model.final_norm.norm.num_features == prev
    assert (model.conv5[0].in_channels, model.conv5[0].out_channels) == (prev, final)
    assert model.num_features == final and model.fc.in_features == final
    assert model.min_input_size == 32
    assert sum(isinstance(m, DenseLayer) for m in model.modules()) == 16


def test_widths_at_1x() -> None:
    assert _widths(21) == [(21, 105), (52, 220), (110, 194)]


def test_dense_layer_passes_its_input_through() -> None:
    torch.manual_seed(0)
    layer = DenseLayer(12, 5).eval()
    x = torch.randn(2, 12, 7, 7)
    with torch.no_grad():
        y = layer(x)
    assert y.shape == (2, 17, 7, 7) and torch.equal(y[:, :12], x)


def test_output_shapes_head_and_reset_classifier() -> None:
    torch.manual_seed(0)
    model = create_model("densenet_light_x0_5", drop_rate=0.2).eval()
    x = torch.randn(*SMALL)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, 1024, 2, 2)
        torch.testing.assert_close(model(x), model.forward_head(feats))
        assert model.forward_head(feats, pre_logits=True).shape == (2, 1024)
        assert model(x).shape == (2, 1000)
    model.reset_classifier(5)
    assert model.num_classes == 5
    with torch.no_grad():
        assert model(x).shape == (2, 5)


def test_forward_backward_at_min_input_size() -> None:
    torch.manual_seed(0)
    model = create_model("densenet_light_x0_5", num_classes=7)
    size = model.min_input_size
    out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 7)
    out.square().mean().backward()
    bad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not bad


def test_small_input_fashion_mnist() -> None:
    torch.manual_seed(0)
    model = create_model("densenet_light_x1_0", small_input=True, in_chans=1, num_classes=10)
    assert model.stem[0].stride == (1, 1) and isinstance(model.maxpool, nn.Identity)
    assert model.min_input_size == 8  # the three transitions only
    out = model(torch.randn(2, 1, 28, 28))
    assert out.shape == (2, 10)
    out.sum().backward()
    assert model.stem[0].weight.grad is not None
    model.eval()
    with torch.no_grad():
        # 28 -> 14 -> 7 -> 3 px through the three transitions
        assert model.forward_features(torch.randn(1, 1, 28, 28)).shape == (1, 1024, 3, 3)
    with pytest.raises(UserInputError):
        model(torch.randn(1, 1, 4, 4))
    with pytest.raises(UserInputError):
        model(torch.randn(1, 3, 28, 28))


def test_traceable_by_fx_and_jit() -> None:
    torch.manual_seed(0)
    model = create_model("densenet_light_x0_5").eval()

    assert_traceable(model, torch.randn(2, 3, 32, 32))


def test_audit_sees_one_block_per_dense_layer_and_transition() -> None:
    model = create_model("densenet_light_x0_5")
    _, graph, _ = trace(model, (1, 3, 64, 64))
    blocks = find_blocks(model, graph)
    assert [b.module_type for b in blocks] == (
        ["Transition"] + ["DenseLayer"] * 4 + ["Transition"] + ["DenseLayer"] * 8 + ["Transition"]
        + ["DenseLayer"] * 4)
    assert all(b.ops == 2 for b in blocks)  # 1x1 + 3x3 conv; 1x1 conv + average pool
    assert blocks[1].path == "stage2.layer1"


def test_feature_reuse_is_full_inside_every_stage() -> None:
    r = feature_reuse(create_model("densenet_light_x0_5"), (1, 3, 64, 64))
    assert len(r.blocks) == 16 and {b.type for b in r.blocks} == {"DenseLayer"}
    k = GROWTH["densenet_light_x0_5"]
    groups, start = [], 0
    for n in LAYERS:
        groups.append(range(start, start + n))
        start += n
    for g, (t, _) in zip(groups, _widths(k), strict=True):
        for j in g:
            assert r.outside[j] == t  # the transition's channels reach every layer of the stage
            assert r.blocks[j].new_channels == k
            for i in range(len(r.blocks)):
                # every earlier layer of the stage reaches every later one whole; nothing crosses a transition
                assert r.channels[i][j] == (k if (i in g and i < j) else 0)
    assert [(s.stage, s.r) for s in r.stages()] == [("stage2", 1.0), ("stage3", 1.0), ("stage4", 1.0)]


def test_bad_arguments() -> None:
    with pytest.raises(UserInputError, match="growth"):
        DenseNetLight(0)
    with pytest.raises(UserInputError, match="stage_layers"):
        DenseNetLight(12, ())
    with pytest.raises(UserInputError, match=r"stage_layers\[1\]"):
        DenseNetLight(12, (4, 0, 4))
    with pytest.raises(UserInputError, match="compression"):
        DenseNetLight(compression=1.5)
    with pytest.raises(UserInputError, match="compression"):
        DenseNetLight(12, (1, 1, 1), entry_channels=1, compression=0.05)
    with pytest.raises(UserInputError, match="width_mult"):
        growth_for(0.0)
    with pytest.raises(UserInputError, match="densenet_light_x1_0.*groups"):
        create_model("densenet_light_x1_0", groups=2)
    with pytest.raises(UserInputError, match="densenet_light_x1_0.*growth"):
        create_model("densenet_light_x1_0", growth=12)
    with pytest.raises(UserInputError, match="small_input"):
        create_model("densenet_light_x0_5", small_input=1)
