"""Qwen3-architecture PEagle drafts (speculators >= 0.7's default): the tiny
Qwen3 pair with vLLM's Qwen3 drafter (``auto``, where the release has one) and
with this package's (``force``).  Greedy ids equal the Qwen3 target alone in
both, and the two drafters draft alike: the same number of drafts and the same
tokens accepted at each position, on weights where some drafts are accepted and
some are not.  The tiny Qwen3 draft's attention is scaled up so that its q/k
norms change what it proposes: a drafter without them made 177 drafts where
vLLM's made 176 (checked once by removing them)."""

from __future__ import annotations

import pytest

from tests.conftest import CPU_LLM_KWARGS
from tests.divergence import assert_same_ids
from vllm_peagle import features

pytestmark = pytest.mark.engine


@pytest.mark.parametrize("mode", ["auto", "force"])
def test_qwen3_peagle_equals_target_only(engine_run, tiny_models, mode):
    run = engine_run(f"qwen3-peagle-{mode}")
    base = engine_run("qwen3-target")
    spec = run["speculative_config"]
    assert (spec["method"], spec["parallel_drafting"]) == ("eagle3", True)
    assert spec["draft_architectures"] == ["PeagleQwen3ForCausalLM"]
    assert spec["draft_model"] == tiny_models["qwen3-peagle"]
    stats = run["stats"]
    assert 0 < stats["num_accepted_tokens"] < stats["num_draft_tokens"]
    # The plugin ran in the engine's processes, in the mode asked for.
    assert run["plugin_log"], "no vllm-peagle registration line in the engine's log"
    assert all(f"({mode} mode)" in line for line in run["plugin_log"]), run["plugin_log"]
    assert_same_ids(run["token_ids"], base["token_ids"], base["prompt_token_ids"],
                    tiny_models["qwen3-target"], CPU_LLM_KWARGS)


def test_qwen3_drafter_drafts_as_vllms_own(engine_run):
    if not features.has_qwen3_eagle3():
        pytest.skip("this vLLM has no Qwen3 drafter of its own (qwen3_eagle3.py) to "
                    "compare this package's with")
    ours = engine_run("qwen3-peagle-force")["stats"]
    native = engine_run("qwen3-peagle-auto")["stats"]
    assert ours["num_drafts"] == native["num_drafts"]
    assert ours["per_pos_accepted"] == native["per_pos_accepted"]
    # Past the first position too, or the comparison says little about parallel drafting.
    assert ours["per_pos_accepted"][0] > 0


def test_sliding_window_is_honoured(engine_run, tiny_models):
    """A draft whose layers are ``sliding_attention`` (speculators >= 0.7's
    default) drafts with its window: this package's drafter drafts as vLLM's
    own does with the window, and otherwise than with full attention.  (This
    package's drafter gets the window from vLLM's ``LlamaAttention``, which
    reads the draft's ``layer_types``.)"""
    sliding = engine_run("qwen3-peagle-sliding-force")
    full = engine_run("qwen3-peagle-force")
    spec = sliding["speculative_config"]
    assert (spec["method"], spec["parallel_drafting"]) == ("eagle3", True)
    # The window changed what was drafted and accepted.
    assert (sliding["stats"]["num_drafts"], sliding["stats"]["per_pos_accepted"]) != (
        full["stats"]["num_drafts"], full["stats"]["per_pos_accepted"])
    base = engine_run("qwen3-target")
    assert_same_ids(sliding["token_ids"], base["token_ids"], base["prompt_token_ids"],
                    tiny_models["qwen3-target"], CPU_LLM_KWARGS)
    if not features.has_qwen3_eagle3():
        pytest.skip("this vLLM has no Qwen3 drafter of its own (qwen3_eagle3.py) to "
                    "compare this package's with")
    native = engine_run("qwen3-peagle-sliding-auto")["stats"]
    assert sliding["stats"]["num_drafts"] == native["num_drafts"]
    assert sliding["stats"]["per_pos_accepted"] == native["per_pos_accepted"]
