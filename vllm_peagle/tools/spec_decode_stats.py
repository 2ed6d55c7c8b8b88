"""Speculative-decoding statistics from vLLM's metrics.

``compute_spec_decode_stats`` keeps the name and the arithmetic of the helper in
upstream's ``tests/v1/spec_decode/test_speculators_correctness.py``, so figures
from this package compare with upstream's published ones.
"""

from __future__ import annotations

from typing import Any, Iterable

NUM_DRAFTS = "vllm:spec_decode_num_drafts"
NUM_DRAFT_TOKENS = "vllm:spec_decode_num_draft_tokens"
NUM_ACCEPTED_TOKENS = "vllm:spec_decode_num_accepted_tokens"
NUM_ACCEPTED_PER_POS = "vllm:spec_decode_num_accepted_tokens_per_pos"


def compute_spec_decode_stats(metrics: Iterable[Any]) -> dict[str, Any]:
    """Sum vLLM's spec-decode counters (``LLM.get_metrics()``) into one dict.

    - acceptance_len: 1 + accepted / drafts, the tokens a verify step yields
    - draft_tokens_per_step: draft tokens / drafts (K)
    - overall_acceptance_rate: accepted / draft tokens
    - per_pos_acceptance_rates[i]: share of drafts whose token i was accepted
    With no drafts the rates are 0 and acceptance_len is 1 (plain decoding).
    """
    num_drafts = num_draft_tokens = num_accepted = 0
    per_pos: list[int] = []
    for metric in metrics:
        if metric.name == NUM_DRAFTS:
            num_drafts += metric.value
        elif metric.name == NUM_DRAFT_TOKENS:
            num_draft_tokens += metric.value
        elif metric.name == NUM_ACCEPTED_TOKENS:
            num_accepted += metric.value
        elif metric.name == NUM_ACCEPTED_PER_POS:
            values = list(metric.values)
            if len(values) > len(per_pos):
                per_pos += [0] * (len(values) - len(per_pos))
            for i, v in enumerate(values):
                per_pos[i] += v
    return {
        "num_drafts": num_drafts,
        "num_draft_tokens": num_draft_tokens,
        "num_accepted_tokens": num_accepted,
        "acceptance_len": 1 + num_accepted / num_drafts if num_drafts else 1.0,
        "draft_tokens_per_step": num_draft_tokens / num_drafts if num_drafts else 0.0,
        "overall_acceptance_rate": num_accepted / num_draft_tokens if num_draft_tokens else 0.0,
        "per_pos_accepted": per_pos,
        "per_pos_acceptance_rates": [a / num_drafts if num_drafts else 0.0 for a in per_pos],
    }
