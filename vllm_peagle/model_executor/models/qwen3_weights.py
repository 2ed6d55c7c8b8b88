"""What a Qwen3 Eagle3/PEagle draft's layers carry beyond a Llama draft's: per-head
``q_norm`` and ``k_norm`` in every attention layer (speculators' names; a draft's
layer 0 may be written ``midlayer.``).  The one rule both this package's Qwen3
drafter (``qwen3_eagle3.py``, at load) and pre-flight (``preflight/weights.py``, on
the safetensors headers) apply; pure names, no vLLM import."""

from __future__ import annotations

import re
from collections.abc import Iterable

QK_NORMS = ("q_norm", "k_norm")
_QK_NORM = re.compile(r"layers\.(\d+)\.self_attn\.(q_norm|k_norm)\.weight$")


def layer_name(name: str) -> str:
    """speculators' ``midlayer.`` (a one-layer draft's layer 0) as ``layers.0.``."""
    return name.replace("midlayer.", "layers.0.")


def missing_qk_norms(names: Iterable[str], layers: Iterable[int]) -> list[str]:
    """The q/k norm weights of ``layers`` that ``names`` lack."""
    given = {layer_name(n) for n in names}
    return [f"layers.{i}.self_attn.{norm}.weight" for i in layers for norm in QK_NORMS
            if f"layers.{i}.self_attn.{norm}.weight" not in given]


def qk_norms_in(names: Iterable[str]) -> list[str]:
    """The q/k norm weights among ``names`` (as the checkpoint names them)."""
    return sorted(n for n in names if _QK_NORM.match(layer_name(n)))
