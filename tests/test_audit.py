"""`shufflenet audit`: the paper's readings of networks (ShuffleNet V2, Sec. 2, G1-G4) reproduced, the closed
forms checked, user model specs, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import math
import sys
import textwrap

import pytest
import torch
from torch import nn

import shufflenet
from shufflenet.audit import AuditReport, audit_model
from shufflenet.audit.blocks import find_blocks
from shufflenet.audit.conv_rules import g1_numbers, g2_numbers
from shufflenet.audit.findings import G1_FLAG_EXCESS, G3_FLAG_OPS, G4_FLAG_SHARE
from shufflenet.audit.trace import ConvInfo, trace
from shufflenet.cli.main import main
from shufflenet.cost import analytic, count_cost
from shufflenet.guidelines.blocks import G3Block
from shufflenet.render import render

SIZE = (1, 3, 224, 224)


@pytest.fixture(scope="module")
def reports() -> dict[str, AuditReport]:
    names = ("shufflenet_v1_g3_x1_0", "shufflenet_v2_x1_0", "torchvision:mobilenet_v2", "torchvision:resnet18")
    return {n: audit_model(n, SIZE) for n in names}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- the closed forms ----------------------------------------------------------------------------------


def test_g1_bound_is_the_brute_force_minimum() -> None:
    """Sec. 2, G1: at fixed B = hw*c1*c2, MAC = hw(c1+c2) + c1*c2 is smallest at c1 = c2, where it meets
    2*sqrt(hw*B) + B/(hw); every other split of the same product lies above the bound."""
    for h, w, product in ((7, 7, 4096), (14, 14, 128 * 128), (56, 56, 36 * 36), (28, 28, 6 * 24)):
        flops = h * w * product
        splits = [(c1, product // c1) for c1 in range(1, product + 1) if product % c1 == 0]
        macs = {s: analytic.conv1x1_mac(h, w, *s) for s in splits}
        best = min(macs.values())
        bound = analytic.g1_mac_lower_bound(h, w, flops)
        assert all(m >= bound - 1e-6 for m in macs.values())
        root = math.isqrt(product)
        assert root * root == product and best == macs[(root, root)] == pytest.approx(bound)
        # a real-valued brute force over c1 finds the same minimum
        grid = min(h * w * (c + product / c) + product for c in (1 + k / 100 for k in range(100 * product)))
        assert grid == pytest.approx(bound, rel=1e-6)


def test_g1_group_bound_is_the_sum_over_groups_and_g2_matches_the_paper_form() -> None:
    flops, mac, bound = g1_numbers(28, 28, 240, 60, 3)
    assert mac == analytic.conv1x1_mac(28, 28, 240, 60, 3)
    per_group = analytic.g1_mac_lower_bound(28, 28, analytic.conv1x1_flops(28, 28, 80, 20))
    assert bound == pytest.approx(3 * per_group)
    conv = ConvInfo(c1=60, c2=240, groups=3, kernel=(1, 1), stride=(1, 1), in_hw=(28, 28))
    f, mac_g, mac_1 = g2_numbers(28, 28, conv)
    assert f == 28 * 28 * 60 * 240 // 3
    assert mac_g == analytic.conv1x1_mac(28, 28, 60, 240, 3) == 240000
    assert mac_1 == analytic.conv1x1_mac(28, 28, 60, 80, 1) == 114560  # g=1, c2/g outputs: equal FLOPs


def test_the_closed_form_mac_is_the_engines_for_a_bare_1x1_conv() -> None:
    conv = nn.Conv2d(24, 58, 1, bias=False)
    row = count_cost(conv, (1, 24, 56, 56)).layers[0]
    assert row.mac == g1_numbers(56, 56, 24, 58)[1] and row.flops == g1_numbers(56, 56, 24, 58)[0]


# -- the paper's readings --------------------------------------------------------------------------------


def test_shufflenet_v1_is_flagged_on_g2(reports) -> None:
    r = reports["shufflenet_v1_g3_x1_0"]
    assert r.verdict("G2") == "flagged" and r.score("G2") < 90
    worst = r.flagged("G2")[0]
    assert worst.evidence["groups"] == 3 and (worst.evidence["c1"], worst.evidence["c2"]) == (60, 240)
    assert worst.evidence["mac"] == 240000 and worst.evidence["mac_g1"] == 114560  # 28x28, see above
    assert worst.evidence["overhead_pct"] == pytest.approx(100 * (240000 / 114560 - 1))
    assert "g=1" in worst.suggestion
    assert r.verdict("G1") == "flagged"  # the 1:4 bottleneck, as the paper reads V1 too


def test_mobilenet_v2_is_flagged_on_g1_and_g4(reports) -> None:
    r = reports["torchvision:mobilenet_v2"]
    assert r.verdict("G1") == "flagged" and r.verdict("G4") == "flagged"
    expansions = [f for f in r.flagged("G1") if f.evidence["c2"] == 6 * f.evidence["c1"]]
    assert expansions and all(f.evidence["ratio"] == "1:6.0" for f in expansions)
    assert max(f.evidence["excess_pct"] for f in expansions) > 40  # 7/(2*sqrt(6)) - 1 = 43% on thick maps
    assert r.elementwise_share() >= G4_FLAG_SHARE
    types = {t["type"].split(" ")[0]: t["share_pct"] for t in r.g4_types}
    assert types["depthwise"] > 10 and types["activations"] > 25  # depthwise conv and ReLU6 on thick maps
    assert any(f.evidence["widest"] >= 6 * 24 for f in r.flagged("G4"))


def test_shufflenet_v2_is_clean_on_g1_to_g3(reports) -> None:
    """Clean = no finding over its threshold: every 1x1 conv within 15% of the G1 bound, no group conv, no
    block over 8 fragmented operators or with 4 side by side."""
    r = reports["shufflenet_v2_x1_0"]
    assert [r.verdict(g) for g in ("G1", "G2", "G3")] == ["clean"] * 3
    assert max(f.evidence["excess_pct"] for f in r.findings["G1"]) < 100 * G1_FLAG_EXCESS
    assert not r.findings["G2"] and r.score("G2") == 100
    ops = [f.evidence["ops"] for f in r.findings["G3"]]
    assert len(ops) == 16 and set(ops) == {3, 5} and max(ops) <= G3_FLAG_OPS  # basic / downsampling units
    assert r.score("G1") > 98 and r.score("G3") > 90


def test_resnet18_blocks_have_the_papers_2_or_3_operators(reports) -> None:
    r = reports["torchvision:resnet18"]
    ops = {f.module: f.evidence["ops"] for f in r.findings["G3"]}
    assert len(ops) == 8 and set(ops.values()) == {2, 3}
    assert ops["layer1.0"] == 2 and ops["layer2.0"] == 3  # basic block; with the 1x1 downsampling conv
    assert r.verdict("G3") == "clean" and r.score("G3") == 100
    g3 = next(t for t in r.tables() if t.key == "g3")
    assert any("NASNet-A has 13 fragmented operators" in n and "ResNet 2 or 3" in n for n in g3.notes)


class NasLikeCell(nn.Module):
    """A NASNet-A-like normal cell: five pairwise combinations of separable convs, pools and identities on
    the same input, summed, concatenated and projected by a 1x1 conv."""

    def __init__(self, c: int = 16) -> None:
        super().__init__()

        def sep(k: int) -> nn.Sequential:
            return nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, k, padding=k // 2, groups=c, bias=False),
                                 nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))

        self.left = nn.ModuleList([sep(3), sep(5), nn.AvgPool2d(3, 1, 1), nn.AvgPool2d(3, 1, 1), sep(5)])
        self.right = nn.ModuleList([nn.Identity(), sep(3), nn.Identity(), nn.AvgPool2d(3, 1, 1), sep(3)])
        self.project = nn.Conv2d(5 * c, c, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([a(x) + b(x) for a, b in zip(self.left, self.right, strict=True)], 1))


class NasLikeNet(nn.Module):
    def __init__(self, c: int = 16) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1, bias=False)
        self.cells = nn.Sequential(NasLikeCell(c), NasLikeCell(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cells(self.stem(x))


def test_a_nas_like_cell_is_flagged_on_g3() -> None:
    r = shufflenet.audit(NasLikeNet(), (1, 3, 32, 32))
    cells = r.findings["G3"]
    assert [f.module for f in cells] == ["cells.0", "cells.1"]
    e = cells[0].evidence
    assert e["ops"] == 14 and e["branches"] == 8  # 5 separable convs x 2 + 3 pools + the 1x1 projection
    assert r.verdict("G3") == "flagged" and r.score("G3") == 0 and "NASNet-A" in cells[0].suggestion


def test_table3_blocks_read_as_the_paper_describes_them() -> None:
    def ops_and_branches(block: nn.Module) -> tuple[int, int]:
        net = nn.Sequential(block, G3Block(32, 1, False))
        report, graph, _ = trace(net, (1, 32, 16, 16))
        (b,) = [b for b in find_blocks(net, graph) if b.path == "0"]
        return b.ops, b.branches

    assert ops_and_branches(G3Block(32, 4, parallel=True)) == (4, 4)  # flagged: 4 side by side
    assert ops_and_branches(G3Block(32, 4, parallel=False)) == (4, 1)
    assert ops_and_branches(G3Block(32, 2, parallel=True)) == (2, 2)


def test_a_model_that_is_one_cell_is_its_own_block_and_a_plain_chain_has_none() -> None:
    cell = audit_model(NasLikeCell(), (1, 16, 16, 16))
    assert [f.module for f in cell.findings["G3"]] == ["(root)"]
    chain = audit_model(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 1)), (1, 3, 16, 16))
    assert chain.findings["G3"] == [] and chain.verdict("G3") == "clean" and chain.score("G3") == 100


# -- the result -------------------------------------------------------------------------------------------


def test_report_renders_in_every_format_and_json_mirrors_to_dict(reports) -> None:
    r = reports["shufflenet_v1_g3_x1_0"]
    for fmt in ("table", "md", "csv", "html"):
        assert "stage2" in render(r, fmt)
    data = json.loads(render(r, "json"))
    assert data["verdicts"] == {"G1": "flagged", "G2": "flagged", "G3": "clean", "G4": "flagged"}
    assert set(data["findings"]) == {"G1", "G2", "G3", "G4"} and data["top_offenders"]
    assert data["summary"][1]["guideline"] == "G2" and data["summary"][1]["score"] == pytest.approx(r.score("G2"))
    keys = [t.key for t in r.tables()]
    assert keys[:2] == ["summary", "top_offenders"] and {"g1", "g2", "g3", "g4", "g4_types"} <= set(keys)


def test_figure_draws() -> None:
    pytest.importorskip("matplotlib")
    r = audit_model(NasLikeNet(), (1, 3, 16, 16))
    assert r.figures()[0].png().startswith(b"\x89PNG")


def test_the_package_is_callable_and_still_a_package() -> None:
    import shufflenet.audit as pkg

    assert shufflenet.audit is pkg and shufflenet.audit.AuditReport is AuditReport
    r = shufflenet.audit(nn.Sequential(nn.Conv2d(3, 8, 1), nn.Conv2d(8, 48, 1)), input_size=(1, 3, 8, 8))
    assert isinstance(r, AuditReport) and r.findings["G1"][1].evidence["ratio"] == "1:6.0"
    assert shufflenet.audit_model is audit_model


# -- the CLI, user models and bad input ------------------------------------------------------------------

USER_FILE = """
from torch import nn

WIDTH = 3


def make(width=8):
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 6 * width, 1))


def bad():
    return 42


def broken():
    raise RuntimeError("no weights here\\nsecond line")
"""


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "net.py"
    path.write_text(textwrap.dedent(USER_FILE))
    return path


def test_a_user_file_spec_with_keywords(capsys, user_file, tmp_path) -> None:
    out = tmp_path / "audit.json"
    code, _, err = run(capsys, "audit", f"{user_file}:make", "-m", "width=4", "--input", "1x3x16x16", "--out", str(out))
    assert code == 0, err
    data = json.loads(out.read_text())
    assert data["model"].endswith("net.py:make") and data["findings"]["G1"][0]["c2"] == 24
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.json", "net.py"]  # atomic: no temp file left


def test_a_user_package_module_spec(capsys, tmp_path, monkeypatch) -> None:
    pkg = tmp_path / "auditpkg_zz"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(textwrap.dedent(USER_FILE))
    monkeypatch.chdir(tmp_path)
    try:
        code, out, err = run(capsys, "cost", "auditpkg_zz.nets:make", "--input", "16", "--format", "json")
        assert code == 0, err
        assert json.loads(out)["flops"] > 0
        assert isinstance(shufflenet.create_model("auditpkg_zz.nets:make", width=2), nn.Sequential)
    finally:
        for name in [m for m in sys.modules if m.startswith("auditpkg_zz")]:
            del sys.modules[name]


@pytest.mark.parametrize("spec, needle", [
    ("no_such_pkg_zz.nets:make", "cannot import module 'no_such_pkg_zz.nets'"),
    ("missing_zz/net.py:make", "no such file"),
    ("{file}:nope", "has no attribute 'nope'"),
    ("{file}:WIDTH", "WIDTH is not callable (it is of type int)"),
    ("{file}:bad", "bad() returned int, not a torch.nn.Module"),
    ("{file}:broken", "RuntimeError: no weights here"),
])
def test_bad_user_specs_are_one_line_exit_2(capsys, user_file, spec, needle) -> None:
    code, _, err = run(capsys, "audit", spec.format(file=user_file), "--input", "16")
    assert code == 2 and err.count("\n") == 1 and err.startswith("shufflenet: error:"), err
    assert needle in err


def test_module_import_error_names_the_module_and_its_error(capsys) -> None:
    code, _, err = run(capsys, "audit", "no_such_pkg_zz.nets:make")
    assert code == 2 and "ModuleNotFoundError: No module named 'no_such_pkg_zz'" in err


def test_a_shape_the_model_rejects_and_a_missing_timm_are_one_line_exit_2(capsys, user_file, monkeypatch) -> None:
    code, _, err = run(capsys, "audit", f"{user_file}:make", "--input", "1x1x16x16")
    assert code == 2 and err.count("\n") == 1 and "cannot run on input 1x1x16x16" in err
    monkeypatch.setitem(sys.modules, "timm", None)  # as if not installed
    code, _, err = run(capsys, "audit", "timm:audit_probe_missing_dependency")
    assert code == 2 and err.count("\n") == 1 and "needs timm" in err


def test_measure_on_a_small_input(capsys, tmp_path, one_thread) -> None:
    out = tmp_path / "m.json"
    code, _, err = run(capsys, "audit", "shufflenet_v1_g3_x0_5", "--input", "1x3x64x64", "--measure",
                       "--repeats", "3", "--rounds", "2", "--min-run-time", "0.01", "--rebuild-top", "2",
                       "--out", str(out))
    assert code == 0, err
    data = json.loads(out.read_text())
    assert data["measured"]["options"]["threads"] == 1 and data["measured"]["forward_ms"] > 0
    g2 = data["findings"]["G2"]
    timed = [f for f in g2 if "compliant_ms" in f]
    assert timed and all(f["compliant"].endswith("g=1") and f["alone_ms"] > 0 for f in timed)
    assert all(0 <= f["time_share_pct"] <= 100 for f in g2)
    assert sum(f["time_share_pct"] for f in data["findings"]["G3"]) <= 100.5
    assert data["env"]["threads"] == 1
