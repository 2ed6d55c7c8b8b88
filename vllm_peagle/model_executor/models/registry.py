"""Patch for ``vllm/model_executor/models/registry.py``.

Adds the PEagle draft architectures to ``_SPECULATIVE_DECODING_MODELS``: a
PEagle draft is an Eagle3 draft run with parallel drafting, so its names
resolve to the Eagle3 implementations.  Upstream has these entries natively
from vLLM 0.22.0 (vllm-project/vllm#41826).

``PeagleQwen3ForCausalLM`` is only added where the installed vLLM ships
``qwen3_eagle3``; elsewhere pre-flight stops a Qwen3 draft with an error that
names the release that has it.
"""

from __future__ import annotations

from vllm_peagle import features

UPSTREAM_SYMBOL = "vllm.model_executor.models.registry._SPECULATIVE_DECODING_MODELS"

# architecture name -> (module under vllm.model_executor.models, class)
_PEAGLE_MODELS = {
    "PEagleDraftModel": ("llama_eagle3", "Eagle3LlamaForCausalLM"),
    "PeagleLlamaForCausalLM": ("llama_eagle3", "Eagle3LlamaForCausalLM"),
    "PeagleQwen3ForCausalLM": ("qwen3_eagle3", "Eagle3Qwen3ForCausalLM"),
}


def peagle_models() -> dict[str, tuple[str, str]]:
    """The entries the installed vLLM can serve."""
    return {
        arch: (module, cls)
        for arch, (module, cls) in _PEAGLE_MODELS.items()
        if features.vllm_module_exists(f"model_executor.models.{module}")
    }


# arch -> the registry entry this plugin made, to tell it from vLLM's own.
_OURS: dict[str, object] = {}


def is_ours(arch: str) -> bool:
    from vllm import ModelRegistry

    entry = ModelRegistry.models.get(arch)
    return entry is not None and entry is _OURS.get(arch)


def apply(force: bool) -> str:
    """Register the PEagle names with ``ModelRegistry`` (lazily: no model import).

    Returns "installed", or "native" when vLLM has them all and ``force`` is off."""
    from vllm import ModelRegistry

    models = peagle_models()
    registered = ModelRegistry.models
    todo = {
        arch: spec for arch, spec in models.items()
        if not is_ours(arch) and (force or arch not in registered)
    }
    if not todo and not any(is_ours(arch) for arch in models):
        return "native"
    for arch, (module, cls) in todo.items():
        ModelRegistry.register_model(arch, f"vllm.model_executor.models.{module}:{cls}")
        _OURS[arch] = registered[arch]
    return "installed"
