"""Patch for ``vllm/v1/worker/gpu/spec_decode/speculator_config.py`` (vLLM >= 0.34).

Registers the ``peagle`` speculative method through upstream's own door,
``register_speculative_method``, with this package's V2 speculator
(``spec_decode/peagle/``).  Beyond upstream: vLLM 0.34.0 removed P-EAGLE with
its V1 runner, and no release drafts PEagle on the V2 runner.

Registered where the installed vLLM has the door and no V1 proposer that
drafts in parallel (0.34+; ``force``: wherever the door is).  The config class
goes by its qualified name, so nothing of it is imported until vLLM asks.
"""

from __future__ import annotations

from vllm_peagle import features

PEAGLE_CONFIG = "vllm_peagle.v1.worker.gpu.spec_decode.peagle.config.PEagleSpeculatorConfig"


def apply(force: bool) -> str:
    """Register ``peagle``.  Returns "installed", "native" where the release
    still drafts PEagle on its V1 runner (0.16-0.33: nothing to add) or names
    a ``peagle`` method itself, or "unavailable" without the door (< 0.34)."""
    register = features.v2_speculator_door()
    if register is None:
        return "unavailable"
    from vllm.v1.worker.gpu.spec_decode import speculator_config

    if features.PEAGLE_METHOD in speculator_config.registered_speculative_methods():
        return "installed"
    if not force and features.has_v1_parallel_drafter():
        return "native"
    try:
        register(features.PEAGLE_METHOD, PEAGLE_CONFIG)
    except ValueError:  # "'peagle' is a built-in speculative method": vLLM has it
        return "native"
    return "installed"
