"""Patch for ``vllm/transformers_utils/configs/speculators/base.py``.

Upstream's whole change here (vLLM 0.22.0, vllm-project/vllm#41826) is two lines
at the end of ``SpeculatorsConfig.build_vllm_speculative_config``: after vLLM's
builder has made the dict,

    if result["method"] == "peagle":
        result.update({"method": "eagle3", "parallel_drafting": True})

vLLM 0.16-0.21's builder already makes a dict for a PEagle config (read in the
0.16.0 and 0.21.0 wheels): ``{"method": "peagle", "num_speculative_tokens": K}``
from ``speculators_model_type`` and ``proposal_methods[0].speculative_tokens``,
which ``SpeculativeConfig`` then rejects (``method`` has no ``peagle``).  So
this patch wraps vLLM's own builder and applies those two lines to its result;
K, and everything else, stays vLLM's.

vLLM 0.34.0 removed P-EAGLE: its builder raises for ``peagle``, and
``SpeculativeConfig`` refuses ``parallel_drafting`` for eagle3.  There the
builder is asked for the Eagle3 config the draft is, and it stays eagle3: vLLM
0.34 takes a speculators checkpoint's method as the base of the custom method
the user's dict names, ``peagle``, which this package registers for its V2
speculator and pre-flight adds (beyond upstream).
"""

from __future__ import annotations

import inspect
from typing import Any

from vllm_peagle import features

# Where the wrapped class keeps vLLM's own classmethod.
_ORIGINAL = "__vllm_peagle_original_build_vllm_speculative_config__"


def build_vllm_speculative_config(cls, config_dict: dict[str, Any]) -> dict[str, Any]:
    # vLLM's own builder, bound to the class that is being asked.
    build = getattr(cls, _ORIGINAL)
    if config_dict.get("speculators_model_type") != "peagle":
        return build(config_dict)
    # Built as the Eagle3 config it is (0.34's builder refuses "peagle"; before
    # 0.22 it only names the method after it), then named as PEagle runs here.
    result = build({**config_dict, "speculators_model_type": "eagle3"})
    fields = features.peagle_method_fields()
    # Where PEagle is a method of its own (0.34+), vLLM wants the checkpoint's
    # method to be the one it is based on; the user's dict picks "peagle"
    # (pre-flight's for_checkpoint).
    if fields["method"] != features.PEAGLE_METHOD:
        result.update(fields)
    return result


@features.probe
def has_native_peagle_mapping(config_cls) -> bool:
    """Ask vLLM's own builder to map a minimal PEagle config."""
    original = config_cls.__dict__.get(_ORIGINAL)
    build = (original.__get__(None, config_cls) if original is not None
             else config_cls.build_vllm_speculative_config)
    probe = {
        "speculators_model_type": "peagle",
        "speculators_config": {"proposal_methods": [{"speculative_tokens": 2}]},
    }
    try:
        result = build(probe)
    except Exception:  # a release whose builder cannot map it at all
        return False
    return result.get("method") == "eagle3" and result.get("parallel_drafting") is True


def apply(force: bool) -> str:
    """Wrap ``SpeculatorsConfig.build_vllm_speculative_config``.

    Returns "installed", or "native" when vLLM maps peagle itself and ``force`` is off."""
    from vllm.transformers_utils.configs.speculators.base import SpeculatorsConfig

    if _ORIGINAL in SpeculatorsConfig.__dict__:
        return "installed"
    if not force and has_native_peagle_mapping(SpeculatorsConfig):
        return "native"
    # The raw classmethod object, so vLLM's code runs bound to the real class.
    setattr(SpeculatorsConfig, _ORIGINAL,
            inspect.getattr_static(SpeculatorsConfig, "build_vllm_speculative_config"))
    SpeculatorsConfig.build_vllm_speculative_config = classmethod(build_vllm_speculative_config)
    return "installed"
