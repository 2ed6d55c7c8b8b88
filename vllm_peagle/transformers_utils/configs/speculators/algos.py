"""Patch for ``vllm/transformers_utils/configs/speculators/algos.py``.

Adds the ``peagle`` speculators algorithm: ``update_peagle`` rewrites a PEagle
checkpoint's fields into the dict the draft's Transformers config is built
from, as ``update_eagle3`` does for Eagle3, plus ``pard_token``, the field vLLM's
parallel-drafting proposer reads the mask token from.  Upstream vLLM has it
natively from 0.22.0 (vllm-project/vllm#41826); this is the same function,
registered the same way (``register_speculator("peagle")``).

Like upstream's, ``update_peagle`` is a pure function of its two dicts: it
assumes a well-formed checkpoint.  Malformed ones and releases that cannot run
them are stopped earlier, by ``vllm_peagle.preflight`` (beyond upstream).
"""

from __future__ import annotations

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
    - mask_token_id (required): Token ID used for parallel drafting mask
      placeholders, mapped to pard_token for the proposer
    - eagle_aux_hidden_state_layer_ids: Layer indices from the target model
      whose intermediate hidden states are used as auxiliary inputs
    - architectures: chosen by transformer_layer_config.model_type
    """
    pre_trained_config["draft_vocab_size"] = config_dict.get("draft_vocab_size")
    if config_dict.get("target_hidden_size") is not None:
        pre_trained_config["target_hidden_size"] = config_dict["target_hidden_size"]
    pre_trained_config["norm_before_residual"] = config_dict.get("norm_before_residual", False)
    pre_trained_config["norm_before_fc"] = config_dict.get("norm_before_fc", False)
    model_type = pre_trained_config.get("model_type", "llama")
    if model_type not in PEAGLE_ARCHITECTURES:
        raise ValueError(f"Unsupported model_type {model_type} for PEagle speculator")
    pre_trained_config["architectures"] = [PEAGLE_ARCHITECTURES[model_type]]
    pre_trained_config["pard_token"] = config_dict["mask_token_id"]
    if config_dict.get("eagle_aux_hidden_state_layer_ids"):
        pre_trained_config["eagle_aux_hidden_state_layer_ids"] = config_dict[
            "eagle_aux_hidden_state_layer_ids"
        ]


def apply(force: bool) -> str:
    """Register ``update_peagle`` as vLLM's ``peagle`` algorithm.

    Returns "installed", or "native" when vLLM has one and ``force`` is off."""
    from vllm.transformers_utils.configs.speculators import algos

    current = algos.SUPPORTED_SPECULATORS_TYPES.get("peagle")
    if current is update_peagle:
        return "installed"
    if current is not None and not force:
        return "native"
    # register_speculator writes into SUPPORTED_SPECULATORS_TYPES, the dict
    # base.py imported by name, so one registration reaches both.
    algos.register_speculator("peagle")(update_peagle)
    return "installed"
