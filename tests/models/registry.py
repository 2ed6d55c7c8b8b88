"""Example checkpoints per architecture, in the style of upstream's
``tests/models/registry.py`` (``_HfExamplesInfo``), for the PEagle names."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class _HfExamplesInfo:
    resolves_to: str
    """The vLLM class the architecture name must resolve to (in ``force``)."""
    run: str | None
    """The shared engine run (tests/conftest.py) whose draft config names this
    architecture; None for a name no checkpoint writer emits (resolved only)."""


_SPECULATIVE_DECODING_EXAMPLE_MODELS = {
    "PEagleDraftModel": _HfExamplesInfo(
        resolves_to="vllm.model_executor.models.llama_eagle3.Eagle3LlamaForCausalLM",
        run=None),
    "PeagleLlamaForCausalLM": _HfExamplesInfo(
        resolves_to="vllm.model_executor.models.llama_eagle3.Eagle3LlamaForCausalLM",
        run="peagle-k5-force"),
    # In force mode: this package's drafter, on every release.
    "PeagleQwen3ForCausalLM": _HfExamplesInfo(
        resolves_to="vllm_peagle.model_executor.models.qwen3_eagle3.Eagle3Qwen3ForCausalLM",
        run="qwen3-peagle-force"),
}
