#!/usr/bin/env bash
# On the GPU machine: joins the wheelhouse parts gathered in STAGE
# (benchmarks/gpu_wheelhouse.sh), checks the sum, and installs each release into
# /tmp/site-VERSION (the common wheels, or the torch-VERSION set a release built
# against another torch names in its TORCH file, then the release's own), and this
# package's wheel (PKG) into /tmp/site-peagle.  Then, for one release:
#   export PYTHONPATH=/tmp/site-peagle:/tmp/site-VERSION VLLM_USE_FLASHINFER_SAMPLER=0
# usage: gpu_install.sh STAGE PKG_DIR
set -euo pipefail
stage=${1:?usage: gpu_install.sh STAGE PKG_DIR}
pkg=${2:?usage: gpu_install.sh STAGE PKG_DIR}
cd "$stage"
cat wheelhouse.tar.part* > wheelhouse.tar
sha256sum -c SHA256SUMS
rm -f wheelhouse.tar.part*
mkdir -p wh && tar -C wh -xf wheelhouse.tar && rm wheelhouse.tar
install() { python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$@"; }
for dir in wh/vllm-*; do
  v=${dir#wh/vllm-}
  if [ -f "$dir/TORCH" ]; then
    # Its own torch and requirements (gpu_wheelhouse.sh), not the 2.11-era common set.
    install "/tmp/site-$v" "wh/torch-$(cat "$dir/TORCH")"/*.whl "$dir"/*.whl &
  else
    install "/tmp/site-$v" wh/common/*.whl "$dir"/*.whl &
  fi
done
install /tmp/site-peagle "$pkg"/*.whl &
wait
for dir in wh/vllm-*; do
  v=${dir#wh/vllm-}
  PYTHONPATH=/tmp/site-$v python3 -c "import vllm, torch; print('site-$v: vllm', vllm.__version__, 'torch', torch.__version__)"
done
