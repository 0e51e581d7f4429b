#!/usr/bin/env bash
# Data-parallel scaling on this machine: `jmedseg train` on 1 and on 2
# local processes (--nproc 2), one libtorch thread each, the same per-process
# batch, and the training images per second of the whole job (the epoch
# record's images_per_second: every rank's images, from rank 0's clock).
# Efficiency = images/s with 2 processes / (2 × images/s with 1).
#
# Variables: BIN (default bin/jmedseg), DATA (default datasets/brain, made
# with `jmedseg data prepare` if missing), MODEL (unet), WIDTH (8), SIZE (64),
# BATCH (4), STEPS (batches per epoch, 12), NICE (10).
set -euo pipefail
BIN=${BIN:-bin/jmedseg}
DATA=${DATA:-datasets/brain}
MODEL=${MODEL:-unet}
WIDTH=${WIDTH:-8}
SIZE=${SIZE:-64}
BATCH=${BATCH:-4}
STEPS=${STEPS:-12}
NICE=${NICE:-10}
[ -x "$BIN" ] || { echo "dist.sh: no $BIN (make build)" >&2; exit 1; }
[ -f "$DATA/dataset.json" ] || nice -n "$NICE" "$BIN" data prepare --out "$DATA" >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ips() { # nproc -> images/s of the epoch
  local n=$1 extra=()
  [ "$n" -gt 1 ] && extra=(--nproc "$n")
  nice -n "$NICE" "$BIN" train --model "$MODEL" --data "$DATA" --out "$tmp/run$n" --width "$WIDTH" --size "${SIZE}x${SIZE}" \
    --batch "$BATCH" --epochs 1 --limit-batches "$STEPS" --threads 1 --workers 1 --json "${extra[@]}" 2>"$tmp/err$n" |
    python3 -c 'import json,sys
for l in sys.stdin:
    e=json.loads(l)
    if e.get("event")=="epoch": print(e["record"]["images_per_second"])'
}
one=$(ips 1)
two=$(ips 2)
python3 - "$one" "$two" <<PY
import json, os, sys
one, two = float(sys.argv[1]), float(sys.argv[2])
print(json.dumps({"model": "$MODEL", "width": $WIDTH, "size": $SIZE, "batch_per_process": $BATCH, "steps": $STEPS,
  "threads_per_process": 1, "cpus": os.cpu_count(), "load_average": os.getloadavg()[0],
  "images_per_second_1proc": round(one, 2), "images_per_second_2proc": round(two, 2),
  "speedup": round(two / one, 3), "efficiency": round(two / (2 * one), 3)}))
PY
