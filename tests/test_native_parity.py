"""Native parity: on a vLLM with PEagle of its own (0.22.0 and later), this
package's code (``force``) builds the same draft config and speculative config
as vLLM's (``off``) for a table of valid checkpoints, except for the deliberate
differences below, each with its reason (and, on 0.22/0.23, the Qwen3 draft's
architecture name).  Config level, through ``EngineArgs``."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.engine_config import cases_of
from tests.malformed import _edit_config, _rewrite_weights

pytestmark = pytest.mark.engine

# Keys of the draft's HF config where this package's differs from vLLM's on purpose.
DELIBERATE = {
    # Upstream's update_peagle (through 0.33) drops them, its update_eagle3 passes
    # them on; a draft trained with them must not run without them.
    "fc_norm": "passed on from the checkpoint; upstream's update_peagle drops it",
    "norm_output": "passed on from the checkpoint; upstream's update_peagle drops it",
    # Upstream's Llama drafter sizes fc from num_aux_hidden_states (or 3), not from
    # the aux ids: the ids' count goes with them, so other tap counts fit.
    "num_aux_hidden_states": "the count of eagle_aux_hidden_state_layer_ids, where given",
}


def _smaller_draft_vocab(t: dict) -> None:
    import torch

    rows = 256
    t["lm_head.weight"] = t["lm_head.weight"][:rows].clone()
    t["d2t"] = torch.zeros(rows, dtype=torch.long)
    t["t2d"] = torch.zeros(t["embed_tokens.weight"].shape[0], dtype=torch.bool)
    t["t2d"][:rows] = True


VARIANTS = {
    "defaults": None,
    "explicit values": lambda d: _edit_config(d, lambda c: c.update(
        norm_before_residual=True, norm_before_fc=True, target_hidden_size=128)),
    "aux ids": lambda d: _edit_config(d, lambda c: c.update(
        eagle_aux_hidden_state_layer_ids=[1, 3, 6])),
    "fc_norm and norm_output": lambda d: _edit_config(d, lambda c: c.update(
        fc_norm=True, norm_output=True)),
    "smaller draft vocab with d2t/t2d": lambda d: (
        _rewrite_weights(d, _smaller_draft_vocab),
        _edit_config(d, lambda c: c.update(draft_vocab_size=256))),
}


def config_cases(tiny: dict, tmp: str) -> list[tuple[dict, tuple[str, ...]]]:
    cases = []
    for i, (name, build) in enumerate(VARIANTS.items()):
        draft = os.path.join(tmp, f"draft{i}")
        shutil.copytree(tiny["peagle"], draft)
        if build is not None:
            build(draft)
        cases.append(({"model": draft}, ("off", "force")))
    cases.append(({"model": tiny["qwen3-peagle"]}, ("off", "force")))
    return cases


@pytest.fixture(scope="module")
def parity(engine_configs):
    return cases_of(engine_configs, "native_parity")


@pytest.mark.parametrize("index,name", list(enumerate([*VARIANTS, "qwen3 layers"])))
def test_force_builds_what_native_builds(parity, index, name):
    native, ours = parity["off"][index], parity["force"][index]
    if "error" in native:
        pytest.skip("this vLLM has no native PEagle to compare with (native from 0.22.0): "
                    + native["error"]["type"])
    assert "error" not in ours, ours["error"]
    # The speculative config (with the draft's fc_norm/norm_output beside it).
    assert _only_deliberate(ours["speculative_config"], native["speculative_config"]), (
        ours["speculative_config"], native["speculative_config"])
    differ = {k for k in set(ours["draft_hf_config"]) | set(native["draft_hf_config"])
              if ours["draft_hf_config"].get(k) != native["draft_hf_config"].get(k)}
    allowed = set(DELIBERATE)
    if name == "qwen3 layers" and native["draft_hf_config"]["architectures"] == [
            "PeagleLlamaForCausalLM"]:
        # vLLM 0.22/0.23 name a qwen3-arch draft Llama, and their Llama drafter then
        # fails on its k_norm weights; this package names it Qwen3 (its own drafter).
        assert ours["draft_hf_config"]["architectures"] == ["PeagleQwen3ForCausalLM"]
        allowed.add("architectures")
    assert differ <= allowed, {k: (ours["draft_hf_config"].get(k),
                                   native["draft_hf_config"].get(k)) for k in differ}
    if name == "fc_norm and norm_output":
        assert ours["draft_hf_config"]["fc_norm"] is True
        assert ours["draft_hf_config"]["norm_output"] is True


def _only_deliberate(ours: dict, native: dict) -> bool:
    # The draft's architecture is compared with the draft config below.
    keys = (set(ours) | set(native)) - {"draft_architectures"}
    return {k for k in keys if ours.get(k) != native.get(k)} <= set(DELIBERATE)
