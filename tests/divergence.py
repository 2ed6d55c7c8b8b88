"""Exact equality of greedy generations, and when it fails, why.

Greedy speculative decoding must give the target-only token ids.  A speculative
run verifies K+1 tokens in one forward pass where the target-only run decodes
one, so the two compute the same logits with different batch shapes; where the
target's top two logits nearly tie, rounding alone can flip the choice.  The
assertion stays exact; on a mismatch the message gives the target's logprob
margin at the first differing token, from a fresh target-only run on the
common prefix, so a real bug (a clear margin) reads differently from a
near-tie (a margin at rounding level).
"""

from __future__ import annotations

from typing import Any

import pytest

# float32 rounding of these tiny models' logits is ~1e-6; bf16's ~1e-2.
NEAR_TIE = 1e-3


def first_difference(got: list[int], want: list[int]) -> int | None:
    for j, (a, b) in enumerate(zip(got, want)):
        if a != b:
            return j
    return None if len(got) == len(want) else min(len(got), len(want))


def target_margin(target: str, prefix: list[int], tokens: tuple[int, int],
                  llm_kwargs: dict[str, Any]) -> str:
    """The target's logprobs for two candidate next tokens after ``prefix``."""
    from vllm_peagle.tools.runner import run_isolated

    run = run_isolated({"model": target, "prompts": [{"prompt_token_ids": prefix}],
                        "max_tokens": 1, "logprobs": 20, "llm_kwargs": llm_kwargs}, mode="off")
    if not run["ok"]:
        return f"(the margin run failed: {run.get('error_type')}: {run.get('error')})"
    top = {int(t): lp for t, lp in run["logprobs"][0][0].items()}
    a, b = tokens
    if a not in top or b not in top:
        return f"(token {a if a not in top else b} is not in the target's top 20 there: a real bug)"
    margin = abs(top[a] - top[b])
    verdict = ("a near-tie: rounding, not a bug" if margin < NEAR_TIE
               else "a clear margin: a real bug")
    return f"target logprobs {a}: {top[a]:.6g}, {b}: {top[b]:.6g}; margin {margin:.3g} ({verdict})"


def assert_same_ids(got: list[list[int]], want: list[list[int]],
                    prompt_ids: list[list[int]], target: str, llm_kwargs: dict[str, Any],
                    what: str = "prompt") -> None:
    """``got == want`` per prompt; on the first mismatch, fail with the margin."""
    assert len(got) == len(want), (len(got), len(want))
    for i, (g, w) in enumerate(zip(got, want)):
        j = first_difference(g, w)
        if j is None:
            continue
        if j >= min(len(g), len(w)):
            pytest.fail(f"{what} {i}: generations agree on {j} tokens, then one stops "
                        f"({len(g)} vs {len(w)} tokens)")
        margin = target_margin(target, list(prompt_ids[i]) + list(w[:j]), (g[j], w[j]),
                               llm_kwargs)
        pytest.fail(f"{what} {i}: token {j} is {g[j]} with speculation, {w[j]} without; "
                    f"{margin}")
