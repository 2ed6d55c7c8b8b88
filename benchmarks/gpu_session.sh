#!/usr/bin/env bash
# A whole GPU session on a CUDA host that reaches no registry, one or more vLLM
# releases: installs the staged wheelhouse once (benchmarks/gpu_wheelhouse.sh,
# gathered in $WH; this package's wheel in $PKG), then runs
# benchmarks/gpu_session.py for each job with its release's site on PYTHONPATH,
# results in OUT/<device>-vllm-<version>[-tag]/.  Prints each job's short table last.
# WH: the staged wheelhouse folder, or several split by spaces (a torch 2.11 kit
#   for 0.20-0.24 beside the torch 2.14 one for 0.33/0.34), each installed in turn.
# usage: PLAN="0/0.21.0/sweep>0/0.21.0/profile_peagle_l4 1/0.20.2/release ; 0,1/0.21.0/release_tp2" \
#          bash benchmarks/gpu_session.sh OUT
#   PLAN: phases one after another, split by ";"; a phase's jobs side by side,
#   each GPUS/RELEASE/STEPS (STEPS: gpu_session.py --only steps joined by "+"),
#   or several such runs one after another joined by ">".  The folder's tag:
#   none for release, "-tp2" for release_tp2, "-zoo" for release_zoo, else the
#   steps ("-profile-peagle-l4").  Where a phase has several jobs, each job's
#   processes run on its first GPU's share of the CPUs.
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
  for stage in $WH; do bash benchmarks/gpu_install.sh "$stage" "$PKG"; done
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

run() {  # release gpus only tag [cpus] -> OUT/<device>-vllm-<release><tag>
  local release=$1 visible=$2 only=$3 tag=$4 cpus=${5:-}
  local pin=()
  [ -n "$cpus" ] && pin=(taskset -c "$cpus")
  # .paths: what the site's .pth files add to sys.path (gpu_install.sh).
  CUDA_VISIBLE_DEVICES=$visible PYTHONPATH=/tmp/site-peagle:/tmp/site-$release$(cat "/tmp/site-$release.paths" 2>/dev/null) \
    "${pin[@]}" python3 benchmarks/gpu_session.py "$out/$device-vllm-$release$tag" --only="$only" \
    > "$out/$device-vllm-$release$tag.log" 2>&1
}
job() {  # GPUS/RELEASE/STEPS[>GPUS/RELEASE/STEPS...] shared: runs one after another
  local shared=$1 part visible release steps only tag cpus="" first per
  IFS='>' read -r -a parts <<< "$2"
  for part in "${parts[@]}"; do
    IFS=/ read -r visible release steps <<< "$part"
    only=${steps//+/,}
    case "$only" in
      *release_tp2*) tag=-tp2 ;; release_zoo*) tag=-zoo ;; release) tag="" ;;
      *) tag="-${only//[,_]/-}" ;;
    esac
    if [ "$shared" = 1 ] && [ "${gpus:-1}" -ge 2 ]; then
      # The job's slice of this process's CPUs, by its first GPU: one job's
      # engine start-up (compilation) does not slow another's timed steps.
      first=${visible%%,*}; per=$(( ${#allowed[@]} / gpus ))
      if [ "$per" -ge 2 ]; then
        cpus=$(IFS=,; echo "${allowed[*]:$(( first * per )):$per}")
      fi
    fi
    run "$release" "$visible" "$only" "$tag" "$cpus" || true
  done
}
if [ -n "${PLAN:-}" ]; then
  read -r -a allowed <<< "$(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0)))')"
  IFS=';' read -r -a phases <<< "$PLAN"
  for phase in "${phases[@]}"; do
    pids=()
    read -r -a jobs <<< "$phase"
    for j in "${jobs[@]}"; do
      job "$([ "${#jobs[@]}" -ge 2 ] && echo 1 || echo 0)" "$j" & pids+=($!)
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
