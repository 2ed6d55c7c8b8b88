"""Patch for ``vllm/transformers_utils/configs/speculators/algos.py``.

Adds the ``peagle`` speculators algorithm: ``update_peagle`` rewrites a PEagle
checkpoint's fields into the draft's HF config, the way ``update_eagle3`` does
for Eagle3, plus ``pard_token``, the field vLLM's parallel-drafting proposer
reads the mask token from.  Upstream vLLM has it natively from 0.22.0
(vllm-project/vllm#41826); this version also validates the fields first, so a
bad checkpoint stops with a ``ValueError`` naming the field and the fix instead
of a bare ``KeyError``.
"""

from __future__ import annotations

from vllm_peagle import features
from vllm_peagle.checkpoint import (
    PEAGLE_ARCHITECTURES,
    PEagleCheckpointError,
    Problem,
    config_problems,
    describe_source,
)

# The upstream symbol this module installs into.
UPSTREAM_REGISTRY = "vllm.transformers_utils.configs.speculators.algos.SUPPORTED_SPECULATORS_TYPES"


def require_parallel_drafting(config_dict: dict) -> None:
    if not features.has_parallel_drafting():
        raise PEagleCheckpointError(describe_source(config_dict), [Problem(
            "speculators_model_type",
            "is 'peagle', but the installed vLLM has no parallel drafting "
            "(SpeculativeConfig.parallel_drafting). Fix: PEagle needs vLLM >= 0.16; "
            "upgrade vLLM")])


def validate_peagle(config_dict: dict) -> None:
    """Raise ``PEagleCheckpointError`` (a ``ValueError``) for a malformed config."""
    problems = config_problems(config_dict)
    if problems:
        raise PEagleCheckpointError(describe_source(config_dict), problems)
    require_parallel_drafting(config_dict)
    model_type = config_dict["transformer_layer_config"].get("model_type", "llama")
    if model_type == "qwen3" and not features.has_qwen3_eagle3():
        raise PEagleCheckpointError(describe_source(config_dict), [Problem(
            "transformer_layer_config.model_type",
            "is 'qwen3', but the installed vLLM has no Qwen3 Eagle3 drafter "
            "(vllm/model_executor/models/qwen3_eagle3.py) for PeagleQwen3ForCausalLM "
            "to resolve to. Fix: use vLLM >= 0.22.0 for Qwen3 PEagle drafts")])


def update_peagle(config_dict: dict, pre_trained_config: dict) -> None:
    """Apply PEagle (Parallel EAGLE) specific transformations to the ``dict``
    used to construct the draft's Transformers PreTrainedConfig.

    PEagle specific fields:
    - draft_vocab_size: size of the draft's vocabulary
    - target_hidden_size: hidden size of the target model, when it differs
    - norm_before_residual: default False.  Speculators' PEagle (and Eagle3)
      configs default to False and PEagle checkpoints are trained so, while
      upstream's ``update_eagle3`` defaults to True; a checkpoint that omits the
      field must not get the Eagle3 default.
    - norm_before_fc: RMSNorm before the fc projection, default False
    - eagle_aux_hidden_state_layer_ids: verifier layers whose hidden states feed
      the draft, passed through
    - mask_token_id (required): the token placed at draft depths 2..K, written
      as ``pard_token`` for the parallel-drafting proposer
    - architectures: chosen from ``transformer_layer_config.model_type``
    """
    validate_peagle(config_dict)
    pre_trained_config["draft_vocab_size"] = config_dict.get("draft_vocab_size")
    if config_dict.get("target_hidden_size") is not None:
        pre_trained_config["target_hidden_size"] = config_dict["target_hidden_size"]
    pre_trained_config["norm_before_residual"] = config_dict.get("norm_before_residual", False)
    pre_trained_config["norm_before_fc"] = config_dict.get("norm_before_fc", False)
    model_type = pre_trained_config.get("model_type", "llama")
    pre_trained_config["architectures"] = [PEAGLE_ARCHITECTURES[model_type]]
    pre_trained_config["pard_token"] = config_dict["mask_token_id"]
    if config_dict.get("eagle_aux_hidden_state_layer_ids"):
        pre_trained_config["eagle_aux_hidden_state_layer_ids"] = config_dict[
            "eagle_aux_hidden_state_layer_ids"
        ]


def apply(force: bool) -> str:
    """Install ``update_peagle`` as vLLM's ``peagle`` algorithm.

    Returns "installed" or "native" (vLLM has one and ``force`` is off)."""
    from vllm.transformers_utils.configs.speculators import algos

    current = algos.SUPPORTED_SPECULATORS_TYPES.get("peagle")
    if current is update_peagle:
        return "installed"
    if current is not None and not force:
        return "native"
    # base.py binds the same dict object by name, so one assignment reaches both.
    algos.SUPPORTED_SPECULATORS_TYPES["peagle"] = update_peagle
    return "installed"
