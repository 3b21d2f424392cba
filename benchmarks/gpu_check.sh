#!/usr/bin/env bash
# One prepared GPU check (issue 11), at most ~8 minutes of wall time on one CUDA GPU:
#
#   1. the environment (GPU, torch, CUDA), 15 s;
#   2. the smoke-size tests on CUDA: the training tests (tests/test_train.py and
#      tests/test_training_step.py: train() picks CUDA when it is there) with the eager step,
#      then a CUDA check of three model kinds, eager against compiled (CUDA graphs), at most 200 s;
#   3. the epoch benchmark on CUDA (benchmarks/bench_epoch.py --device cuda --compile), 100 s;
#   4. the paper profile's models for EPOCHS epochs with WORKERS concurrent workers, printing
#      per-model seconds and the extrapolated 50-epoch paper-profile time (benchmarks/
#      paper_time.py), at most 160 s.
#
# Usage (from the repository root):  bash benchmarks/gpu_check.sh
# Environment: PY (python with torch+CUDA; default .venv/bin/python, else python3), TVAE_DATA
# (MNIST root; default shared/data, ../shared/data or data), OUT (where outputs go; default
# ./gpu-check-out), WORKERS (default: the CPU count), EPOCHS (default 3), DEVICE (default cuda;
# DEVICE=cpu is a dry run of the same stages on the CPU, for checking the script itself).
# Every stage has its own time limit, so the script ends in time even when one stage hangs;
# a stage's failure is reported and the next stage still runs. Exit status: 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-check-out}
mkdir -p "$OUT"
export OUT
LOG="$OUT/gpu_check.log"
: > "$LOG"
say() { echo "$*" | tee -a "$LOG"; }
run() {  # run LIMIT NAME CMD...: one stage, time-limited, output to the log and its own file
  local limit=$1 name=$2; shift 2
  say "=== $name (limit ${limit}s): $*"
  local t0=$SECONDS
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$OUT/$name.txt" >> "$LOG"
  local rc=${PIPESTATUS[0]}
  say "=== $name: exit $rc after $((SECONDS - t0)) s"
  [ "$rc" -eq 0 ] || FAILED="$FAILED $name"
}
FAILED=""

if [ -z "${PY:-}" ]; then
  PY=python3
  if [ -x .venv/bin/python ] && .venv/bin/python -c "import torch" 2>/dev/null; then PY=.venv/bin/python; fi
fi
if [ -z "${TVAE_DATA:-}" ]; then
  for d in shared/data ../shared/data data; do
    if [ -f "$d/MNIST/raw/train-images-idx3-ubyte" ]; then TVAE_DATA=$(cd "$d" && pwd); break; fi
  done
fi
export TVAE_DATA=${TVAE_DATA:-$PWD/data} PYTHONPATH=$PWD TVAE_PROGRESS=0 MPLBACKEND=Agg
export TVAE_CACHE="$OUT/cache" TORCHINDUCTOR_CACHE_DIR="$OUT/inductor-cache"
WORKERS=${WORKERS:-$(nproc)}
EPOCHS=${EPOCHS:-3}
DEVICE=${DEVICE:-cuda}
export CHECK_DEVICE=$DEVICE

# 1. environment -------------------------------------------------------------------------
say "gpu_check $(date -u +%FT%TZ)  python $PY  TVAE_DATA $TVAE_DATA  workers $WORKERS  epochs $EPOCHS  device $DEVICE"
run 15 env bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; uptime; \
  $PY -c 'import torch, sys; print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, \
  \"available\", torch.cuda.is_available()); sys.exit(0 if torch.cuda.is_available() or \"$DEVICE\" == \"cpu\" else 1)'"
if [[ " $FAILED " == *" env "* ]]; then
  say "no usable CUDA device: stopping"; exit 1
fi
if [ ! -f "$TVAE_DATA/MNIST/raw/train-images-idx3-ubyte" ]; then
  say "MNIST not found under $TVAE_DATA/MNIST/raw (this machine cannot download it): carry it and set TVAE_DATA"
  exit 1
fi

# 2. smoke-size tests on CUDA ----------------------------------------------------------------
# The engine's tests with the eager step (one compile per test shape would not fit the time);
# bitwise-equality tests may fail on CUDA where kernels use atomics (grid_sample's backward):
# the package promises bitwise resumption on the CPU only. Then every model kind, compiled.
run 100 tests env TVAE_COMPILE=0 TVAE_THREADS=1 "$PY" -m pytest -q -p no:cacheprovider \
  tests/test_training_step.py tests/test_train.py -k "not sigkill_during_checkpoint"
run 100 cuda-models "$PY" - <<'EOF'
import math, time, torch
from tvae import Config
from tvae.data import load_dataset
from tvae.train import train
import os
dev = os.environ.get("CHECK_DEVICE", "cuda")    # CHECK_DEVICE=cpu: a dry run of this stage
data = load_dataset("mnist", None, train_size=600, seed=0, device=dev)
for m in ("vae", "tps-tvae", "affine-dtvae"):
    cfg = Config(model=m, zdim=20, epochs=2, train_size=600)
    row = {}
    for compiled in (False, True):
        t0 = time.perf_counter()
        r = train(cfg, data, progress=False, device=dev, compile=compiled)
        if dev == "cuda":
            torch.cuda.synchronize()
        h = r.history[-1]
        assert all(math.isfinite(v) for k, v in h.items() if isinstance(v, float)), (m, h)
        row[compiled] = (time.perf_counter() - t0, h["test_elbo"], h["test_bce_mean"], r.step_modes)
    (te, ee, be, se), (tc, ec, bc, sc) = row[False], row[True]
    print(f"{m:<14} eager {te:6.1f} s {se}  compiled {tc:6.1f} s {sc}  test ELBO {ee:.3f} vs {ec:.3f}  "
          f"test BCE(mean) {be:.3f} vs {bc:.3f}", flush=True)
    assert sc == ["compiled", "compiled"], f"{m}: the compiled step did not run: {sc}"
    assert abs(ee - ec) < 0.02 * abs(ee), f"{m}: eager and compiled ELBOs differ: {ee} vs {ec}"
EOF

# 3. the epoch benchmark on CUDA -------------------------------------------------------------
run 100 bench "$PY" benchmarks/bench_epoch.py --device "$DEVICE" --compile --train-size 10000 --repeats 3 \
  --models vae tps-tvae affine-dtvae --no-logits

# 4. the paper profile's models, EPOCHS epochs, WORKERS workers ------------------------------
run 160 paper "$PY" benchmarks/paper_time.py --device "$DEVICE" --epochs "$EPOCHS" --workers "$WORKERS" \
  --cache "$OUT/paper-cache" --time-limit 140

say "gpu_check done in $SECONDS s; failed stages:${FAILED:- none}"
grep -h -E "^(vae|affine|tps)|target|compiled / default|extrapolated|models finished" \
  "$OUT/cuda-models.txt" "$OUT/bench.txt" "$OUT/paper.txt" 2>/dev/null | tee -a "$LOG"
rm -rf "$OUT/cache" "$OUT/paper-cache" "$OUT/inductor-cache"   # keep $OUT small for the transfer
[ -z "$FAILED" ]
