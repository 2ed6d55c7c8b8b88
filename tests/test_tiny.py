"""``python -m dev.tiny``: offline, deterministic, speculators' format."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from safetensors import safe_open

from dev.tiny import tiny_digest

DRAFT_TENSORS = {"embed_tokens.weight", "fc.weight", "layers.0.hidden_norm.weight",
                 "norm.weight", "lm_head.weight", "layers.0.self_attn.q_proj.weight",
                 "layers.0.mlp.down_proj.weight"}


def make(dir_: str, seed: int) -> None:
    subprocess.run([sys.executable, "-m", "dev.tiny", dir_, "--seed", str(seed)], check=True, capture_output=True, timeout=300)


def tensor_names(path: str) -> set[str]:
    with safe_open(os.path.join(path, "model.safetensors"), "pt") as f:
        return set(f.keys())


def test_make_tiny_is_deterministic_for_a_seed(tmp_path):
    out = str(tmp_path / "m")
    make(out, 0)
    first = tiny_digest(out)
    make(out, 0)
    assert tiny_digest(out) == first
    make(out, 1)
    assert tiny_digest(out) != first


def test_make_tiny_layout(tiny_models):
    root = os.path.dirname(tiny_models["target"])
    with open(os.path.join(tiny_models["target"], "config.json")) as f:
        target = json.load(f)
    assert target["num_hidden_layers"] >= 8
    assert os.path.isfile(os.path.join(tiny_models["target"], "tokenizer.json"))
    assert "model.embed_tokens.weight" in tensor_names(tiny_models["target"])
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(tiny_models["target"], "tokenizer.json"))
    for kind in ("peagle", "eagle3"):
        with open(os.path.join(tiny_models[kind], "config.json")) as f:
            cfg = json.load(f)
        assert cfg["speculators_model_type"] == kind
        assert cfg["speculators_config"]["verifier"]["name_or_path"] == os.path.join(root, "target")
        assert cfg["speculators_config"]["proposal_methods"][0]["speculative_tokens"] == 3
        assert cfg["transformer_layer_config"]["model_type"] == "llama"
        names = tensor_names(tiny_models[kind])
        assert DRAFT_TENSORS <= names
        assert ("mask_hidden" in names) is (kind == "peagle")
    with open(os.path.join(tiny_models["peagle"], "config.json")) as f:
        mask = json.load(f)["mask_token_id"]
    assert mask == tok.token_to_id("<|mask|>")
    with safe_open(os.path.join(tiny_models["peagle"], "model.safetensors"), "pt") as f:
        fc = f.get_slice("fc.weight").get_shape()
        assert f.get_slice("mask_hidden").get_shape() == [fc[1]]
    assert fc == [target["hidden_size"], 3 * target["hidden_size"]]


QK_NORMS = {"layers.0.self_attn.q_norm.weight", "layers.0.self_attn.k_norm.weight"}


def test_make_tiny_qwen3_pair(tiny_models):
    root = os.path.dirname(tiny_models["target"])
    with open(os.path.join(tiny_models["qwen3-target"], "config.json")) as f:
        target = json.load(f)
    assert (target["model_type"], target["architectures"]) == ("qwen3", ["Qwen3ForCausalLM"])
    assert target["num_hidden_layers"] >= 8
    target_names = tensor_names(tiny_models["qwen3-target"])
    assert {f"model.layers.{i}.self_attn.{n}.weight" for i in range(target["num_hidden_layers"])
            for n in ("q_norm", "k_norm")} <= target_names
    with open(os.path.join(tiny_models["qwen3-peagle"], "config.json")) as f:
        cfg = json.load(f)
    assert cfg["speculators_model_type"] == "peagle"
    assert cfg["transformer_layer_config"]["model_type"] == "qwen3"
    assert cfg["speculators_config"]["verifier"]["name_or_path"] == os.path.join(
        root, "qwen3-target")
    names = tensor_names(tiny_models["qwen3-peagle"])
    assert DRAFT_TENSORS | QK_NORMS | {"mask_hidden"} <= names
    # The Llama drafts carry no q/k norms.
    assert not QK_NORMS & tensor_names(tiny_models["peagle"])
