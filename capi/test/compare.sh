#!/usr/bin/env bash
# The done-criterion of the C API: the C++ example host (examples/segment,
# linked to libjmedseg) writes the same mask as `jmedseg predict` for the
# same checkpoint, pixel for pixel, for a grey slice at the model's size, an
# RGB image of another size and a grey one of an odd size.
#   compare.sh JMEDSEG SEGMENT PNGTOOL CHECKPOINT IMAGE.png WORKDIR
set -euo pipefail
jmedseg=$1 segment=$2 pngtool=$3 ckpt=$4 img=$5 work=$6
rm -rf "$work"
mkdir -p "$work"
"$pngtool" derive "$img" "$work/rgb.png" "$work/odd.png"
cp "$img" "$work/grey.png"
for name in grey rgb odd; do
  "$jmedseg" predict --checkpoint "$ckpt" --input "$work/$name.png" --output "$work/$name.cli.png" --threads 1 >/dev/null
  "$segment" "$ckpt" "$work/$name.png" "$work/$name.example.png"
  out=$("$pngtool" cmp "$work/$name.cli.png" "$work/$name.example.png") || { echo "$name: $out: the masks differ" >&2; exit 1; }
  echo "$name: $out"
  case $out in *" 0 foreground"*) echo "$name: an empty mask compares nothing" >&2; exit 1 ;; esac
done
# The example refuses to replace its output without --force, and says why.
if "$segment" "$ckpt" "$work/grey.png" "$work/grey.example.png" 2>"$work/err"; then
  echo "segment replaced an existing output without --force" >&2; exit 1
fi
grep -q -- "--force" "$work/err"
"$segment" "$ckpt" "$work/grey.png" "$work/grey.example.png" --force >/dev/null
