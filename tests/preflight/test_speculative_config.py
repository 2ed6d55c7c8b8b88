"""A user's speculative_config with a PEagle draft: the pure checks (unit), the
0.29-style merge over a release that drops the user's dict (unit, stand-in
function), and ``EngineArgs`` on the installed vLLM in ``auto`` and ``force``
(config level: K override, explicit draft, the ``peagle`` alias, bad overrides)."""

from __future__ import annotations

import json
import os

import pytest

from tests.engine_config import cases_of
from vllm_peagle.preflight import speculative_config as sc
from vllm_peagle.transformers_utils import config as config_patch


def peagle(k: int = 3) -> dict:
    return {"speculators_model_type": "peagle", "mask_token_id": 3,
            "speculators_config": {"proposal_methods": [{"speculative_tokens": k}],
                                   "verifier": {"name_or_path": "/v"}},
            "transformer_layer_config": {"model_type": "llama"}}


# --- the checkpoint as the model: which user fields vLLM merges ---

@pytest.mark.parametrize("user,merged", [
    (None, None),
    ({"num_speculative_tokens": 2}, {"num_speculative_tokens": 2}),
    ({"num_speculative_tokens": 5, "method": "peagle", "parallel_drafting": True},
     {"num_speculative_tokens": 5}),
    ({"method": "eagle3", "model": "/ckpt", "attention_backend": "TRITON_ATTN"},
     {"attention_backend": "TRITON_ATTN"}),
])
def test_for_checkpoint_merges_user_fields(user, merged):
    out = sc.for_checkpoint("'/ckpt'", peagle(), "/ckpt", user)
    assert out.speculative_config == merged
    if merged:
        assert any("applied user speculative_config fields" in line for line in out.info)


def test_for_checkpoint_k_above_the_checkpoint_warns():
    out = sc.for_checkpoint("'/ckpt'", peagle(k=3), "/ckpt", {"num_speculative_tokens": 7})
    assert out.speculative_config == {"num_speculative_tokens": 7}
    assert len(out.warnings) == 1 and "more than the 3 draft tokens" in out.warnings[0]
    assert not sc.for_checkpoint("'/ckpt'", peagle(k=3), "/ckpt",
                                 {"num_speculative_tokens": 3}).warnings


BAD = [
    ({"num_speculative_tokens": 0}, "speculative_config.num_speculative_tokens", "is 0 (int)"),
    ({"num_speculative_tokens": "3"}, "speculative_config.num_speculative_tokens", "is '3' (str)"),
    ({"num_speculative_tokens": True}, "speculative_config.num_speculative_tokens", "True (bool)"),
    ({"method": "draft_model"}, "speculative_config.method", "'draft_model'"),
    ({"method": "ngram"}, "speculative_config.method", "'ngram'"),
    ({"parallel_drafting": False}, "speculative_config.parallel_drafting", "is False"),
    ({"model": "/other"}, "speculative_config.model", "'/other'"),
]


@pytest.mark.parametrize("user,field,value", BAD, ids=[f"{b[1]}={b[2]}" for b in BAD])
def test_for_checkpoint_bad_fields(user, field, value):
    with pytest.raises(ValueError) as info:
        sc.for_checkpoint("'/ckpt'", peagle(), "/ckpt", user)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"'/ckpt': {field}: ") and value in message
    assert "Fix:" in message


# --- the draft given explicitly ---

@pytest.mark.parametrize("user,expected,info", [
    ({"model": "/d", "method": "eagle3", "parallel_drafting": True, "num_speculative_tokens": 2},
     {"method": "eagle3", "parallel_drafting": True, "num_speculative_tokens": 2}, []),
    ({"model": "/d", "method": "peagle", "num_speculative_tokens": 4},
     {"method": "eagle3", "parallel_drafting": True, "num_speculative_tokens": 4},
     ["method 'peagle'", "parallel_drafting turned on"]),
    ({"model": "/d"}, {"method": "eagle3", "parallel_drafting": True, "num_speculative_tokens": 3},
     ["method not given", "parallel_drafting turned on", "using the checkpoint's 3"]),
])
def test_for_explicit_draft(user, expected, info):
    out = sc.for_explicit_draft("'/d'", peagle(k=3), user)
    assert {k: out.speculative_config[k] for k in expected} == expected
    assert out.speculative_config["model"] == "/d"
    for part in info:
        assert any(part in line for line in out.info), (part, out.info)
    assert len(out.info) == len(info)


@pytest.mark.parametrize("user,field", [
    ({"model": "/d", "method": "eagle3", "parallel_drafting": False}, "parallel_drafting"),
    ({"model": "/d", "method": "medusa"}, "method"),
    ({"model": "/d", "num_speculative_tokens": -1}, "num_speculative_tokens"),
])
def test_for_explicit_draft_bad_fields(user, field):
    with pytest.raises(sc.SpeculativeConfigError) as info:
        sc.for_explicit_draft("'/d'", peagle(), user)
    assert info.value.field == f"speculative_config.{field}"


# --- the 0.29 merge over a release that drops the user's dict ---

def _release_021(model, tokenizer, trust_remote_code, revision=None,
                 vllm_speculative_config=None, hf_token=None, **kwargs):
    """As vLLM 0.16-0.28 does: a speculators checkpoint's config replaces the user's."""
    if model != "/ckpt":
        return model, tokenizer, vllm_speculative_config
    return "/verifier", "/verifier", {"method": "eagle3", "parallel_drafting": True,
                                      "num_speculative_tokens": 3, "model": model}


def test_merge_over_a_release_that_drops_the_user_config():
    wrapped = config_patch.wrap(_release_021)
    user = {"num_speculative_tokens": 5, "method": "ngram", "model": "/elsewhere"}
    model, tokenizer, spec = wrapped(model="/ckpt", tokenizer=None, trust_remote_code=False,
                                     vllm_speculative_config=user)
    assert (model, tokenizer) == ("/verifier", "/verifier")
    # The user's K is applied; method and model stay the checkpoint's (0.29's locks).
    assert spec == {"method": "eagle3", "parallel_drafting": True,
                    "num_speculative_tokens": 5, "model": "/ckpt"}
    # Unwrapped, the release drops it: the patch is what applies it.
    assert _release_021("/ckpt", None, False, vllm_speculative_config=user)[2][
        "num_speculative_tokens"] == 3


def test_merge_leaves_other_models_alone():
    wrapped = config_patch.wrap(_release_021)
    user = {"model": "/draft", "method": "eagle3", "num_speculative_tokens": 2}
    assert wrapped("/plain-model", None, False, None, user)[2] is user
    assert wrapped("/ckpt", None, False)[2]["num_speculative_tokens"] == 3


# --- EngineArgs on the installed vLLM ---

def _cases(tiny: dict) -> list[dict]:
    p, t = tiny["peagle"], tiny["target"]
    return [
        {"model": p, "speculative_config": {"num_speculative_tokens": 5}},
        {"model": p, "speculative_config": {"num_speculative_tokens": 2, "method": "peagle"}},
        {"model": t, "speculative_config": {"model": p, "method": "eagle3",
                                            "parallel_drafting": True,
                                            "num_speculative_tokens": 4}},
        {"model": t, "speculative_config": {"model": p, "method": "peagle",
                                            "num_speculative_tokens": 4}},
        {"model": t, "speculative_config": {"model": p}},
        {"model": p, "speculative_config": {"num_speculative_tokens": 0}},
        {"model": p, "speculative_config": {"num_speculative_tokens": "3"}},
        {"model": p, "speculative_config": {"method": "ngram"}},
        {"model": p, "speculative_config": {"parallel_drafting": False}},
        {"model": t, "speculative_config": {"model": p, "method": "eagle3",
                                            "parallel_drafting": False,
                                            "num_speculative_tokens": 3}},
        # No method, a K: vLLM 0.28 alone resolves this as draft_model without
        # parallel drafting (which then fails in the drafter).
        {"model": t, "speculative_config": {"model": p, "num_speculative_tokens": 3}},
    ]


def config_cases(tiny: dict, tmp: str) -> list[tuple[dict, tuple[str, ...]]]:
    return [(case, ("auto", "force")) for case in _cases(tiny)]


@pytest.fixture(scope="module")
def resolved(engine_configs) -> dict[str, list[dict]]:
    return cases_of(engine_configs, "speculative_config")


MODES = ["auto", "force"]


@pytest.mark.engine
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("index,k", [(0, 5), (1, 2)])
def test_k_override_with_the_checkpoint(resolved, tiny_models, mode, index, k):
    got = resolved[mode][index]
    spec = got["speculative_config"]
    assert (spec["method"], spec["parallel_drafting"], spec["num_speculative_tokens"]) == (
        "eagle3", True, k), got
    assert spec["draft_model"] == tiny_models["peagle"]
    assert spec["target_model"] == tiny_models["target"]
    assert any("applied user speculative_config fields num_speculative_tokens" in line
               for line in got["log"]), got["log"]
    if k > 3:
        assert any(line.startswith("WARNING") and "more than the 3" in line
                   for line in got["log"]), got["log"]


@pytest.mark.engine
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("index,k", [(2, 4), (3, 4), (4, 3), (10, 3)])
def test_explicit_draft(resolved, tiny_models, mode, index, k):
    got = resolved[mode][index]
    spec = got["speculative_config"]
    assert (spec["method"], spec["parallel_drafting"], spec["num_speculative_tokens"]) == (
        "eagle3", True, k), got
    assert spec["draft_model"] == tiny_models["peagle"]
    with open(os.path.join(tiny_models["peagle"], "config.json")) as f:
        assert spec["pard_token"] == json.load(f)["mask_token_id"]


@pytest.mark.engine
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("index,field", [
    (5, "num_speculative_tokens"), (6, "num_speculative_tokens"), (7, "method"),
    (8, "parallel_drafting"), (9, "parallel_drafting")])
def test_bad_overrides_one_line(resolved, mode, index, field):
    error = resolved[mode][index].get("error")
    assert error is not None, resolved[mode][index]
    assert "ValueError" in error["mro"]
    assert "\n" not in error["message"]
    assert f"speculative_config.{field}: " in error["message"]
