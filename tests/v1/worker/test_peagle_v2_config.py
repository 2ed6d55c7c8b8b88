"""PEagle drafts given explicitly, at config level, on the installed vLLM:
drafted in parallel in ``auto`` on every release (0.16-0.33: Eagle3 with
``parallel_drafting``; 0.34+: this package's ``peagle`` method on the V2
runner, registered through ``register_speculative_method``), and in ``off``
whatever vLLM alone does (0.34: its own refusal).

vLLM 0.34 has no CPU build: its matrix venv holds the CUDA wheel, read with
``VLLM_TARGET_DEVICE=cpu`` (tests/README.md).
"""

from __future__ import annotations

import json
import os

import pytest

from tests.engine_config import cases_of

pytestmark = pytest.mark.engine


def _door() -> bool:
    from vllm_peagle import features

    return features.v2_speculator_door() is not None


def config_cases(tiny: dict[str, str], tmp: str) -> list[tuple[dict, tuple[str, ...]]]:
    both = ("auto", "off")
    return [
        # 0: the Llama draft, nothing but the model.
        ({"model": tiny["target"], "speculative_config": {"model": tiny["peagle"]}}, both),
        # 1: the Qwen3 draft with a user's K.
        ({"model": tiny["qwen3-target"],
          "speculative_config": {"model": tiny["qwen3-peagle"], "num_speculative_tokens": 2}},
         both),
        # 2: as a P-EAGLE card in vLLM's native format says (eagle3 + parallel_drafting).
        ({"model": tiny["target"], "speculative_config": {
            "model": tiny["peagle"], "method": "eagle3", "parallel_drafting": True}}, both),
    ]


@pytest.fixture(scope="module")
def v2(engine_configs):
    return cases_of(engine_configs, "v2")


def _checkpoint(path: str) -> dict:
    with open(os.path.join(path, "config.json")) as f:
        return json.load(f)


@pytest.mark.parametrize("case,draft,k", [(0, "peagle", None), (1, "qwen3-peagle", 2),
                                          (2, "peagle", None)])
def test_auto_drafts_in_parallel(v2, tiny_models, case, draft, k):
    checkpoint = _checkpoint(tiny_models[draft])
    k = k or checkpoint["speculators_config"]["proposal_methods"][0]["speculative_tokens"]
    entry = v2["auto"][case]
    assert "error" not in entry, entry.get("error")
    sc = entry["speculative_config"]
    assert sc["parallel_drafting"] is True
    assert sc["num_speculative_tokens"] == k
    assert sc["method"] == "eagle3"
    assert sc["pard_token"] == checkpoint["mask_token_id"]
    if _door():
        # 0.34+: the plugin's method on the V2 runner; each request's draft
        # pass adds K - 1 mask tokens, which the scheduler budgets for.
        assert sc["custom_method"] == "peagle"
        assert sc["draft_slots"] == k - 1
    else:
        assert sc["custom_method"] is None


def test_off_is_vllm_alone(v2):
    if not _door():
        pytest.skip("vLLM < 0.34: off is vLLM's own parallel drafting (test_register)")
    off = v2["off"]
    # 0.34 removed P-EAGLE: its own errors, untouched.
    for case in off:
        assert "ValueError" in case["error"]["mro"]  # pydantic's ValidationError is one
        assert "P-EAGLE (parallel drafting EAGLE-3) is not supported" in case["error"]["message"]


def test_registered_once_where_vllm_has_the_door(states):
    auto = states["auto"]
    if not _door():
        assert auto["register_1"]["peagle_speculator"] in ("unavailable", "native")
        return
    assert auto["register_1"]["peagle_speculator"] == "installed"
    assert auto["after_2"]["speculative_methods"] == ["peagle"]
    assert states["off"]["after_2"]["speculative_methods"] == []
