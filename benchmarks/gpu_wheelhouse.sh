#!/usr/bin/env bash
# An offline wheelhouse for several vLLM releases on the GPU machine (CUDA 13,
# PyTorch 2.11, no registry): the packages every release needs but the image
# lacks once (../shared/gpu/requirements-device.txt, compressed-tensors left out),
# speculators' two pure-Python wheels (the zoo is written there), and per release
# its CUDA wheel and its compressed-tensors pin (from the wheel's METADATA); a
# release built against another torch (0.33/0.34: 2.14.0) gets torch-VERSION/
# with that torch, its triton and NCCL, and gpu-requirements-torch-VERSION.txt;
# gpu-requirements-vllm-VERSION.txt, where there is one, goes into the release's own.
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
for p in manylinux_2_35 manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 manylinux_2_26 manylinux_2_18 \
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
  torch=$(printf '%s\n' "$meta" | sed -n 's/^Requires-Dist: torch==\([0-9.]*\).*/\1/p' | head -1)
  if [ "$torch" != "2.11.0" ]; then
    # Built against another torch than the machine's 2.11 (0.33/0.34: 2.14.0): that
    # torch, the triton and NCCL its METADATA pins (the image's are older; its
    # cuDNN, cuSPARSELt and NVSHMEM 9.x/0.x/3.x libraries serve), and the
    # release's other requirements the image lacks, once per torch version.
    tdir="$work/wh/torch-$torch"
    reqs_torch="$here/gpu-requirements-torch-$torch.txt"
    [ -f "$reqs_torch" ] || { echo "vllm $v needs torch $torch: no $reqs_torch" >&2; exit 1; }
    if [ ! -d "$tdir" ]; then
      mkdir -p "$tdir"
      get "$tdir" "torch==$torch"
      tmeta=$(unzip -p "$tdir"/torch-*.whl '*.dist-info/METADATA')
      pin() { printf '%s\n' "$tmeta" | sed -n "s/^Requires-Dist: \($1[=~]=[0-9.]*\).*/\1/p" | head -1; }
      get "$tdir" "$(pin triton | sed 's/~=/==/')" "$(pin nvidia-nccl-cu13)"
      get "$tdir" -r "$reqs_torch"
    fi
    echo "$torch" > "$work/wh/vllm-$v/TORCH"
    # What this release needs over that set (0.34: its own transformers and hub).
    [ -f "$here/gpu-requirements-vllm-$v.txt" ] && get "$work/wh/vllm-$v" -r "$here/gpu-requirements-vllm-$v.txt"
  else
    ct=$(printf '%s\n' "$meta" | sed -n 's/^Requires-Dist: compressed-tensors==\([0-9.]*\).*/\1/p')
    get "$work/wh/vllm-$v" "compressed-tensors==$ct"
  fi
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
