#!/usr/bin/env bash
# A whole GPU session on a CUDA host that reaches no registry, one or more vLLM
# releases: installs the staged wheelhouse once (benchmarks/gpu_wheelhouse.sh,
# gathered in $WH; this package's wheel in $PKG), then runs
# benchmarks/gpu_session.py for each job with its release's site on PYTHONPATH,
# results in OUT/<device>-vllm-<version>[-tag]/.  Prints each job's short table last.
# usage: PLAN="0/0.21.0/profile 1/0.24.0/release ; 0,1/0.21.0/release_tp2" \
#          bash benchmarks/gpu_session.sh OUT
#   PLAN: phases one after another, split by ";"; a phase's jobs side by side,
#   each GPUS/RELEASE/STEPS (STEPS: gpu_session.py --only steps joined by "+";
#   the folder's tag is "-tp2" for release_tp2, "-profile" for profile).
#   Without PLAN: RELEASES="0.22.0 0.23.0" [RELEASES_TP2=...] [ONLY=release]
#   [LATER=trained]: the releases side by side one GPU each (as many as there
#   are GPUs), then RELEASES_TP2 at TP=2, then LATER.
# GSM8K_REQUESTS: lm-eval's GSM8K requests recorded on the CPU for the trained step
#   (python -m vllm_peagle.tools.gsm8k record FILE --limit 30).
set -euo pipefail
out=${1:?usage: RELEASES=... gpu_session.sh OUT}
WH=${WH:-/tmp/wh}
PKG=${PKG:-.gpu/pkg}
ONLY=${ONLY:-release}
cd "$(dirname "$0")/.."
mkdir -p "$out"
if [ ! -f /tmp/site-peagle/.installed ]; then
  bash benchmarks/gpu_install.sh "$WH" "$PKG"
  touch /tmp/site-peagle/.installed
fi
export VLLM_USE_FLASHINFER_SAMPLER=0 PYTHONUNBUFFERED=1
# The tests' engines in the GPU backends' own dtype (bf16 from the float32 tiny weights).
export VLLM_PEAGLE_TEST_DTYPE=${VLLM_PEAGLE_TEST_DTYPE:-auto}
# Leave NVLink multicast off on shared hosts.
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
device=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | awk '{print tolower($NF)}')
[ "${gpus:-0}" -ge 2 ] && device="${device}x${gpus}"

run() {  # release gpus only -> OUT/<device>-vllm-<release>[-tp2]
  local release=$1 visible=$2 only=$3 tag=$4
  CUDA_VISIBLE_DEVICES=$visible PYTHONPATH=/tmp/site-peagle:/tmp/site-$release \
    python3 benchmarks/gpu_session.py "$out/$device-vllm-$release$tag" --only="$only" \
    > "$out/$device-vllm-$release$tag.log" 2>&1
}
if [ -n "${PLAN:-}" ]; then
  IFS=';' read -r -a phases <<< "$PLAN"
  for phase in "${phases[@]}"; do
    pids=()
    for job in $phase; do
      IFS=/ read -r visible release steps <<< "$job"
      only=${steps//+/,}
      tag=""
      case "$only" in *release_tp2*) tag=-tp2 ;; release_zoo*) tag=-zoo ;; profile*) tag=-profile ;; esac
      run "$release" "$visible" "$only" "$tag" & pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || true; done
  done
  for f in "$out"/*.log; do echo "=== $f"; sed -n '/^[^|]* | vLLM /,$p' "$f"; done
  exit 0
fi
read -r -a releases <<< "${RELEASES:?set RELEASES (or PLAN)}"
side_by_side() {  # only tag: every release, one GPU each where there are enough
  local pids=() i
  for i in "${!releases[@]}"; do
    if [ "${gpus:-1}" -ge "${#releases[@]}" ]; then
      run "${releases[$i]}" "$i" "$1" "$2" & pids+=($!)
    else
      run "${releases[$i]}" 0 "$1" "$2" || true
    fi
  done
  for p in "${pids[@]}"; do wait "$p" || true; done
}
side_by_side "$ONLY" ""
for release in ${RELEASES_TP2:-}; do
  run "$release" 0,1 release_tp2 -tp2 || true
done
# LATER: steps worth less than TP=2 (e.g. trained), after it.
[ -n "${LATER:-}" ] && side_by_side "$LATER" "-$(echo "$LATER" | tr , -)"
for f in "$out"/*.log; do echo "=== $f"; sed -n '/^[^|]* | vLLM /,$p' "$f"; done
