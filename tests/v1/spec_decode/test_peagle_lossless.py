"""Greedy speculative decoding is lossless: with PEagle or Eagle3 drafts, the
token ids equal the target-only ids, on 10 prompts of mixed lengths in one batch,
in ``auto`` and ``force`` mode, with K from the checkpoint and overridden."""

from __future__ import annotations

import pytest

from vllm_peagle import features

pytestmark = pytest.mark.engine

RUNS = {
    # run name: (expected parallel_drafting, expected K)
    "peagle-auto": (True, 3),
    "peagle-force": (True, 3),
    "eagle3-auto": (False, 3),
    "eagle3-force": (False, 3),
    "peagle-k5-auto": (True, 5),
    "peagle-k5-force": (True, 5),
    "eagle3-k5-force": (False, 5),
}


def test_prompts_are_a_mixed_batch(engine_run):
    prompts = engine_run("target")["prompts"]
    assert len(prompts) >= 8
    assert len({len(p.split()) for p in prompts}) >= 4
    assert engine_run("target")["scenario"]["llm_kwargs"]["max_num_seqs"] > 1


@pytest.mark.parametrize("name", list(RUNS))
def test_greedy_token_ids_equal_target_only(engine_run, name):
    if "-k5-" in name and not features.speculators_overrides_apply():
        pytest.skip("this vLLM ignores speculative_config overrides for speculators "
                    "checkpoints (K comes from the checkpoint only)")
    parallel, k = RUNS[name]
    base = engine_run("target")
    run = engine_run(name)
    spec = run["speculative_config"]
    assert spec["method"] == "eagle3"
    assert spec["parallel_drafting"] is parallel
    assert spec["num_speculative_tokens"] == k
    stats = run["stats"]
    # Speculation really ran with K tokens a draft, and some drafts were accepted,
    # so both the accept and the reject paths are under test.
    assert stats["num_drafts"] > 0
    assert stats["draft_tokens_per_step"] == k
    assert 0 < stats["num_accepted_tokens"] < stats["num_draft_tokens"]
    assert run["prompts"] == base["prompts"]
    for i, (got, want) in enumerate(zip(run["token_ids"], base["token_ids"])):
        assert got == want, f"prompt {i} {run['prompts'][i]!r}"
    assert len(run["token_ids"]) == len(base["token_ids"])
