"""The V2 PEagle speculator's draft batch (``spec_decode/peagle/utils.py``),
on plain torch: what one draft forward sees for a batch of a decoding request
with a rejected token and a prefilling request, worked out by hand; and random
batches against a per-request reference written as the layout is described
(``prepare_peagle_inputs``'s docstring), not as the code computes it."""

from __future__ import annotations

import random

import pytest
import torch

from vllm_peagle.v1.worker.gpu.spec_decode.peagle.utils import prepare_peagle_inputs

MASK_ID = 7


def run(target_ids, target_pos, qsl, rejected, next_ids, hidden, mask, num_drafts,
        max_model_len):
    num_reqs, num_tokens = len(qsl) - 1, len(target_ids)
    size = num_tokens + num_reqs * (num_drafts - 1) + 8
    out = {"input_ids": torch.full((size,), -9, dtype=torch.int32),
           "positions": torch.full((size,), -9, dtype=torch.int64),
           "hidden": torch.full((size, hidden.shape[1]), -9.0),
           "qsl": torch.full((num_reqs + 3,), -9, dtype=torch.int32),
           "samples": torch.full((num_reqs * num_drafts + 3,), -9, dtype=torch.int64),
           "no_kv": torch.zeros(size, dtype=torch.bool)}
    total = prepare_peagle_inputs(
        target_input_ids=torch.tensor(target_ids, dtype=torch.int32),
        target_positions=torch.tensor(target_pos, dtype=torch.int64),
        target_query_start_loc=torch.tensor(qsl, dtype=torch.int32),
        num_rejected=torch.tensor(rejected, dtype=torch.int32),
        next_token_ids=torch.tensor(next_ids, dtype=torch.int64),
        hidden_states=hidden, mask_hidden=mask, num_reqs=num_reqs, num_tokens=num_tokens,
        num_drafts=num_drafts, mask_token_id=MASK_ID, max_model_len=max_model_len,
        arange=torch.arange(size + 1), out_input_ids=out["input_ids"],
        out_positions=out["positions"], out_hidden_states=out["hidden"],
        out_query_start_loc=out["qsl"], out_sample_indices=out["samples"],
        out_no_kv=out["no_kv"])
    return total, out


def test_decode_with_a_rejection_and_a_prefill_chunk():
    # Request 0 decodes: its 4 target tokens (last accepted + 3 drafts) at
    # positions 20..23, the last draft rejected; the bonus token is 99.
    # Request 1 prefills 3 prompt tokens at 0..2; its next prompt token is 33.
    # K = 3: two mask tokens each.  max_model_len 24: request 0's last mask
    # position (24) is past it.
    hidden = torch.tensor([[i + 1.0, -(i + 1.0)] for i in range(7)])
    mask = torch.tensor([100.0, -100.0])
    total, out = run(target_ids=[10, 11, 12, 13, 30, 31, 32],
                     target_pos=[20, 21, 22, 23, 0, 1, 2], qsl=[0, 4, 7], rejected=[1, 0],
                     next_ids=[99, 33], hidden=hidden, mask=mask, num_drafts=3,
                     max_model_len=24)
    assert total == 11
    assert out["qsl"][:3].tolist() == [0, 6, 11]
    #           shifted  bonus mask mask  rejected | shifted bonus mask mask
    assert out["input_ids"][:11].tolist() == [11, 12, 99, MASK_ID, MASK_ID, 0,
                                              31, 32, 33, MASK_ID, MASK_ID]
    # Request 0's second mask position, 24, is clamped (and writes no KV).
    assert out["positions"][:11].tolist() == [20, 21, 22, 23, 23, 0, 0, 1, 2, 3, 4]
    assert out["no_kv"][:11].tolist() == [False] * 4 + [True, True] + [False] * 5
    assert out["samples"][:6].tolist() == [2, 3, 4, 8, 9, 10]
    rows = out["hidden"]
    for row, source in {0: 0, 1: 1, 2: 2, 6: 4, 7: 5, 8: 6}.items():
        assert rows[row].tolist() == hidden[source].tolist(), row
    for row in (3, 4, 9, 10):
        assert rows[row].tolist() == mask.tolist(), row
    # Nothing written past the batch.
    assert out["input_ids"][11:].eq(-9).all() and out["samples"][6:].eq(-9).all()


def reference(target_ids, target_pos, qsl, rejected, next_ids, num_drafts):
    """Request by request, as the layout is described: shifted accepted tokens,
    the bonus token, K - 1 mask tokens, a slot per rejected token."""
    ids, positions, sources, samples = [], [], [], []
    for r in range(len(qsl) - 1):
        start, end = qsl[r], qsl[r + 1]
        accepted = end - start - rejected[r]
        first = target_pos[start]
        for j in range(accepted - 1):
            ids.append(target_ids[start + j + 1])
            positions.append(first + j)
            sources.append(start + j)
        samples.append(len(ids))
        ids.append(next_ids[r])
        positions.append(first + accepted - 1)
        sources.append(start + accepted - 1)
        for m in range(1, num_drafts):
            samples.append(len(ids))
            ids.append(MASK_ID)
            positions.append(first + accepted - 1 + m)
            sources.append("mask")
        for _ in range(rejected[r]):
            ids.append(0)
            positions.append(0)
            sources.append(None)
    return ids, positions, sources, samples


@pytest.mark.parametrize("seed", range(20))
def test_random_batches_match_the_described_layout(seed):
    rng = random.Random(seed)
    num_drafts = rng.randint(1, 8)
    lengths, rejected = [], []
    for _ in range(rng.randint(1, 6)):
        if rng.random() < 0.5:  # a decode step: K + 1 tokens, some rejected
            lengths.append(num_drafts + 1)
            rejected.append(rng.randint(0, num_drafts))
        else:  # a prefill chunk
            lengths.append(rng.randint(1, 12))
            rejected.append(0)
    qsl = [0]
    for n in lengths:
        qsl.append(qsl[-1] + n)
    target_ids = [rng.randint(10, 1000) for _ in range(qsl[-1])]
    target_pos = []
    for n in lengths:
        first = rng.randint(0, 50)
        target_pos += list(range(first, first + n))
    next_ids = [rng.randint(10, 1000) for _ in lengths]
    hidden = torch.randn(qsl[-1], 3)
    mask = torch.randn(3)
    total, out = run(target_ids, target_pos, qsl, rejected, next_ids, hidden, mask,
                     num_drafts, max_model_len=10_000)
    ids, positions, sources, samples = reference(target_ids, target_pos, qsl, rejected,
                                                 next_ids, num_drafts)
    assert total == len(ids)
    assert out["input_ids"][:total].tolist() == ids
    assert out["positions"][:total].tolist() == positions
    assert out["samples"][:len(samples)].tolist() == samples
    assert out["no_kv"][:total].tolist() == [s is None for s in sources]
    for row, source in enumerate(sources):
        if source == "mask":
            assert torch.equal(out["hidden"][row], mask)
        elif source is not None:
            assert torch.equal(out["hidden"][row], hidden[source])
