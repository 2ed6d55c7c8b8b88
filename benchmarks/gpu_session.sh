#!/usr/bin/env bash
# A whole GPU session's checks on a CUDA host that reaches no registry.
# Before: the wheelhouse parts in $WH (../shared/gpu/README.md) and this package's
# wheel plus pytest's in .gpu/pkg (see benchmarks/README.md for the staging calls).
# usage: bash benchmarks/gpu_session.sh OUT [--only=trained,proof,overrides,serve_sc,config,offline,serve,bench]
# PKG: the folder with this package's wheel (default .gpu/pkg).
# GSM8K_REQUESTS: lm-eval's GSM8K requests recorded on the CPU for the trained step
#   (python -m vllm_peagle.tools.gsm8k record FILE --limit 30).
# BENCH_BUDGET_S: seconds after which the bench starts no more engines.
set -euo pipefail
out=${1:?usage: gpu_session.sh OUT [--only=...]}
shift
WH=${WH:-/tmp/wh}
SITE=${SITE:-/tmp/site}
# This package goes to a folder of its own: `pip install --target --upgrade` into
# the wheelhouse's folder would replace its bin/ and with it the `vllm` command.
PKG_SITE=${PKG_SITE:-/tmp/site-peagle}
cd "$(dirname "$0")/.."
if [ ! -f "$SITE/.vllm-peagle-installed" ]; then
  bash "$WH/install-wheelhouse.sh" "$WH" "$SITE"
  # The plugin is found through its installed entry point.
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$PKG_SITE" "${PKG:-.gpu/pkg}"/*.whl
  touch "$SITE/.vllm-peagle-installed"
fi
export PYTHONPATH="$PKG_SITE:$SITE" PATH="$SITE/bin:$PKG_SITE/bin:$PATH"
export VLLM_USE_FLASHINFER_SAMPLER=0 PYTHONUNBUFFERED=1
# The tests' engines in the GPU backends' own dtype (bf16 from the float32 tiny weights).
export VLLM_PEAGLE_TEST_DTYPE=${VLLM_PEAGLE_TEST_DTYPE:-auto}
# Leave NVLink multicast off on shared hosts.
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 benchmarks/gpu_session.py "$out" "$@"
