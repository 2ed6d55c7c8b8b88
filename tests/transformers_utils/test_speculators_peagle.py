"""Unit tier for the speculators patches: ``update_peagle``, the method mapping
and the error table.  No engine, no registry: plain functions on dicts."""

from __future__ import annotations

import copy

import pytest

from vllm_peagle.checkpoint import PEagleCheckpointError
from vllm_peagle.transformers_utils.configs.speculators.algos import update_peagle
from vllm_peagle.transformers_utils.configs.speculators.base import (
    build_vllm_speculative_config,
)

LLAMA_LAYER = {"model_type": "llama", "hidden_size": 4096, "vocab_size": 128256}


def peagle_config(**overrides) -> dict:
    config = {
        "speculators_model_type": "peagle",
        "speculators_config": {
            "proposal_methods": [{"proposal_type": "greedy", "speculative_tokens": 7}],
            "verifier": {"name_or_path": "meta-llama/Llama-3.1-8B-Instruct"},
        },
        "transformer_layer_config": dict(LLAMA_LAYER),
        "mask_token_id": 128002,
        "draft_vocab_size": 32000,
    }
    config.update(overrides)
    return config


def run_update(config: dict) -> dict:
    pre_trained = config["transformer_layer_config"]
    update_peagle(config_dict=config, pre_trained_config=pre_trained)
    return pre_trained


# (case, checkpoint fields, expected fields of the draft's HF config)
UPDATE_CASES = [
    ("defaults", {},
     {"draft_vocab_size": 32000, "norm_before_residual": False, "norm_before_fc": False,
      "architectures": ["PeagleLlamaForCausalLM"], "pard_token": 128002}),
    ("norm_before_residual kept when the checkpoint says True",
     {"norm_before_residual": True}, {"norm_before_residual": True}),
    ("norm_before_fc explicit", {"norm_before_fc": True}, {"norm_before_fc": True}),
    ("target_hidden_size given", {"target_hidden_size": 5120}, {"target_hidden_size": 5120}),
    ("aux ids passed through", {"eagle_aux_hidden_state_layer_ids": [1, 23, 44]},
     {"eagle_aux_hidden_state_layer_ids": [1, 23, 44]}),
    ("mask token 0 is a valid id", {"mask_token_id": 0}, {"pard_token": 0}),
    ("qwen3 layer", {"transformer_layer_config": {"model_type": "qwen3", "hidden_size": 4096}},
     {"architectures": ["PeagleQwen3ForCausalLM"]}),
    ("model_type absent means llama", {"transformer_layer_config": {"hidden_size": 4096}},
     {"architectures": ["PeagleLlamaForCausalLM"]}),
    ("draft_vocab_size absent", {"draft_vocab_size": None}, {"draft_vocab_size": None}),
]


@pytest.mark.parametrize("case,fields,expected", UPDATE_CASES, ids=[c[0] for c in UPDATE_CASES])
def test_update_peagle(case, fields, expected, monkeypatch):
    # qwen3 needs vLLM's qwen3_eagle3 drafter; the table is about the mapping.
    monkeypatch.setattr("vllm_peagle.features.has_qwen3_eagle3", lambda: True)
    out = run_update(peagle_config(**fields))
    for key, value in expected.items():
        assert out[key] == value, key


def test_update_peagle_leaves_absent_optional_fields_out():
    out = run_update(peagle_config())
    assert "target_hidden_size" not in out
    assert "eagle_aux_hidden_state_layer_ids" not in out
    assert out["hidden_size"] == 4096  # the layer config is kept


def test_qwen3_without_qwen3_eagle3_names_the_release(monkeypatch):
    monkeypatch.setattr("vllm_peagle.features.has_qwen3_eagle3", lambda: False)
    config = peagle_config(transformer_layer_config={"model_type": "qwen3"})
    with pytest.raises(ValueError, match=r"qwen3.*vLLM >= 0\.22\.0"):
        run_update(config)


def test_no_parallel_drafting_says_vllm_016(monkeypatch):
    monkeypatch.setattr("vllm_peagle.features.has_parallel_drafting", lambda: False)
    with pytest.raises(ValueError, match=r"PEagle needs vLLM >= 0\.16"):
        run_update(peagle_config())
    with pytest.raises(ValueError, match=r"PEagle needs vLLM >= 0\.16"):
        build_vllm_speculative_config(object, peagle_config())


# --- method mapping ---

class _FakeSpeculatorsConfig:
    """Stands for vLLM's class: the patch hands non-PEagle methods to the
    original classmethod it saved."""

    @classmethod
    def build_vllm_speculative_config(cls, config_dict):
        return {"method": config_dict["speculators_model_type"],
                "num_speculative_tokens": config_dict["speculators_config"][
                    "proposal_methods"][0]["speculative_tokens"]}


def _patched_fake():
    from vllm_peagle.transformers_utils.configs.speculators import base

    cls = type("Fake", (_FakeSpeculatorsConfig,), {})
    setattr(cls, base._PATCHED, {
        "build_vllm_speculative_config":
            _FakeSpeculatorsConfig.__dict__["build_vllm_speculative_config"]})
    return cls


def test_method_mapping_peagle():
    assert build_vllm_speculative_config(_patched_fake(), peagle_config()) == {
        "method": "eagle3", "parallel_drafting": True, "num_speculative_tokens": 7}


@pytest.mark.parametrize("method", ["eagle3", "dflash"])
def test_method_mapping_other_methods_unchanged(method):
    config = peagle_config(speculators_model_type=method)
    assert build_vllm_speculative_config(_patched_fake(), config) == {
        "method": method, "num_speculative_tokens": 7}


# --- errors: named field, value and fix; ValueError, never KeyError/TypeError ---

ERROR_CASES = [
    ("mask_token_id missing", lambda c: c.pop("mask_token_id"), "mask_token_id", "is missing"),
    ("mask_token_id a string", lambda c: c.update(mask_token_id="3"), "mask_token_id", "'3' (str)"),
    ("mask_token_id a float", lambda c: c.update(mask_token_id=3.0), "mask_token_id", "3.0 (float)"),
    ("mask_token_id negative", lambda c: c.update(mask_token_id=-1), "mask_token_id", "-1 (int)"),
    ("mask_token_id a bool", lambda c: c.update(mask_token_id=True), "mask_token_id", "True (bool)"),
    ("unsupported model_type",
     lambda c: c["transformer_layer_config"].update(model_type="mistral"),
     "transformer_layer_config.model_type", "'mistral'"),
    ("speculative_tokens zero",
     lambda c: c["speculators_config"]["proposal_methods"][0].update(speculative_tokens=0),
     "speculators_config.proposal_methods[0].speculative_tokens", "0 (int)"),
    ("speculative_tokens a string",
     lambda c: c["speculators_config"]["proposal_methods"][0].update(speculative_tokens="7"),
     "speculators_config.proposal_methods[0].speculative_tokens", "'7' (str)"),
    ("no verifier", lambda c: c["speculators_config"].pop("verifier"),
     "speculators_config.verifier.name_or_path", "is missing"),
    ("layer config not a dict", lambda c: c.update(transformer_layer_config=[1]),
     "transformer_layer_config", "[1] (list)"),
]


@pytest.mark.parametrize("case,mutate,field,value", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_update_peagle_errors(case, mutate, field, value):
    config = peagle_config()
    mutate(config)
    before = copy.deepcopy(config)
    with pytest.raises(ValueError) as info:
        update_peagle(config_dict=config, pre_trained_config={})
    assert isinstance(info.value, PEagleCheckpointError)
    message = str(info.value)
    assert f"{field}: " in message
    assert value in message
    assert "Fix:" in message or "must" in message
    # The checkpoint's name is in the message (here: via its verifier).
    assert "meta-llama/Llama-3.1-8B-Instruct" in message or field.startswith("speculators_config.verifier")
    assert config == before  # nothing half-written into the config
