#!/usr/bin/env bash
# scripts/gpu-check.sh: everything that needs a GPU, in one go, within about
# 10 minutes on one card, on a machine with CUDA, Go and a PyTorch 2.x
# install (no network needed):
#
#   1. finds PyTorch's libtorch (LIBTORCH: the `torch` folder of the Python
#      package), its C++ ABI and the CUDA runtime's headers (for CUDA graphs);
#   2. builds bin/jmedseg-cuda against it (the Makefile's LIBTORCH handling,
#      without `make setup`, which would install Debian packages);
#   3. runs the CUDA tests (torch: autocast, _foreach_, CUDA graphs; models:
#      unet and deeplab on CUDA against the CPU, fused) and the torch/nn,
#      optim and models tests against this libtorch;
#   4. times Go against PyTorch eager on the GPU (bench/cmd/benchcmp -plan gpu
#      -tricks -device cuda: plain, fused, channels-last, bf16, CUDA graphs,
#      bf16 with graphs, fp16; each against PyTorch with the same trick)
#   and writes bench/results/cuda.md: the card, each step's outcome and time,
#   and the table. Every step has a time budget (a share of GPU_CHECK_BUDGET
#   seconds, default 570); cuda.md is rewritten after each step, so a step
#   that fails or runs out of time leaves what the earlier ones measured.
#
# Variables: PYTHON (python3), GPU_CHECK_BUDGET (570), GPU_CHECK_OUT
# (bench/results), CUDA_INCLUDE (found from the nvidia-cuda-runtime wheel or
# /usr/local/cuda when unset), GPU_CHECK_PLAN (gpu), GPU_CHECK_REPS (1),
# GPU_CHECK_ONLY (benchcmp -only), GPU_CHECK_DEVICE (cuda; cpu runs the
# script's steps without a GPU, to check the script itself:
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_PLAN=quick GPU_CHECK_ONLY=unet GPU_CHECK_OUT=/tmp/g scripts/gpu-check.sh).
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
BUDGET=${GPU_CHECK_BUDGET:-570}
OUT=${GPU_CHECK_OUT:-bench/results}
PLAN=${GPU_CHECK_PLAN:-gpu}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
ONLY=${GPU_CHECK_ONLY:-}
REPS=${GPU_CHECK_REPS:-1}
RAW=$OUT/raw/cuda
MD=$OUT/cuda.md
LOG=$RAW/gpu-check.log
START=$SECONDS
mkdir -p "$RAW"
: >"$LOG"

STEPS=()      # one markdown line per step
CARD="unknown GPU"
HEADER=""

left() { echo $((BUDGET - (SECONDS - START))); }
log() { echo "gpu-check: $*" | tee -a "$LOG" >&2; }

# write_md: cuda.md from what is known so far (atomically: a temp file
# renamed over the old one).
write_md() {
  local tmp
  tmp=$(mktemp "$OUT/.cuda.md.XXXXXX")
  {
    echo "# jmedseg on CUDA: $CARD"
    echo
    echo "Written by scripts/gpu-check.sh on $(date -u '+%Y-%m-%d %H:%M UTC') ($(hostname)). $HEADER"
    echo
    echo "## Steps"
    echo
    printf '%s\n' "${STEPS[@]}"
    if [ -f "$RAW/bench-cuda.md" ]; then
      echo
      echo "## Go against PyTorch on the GPU"
      echo
      cat "$RAW/bench-cuda.md"
    fi
    echo
    echo "Log: $LOG (raw benchmark JSON beside it)."
  } >"$tmp"
  mv -f "$tmp" "$MD"
}

# step NAME SECONDS CMD...: runs CMD with at most SECONDS (and no more than
# the budget left), records the outcome in cuda.md; returns CMD's status.
step() {
  local name=$1 limit=$2 l t0 rc
  shift 2
  l=$(($(left) - 5))
  if [ "$limit" -gt "$l" ]; then limit=$l; fi
  if [ "$limit" -lt 15 ]; then
    STEPS+=("- $name: **skipped**, the time budget is spent")
    write_md
    return 1
  fi
  log "$name (at most ${limit}s): $*"
  t0=$SECONDS
  set +e
  timeout --kill-after=10 "$limit" "$@" >>"$LOG" 2>&1
  rc=$?
  set -e
  if [ $rc -eq 0 ]; then
    STEPS+=("- $name: ok ($((SECONDS - t0)) s)")
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    STEPS+=("- $name: **timed out** after $((SECONDS - t0)) s (budget ${limit} s)")
  else
    STEPS+=("- $name: **failed** (exit $rc, $((SECONDS - t0)) s; see the log)")
  fi
  write_md
  return $rc
}

# ---- 1. the libtorch, the card ----
command -v go >/dev/null || PATH="/usr/local/go/bin:$PATH"
if ! command -v go >/dev/null; then
  STEPS+=("- build: **not run**, no Go toolchain on this machine (install Go 1.24+)")
  write_md
  exit 1
fi
if ! LIBTORCH=$("$PYTHON" -c 'import torch,os;print(os.path.dirname(torch.__file__))' 2>>"$LOG"); then
  STEPS+=("- find libtorch: **failed**, $PYTHON cannot import torch")
  write_md
  exit 1
fi
INFO=$("$PYTHON" - <<'EOF' 2>>"$LOG" || true
import torch
ok = torch.cuda.is_available()
name = torch.cuda.get_device_name(0) if ok else "no CUDA device visible to PyTorch"
mem = f", {torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB" if ok else ""
print(f"{name}{mem}|PyTorch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}|{int(torch._C._GLIBCXX_USE_CXX11_ABI)}|{int(ok)}")
EOF
)
IFS='|' read -r CARD VERSIONS ABI CUDA_OK <<<"$INFO"
CARD=${CARD:-unknown GPU}
if command -v nvidia-smi >/dev/null; then
  SMI=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1 || true)
  [ -n "$SMI" ] && CARD="$CARD (nvidia-smi: $SMI)"
fi
HEADER="$VERSIONS; libtorch $LIBTORCH; $(nproc) CPU cores."
if [ -z "${CUDA_INCLUDE:-}" ]; then
  CUDA_INCLUDE=$("$PYTHON" -c 'import nvidia.cuda_runtime as m,os;print(os.path.join(list(m.__path__)[0],"include"))' 2>/dev/null || true)
  if [ -z "$CUDA_INCLUDE" ] || [ ! -f "$CUDA_INCLUDE/cuda_runtime_api.h" ]; then
    CUDA_INCLUDE=""
    for d in /usr/local/cuda/include /usr/include; do
      if [ -f "$d/cuda_runtime_api.h" ]; then CUDA_INCLUDE=$d; break; fi
    done
  fi
fi
write_md
if [ "${CUDA_OK:-0}" != 1 ] && [ "$DEVICE" != cpu ]; then
  STEPS+=("- CUDA: **PyTorch sees no CUDA device**; nothing to measure")
  write_md
  exit 1
fi

# ---- 2. build (as the Makefile does for LIBTORCH) ----
ABI_FLAG=""
[ -n "${ABI:-}" ] && ABI_FLAG="-D_GLIBCXX_USE_CXX11_ABI=$ABI"
CUDA_LIBS=""
CUDA_DEFS=""
if [ -f "$LIBTORCH/lib/libtorch_cuda.so" ]; then
  CUDA_LIBS="-Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed"
  CUDA_DEFS="-DJMEDSEG_CUDA${CUDA_INCLUDE:+ -I$CUDA_INCLUDE}"
fi
export CGO_CXXFLAGS="-I$LIBTORCH/include -I$LIBTORCH/include/torch/csrc/api/include $ABI_FLAG $CUDA_DEFS ${CGO_CXXFLAGS:-}"
export CGO_LDFLAGS="-L$LIBTORCH/lib -Wl,-rpath,$LIBTORCH/lib $CUDA_LIBS ${CGO_LDFLAGS:-}"
# Without network the modules must be there: a vendor/ folder (go mod
# vendor, before copying the tree) or a filled module cache.
if [ -d vendor ] && [ -z "${GOFLAGS:-}" ]; then export GOFLAGS=-mod=vendor; fi
# csrc/wino.cc needs Debian 12's oneDNN 2 (headers and library); PyTorch's
# wheels carry oneDNN inside, without either.
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-tags=nowinograd"
log "CGO_CXXFLAGS=$CGO_CXXFLAGS"
log "CGO_LDFLAGS=$CGO_LDFLAGS"
if [ -z "$CUDA_INCLUDE" ]; then
  STEPS+=("- note: the CUDA runtime's headers were not found (set CUDA_INCLUDE): built without CUDA graphs")
fi
# A fresh build cache: the shim's included C++ files are not in Go's cache key.
export GOCACHE=${GPU_CHECK_GOCACHE:-$(mktemp -d)}
# The benchmark needs bench.Run only: bin/gobench (models, torch, optim)
# builds first; the full CLI after it (torch/dist needs gloo's headers,
# which some PyTorch wheels lack).
if ! step "build bin/gobench (bench.Run alone) against $LIBTORCH" 240 go build -o bin/gobench ./bench/cmd/gobench; then
  exit 1
fi
BENCH_BIN=bin/gobench
if step "build bin/jmedseg-cuda (the whole CLI)" 120 go build -o bin/jmedseg-cuda ./cmd/jmedseg; then
  BENCH_BIN=bin/jmedseg-cuda
fi

# ---- 3. tests ----
# The CUDA tests first (seconds), then the torch, optim and models tests
# against this libtorch (on the CPU side of it: the tests choose no device).
step "CUDA tests (torch: autocast, foreach, CUDA graphs; models: unet, deeplab, fused)" 120 \
  go test -count=1 -v -run 'CUDA' ./torch/ ./models/ || true
step "torch, nn, optim and models tests against this libtorch" 150 \
  go test -count=1 ./torch/ ./torch/nn/ ./torch/optim/ ./models/ || true

# ---- 4. the benchmark ----
BENCH_LEFT=$(($(left) - 15))
step "benchmark (benchcmp -plan $PLAN -tricks -device $DEVICE, $BENCH_BIN)" "$BENCH_LEFT" \
  go run ./bench/cmd/benchcmp -bin "$BENCH_BIN" -python "$PYTHON" -device "$DEVICE" -plan "$PLAN" -reps "$REPS" \
  -only "$ONLY" -tricks -out "$RAW" -name bench-cuda || true
write_md
log "wrote $MD in $((SECONDS - START)) s"
