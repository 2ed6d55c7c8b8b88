"""Example checkpoints per architecture, in the style of upstream's
``tests/models/registry.py`` (``_HfExamplesInfo``), for the PEagle names."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class _HfExamplesInfo:
    default: str
    """The hub example: a speculators-format PEagle draft."""
    tiny: str
    """The offline example: a ``vllm-peagle make-tiny`` draft (its kind)."""
    resolves_to: str
    """The vLLM class the architecture name must resolve to."""
    speculative_model: str | None = None
    is_available_online: bool = True


_SPECULATIVE_DECODING_EXAMPLE_MODELS = {
    "PEagleDraftModel": _HfExamplesInfo(
        "nm-testing/qwen3-8b-peagle-speculators", tiny="peagle",
        resolves_to="vllm.model_executor.models.llama_eagle3.Eagle3LlamaForCausalLM"),
    "PeagleLlamaForCausalLM": _HfExamplesInfo(
        "nm-testing/qwen3-8b-peagle-speculators", tiny="peagle",
        resolves_to="vllm.model_executor.models.llama_eagle3.Eagle3LlamaForCausalLM"),
}
