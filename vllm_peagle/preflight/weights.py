"""Pre-flight, second level (beyond upstream): a PEagle checkpoint's safetensors
headers (never the tensors) against its config."""

from __future__ import annotations

import json
import os
import re
import struct
from typing import Any

from vllm_peagle.model_executor.models.qwen3_weights import (
    layer_name,
    missing_qk_norms,
    qk_norms_in,
)
from vllm_peagle.preflight.config import Problem, _is_int, aux_inputs, text_config


class SafetensorsHeaderError(ValueError):
    pass


# safetensors' prefix on every header error; the rest says what is wrong.
_SAFETENSORS_PREFIX = "Error while deserializing header: "


def read_safetensors_header(path: str) -> dict[str, list[int]]:
    """Tensor name -> shape, from the header alone (``safetensors.safe_open``
    maps the file and parses the header; no tensor is read).

    Raises ``SafetensorsHeaderError`` saying what is wrong with the file."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="numpy") as f:
            return {name: list(f.get_slice(name).get_shape()) for name in f.keys()}
    except SafetensorError as e:
        detail = str(e).removeprefix(_SAFETENSORS_PREFIX)
    except OSError as e:
        raise SafetensorsHeaderError(f"cannot be read ({e.strerror or e})") from None
    if "not fully covered" in detail:
        raise SafetensorsHeaderError(_coverage(path)) from None
    raise SafetensorsHeaderError(f"is not a valid safetensors file ({detail})") from None


def _coverage(path: str) -> str:
    """Why a file whose header safetensors accepted does not match its size.

    safetensors has validated the header (length, UTF-8, JSON, contiguous
    offsets) by the time it reports this; only the sizes are left to say."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    need = 8 + n + max((t["data_offsets"][1] for t in header.values()), default=0)
    if size < need:
        return f"is truncated: its tensors need {need} bytes, the file has {size}"
    return (f"has {size - need} bytes after its last tensor ({need} expected): "
            "not a file safetensors wrote")


def weights_problems(draft_dir: str, config_dict: dict[str, Any],
                     verifier_config: dict[str, Any] | None) -> list[Problem]:
    """Checks of the draft's safetensors headers against its config.

    Assumes ``config_problems`` found nothing."""
    files = sorted(f for f in os.listdir(draft_dir) if f.endswith(".safetensors"))
    if not files:
        return []
    problems: list[Problem] = []
    tensors: dict[str, list[int]] = {}
    for name in files:
        try:
            tensors.update(read_safetensors_header(os.path.join(draft_dir, name)))
        except SafetensorsHeaderError as e:
            problems.append(Problem(name, f"{e}. Fix: copy or download the weights again"))
    if problems:
        return problems
    add = lambda field, msg: problems.append(Problem(field, msg))  # noqa: E731

    layer = config_dict["transformer_layer_config"]
    hidden = layer.get("hidden_size")
    vocab = text_config(verifier_config or {}).get("vocab_size") or layer.get("vocab_size")
    draft_vocab = config_dict.get("draft_vocab_size") or vocab
    n_aux, target_hidden = aux_inputs(config_dict, verifier_config)
    fc_in = n_aux * target_hidden if _is_int(target_hidden) else None

    def shape(name: str) -> list[int] | None:
        return tensors.get(name)

    fc = shape("fc.weight")
    if fc is not None and fc_in is not None and fc != [hidden, fc_in]:
        add("fc.weight", f"has shape {fc} but the config says [hidden_size, n_aux * "
            f"target_hidden_size] = [{hidden}, {n_aux} * {target_hidden}] = [{hidden}, {fc_in}] "
            "(n_aux: num_aux_hidden_states, else the aux layer ids' count, else 3). "
            "Fix: set target_hidden_size / num_aux_hidden_states to match the weights")
    mask = shape("mask_hidden")
    if mask is None:
        add("mask_hidden", "is missing from the weights; PEagle's parallel drafting needs it "
            "(the hidden state fed at mask positions). Fix: export it with the draft")
    elif fc_in is not None and _numel(mask) != fc_in:
        add("mask_hidden", f"has shape {mask} ({_numel(mask)} elements) but must hold "
            f"n_aux * target_hidden_size = {fc_in}")
    lm_head = shape("lm_head.weight")
    if lm_head is not None and _is_int(draft_vocab) and lm_head[0] != draft_vocab:
        add("lm_head.weight", f"has {lm_head[0]} rows but draft_vocab_size is {draft_vocab}. "
            "Fix: set draft_vocab_size to the lm_head's rows")
    embed = shape("embed_tokens.weight")
    if embed is not None and _is_int(vocab) and embed[0] != vocab:
        add("embed_tokens.weight", f"has {embed[0]} rows but the verifier's vocab_size is "
            f"{vocab}; the draft embeds verifier token ids")
    problems += _qk_norm_problems(layer, tensors)
    if _is_int(vocab) and _is_int(draft_vocab) and draft_vocab < vocab:
        missing = [t for t in ("d2t", "t2d") if t not in tensors]
        if missing:
            add("draft_vocab_size", f"is {draft_vocab} < the verifier's {vocab} but the "
                f"weights lack {missing}, the draft-to-target vocabulary maps. Fix: export them")
    return problems


def _qk_norm_problems(layer: dict[str, Any], tensors: dict[str, list[int]]) -> list[Problem]:
    """A qwen3-arch draft carries per-head q_norm/k_norm in every layer; a
    llama-arch one has none (the Llama drafter has nowhere to put them)."""
    model_type = layer.get("model_type", "llama")
    # The attention layers the weights hold (not the config's count: a malformed
    # num_hidden_layers, 10**12 say, must not size anything here).
    indices = sorted({int(m.group(1)) for n in tensors
                      if (m := re.match(r"layers\.(\d+)\.self_attn\.", layer_name(n)))}) or [0]
    missing = missing_qk_norms(tensors, indices)
    present = qk_norms_in(tensors)
    if model_type == "qwen3" and missing:
        return [Problem("transformer_layer_config.model_type",
                        f"is 'qwen3' but the weights lack {missing}, which Qwen3 layers "
                        "have. Fix: export the draft again, or set model_type to the "
                        "layers it was trained with (llama)")]
    if model_type == "llama" and present:
        return [Problem("transformer_layer_config.model_type",
                        f"is 'llama' but the weights carry {present}, Qwen3 "
                        "layers' q/k norms. Fix: set \"model_type\": \"qwen3\" in "
                        "transformer_layer_config")]
    return []


def _numel(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
