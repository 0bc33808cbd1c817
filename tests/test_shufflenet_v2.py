"""ShuffleNet V2 against the paper (Table 5, Appendix Table 2) and torchvision."""

import pytest
import torch
import torchvision

from helpers import conv_fc_madds, weight_count
from shufflenet import create_model
from shufflenet.errors import UserInputError
from shufflenet.models.layers import channel_shuffle, shuffle_split
from shufflenet.models.shufflenet_v2 import ShuffleV2Unit

WIDTHS = ["0_5", "1_0", "1_5", "2_0"]
# Table 5, computed: conv+FC multiply-adds (M) and weights (M) of the official layout.
TABLE5_MADDS = {"0_5": 40.5, "1_0": 145.8, "1_5": 299.0, "2_0": 590.8}
TABLE5_WEIGHTS = {"0_5": 1.36, "1_0": 2.26, "1_5": 3.48, "2_0": 7.37}
TV_PARAMS = {"0_5": 1_366_792, "1_0": 2_278_604, "1_5": 3_503_624, "2_0": 7_393_996}


@pytest.mark.parametrize("w", WIDTHS)
def test_table5_flops_and_weights(w: str) -> None:
    model = create_model(f"shufflenet_v2_x{w}")
    assert round(conv_fc_madds(model) / 1e6, 1) == TABLE5_MADDS[w]
    assert round(weight_count(model) / 1e6, 2) == TABLE5_WEIGHTS[w]


@pytest.mark.parametrize("w", WIDTHS)
def test_torchvision_layout_matches_torchvision(w: str) -> None:
    ref = getattr(torchvision.models, f"shufflenet_v2_x{w}")().eval()
    ours = create_model(f"shufflenet_v2_x{w}", layout="torchvision").eval()
    assert sum(p.numel() for p in ours.parameters()) == TV_PARAMS[w]
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)


def test_official_stride2_unit_widths() -> None:
    """Fig. 3(d) with the official blocks: the first Stage2 unit of 1.0x is 24 (projection) + 92 (main) = 116 channels."""
    model = create_model("shufflenet_v2_x1_0")
    unit = model.stage2[0]
    assert unit.branch1[2].out_channels == 24
    assert unit.branch2[0].out_channels == 58 and unit.branch2[5].out_channels == 92
    assert model.stage3[0].branch1[2].out_channels == 116 and model.stage3[0].branch2[5].out_channels == 116
    assert model.conv5[0].out_channels == 1024 and model.fc.bias is None
    assert create_model("shufflenet_v2_x2_0").drop_rate == 0.2
    assert create_model("shufflenet_v2_x2_0", layout="torchvision").drop_rate == 0.0


def test_basic_unit_structure() -> None:
    """Fig. 3(c): 1x1 Conv BN ReLU, 3x3 DW BN (no ReLU), 1x1 Conv BN ReLU; dense 1x1 convs, in == out."""
    unit = create_model("shufflenet_v2_x1_0").stage2[1]
    kinds = [type(m).__name__ for m in unit.branch2]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "Conv2d", "BatchNorm2d", "ReLU"]
    convs = [m for m in unit.branch2 if isinstance(m, torch.nn.Conv2d)]
    assert [c.groups for c in convs] == [1, 58, 1]
    assert all(c.in_channels == c.out_channels == 58 for c in convs)
    assert len(unit.branch1) == 0


def test_shuffle_forms_give_same_permutation() -> None:
    x = torch.arange(2 * 12 * 3 * 3, dtype=torch.float32).reshape(2, 12, 3, 3)
    for g in (2, 3, 4):
        five, four = channel_shuffle(x, g, "5d"), channel_shuffle(x, g, "4d")
        assert torch.equal(five, four)
        # V1 paper Fig. 1(c): output channel k*g + i is input channel i*(C/g) + k
        c = 12
        perm = [i * (c // g) + k for k in range(c // g) for i in range(g)]
        assert torch.equal(five, x[:, perm])
    a5, b5 = shuffle_split(x, "5d")
    a4, b4 = shuffle_split(x, "4d")
    assert torch.equal(a5, a4) and torch.equal(b5, b4)
    assert torch.equal(a5, x[:, 0::2]) and torch.equal(b5, x[:, 1::2])


@pytest.mark.parametrize("layout", ["official", "torchvision"])
def test_4d_shuffle_model_equals_5d(layout: str) -> None:
    a = create_model("shufflenet_v2_x0_5", layout=layout).eval()
    b = create_model("shufflenet_v2_x0_5", layout=layout, shuffle_impl="4d").eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), atol=0, rtol=0)


def _max_rank_in_forward(model: torch.nn.Module, x: torch.Tensor) -> int:
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ranks(TorchDispatchMode):
        rank = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    Ranks.rank = max(Ranks.rank, t.dim())
            return out

    with torch.no_grad(), Ranks():
        model(x)
    return Ranks.rank


def test_4d_shuffle_never_builds_5d_tensors() -> None:
    x = torch.randn(1, 3, 64, 64)
    for layout in ("official", "torchvision"):
        assert _max_rank_in_forward(create_model("shufflenet_v2_x0_5", layout=layout).eval(), x) == 5
        m = create_model("shufflenet_v2_x0_5", layout=layout, shuffle_impl="4d").eval()
        assert _max_rank_in_forward(m, x) == 4


def test_variants_structure() -> None:
    se = create_model("shufflenet_v2_x1_0", se=True)
    assert type(se.stage3[1].branch2[-1]).__name__ == "SqueezeExcite"
    res = create_model("shufflenet_v2_x1_0", residual=True)
    unit = res.stage3[1]
    assert unit.residual and not isinstance(unit.branch2[-1], torch.nn.ReLU)
    assert not res.stage3[0].residual  # stride-2 units have no identity to add
    both = create_model("shufflenet_v2_x1_0", se=True, residual=True)
    assert [type(m).__name__ for m in both.stage2[1].branch2][-2:] == ["BatchNorm2d", "SqueezeExcite"]
    star = create_model("shufflenet_v2_x1_0", extra_dw=True)
    first = star.stage2[1].branch2[0]
    assert first.groups == first.in_channels == 58 and first.kernel_size == (3, 3)
    # V2*: "a few additional FLOPs" (Sec. 6) -- an extra depthwise conv per unit
    extra = conv_fc_madds(star) - conv_fc_madds(create_model("shufflenet_v2_x1_0"))
    assert 0 < extra < 0.05 * 145.8e6


def test_residual_unit_adds_identity() -> None:
    unit = ShuffleV2Unit(16, 16, 1, residual=True).eval()
    for p in unit.branch2.parameters():
        torch.nn.init.zeros_(p)  # branch output becomes relu(0 + x2)
    x = torch.randn(1, 16, 5, 5)
    with torch.no_grad():
        y = unit(x)
    torch.testing.assert_close(y[:, :8], x[:, 0::2])
    torch.testing.assert_close(y[:, 8:], torch.relu(x[:, 1::2]))


@pytest.mark.parametrize("name,gflops", [("shufflenet_v2_50", 2.3), ("se_shufflenet_v2_164", 12.7)])
def test_large_models_flops(name: str, gflops: float) -> None:
    """Appendix Table 2: 2.3G and 12.7G FLOPs (within +-3%)."""
    model = create_model(name)
    assert abs(conv_fc_madds(model) / 1e9 / gflops - 1) <= 0.03


def test_large_model_layout() -> None:
    m = create_model("se_shufflenet_v2_164")
    assert [len(getattr(m, s)) for s in m.stage_names] == [10, 10, 23, 10]
    assert [m.conv1[i].out_channels for i in (0, 3, 6)] == [64, 64, 128]
    assert m.stage2[0].branch2[3].stride == (1, 1)  # conv2_x follows the max pool: no downsampling
    with pytest.raises(UserInputError, match="official layout"):
        create_model("shufflenet_v2_50", layout="torchvision")


def test_small_input_stem() -> None:
    m = create_model("shufflenet_v2_x1_0", small_input=True, in_chans=1, num_classes=10).eval()
    assert m.min_input_size == 8
    with torch.no_grad():
        assert m(torch.randn(2, 1, 28, 28)).shape == (2, 10)
        assert m.forward_features(torch.randn(1, 1, 28, 28)).shape == (1, 1024, 4, 4)


@pytest.mark.parametrize(
    "kwargs,x,match",
    [
        ({}, torch.randn(1, 1, 64, 64), "expects 3 input channels, got 1"),
        ({}, torch.randn(1, 3, 16, 16), "at least 32x32"),
        ({}, torch.randn(3, 64, 64), "4-D"),
        ({"layout": "caffe"}, None, "unknown layout"),
    ],
)
def test_bad_input_messages(kwargs: dict, x: torch.Tensor | None, match: str) -> None:
    with pytest.raises(UserInputError, match=match):
        m = create_model("shufflenet_v2_x0_5", **kwargs)
        m(x)


def test_odd_channels_rejected() -> None:
    with pytest.raises(UserInputError, match="even"):
        ShuffleV2Unit(15, 15, 1)


def test_unit_class_plugs_in():
    """A different unit (here one that records its construction) replaces every unit, without a fork."""
    built = []

    class CountingUnit(ShuffleV2Unit):
        def __init__(self, cin, cout, stride, **kw):
            super().__init__(cin, cout, stride, **kw)
            built.append((cin, cout, stride, kw["layout"]))

    model = create_model("shufflenet_v2_x0_5", unit=CountingUnit, layout="torchvision")
    assert len(built) == 16 and built[0] == (24, 48, 2, "torchvision") and built[1] == (48, 48, 1, "torchvision")
    assert all(isinstance(m, CountingUnit) for m in model.stage2)
    ref = create_model("shufflenet_v2_x0_5", layout="torchvision")
    assert list(model.state_dict()) == list(ref.state_dict())  # same keys: weights load either way
    with pytest.raises(UserInputError, match="unit must be a callable"):
        create_model("shufflenet_v2_x0_5", unit=3)
