"""Patch for ``vllm/transformers_utils/configs/speculators/base.py``.

``SpeculatorsConfig.build_vllm_speculative_config`` turns a speculators
checkpoint into vLLM's speculative config.  Upstream (from vLLM 0.22.0,
vllm-project/vllm#41826) maps ``peagle`` to ``{"method": "eagle3",
"parallel_drafting": True}`` with ``num_speculative_tokens`` from
``proposal_methods[0].speculative_tokens``; older releases pass ``peagle``
through as the method, which ``SpeculativeConfig`` rejects.  This patch adds
that mapping and leaves every other method to vLLM's own code.

Beyond upstream, for PEagle checkpoints only:
- ``validate_speculators_config`` reports every malformed field at once, named,
  instead of "Invalid speculators config structure";
- ``from_pretrained`` on a local draft directory also checks it against its
  verifier and its safetensors headers, so a checkpoint that would fail in a
  worker (e.g. with a shape error) stops in the main process with one line per
  problem.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from vllm_peagle.checkpoint import (
    PEagleCheckpointError,
    describe_source,
    local_verifier_dir,
    peagle_speculative_config,
    raise_for_checkpoint,
)
from vllm_peagle.transformers_utils.configs.speculators.algos import validate_peagle

UPSTREAM_SYMBOL = "vllm.transformers_utils.configs.speculators.base.SpeculatorsConfig"
_PATCHED = "__vllm_peagle_original__"


def build_vllm_speculative_config(cls, config_dict: dict[str, Any]) -> dict[str, Any]:
    """PEagle -> eagle3 with parallel drafting; anything else -> vLLM's own."""
    if config_dict.get("speculators_model_type") != "peagle":
        return _original(cls, "build_vllm_speculative_config")(config_dict)
    validate_peagle(config_dict)
    return peagle_speculative_config(config_dict)


def validate_speculators_config(cls, config_dict: dict[str, Any]) -> None:
    if config_dict.get("speculators_model_type") == "peagle":
        validate_peagle(config_dict)
        # vLLM swaps the model for the verifier next; a missing local verifier
        # would surface as an unrelated "model not found".
        name = config_dict["speculators_config"]["verifier"]["name_or_path"]
        _, problem = local_verifier_dir(name)
        if problem is not None:
            raise PEagleCheckpointError(describe_source(config_dict), [problem])
    return _original(cls, "validate_speculators_config")(config_dict)


def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
    path = os.fspath(pretrained_model_name_or_path)
    if os.path.isdir(path):
        config_dict, _ = cls.get_config_dict(path)
        if config_dict.get("speculators_model_type") == "peagle":
            raise_for_checkpoint(path)
    return _original(cls, "from_pretrained")(pretrained_model_name_or_path, **kwargs)


_PATCHES = {
    "build_vllm_speculative_config": build_vllm_speculative_config,
    "validate_speculators_config": validate_speculators_config,
    "from_pretrained": from_pretrained,
}


def _original(cls, name: str):
    """vLLM's own classmethod, bound to ``cls``."""
    return getattr(cls, _PATCHED)[name].__get__(None, cls)


def has_native_peagle_mapping(config_cls) -> bool:
    """Ask vLLM's own ``build_vllm_speculative_config`` to map a minimal PEagle config."""
    originals = getattr(config_cls, _PATCHED, None)
    build = (originals["build_vllm_speculative_config"].__get__(None, config_cls)
             if originals else config_cls.build_vllm_speculative_config)
    probe = {
        "speculators_model_type": "peagle",
        "speculators_config": {"proposal_methods": [{"speculative_tokens": 2}]},
    }
    try:
        result = build(probe)
    except Exception:
        return False
    return result.get("method") == "eagle3" and result.get("parallel_drafting") is True


def apply(force: bool) -> str:
    """Install the PEagle mapping on ``SpeculatorsConfig``.

    Returns "installed" or "native" (vLLM maps peagle itself and ``force`` is off)."""
    from vllm.transformers_utils.configs.speculators.base import SpeculatorsConfig

    if _PATCHED in SpeculatorsConfig.__dict__:
        return "installed"
    if not force and has_native_peagle_mapping(SpeculatorsConfig):
        return "native"
    # Keep the raw classmethod objects so vLLM's code runs bound to the real class.
    setattr(SpeculatorsConfig, _PATCHED,
            {name: inspect.getattr_static(SpeculatorsConfig, name) for name in _PATCHES})
    for name, fn in _PATCHES.items():
        setattr(SpeculatorsConfig, name, classmethod(fn))
    return "installed"
