#!/usr/bin/env bash
# The GPU checks of this project as one prepared command, for a machine with CUDA and PyTorch but no
# package index (the device machine of this workplace): the CUDA tests, then the Fashion-MNIST benchmark
# (accuracy at 80 epochs for V2 1.0x and 0.5x, Table 8 at 10 epochs, training throughput vs torchvision).
#
#   bash benchmarks/gpu_session.sh [OUT_DIR]
#
# Fashion-MNIST is read from $FASHION_MNIST_DIR (default: .data/fashion-mnist in the checkout, else
# /usr/share/datasets/fashion-mnist). Results land in OUT_DIR (default: $OUT, else benchmarks/results):
# env.txt, pytest_cuda.log, train_fashion_mnist_cuda.{json,csv}, gpu_benchmark.log.
# The three training parts run as three processes side by side: these models are far too small to fill
# one large GPU, so running them together finishes sooner than one after the other.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-benchmarks/results}}
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
data=${FASHION_MNIST_DIR:-}
if [ -z "$data" ]; then
  if [ -d .data/fashion-mnist ]; then data=.data/fashion-mnist; else data=/usr/share/datasets/fashion-mnist; fi
fi
runs=${RUNS_DIR:-/tmp/shufflenet-gpu-runs}
budget=${GPU_BENCH_TIMEOUT:-400}

{ date -u; nvidia-smi -L 2>&1; "$py" -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision',
torchvision.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name(0))"; } > "$out/env.txt" 2>&1
cat "$out/env.txt"

mkdir -p "$runs"
# BENCH_ARGS appends flags (later ones win), e.g. a CPU smoke run of this script:
#   DEVICE=cpu AMP=none BENCH_ARGS="--epochs 1 --table8-epochs 1 --limit-train 512 --limit-test 256
#     --tp-rounds 1 --tp-steps 1 --tp-batch 4 --speed-rounds 1" bash benchmarks/gpu_session.sh /tmp/out
# shellcheck disable=SC2206
common=(benchmarks/train_fashion_mnist.py --device "${DEVICE:-cuda}" --amp "${AMP:-bf16}" --channels-last
        --workers 5 --quiet --data-dir "$data" --runs-dir "$runs" --epochs 80 --table8-epochs 10 ${BENCH_ARGS:-})
pids=()
for part in "accuracy --models shufflenet_v2_x1_0" "accuracy --models shufflenet_v2_x0_5" "table8"; do
  tag=${part// /_}; tag=${tag//--/}
  # shellcheck disable=SC2086
  timeout "$budget" "$py" "${common[@]}" --parts $part --out "$runs/$tag.json" > "$runs/$tag.log" 2>&1 &
  pids+=($!)
done
# The tests check correctness only, so they run beside the training.
timeout 150 "$py" -m pytest -q -p no:cacheprovider tests/test_train_cuda.py tests/test_measure.py \
  tests/test_cli_bench.py tests/test_guidelines.py -k "cuda or CUDA" > "$out/pytest_cuda.log" 2>&1
echo "CUDA tests: rc=$? ($(tail -n 1 "$out/pytest_cuda.log"))"
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
echo "training parts: rc=$rc (124: stopped by the ${budget}s budget; run again to resume)"
# Compose: nothing is trained again (finished runs are reused); the throughput part runs now, alone.
timeout 90 "$py" "${common[@]}" --parts accuracy,table8 --reuse-only --speed-rounds 11 \
  --out "$out/train_fashion_mnist_cuda.json" > "$out/gpu_benchmark.log" 2>&1
timeout 90 "$py" "${common[@]}" --parts throughput --out "$out/train_fashion_mnist_cuda.json" \
  >> "$out/gpu_benchmark.log" 2>&1
cat "$runs"/*.log >> "$out/gpu_benchmark.log" 2>/dev/null
tail -n 40 "$out/gpu_benchmark.log"
