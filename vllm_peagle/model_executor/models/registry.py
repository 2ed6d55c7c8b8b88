"""Patch for ``vllm/model_executor/models/registry.py``.

Adds the PEagle draft architectures to ``_SPECULATIVE_DECODING_MODELS``: a
PEagle draft is an Eagle3 draft run with parallel drafting, so its names
resolve to the Eagle3 implementations.  Upstream has the names natively from
vLLM 0.22.0 (vllm-project/vllm#41826), and a Qwen3 drafter
(``qwen3_eagle3.Eagle3Qwen3ForCausalLM``) from 0.24.0 (vllm-project/vllm#43132);
0.22 and 0.23 send ``PeagleQwen3ForCausalLM`` to the Llama drafter.

Where the installed vLLM has no Qwen3 drafter, points ``Eagle3Qwen3ForCausalLM``
at another, or has one that drops a draft layer's sliding window (0.24's: its
Qwen3 layers take no window, so a windowed draft attends to all its context,
drafting as it was never trained; a probe reads the drafter's code), the Qwen3 names go
to this package's (``vllm_peagle/model_executor/models/qwen3_eagle3.py``, which
keeps the window); ``force`` uses this package's everywhere, to test it against
vLLM's own.  vLLM 0.34 removed the PEagle names: they go to its own drafters.
"""

from __future__ import annotations

from vllm_peagle import features
from vllm_peagle.features import NATIVE_QWEN3_DRAFTER, registry_target

LLAMA_DRAFTER = "vllm.model_executor.models.llama_eagle3:Eagle3LlamaForCausalLM"
QWEN3_DRAFTER = "vllm_peagle.model_executor.models.qwen3_eagle3:Eagle3Qwen3ForCausalLM"

# architecture name -> drafter kind: the PEagle draft names, in one place.
PEAGLE_MODELS = {
    "PEagleDraftModel": "llama",
    "PeagleLlamaForCausalLM": "llama",
    "PeagleQwen3ForCausalLM": "qwen3",
    "Eagle3Qwen3ForCausalLM": "qwen3",
}


def wanted(force: bool) -> dict[str, str]:
    """architecture name -> the ``module:class`` it must resolve to here."""
    from vllm import ModelRegistry

    # vLLM's own Qwen3 drafter, where its registry sends its own name there and
    # it keeps sliding windows (an unknown answer keeps vLLM's choice).
    native_qwen3 = (not force and features.has_qwen3_eagle3()
                    and registry_target(ModelRegistry.models.get("Eagle3Qwen3ForCausalLM"))
                    == NATIVE_QWEN3_DRAFTER
                    and features.native_qwen3_drafter_keeps_window() is not False)
    return {arch: LLAMA_DRAFTER if kind == "llama"
            else NATIVE_QWEN3_DRAFTER if native_qwen3 else QWEN3_DRAFTER
            for arch, kind in PEAGLE_MODELS.items()}


def peagle_models() -> list[str]:
    """The PEagle architecture names (the draft configs' ``architectures``)."""
    return [arch for arch in PEAGLE_MODELS if arch.lower().startswith("peagle")]


# arch -> the registry entry this plugin made, to tell it from vLLM's own.
_OURS: dict[str, object] = {}


def is_ours(arch: str) -> bool:
    from vllm import ModelRegistry

    entry = ModelRegistry.models.get(arch)
    return entry is not None and entry is _OURS.get(arch)


def apply(force: bool) -> str:
    """Register the names that do not already resolve where they must (lazily:
    ``module:class`` strings, no model import).

    Returns "installed", or "native" when vLLM has them all right and ``force`` is off."""
    from vllm import ModelRegistry

    registered = ModelRegistry.models
    todo = {
        arch: target for arch, target in wanted(force).items()
        if not is_ours(arch) and (force or registry_target(registered.get(arch)) != target)
    }
    if not todo and not any(is_ours(arch) for arch in PEAGLE_MODELS):
        return "native"
    for arch, target in todo.items():
        ModelRegistry.register_model(arch, target)
        _OURS[arch] = registered[arch]
    return "installed"
