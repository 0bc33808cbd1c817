"""Deployment on this machine: eager vs optimised PyTorch vs each runtime, fp32 vs int8 / bf16.

The paper's point is that the platform decides speed (Sec. 1-2), and the runtime is part of the platform.
This section times ShuffleNet V2 1.0x (quick; 0.5x, 1.0x and 2.0x in full mode) at batch 1 through
torchvision's eager model and its export in each installed peer runtime (ONNX Runtime, OpenVINO, ncnn),
this package's model eager and optimised (BN folded, shuffle folded into the weights, channels_last) and
the optimised network in each runtime, in fp32, int8 and bf16, side by side in interleaved rounds
(:mod:`shufflenet.deploy.speed`). It then measures the Fashion-MNIST test accuracy of a shipped checkpoint
in fp32 and after int8 quantization (calibrated on the training split) and bf16, on the whole test split.
"""

from __future__ import annotations

from shufflenet.report.context import ReportContext, ReportOptions
from shufflenet.report.registry import register
from shufflenet.report.section import Claim, Section, SectionOutput, SectionUnavailable, ranked, timing_entry

SHIPPED = "shipped:fashion_mnist-shufflenet_v2_x1_0"
SHIPPED_FALLBACK = "shipped:fashion_mnist-shufflenet_v2_x0_5"


def _verdict(met: list[bool]) -> str:
    if not met:
        return "inconclusive"
    return "holds" if all(met) else "partly holds" if any(met) else "does not hold"


def _checkpoint() -> str | None:
    from shufflenet.models.shipped import shipped_paths

    names = {f"shipped:{p.stem}" for p in shipped_paths()}
    return SHIPPED if SHIPPED in names else SHIPPED_FALLBACK if SHIPPED_FALLBACK in names else None


def run(ctx: ReportContext) -> SectionOutput:
    from shufflenet.deploy.speed import accuracy_by_path, available_paths, run_inference_speed

    o = ctx.options
    if o.cuda:
        raise SectionUnavailable("the deployment comparison times CPU runtimes; run the report on the CPU")
    chosen, missing = available_paths()
    if not any(p.runtime != "torch" for p in chosen):
        raise SectionUnavailable(f"no inference runtime is installed ({', '.join(missing)}): pip install "
                                 "'shufflenet[deploy]'")
    widths = ("1.0",) if o.quick else ("0.5", "1.0", "2.0")
    threads = o.resolved_threads()
    rounds = 3 if o.quick else 7
    speed = run_inference_speed(widths, (1,), (threads,), rounds=rounds, block_s=0.1 if o.quick else 0.2,
                                chosen=chosen, progress=ctx.progress)
    notes = [f"runtimes not installed, so left out: {', '.join(missing)}"] if missing else []
    checkpoint = _checkpoint()
    if checkpoint is not None and any(p.precision == "int8" for p in chosen):
        # All 10 000 test images in both modes: on 2000, one image is 0.05 pt and the drop's noise is about
        # the 0.3 pt the claim allows (0.35 pt on 2000 images against 0.10 pt on all, same model).
        speed.accuracy = accuracy_by_path([checkpoint])
    elif checkpoint is None:
        notes.append("no shipped Fashion-MNIST checkpoint: accuracy after int8 / bf16 not measured")
    verdicts = speed.verdicts()
    v = next(r for r in verdicts if r["width"] == "1.0")
    headlines = []
    if "ours_vs_peer" in v:
        headlines.append(f"ShuffleNet V2 1.0x, batch 1, {threads} thread(s): our best fp32 path ({v['ours_best']}) "
                         f"takes {v['ours_vs_peer']:.2f}x the time of the best peer ({v['best_peer']}), "
                         f"{v['ours_best_ms']:.2f} vs {v['best_peer_ms']:.2f} ms")
    if "eager_vs_tv" in v:
        headlines.append(f"optimised eager PyTorch takes {v['eager_vs_tv']:.2f}x the time of torchvision eager")
    if "low_speedup" in v:
        headlines.append(f"{v['low_best']} runs {v['low_speedup']:.2f}x faster than the best fp32 peer")
    claims = []
    fold = [r for r in speed.table_rows() if r["batch"] == 1]
    same_runtime = []
    for r in fold:
        if r["path"].startswith("ours optimised -> ") and r["precision"] == "fp32":
            runtime = r["path"].split("-> ")[1]
            peer = next((q for q in fold if q["path"] == f"torchvision -> {runtime}" and q["width"] == r["width"]), None)
            if peer:
                same_runtime.append((r["width"], runtime, r["latency_ms"] / peer["latency_ms"]))
    if same_runtime:
        faster = [x for x in same_runtime if x[2] < 1.0]
        claims.append(Claim(
            "deploy-g4", "split, concat and shuffle are data movement to keep small (Sec. 2, G4; Sec. 3)",
            "merges them into one element-wise step (Sec. 3)",
            f"with the shuffle folded into the weights, {len(faster)} of {len(same_runtime)} runtime/width pairs "
            f"run faster than torchvision's graph in the same runtime (ratios "
            f"{', '.join(f'{w}x {rt} {q:.2f}' for w, rt, q in same_runtime)})",
            _verdict([x[2] < 1.0 for x in same_runtime])))
    acc_ok = [r["within_0_3"] for r in speed.accuracy if r["precision"] == "int8"]
    if "low_speedup" in v:
        met = [v["meets_2x"]] + ([all(acc_ok)] if acc_ok else [])
        acc_text = (f"; int8 Fashion-MNIST top-1 drops by at most "
                    f"{max(r['drop'] for r in speed.accuracy if r['precision'] == 'int8'):.2f} pt"
                    if acc_ok else "")
        claims.append(Claim(
            "deploy-int8", "int8 (or bf16) inference is at least 2x faster than the best fp32 peer and keeps "
            "accuracy within 0.3 pt", "not in the paper; torchvision's int8 ShuffleNet V2 1.0x loses 1.0 pt of "
            "ImageNet top-1", f"{v['low_best']}: {v['low_speedup']:.2f}x the best fp32 peer{acc_text}",
            _verdict(met)))
    cell = [t for t in speed.timings if t.width == "1.0"]
    finding = ("The paper (Sec. 1-2): speed depends on the platform, hardware and library, not on FLOPs alone; "
               "the runtime is part of it. Here the same ShuffleNet V2 1.0x runs "
               + ", ".join(f"{t.path.label} {t.median_s * 1e3:.2f} ms" for t in
                           sorted(cell, key=lambda t: t.median_s)[:4])
               + f" ... and torchvision eager {next(t.median_s for t in cell if t.path.label == 'torchvision eager') * 1e3:.2f} ms "
                 f"(batch 1, {threads} thread(s)).")
    return SectionOutput(
        finding=finding, tables=speed.tables(), claims=claims, headlines=headlines,
        rankings={"deployment paths, ShuffleNet V2 1.0x batch 1 (forwards per second)": ranked(
            {t.path.label: 1.0 / t.median_s for t in cell},
            {t.path.label: t.iqr_s / t.median_s for t in cell})},
        data=speed.to_dict(), notes=notes + speed.conventions(),
        timings=[timing_entry(f"{t.width}x {t.path.label}", t.iqr_s / t.median_s, t.iqr_s / t.median_s > 0.10)
                 for t in speed.timings])


def _estimate(options: ReportOptions) -> float:
    return 90.0 if options.quick else 600.0


SECTION = register(Section("deploy", "Deployment: eager, optimised and each runtime; fp32, int8, bf16", 62, run,
                           estimate_s=_estimate,
                           description="every way of running ShuffleNet V2 here, side by side, and int8 accuracy"))
