"""Mirrors ``vllm/model_executor/models/qwen3_eagle3.py``: the Eagle3 drafter with
Qwen3 decoder layers, for PEagle drafts that speculators (>= 0.7) writes with
``transformer_layer_config.model_type: qwen3``.

Upstream has it natively from vLLM 0.24.0 (vllm-project/vllm#43132); 0.16-0.23
have only the Llama drafter, which fails on a Qwen3 draft's
``self_attn.q_norm``/``k_norm`` weights.  This drafter is the installed
release's own ``llama_eagle3.Eagle3LlamaForCausalLM`` (fc over the aux hidden
states, ``hidden_norm``, the 2x-wide qkv input, ``mask_hidden`` for parallel
drafting, ``d2t``/``t2d``) with Qwen3's attention: RMSNorm over each head of q
and k before the rotary embedding, as ``qwen3.Qwen3Attention`` does.  Building
on the release's own classes keeps it in step with that release's loader,
proposer and compilation; the attention's ``forward`` is the one piece it
replaces, and its attribute names (``qkv_proj``, ``q_size``, ``kv_size``,
``rotary_emb``, ``attn``, ``o_proj``) are the same in 0.16 through 0.32.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import torch
from vllm.config import VllmConfig
from vllm.model_executor.layers.layernorm import RMSNorm
from vllm.model_executor.models.llama_eagle3 import Eagle3LlamaForCausalLM

from vllm_peagle.model_executor.models.qwen3_weights import layer_name, missing_qk_norms

# Checkpoint tensor-name pieces vLLM's loader stacks into one parameter.
_STACKED = {".q_proj.": ".qkv_proj.", ".k_proj.": ".qkv_proj.", ".v_proj.": ".qkv_proj.",
            ".gate_proj.": ".gate_up_proj.", ".up_proj.": ".gate_up_proj."}


class _Qwen3QKNorm:
    """``forward`` of ``qwen3.Qwen3Attention``: qk-norm per head, then rotary."""

    def forward(self, positions: torch.Tensor, hidden_states: torch.Tensor) -> torch.Tensor:
        qkv, _ = self.qkv_proj(hidden_states)
        q, k, v = qkv.split([self.q_size, self.kv_size, self.kv_size], dim=-1)
        q_by_head = q.view(*q.shape[:-1], q.shape[-1] // self.head_dim, self.head_dim)
        q = self.q_norm(q_by_head).view(q.shape)
        k_by_head = k.view(*k.shape[:-1], k.shape[-1] // self.head_dim, self.head_dim)
        k = self.k_norm(k_by_head).view(k.shape)
        q, k = self.rotary_emb(positions, q, k)
        attn_output = self.attn(q, k, v)
        output, _ = self.o_proj(attn_output)
        return output


@functools.cache
def _with_qk_norm(attention_cls: type) -> type:
    return type(f"Qwen3Eagle3{attention_cls.__name__}", (_Qwen3QKNorm, attention_cls), {})


class Eagle3Qwen3ForCausalLM(Eagle3LlamaForCausalLM):
    def __init__(self, *, vllm_config: VllmConfig, prefix: str = ""):
        super().__init__(vllm_config=vllm_config, prefix=prefix)
        eps = self.config.rms_norm_eps
        for layer in self.model.layers:
            attn = layer.self_attn
            # Built here, inside vLLM's model-init context: the draft's dtype and device.
            attn.q_norm = RMSNorm(attn.head_dim, eps=eps)
            attn.k_norm = RMSNorm(attn.head_dim, eps=eps)
            attn.__class__ = _with_qk_norm(type(attn))

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]):
        weights = list(weights)
        problem = self.layer_weight_problem([name for name, _ in weights])
        if problem:
            raise ValueError(problem)
        return super().load_weights(weights)

    def layer_weight_problem(self, names: list[str]) -> str | None:
        """One line if the checkpoint's decoder-layer tensors are not the ones
        this drafter has (a missing q_norm/k_norm, or a tensor it has no place for)."""
        params = {name for name, _ in self.named_parameters()}
        extra = []
        for raw in names:
            name = layer_name(raw)
            if not name.startswith("layers.") or "scale" in name or "zero_point" in name:
                continue
            for piece, stacked in _STACKED.items():
                name = name.replace(piece, stacked)
            if f"model.{name}" not in params:
                extra.append(raw)
        missing = missing_qk_norms(names, range(len(self.model.layers)))
        if not missing and not extra:
            return None
        return (f"Qwen3 PEagle/Eagle3 drafter: the checkpoint's layer weights do not fit "
                f"its qwen3 layers (missing {missing}, extra {extra}). Fix: a qwen3-arch "
                "draft carries self_attn.q_norm and k_norm per layer; a llama-arch draft "
                "says transformer_layer_config.model_type: llama")
