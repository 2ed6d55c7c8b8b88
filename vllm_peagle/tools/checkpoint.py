"""Model directories' configs, written in one place: one shape type for the
tiny test models (``dev/tiny.py``), the trained tiny pairs (``dev/train_tiny.py``)
and the bench's config-only models (``bench.py``); one HF config writer; one
speculators config writer, as speculators writes an Eagle3 or PEagle draft."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from dataclasses import dataclass

# Per architecture: its names and the defaults of its own configs.
ARCHS = {
    "llama": {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
              "rope_theta": 10000.0, "rms_norm_eps": 1e-5},
    "qwen3": {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3",
              "rope_theta": 1000000.0, "rms_norm_eps": 1e-6},
}


@dataclass(frozen=True)
class ModelShape:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    max_position_embeddings: int
    arch: str = "llama"
    head_dim: int | None = None       # hidden_size // num_attention_heads when None
    rope_theta: float | None = None   # the architecture's default when None
    rms_norm_eps: float | None = None

    @property
    def hd(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads

    def replace(self, **changes) -> ModelShape:
        return dataclasses.replace(self, **changes)


# The tiny test models'.  A target needs 8+ layers (vLLM's default aux layers
# (2, L/2, L-3) must be distinct); head dim 32 is the smallest the CPU attention
# backend takes.
TINY_SHAPE = ModelShape(512, 128, 8, 4, 2, 256, 4096)


def write_whole(out_dir: str, write) -> object:
    """``write(tmp)`` into a temporary directory beside ``out_dir``, which then
    replaces ``out_dir`` whole: an interrupted run leaves nothing half-written.
    Returns what ``write`` returns."""
    out_dir = os.path.abspath(out_dir)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".peagle-", dir=parent)
    os.chmod(tmp, 0o755)
    try:
        result = write(tmp)
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def hf_config(shape: ModelShape, layers: int | None = None, bos: int = 0, eos: int = 1,
              dtype: str = "float32") -> dict:
    """The HF ``config.json`` of a model of ``shape`` (``layers`` decoder layers,
    default the shape's)."""
    arch = ARCHS[shape.arch]
    cfg = {
        "architectures": list(arch["architectures"]),
        "model_type": arch["model_type"],
        "vocab_size": shape.vocab_size,
        "hidden_size": shape.hidden_size,
        "intermediate_size": shape.intermediate_size,
        "num_hidden_layers": shape.num_hidden_layers if layers is None else layers,
        "num_attention_heads": shape.num_attention_heads,
        "num_key_value_heads": shape.num_key_value_heads,
        "head_dim": shape.hd,
        "max_position_embeddings": shape.max_position_embeddings,
        "rms_norm_eps": shape.rms_norm_eps or arch["rms_norm_eps"],
        "rope_theta": shape.rope_theta or arch["rope_theta"],
        "hidden_act": "silu",
        "tie_word_embeddings": False,
        "bos_token_id": bos,
        "eos_token_id": eos,
        # The tiny models' weights are float32, and CPU tests run them so: in
        # bf16 a greedy near-tie in these small models can flip between a
        # speculative and a target-only run (different batch shapes, different
        # rounding).  vLLM's "auto" dtype still downcasts float32 on a GPU.
        "torch_dtype": dtype,
    }
    if shape.arch == "qwen3":
        cfg["attention_bias"] = False
    return cfg


def speculators_config(kind: str, layer_config: dict, verifier_dir: str, k: int,
                       extra: dict) -> dict:
    """A config.json as speculators writes it for an Eagle3 or PEagle draft:
    ``layer_config`` the draft's HF config (its ``architectures`` name the
    verifier's)."""
    layer = dict(layer_config)
    verifier_arch = layer.pop("architectures", ["LlamaForCausalLM"])
    arch = {"peagle": "PEagleSpeculator", "eagle3": "Eagle3Speculator"}[kind]
    return {
        "architectures": [arch],
        "speculators_model_type": kind,
        "speculators_version": "0.4.0",
        "speculators_config": {
            "algorithm": kind,
            "default_proposal_method": "greedy",
            "proposal_methods": [{
                "proposal_type": "greedy",
                "speculative_tokens": k,
                "verifier_accept_k": 1,
                "accept_tolerance": 0.0,
            }],
            "verifier": {
                "architectures": verifier_arch,
                "name_or_path": verifier_dir,
            },
        },
        "transformer_layer_config": layer,
        "draft_vocab_size": layer["vocab_size"],
        "norm_before_residual": False,
        "target_hidden_size": None,
        "torch_dtype": layer.get("torch_dtype", "bfloat16"),
        **extra,
    }
