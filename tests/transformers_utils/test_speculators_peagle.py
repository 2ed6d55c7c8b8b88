"""Unit tier for the speculators patches and pre-flight's config checks:
``update_peagle``, the method mapping, the error table, the release checks.
No engine, no registry: plain functions on dicts."""

from __future__ import annotations

import copy

import pytest

from vllm_peagle.preflight import preflight_config
from vllm_peagle.preflight.config import PEagleCheckpointError
from vllm_peagle.preflight.release import release_problems
from vllm_peagle.transformers_utils.configs.speculators import base
from vllm_peagle.transformers_utils.configs.speculators.algos import update_peagle

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
    ("fc_norm and norm_output passed on (beyond upstream)",
     {"fc_norm": True, "norm_output": True}, {"fc_norm": True, "norm_output": True}),
    ("fc_norm and norm_output default False", {}, {"fc_norm": False, "norm_output": False}),
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
def test_update_peagle(case, fields, expected):
    out = run_update(peagle_config(**fields))
    for key, value in expected.items():
        assert out[key] == value, key


def test_update_peagle_is_pure():
    """It reads the checkpoint dict without changing it, writes only into the
    HF-config dict, and asks nothing of the installed vLLM (no probe runs:
    the features module is left unimported by it)."""
    config = peagle_config(eagle_aux_hidden_state_layer_ids=[1, 2, 3])
    before = copy.deepcopy(config)
    layer = {"model_type": "llama", "hidden_size": 64}
    update_peagle(config_dict=config, pre_trained_config=layer)
    assert config == before
    assert layer["pard_token"] == 128002


def test_update_peagle_unsupported_model_type_is_a_value_error():
    # Pre-flight names the field first; the function itself still refuses as upstream's does.
    with pytest.raises(ValueError, match="mistral"):
        update_peagle(config_dict=peagle_config(), pre_trained_config={"model_type": "mistral"})


def test_update_peagle_leaves_absent_optional_fields_out():
    out = run_update(peagle_config())
    assert "target_hidden_size" not in out
    assert "eagle_aux_hidden_state_layer_ids" not in out
    assert out["hidden_size"] == 4096  # the layer config is kept


# --- release checks (pre-flight): what the installed vLLM lacks ---

def test_qwen3_draft_needs_no_native_qwen3_drafter(monkeypatch):
    """Where vLLM has no Qwen3 drafter, the registry sends the Qwen3 names to
    this package's and pre-flight refuses nothing for it."""
    from vllm_peagle.model_executor.models import registry

    for probe, answer in (("has_parallel_drafting", True), ("has_qwen3_eagle3", False),
                          ("eagle3_drafter_options", frozenset()),
                          ("drafter_sizes_aux_inputs", True),
                          ("v2_runner_excludes_parallel_drafting", True)):
        monkeypatch.setattr(f"vllm_peagle.features.{probe}", lambda answer=answer: answer)
    wanted = registry.wanted(force=False)
    assert wanted["PeagleQwen3ForCausalLM"] == registry.QWEN3_DRAFTER
    assert wanted["Eagle3Qwen3ForCausalLM"] == registry.QWEN3_DRAFTER
    qwen3 = peagle_config(transformer_layer_config={"model_type": "qwen3", "hidden_size": 64})
    assert release_problems(qwen3) == []


@pytest.mark.parametrize("supported,problem", [(True, False), (None, False), (False, True)])
def test_verifier_without_eagle3_support(monkeypatch, supported, problem):
    monkeypatch.setattr("vllm_peagle.features.has_parallel_drafting", lambda: True)
    monkeypatch.setattr("vllm_peagle.features.eagle3_verifier_support", lambda arch: supported)
    problems = release_problems(peagle_config(), {"architectures": ["OPTForCausalLM"]})
    assert bool(problems) is problem
    if problem:
        assert problems[0].field == "speculators_config.verifier.name_or_path"
        assert "OPTForCausalLM" in problems[0].message and "SupportsEagle3" in problems[0].message


@pytest.mark.parametrize("option,release", [("norm_before_fc", "0.18.0"),
                                             ("fc_norm", "0.22.0"), ("norm_output", "0.22.0")])
@pytest.mark.parametrize("drafter_has_it", [True, False])
def test_drafter_option_guard(monkeypatch, option, release, drafter_has_it):
    monkeypatch.setattr("vllm_peagle.features.has_parallel_drafting", lambda: True)
    others = {"norm_before_fc", "fc_norm", "norm_output"} - {option}
    monkeypatch.setattr("vllm_peagle.features.eagle3_drafter_options",
                        lambda: frozenset(others | ({option} if drafter_has_it else set())))
    problems = release_problems(peagle_config(**{option: True}))
    if drafter_has_it:
        assert problems == []
    else:
        assert [p.field for p in problems] == [option]
        assert f"Fix: use vLLM >= {release}" in problems[0].message
    # False needs nothing of the drafter.
    assert release_problems(peagle_config(**{option: False})) == []


def _drafter_0_21(config: dict, fallback_update=None) -> tuple[int, int]:
    """How vLLM 0.16-0.21's Llama drafter sizes its inputs (read in the wheels):
    fc for 3 * (target_hidden_size or hidden_size), mask_hidden 3 * hidden_size."""
    hidden = config["transformer_layer_config"]["hidden_size"]
    return 3 * (config.get("target_hidden_size") or hidden), 3 * hidden


def _drafter_0_22(config: dict, fallback_update=None) -> tuple[int, int]:
    """vLLM >= 0.22: both from the aux count and target_hidden_size."""
    from vllm_peagle.preflight.config import expected_num_aux

    layer = config["transformer_layer_config"]
    n = expected_num_aux(config) * (config.get("target_hidden_size") or layer["hidden_size"])
    return n, n


@pytest.mark.parametrize("drafter", [_drafter_0_22, _drafter_0_21])
@pytest.mark.parametrize("fields,field", [
    ({"transformer_layer_config": {"model_type": "llama", "hidden_size": 64,
                                   "num_aux_hidden_states": 2}},
     "transformer_layer_config.num_aux_hidden_states"),
    ({"transformer_layer_config": {"model_type": "llama", "hidden_size": 64},
      "eagle_aux_hidden_state_layer_ids": [1, 2, 3, 4]}, "eagle_aux_hidden_state_layer_ids"),
    ({"transformer_layer_config": {"model_type": "llama", "hidden_size": 64},
      "target_hidden_size": 128}, "target_hidden_size"),
])
def test_drafter_input_size_guard(monkeypatch, drafter, fields, field):
    """Pre-flight refuses exactly where the drafter builds other inputs than the
    checkpoint has, naming the field and 0.22.0; an unknown answer refuses nothing."""
    monkeypatch.setattr("vllm_peagle.features.has_parallel_drafting", lambda: True)
    monkeypatch.setattr("vllm_peagle.features.drafter_input_sizes", drafter)
    problems = release_problems(peagle_config(**fields))
    if drafter is _drafter_0_22:
        assert problems == []
    else:
        assert [p.field for p in problems] == [field]
        assert "Fix: use vLLM >= 0.22.0" in problems[0].message

    def unknown(config, fallback_update=None):
        raise RuntimeError("cannot build the drafter here")

    # The probe itself raising (stood in under its registry entry): unknown.
    from vllm_peagle import features

    monkeypatch.undo()
    monkeypatch.setattr("vllm_peagle.features.has_parallel_drafting", lambda: True)
    monkeypatch.setitem(features.PROBES, "vllm_peagle.features:drafter_input_sizes", unknown)
    assert release_problems(peagle_config(**fields)) == []


@pytest.mark.parametrize("value,excluded,fires", [
    ("1", False, True), ("true", False, True), ("0", False, False), ("1", True, False)])
def test_v2_model_runner_guard(monkeypatch, value, excluded, fires):
    monkeypatch.setattr("vllm_peagle.features.has_parallel_drafting", lambda: True)
    monkeypatch.setattr("vllm_peagle.features.v2_runner_excludes_parallel_drafting",
                        lambda: excluded)
    monkeypatch.setenv("VLLM_USE_V2_MODEL_RUNNER", value)
    problems = release_problems(peagle_config())
    assert [p.field for p in problems] == (["VLLM_USE_V2_MODEL_RUNNER"] if fires else [])


def _built_state(drafter) -> dict:
    """What a built drafter holds: its and its inner model's plain attributes
    and submodule names (the stand-in layers are empty modules)."""
    state = {}
    for prefix, module in (("", drafter), ("model.", getattr(drafter, "model", None))):
        if module is None:
            continue
        for key, value in vars(module).items():
            if key == "_modules":
                state.update({f"{prefix}{k}": type(v).__name__ for k, v in value.items()
                              if k != "model"})
            elif not key.startswith("_") and isinstance(value, (bool, int, float, str, type(None))):
                state[f"{prefix}{key}"] = value
    return state


def test_installed_drafter_options_are_read_from_vllm():
    """The probe's options are those that change what the installed drafter
    builds (set true against left out), asked of the built drafter itself."""
    from vllm_peagle import features

    off = _built_state(features.build_drafter(features._PROBE_CONFIG)["drafter"])
    changes = set()
    for option in features.EAGLE3_DRAFTER_OPTIONS:
        on = features.build_drafter(dict(features._PROBE_CONFIG, **{option: True}))
        if _built_state(on["drafter"]) != off:
            changes.add(option)
    assert features.eagle3_drafter_options() == frozenset(changes)


def test_aux_sizing_probe_matches_the_built_drafter():
    """Independently of the probe: the drafter built for 4 aux hidden states of
    a 16-wide target sizes its fc either for them (64) or as 3 * hidden (24)."""
    from vllm_peagle import features

    built = features.build_drafter(dict(features._PROBE_CONFIG, target_hidden_size=16,
                                        num_aux_hidden_states=4))
    assert built["fc_input_size"] in (64, 48, 24)
    assert features.drafter_sizes_aux_inputs() is (built["fc_input_size"] == 64)


def test_passes_norm_flags_probe():
    from vllm_peagle.transformers_utils.configs.speculators.algos import passes_norm_flags

    def update_upstream(config_dict, pre_trained_config):  # drops them, as 0.22-0.33 do
        pre_trained_config["architectures"] = ["PeagleLlamaForCausalLM"]

    assert passes_norm_flags(update_peagle)
    assert not passes_norm_flags(update_upstream)


def test_routes_qwen3_probe():
    from vllm_peagle.transformers_utils.configs.speculators.algos import routes_qwen3

    def update_0_22(config_dict, pre_trained_config):  # names every draft Llama
        pre_trained_config["architectures"] = ["PeagleLlamaForCausalLM"]
        pre_trained_config["pard_token"] = config_dict["mask_token_id"]

    assert routes_qwen3(update_peagle)
    assert not routes_qwen3(update_0_22)


def test_no_parallel_drafting_says_vllm_016(monkeypatch):
    monkeypatch.setattr("vllm_peagle.features.has_parallel_drafting", lambda: False)
    with pytest.raises(ValueError, match=r"PEagle needs vLLM >= 0\.16"):
        preflight_config("some/peagle", peagle_config())


# --- method mapping: the patch wraps the release's own builder ---

class _Release021SpeculatorsConfig:
    """Stands for vLLM 0.16-0.21's class, whose builder (read in those wheels)
    passes speculators_model_type through as the method, with extra fields that
    the wrapper must keep."""

    @classmethod
    def build_vllm_speculative_config(cls, config_dict):
        return {"method": config_dict["speculators_model_type"],
                "num_speculative_tokens": config_dict["speculators_config"][
                    "proposal_methods"][0]["speculative_tokens"] + cls.k_offset,
                "release_field": "kept"}


def _wrapped_release(k_offset: int = 0):
    """A class patched as ``base.apply`` patches vLLM's."""
    cls = type("Release", (_Release021SpeculatorsConfig,), {"k_offset": k_offset})
    setattr(cls, base._ORIGINAL,
            _Release021SpeculatorsConfig.__dict__["build_vllm_speculative_config"])
    cls.build_vllm_speculative_config = classmethod(base.build_vllm_speculative_config)
    return cls


def test_method_mapping_peagle():
    assert _wrapped_release().build_vllm_speculative_config(peagle_config()) == {
        "method": "eagle3", "parallel_drafting": True, "num_speculative_tokens": 7,
        "release_field": "kept"}


def test_method_mapping_keeps_the_release_k():
    # K is whatever the release's builder chose, not re-derived by the patch.
    out = _wrapped_release(k_offset=1).build_vllm_speculative_config(peagle_config())
    assert out["num_speculative_tokens"] == 8


@pytest.mark.parametrize("method", ["eagle3", "dflash"])
def test_method_mapping_other_methods_unchanged(method):
    config = peagle_config(speculators_model_type=method)
    assert _wrapped_release().build_vllm_speculative_config(config) == {
        "method": method, "num_speculative_tokens": 7, "release_field": "kept"}


class _Release022SpeculatorsConfig:
    """A release that maps PEagle itself."""

    @classmethod
    def build_vllm_speculative_config(cls, config_dict):
        return {"method": "eagle3", "parallel_drafting": True, "num_speculative_tokens": 2}


def test_native_mapping_probe():
    assert base.has_native_peagle_mapping(_Release022SpeculatorsConfig)
    assert not base.has_native_peagle_mapping(_Release021SpeculatorsConfig)
    # It asks the release's own builder, past this package's wrapper.
    assert not base.has_native_peagle_mapping(_wrapped_release())


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
def test_preflight_config_errors(case, mutate, field, value):
    config = peagle_config()
    mutate(config)
    before = copy.deepcopy(config)
    with pytest.raises(ValueError) as info:
        preflight_config("org/peagle-draft", config)
    assert isinstance(info.value, PEagleCheckpointError)
    message = str(info.value)
    assert f"{field}: " in message
    assert value in message
    assert "Fix:" in message or "must" in message
    assert "'org/peagle-draft'" in message  # the checkpoint is named
    assert config == before
