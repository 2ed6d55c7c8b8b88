"""Each PEagle architecture name in the examples table resolves to its Eagle3
drafter (Llama: vLLM's; Qwen3: this package's, as ``force`` loads it), and the
names a checkpoint writer emits load and generate under that name (the shared
``force`` engine runs whose drafts carry them)."""

from __future__ import annotations

import pytest

from tests.models.registry import _SPECULATIVE_DECODING_EXAMPLE_MODELS

EXAMPLES = sorted(_SPECULATIVE_DECODING_EXAMPLE_MODELS.items())


def test_every_registered_peagle_name_has_an_example():
    """As upstream's registry test: a name the plugin registers on this vLLM,
    with no example here, fails."""
    from vllm_peagle.model_executor.models.registry import peagle_models

    missing = set(peagle_models()) - set(_SPECULATIVE_DECODING_EXAMPLE_MODELS)
    assert not missing, f"no example for {sorted(missing)} in tests/models/registry.py"


@pytest.mark.engine
@pytest.mark.parametrize("arch,info", EXAMPLES, ids=[a for a, _ in EXAMPLES])
def test_peagle_example_resolves_and_loads(arch, info, states, request):
    # ModelRegistry's loader for the name, in a fresh force-mode process.
    assert states["force"]["resolved"][arch] == info.resolves_to
    if info.run is None:
        return
    run = request.getfixturevalue("engine_run")(info.run)
    assert run["speculative_config"]["draft_architectures"] == [arch]
    assert run["speculative_config"]["parallel_drafting"] is True
    assert all(len(ids) == run["scenario"]["max_tokens"] for ids in run["token_ids"])
