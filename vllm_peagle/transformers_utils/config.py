"""Patch for ``vllm/transformers_utils/config.py``.

``maybe_override_with_speculators`` turns ``LLM(model=<speculators checkpoint>)``
into the verifier plus the checkpoint's speculative config.  Before vLLM 0.29.0
it returns the checkpoint's config and drops the user's ``speculative_config``
without a word, so ``speculative_config={"num_speculative_tokens": 5}`` (or
``vllm serve <ckpt> --speculative-config ...``) runs with the checkpoint's K.
0.29.0 merges the user's fields into the checkpoint's and locks ``method`` and
``model``:

    speculators_method = speculative_config["method"]
    if isinstance(vllm_speculative_config, dict):
        speculative_config.update(vllm_speculative_config)
    speculative_config["method"] = speculators_method
    speculative_config["model"] = model

This patch wraps the release's own function and applies that merge to what it
returns, when it returned a speculators config.  What PEagle adds on top
(``parallel_drafting`` locked, K checked, the ``peagle`` method alias, the
explicit draft path) is pre-flight's, beyond upstream.
"""

from __future__ import annotations

import functools
import inspect
import sys
from typing import Any, Callable

_MERGES = "__vllm_peagle_merges_user_speculative_config__"


def merge_user_speculative_config(speculative_config: dict[str, Any], model: str,
                                  user: Any) -> dict[str, Any]:
    """vLLM 0.29.0's merge: the user's fields over the checkpoint's, then
    ``method`` and ``model`` as the checkpoint dictates."""
    speculators_method = speculative_config["method"]
    if isinstance(user, dict):
        speculative_config.update(user)
    speculative_config["method"] = speculators_method
    speculative_config["model"] = model
    return speculative_config


def wrap(original: Callable) -> Callable:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def maybe_override_with_speculators(*args, **kwargs):
        arguments = signature.bind(*args, **kwargs).arguments
        user = arguments.get("vllm_speculative_config")
        model, tokenizer, speculative_config = original(*args, **kwargs)
        # The release hands the user's dict back untouched when the model is not
        # a speculators checkpoint; anything else is the checkpoint's config.
        if speculative_config is user or not isinstance(user, dict):
            return model, tokenizer, speculative_config
        return model, tokenizer, merge_user_speculative_config(
            speculative_config, arguments["model"], user)

    setattr(maybe_override_with_speculators, _MERGES, True)
    return maybe_override_with_speculators


def install_maybe_override(wrapper_factory: Callable[[Callable], Callable], marker: str) -> None:
    """Wrap ``maybe_override_with_speculators`` once, where vLLM calls it.

    ``vllm.engine.arg_utils`` binds the name at import: rebind it there when it
    is already imported; a later import picks up the wrapped function itself."""
    from vllm.transformers_utils import config as tu_config

    if not getattr(tu_config.maybe_override_with_speculators, marker, False):
        tu_config.maybe_override_with_speculators = wrapper_factory(
            tu_config.maybe_override_with_speculators)
    arg_utils = sys.modules.get("vllm.engine.arg_utils")
    bound = getattr(arg_utils, "maybe_override_with_speculators", None)
    if bound is not None and bound is not tu_config.maybe_override_with_speculators:
        arg_utils.maybe_override_with_speculators = tu_config.maybe_override_with_speculators


def apply(force: bool) -> str:
    """Returns "installed", or "native" when vLLM merges itself and ``force`` is off."""
    from vllm_peagle import features

    if not force and features.speculators_overrides_apply():
        return "native"
    install_maybe_override(wrap, _MERGES)
    return "installed"
