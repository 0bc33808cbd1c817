"""Deployment speed: every way of running ShuffleNet V2 on this CPU, side by side, against the targets.

    python benchmarks/inference.py                       # 0.5x/1.0x/2.0x, batch 1 and 32, 1 and 2 threads
    python benchmarks/inference.py --widths 1.0 --batches 1 --threads 1 --rounds 3   # a quick look

Prints the targets table and writes benchmarks/results/inference.{json,md} through the one renderer.
Targets (fractions of latency, lower is faster): our best fp32 path <= 0.7x the best peer runtime on
torchvision's export; optimised eager PyTorch <= 0.5x torchvision eager; int8 / bf16 <= 0.5x the best fp32
peer, with the Fashion-MNIST test accuracy of the shipped checkpoints within 0.3 points of fp32
(``--accuracy``). See ``shufflenet.deploy.speed`` for the protocol.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from shufflenet.deploy.speed import WIDTHS, InferenceSpeed, accuracy_by_path, paths, run_inference_speed
from shufflenet.render import render, write_result

RESULTS = Path(__file__).resolve().parent / "results"
SHIPPED = ("shipped:fashion_mnist-shufflenet_v2_x0_5", "shipped:fashion_mnist-shufflenet_v2_x1_0")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--widths", nargs="+", default=list(WIDTHS))
    p.add_argument("--batches", nargs="+", type=int, default=[1, 32])
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--block-s", type=float, default=0.2, help="seconds per timed block")
    p.add_argument("--no-ncnn", action="store_true")
    p.add_argument("--compile", action="store_true", help="also time the optimised model through torch.compile "
                                                          "(about a minute of compiling per cell here)")
    p.add_argument("--accuracy", action="store_true", help="also the int8/bf16 accuracy of the shipped checkpoints")
    p.add_argument("--checkpoints", nargs="+", default=list(SHIPPED))
    p.add_argument("--out", type=Path, default=RESULTS / "inference.json")
    p.add_argument("--accuracy-only", type=Path, metavar="RESULT_JSON",
                   help="keep the timings of an earlier result and measure only the accuracy again (written to --out)")
    args = p.parse_args()
    if args.accuracy_only:
        if args.out.resolve() == args.accuracy_only.resolve():
            p.error("--out must differ from --accuracy-only's result (it is read, never written over)")
        result = InferenceSpeed.from_dict(json.loads(args.accuracy_only.read_text()))
        result.accuracy = accuracy_by_path(args.checkpoints)
        result.notes.append("accuracy re-measured: python benchmarks/inference.py " + " ".join(sys.argv[1:]))
        print(render(result, "table"))
        write_result(result, args.out)
        write_result(result, args.out.with_suffix(".md"))
        return 0
    result = run_inference_speed(args.widths, args.batches, args.threads, rounds=args.rounds,
                                 block_s=args.block_s, chosen=paths(include_ncnn=not args.no_ncnn, compiled=args.compile),
                                 progress=lambda it, desc, total: tqdm(it, desc, total))
    if args.accuracy:
        result.accuracy = accuracy_by_path(args.checkpoints)
    result.notes.append("command: python benchmarks/inference.py " + " ".join(sys.argv[1:]))
    print(render(result, "table"))
    write_result(result, args.out)
    write_result(result, args.out.with_suffix(".md"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
