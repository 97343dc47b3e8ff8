#!/usr/bin/env bash
# GPU check of the paper study's code paths (about 10 minutes on one GPU). On a machine with CUDA:
#  1. the tiny paper study (experiments/paper-tiny.toml: three datasets, four architectures,
#     generated data files) through traces and attacks on the GPU — the whole pipeline
#     (etio reproduce) when R is installed;
#  2. one configuration (MNIST MLP) trained on the CPU and on the GPU from the same seeds:
#     the trace columns must agree within TOL (below);
#  3. `etio bench train --device cuda`: batched vs one-at-a-time models/s per architecture
#     (targets: ≥ 20x for the MLP, ≥ 5x for ResNet34).
# Figures go to stdout and to $OUT (default: a temporary directory). Exit status 0 = all checks passed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
OUT=${OUT:-$(mktemp -d)}
WORK="$OUT/gpu-check"
# Trace columns of the CPU/GPU comparison and their tolerance: the MLP has no BatchNorm, and
# a few dozen SGD steps from the same initialisation keep float32 rounding differences small.
TOL=${TOL:-1e-3}
mkdir -p "$WORK"
etio() { PYTHONPATH="$PWD" "$PYTHON" -m etio "$@"; }

"$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: nothing to check')"
"$PYTHON" -c "import torch; p = torch.cuda.get_device_properties(0); print(f'device: {p.name}, {p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}')"

echo "== plan of the tiny study and of the paper's study on this GPU"
etio plan --config experiments/paper-tiny.toml --device cuda --steps 2 | tee "$WORK/plan-tiny.txt"
etio plan --config experiments/paper.toml --device cuda --steps 2 | tee "$WORK/plan-paper.txt"

echo "== 1. the tiny study on the GPU"
start=$(date +%s)
if command -v Rscript >/dev/null; then
  etio reproduce --config experiments/paper-tiny.toml --out "$WORK/tiny" --data-dir "$WORK/data" --device cuda
  TRACES="$WORK/tiny/traces.csv"
else
  echo "(R is not installed: traces and attacks only)"
  etio traces --config experiments/paper-tiny.toml --out "$WORK/tiny-store" --data-dir "$WORK/data" --device cuda --quiet
  etio attack --store "$WORK/tiny-store" --device cuda
  TRACES="$WORK/tiny-store/traces.csv"
fi
echo "tiny study on the GPU: $(( $(date +%s) - start )) s"

echo "== 2. CPU vs GPU on one configuration"
cat > "$WORK/one.toml" <<'TOML'
name = "gpu-check-one"
seed = 0
repeats = 2
synthetic_data = true
[training]
batch_size = 10
eval_batch_size = 100
lr = 0.1
lr_step_size = 4
[grid]
train_size = [30]
loss = ["ce"]
weight_decay = [0.0005]
epochs = [6]
scheduler = [true]
[datasets.mnist]
arch = ["mlp_1hidden"]
width = [16]
pool_size = 120
test_size = 60
TOML
etio traces --config "$WORK/one.toml" --out "$WORK/one-cpu" --data-dir "$WORK/data" --device cpu --quiet
etio traces --config "$WORK/one.toml" --out "$WORK/one-gpu" --data-dir "$WORK/data" --device cuda --quiet
"$PYTHON" - "$WORK/one-cpu/traces.csv" "$WORK/one-gpu/traces.csv" "$TOL" <<'PY'
import sys
import pandas as pd
cpu, gpu, tol = pd.read_csv(sys.argv[1]), pd.read_csv(sys.argv[2]), float(sys.argv[3])
cols = ["TrainAcc", "TestAcc", "TrainLoss", "TestLoss", "TrainVar", "TestVar", "TrainBias2", "TestBias2",
        "CentroidDistance(origin)"]
diff = (cpu[cols] - gpu[cols]).abs().max()
print(diff.to_string())
worst = float(diff.max())
print(f"largest CPU/GPU difference {worst:.2e} (tolerance {tol:g}):", "OK" if worst <= tol else "FAILED")
sys.exit(0 if worst <= tol else 1)
PY

echo "== 3. batched vs one-at-a-time training on the GPU"
etio bench train --device cuda | tee "$WORK/bench-train-cuda.txt"
echo "rows in the tiny study's trace table: $(($(wc -l < "$TRACES") - 1))"
echo "gpu-check: all checks passed; figures in $WORK"
