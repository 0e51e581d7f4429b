#!/usr/bin/env bash
# make check-cuda: the shim's CUDA-only code (CUDA graphs in csrc/perf.cc,
# compiled only with JMEDSEG_CUDA and the CUDA runtime's headers) compiled
# against libtorch 1.13 (this machine) and, when the chroot of
# scripts/torch2.sh is there, libtorch 2.x, so that it is checked on every
# CI run although no machine here has a GPU. Compile only: linking needs
# libtorch_cuda, which only scripts/gpu-check.sh's machine has.
#
# The CUDA runtime's headers: CUDA_INCLUDE, else /usr/local/cuda/include,
# else Debian 13's nvidia-cuda-dev (non-free, about 0.9 GB) fetched once
# from the Debian mirror and its headers kept in JMEDSEG_CUDA_HEADERS
# (default /var/cache/jmedseg/cuda-include). Debian's CPU libtorch lacks the
# one header CMake generates for CUDA builds (c10/cuda/impl/
# cuda_cmake_macros.h); a copy of what CMake writes is supplied.
#
# Variables: CUDA_INCLUDE, JMEDSEG_CUDA_HEADERS, TORCH2_ROOT (the chroot,
# default /var/cache/jmedseg/trixie), TORCH2_MIRROR (default
# http://deb.debian.org/debian).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${JMEDSEG_CUDA_HEADERS:-/var/cache/jmedseg/cuda-include}
ROOT=${TORCH2_ROOT:-/var/cache/jmedseg/trixie}
MIRROR=${TORCH2_MIRROR:-http://deb.debian.org/debian}
FILES=(csrc/perf.cc) # every file with a JMEDSEG_CUDA path

log() { echo "check-cuda: $*" >&2; }
# ver SYSROOT: the libtorch version of its headers.
ver() {
  awk '/define TORCH_VERSION_(MAJOR|MINOR|PATCH)/ { v = v s $3; s = "." } END { print v }' \
    "$1/usr/include/torch/csrc/api/include/torch/version.h"
}
die() { log "$*"; exit 1; }

# ---- the CUDA runtime's headers ----
INC=${CUDA_INCLUDE:-}
if [ -z "$INC" ] && [ -f /usr/local/cuda/include/cuda_runtime_api.h ]; then INC=/usr/local/cuda/include; fi
if [ -z "$INC" ]; then
  INC=$CACHE/include
  if [ ! -f "$INC/cuda_runtime_api.h" ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    log "fetching nvidia-cuda-dev's headers from $MIRROR (trixie non-free)"
    curl -fsS -o "$tmp/Packages.xz" "$MIRROR/dists/trixie/non-free/binary-amd64/Packages.xz" ||
      die "cannot read $MIRROR/dists/trixie/non-free/binary-amd64/Packages.xz"
    deb=$(xz -dc "$tmp/Packages.xz" | awk '/^Package: /{p=($2=="nvidia-cuda-dev")} p && !d && /^Filename: /{print $2; d=1}')
    [ -n "$deb" ] || die "no nvidia-cuda-dev in trixie non-free at $MIRROR"
    curl -fsS -o "$tmp/cuda-dev.deb" "$MIRROR/$deb" || die "cannot fetch $MIRROR/$deb"
    (cd "$tmp" && ar x cuda-dev.deb) || die "$deb: not a Debian package"
    mkdir -p "$tmp/x"
    tar -xf "$tmp"/data.tar.* -C "$tmp/x" --wildcards './usr/include/*' || die "$deb: no headers in it"
    [ -f "$tmp/x/usr/include/cuda_runtime_api.h" ] || die "$deb: no cuda_runtime_api.h in it"
    mkdir -p "$CACHE"
    rm -rf "$CACHE/include.new"
    mv "$tmp/x/usr/include" "$CACHE/include.new"
    rm -rf "$CACHE/include"
    mv "$CACHE/include.new" "$CACHE/include" # whole or not at all
    echo "$deb" >"$CACHE/source"
  fi
fi
[ -f "$INC/cuda_runtime_api.h" ] || die "$INC has no cuda_runtime_api.h (set CUDA_INCLUDE)"

work=$(mktemp -d)
trap 'rm -rf "$work" ${tmp:+"$tmp"}' EXIT
mkdir -p "$work/macros/c10/cuda/impl"
printf '#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n' >"$work/macros/c10/cuda/impl/cuda_cmake_macros.h"

# check SYSROOT LABEL: compiles FILES there with JMEDSEG_CUDA and fails
# unless the CUDA graph code was compiled (not skipped by perf.cc's
# __has_include test).
check() {
  local sysroot=$1 label=$2 dir=$3 run=()
  [ "$sysroot" = / ] || run=(chroot "$sysroot")
  local flags=(-std=c++17 -Wno-deprecated-declarations -DJMEDSEG_CUDA
    -I"$dir/csrc" -I/usr/include/torch/csrc/api/include -I"$dir/cuda" -I"$dir/macros")
  for f in "${FILES[@]}"; do
    "${run[@]}" g++ "${flags[@]}" -dM -E "$dir/$f" >"$work/defines" || die "$label: $f: the preprocessor failed"
    grep -q '^#define JP_CUDA_GRAPHS 1' "$work/defines" ||
      die "$label: $f did not take its CUDA graph path (the headers were not found)"
    "${run[@]}" g++ "${flags[@]}" -fsyntax-only -Wall "$dir/$f" || die "$label: $f does not compile with JMEDSEG_CUDA"
  done
  log "$label: ${FILES[*]}: compiled with JMEDSEG_CUDA (CUDA graphs)"
}

mkdir -p "$work/tree"
cp -r "$SRC/csrc" "$work/tree/csrc"
ln -s "$INC" "$work/tree/cuda"
ln -s "$work/macros" "$work/tree/macros"
check / "libtorch $(ver /)" "$work/tree"

# libtorch 2.x: the chroot of scripts/torch2.sh (make test-torch2 makes it).
if [ -x "$ROOT/usr/bin/g++" ] && [ -f "$ROOT/usr/include/torch/csrc/api/include/torch/version.h" ]; then
  [ "$(id -u)" -eq 0 ] || die "the libtorch 2.x check needs root (chroot $ROOT)"
  in=$(mktemp -d "$ROOT/tmp/check-cuda.XXXXXX")
  trap 'rm -rf "$work" "$in" ${tmp:+"$tmp"}' EXIT
  cp -r "$SRC/csrc" "$in/csrc"
  cp -r "$INC" "$in/cuda"
  cp -r "$work/macros" "$in/macros"
  check "$ROOT" "libtorch $(ver "$ROOT")" "${in#"$ROOT"}"
else
  log "no libtorch 2.x chroot at $ROOT (make test-torch2 makes it): checked against this machine's libtorch only"
fi
