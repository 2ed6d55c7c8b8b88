"""Feature probes: ask the installed vLLM what it has, never its version string.

Each probe imports only what it inspects and is cached, because vLLM calls the
plugin's ``register()`` in every process and the probes run from there.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os


def vllm_module_exists(dotted: str) -> bool:
    """True when ``vllm.<dotted>`` is a module file of the installed vLLM.

    Looks at the files only, so probing ``model_executor.models.qwen3_eagle3``
    does not import vLLM's model package (and with it torch).
    """
    spec = importlib.util.find_spec("vllm")
    if spec is None or not spec.submodule_search_locations:
        return False
    parts = dotted.split(".")
    for root in spec.submodule_search_locations:
        base = os.path.join(root, *parts)
        if os.path.isfile(base + ".py") or os.path.isfile(
            os.path.join(base, "__init__.py")
        ):
            return True
    return False


@functools.cache
def has_parallel_drafting() -> bool:
    """vLLM >= 0.16: ``SpeculativeConfig`` has the ``parallel_drafting`` field
    that PEagle's one-pass drafting runs on."""
    from vllm.config import SpeculativeConfig

    if dataclasses.is_dataclass(SpeculativeConfig):
        return any(f.name == "parallel_drafting" for f in dataclasses.fields(SpeculativeConfig))
    return hasattr(SpeculativeConfig, "parallel_drafting")


# Draft-config options of the Llama Eagle3 drafter, and the first release whose
# llama_eagle3.py reads each (read in the released wheels).
EAGLE3_DRAFTER_OPTIONS = {"norm_before_fc": "0.18.0", "fc_norm": "0.22.0",
                          "norm_output": "0.22.0"}


@functools.cache
def vllm_source(relpath: str) -> str:
    """The text of ``vllm/<relpath>`` in the installed vLLM ('' if absent);
    reads the file, imports nothing."""
    spec = importlib.util.find_spec("vllm")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(root, relpath)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                return f.read()
    return ""


def eagle3_drafter_options() -> frozenset[str]:
    """The options of ``EAGLE3_DRAFTER_OPTIONS`` that the installed
    ``llama_eagle3.py`` reads from the draft config (this package's Qwen3
    drafter builds on it, so it reads the same)."""
    text = vllm_source("model_executor/models/llama_eagle3.py")
    return frozenset(o for o in EAGLE3_DRAFTER_OPTIONS if f'"{o}"' in text)


def drafter_sizes_aux_inputs() -> bool:
    """vLLM >= 0.22: the Eagle3 drafter sizes ``mask_hidden`` (and ``fc``) from
    the aux count and ``target_hidden_size``; 0.16-0.21 use 3 * hidden_size."""
    return "self.model.fc_input_size" in vllm_source("model_executor/models/llama_eagle3.py")


def v2_runner_excludes_parallel_drafting() -> bool:
    """vLLM >= 0.22 keeps parallel drafting off its V2 model runner, where
    PEagle's acceptance collapsed (vllm-project/vllm#43010)."""
    return "EagleSpeculator does not support parallel_drafting" in vllm_source("config/vllm.py")


def eagle3_verifier_support(arch: str) -> bool | None:
    """Whether the installed vLLM's model class for ``arch`` can hand Eagle3
    drafts its aux hidden states (``SupportsEagle3``); None if vLLM does not
    know the architecture (vLLM reports that itself)."""
    from vllm import ModelRegistry
    from vllm.model_executor.models.interfaces import supports_eagle3

    # The registry's loader for one name (imports that model's module only).
    cls = ModelRegistry._try_load_model_cls(arch)
    return None if cls is None else bool(supports_eagle3(cls))


def has_qwen3_eagle3() -> bool:
    """The Qwen3 Eagle3 drafter that ``PeagleQwen3ForCausalLM`` resolves to."""
    return vllm_module_exists("model_executor.models.qwen3_eagle3")


def speculators_overrides_apply() -> bool:
    """Whether vLLM merges a user's ``speculative_config`` into the one read
    from a speculators checkpoint (e.g. to override ``num_speculative_tokens``).

    Older releases replace the user's dict with the checkpoint's; the probe reads
    ``maybe_override_with_speculators`` for the merge.
    """
    import inspect

    from vllm.transformers_utils import config as tu_config

    fn = getattr(tu_config, "maybe_override_with_speculators", None)
    if fn is None:
        return False
    # The release's own function, under whatever this plugin wrapped around it.
    while hasattr(fn, "__wrapped__"):
        fn = fn.__wrapped__
    return ".update(vllm_speculative_config)" in inspect.getsource(fn)
