"""PEagle's draft inputs for vLLM's V2 model runner, in plain torch.

Runs on any device and never waits on it: every size is known on the host
(the target batch's token and request counts, K), the rest stays on the
device.  ``speculator.py`` calls it once a step; the CPU tests call it
directly.

One draft forward drafts all K tokens.  Per request it holds, in order (the
layout vLLM's V1 parallel-drafting proposer used, ``copy_and_expand_eagle_
inputs_kernel`` in 0.22-0.33):

- the request's accepted target tokens shifted by one, each beside the
  target's hidden state at its own position (Eagle's usual input);
- the bonus token: the token sampled this step (or, mid-prefill, the next
  prompt token), beside the hidden state of the last accepted position; it
  drafts token 1;
- K - 1 mask tokens at the next K - 1 positions, beside ``mask_hidden``;
  they draft tokens 2..K;
- one slot per token the target rejected, which writes no KV and drafts
  nothing.  Keeping them, at the end, keeps every request's span known on the
  host (the target's query length + K - 1) without reading the rejection
  counts back.
"""

from __future__ import annotations

import torch


def prepare_peagle_inputs(
    *,
    # [num_tokens] the target's input ids and positions this step
    target_input_ids: torch.Tensor,
    target_positions: torch.Tensor,
    # [num_reqs + 1]
    target_query_start_loc: torch.Tensor,
    # [num_reqs] tokens the target rejected, and the bonus token, per request
    num_rejected: torch.Tensor,
    next_token_ids: torch.Tensor,
    # [num_tokens, hidden_size] target hidden states (combined aux states)
    hidden_states: torch.Tensor,
    # [hidden_size] the hidden state of a mask position
    mask_hidden: torch.Tensor,
    num_reqs: int,
    num_tokens: int,
    num_drafts: int,
    mask_token_id: int,
    max_model_len: int,
    # [>= num_tokens + num_reqs * (num_drafts - 1) + 1] int64 0, 1, 2, ...
    arange: torch.Tensor,
    # outputs, each at least as long as the draft batch
    out_input_ids: torch.Tensor,
    out_positions: torch.Tensor,
    out_hidden_states: torch.Tensor,
    out_query_start_loc: torch.Tensor,
    # [num_reqs * num_drafts] the draft batch rows that draft token 1..K
    out_sample_indices: torch.Tensor,
    # rows that must not write KV: rejected slots, positions past max_model_len
    out_no_kv: torch.Tensor,
) -> int:
    """Fill the draft batch; returns its token count,
    ``num_tokens + num_reqs * (num_drafts - 1)``."""
    num_mask = num_drafts - 1
    total = num_tokens + num_reqs * num_mask
    starts = target_query_start_loc[: num_reqs + 1].to(torch.int64)
    lengths = starts[1:] - starts[:-1]
    out_starts = starts + arange[: num_reqs + 1] * num_mask
    out_query_start_loc[: num_reqs + 1].copy_(out_starts)
    # Each request's bonus row: after its accepted tokens, less one (the shift).
    bonus_offsets = lengths - num_rejected[:num_reqs].to(torch.int64) - 1

    # Each draft row's request, and its offset j within the request's span.
    req = torch.repeat_interleave(arange[:num_reqs], lengths + num_mask, output_size=total)
    j = arange[:total] - out_starts[req]
    start = starts[req]
    length = lengths[req]
    bonus = bonus_offsets[req]
    is_shifted = j < bonus
    is_bonus = j == bonus
    is_mask = (j > bonus) & (j <= bonus + num_mask)
    is_rejected = j > bonus + num_mask

    ids = target_input_ids[torch.clamp(start + j + 1, max=num_tokens - 1)]
    ids = torch.where(is_shifted, ids, torch.zeros_like(ids))
    ids = torch.where(is_bonus, next_token_ids[:num_reqs].to(ids.dtype)[req], ids)
    ids = torch.where(is_mask, torch.full_like(ids, mask_token_id), ids)
    out_input_ids[:total].copy_(ids)

    positions = target_positions[start] + j
    positions = torch.where(is_rejected, torch.zeros_like(positions), positions)
    out_no_kv[:total].copy_(is_rejected | (positions >= max_model_len))
    out_positions[:total].copy_(torch.clamp(positions, max=max_model_len - 1))

    # Shifted and bonus rows read the hidden state at their own target row;
    # mask rows take mask_hidden; rejected rows read anything in range.
    source = start + torch.minimum(j, length - 1)
    rows = out_hidden_states[:total]
    torch.index_select(hidden_states, 0, source, out=rows)
    torch.where(is_mask.unsqueeze(1), mask_hidden.to(rows.dtype), rows, out=rows)

    # The bonus row and the mask rows after it draft tokens 1..K.
    samples = ((out_starts[:-1] + bonus_offsets).unsqueeze(1)
               + arange[:num_drafts].unsqueeze(0)).reshape(-1)
    out_sample_indices[: num_reqs * num_drafts].copy_(samples)
    return total


def read_mask_hidden(model: str, revision: str | None = None) -> torch.Tensor | None:
    """The checkpoint's ``mask_hidden`` tensor (flattened), or None if its
    weights hold none.  ``model`` is a local directory or a hub id vLLM has
    already downloaded (the files are read from its cache, never fetched)."""
    import glob
    import os

    from safetensors import safe_open

    if os.path.isdir(model):
        folder = model
    else:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(model, revision=revision, allow_patterns=["*.safetensors"],
                                   local_files_only=True)
    for path in sorted(glob.glob(os.path.join(folder, "*.safetensors"))):
        with safe_open(path, framework="pt") as f:
            if "mask_hidden" in f.keys():
                return f.get_tensor("mask_hidden").reshape(-1)
    return None
