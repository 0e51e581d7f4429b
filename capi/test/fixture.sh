#!/usr/bin/env bash
# The C API tests' model: a tiny U-Net (width 4, 3 epochs, 64x64, seed 1)
# trained by `jmedseg train` on the default brain data, in DIR (recreated:
# it is the build tree's, nothing a user made). About 5 s on 2 cores.
#   fixture.sh JMEDSEG DIR
# DIR/run/best.safetensors is the checkpoint, DIR/img.png a held-out slice.
set -euo pipefail
jmedseg=$1 dir=$2
rm -rf "$dir"
mkdir -p "$dir"
"$jmedseg" data prepare --out "$dir/data" --size 64 >/dev/null
"$jmedseg" train --model unet --data "$dir/data" --out "$dir/run" --width 4 --epochs 3 --batch 4 --lr 3e-3 \
  --threads 1 --seed 1 >/dev/null
img=$(ls "$dir/data/test/images" | head -n 1)
cp "$dir/data/test/images/$img" "$dir/img.png"
echo "fixture: $dir/run/best.safetensors, $dir/img.png ($img)"
