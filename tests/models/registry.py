"""Example checkpoints per architecture, in the style of upstream's
``tests/models/registry.py`` (``_HfExamplesInfo``), for the PEagle names."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class _HfExamplesInfo:
    tiny: str
    """The offline example: a ``vllm-peagle make-tiny`` draft (its name)."""
    resolves_to: str
    """The vLLM class the architecture name must resolve to."""


_SPECULATIVE_DECODING_EXAMPLE_MODELS = {
    "PEagleDraftModel": _HfExamplesInfo(
        tiny="peagle",
        resolves_to="vllm.model_executor.models.llama_eagle3.Eagle3LlamaForCausalLM"),
    "PeagleLlamaForCausalLM": _HfExamplesInfo(
        tiny="peagle",
        resolves_to="vllm.model_executor.models.llama_eagle3.Eagle3LlamaForCausalLM"),
    # Loaded in force mode: this package's drafter, on every release.
    "PeagleQwen3ForCausalLM": _HfExamplesInfo(
        tiny="qwen3-peagle",
        resolves_to="vllm_peagle.model_executor.models.qwen3_eagle3.Eagle3Qwen3ForCausalLM"),
}
