#!/usr/bin/env bash
# An offline wheelhouse for several vLLM releases on the GPU machine (CUDA 13,
# PyTorch 2.11, no registry): the packages every release needs but the image
# lacks once (../shared/gpu/requirements-device.txt, compressed-tensors left out),
# speculators' two pure-Python wheels (the zoo is written there), and per release
# its CUDA wheel and its compressed-tensors pin (from the wheel's METADATA).
# One tar split into parts of PART_SIZE (default 50M: a part plus the 11 MB
# checkout stays under the 64 MiB a call carries), DEST/p1, DEST/p2, ...; the
# last part holds SHA256SUMS.  On the machine: benchmarks/gpu_install.sh.
# usage: [PART_SIZE=50M] benchmarks/gpu_wheelhouse.sh DEST VERSION...
set -euo pipefail
dest=${1:?usage: gpu_wheelhouse.sh DEST VERSION...}
shift
[ $# -ge 1 ] || { echo "usage: gpu_wheelhouse.sh DEST VERSION..." >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
reqs=${REQUIREMENTS:-$here/../../shared/gpu/requirements-device.txt}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
platforms=()
for p in manylinux_2_35 manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 manylinux_2_26 \
         manylinux_2_24 manylinux_2_17 manylinux2014 manylinux_2_5 manylinux1; do
  platforms+=(--platform "${p}_x86_64")
done
get() { python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
          --implementation cp "${platforms[@]}" -d "$@"; }
mkdir -p "$work/wh/common"
grep -v -E '^(#|compressed-tensors)' "$reqs" > "$work/common.txt"
get "$work/wh/common" -r "$work/common.txt" speculators==0.9.0 hs-connectors==0.9.0
for v in "$@"; do
  mkdir -p "$work/wh/vllm-$v"
  get "$work/wh/vllm-$v" "vllm==$v"
  meta=$(unzip -p "$work/wh/vllm-$v"/vllm-*.whl '*.dist-info/METADATA')
  printf '%s\n' "$meta" | grep -q '^Requires-Dist: torch==2.11.0' \
    || { echo "vllm $v is not built against torch 2.11 (the GPU machine's)" >&2; exit 1; }
  ct=$(printf '%s\n' "$meta" | sed -n 's/^Requires-Dist: compressed-tensors==\([0-9.]*\).*/\1/p')
  get "$work/wh/vllm-$v" "compressed-tensors==$ct"
done
tar -C "$work/wh" -cf "$work/wheelhouse.tar" .
rm -rf "$dest" && mkdir -p "$dest"
split -b "${PART_SIZE:-50M}" -d -a 2 "$work/wheelhouse.tar" "$work/wheelhouse.tar.part"
i=0
for part in "$work"/wheelhouse.tar.part*; do
  i=$((i + 1)); mkdir -p "$dest/p$i"; mv "$part" "$dest/p$i/"
done
(cd "$work" && sha256sum wheelhouse.tar) > "$dest/p$i/SHA256SUMS"
echo "wheelhouse: $i parts in $dest (vllm $*)"
