"""``python -m dev.tiny DIR``: tiny offline models for the tests (developers' code,
not in the wheel).

Writes, with no network:
- ``target/``: a Llama with real safetensors weights and a BPE tokenizer trained
  with ``tokenizers`` on docstrings of Python's standard library;
- ``peagle/``: a PEagle draft in the speculators format (config.json as
  speculators writes it, weights under speculators' tensor names incl.
  ``mask_hidden``), verifier pointing at ``target/``;
- ``eagle3/``: the same draft as a speculators Eagle3 checkpoint;
- ``qwen3-target/`` and ``qwen3-peagle/``: the same pair with Qwen3 layers
  (per-head ``q_norm``/``k_norm``), the draft a qwen3-arch PEagle checkpoint as
  speculators >= 0.7 writes by default.

The weights (float32) are random but shaped so drafting is not hopeless: the target's
decoder layers are small next to its embeddings, so it acts roughly like a
bigram model, and the draft copies the target's embeddings and lm_head and
averages the aux hidden states in ``fc``, so its first draft token is often
right.  That gives acceptance rates between 0 and 1, which exercises both the
accept and the reject paths of the rejection sampler.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from dataclasses import asdict

from vllm_peagle.tools.checkpoint import (
    TINY_SHAPE,
    ModelShape,
    hf_config,
    speculators_config,
    write_whole,
)

MASK_TOKEN = "<|mask|>"
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", MASK_TOKEN]
_CORPUS_MODULES = ("json", "os", "re", "string", "textwrap", "collections", "functools",
                   "itertools", "pathlib", "argparse", "logging", "datetime", "random",
                   "statistics", "fractions", "decimal", "csv", "heapq", "bisect", "shutil")


def corpus() -> list[str]:
    """Text that ships with Python: docstrings of a fixed list of stdlib modules."""
    import importlib

    texts = []
    for name in _CORPUS_MODULES:
        module = importlib.import_module(name)
        for _, obj in sorted(vars(module).items()):
            doc = inspect.getdoc(obj) if callable(obj) or inspect.ismodule(obj) else None
            if doc:
                texts.append(doc)
    return texts


def build_tokenizer(vocab_size: int, texts: list[str] | None = None):
    """A byte-level BPE tokenizer trained on ``texts`` (default: ``corpus()``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus() if texts is None else texts, trainer=trainer)
    return tok


def write_tokenizer(tok, model_dir: str, max_length: int) -> None:
    """tokenizer.json and the tokenizer_config.json transformers loads it with."""
    tok.save(os.path.join(model_dir, "tokenizer.json"))
    with open(os.path.join(model_dir, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>",
                   "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": False,
                   "model_max_length": max_length}, f, indent=2)


def _qk_norm_tensors(prefix: str, head_dim: int, gen) -> dict:
    """Qwen3's per-head q_norm/k_norm weights, away from 1 so that a drafter
    that skipped them would draft differently."""
    import torch

    return {f"{prefix}.self_attn.{n}.weight": 1 + 0.5 * torch.randn(head_dim, generator=gen)
            for n in ("q_norm", "k_norm")}


def decoder_layer_shapes(prefix: str, h: int, inter: int, n_heads: int, n_kv: int,
                         qkv_in: int) -> dict[str, tuple[int, ...]]:
    """A Llama decoder layer's tensors (speculators' names) and their shapes,
    norms first; ``qkv_in`` the width q/k/v read (an Eagle3 draft's layer 0
    reads [embeds, hidden], 2h)."""
    hd = h // n_heads
    return {
        f"{prefix}.input_layernorm.weight": (h,),
        f"{prefix}.post_attention_layernorm.weight": (h,),
        f"{prefix}.self_attn.q_proj.weight": (n_heads * hd, qkv_in),
        f"{prefix}.self_attn.k_proj.weight": (n_kv * hd, qkv_in),
        f"{prefix}.self_attn.v_proj.weight": (n_kv * hd, qkv_in),
        f"{prefix}.self_attn.o_proj.weight": (h, n_heads * hd),
        f"{prefix}.mlp.gate_proj.weight": (inter, h),
        f"{prefix}.mlp.up_proj.weight": (inter, h),
        f"{prefix}.mlp.down_proj.weight": (h, inter),
    }


def _layer_tensors(prefix: str, h: int, inter: int, n_heads: int, n_kv: int,
                   qkv_in: int, gen, scale: float) -> dict:
    """Random projections (drawn in q, k, v, o, gate, up, down order), unit norms."""
    import torch

    return {name: torch.ones(shape) if name.endswith("layernorm.weight")
            else torch.randn(*shape, generator=gen) * scale
            for name, shape in decoder_layer_shapes(prefix, h, inter, n_heads, n_kv,
                                                    qkv_in).items()}


def _draft_lm_head(embed, lm_head):
    """An lm_head that maps the last token t to the target's token after next.

    The target is close to a bigram model f(t) = argmax lm_head . norm(embed t),
    and the draft's output is close to norm(embed t) (fc averages the aux states,
    which are close to embed t).  The draft sees token f(t) as input and should
    predict f(f(t)): so row j sums the normed embeddings of every t with
    f(f(t)) = j.  Not exact (the layers add context), which is the point.
    """
    import torch

    normed = embed / embed.pow(2).mean(-1, keepdim=True).add(1e-5).sqrt()
    f = (normed @ lm_head.T).argmax(-1)
    head = torch.zeros_like(lm_head)
    head.index_add_(0, f[f], normed)
    return head


# K written into the tiny drafts.
TINY_K = 3


def make_tiny(out_dir: str, seed: int = 0, shape: ModelShape = TINY_SHAPE) -> dict[str, str]:
    """Write target/, peagle/ and eagle3/ under ``out_dir``; returns their paths.

    Deterministic for a seed (and a Python version, whose docstrings train the
    tokenizer).  Written to a temporary directory first, so an interrupted run
    leaves nothing half-written."""
    import torch
    from safetensors.torch import save_file

    out_dir = os.path.abspath(out_dir)
    return write_whole(out_dir, lambda tmp: _write_all(tmp, out_dir, seed, shape, torch,
                                                       save_file))


def _write_all(tmp: str, final: str, seed: int, shape: ModelShape, torch, save_file) -> dict:
    gen = torch.Generator().manual_seed(seed)
    tok = build_tokenizer(shape.vocab_size)
    vocab = tok.get_vocab_size()
    bos, eos, mask = (tok.token_to_id(t) for t in ("<s>", "</s>", MASK_TOKEN))
    paths = {}
    # The Llama pair first, so its weights do not depend on the Qwen3 pair's.
    for arch, prefix, kinds in (("llama", "", ("peagle", "eagle3")),
                                ("qwen3", "qwen3-", ("peagle",))):
        paths.update(_write_pair(tmp, final, prefix, arch, kinds, shape, tok,
                                 (vocab, bos, eos, mask), gen, torch, save_file))
    with open(os.path.join(tmp, "tiny.json"), "w") as f:
        json.dump(_stamp(seed, shape) | {"mask_token_id": mask}, f, indent=2)
    return paths


def _write_pair(tmp: str, final: str, prefix: str, arch: str, kinds: tuple[str, ...],
                shape: ModelShape, tok, ids: tuple[int, int, int, int], gen, torch,
                save_file) -> dict:
    """``{prefix}target`` and a ``{prefix}{kind}`` draft for each kind."""
    vocab, bos, eos, mask = ids
    h, n_layers = shape.hidden_size, shape.num_hidden_layers
    head_dim = h // shape.num_attention_heads
    shape = shape.replace(arch=arch, vocab_size=vocab)

    # --- target ---
    target = os.path.join(tmp, f"{prefix}target")
    os.makedirs(target)
    write_tokenizer(tok, target, shape.max_position_embeddings)
    cfg = hf_config(shape, bos=bos, eos=eos)
    with open(os.path.join(target, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(target, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": bos, "eos_token_id": eos}, f, indent=2)
    embed = torch.randn(vocab, h, generator=gen)
    lm_head = torch.randn(vocab, h, generator=gen)
    weights = {"model.embed_tokens.weight": embed, "lm_head.weight": lm_head,
               "model.norm.weight": torch.ones(h)}
    for i in range(n_layers):
        weights.update(_layer_tensors(f"model.layers.{i}", h, shape.intermediate_size,
                                      shape.num_attention_heads, shape.num_key_value_heads,
                                      h, gen, scale=0.02))
        if arch == "qwen3":
            weights.update(_qk_norm_tensors(f"model.layers.{i}", head_dim, gen))
    save_file(weights, os.path.join(target, "model.safetensors"), metadata={"format": "pt"})

    # --- drafts: one decoder layer whose qkv sees [embeds, hidden] (2h) ---
    layer_cfg = hf_config(shape, layers=1, bos=bos, eos=eos)
    n_aux = 3
    draft = {
        "embed_tokens.weight": embed.clone(),
        "lm_head.weight": _draft_lm_head(embed, lm_head),
        "norm.weight": torch.ones(h),
        # fc averages the three aux hidden states: the draft starts from the
        # target's own view of the last token.
        "fc.weight": torch.cat([torch.eye(h) / n_aux] * n_aux, dim=1),
        "layers.0.hidden_norm.weight": torch.ones(h),
        **_layer_tensors("layers.0", h, shape.intermediate_size, shape.num_attention_heads,
                         shape.num_key_value_heads, 2 * h, gen, scale=0.02),
    }
    if arch == "qwen3":
        draft.update(_qk_norm_tensors("layers.0", head_dim, gen))
        # Give the draft's attention a say next to the residual stream, so that
        # how it scores (q/k norms) shows in what the draft proposes.
        for proj in ("v_proj", "o_proj"):
            draft[f"layers.0.self_attn.{proj}.weight"] *= 5
    final_target = os.path.join(final, f"{prefix}target")
    paths = {f"{prefix}target": final_target}
    for kind in kinds:
        d = os.path.join(tmp, f"{prefix}{kind}")
        os.makedirs(d)
        tensors = dict(draft)
        extra = {}
        if kind == "peagle":
            tensors["mask_hidden"] = torch.randn(n_aux * h, generator=gen)
            extra["mask_token_id"] = mask
        config = speculators_config(kind, layer_cfg, final_target, TINY_K, extra)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        save_file({k: v.contiguous() for k, v in tensors.items()},
                  os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
        paths[f"{prefix}{kind}"] = os.path.join(final, f"{prefix}{kind}")
    return paths


# Recorded in tiny.json: bump when the files make_tiny writes change.
TINY_FORMAT = 5


def _stamp(seed: int, shape: ModelShape) -> dict:
    return {"format": TINY_FORMAT, "seed": seed, "shape": asdict(shape), "k": TINY_K}


def tiny_digest(out_dir: str) -> str:
    """sha256 over every file under ``out_dir`` (paths and bytes)."""
    h = hashlib.sha256()
    for root, _, files in sorted(os.walk(out_dir)):
        for name in sorted(files):
            path = os.path.join(root, name)
            h.update(os.path.relpath(path, out_dir).encode())
            with open(path, "rb") as f:
                h.update(f.read())
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m dev.tiny",
                                description="write tiny offline target/peagle/eagle3 models")
    p.add_argument("dir")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    for name, path in make_tiny(args.dir, seed=args.seed).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
