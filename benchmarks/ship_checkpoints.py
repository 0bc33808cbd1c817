"""Copy finished Fashion-MNIST training runs into the package as shipped checkpoints.

    python benchmarks/ship_checkpoints.py runs/fashion_mnist/shufflenet_v2_x0_5_e30_b256_s0

writes ``src/shufflenet/weights/fashion_mnist-<model>.safetensors`` (weights + the run's metadata, history
and test accuracy; see ``shufflenet.train.ship``). An existing shipped file is never replaced: delete it
first to ship a better run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from shufflenet.models.weights import read_safetensors_metadata
from shufflenet.train.ship import ship_run

WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "shufflenet" / "weights"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="finished run directories of `shufflenet train`")
    args = p.parse_args()
    for run in args.runs:
        import json

        model = json.loads((run / "summary.json").read_text())["model_name"]
        out = ship_run(run, WEIGHTS / f"fashion_mnist-{model}.safetensors")
        meta = read_safetensors_metadata(out)
        print(f"{out}: {meta['model']}, {meta['training']['epochs']} epochs, test top-1 {meta['test_top1']}%, "
              f"{out.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
