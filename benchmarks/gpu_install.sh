#!/usr/bin/env bash
# On the GPU machine: joins the wheelhouse parts gathered in STAGE
# (benchmarks/gpu_wheelhouse.sh), checks the sum, and installs each release into
# /tmp/site-VERSION (the common wheels, or the torch-VERSION set a release built
# against another torch names in its TORCH file, then the release's own), and this
# package's wheel (PKG) into /tmp/site-peagle.  Then, for one release:
#   export PYTHONPATH=/tmp/site-peagle:/tmp/site-VERSION$(cat /tmp/site-VERSION.paths)
#   export VLLM_USE_FLASHINFER_SAMPLER=0
# A site on PYTHONPATH has its .pth files ignored (Python reads them only in site
# directories); what they add to sys.path (nvidia-cutlass-dsl's: its dsl_packages,
# where the cutlass module lives) is written to /tmp/site-VERSION.paths, ':'-led.
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
# Once, where several kits are installed in turn (gpu_session.sh's WH).
[ -d /tmp/site-peagle/vllm_peagle ] || install /tmp/site-peagle "$pkg"/*.whl &
wait
for dir in wh/vllm-*; do
  v=${dir#wh/vllm-}
  python3 - "/tmp/site-$v" > "/tmp/site-$v.paths" <<'PY'
import site, sys
d = sys.argv[1]
sys.path.insert(0, d)  # a .pth may import from the site itself
before = list(sys.path)
site.addsitedir(d)
print("".join(":" + p for p in sys.path if p not in before), end="")
PY
  PYTHONPATH=/tmp/site-$v$(cat "/tmp/site-$v.paths") python3 -c "import vllm, torch; print('site-$v: vllm', vllm.__version__, 'torch', torch.__version__)"
done
