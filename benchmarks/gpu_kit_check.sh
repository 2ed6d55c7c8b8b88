#!/usr/bin/env bash
# Before spending device time: the staged wheelhouse (benchmarks/gpu_wheelhouse.sh)
# installed as on the GPU machine, over a CPU stand-in of its image (a Python 3.12
# venv of benchmarks/gpu-image-packages.txt, built once in VENV), then for each
# release: the modules an engine imports, and, where this package's V2 speculator
# runs (0.34+), the speculator built and its draft loaded for the trained Qwen3 pair
# (config level: VLLM_TARGET_DEVICE=cpu).  Catches a package the kit lacks, or one
# of the image's that breaks against the kit's torch (all seen on the GPU,
# 2026-12-05: huggingface_hub 2 beside transformers 5.17, torchvision 0.26 beside
# torch 2.14, sniffio absent, cutlass absent: imported inside FlashAttention's
# backend, so pip check over every requirement, not imports alone, is what finds
# such a package).  Writes /tmp/site-* as gpu_install.sh does.
# usage: [VENV=/tmp/gpu-image-venv] benchmarks/gpu_kit_check.sh WHEELHOUSE_DIR PKG_DIR
set -euo pipefail
wh=${1:?usage: gpu_kit_check.sh WHEELHOUSE_DIR PKG_DIR}
pkg=$(cd "${2:?usage: gpu_kit_check.sh WHEELHOUSE_DIR PKG_DIR}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-/tmp/gpu-image-venv}
# The GPU image's Python (3.12): PYTHON312, else the first python3.12 that runs.
py312=${PYTHON312:-}
for candidate in python3.12 /root/.pyenv/versions/3.12*/bin/python; do
  [ -n "$py312" ] && break
  if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
    py312=$candidate
  fi
done
[ -n "$py312" ] || { echo "gpu_kit_check.sh: no Python 3.12 here (set PYTHON312)" >&2; exit 2; }
if [ ! -f "$venv/.ready" ]; then
  "$py312" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -r "$root/benchmarks/gpu-image-packages.txt"
  touch "$venv/.ready"
fi
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$wh"/p*/* "$stage"/
rm -rf /tmp/site-peagle /tmp/site-[0-9]*
PATH="$venv/bin:$PATH" bash "$root/benchmarks/gpu_install.sh" "$stage" "$pkg"
status=0
for site in /tmp/site-[0-9]*; do
  [ -d "$site" ] || continue
  v=${site#/tmp/site-}
  path=$site$(cat "$site.paths")
  echo "=== vLLM $v"
  # Every requirement of what the kit installed, against the image stand-in (pip
  # check): one not installed fails, as does a version vLLM pins that the kit or
  # the image does not meet, but for what the kit leaves out on purpose
  # (gpu-requirements-torch-2.14.0.txt says why) and the torch 2.14 CUDA library
  # pins the image's older libraries serve.
  PYTHONPATH=$path "$venv/bin/python" -m pip check 2>&1 | grep -v -E \
    "^(vllm [0-9.]+ requires flashinfer-python,|vllm [0-9.]+ has requirement (numba|setuptools)|torch [0-9.]+ has requirement (cuda-toolkit|nvidia-)|mistral-common [0-9.]+ has requirement numpy|No broken requirements)" \
    | grep -E "requires|has requirement" && { echo "pip check: the kit lacks the above"; status=1; }
  PYTHONPATH=/tmp/site-peagle:$path "$venv/bin/python" - "$root" <<'PY' || status=1
import importlib, sys
root = sys.argv[1]
import vllm
v2 = importlib.util.find_spec("vllm.v1.worker.gpu.spec_decode.speculator_config") is not None
mods = ["torch", "torchvision", "transformers", "vllm.entrypoints.llm", "vllm.v1.engine.core",
        "vllm.v1.worker.gpu_worker", "vllm.model_executor.models.qwen3",
        "vllm.model_executor.models.llama_eagle3", "vllm.entrypoints.openai.api_server",
        "vllm_peagle.tools.bench", "vllm_peagle.tools.runner"]
from importlib.metadata import requires
if any(r.startswith("nvidia-cutlass-dsl") for r in requires("vllm") or []):
    # Imported inside FlashAttention's backend on Hopper (0.33+), not at import.
    mods += ["cutlass", "cutlass.cute", "quack"]
if v2:
    mods += ["vllm.v1.worker.gpu.model_runner",
             "vllm_peagle.v1.worker.gpu.spec_decode.peagle.speculator"]
failed = []
for m in mods:
    try:
        importlib.import_module(m)
    except Exception as e:  # noqa: BLE001 - each failure is a finding
        failed.append(f"{m}: {type(e).__name__}: {str(e)[:300]}")
from transformers import AutoTokenizer
AutoTokenizer.from_pretrained(f"{root}/vllm_peagle/trained_tiny/qwen3-target")
print("\n".join(failed) or f"imports ok ({len(mods)} modules, a tokenizer)")
sys.exit(1 if failed else 0)
PY
  if PYTHONPATH=$site "$venv/bin/python" -c \
      'import importlib.util as u, sys; sys.exit(0 if u.find_spec("vllm.v1.worker.gpu.spec_decode.speculator_config") else 1)'; then
    out=$(mktemp)
    ( cd "$root" && VLLM_TARGET_DEVICE=cpu VLLM_PEAGLE_TEST_ASSUME_TRITON=1 \
      PYTHONPATH=/tmp/site-peagle:$path:$root "$venv/bin/python" tests/v1/worker/speculator_load.py \
      vllm_peagle/trained_tiny/qwen3-target vllm_peagle/trained_tiny/qwen3-peagle "$out" \
      > /dev/null 2>&1 ) && python3 -c "import json,sys; d=json.load(open(sys.argv[1])); \
print('V2 speculator:', d.get('speculator'), d.get('draft_class'), d.get('load_error', 'loaded'))" "$out" \
      || { echo "V2 speculator: FAILED to build or load"; status=1; }
    rm -f "$out"
  fi
done
exit $status
