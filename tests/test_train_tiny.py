"""``python -m dev.train_tiny``: speculators' PEagle sampling and mask, a
deterministic run, and the committed models in speculators' format."""

from __future__ import annotations

import json
import os

import pytest
import torch

from dev.tiny import tiny_digest
from dev.train_tiny import Recipe, cod_sample, peagle_mask, train_all
from vllm_peagle.tools.check import run_check
from vllm_peagle.tools.trained import TRAINED_DIR, TRAINED_MODELS, ensure_trained_tiny

GSM8K = os.environ.get("GSM8K_DATA") or "../shared/data/gsm8k"


def test_peagle_mask_on_speculators_example():
    # The example in speculators' create_peagle_mask_mod docstring: 6 positions,
    # chains at depth 1 from anchors 0, 1, 3, 4; depth 2 from 0, 3; depth 3 from 0.
    anchor = torch.tensor([0, 1, 2, 3, 4, 5, 0, 1, 3, 4, 0, 3, 0])
    depth = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3])
    mask = peagle_mask(anchor, depth)
    # Depth 0 is causal.
    assert mask[:6, :6].equal(torch.ones(6, 6, dtype=torch.bool).tril())
    # Element 11 (anchor 3, depth 2) sees positions 0..3 and its chain's depth 1
    # (element 8) and itself, nothing of other chains.
    assert mask[11].nonzero().flatten().tolist() == [0, 1, 2, 3, 8, 11]
    # Element 12 (anchor 0, depth 3) sees position 0 and depths 1, 2 of chain 0.
    assert mask[12].nonzero().flatten().tolist() == [0, 6, 10, 12]
    # Depth 0 never sees a mask position.
    assert not mask[:6, 6:].any()



def test_peagle_mask_with_a_sliding_window():
    """The same example with a 2-position window: a key counts only where its
    position (anchor + depth) is at most one behind the query's."""
    anchor = torch.tensor([0, 1, 2, 3, 4, 5, 0, 1, 3, 4, 0, 3, 0])
    depth = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3])
    full, windowed = peagle_mask(anchor, depth), peagle_mask(anchor, depth, window=2)
    assert not (windowed & ~full).any()
    # Depth 0: itself and the position before.
    assert windowed[:6, :6].equal(torch.ones(6, 6, dtype=torch.bool).tril()
                                  & ~torch.ones(6, 6, dtype=torch.bool).tril(-2))
    # Element 11 (anchor 3, depth 2, position 5): its chain's depth 1 (position 4)
    # and itself; the context at positions 0..3 is out of the window.
    assert windowed[11].nonzero().flatten().tolist() == [8, 11]
    # Element 12 (anchor 0, depth 3, position 3): depth 2 of its chain (element 10,
    # position 2) and itself.
    assert windowed[12].nonzero().flatten().tolist() == [10, 12]

def test_cod_sample_keeps_chains():
    r = Recipe(num_depths=5, max_anchors=40)
    anchor, depth = cod_sample(100, 30, r, torch.Generator().manual_seed(0))
    assert (depth == 0).sum() == 100  # every position is context
    pairs = set(zip(anchor.tolist(), depth.tolist()))
    for a, d in pairs:
        if d:
            # A depth-d element continues a chain that reached depth d-1, and
            # predicts at a position with loss.
            assert (a, d - 1) in pairs and a + d >= 30 and a + d < 100
    sizes = [int((depth == d).sum()) for d in range(1, 5)]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] <= 40 and sizes[-1] > 0


def _tiny_recipe() -> Recipe:
    return Recipe(target_steps=2, gen_samples=2, gen_tokens=4, gen_batch=2, draft_steps=2,
                  eagle3_steps=2, seq_len=64, draft_seq_len=64)


@pytest.mark.skipif(not os.path.isfile(os.path.join(GSM8K, "train.jsonl")),
                    reason=f"GSM8K's train.jsonl is not in {GSM8K} (set GSM8K_DATA)")
def test_train_all_is_deterministic_and_checks_clean(tmp_path, capsys):
    first = tmp_path / "a"
    digests = []
    for _ in range(2):
        train_all(str(first), GSM8K, _tiny_recipe(), archs=("llama",), log=lambda _: None)
        # recipe.json holds wall times; the models must be byte for byte the same.
        os.remove(first / "recipe.json")
        digests.append(tiny_digest(str(first)))
    assert digests[0] == digests[1]
    # (check validates PEagle checkpoints; the Eagle3 one vLLM runs as it is.)
    # release=False: check's release findings register the plugin, which must not
    # patch this (the test's) process; the engine runs cover the release.
    assert run_check(str(first / "peagle"), str(first / "target"), release=False) == 0, \
        capsys.readouterr()


def test_committed_models_are_complete_and_check_clean(tmp_path, capsys):
    paths = ensure_trained_tiny(str(tmp_path / "trained"))
    for name in TRAINED_MODELS:
        assert os.path.isfile(os.path.join(paths[name], "model.safetensors")), name
        with open(os.path.join(paths[name], "config.json")) as f:
            config = json.load(f)
        if "speculators_config" in config:
            # The copy points at the copied verifier, so check finds it anywhere.
            verifier = config["speculators_config"]["verifier"]["name_or_path"]
            assert os.path.isdir(verifier) and verifier.startswith(str(tmp_path))
    for draft in ("peagle", "qwen3-peagle", "qwen3-peagle-window32", "llama-peagle-window32"):
        assert run_check(paths[draft], release=False) == 0, capsys.readouterr()
    with open(os.path.join(TRAINED_DIR, "recipe.json")) as f:
        recipe = json.load(f)
    assert recipe["recipe"]["speculative_tokens"] >= 4
