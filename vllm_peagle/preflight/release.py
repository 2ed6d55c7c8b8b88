"""Pre-flight, third level (beyond upstream): what the installed vLLM lacks to run
a well-formed PEagle checkpoint, asked of vLLM's own code (the probes of
``vllm_peagle.features``), never of its version string."""

from __future__ import annotations

import os
from typing import Any

from vllm_peagle.preflight.config import Problem, _is_int, aux_inputs
from vllm_peagle.transformers_utils.configs.speculators.algos import update_peagle


def release_problems(config_dict: dict[str, Any],
                     verifier_config: dict[str, Any] | None = None) -> list[Problem]:
    """What the installed vLLM lacks to run this (well-formed) checkpoint.

    Feature probes, never version strings; each problem names what is missing
    and where to get it, and only a definite answer refuses (a probe answers
    None where it cannot tell, ``features.probe``).  A Qwen3 draft needs nothing
    more: where vLLM has no Qwen3 drafter (before 0.24.0), this package
    registers its own."""
    from vllm_peagle import MODE_ENV, features

    problems: list[Problem] = []
    if features.has_parallel_drafting() is False:
        problems.append(Problem(
            "speculators_model_type",
            "is 'peagle', but the installed vLLM has no parallel drafting "
            "(SpeculativeConfig.parallel_drafting). Fix: PEagle needs vLLM >= 0.16; "
            "upgrade vLLM"))
    options = features.eagle3_drafter_options()
    for option, release in features.EAGLE3_DRAFTER_OPTIONS.items():
        if config_dict.get(option) is True and options is not None and option not in options:
            problems.append(Problem(
                option, f"is true, but the installed vLLM's Eagle3 drafter (llama_eagle3.py) "
                f"has no {option} option: the draft would run without it, its greedy "
                f"output still right but its acceptance lower. Fix: use vLLM >= {release}"))
    on_v2_speculator = features.peagle_method_fields()["method"] == features.PEAGLE_METHOD
    if features.has_v1_parallel_drafter() is False and not on_v2_speculator:
        problems.append(Problem(
            "speculators_model_type",
            "is 'peagle', but the installed vLLM has no parallel-drafting runner (vLLM "
            "0.34.0 removed P-EAGLE) and this package's V2 PEagle speculator is not "
            "registered in it (see the vllm-peagle WARNING at start-up). Fix: keep "
            f"{MODE_ENV} unset or 'auto', or use vLLM 0.22.0-0.33.0"))
    problems += _drafter_size_problems(config_dict, verifier_config)
    v2 = os.environ.get("VLLM_USE_V2_MODEL_RUNNER", "").strip().lower()
    if v2 in ("1", "true") and not on_v2_speculator and \
            features.v2_runner_excludes_parallel_drafting() is False:
        problems.append(Problem(
            "VLLM_USE_V2_MODEL_RUNNER",
            f"is {os.environ['VLLM_USE_V2_MODEL_RUNNER']!r}: the installed vLLM lets its V2 "
            "model runner take parallel drafting, where PEagle's acceptance collapses "
            "(vllm-project/vllm#43010; vLLM 0.22.0 refuses the combination). "
            "Fix: unset VLLM_USE_V2_MODEL_RUNNER"))
    for arch in (verifier_config or {}).get("architectures") or []:
        supported = features.eagle3_verifier_support(arch)
        if supported is False:
            problems.append(Problem(
                "speculators_config.verifier.name_or_path",
                f"is a {arch}, which the installed vLLM cannot tap for Eagle3 aux hidden "
                f"states ({arch} does not implement SupportsEagle3 here). Fix: use a vLLM "
                f"release whose {arch} supports Eagle3, or a verifier architecture that does"))
    return problems


def _drafter_size_problems(config_dict: dict[str, Any],
                           verifier_config: dict[str, Any] | None) -> list[Problem]:
    """Whether the installed release's drafter for this checkpoint builds fc
    and mask_hidden for the inputs the checkpoint has (its aux count times the
    target's width): asked of the drafter itself (``features.drafter_input_sizes``);
    an unknown answer refuses nothing."""
    from vllm_peagle import features

    layer = config_dict["transformer_layer_config"]
    hidden = layer.get("hidden_size")
    n_aux, target_hidden = aux_inputs(config_dict, verifier_config)
    if not (_is_int(hidden) and _is_int(target_hidden)):
        return []
    sizes = features.drafter_input_sizes(config_dict, update_peagle)
    if sizes is None:
        return []
    want = n_aux * target_hidden
    fc, mask = sizes
    problems = []
    if fc != want:
        ids = config_dict.get("eagle_aux_hidden_state_layer_ids")
        field = ("eagle_aux_hidden_state_layer_ids" if ids and "num_aux_hidden_states" not in layer
                 else "transformer_layer_config.num_aux_hidden_states")
        value = ids if field == "eagle_aux_hidden_state_layer_ids" else n_aux
        problems.append(Problem(
            field, f"is {value!r}: the checkpoint's fc takes {n_aux} aux hidden states of "
            f"{target_hidden} ({want} inputs), but the installed vLLM's drafter for it builds "
            f"fc for {fc}. Fix: use vLLM >= 0.22.0 (Llama and Qwen3 drafts, seen on "
            "0.22.0 and 0.23.0 on a GPU)"))
    elif mask is not None and mask != want:
        problems.append(Problem(
            "target_hidden_size", f"is {config_dict.get('target_hidden_size')!r}, but the "
            f"installed vLLM's drafter sizes mask_hidden as {mask}, not {n_aux} * "
            f"{target_hidden} = {want}. Fix: use vLLM >= 0.22.0"))
    return problems
