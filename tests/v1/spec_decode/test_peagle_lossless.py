"""Greedy speculative decoding is lossless: with PEagle or Eagle3 drafts, the
token ids equal the target-only ids, on 10 prompts of mixed lengths in one batch,
in ``auto`` (K from the checkpoint) and ``force`` mode (K overridden, and the
PEagle draft given explicitly as ``speculative_config["model"]``)."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import CPU_LLM_KWARGS, K_EXPLICIT, K_OVERRIDE
from tests.divergence import assert_same_ids

pytestmark = pytest.mark.engine

# run name: (draft kind, expected parallel_drafting, K: None for the checkpoint's).
# auto keeps vLLM's own pieces where the release has them; force runs this
# package's, with the K override and the explicit draft on top of the plain path.
RUNS = {
    "peagle-auto": ("peagle", True, None),
    "eagle3-auto": ("eagle3", False, None),
    "peagle-k5-force": ("peagle", True, K_OVERRIDE),
    "eagle3-k5-force": ("eagle3", False, K_OVERRIDE),
    "peagle-explicit-force": ("peagle", True, K_EXPLICIT),
    # 4 aux hidden states (ids, fc and mask_hidden to match), as auto runs them.
    "peagle-aux4-auto": ("peagle-aux4", True, None),
    "qwen3-peagle-aux4-auto": ("qwen3-peagle-aux4", True, None),
}


def checkpoint_k(draft_dir: str) -> int:
    with open(os.path.join(draft_dir, "config.json")) as f:
        config = json.load(f)
    return config["speculators_config"]["proposal_methods"][0]["speculative_tokens"]


@pytest.mark.parametrize("name", list(RUNS))
def test_greedy_token_ids_equal_target_only(engine_run, tiny_models, name):
    kind, parallel, k = RUNS[name]
    k = k or checkpoint_k(tiny_models[kind])
    base = engine_run(f"{kind}-target" if kind.endswith("aux4") else "target")
    run = engine_run(name)
    spec = run["speculative_config"]
    assert spec["method"] == "eagle3"
    assert spec["parallel_drafting"] is parallel
    assert spec["num_speculative_tokens"] == k
    assert spec["draft_model"] == tiny_models[kind]
    if parallel:
        with open(os.path.join(tiny_models[kind], "config.json")) as f:
            assert spec["pard_token"] == json.load(f)["mask_token_id"]
    stats = run["stats"]
    # Speculation really ran with K tokens a draft, and some drafts were accepted,
    # so both the accept and the reject paths are under test.
    assert stats["num_drafts"] > 0
    assert stats["draft_tokens_per_step"] == k
    assert 0 < stats["num_accepted_tokens"] < stats["num_draft_tokens"]
    # Each prompt was generated in full (ignore_eos), so equality covers every token.
    assert all(len(ids) == run["scenario"]["max_tokens"] for ids in run["token_ids"])
    assert_same_ids(run["token_ids"], base["token_ids"], base["prompt_token_ids"],
                    base["scenario"]["model"], CPU_LLM_KWARGS)
