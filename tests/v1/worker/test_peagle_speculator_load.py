"""This package's V2 PEagle speculator built and loaded as vLLM 0.34's model
runner does it, on the CPU (``speculator_load.py`` in a fresh process): the
trained tiny pairs' drafts load through vLLM's Eagle3 loader, and the hidden
state the speculator feeds mask positions is the checkpoint's ``mask_hidden``
projected by the draft's own ``fc`` (vLLM 0.34's loaders skip
``mask_hidden``; computed here from the safetensors file itself).  Needs
vLLM >= 0.34 (the V2 door): runs in its matrix venv."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def _door() -> bool:
    from vllm_peagle import features

    return features.v2_speculator_door() is not None


@pytest.mark.parametrize("target,draft", [("target", "peagle"),
                                          ("qwen3-target", "qwen3-peagle")])
def test_speculator_loads_the_draft_and_its_mask_hidden(trained_models, tmp_path, target, draft):
    if not _door():
        pytest.skip("vLLM < 0.34: no V2 speculator to load (its matrix venv runs this)")
    import torch
    from safetensors.torch import load_file

    out = tmp_path / "out.json"
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "speculator_load.py"), trained_models[target],
         trained_models[draft], str(out)],
        capture_output=True, text=True, timeout=600, cwd=os.path.dirname(os.path.dirname(HERE)))
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(out.read_text())
    assert "load_error" not in result, result["load_error"]
    with open(os.path.join(trained_models[draft], "config.json")) as f:
        config = json.load(f)
    assert result["speculator"] == "PEagleSpeculator"
    assert result["mask_token_id"] == config["mask_token_id"]
    k = config["speculators_config"]["proposal_methods"][0]["speculative_tokens"]
    # The draft batch: every target token plus K - 1 mask tokens a request.
    assert result["max_num_draft_tokens"] == \
        result["max_num_tokens"] + result["max_num_reqs"] * (k - 1)
    assert len(result["draft_layers"]) == config["transformer_layer_config"]["num_hidden_layers"]
    weights = load_file(os.path.join(trained_models[draft], "model.safetensors"))
    assert not config.get("norm_before_fc") and not config.get("fc_norm")
    expected = weights["fc.weight"].float() @ weights["mask_hidden"].float().reshape(-1)
    torch.testing.assert_close(torch.tensor(result["mask_hidden_state"]), expected,
                               rtol=1e-4, atol=1e-4)
    # Full-attention drafts: no layer gets a window.
    assert set(result["draft_sliding_windows"].values()) == {None}


def test_speculator_gives_each_draft_layer_its_window(trained_models, tmp_path):
    """The Qwen3 draft trained with a 32-token window (every layer
    ``sliding_attention``): loaded through the V2 speculator, each draft
    attention layer holds that window, which its KV cache spec and the attention
    backend take from it (issue 32: a drafter that drops the window drafts with
    context the draft was never trained on)."""
    if not _door():
        pytest.skip("vLLM < 0.34: no V2 speculator to load (its matrix venv runs this)")
    draft = trained_models["qwen3-peagle-window32"]
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "speculator_load.py"),
         trained_models["qwen3-target"], draft, str(out)],
        capture_output=True, text=True, timeout=600, cwd=os.path.dirname(os.path.dirname(HERE)))
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(out.read_text())
    assert "load_error" not in result, result["load_error"]
    with open(os.path.join(draft, "config.json")) as f:
        layer_config = json.load(f)["transformer_layer_config"]
    assert set(layer_config["layer_types"]) == {"sliding_attention"}
    windows = result["draft_sliding_windows"]
    assert len(windows) == layer_config["num_hidden_layers"]
    assert set(windows.values()) == {layer_config["sliding_window"]}
