"""Malformed PEagle checkpoints, each built from the tiny one in a directory of
its own: (case id, the field its message must name, builder)."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from typing import Callable


def _edit_config(draft: str, edit: Callable[[dict], None]) -> None:
    path = os.path.join(draft, "config.json")
    with open(path) as f:
        config = json.load(f)
    edit(config)
    with open(path, "w") as f:
        json.dump(config, f, indent=2)


def _own_verifier(draft: str, root: str, target: str, edit: Callable[[dict], None]) -> None:
    """Give the draft a copy of the target, with its config.json edited."""
    verifier = os.path.join(root, "verifier")
    shutil.copytree(target, verifier)
    _edit_config(verifier, edit)
    _edit_config(draft, lambda c: c["speculators_config"]["verifier"].update(name_or_path=verifier))


def _rewrite_weights(draft: str, edit: Callable[[dict], None]) -> None:
    from safetensors.torch import load_file, save_file

    path = os.path.join(draft, "model.safetensors")
    tensors = load_file(path)
    edit(tensors)
    save_file(tensors, path)


def _proposal(c: dict) -> dict:
    return c["speculators_config"]["proposal_methods"][0]


def _fc_too_wide(t: dict) -> None:
    import torch

    t["fc.weight"] = torch.zeros(t["fc.weight"].shape[0], t["fc.weight"].shape[1] + 128)


def _add_qk_norm(t: dict) -> None:
    import torch

    head_dim = 32  # the tiny models' hidden 128 / 4 heads
    t["layers.0.self_attn.q_norm.weight"] = torch.ones(head_dim)
    t["layers.0.self_attn.k_norm.weight"] = torch.ones(head_dim)


def widen_to_aux(draft: str, ids: list[int]) -> None:
    """Make a draft take ``len(ids)`` aux hidden states, as speculators writes it
    for a verifier tapped at ``ids``: the ids in the config, ``fc.weight`` and
    ``mask_hidden`` sized to match (the added inputs' weights small and seeded)."""
    import torch

    def widen(t: dict) -> None:
        h = t["fc.weight"].shape[0]
        extra = len(ids) * h - t["fc.weight"].shape[1]
        g = torch.Generator().manual_seed(len(ids))
        t["fc.weight"] = torch.cat([t["fc.weight"], 0.02 * torch.randn(
            h, extra, generator=g, dtype=t["fc.weight"].dtype)], dim=1).contiguous()
        flat = t["mask_hidden"].reshape(-1)
        t["mask_hidden"] = torch.cat([flat, 0.02 * torch.randn(
            extra, generator=g, dtype=flat.dtype)]).reshape(1, 1, -1).contiguous()

    _rewrite_weights(draft, widen)
    _edit_config(draft, lambda c: c.update(eagle_aux_hidden_state_layer_ids=ids))


def _truncate(draft: str) -> None:
    path = os.path.join(draft, "model.safetensors")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def _edit_header(draft: str, edit: Callable[[dict], None] | None = None,
                 header_len: int | None = None, raw: bytes | None = None) -> None:
    """Rewrite model.safetensors' JSON header (the tensor bytes stay): edit the
    parsed header, or write ``raw`` header bytes, or declare ``header_len``."""
    path = os.path.join(draft, "model.safetensors")
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header, body = json.loads(data[8:8 + n]), data[8 + n:]
    if edit is not None:
        edit(header)
    text = raw if raw is not None else json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", header_len if header_len is not None else len(text)))
        f.write(text + body)


def _not_safetensors(draft: str) -> None:
    with open(os.path.join(draft, "model.safetensors"), "wb") as f:
        f.write(b"PK\x03\x04 this is a zip file, not safetensors" * 4)


# (id, field named in the message, build(draft_dir, root_dir, target_dir), engine-comparable)
# engine-comparable: the same message must come out of EngineArgs.create_engine_config().
# Two cases are not: without a readable config.json nothing marks the directory as a
# PEagle draft, so vLLM treats it as an ordinary model and reports that itself.
CASES = [
    ("missing config.json", "config.json",
     lambda d, r, t: os.remove(os.path.join(d, "config.json")), False),
    ("invalid JSON", "config.json",
     lambda d, r, t: open(os.path.join(d, "config.json"), "w").write("{not json"), False),
    ("missing mask_token_id", "mask_token_id",
     lambda d, r, t: _edit_config(d, lambda c: c.pop("mask_token_id")), True),
    ("string mask_token_id", "mask_token_id",
     lambda d, r, t: _edit_config(d, lambda c: c.update(mask_token_id="3")), True),
    ("negative mask_token_id", "mask_token_id",
     lambda d, r, t: _edit_config(d, lambda c: c.update(mask_token_id=-5)), True),
    ("mask_token_id beyond the vocab", "mask_token_id",
     lambda d, r, t: _edit_config(d, lambda c: c.update(mask_token_id=100000)), True),
    ("zero speculative_tokens", "speculators_config.proposal_methods[0].speculative_tokens",
     lambda d, r, t: _edit_config(d, lambda c: _proposal(c).update(speculative_tokens=0)), True),
    ("negative speculative_tokens", "speculators_config.proposal_methods[0].speculative_tokens",
     lambda d, r, t: _edit_config(d, lambda c: _proposal(c).update(speculative_tokens=-2)), True),
    ("missing speculative_tokens", "speculators_config.proposal_methods[0].speculative_tokens",
     lambda d, r, t: _edit_config(d, lambda c: _proposal(c).pop("speculative_tokens")), True),
    ("missing verifier name_or_path", "speculators_config.verifier.name_or_path",
     lambda d, r, t: _edit_config(d, lambda c: c["speculators_config"]["verifier"].pop(
         "name_or_path")), True),
    ("missing transformer_layer_config", "transformer_layer_config",
     lambda d, r, t: _edit_config(d, lambda c: c.pop("transformer_layer_config")), True),
    ("unsupported model_type", "transformer_layer_config.model_type",
     lambda d, r, t: _edit_config(d, lambda c: c["transformer_layer_config"].update(
         model_type="gpt2")), True),
    ("string draft_vocab_size", "draft_vocab_size",
     lambda d, r, t: _edit_config(d, lambda c: c.update(draft_vocab_size="512")), True),
    ("aux ids beyond the verifier's layers", "eagle_aux_hidden_state_layer_ids",
     lambda d, r, t: _edit_config(d, lambda c: c.update(
         eagle_aux_hidden_state_layer_ids=[2, 4, 11])), True),
    ("too-shallow verifier without explicit ids", "eagle_aux_hidden_state_layer_ids",
     lambda d, r, t: _own_verifier(d, r, t, lambda c: c.update(num_hidden_layers=4)), True),
    ("target_hidden_size mismatch", "target_hidden_size",
     lambda d, r, t: _edit_config(d, lambda c: c.update(target_hidden_size=256)), True),
    ("wrong fc shape", "fc.weight",
     lambda d, r, t: _rewrite_weights(d, _fc_too_wide), True),
    ("missing mask_hidden", "mask_hidden",
     lambda d, r, t: _rewrite_weights(d, lambda w: w.pop("mask_hidden")), True),
    ("truncated safetensors", "model.safetensors",
     lambda d, r, t: _truncate(d), True),
    ("not a safetensors file", "model.safetensors",
     lambda d, r, t: _not_safetensors(d), True),
    ("qwen3 model_type without q_norm/k_norm weights", "transformer_layer_config.model_type",
     lambda d, r, t: _edit_config(d, lambda c: c["transformer_layer_config"].update(
         model_type="qwen3")), True),
    ("llama model_type with q_norm/k_norm weights", "transformer_layer_config.model_type",
     lambda d, r, t: _rewrite_weights(d, _add_qk_norm), True),
    ("header entry not an object", "model.safetensors",
     lambda d, r, t: _edit_header(d, lambda h: h.update({"fc.weight": 5})), True),
    ("header data_offsets null", "model.safetensors",
     lambda d, r, t: _edit_header(d, lambda h: h["fc.weight"].update(data_offsets=None)), True),
    ("header data_offsets out of range", "model.safetensors",
     lambda d, r, t: _edit_header(d, lambda h: h["fc.weight"].update(
         data_offsets=[h["fc.weight"]["data_offsets"][0], 10**12])), True),
    ("header length past the end of the file", "model.safetensors",
     lambda d, r, t: _edit_header(d, header_len=10**7), True),
    ("non-UTF-8 header", "model.safetensors",
     lambda d, r, t: _edit_header(d, raw=b'{"fc.weight\xff\xfe": {}}'), True),
    ("missing verifier directory", "speculators_config.verifier.name_or_path",
     lambda d, r, t: _edit_config(d, lambda c: c["speculators_config"]["verifier"].update(
         name_or_path=os.path.join(r, "no-such-verifier"))), True),
]


def build_case(case_id: str, root: str, tiny: dict[str, str]) -> str:
    """Copy the tiny PEagle draft to ``root/draft`` and break it as ``case_id`` says."""
    draft = os.path.join(root, "draft")
    shutil.copytree(tiny["peagle"], draft)
    build = {c[0]: c[2] for c in CASES}[case_id]
    build(draft, root, tiny["target"])
    return draft


def tree_state(path: str) -> dict[str, bytes]:
    state = {}
    for dirpath, _, files in os.walk(path):
        for name in files:
            full = os.path.join(dirpath, name)
            with open(full, "rb") as f:
                state[os.path.relpath(full, path)] = f.read()
    return state


def run_check(*args: str) -> subprocess.CompletedProcess:
    """``vllm-peagle check ARGS`` in a fresh process."""
    return subprocess.run([sys.executable, "-m", "vllm_peagle.tools.cli", "check", *args],
                          capture_output=True, text=True, timeout=120)


def problem_lines(draft: str, stdout: str) -> list[str]:
    """The problems ``check`` printed for ``draft``, without the ``DIR: `` prefix."""
    prefix = f"{draft}: "
    return [line[len(prefix):] for line in stdout.splitlines() if line.startswith(prefix)]
