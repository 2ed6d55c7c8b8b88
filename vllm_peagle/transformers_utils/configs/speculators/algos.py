"""Patch for ``vllm/transformers_utils/configs/speculators/algos.py``.

Adds the ``peagle`` speculators algorithm: ``update_peagle`` rewrites a PEagle
checkpoint's fields into the dict the draft's Transformers config is built
from, as ``update_eagle3`` does for Eagle3, plus ``pard_token``, the field vLLM's
parallel-drafting proposer reads the mask token from.  Upstream vLLM has it
natively from 0.22.0 (vllm-project/vllm#41826); this is the same function,
registered the same way (``register_speculator("peagle")``).

vLLM 0.22 and 0.23 have a native ``update_peagle`` that names every draft
``PeagleLlamaForCausalLM``; ``auto`` replaces it where a probe finds that a
qwen3-arch draft does not get ``PeagleQwen3ForCausalLM`` (upstream's choice by
``model_type`` arrived in 0.24.0, vllm-project/vllm#43132).

Beyond upstream: ``fc_norm`` and ``norm_output`` are passed on, as upstream's
``update_eagle3`` does and its ``update_peagle`` (through 0.33) does not; ``auto``
installs this fix over a native function that drops them (a probe asks it).  And
``num_aux_hidden_states`` is the count of ``eagle_aux_hidden_state_layer_ids``
where the layer config does not set it, so that a Llama draft with other than 3
aux layers gets an fc of its own size (vLLM >= 0.22's drafter reads it).

Like upstream's, ``update_peagle`` is a pure function of its two dicts: it
assumes a well-formed checkpoint.  Malformed ones and releases that cannot run
them are stopped earlier, by ``vllm_peagle.preflight`` (beyond upstream).
"""

from __future__ import annotations

from vllm_peagle.features import probe

# transformer_layer_config.model_type -> the draft architecture vLLM resolves.
PEAGLE_ARCHITECTURES = {
    "qwen3": "PeagleQwen3ForCausalLM",
    "llama": "PeagleLlamaForCausalLM",
}


def update_peagle(config_dict: dict, pre_trained_config: dict) -> None:
    """Apply PEagle (Parallel Eagle) specific configuration transformations to
    the `dict` used to construct the Transformers PreTrainedConfig.

    PEagle specific fields:
    - draft_vocab_size: Size of the draft model's vocabulary
    - target_hidden_size: Hidden size of the target model
    - norm_before_residual: Whether to apply norm before residual connection,
      default False as speculators trains PEagle (update_eagle3 defaults to True)
    - norm_before_fc: Whether to apply RMSNorm before the fc projection
    - fc_norm, norm_output: passed on as update_eagle3 does (upstream's
      update_peagle drops them; a fix beyond upstream)
    - mask_token_id (required): Token ID used for parallel drafting mask
      placeholders, mapped to pard_token for the proposer
    - eagle_aux_hidden_state_layer_ids: Layer indices from the target model
      whose intermediate hidden states are used as auxiliary inputs; their count
      as num_aux_hidden_states unless the layer config sets it (beyond upstream:
      the Llama drafter sizes fc from that, not from the ids)
    - architectures: chosen by transformer_layer_config.model_type
    """
    pre_trained_config["draft_vocab_size"] = config_dict.get("draft_vocab_size")
    if config_dict.get("target_hidden_size") is not None:
        pre_trained_config["target_hidden_size"] = config_dict["target_hidden_size"]
    pre_trained_config["norm_before_residual"] = config_dict.get("norm_before_residual", False)
    pre_trained_config["norm_before_fc"] = config_dict.get("norm_before_fc", False)
    # Beyond upstream (through 0.33 its update_peagle drops these two, which its
    # update_eagle3 passes on): a draft trained with them would run without.
    pre_trained_config["fc_norm"] = config_dict.get("fc_norm", False)
    pre_trained_config["norm_output"] = config_dict.get("norm_output", False)
    model_type = pre_trained_config.get("model_type", "llama")
    if model_type not in PEAGLE_ARCHITECTURES:
        raise ValueError(f"Unsupported model_type {model_type} for PEagle speculator")
    pre_trained_config["architectures"] = [PEAGLE_ARCHITECTURES[model_type]]
    pre_trained_config["pard_token"] = config_dict["mask_token_id"]
    if config_dict.get("eagle_aux_hidden_state_layer_ids"):
        pre_trained_config["eagle_aux_hidden_state_layer_ids"] = config_dict[
            "eagle_aux_hidden_state_layer_ids"
        ]
        # Beyond upstream: vLLM's Llama drafter sizes fc from num_aux_hidden_states
        # (or 3), not from these ids, which speculators writes (with an fc to
        # match) for any tap count; its Qwen3 drafter counts the ids itself.
        pre_trained_config.setdefault(
            "num_aux_hidden_states", len(config_dict["eagle_aux_hidden_state_layer_ids"]))


def _probe(update, config_dict: dict, layer: dict) -> dict | None:
    """What an ``update_peagle`` writes into ``layer`` for ``config_dict``, or
    None if it cannot take it (a release's function)."""
    try:
        update(config_dict=config_dict, pre_trained_config=layer)
    except Exception:  # noqa: BLE001 - any failure means "does not do it"
        return None
    return layer


@probe
def routes_qwen3(update) -> bool:
    """Whether an ``update_peagle`` gives a qwen3-arch draft the Qwen3 name
    (0.22 and 0.23's name every PEagle draft as Llama)."""
    layer = _probe(update, {"mask_token_id": 0, "speculators_config": {}},
                   {"model_type": "qwen3"})
    return layer is not None and layer.get("architectures") == [PEAGLE_ARCHITECTURES["qwen3"]]


@probe
def passes_norm_flags(update) -> bool:
    """Whether an ``update_peagle`` passes ``fc_norm`` and ``norm_output`` on."""
    layer = _probe(update, {"mask_token_id": 0, "speculators_config": {}, "fc_norm": True,
                            "norm_output": True}, {"model_type": "llama"})
    return layer is not None and layer.get("fc_norm") is True and layer.get("norm_output") is True


def apply(force: bool) -> str:
    """Register ``update_peagle`` as vLLM's ``peagle`` algorithm.

    Returns "installed", or "native" when vLLM has one that routes qwen3 drafts
    and passes the norm flags on, and ``force`` is off."""
    from vllm.transformers_utils.configs.speculators import algos

    current = algos.SUPPORTED_SPECULATORS_TYPES.get("peagle")
    if current is update_peagle:
        return "installed"
    if (current is not None and not force and routes_qwen3(current)
            and passes_norm_flags(current)):
        return "native"
    # register_speculator writes into SUPPORTED_SPECULATORS_TYPES, the dict
    # base.py imported by name, so one registration reaches both.
    algos.register_speculator("peagle")(update_peagle)
    return "installed"
