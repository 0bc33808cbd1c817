"""``shufflenet.measure.profile`` / ``optypes`` / ``plots`` and ``shufflenet profile``: classification into the
paper's Fig. 2 buckets, the join with the cost report, the overhead arithmetic, the roofline verdict, the
PNG and the CLI's one-line errors. No absolute time is asserted."""

from __future__ import annotations

import csv
import dataclasses
import importlib
import importlib.util
import io
import json
import sys
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from shufflenet.cli.main import main
from shufflenet.cost.report import LayerCost
from shufflenet.errors import ShuffleNetError, UserInputError
from shufflenet.measure import optypes
from shufflenet.measure.machine import MachineCeilings
from shufflenet.measure.profile import ProfileReport, profile
from shufflenet.measure.profile_assembly import assemble, central_forwards, corrected_times
from shufflenet.measure.profiler_passes import Forwards, TopOp
from shufflenet.measure.roofline import ridge_point, roofline_bound
from shufflenet.models.layers import ChannelShuffle, channel_shuffle
from shufflenet.models.shufflenet_v2 import ShuffleSplit
from shufflenet.render import render

OT = optypes


def ceilings(gmadds: float = 100.0, gb_per_s: float = 10.0) -> MachineCeilings:
    """Synthetic ceilings; any other required field of the dataclass gets an empty value of its type."""
    values: dict = dict(device="cpu", threads=1, matmul_n=64, matmul_gflops=2 * gmadds, matmul_gmadds=gmadds,
                        copy_bytes=1, copy_gb_per_s=gb_per_s, matmul_relative_iqr=0.0, copy_relative_iqr=0.0,
                        measured_at="synthetic")
    empty = {"str": "", "int": 0, "float": 0.0, "bool": False}
    for f in dataclasses.fields(MachineCeilings):
        if f.name not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            values[f.name] = empty.get(str(f.type), None)
    return MachineCeilings(**values)


class Tiny(nn.Module):
    """Every bucket once: dense, group and depthwise conv, BN/ReLU/add, a ChannelShuffle module, the official
    V2 shuffle-split (views: the conv reading one half makes the copy), a shuffle written with plain tensor
    ops (as torchvision's), cat, max-pool, mean and a linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1, bias=False), nn.BatchNorm2d(12),
                                  nn.ReLU(inplace=True))
        self.split = ShuffleSplit()
        self.pw = nn.Conv2d(6, 6, 1, bias=False)
        self.gconv = nn.Conv2d(12, 12, 1, groups=3, bias=False)
        self.shuffle = ChannelShuffle(3)
        self.dw = nn.Conv2d(12, 12, 3, padding=1, groups=12, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(24, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        a, b = self.split(x)
        x = torch.cat((a, self.pw(b)), 1)
        y = self.dw(self.shuffle(self.gconv(x)))
        x = torch.cat((x + y, y), 1)
        x = channel_shuffle(x, 2)
        return self.fc(self.pool(x).mean((2, 3)))


@pytest.fixture(scope="module")
def tiny_report() -> ProfileReport:
    torch.manual_seed(0)
    return profile(Tiny(), (1, 3, 16, 16), threads=1, repeats=3, warmup=1, ceilings=ceilings(),
                   min_run_time=0.05, name="tiny")


# --- classification --------------------------------------------------------------------------------


def test_conv_kinds_from_cost_rows() -> None:
    assert OT.classify("aten::conv2d", kinds={"conv"}) == OT.CONV_DENSE
    assert OT.classify("aten::conv2d", kinds={"gconv"}) == OT.CONV_GROUP
    assert OT.classify("aten::conv2d", kinds={"dwconv"}) == OT.CONV_DEPTHWISE
    assert OT.conv_bucket(1, 24) == OT.CONV_DENSE
    assert OT.conv_bucket(3, 240) == OT.CONV_GROUP
    assert OT.conv_bucket(240, 240) == OT.CONV_DEPTHWISE


@pytest.mark.parametrize(("op", "bucket"), [
    ("aten::cat", OT.DATA), ("aten::contiguous", OT.DATA), ("aten::constant_pad_nd", OT.DATA),
    ("aten::relu_", OT.ELEMWISE), ("aten::add", OT.ELEMWISE), ("aten::batch_norm", OT.ELEMWISE),
    ("aten::hardtanh_", OT.ELEMWISE), ("aten::sigmoid", OT.ELEMWISE), ("aten::mul", OT.ELEMWISE),
    ("aten::mean", OT.POOLING), ("aten::max_pool2d", OT.POOLING), ("aten::adaptive_avg_pool2d", OT.POOLING),
    ("aten::linear", OT.FC), ("aten::addmm", OT.FC), ("aten::mm", OT.FC),
    ("aten::some_new_op", OT.OTHER),
])
def test_op_names(op: str, bucket: str) -> None:
    assert OT.classify(op) == bucket


def test_cost_kinds_win_over_names_and_shuffle_modules_win_over_all() -> None:
    assert OT.classify("aten::linear", kinds={"linear", "data"}) == OT.FC
    assert OT.classify("aten::batch_norm", kinds={"norm"}) == OT.ELEMWISE
    for op in ("aten::view", "aten::transpose", "aten::contiguous", "aten::clone"):
        assert OT.classify(op, module_type="ChannelShuffle") == OT.SHUFFLE
        assert OT.classify(op, kinds={"data"}, module_type="ShuffleSplit") == OT.SHUFFLE
    assert OT.classify("aten::clone", shuffle=True) == OT.SHUFFLE


def test_shuffle_sequence_outside_a_module() -> None:
    names = ["aten::add", "aten::view", "aten::transpose", "aten::contiguous", "aten::view", "aten::relu_"]
    assert OT.shuffle_positions(names, [4, 4, 5, 5, 4, 4]) == {1, 2, 3, 4}
    # A rank-4 transpose (an NHWC permute, say) is not a channel shuffle.
    assert OT.shuffle_positions(names, [4, 4, 4, 4, 4, 4]) == set()


def test_percentages_sum_to_100() -> None:
    times = {OT.CONV_DENSE: 3.0, OT.CONV_GROUP: 1.5, OT.ELEMWISE: 0.7, OT.DATA: 0.2, OT.SHUFFLE: 0.1,
             OT.POOLING: 0.05, OT.FC: 0.05, OT.OTHER: 0.0, OT.OVERHEAD: 0.4}
    assert sum(OT.percentages(times).values()) == pytest.approx(100.0)
    view = OT.paper_view(times)
    assert list(view) == list(OT.PAPER_CATEGORIES)
    assert sum(view.values()) == pytest.approx(100.0)
    assert view["Conv"] == pytest.approx(100 * 4.5 / 6.0)
    assert view["Other"] == pytest.approx(100 * 0.5 / 6.0)  # pooling + FC + framework
    assert OT.percentages({"a": 0.0}) == {"a": 0.0}


def test_fig2_data() -> None:
    v1 = OT.fig2_reference("shufflenet_v1_g3_x1_0", 137.5)
    mb2 = OT.fig2_reference("torchvision:mobilenet_v2", 300.8)
    assert v1 is not None and mb2 is not None
    assert v1["gpu"].percent == {"Conv": 50.0, "Elemwise": 15.0, "Data": 20.0, "Shuffle": 5.0, "Other": 10.0}
    assert mb2["arm"].percent["Conv"] == 89.0 and mb2["gpu"].percent["Shuffle"] is None
    for pies in (v1, mb2):
        for pie in pies.values():
            assert sum(v or 0.0 for v in pie.percent.values()) == pytest.approx(100.0, abs=0.01)
            assert "Fig. 2" in pie.source
    assert OT.fig2_reference("torchvision:mobilenet_v2", 220.0) is None  # width 0.75: not Fig. 2's model
    assert OT.fig2_reference("shufflenet_v2_x1_0") is None


# --- roofline ---------------------------------------------------------------------------------------


def test_roofline_verdict_on_synthetic_numbers() -> None:
    c = ceilings(gmadds=100.0, gb_per_s=10.0)
    assert ridge_point(c) == pytest.approx(10.0)  # multiply-adds per byte
    assert roofline_bound(2000, 100, c) == "compute"  # 20 madds/byte
    assert roofline_bound(1000, 100, c) == "compute"  # exactly at the ridge
    assert roofline_bound(500, 100, c) == "memory"
    assert roofline_bound(0, 4096, c) == "memory"  # a copy or ReLU
    assert roofline_bound(0, 0, c) == "n/a"  # a view
    assert roofline_bound(2000, 100, None) == "unknown"


# --- the overhead arithmetic (no timing) --------------------------------------------------------------


def test_overhead_correction_and_coverage_arithmetic() -> None:
    tops = [TopOp("aten::conv2d", "conv", ["conv2d", "convolution", "mkldnn_convolution"], 4),
            TopOp("aten::relu_", "act", ["relu_"], 4)]
    rows = [LayerCost("conv", "convolution", "conv", "Conv2d", 36, 1000, 200, 800, (1, 4, 4, 4)),
            LayerCost("act", "relu_", "act", "ReLU", 0, 0, 128, 512, (1, 4, 4, 4))]
    cost = SimpleNamespace(layers=rows, flops=1000, mac=328, mac_bytes=1312)
    types = {"(root)": "Net", "conv": "Conv2d", "act": "ReLU"}
    # Four forwards (us); the last one was interrupted and falls outside the central half.
    # Five forwards (us). The fourth was slow and falls outside the central half; in the fifth the thread
    # lost the CPU to another process (CPU time / wall 0.5): it is not used at all.
    fw = Forwards(["aten::conv2d", "aten::relu_"],
                   times=[[100.0, 10.0], [104.0, 10.0], [102.0, 12.0], [500.0, 10.0], [90.0, 5.0]],
                   nested=[[2, 0]] * 5, walls=[130.0, 134.0, 134.0, 530.0, 100.0],
                   cpu_ratio=[1.0, 0.99, 1.0, 1.0, 0.5], copy_times=[[0.0, 0.0]] * 5, copy_events=[[0, 0]] * 5)
    eps_s = 1e-6
    measurement = SimpleNamespace(median_s=120e-6, noisy=False, iqr_s=1e-6)
    r = assemble("net", (1, 3, 4, 4), torch.device("cpu"), torch.float32, 1, 5, 1, tops, types, {}, cost,
                  fw, eps_s, measurement, ceilings(), "given")
    assert central_forwards([1.0, 2.0, 3.0, 100.0]) == [1, 2]
    assert r.kept_forwards == [1, 2]
    conv, relu = r.ops
    # Kept forwards 1 and 2: conv (104 - 2, 102 - 2) -> 101 us; relu 11 us (no nested events).
    assert conv.time_s == pytest.approx(101e-6) and conv.raw_time_s == pytest.approx(103e-6)
    assert relu.time_s == pytest.approx(11e-6)
    # Gaps: wall - ops - 2 top-level events x 1 us = 18 and 18 us.
    assert r.overhead_time_s == pytest.approx(18e-6)
    assert r.profiled_sum_s == pytest.approx(130e-6)
    assert r.events_per_forward == 4
    assert r.coverage == pytest.approx(130 / 120)
    assert r.coverage_ok is False  # 8% over: outside 5%, and not rescaled to fit
    assert (conv.bucket, relu.bucket) == (OT.CONV_DENSE, OT.ELEMWISE)
    assert conv.flops == 1000 and conv.cost_ops == ["convolution"]
    assert sum(b.percent for b in r.buckets) == pytest.approx(100.0)


def test_nested_copy_split_arithmetic() -> None:
    """A conv (6 nested events) whose input copy (contiguous + clone + copy_) took 30 of its 100 us."""
    fw = Forwards(["aten::conv2d"], times=[[100.0]], nested=[[6]], walls=[110.0], cpu_ratio=[1.0],
                   copy_times=[[30.0]], copy_events=[[3]])
    main, copy_ = corrected_times(fw, 0, [True], 1.0)
    assert (main, copy_) == (66.0, 28.0)  # 100 - 30 - 4 x 1 and 30 - 2 x 1
    assert main + copy_ == corrected_times(fw, 0, [False], 1.0)[0] == 94.0


# --- a real (tiny) profile ---------------------------------------------------------------------------


def test_tiny_profile_buckets(tiny_report: ProfileReport) -> None:
    by_module: dict[str, set[str]] = {}
    for o in tiny_report.ops:
        by_module.setdefault(o.module, set()).add(o.bucket)
    assert by_module["stem.0"] == {OT.CONV_DENSE}
    assert by_module["stem.1"] == {OT.ELEMWISE} and by_module["stem.2"] == {OT.ELEMWISE}
    assert by_module["gconv"] == {OT.CONV_GROUP}
    assert by_module["dw"] == {OT.CONV_DEPTHWISE}
    assert by_module["shuffle"] == {OT.SHUFFLE} and by_module["split"] == {OT.SHUFFLE}
    # The conv on a shuffle-split half copies it to a dense layout first: that copy is the shuffle's cost.
    assert by_module["pw"] == {OT.CONV_DENSE, OT.SHUFFLE}
    pw_copy = [o for o in tiny_report.ops if o.module == "pw" and o.bucket == OT.SHUFFLE]
    assert len(pw_copy) == 1 and pw_copy[0].op == "aten::contiguous (in aten::conv2d)"
    assert by_module["pool"] == {OT.POOLING}
    assert by_module["fc"] == {OT.FC}
    root = {optypes.short_name(o.op): o.bucket for o in tiny_report.ops if o.module == "(root)"}
    assert root["add"] == OT.ELEMWISE and root["cat"] == OT.DATA and root["mean"] == OT.POOLING
    assert root["transpose"] == OT.SHUFFLE and root["contiguous"] == OT.SHUFFLE  # function-style shuffle
    assert sum(b.percent for b in tiny_report.buckets) == pytest.approx(100.0)
    assert sum(tiny_report.group_percent().values()) == pytest.approx(100.0)
    assert tiny_report.unmatched_cost_rows == 0


def test_layers_join_cost_rows(tiny_report: ProfileReport) -> None:
    from shufflenet.cost import count_cost

    cost = count_cost(Tiny(), (1, 3, 16, 16))
    layers = {r.name: r for r in tiny_report.layers}
    expected: dict[str, list[int]] = {}
    for row in cost.layers:
        acc = expected.setdefault(row.name, [0, 0, 0])
        acc[0] += row.flops
        acc[1] += row.mac
        acc[2] += row.mac_bytes
    assert set(expected) <= set(layers)
    for name, (flops, mac, nbytes) in expected.items():
        assert (layers[name].flops, layers[name].mac, layers[name].mac_bytes) == (flops, mac, nbytes), name
    assert sum(r.flops for r in tiny_report.layers) == cost.flops == tiny_report.flops
    assert sum(o.flops for o in tiny_report.ops) == cost.flops  # every row matched to an op
    assert layers["gconv"].bound in ("compute", "memory")  # from the cost rows and the ceilings alone
    # Fractions of the ceilings exist for every layer with a measured time (a tiny op's corrected time can be
    # 0 on a busy machine: then it has none).
    timed = [r for r in tiny_report.layers if r.time_s > 0 and r.mac_bytes > 0]
    assert timed and all(r.compute_pct is not None and r.bandwidth_pct is not None for r in timed)
    assert all(r.compute_pct is None for r in tiny_report.layers if r.time_s == 0)


def test_coverage_mechanics(tiny_report: ProfileReport) -> None:
    r = tiny_report
    assert r.total is not None and r.total_s > 0
    assert r.coverage == pytest.approx(r.profiled_sum_s / r.total_s)
    assert r.profiled_sum_s == pytest.approx(sum(b.time_s for b in r.buckets))
    assert r.overhead_per_event_s >= 0 and r.events_per_forward > len(r.ops)
    d = json.loads(json.dumps(r.to_dict(), default=str))
    assert d["coverage"]["ratio"] == pytest.approx(r.coverage)
    assert {"buckets", "layers", "ops", "paper_categories_percent", "env", "conventions"} <= set(d)
    assert "multiply-adds" in r.to_table() and "coverage" in r.to_table()
    for by in ("op-type", "layer", "op"):
        assert r.rows(by, top=2)


def test_png_written(tiny_report: ProfileReport, tmp_path) -> None:
    from shufflenet.measure.plots import plot_breakdown

    path = plot_breakdown(tiny_report, tmp_path / "tiny.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000
    tiny_report.paper = OT.FIG2["shufflenet_v1_g3_x1_0"]
    try:
        with_paper = plot_breakdown(tiny_report, tmp_path / "paper.png")
    finally:
        tiny_report.paper = None
    assert with_paper.stat().st_size > 1000


def test_png_without_matplotlib(tiny_report: ProfileReport, tmp_path, monkeypatch) -> None:
    """matplotlib is optional: no PNG and a note in the result, never a failure."""
    from shufflenet.measure.plots import breakdown_figure, plot_breakdown

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setattr(tiny_report, "notes", list(tiny_report.notes))
    assert plot_breakdown(tiny_report, tmp_path / "x.png") is None
    assert not (tmp_path / "x.png").exists()
    assert any("matplotlib is not installed" in n and "x.png" in n for n in tiny_report.notes)
    html = render(tiny_report, "html")  # the figure becomes a note there too
    assert "matplotlib is not installed" in html and "data:image/png" not in html
    with pytest.raises(ShuffleNetError, match="matplotlib"):  # asked for a matplotlib Figure itself
        breakdown_figure(tiny_report)


# --- CLI -----------------------------------------------------------------------------------------------


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv", [
    ("profile", "no_such_model"),
    ("profile", "shufflenet_v2_x0_5", "--top", "0"),
    ("profile", "shufflenet_v2_x0_5", "--top", "many"),
    ("profile", "shufflenet_v2_x0_5", "--threads", "100000"),
    ("profile", "shufflenet_v2_x0_5", "--device", "tpu"),
    ("profile", "shufflenet_v2_x0_5", "--input", "1x3x224"),
    ("profile", "shufflenet_v2_x0_5", "--by", "stage"),
])
def test_cli_errors_are_one_line(capsys, argv: tuple[str, ...]) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == "" and len(err.strip().splitlines()) == 1 and "error" in err


def test_cli_json_and_plot(capsys, tmp_path) -> None:
    png = tmp_path / "p.png"
    code, out, err = run(capsys, "--quiet", "profile", "shufflenet_v2_x0_5", "--input", "1x3x64x64",
                         "--repeats", "2", "--warmup", "1", "--ceilings", "none", "--no-total",
                         "--format", "json", "--plot", str(png))
    assert code == 0, err
    d = json.loads(out)
    assert d["model"] == "shufflenet_v2_x0_5" and d["coverage"]["ratio"] is None
    assert {b["key"] for b in d["buckets"]} == set(OT.BUCKETS)
    assert all(r["bound"] == "unknown" for r in d["layers"])
    assert png.stat().st_size > 1000


# --- the result contract ---------------------------------------------------------------------------------


def rows_to_csv(rows: list[dict]) -> str:
    """The CSV `shufflenet profile --format csv` printed before the one renderer (a DictWriter over the rows)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def test_profile_renders_in_every_format(tiny_report: ProfileReport) -> None:
    from shufflenet.result import Result

    r = tiny_report
    assert isinstance(r, Result) and isinstance(r.view("layer"), Result)
    # CSV: exactly what `shufflenet profile --format csv` printed (the rows of the chosen grouping).
    assert render(r, "csv") == rows_to_csv(r.rows())
    for by, top in (("op-type", None), ("layer", 3), ("op", 2)):
        assert render(r.view(by, top), "csv") == rows_to_csv(r.rows(by, top))
    assert render(r, "csv", table="layer") == rows_to_csv(r.rows("layer"))
    d = json.loads(render(r, "json"))
    assert d["coverage"]["ratio"] == pytest.approx(r.coverage) and d["conventions"] == r.conventions()
    assert [b["percent"] for b in d["buckets"]] == pytest.approx([b.percent for b in r.buckets])
    # Markdown and text: the bucket shares, as the table shows them, in the right rows.
    md = render(r, "md")
    for row in r.bucket_rows():
        line = next(x for x in md.splitlines() if x.startswith(f"| {row['bucket']} |"))
        assert f"| {row['percent']:.1f} |" in line and f"| {row['time_ms']:.3f} |" in line
    assert "multiply-adds" in md and "| share (%) |" in md
    text = r.to_table()
    assert text == render(r.view(), "table")
    conv = next(x for x in text.splitlines() if x.startswith("Conv (dense)"))
    assert conv.split()[-2:] == [f"{r.bucket_rows()[0]['time_ms']:.3f}", f"{r.bucket_rows()[0]['percent']:.1f}"]
    assert "coverage" in text and "Fig. 2 categories" in text
    layer_text = r.to_table("layer", top=2)
    assert "Fig. 2 categories" not in layer_text and "time per layer" in layer_text
    for row in r.layer_rows(2):
        assert row["layer"] in layer_text
    with pytest.raises(UserInputError, match="unknown grouping"):
        r.view("stage")
    # HTML: the tables and the breakdown chart, embedded.
    html = render(r, "html")
    assert html.count("<table>") == 4 and f">{r.bucket_rows()[0]['percent']:.1f}</td>" in html
    if importlib.util.find_spec("matplotlib") is not None:
        assert "data:image/png;base64," in html and len(r.figures()) == 1


def test_profile_md_with_its_chart(tiny_report: ProfileReport, tmp_path) -> None:
    pytest.importorskip("matplotlib")
    from shufflenet.render import write_result

    path = write_result(tiny_report, tmp_path / "p.md")
    assert "![where the time goes" in path.read_text() and (tmp_path / "p_breakdown.png").stat().st_size > 1000


# --- memory format ---------------------------------------------------------------------------------


class LayoutProbe(nn.Module):
    """Records, on every forward under inference mode (the profile's warm-up, attribution, timing and
    measure() passes), whether its input, its conv weight and the max-pool's input were channels_last."""

    seen: list[tuple[bool, bool, bool]] = []  # class-level: profile() runs a deep copy of the module

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        if torch.is_inference_mode_enabled():
            LayoutProbe.seen.append((_strictly_channels_last(x), _strictly_channels_last(self.conv.weight),
                                     _strictly_channels_last(y)))
        return self.fc(self.pool(y).mean((2, 3)))


def _strictly_channels_last(t: torch.Tensor) -> bool:
    return t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


@pytest.mark.parametrize("memory_format", ["contiguous", "channels_last"])
def test_memory_format_reaches_every_pass(memory_format: str) -> None:
    LayoutProbe.seen.clear()
    model = LayoutProbe()
    rep = profile(model, (1, 3, 16, 16), threads=1, repeats=4, warmup=1, ceilings="none", min_run_time=0.02,
                  name="probe", memory_format=memory_format)
    cl = memory_format == "channels_last"
    # warm-up + attribution + 4 timed (+ 1 discarded per chunk) + measure()'s warm-up and blocks
    assert len(LayoutProbe.seen) >= 1 + 1 + 4 + 4
    assert all(s == (cl, cl, cl) for s in LayoutProbe.seen), LayoutProbe.seen[:5]
    assert rep.memory_format == memory_format and rep.to_dict()["memory_format"] == memory_format
    assert rep.total is not None and rep.total.memory_format == memory_format
    assert ("NHWC (channels_last)" if cl else "NCHW (contiguous)") in rep.title()
    assert rep.env["memory_format"] == memory_format
    assert not _strictly_channels_last(model.conv.weight)  # the caller's model is left as it was
    assert {o.op for o in rep.ops} >= {"aten::conv2d", "aten::max_pool2d"}


def test_memory_format_is_checked() -> None:
    with pytest.raises(UserInputError, match="memory format"):
        profile(LayoutProbe(), (1, 3, 16, 16), memory_format="nhwc", ceilings="none")


def test_a_given_profiler_overhead_is_used_not_remeasured(monkeypatch):
    prof = importlib.import_module("shufflenet.measure.profile")  # the module (the package exports the function)

    def no_calibration(*a, **k):
        raise AssertionError("the overhead was given; it must not be measured again")

    monkeypatch.setattr(prof, "profiler_overhead_per_event", no_calibration)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU())
    report = prof.profile(net, (1, 3, 16, 16), repeats=2, warmup=1, ceilings="none", measure_total=False,
                          overhead_per_event_s=2.5e-7)
    assert report.overhead_per_event_s == 2.5e-7
