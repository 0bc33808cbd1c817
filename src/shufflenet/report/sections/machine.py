"""The machine: what the report ran on (CPU/GPU model, cores, threads, library versions), its measured
ceilings (fp32 GFLOP/s, copy GB/s) and how noisy it was during the run — beside the paper's two platforms
(Sec. 2: a GTX 1080Ti with cuDNN 7.0 at batch 8; a Snapdragon 810 on one thread at batch 1).

It runs after the measuring sections (a summary section) so that it can summarise their measurements'
spreads; the ceilings come from the cache of ``shufflenet bench --machine`` when they were measured on this
machine, CPU, thread count and torch version, else they are measured now and cached.
"""

from __future__ import annotations

import os
from typing import Any

from shufflenet.environment import capture_environment, library_version
from shufflenet.measure.timing import NOISY_THRESHOLD
from shufflenet.report.context import ReportContext
from shufflenet.report.registry import register
from shufflenet.report.section import Section, SectionOutput
from shufflenet.result import Table

PAPER_PLATFORMS = ("a GTX 1080Ti GPU (cuDNN 7.0, benchmark mode, batch 8) and a Snapdragon 810 ARM CPU "
                   "(1 thread, batch 1)")
LIBRARIES = ("torch", "torchvision", "numpy", "onnxruntime", "openvino", "timm", "matplotlib")


def noise_rows(ctx: ReportContext) -> list[dict[str, Any]]:
    """Per section that timed something: how many measurements, their median and worst relative spread
    (IQR / median), and how many were noisy (spread above the noisy threshold)."""
    rows = []
    for key, out in ctx.outputs.items():
        spreads = [t["spread"] for t in out.timings if isinstance(t.get("spread"), (int, float))]
        if not out.timings:
            continue
        spreads.sort()
        rows.append({"section": key, "measurements": len(out.timings),
                     "median spread %": round(100 * spreads[len(spreads) // 2], 1) if spreads else None,
                     "max spread %": round(100 * spreads[-1], 1) if spreads else None,
                     "noisy": sum(1 for t in out.timings if t.get("noisy"))})
    return rows


def noise_summary(rows: list[dict[str, Any]]) -> tuple[int, int, float | None]:
    """(measurements, noisy ones, median of the sections' median spreads in %)."""
    n = sum(r["measurements"] for r in rows)
    noisy = sum(r["noisy"] for r in rows)
    medians = sorted(r["median spread %"] for r in rows if r["median spread %"] is not None)
    return n, noisy, medians[len(medians) // 2] if medians else None


def run(ctx: ReportContext) -> SectionOutput:
    o = ctx.options
    threads = o.resolved_threads()
    env = capture_environment(device=o.device, threads=threads)
    cached = ctx.machine_from_cache()
    ceilings = ctx.machine()
    load_start = ctx.shared("load_avg_start", lambda: None)
    load_end = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    where = env.get("gpu_name") or env.get("cpu_model")
    rows = [
        {"item": "device", "value": env["device"]},
        {"item": "GPU" if env.get("gpu_name") else "CPU", "value": where},
        {"item": "CPU cores (logical / physical / usable)",
         "value": f"{env['cpu_logical_cores']} / {env['cpu_physical_cores']} / {env['cpu_usable']}"},
        {"item": "threads used", "value": threads},
        {"item": "OS / Python", "value": f"{env['os']} / {env['python']}"},
        *({"item": lib, "value": v} for lib in LIBRARIES if (v := library_version(lib)) is not None),
        {"item": "oneDNN (mkldnn)", "value": env.get("mkldnn")},
        *({"item": k, "value": env[k]} for k in ("cuda", "cudnn") if env.get(k) is not None),
        {"item": "load average (1 min) at start / end", "value": f"{load_start} / {load_end}"},
        {"item": "ceilings", "value": "from the cache of `shufflenet bench --machine`" if cached
         else "measured during this run (now cached)"},
    ]
    noise = noise_rows(ctx)
    n, noisy, spread = noise_summary(noise)
    noise_text = (f"{noisy} of {n} measurements were noisy (spread > {NOISY_THRESHOLD:.0%} of the median; median "
                  f"spread {spread:.1f}%)" if n else "no section timed anything")
    finding = (f"The paper measured on {PAPER_PLATFORMS} (Sec. 2). Here: {where}, {threads} thread(s) of "
               f"{env['cpu_usable']} usable core(s), fp32 ceiling {ceilings.matmul_gflops:.0f} GFLOP/s "
               f"({ceilings.matmul_gmadds:.0f} G multiply-adds/s), copy {ceilings.copy_gb_per_s:.0f} GB/s; "
               f"{noise_text}.")
    tables = [Table.from_rows("This machine", rows, key="machine"), *ceilings.tables()]
    if noise:
        tables.append(Table.from_rows(
            "How noisy the machine was during this run", noise, key="noise",
            notes=["spread = interquartile range / median of one measurement's timed blocks; a noisy "
                   "measurement widens the band a verdict needs, so it turns 'holds' into 'inconclusive' "
                   "rather than into a wrong verdict"]))
    return SectionOutput(finding=finding, tables=tables, notes=[],
                         data={"environment": env, "ceilings": ceilings.to_dict(), "noise": noise,
                               "ceilings_cached": cached, "load_avg_start": load_start, "load_avg_end": load_end})


SECTION = register(Section("machine", "The machine", 10, run, summary=True,
                           estimate_s=lambda options: 3.0,
                           description="CPU/GPU, threads, versions, measured ceilings, noise during the run"))
