#!/usr/bin/env bash
# make test-torch2: the torch (nn, optim, ckpt, safetensors), models and loss
# tests against libtorch 2.x. Debian 13 (trixie) ships libtorch-dev and
# python3-torch 2.6.0 in the same system paths as Debian 12's 1.13, so plain
# `go test` builds there. This script keeps a minimal trixie chroot (created
# once with debootstrap, reused while it has the packages), bind-mounts the
# tree, the host's Go toolchain and module cache read-only into it, and runs
# the tests with CI=1 (a missing PyTorch oracle fails). The mounts live in a
# private mount namespace where unshare(1) works, and are undone on exit,
# failure or interrupt in any case.
#
# Variables: TORCH2_ROOT (the chroot, default /var/cache/jmedseg/trixie),
# TORCH2_MIRROR (default: the host's Debian mirror from /etc/apt),
# TORCH2_TESTS (packages, default ./torch/... ./models/... ./loss/...),
# TORCH2_GOFLAGS (extra go test flags). Needs root (or sudo).
set -euo pipefail

SUITE=trixie
PKGS=(libtorch-dev libgloo-dev python3-torch python3-numpy g++)
ROOT=${TORCH2_ROOT:-/var/cache/jmedseg/trixie}
TESTS=${TORCH2_TESTS:-./torch/... ./models/... ./loss/...}
SRC=$(cd "$(dirname "$0")/.." && pwd)

log() { echo "torch2: $*" >&2; }
die() { log "$*"; exit 1; }

# The host's Go, resolved as the calling user (sudo may change PATH and HOME).
if [ -z "${TORCH2_GOROOT:-}" ]; then
  command -v go >/dev/null || PATH="/usr/local/go/bin:$PATH"
  command -v go >/dev/null || die "no go on PATH"
  (cd "$SRC" && go mod download) || die "go mod download failed (the chroot has no network for Go modules)"
  TORCH2_GOROOT=$(go env GOROOT)
  TORCH2_MODCACHE=$(go env GOMODCACHE)
  export TORCH2_GOROOT TORCH2_MODCACHE
fi

if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "need root (or sudo) for debootstrap, chroot and mount"
  exec sudo --preserve-env=TORCH2_ROOT,TORCH2_MIRROR,TORCH2_TESTS,TORCH2_GOFLAGS,TORCH2_GOROOT,TORCH2_MODCACHE "$0" "$@"
fi

# A private mount namespace: whatever is mounted below goes away with the
# last process of this script, even if it is killed.
if [ -z "${TORCH2_NS:-}" ] && unshare --mount --propagation private true 2>/dev/null; then
  TORCH2_NS=1 exec unshare --mount --propagation private "$0" "$@"
fi

# umount_under DIR: unmount everything mounted at or below DIR, deepest
# first; fails if something stays mounted (then nothing may delete DIR).
umount_under() {
  local dir m
  dir=$(readlink -m "$1")
  for m in $(awk -v d="$dir" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  ! awk -v d="$dir" '$5 == d || index($5, d "/") == 1 {found=1} END {exit !found}' /proc/self/mountinfo
}

MOUNTED=()
cleanup() {
  local rc=$?
  if [ ${#MOUNTED[@]} -gt 0 ]; then
    umount_under "$ROOT" || log "warning: mounts left under $ROOT"
    MOUNTED=()
  fi
  exit $rc
}
# in_chroot CMD...: runs CMD in the chroot in its own process group, so an
# interrupt or a TERM to this script ends all of it before the unmounting.
CHILD=
in_chroot() {
  setsid chroot "$ROOT" "$@" &
  CHILD=$!
  local rc=0
  wait "$CHILD" || rc=$?
  CHILD=
  return $rc
}
stop() {
  if [ -n "$CHILD" ]; then
    kill -TERM -- "-$CHILD" 2>/dev/null || true
    wait "$CHILD" 2>/dev/null || true
  fi
  exit "$1"
}
trap cleanup EXIT
trap 'stop 130' INT
trap 'stop 143' TERM

# bind SRC DST [ro]
bind() {
  mkdir -p "$ROOT$2"
  mount --bind "$1" "$ROOT$2"
  MOUNTED+=("$2")
  if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$ROOT$2"; fi
}

mount_system() {
  [ ${#MOUNTED[@]} -eq 0 ] || return 0
  mount -t proc proc "$ROOT/proc"; MOUNTED+=(/proc)
  bind /sys /sys ro
  bind /dev /dev
  mount -t devpts -o newinstance,ptmxmode=0666 devpts "$ROOT/dev/pts"; MOUNTED+=(/dev/pts)
  mount -t tmpfs -o mode=1777 tmpfs "$ROOT/dev/shm"; MOUNTED+=(/dev/shm)
}

unmount_all() {
  umount_under "$ROOT" || die "cannot unmount everything under $ROOT"
  MOUNTED=()
}

mirror() {
  if [ -n "${TORCH2_MIRROR:-}" ]; then echo "$TORCH2_MIRROR"; return; fi
  local u
  u=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -E '^[[:space:]]*(deb|URIs:)' | grep -oE '(https?|file):/[^[:space:]]+' | grep -E '/debian/?$' | head -n1 || true)
  echo "${u:-http://deb.debian.org/debian}"
}

have_pkgs() {
  [ -x "$ROOT/usr/bin/dpkg-query" ] || return 1
  local n
  n=$(chroot "$ROOT" dpkg-query -W -f='${Status}\n' "${PKGS[@]}" 2>/dev/null | grep -c 'install ok installed' || true)
  [ "$n" -eq ${#PKGS[@]} ]
}

mkdir -p "$(dirname "$ROOT")"
exec 9>"$ROOT.lock"
flock 9 # one run at a time per chroot

# 1. The base system, once. Built beside ROOT and moved into place when
# complete, so an interrupted debootstrap leaves nothing half-made in ROOT. An
# existing trixie chroot at ROOT is reused; anything else there is left alone.
if [ -e "$ROOT" ] && [ -n "$(ls -A "$ROOT" 2>/dev/null)" ]; then
  [ -x "$ROOT/usr/bin/apt-get" ] && grep -qs "^VERSION_CODENAME=$SUITE\$" "$ROOT/etc/os-release" ||
    die "$ROOT is not a Debian $SUITE chroot; remove it or set TORCH2_ROOT"
else
  if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  fi
  m=$(mirror)
  log "debootstrap $SUITE from $m into $ROOT"
  umount_under "$ROOT.new" || die "something is still mounted under $ROOT.new"
  rm -rf --one-file-system "$ROOT.new"
  rmdir "$ROOT" 2>/dev/null || true
  debootstrap --variant=minbase "$SUITE" "$ROOT.new" "$m" >"$ROOT.debootstrap.log" 2>&1 ||
    { tail -n 20 "$ROOT.debootstrap.log" >&2; die "debootstrap failed (log: $ROOT.debootstrap.log)"; }
  mv "$ROOT.new" "$ROOT"
fi

# 2. The packages, unless the cached chroot has them all.
if ! have_pkgs; then
  log "installing ${PKGS[*]} in $ROOT"
  cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
  mount_system
  in_chroot apt-get update -qq
  in_chroot env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null
  in_chroot apt-get clean
  unmount_all
  have_pkgs || die "packages missing after install: ${PKGS[*]}"
fi

log "chroot ready after ${SECONDS}s"

# 3. The tests. The tree, Go and the module cache are read-only inside; the
# build cache stays in the chroot, so a rerun recompiles only what changed.
start=$SECONDS
mount_system
bind "$SRC" /src ro
bind "$TORCH2_GOROOT" /usr/local/go ro
bind "$TORCH2_MODCACHE" /root/go/pkg/mod ro
mkdir -p "$ROOT/root/.cache/go-build"

# Go's build cache keys a cgo package by its own directory's files: the
# shim's csrc/ sources, #included from there, go in by their hash.
CSRC_REV=$(cat "$SRC"/csrc/*.cc "$SRC"/csrc/*.h | md5sum | cut -c1-12)
# shellcheck disable=SC2016
in_chroot /usr/bin/env -i \
  PATH=/usr/local/go/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TMPDIR=/tmp \
  CGO_CXXFLAGS="-O2 -g -DJMEDSEG_CSRC_REV=$CSRC_REV" \
  CI=1 GOPROXY=off GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false -tags=nowinograd" \
  GOPATH=/root/go GOMODCACHE=/root/go/pkg/mod GOCACHE=/root/.cache/go-build \
  PYTHONDONTWRITEBYTECODE=1 TESTS="$TESTS" EXTRA="${TORCH2_GOFLAGS:-}" \
  /bin/bash -c 'set -euo pipefail
    cd /src
    echo "torch2: $(. /etc/os-release; echo "$PRETTY_NAME"), $(go version | cut -d" " -f3), libtorch-dev $(dpkg-query -W -f="\${Version}" libtorch-dev), python3-torch $(dpkg-query -W -f="\${Version}" python3-torch)" >&2
    go test -count=1 -timeout 30m $EXTRA $TESTS'
log "tests passed in $((SECONDS - start))s (${SECONDS}s in all)"
