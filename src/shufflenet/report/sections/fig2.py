"""Figure 2 on this machine: where the time of ShuffleNet v1 1x (g=3) and MobileNet v2 1x goes, by the
paper's op categories (Conv, Elemwise, Data, Shuffle, Other), beside the paper's GPU and ARM pies.

The paper's point (Sec. 1, Fig. 2) is that FLOPs, which count convolutions only, miss a large part of the
run time: the other ops take 50% of ShuffleNet v1's GPU time and 13% of its ARM time (MobileNet v2: 46%
and 11%). Each model is profiled with :func:`shufflenet.measure.profile` at batch 1, 224x224, twice: in
PyTorch's default NCHW layout and in channels_last (NHWC). ShuffleNet v2 1x is profiled too (the paper
has no pie for it).

**Layout artefacts.** A kernel can be slow for reasons of the library, not of the architecture: on CPU,
PyTorch's NCHW max-pool is a scalar loop, several times slower than its channels_last kernel, and alone
takes a sixth of ShuffleNet v1's time in NCHW. :func:`find_artefacts` flags every aten op that takes at
least :data:`ARTEFACT_MIN_SHARE` of a model's time in one layout and runs at least
:data:`ARTEFACT_MIN_SPEEDUP` times faster in the other; the claim is then judged on the layout with the
smaller artefact share, so an artefact neither makes nor breaks the paper's point.

**Non-conv share** = 100% minus the Conv category of :meth:`ProfileReport.paper_percent`, i.e. Elemwise +
Data + Shuffle + Other (Other holds pooling, FC, unclassified ops and the framework time between ops).
That is how the paper's own numbers add up: ShuffleNet v1 on GPU is Conv 50%, so non-conv 50%; on ARM
Conv 87%, so non-conv 13% (Elemwise 4 + Data 1 + Shuffle 0 + Other 8).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from shufflenet.measure import optypes
from shufflenet.report.context import ReportContext, ReportOptions
from shufflenet.report.registry import register
from shufflenet.report.section import Claim, Section, SectionOutput, ranked, timing_entry
from shufflenet.result import Figure, Table

if TYPE_CHECKING:
    from shufflenet.measure.profile_report import ProfileReport

# (model name, label); the first two are Fig. 2's models.
MODELS = (("shufflenet_v1_g3_x1_0", "ShuffleNet v1 1x g=3"), ("torchvision:mobilenet_v2", "MobileNet v2 1x"),
          ("shufflenet_v2_x1_0", "ShuffleNet v2 1x"))
FIG2_MODELS = ("shufflenet_v1_g3_x1_0", "torchvision:mobilenet_v2")
LAYOUTS = ("contiguous", "channels_last")
LAYOUT_LABELS = {"contiguous": "NCHW", "channels_last": "channels_last"}

# Profile sizes per mode. Full = the committed benchmark (benchmarks/profile_fig2.py); quick keeps the whole
# section near 45 s on a 2-core CPU (six profiles). Tests monkeypatch these smaller.
SIZES: dict[str, dict[str, Any]] = {
    "full": {"repeats": 60, "warmup": 5, "min_run_time": 1.2, "image_size": 224},
    "quick": {"repeats": 18, "warmup": 3, "min_run_time": 0.36, "image_size": 224},
}
ESTIMATE_S = {"quick": 45.0, "full": 90.0}  # measured: 41 s and 83 s on a 2-core CPU, 1 thread

# An op is a layout artefact when it takes at least this share of a model's time in one layout ...
ARTEFACT_MIN_SHARE = 10.0  # percent
# ... and runs at least this many times faster in the other. A layout alone changes a well-written kernel's
# time by tens of percent (strides, vector width); 3x means one layout's kernel is not optimised.
ARTEFACT_MIN_SPEEDUP = 3.0

# The claim holds when the non-conv share is at least this in both Fig. 2 models: the paper's smallest
# shares, on ARM (13% for ShuffleNet v1, 11% for MobileNet v2), are the ones it still calls significant.
NON_CONV_THRESHOLD = 10.0  # percent
# A profile whose buckets sum to less or more than this share of the independently measured latency does
# not account for the run time (shares are ratios within one profile, so the usual 5-20% scatter of a busy
# machine does not matter; beyond 30% the profile itself is suspect).
COVERAGE_RANGE = (0.7, 1.3)

FRAMEWORK = "(framework, between ops)"
NON_CONV_CATEGORIES = tuple(c for c in optypes.PAPER_CATEGORIES if c != "Conv")


@dataclass(frozen=True)
class Artefact:
    """One op that is much slower in one layout than the other (see the module docstring)."""

    op: str
    model: str
    slow_layout: str
    share_pct: float  # of the model's time in the slow layout
    slow_ms: float
    fast_ms: float

    @property
    def fast_layout(self) -> str:
        return next(lay for lay in LAYOUTS if lay != self.slow_layout)

    @property
    def speedup(self) -> float:
        return self.slow_ms / self.fast_ms if self.fast_ms > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fast_layout": self.fast_layout, "speedup": self.speedup}


def op_times(report: ProfileReport) -> dict[str, float]:
    """Seconds per forward of each aten op name (all its calls summed), plus the framework time between ops
    under :data:`FRAMEWORK`: the values add up to the profile's total."""
    out: dict[str, float] = {}
    for o in report.ops:
        out[o.op] = out.get(o.op, 0.0) + o.time_s
    out[FRAMEWORK] = report.overhead_time_s
    return out


def find_artefacts(nchw: Mapping[str, Mapping[str, float]], channels_last: Mapping[str, Mapping[str, float]],
                   *, min_share: float = ARTEFACT_MIN_SHARE,
                   min_speedup: float = ARTEFACT_MIN_SPEEDUP) -> list[Artefact]:
    """The layout artefacts among per-model op times (model -> {aten op: seconds}, as :func:`op_times`).

    An op is one in a layout when it takes at least ``min_share`` percent of the model's time there (the sum
    of its op times) and at most 1/``min_speedup`` of that time in the other layout (an op absent from the
    other layout counts as 0 s there). Both directions are checked; the framework time is not an op.
    Sorted by share, largest first.
    """
    found: list[Artefact] = []
    for model in nchw.keys() & channels_last.keys():
        by_layout = {"contiguous": nchw[model], "channels_last": channels_last[model]}
        for slow, fast in (("contiguous", "channels_last"), ("channels_last", "contiguous")):
            total = sum(by_layout[slow].values())
            if total <= 0:
                continue
            for op, t in by_layout[slow].items():
                if op == FRAMEWORK:
                    continue
                share = 100.0 * t / total
                other = by_layout[fast].get(op, 0.0)
                if share >= min_share and t >= min_speedup * other:
                    found.append(Artefact(op, model, slow, share, t * 1e3, other * 1e3))
    return sorted(found, key=lambda a: -a.share_pct)


def artefact_free_layout(artefacts: Sequence[Artefact]) -> str:
    """The layout whose artefacts take the smaller share in all (NCHW, PyTorch's default, on a tie)."""
    share = {lay: sum(a.share_pct for a in artefacts if a.slow_layout == lay) for lay in LAYOUTS}
    return "channels_last" if share["channels_last"] < share["contiguous"] else "contiguous"


def non_conv_share(percent: Mapping[str, float]) -> float:
    """Share (%) of everything but Conv in Fig. 2's five categories (:meth:`ProfileReport.paper_percent`)."""
    return 100.0 - float(percent.get("Conv", 0.0))


def claim_verdict(shares: Mapping[str, float | None], coverages: Mapping[str, float | None] | None = None, *,
                  threshold: float = NON_CONV_THRESHOLD) -> str:
    """The verdict on "non-conv ops take a significant share of the time" (Fig. 2) from the non-conv share
    (%) of each Fig. 2 model in the artefact-free layout: ``holds`` when every share is >= ``threshold``,
    ``does not hold`` when none is, ``partly holds`` otherwise; ``inconclusive`` when a share is missing or
    a profile's coverage lies outside :data:`COVERAGE_RANGE` (its buckets do not account for the run time).
    """
    values = list(shares.values())
    if not values or any(v is None or not math.isfinite(v) for v in values):
        return "inconclusive"
    lo, hi = COVERAGE_RANGE
    if coverages and any(c is None or not lo <= c <= hi for c in coverages.values()):
        return "inconclusive"
    above = sum(1 for v in values if v is not None and v >= threshold)
    if above == len(values):
        return "holds"
    return "does not hold" if above == 0 else "partly holds"


def paper_pies(name: str) -> dict[str, optypes.Fig2Breakdown]:
    """The paper's Fig. 2 pies of a model (empty for a model Fig. 2 does not show)."""
    return optypes.fig2_reference(name) or {}


def paper_non_conv(name: str) -> dict[str, float]:
    """The paper's non-conv share per platform key (``gpu``, ``arm``) for a Fig. 2 model."""
    return {k: 100.0 - float(p.percent["Conv"] or 0.0) for k, p in paper_pies(name).items()}


def _label(name: str) -> str:
    return dict(MODELS).get(name, name)


def _pct(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def comparison_rows(reports: Mapping[str, Mapping[str, ProfileReport]]) -> list[dict[str, Any]]:
    """Fig. 2's comparison: per model and category, ours in both layouts beside the paper's GPU and ARM %."""
    rows = []
    for name, label in MODELS:
        ours = {lay: reports[lay][name].paper_percent() for lay in LAYOUTS if name in reports.get(lay, {})}
        pies = paper_pies(name)
        for cat in optypes.PAPER_CATEGORIES:
            row: dict[str, Any] = {"model": label, "category": cat}
            for lay in LAYOUTS:
                row[f"{lay}_pct"] = _pct(ours[lay][cat]) if lay in ours else None
            for key in ("gpu", "arm"):
                row[f"paper_{key}_pct"] = pies[key].percent.get(cat) if key in pies else None
            rows.append(row)
    return rows


def _framework_pct(r: ProfileReport) -> float:
    return next((b.percent for b in r.buckets if b.key == optypes.OVERHEAD), 0.0)


def summary_rows(reports: Mapping[str, Mapping[str, ProfileReport]]) -> list[dict[str, Any]]:
    """Per model and layout: latency, its spread, coverage and the conv / non-conv shares."""
    rows = []
    for name, label in MODELS:
        for lay in LAYOUTS:
            r = reports.get(lay, {}).get(name)
            if r is None:
                continue
            pct = r.paper_percent()
            t = r.total
            rows.append({
                "model": label, "layout": LAYOUT_LABELS[lay],
                "latency_ms": round(t.median_s * 1e3, 3) if t is not None else None,
                "spread_pct": round(100 * t.relative_iqr, 1) if t is not None else None,
                "coverage": round(r.coverage, 3) if r.coverage is not None else None,
                "conv_pct": _pct(pct["Conv"]), "non_conv_pct": _pct(non_conv_share(pct)),
                "eds_pct": _pct(sum(pct[c] for c in ("Elemwise", "Data", "Shuffle"))),
                "framework_pct": _pct(_framework_pct(r)),
            })
    return rows


def artefact_rows(artefacts: Sequence[Artefact]) -> list[dict[str, Any]]:
    return [{"op": a.op, "model": _label(a.model), "slow_layout": LAYOUT_LABELS[a.slow_layout],
             "share_pct": round(a.share_pct, 1),
             "nchw_ms": round(a.slow_ms if a.slow_layout == "contiguous" else a.fast_ms, 3),
             "channels_last_ms": round(a.fast_ms if a.slow_layout == "contiguous" else a.slow_ms, 3),
             "speedup": round(a.speedup, 1) if math.isfinite(a.speedup) else None} for a in artefacts]


def artefact_note(a: Artefact) -> str:
    """Why an artefact's cost is the library's and not the paper's point."""
    fast = (f"{a.fast_ms:.2f} ms in {LAYOUT_LABELS[a.fast_layout]} ({a.speedup:.1f}x faster)"
            if a.fast_ms > 0 else f"is not run at all in {LAYOUT_LABELS[a.fast_layout]}")
    bucket = optypes.classify(a.op)
    where = optypes.PAPER_FOLD.get(optypes.GROUPS.get(bucket, "Other"), optypes.GROUPS.get(bucket, "Other"))
    return (f"{a.op} takes {a.share_pct:.1f}% of {_label(a.model)}'s time in {LAYOUT_LABELS[a.slow_layout]} "
            f"({a.slow_ms:.2f} ms per forward) but {fast}: the same computation, so this is an implementation "
            f"artefact of the library's {LAYOUT_LABELS[a.slow_layout]} kernel, not a cost of the architecture "
            f"and not the paper's point (it lands in Fig. 2's {where!r} category and inflates the non-conv "
            "share)")


def finding(reports: Mapping[str, Mapping[str, ProfileReport]], artefacts: Sequence[Artefact],
            free: str, device: str) -> str:
    """The section's one sentence: the paper's non-conv shares (Fig. 2) and ours in both layouts."""
    nc = {lay: {n: non_conv_share(reports[lay][n].paper_percent()) for n in FIG2_MODELS if n in reports[lay]}
          for lay in LAYOUTS}
    v1, mn = (paper_non_conv(n) for n in FIG2_MODELS)
    slow = sorted({a.op.removeprefix("aten::") for a in artefacts if a.slow_layout == "contiguous"})
    removed = f", without PyTorch's slow NCHW {', '.join(slow)}" if free == "channels_last" and slow else ""

    def here(n: str) -> str:
        return (f"{_label(n).split(' 1x')[0]} {nc['contiguous'][n]:.0f}% in NCHW, "
                f"{nc['channels_last'][n]:.0f}% in channels_last")

    return (f"The paper: non-conv ops (Elemwise, Data, Shuffle, Other: all but Conv) take "
            f"{v1['gpu']:.0f}% of ShuffleNet v1's GPU time and {v1['arm']:.0f}% of its ARM time, MobileNet v2 "
            f"{mn['gpu']:.0f}% and {mn['arm']:.0f}% (Fig. 2). Here ({device}): "
            f"{here(FIG2_MODELS[0])}{removed}; {here(FIG2_MODELS[1])}.")


# -- figures ------------------------------------------------------------------------------------------


def draw_model(fig: Any, name: str, layouts: Mapping[str, ProfileReport]) -> None:
    """One model's breakdown: a 100%-stacked bar per layout measured here (the buckets of
    :func:`shufflenet.measure.plots.draw_breakdown`), then the paper's Fig. 2 GPU and ARM pies."""
    from shufflenet.measure.plots import COLORS, paper_row, stacked_rows, unique_handles

    fig.set_layout_engine("constrained")  # room for the legend below the axes, whatever the bar count
    ax = fig.add_subplot(1, 1, 1)
    rows: list[tuple[str, list[tuple[str, float, str]]]] = []
    for lay, r in layouts.items():
        pct = optypes.percentages(r.bucket_times())
        cov = f", cov. {r.coverage:.2f}" if r.coverage is not None else ""
        rows.append((f"here, {LAYOUT_LABELS[lay]}\n{r.device}, {r.threads} thr{cov}",
                     [(optypes.LABELS[k], pct[k], COLORS[k]) for k in optypes.BUCKETS]))
    rows += [paper_row(pie) for pie in paper_pies(name).values()]
    stacked_rows(ax, rows)
    any_r = next(iter(layouts.values()))
    ax.set_title(f"Where the time goes: {_label(name)}, batch 1, {'x'.join(map(str, any_r.input_size[2:]))}",
                 fontsize=9)
    seen = unique_handles(ax)
    fig.legend(seen.values(), seen.keys(), loc="outside lower center", ncol=5, fontsize=7, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)


def figures(reports: Mapping[str, Mapping[str, ProfileReport]]) -> list[Figure]:
    """One figure per model (three): both layouts measured here and, for Fig. 2's models, the paper's pies."""
    from shufflenet.measure.plots import BREAKDOWN_DPI

    out = []
    for name, label in MODELS:
        layouts = {lay: reports[lay][name] for lay in LAYOUTS if name in reports.get(lay, {})}
        if not layouts:
            continue
        height = 1.6 + 0.7 * (len(layouts) + len(paper_pies(name)))
        out.append(Figure(f"Fig. 2 on this machine: {label}, NCHW and channels_last",
                          lambda fig, name=name, layouts=layouts: draw_model(fig, name, layouts),
                          key=f"fig2_{name.replace('torchvision:', 'tv_')}", size=(10.0, height),
                          dpi=BREAKDOWN_DPI))
    return out


# -- the section --------------------------------------------------------------------------------------


def sizes(options: ReportOptions) -> dict[str, Any]:
    return dict(SIZES[options.mode])


def profile_all(ctx: ReportContext) -> dict[str, dict[str, ProfileReport]]:
    """The six profiles (three models x two layouts), one progress step each."""
    from shufflenet.measure import profile
    from shufflenet.measure.overhead import profiler_overhead_per_event
    from shufflenet.models import create_model

    s = sizes(ctx.options)
    side = int(s["image_size"])
    jobs = [(lay, name) for lay in LAYOUTS for name, _ in MODELS]
    reports: dict[str, dict[str, ProfileReport]] = {lay: {} for lay in LAYOUTS}
    # The profiler's cost per event is the machine's, not a model's: measured once for the six profiles.
    eps = ctx.shared("profiler_overhead_per_event",
                     lambda: profiler_overhead_per_event(ctx.options.device))
    for lay, name in ctx.progress(jobs, "Fig. 2 profiles", len(jobs)):
        ctx.log(f"    profiling {name} ({LAYOUT_LABELS[lay]})")
        reports[lay][name] = profile(create_model(name), (1, 3, side, side), device=ctx.options.device,
                                     threads=ctx.options.threads, memory_format=lay, repeats=s["repeats"],
                                     warmup=s["warmup"], min_run_time=s["min_run_time"], ceilings="cached",
                                     name=name, overhead_per_event_s=eps)
    return reports


def _profile_dict(r: ProfileReport) -> dict[str, Any]:
    d = r.to_dict()
    # Per-op rows (as benchmarks/profile_fig2.py) and per-layer rows (about 60 KB a profile) are long; the
    # buckets, the coverage and the independent total are kept.
    d.pop("ops", None)
    d.pop("layers", None)
    return d


_UNITS = {"contiguous_pct": "%", "channels_last_pct": "%", "paper_gpu_pct": "%",
          "paper_arm_pct": "%", "latency_ms": "ms", "spread_pct": "%", "conv_pct": "%", "non_conv_pct": "%",
          "eds_pct": "%", "framework_pct": "%", "share_pct": "%", "nchw_ms": "ms", "channels_last_ms": "ms",
          "speedup": "x"}
_LABELS = {"contiguous_pct": "ours NCHW", "channels_last_pct": "ours channels_last", "paper_gpu_pct": "paper GPU",
           "paper_arm_pct": "paper ARM", "latency_ms": "latency", "spread_pct": "IQR/median",
           "conv_pct": "Conv", "non_conv_pct": "non-conv (100 - Conv)", "eds_pct": "Elemwise+Data+Shuffle",
           "framework_pct": "framework (between ops)", "slow_layout": "slow in", "share_pct": "share of model",
           "nchw_ms": "NCHW", "channels_last_ms": "channels_last", "speedup": "speed-up"}
_FMTS = {k: ".1f" for k in _UNITS} | {"latency_ms": ".2f", "nchw_ms": ".3f", "channels_last_ms": ".3f",
                                      "coverage": ".3f"}


def _table(title: str, rows: list[dict[str, Any]], key: str, notes: Sequence[str] = ()) -> Table:
    return Table.from_rows(title, rows, units=_UNITS, labels=_LABELS, fmts=_FMTS, notes=notes, key=key)


def run(ctx: ReportContext) -> SectionOutput:
    """Profile the three models in both layouts, find the layout artefacts, judge Fig. 2's claim."""
    reports = profile_all(ctx)
    artefacts = find_artefacts({n: op_times(r) for n, r in reports["contiguous"].items()},
                               {n: op_times(r) for n, r in reports["channels_last"].items()})
    free = artefact_free_layout(artefacts)
    any_r = reports["contiguous"][MODELS[0][0]]
    side = any_r.input_size[2]
    device = f"{any_r.device}, {any_r.threads} thread(s)"
    setting = f"batch 1, {side}x{side}, {device}, {any_r.dtype}"

    comparison = _table(f"Fig. 2 categories (Pooling and FC folded into Other), % of the forward time, {setting}",
                        comparison_rows(reports), "fig2_comparison",
                        ["paper: ShuffleNet V2 paper, Fig. 2 (GPU: GTX 1080Ti, batch 8; ARM: Snapdragon 810, "
                         "1 thread, batch 1); it has no pie for ShuffleNet v2 (empty columns)",
                         "Other here = pooling, FC, unclassified ops and the framework time between ops"])
    artefact_table = _table(
        f"Layout artefacts: ops >= {ARTEFACT_MIN_SHARE:.0f}% of a model's time in one layout and >= "
        f"{ARTEFACT_MIN_SPEEDUP:.0f}x faster in the other (ms per forward, all calls of the op)",
        artefact_rows(artefacts), "fig2_artefacts")
    summary = _table(f"Per model: latency (measure(), no profiler), coverage and conv vs non-conv share, {setting}",
                     summary_rows(reports), "fig2_summary",
                     ["coverage = sum of the profile's buckets / the independent latency",
                      "non-conv = 100% - Conv = Elemwise + Data + Shuffle + Other (the paper's 50% / 13% for "
                      "ShuffleNet v1 add up this way)"])

    notes = [artefact_note(a) for a in artefacts]
    if artefacts:
        notes.append(f"The claim is judged on the {LAYOUT_LABELS[free]} profiles, the layout with the smaller "
                     "artefact share: there the breakdown shows the paper's point without the library's slow "
                     "kernel.")
    else:
        notes.append(f"No layout artefact found (no op >= {ARTEFACT_MIN_SHARE:.0f}% of a model's time that runs "
                     f">= {ARTEFACT_MIN_SPEEDUP:.0f}x faster in the other layout); the claim is judged on NCHW.")

    shares = {n: non_conv_share(reports[free][n].paper_percent()) for n in FIG2_MODELS}
    coverages = {n: reports[free][n].coverage for n in FIG2_MODELS}
    verdict = claim_verdict(shares, coverages)
    v1, mn = (paper_non_conv(n) for n in FIG2_MODELS)
    here = "; ".join(f"{_label(n)}: {shares[n]:.0f}% (of which framework time between ops "
                     f"{_framework_pct(reports[free][n]):.0f}%; {LAYOUT_LABELS[free]}, {device}; NCHW "
                     f"{non_conv_share(reports['contiguous'][n].paper_percent()):.0f}%)" for n in FIG2_MODELS)
    claim = Claim("fig2", "FLOPs miss a large part of the run time: non-conv ops (Elemwise, Data, Shuffle, Other) "
                  f"take a significant share, >= {NON_CONV_THRESHOLD:.0f}% (Fig. 2)",
                  f"ShuffleNet v1: {v1['gpu']:.0f}% GPU, {v1['arm']:.0f}% ARM; "
                  f"MobileNet v2: {mn['gpu']:.0f}% GPU, {mn['arm']:.0f}% ARM", here, verdict)
    ranking = sorted((n for n, _ in MODELS), key=lambda n: -non_conv_share(reports[free][n].paper_percent()))

    timings = [timing_entry(f"fig2 {_label(n)} {LAYOUT_LABELS[lay]}", r.total.relative_iqr, r.total.noisy)
               for lay in LAYOUTS for n, r in reports[lay].items() if r.total is not None]
    data = {"sizes": sizes(ctx.options), "models": dict(MODELS), "artefact_free_layout": free,
            "thresholds": {"artefact_min_share_pct": ARTEFACT_MIN_SHARE,
                           "artefact_min_speedup": ARTEFACT_MIN_SPEEDUP,
                           "non_conv_threshold_pct": NON_CONV_THRESHOLD, "coverage_range": COVERAGE_RANGE},
            "non_conv_pct": {lay: {n: non_conv_share(r.paper_percent()) for n, r in reports[lay].items()}
                             for lay in LAYOUTS},
            "artefacts": [a.to_dict() for a in artefacts],
            "claim_rule": (f"holds when the non-conv share of both Fig. 2 models is >= {NON_CONV_THRESHOLD:.0f}% in "
                           "the artefact-free layout, does not hold when neither is, partly holds otherwise; "
                           f"inconclusive when a coverage lies outside {COVERAGE_RANGE}"),
            "profiles": {lay: {n: _profile_dict(r) for n, r in reports[lay].items()} for lay in LAYOUTS}}
    return SectionOutput(
        finding=finding(reports, artefacts, free, device),
        tables=[comparison, *([artefact_table] if artefacts else []), summary], figures=figures(reports), claims=[claim],
        rankings={"fig2 non-conv share": ranked({_label(n): non_conv_share(reports[free][n].paper_percent())
                                                 for n in ranking})}, data=data, notes=notes, timings=timings)


def _estimate(options: ReportOptions) -> float:
    return ESTIMATE_S[options.mode]


SECTION = register(Section("fig2", "Figure 2 on this machine: where the time goes", 50, run, estimate_s=_estimate,
                           description="op-type breakdown of ShuffleNet v1, MobileNet v2 and ShuffleNet v2 in "
                                       "NCHW and channels_last, beside the paper's GPU and ARM pies"))
