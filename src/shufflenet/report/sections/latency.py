"""The latency predictor (Sec. 1, Fig. 1: FLOPs are an indirect metric; speed on the target platform is the
direct one). A predictor calibrated on this machine's kernels -- never on a network -- is scored on held-out
networks beside two linear fits of FLOPs and of FLOPs + MAC, which are even given the networks' measured
times (leave-one-out); and beside the machine's own repeatability, the ceiling of any predictor here.

Quick mode uses the cached calibration of this machine and thread count when there is one (else it runs a
quick calibration and caches it) and scores 12 held-out networks; full mode runs a full calibration and
scores all 51 of :func:`shufflenet.audit.latency.evaluate.held_out_networks`.
"""

from __future__ import annotations

from typing import Any

from shufflenet.report.context import ReportContext, ReportOptions
from shufflenet.report.registry import register
from shufflenet.report.section import Claim, Section, SectionOutput, SectionUnavailable, ranked, timing_entry


def _calibration(ctx: ReportContext) -> tuple[Any, str]:
    """(calibration, how it was obtained): the cache when it describes this platform, else a new one."""
    from shufflenet.audit.latency import calibrate, default_path, load_calibration
    from shufflenet.errors import UserInputError

    o = ctx.options
    threads = o.resolved_threads()
    path = default_path(threads)
    if o.quick and path.exists():
        try:
            cal = load_calibration(path)
        except UserInputError as exc:
            ctx.log(f"latency: ignoring the cached calibration ({exc})")
        else:
            if not cal.differences(threads=threads):
                return cal, f"cached {cal.mode} calibration of {cal.created} ({path})"
    mode = "quick" if o.quick else "full"
    cal = calibrate(mode, threads)
    how = f"{mode} calibration run for this report ({len(cal.samples)} kernels, {cal.seconds:.0f} s)"
    try:
        cal.save(path)
        how += f", cached at {path}"
    except OSError as exc:  # a read-only home: the report still runs
        ctx.log(f"latency: calibration not cached ({exc})")
    return cal, how


def verdict(scores: dict[str, dict[str, float]]) -> str:
    """``holds`` when the predictor beats both FLOPs fits on the share within 10% and on Spearman,
    ``partly holds`` when on one of them, ``does not hold`` otherwise."""
    p = scores["predictor"]
    wins = [p[m] > max(scores["flops"][m], scores["flops_mac"][m]) for m in ("within_10_pct", "spearman")]
    return "holds" if all(wins) else "partly holds" if any(wins) else "does not hold"


def run(ctx: ReportContext) -> SectionOutput:
    from shufflenet.audit.latency.evaluate import evaluate, held_out_networks

    o = ctx.options
    if o.cuda:
        raise SectionUnavailable("the latency predictor models eager CPU kernels; run the report on the CPU")
    cal, how = _calibration(ctx)
    networks = held_out_networks(quick=o.quick)
    bar = ctx.progress(range(len(networks) * (4 if o.quick else 6)), "latency: held-out networks",
                       len(networks) * (4 if o.quick else 6))
    ticks = iter(bar)
    ev = evaluate(networks, cal, rounds=4 if o.quick else 6, min_run_time=0.1 if o.quick else 0.15,
                  progress=lambda _msg: next(ticks, None))
    for _ in ticks:  # close the bar
        pass
    ev.notes.append(f"calibration: {how}")
    s = ev.scores()
    p, a, b = s["predictor"], s["flops"], s["flops_mac"]
    rep = ev.repeatability()
    status = verdict(s)
    finding = (f"The paper (Sec. 1): FLOPs are an indirect metric of speed. Here, on {len(ev.results)} networks "
               f"held out from calibration, {ev.threads} thread(s): a predictor built only from timed kernels puts "
               f"{p['within_10_pct']:.0f}% of them within +/-10% (Spearman {p['spearman']:.3f}), FLOPs alone "
               f"{a['within_10_pct']:.0f}% ({a['spearman']:.3f}) and FLOPs + MAC {b['within_10_pct']:.0f}% "
               f"({b['spearman']:.3f}) even when fitted on the measured times; this machine reproduces its own "
               f"measurements within 10% for {rep['within_10_pct']:.0f}% of them.")
    claim = Claim("latency", "FLOPs are an indirect metric: speed depends on MAC, parallelism and the platform "
                  "(Sec. 1, Fig. 1); a model of the platform's kernels predicts it better",
                  "the argument (no predictor in the paper); nn-Meter: 89% within 10% vs FLOPs 22%",
                  f"predictor {p['within_10_pct']:.0f}% within 10% (rho {p['spearman']:.2f}); FLOPs "
                  f"{a['within_10_pct']:.0f}% ({a['spearman']:.2f}); FLOPs + MAC {b['within_10_pct']:.0f}% "
                  f"({b['spearman']:.2f})", status)
    return SectionOutput(
        finding=finding, tables=ev.tables(), figures=ev.figures(), claims=[claim],
        headlines=[f"predictor within 10%: {p['within_10_pct']:.0f}%", f"FLOPs fit within 10%: {a['within_10_pct']:.0f}%"],
        rankings={"latency: held-out networks, forwards per second": ranked(
            {r.name: 1.0 / r.measured_s for r in ev.results},
            {r.name: max(r.halves_s) / min(r.halves_s) - 1 for r in ev.results})},
        data=ev.to_dict(), notes=ev.conventions(),
        timings=[timing_entry(r.name, max(r.halves_s) / min(r.halves_s) - 1,
                              max(r.halves_s) / min(r.halves_s) - 1 > 0.10) for r in ev.results])


def _estimate(options: ReportOptions) -> float:
    from shufflenet.audit.latency import default_path

    if options.quick:  # measured: 6-8 s for the networks, 22-30 s for a quick calibration
        return 10.0 if default_path(options.resolved_threads()).exists() else 40.0
    return 400.0  # measured: a full calibration 224-261 s, 51 networks x 6 rounds about 2 minutes


SECTION = register(Section("latency", "Latency predictor: calibrated kernels against FLOPs", 58, run,
                           estimate_s=_estimate,
                           description="predicted vs measured latency of held-out networks; FLOPs fits beside"))
