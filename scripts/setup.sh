#!/usr/bin/env bash
# Installs what jmedseg needs on Debian 12: libtorch (CPU) with the gloo headers its c10d (distributed training) includes, oneDNN 2's headers (libdnnl-dev: the Winograd convolutions, csrc/wino.cc), PyTorch for the
# parity tests' oracle, CMake for the C ABI test, and the two Debian packages
# the default brain MRI data set is built from, and Chromium for serve's
# headless browser test. Idempotent; quiet when done.
set -euo pipefail

pkgs=(libtorch-dev libgloo-dev libdnnl-dev python3-torch python3-numpy cmake g++ libpng-dev mricron-data insighttoolkit5-examples chromium)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "setup: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
