"""Feature reuse (the ShuffleNet V2 paper, Sec. 4, Fig. 4): channels of block i reaching block j unchanged.

ShuffleNet V2 must give c * r^j with r = 0.5 exactly (per stage, both layouts), DenseNet full reuse inside a
dense block, ResNet none beyond the next block; the learned view is checked on a model whose first-conv
weights are set by hand.
"""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch
from torch import nn

from shufflenet.audit.reuse import PAPER_R, feature_reuse
from shufflenet.cli.main import main
from shufflenet.errors import UserInputError
from shufflenet.models import create_model
from shufflenet.models.weights import save_weights

SMALL = (1, 3, 64, 64)
PNG = b"\x89PNG\r\n\x1a\n"


def _stages(report):
    out: dict[str, list[int]] = {}
    for b in report.blocks:
        out.setdefault(b.stage, []).append(b.index)
    return out


@pytest.fixture(scope="module", params=["official", "torchvision"])
def v2(request):
    # batch 2: the official fused shuffle-split reshapes batch and channels together
    return feature_reuse(create_model("shufflenet_v2_x1_0", layout=request.param), (2, 3, 64, 64),
                         model_name=f"shufflenet_v2_x1_0 ({request.param})")


def _halved(count: int, expected: float, previous: int) -> bool:
    """``count`` is ``expected`` = c * 0.5^j exactly when that is an integer; else (an odd count cannot
    halve) the floor or ceil of half the count one block nearer, within 1 of ``expected``."""
    if expected == int(expected):
        return count == expected
    return count in (previous // 2, -(-previous // 2)) and abs(count - expected) < 1


def test_shufflenet_v2_reach_is_c_r_to_the_j_per_stage(v2):
    m = v2.channels
    stages = _stages(v2)
    assert [len(g) for g in stages.values()] == [4, 8, 4]
    exact = 0
    for g in stages.values():
        c = v2.blocks[g[-1]].out_channels
        assert v2.blocks[g[0]].new_channels == c  # the stride-2 unit convolves both branches: all new
        for i in g[1:]:  # basic units: width c, c/2 new, c/2 passed through
            assert v2.blocks[i].in_channels == v2.blocks[i].out_channels == c
            assert v2.blocks[i].new_channels == c // 2
            for t in range(i + 1, g[-1] + 1):
                expected = c * PAPER_R ** (t - i)
                assert _halved(m[i][t], expected, m[i][t - 1]), (v2.blocks[i].name, v2.blocks[t].name)
                exact += expected == int(expected)
        # the stride-2 unit's c new channels decay the same way, one block later
        for t in range(g[0] + 1, g[-1] + 1):
            assert _halved(m[g[0]][t], c * PAPER_R ** (t - g[0] - 1), m[g[0]][t - 1])
    assert exact == 21  # 3 + 15 + 3 pairs where c * 0.5^j is an integer (116, 232, 464 = 29 * 2^k)
    assert [m[5][t] for t in range(6, 12)] == [116, 58, 29, 14, 7, 4]  # stage 3: 232 * 0.5^j, rounded from j=4


def test_shufflenet_v2_nothing_crosses_a_stride_2_unit(v2):
    m = v2.channels
    firsts = [g[0] for g in _stages(v2).values()]
    for i in range(len(v2.blocks)):
        nxt = [f for f in firsts if f > i]
        if nxt:  # channels reach the next stride-2 unit's input, never beyond it
            assert all(m[i][t] == 0 for t in range(nxt[0] + 1, len(v2.blocks)))
    for t, b in enumerate(v2.blocks):  # every input channel comes from exactly one source
        assert sum(m[i][t] for i in range(t)) + v2.outside[t] == b.in_channels
    assert v2.outside == [24] + [0] * 15  # the stem's 24 channels feed the first unit only


def test_shufflenet_v2_stage_summary(v2):
    stages = v2.stages()
    assert [s.stage for s in stages] == ["stage2", "stage3", "stage4"]
    assert [s.width for s in stages] == [116, 232, 464]
    assert all(s.follows_paper for s in stages)
    # pooled over a stage, r is exactly 0.5 even where single counts round: every block's input is
    # c channels from earlier blocks, of which block t+1 gets c/2 from blocks before t
    assert [s.r for s in stages] == [0.5, 0.5, 0.5]
    assert (stages[1].pairs, stages[1].exact, stages[1].rounded) == (21, 15, 6)


def test_both_layouts_give_the_same_matrix():
    a = feature_reuse(create_model("shufflenet_v2_x0_5"), SMALL)
    b = feature_reuse(create_model("shufflenet_v2_x0_5", layout="torchvision"), SMALL)
    assert a.channels == b.channels
    assert a.stages()[0].width == 48 and a.channels[1][2:4] == [24, 12]


def test_densenet_reuses_every_earlier_layer_inside_a_dense_block():
    r = feature_reuse(create_model("torchvision:densenet121"), SMALL)
    groups = list(_stages(r).values())
    assert [len(g) for g in groups] == [6, 12, 24, 16]
    for g, stem in zip(groups, (64, 128, 256, 512), strict=True):
        for j in g:
            assert r.outside[j] == stem  # the stem's / transition's channels reach every layer of the block
            assert r.blocks[j].new_channels == 32
            for i in range(len(r.blocks)):
                assert r.channels[i][j] == (32 if (i in g and i < j) else 0)  # full reuse, none across
    assert [s.r for s in r.stages()] == [1.0, 1.0, 1.0, 1.0]


def test_resnet_shortcut_reuses_no_channel_unchanged():
    r = feature_reuse(create_model("torchvision:resnet18"), SMALL)
    n = len(r.blocks)
    assert n == 8 and {b.type for b in r.blocks} == {"BasicBlock"}
    for i, b in enumerate(r.blocks):
        assert b.new_channels == b.out_channels  # relu(x + f(x)): every value is new
        if i + 1 < n:
            assert r.channels[i][i + 1] == b.out_channels  # the plain sequential connection
        assert r.reused(i) == 0
    assert [s.r for s in r.stages()] == [0.0, 0.0, 0.0, None]  # the last stage has no next block to decay to


# ---------------------------------------------------------------------------------------- learned view

class Layer(nn.Module):
    """A DenseNet layer: cat(features) -> BN -> ReLU -> 1x1 conv (its first conv) -> ``growth`` channels."""

    def __init__(self, cin: int, growth: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(cin)
        self.conv = nn.Conv2d(cin, growth, 1, bias=False)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.conv(torch.relu(self.norm(torch.cat(features, 1))))


class TinyDense(nn.Module):
    def __init__(self, stem: int = 4, growth: int = 2, layers: int = 4) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, stem, 3, padding=1)
        self.layers = nn.ModuleList(Layer(stem + k * growth, growth) for k in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [self.stem(x)]
        for layer in self.layers:
            feats.append(layer(feats))
        return torch.cat(feats, 1).mean((2, 3))


def test_learned_mean_abs_weight_by_source_block():
    model = TinyDense()
    with torch.no_grad():
        for layer in model.layers:
            w = layer.conv.weight  # (growth, cin, 1, 1): channels 0..3 stem, then 2 per earlier layer
            cin = w.shape[1]
            values = torch.tensor([0.5] * 4 + [float(1 + (c - 4) // 2) for c in range(4, cin)])
            sign = torch.tensor([[(-1.0) ** (o + c) for c in range(cin)] for o in range(w.shape[0])])
            w.copy_((sign * values).view(w.shape))  # |w| = 0.5 on the stem's channels, i + 1 on layer i's
    r = feature_reuse(model, (2, 3, 8, 8), blocks=["Layer"], learned=True)
    assert [b.name for b in r.blocks] == ["layers.0", "layers.1", "layers.2", "layers.3"]
    assert all(b.first_conv == f"layers.{b.index}.conv" for b in r.blocks)
    for j in range(4):
        assert r.outside[j] == 4 and r.learned.outside[j] == pytest.approx(0.5)
        assert r.learned.channels_read[j] == 4 + 2 * j
        for i in range(4):
            assert r.channels[i][j] == (2 if i < j else 0)
            assert r.learned.weights[i][j] == (pytest.approx(i + 1) if i < j else None)
    norm, norm_out = r.learned.normalised()
    assert norm[0][3] == pytest.approx(1 / 3) and norm[2][3] == pytest.approx(1.0)
    assert norm_out[0] == pytest.approx(1.0) and norm_out[3] == pytest.approx(0.5 / 3)
    learned = r.to_dict()["learned"]
    assert learned["mean_abs_weight"][1][2] == pytest.approx(2.0)
    table = {t.key: t for t in r.tables()}["learned"]
    assert table.rows[3]["adjacent"] == pytest.approx(3.0) and table.rows[3]["earlier"] == pytest.approx(1.5)


# ------------------------------------------------------------------------------------- ops the trace follows

class Source(nn.Module):
    def __init__(self, c: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Mover(nn.Module):
    """Passes 4 of its 8 input channels on through ``how``, computes 4 new ones."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.conv = nn.Conv2d(8, 4, 1)
        self.register_buffer("perm", torch.tensor([7, 5, 3, 1, 0, 2, 4, 6]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new = self.conv(x)
        if self.how == "index_select":  # CondenseNet-style channel selection
            kept = x.index_select(1, self.perm)[:, :4]
        elif self.how == "fancy_index":
            kept = x[:, self.perm[:4]]
        elif self.how == "shuffle":
            kept = nn.functional.channel_shuffle(x, 2)[:, 2:6]
        elif self.how == "copy_":  # a preallocated output filled by slices
            out = x.new_empty(x.shape[0], 8, *x.shape[2:])
            out[:, :4].copy_(x[:, 4:])
            out[:, 4:] = new
            return out
        elif self.how == "to_half":
            kept = x[:, :4].to(torch.float16).to(torch.float32)
        elif self.how == "maxpool":  # values change: pooling is computation
            kept = nn.functional.max_pool2d(x[:, :4], 3, 1, 1)
        elif self.how == "scale":  # channel-wise, but values change
            kept = x[:, :4] * 2.0
        elif self.how == "inplace_add":
            kept = x[:, :4].clone()
            kept += new
        else:
            raise AssertionError(self.how)
        return torch.cat((kept, new), 1)


class Chain(nn.Module):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.blocks = nn.Sequential(Source(), Mover(how), Mover(how))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


@pytest.mark.parametrize(("how", "kept"), [("index_select", 4), ("fancy_index", 4), ("shuffle", 4), ("copy_", 4), ("to_half", 4),
                                           ("maxpool", 0), ("scale", 0), ("inplace_add", 0)])
def test_ops_that_pass_channels_unchanged(how, kept):
    r = feature_reuse(Chain(how), (1, 3, 6, 6), blocks=["Source", "Mover"])
    assert r.channels[0][1] == 8
    assert r.channels[0][2] == kept
    assert r.blocks[1].new_channels == 8 - kept
    assert not r.untracked_ops


def test_generic_blocks_are_the_children_of_sequential_stages():
    r = feature_reuse(Chain("shuffle"), (1, 3, 6, 6))
    assert [b.name for b in r.blocks] == ["blocks.0", "blocks.1", "blocks.2"]


def test_model_left_in_its_mode_and_bad_arguments():
    model = create_model("shufflenet_v2_x0_5").train()
    feature_reuse(model, SMALL)
    assert model.training
    with pytest.raises(UserInputError, match="cannot run on input"):
        feature_reuse(create_model("torchvision:resnet18"), (1, 1, 64, 64))
    with pytest.raises(UserInputError, match="no module of class"):
        feature_reuse(model, SMALL, blocks=["NoSuchBlock"])
    with pytest.raises(UserInputError, match="input_size"):
        feature_reuse(model, (1, 3, 0, 64))
    with pytest.raises(TypeError):
        feature_reuse("shufflenet_v2_x0_5", SMALL)


# ----------------------------------------------------------------------------------------- result, figures

def test_report_contract_and_heatmaps(v2):
    d = v2.to_dict()
    json.dumps(d)
    assert d["channels"][1][2] == 58 and d["paper_r"] == 0.5 and len(d["stages"]) == 3
    keys = [t.key for t in v2.tables()]
    assert keys == ["stages", "blocks", "links"]
    links = {t.key: t for t in v2.tables()}["links"]
    assert not links.display
    row = next(r for r in links.rows if r["source"] == 1 and r["target"] == 3)
    assert row["channels"] == 29 and row["distance"] == 2 and row["fraction"] == 0.25
    assert any("Sec. 4, Fig. 4" in c for c in v2.conventions())
    (fig,) = v2.figures()
    assert fig.png().startswith(PNG)
    v2.log_scale = True
    try:
        assert v2.figures()[0].png().startswith(PNG)
    finally:
        v2.log_scale = False


# ---------------------------------------------------------------------------------------------------- CLI

def test_cli_json_csv_plot_and_weights(tmp_path, capsys):
    assert main(["reuse", "shufflenet_v2_x0_5", "--input", "64", "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["model"] == "shufflenet_v2_x0_5" and d["channels"][1][3] == 12 and d["learned"] is None
    out, plot = tmp_path / "reuse.csv", tmp_path / "reuse.png"
    assert main(["reuse", "shufflenet_v2_x0_5", "--input", "64", "--out", str(out), "--plot", str(plot)]) == 0
    assert out.read_text().startswith("source,source_name,target")
    assert plot.read_bytes().startswith(PNG)
    ckpt = tmp_path / "w.pt"
    save_weights(create_model("shufflenet_v2_x0_5"), ckpt)
    assert main(["reuse", "shufflenet_v2_x0_5", "--input", "64", "--weights", str(ckpt), "--format", "json",
                 "--plot", str(plot)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["learned"]["mean_abs_weight"][0][1] > 0
    assert (tmp_path / "reuse_learned.png").read_bytes().startswith(PNG)


def test_cli_blocks_option(capsys):
    assert main(["reuse", "torchvision:resnet18", "--input", "64", "--blocks", "Bottleneck,BasicBlock",
                 "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["blocks"]) == 8


@pytest.mark.parametrize("argv", [
    ["reuse", "no_such_model"],
    ["reuse", "no_such_module_xyz.sub:build"],
    ["reuse", "shufflenet_v2_x0_5", "--input", "1x1x64x64"],
    ["reuse", "torchvision:resnet18", "--input", "1x1x64x64"],
    ["reuse", "shufflenet_v2_x0_5", "--input", "3xfoo"],
    ["reuse", "shufflenet_v2_x0_5", "--input", "64", "--blocks", "NoSuchBlock"],
    ["reuse", "shufflenet_v2_x0_5", "--input", "64", "--blocks", ","],
    ["reuse", "shufflenet_v2_x0_5", "--input", "64", "--weights", "/no/such/file.pt"],
    ["reuse", "shufflenet_v2_x0_5", "--input", "64", "--plot", "heatmap.txt"],
])
def test_cli_bad_input_is_one_line_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err and len(err.splitlines()) == 1, err


def test_cli_callable_not_returning_a_module(tmp_path, capsys):
    f = tmp_path / "factory.py"
    f.write_text("def build():\n    return 42\n")
    assert main(["reuse", f"{f}:build", "--input", "64"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err


def test_cli_plot_without_matplotlib_is_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert main(["reuse", "shufflenet_v2_x0_5", "--input", "64", "--plot", str(tmp_path / "h.png")]) == 2
    err = capsys.readouterr().err
    assert "matplotlib" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "h.png").exists()


def test_stage_r_is_finite_or_none(v2):
    assert all(s.r is None or math.isfinite(s.r) for s in v2.stages())
