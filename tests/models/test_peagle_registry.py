"""Each PEagle architecture name in the examples table resolves to its Eagle3
drafter (Llama: vLLM's; Qwen3: this package's, as ``force`` loads it), and its
tiny example loads and generates under that name."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.models.registry import _SPECULATIVE_DECODING_EXAMPLE_MODELS

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = sorted(_SPECULATIVE_DECODING_EXAMPLE_MODELS.items())


def test_every_registered_peagle_name_has_an_example():
    """As upstream's registry test: a name the plugin registers on this vLLM,
    with no example here, fails."""
    from vllm_peagle.model_executor.models.registry import peagle_models

    missing = set(peagle_models()) - set(_SPECULATIVE_DECODING_EXAMPLE_MODELS)
    assert not missing, f"no example for {sorted(missing)} in tests/models/registry.py"


@pytest.mark.engine
@pytest.mark.parametrize("arch,info", EXAMPLES, ids=[a for a, _ in EXAMPLES])
def test_peagle_example_resolves_and_loads(arch, info, tiny_models, tmp_path):
    out = tmp_path / "out.json"
    env = dict(os.environ, VLLM_PEAGLE_MODE="force")
    proc = subprocess.run([sys.executable, os.path.join(HERE, "load_example.py"), arch,
                           tiny_models[info.tiny], str(out)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-5000:]
    result = json.loads(out.read_text())
    assert result["draft_architectures"] == [arch]
    assert result["draft_class"] == info.resolves_to
    assert result["parallel_drafting"] is True
    assert result["generated"] == 8
