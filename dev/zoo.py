"""The checkpoint zoo: one tiny PEagle draft per variant users meet, written with
speculators' own config classes (``speculators`` 0.9.0's ``PEagleSpeculatorConfig``,
``SpeculatorsConfig``, ``GreedyTokenProposalConfig``) over dev/tiny.py's targets.

Each variant changes what users' checkpoints change: architecture, draft layers,
K, a reduced draft vocabulary (``d2t``/``t2d``), the aux layer count, sliding
attention (speculators >= 0.7's trainer default), the norm flags, where the mask
token sits; plus the shape of the published non-speculators P-EAGLE drafts
(vLLM's native Eagle3 format with ``ptd_token_id``, served as
``{"method": "eagle3", "model": ..., "parallel_drafting": true}``) and of the
published qwen3-arch speculators drafts (K 7, 32000-token draft vocabulary).

The weights are random but shaped as dev/tiny.py's drafts are (``fc`` averages the
aux states, ``lm_head`` predicts the target's token after next), so every variant
accepts some drafts and rejects others.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field

# The tiny targets have 8 layers; vLLM's default taps are (2, 4, 5).
AUX3_IDS = [2, 4, 5]
AUX4_IDS = [1, 3, 5, 6]


@dataclass(frozen=True)
class Variant:
    name: str
    arch: str = "llama"            # the draft's layer architecture (and its target's)
    layers: int = 1
    k: int = 4
    draft_vocab: int | None = None  # None: the target's whole vocabulary
    aux_ids: tuple[int, ...] = tuple(AUX3_IDS)
    sliding_window: int | None = None  # every draft layer sliding_attention
    full_layer_types: bool = False   # layer_types given, all full_attention
    norm_before_residual: bool = False
    norm_before_fc: bool = False
    fc_norm: bool = False
    norm_output: bool = False
    mask_top: bool = False           # the mask token is the top id of the vocabulary
    native: bool = False             # vLLM's native Eagle3 format with ptd_token_id
    why: str = ""
    extra: dict = field(default_factory=dict, hash=False, compare=False)


ZOO = (
    Variant("llama", why="Llama-arch draft, 1 layer, K 4"),
    Variant("qwen3", arch="qwen3", why="Qwen3-arch draft (speculators >= 0.7's default)"),
    Variant("qwen3-trainer-defaults", arch="qwen3", k=8, draft_vocab=256, sliding_window=2048,
            why="speculators >= 0.7's trainer defaults: qwen3, 1 layer, K 8, sliding "
                "window 2048, reduced draft vocabulary"),
    Variant("llama-4-layers", layers=4, why="4 draft layers"),
    Variant("qwen3-4-layers", arch="qwen3", layers=4, why="4 draft layers, Qwen3"),
    Variant("llama-k8", k=8, why="K 8"),
    Variant("llama-k18", k=18, why="K 18 (amazon's Qwen3-Coder P-EAGLE)"),
    Variant("llama-reduced-vocab", draft_vocab=256, why="d2t/t2d reduced draft vocabulary"),
    Variant("llama-aux4", aux_ids=tuple(AUX4_IDS), why="4 aux layers"),
    Variant("qwen3-aux4", arch="qwen3", aux_ids=tuple(AUX4_IDS), why="4 aux layers, Qwen3"),
    Variant("qwen3-sliding-4", arch="qwen3", sliding_window=4,
            why="sliding window small enough to change what is drafted"),
    Variant("qwen3-full-layer-types", arch="qwen3", full_layer_types=True,
            why="layer_types given, all full_attention"),
    Variant("llama-norm-before-residual", norm_before_residual=True,
            why="norm_before_residual true"),
    Variant("llama-norm-before-fc", norm_before_fc=True, why="norm_before_fc (input_norm)"),
    Variant("qwen3-fc-norm", arch="qwen3", fc_norm=True, why="fc_norm (a norm per aux state)"),
    Variant("qwen3-norm-output", arch="qwen3", norm_output=True, why="norm_output"),
    Variant("llama-mask-top", mask_top=True, why="mask token at the top of the vocabulary"),
    Variant("published-qwen3-8b-shape", arch="qwen3", k=7, draft_vocab=256,
            why="the shape of nm-testing/qwen3-8b-peagle-speculators and "
                "inference-optimization/Qwen3-8B-speculators.peagle-qwen3arch-ckpt4"),
    Variant("native-ptd", layers=2, k=5, draft_vocab=256, native=True,
            why="vLLM's native Eagle3 format with ptd_token_id (amazon's P-EAGLE drafts)"),
)
BY_NAME = {v.name: v for v in ZOO}


def speculative_request(variant: Variant, path: str, targets: dict[str, str]) -> dict:
    """How a user runs the variant: the checkpoint as the model, or (the native
    format) the target with the draft in ``speculative_config``."""
    if variant.native:
        return {"model": targets[variant.arch],
                "speculative_config": {"method": "eagle3", "model": path,
                                       "num_speculative_tokens": variant.k,
                                       "parallel_drafting": True}}
    return {"model": path}


def write_zoo(tiny: dict[str, str], out_dir: str, names=None) -> dict[str, str]:
    """Write every variant (or ``names``) under ``out_dir``; returns name -> path.
    Each is written to a temporary directory and moved into place whole."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    for variant in ZOO:
        if names is not None and variant.name not in names:
            continue
        final = os.path.join(out_dir, variant.name)
        if not os.path.exists(final):
            tmp = tempfile.mkdtemp(prefix=".zoo-", dir=out_dir)
            try:
                _write_variant(variant, tiny, tmp)
                os.replace(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        paths[variant.name] = final
    return paths


def targets_of(tiny: dict[str, str]) -> dict[str, str]:
    return {"llama": tiny["target"], "qwen3": tiny["qwen3-target"]}


# A zoo written beforehand (``python -m dev.zoo DIR``), for a Python without
# speculators or whose speculators cannot import (a release's matrix venv, a GPU
# image without ``datasets``).
ZOO_DIR_ENV = "VLLM_PEAGLE_ZOO_DIR"


def zoo_paths(tiny: dict[str, str], out_dir: str, names=None
              ) -> tuple[dict[str, str], dict[str, str]]:
    """(variant -> checkpoint, arch -> its target): the zoo ``ZOO_DIR_ENV`` names,
    with its own targets, else the zoo written under ``out_dir`` over ``tiny``'s."""
    ready = os.environ.get(ZOO_DIR_ENV)
    if ready:
        with open(os.path.join(ready, "zoo.json")) as f:
            index = json.load(f)
        return {n: index["paths"][n] for n in (names or index["paths"])}, index["targets"]
    return write_zoo(tiny, out_dir, names), targets_of(tiny)


def accepted_drafts(run: dict) -> dict:
    """What an engine run drafted and accepted, per position (``runner`` stats):
    two runs that agree here drafted alike."""
    stats = run["stats"]
    return {k: stats[k] for k in ("num_drafts", "num_draft_tokens", "per_pos_accepted")}


def _write_variant(v: Variant, tiny: dict[str, str], out: str) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    from dev.tiny import _draft_lm_head, _layer_tensors, _qk_norm_tensors

    target = targets_of(tiny)[v.arch]
    with open(os.path.join(target, "config.json")) as f:
        target_config = json.load(f)
    weights = load_file(os.path.join(target, "model.safetensors"))
    embed, lm_head = weights["model.embed_tokens.weight"], weights["lm_head.weight"]
    vocab, h = embed.shape
    n_heads, n_kv = target_config["num_attention_heads"], target_config["num_key_value_heads"]
    inter, head_dim = target_config["intermediate_size"], target_config["head_dim"]
    # Variants that differ only in attention or the norm flags share their weights
    # (so a test can tell what the flag alone changes).
    weights_key = f"{v.arch}-{v.layers}-{len(v.aux_ids)}-{v.draft_vocab}-{v.native}"
    gen = torch.Generator().manual_seed(sum(map(ord, weights_key)))
    n_aux = len(v.aux_ids)
    with open(os.path.join(os.path.dirname(tiny["peagle"]), "tiny.json")) as f:
        mask = json.load(f)["mask_token_id"]
    if v.mask_top:
        mask = vocab - 1

    head = _draft_lm_head(embed, lm_head)
    tensors = {"embed_tokens.weight": embed.clone(), "norm.weight": torch.ones(h),
               "fc.weight": torch.cat([torch.eye(h) / n_aux] * n_aux, dim=1),
               "mask_hidden": torch.randn(1, 1, n_aux * h, generator=gen)}
    if v.draft_vocab:
        # The draft's vocabulary: the target tokens its head ranks most often
        # first, as speculators picks the most frequent ones; d2t holds offsets
        # (target id = draft id + d2t[draft id]), t2d marks the kept target ids.
        keep = head.norm(dim=-1).argsort(descending=True)[:v.draft_vocab].sort().values
        tensors["lm_head.weight"] = head[keep].contiguous()
        tensors["d2t"] = (keep - torch.arange(v.draft_vocab)).to(torch.int64)
        t2d = torch.zeros(vocab, dtype=torch.bool)
        t2d[keep] = True
        tensors["t2d"] = t2d
    else:
        tensors["lm_head.weight"] = head
    for i in range(v.layers):
        # vLLM's Eagle3 drafter: the first layer's qkv reads [embeds, hidden] (2h).
        tensors.update(_layer_tensors(f"layers.{i}", h, inter, n_heads, n_kv,
                                      2 * h if i == 0 else h, gen, scale=0.02))
        if v.arch == "qwen3":
            tensors.update(_qk_norm_tensors(f"layers.{i}", head_dim, gen))
            # As dev/tiny.py's Qwen3 draft: attention with a say next to the residual
            # stream, so that how it attends (window, q/k norms) shows in the drafts.
            for proj in ("v_proj", "o_proj"):
                tensors[f"layers.{i}.self_attn.{proj}.weight"] *= 5
    tensors["layers.0.hidden_norm.weight"] = torch.ones(h)
    if v.norm_before_fc:
        tensors["input_norm.weight"] = 1 + 0.1 * torch.randn(n_aux * h, generator=gen)
    if v.fc_norm:
        for i in range(n_aux):
            tensors[f"fc_norm.{i}.weight"] = 1 + 0.1 * torch.randn(h, generator=gen)

    layer = {k: target_config[k] for k in (
        "vocab_size", "hidden_size", "intermediate_size", "num_attention_heads",
        "num_key_value_heads", "head_dim", "max_position_embeddings", "rms_norm_eps",
        "rope_theta", "hidden_act", "bos_token_id", "eos_token_id", "tie_word_embeddings")}
    layer.update(num_hidden_layers=v.layers, model_type=v.arch)
    if v.sliding_window:
        layer.update(layer_types=["sliding_attention"] * v.layers,
                     sliding_window=v.sliding_window, use_sliding_window=True)
    elif v.full_layer_types:
        layer.update(layer_types=["full_attention"] * v.layers)

    if v.native:
        config = _native_config(v, layer, target_config, mask)
        # vLLM's native format names a single layer's weights midlayer.*; more
        # layers keep layers.N.
        if v.layers == 1:
            tensors = {k.replace("layers.0.", "midlayer."): t for k, t in tensors.items()}
    else:
        config = _speculators_config(v, layer, target, target_config, mask)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    save_file({k: t.contiguous() for k, t in tensors.items()},
              os.path.join(out, "model.safetensors"), metadata={"format": "pt"})


def _speculators_config(v: Variant, layer: dict, target: str, target_config: dict,
                        mask: int) -> dict:
    """config.json as speculators 0.9.0 writes it (its own classes and serialiser)."""
    from speculators import SpeculatorsConfig, VerifierConfig
    from speculators.models.peagle.config import PEagleSpeculatorConfig
    from speculators.proposals.greedy import GreedyTokenProposalConfig
    from transformers import AutoConfig

    layer = dict(layer)
    layer_config = AutoConfig.for_model(layer.pop("model_type"), **layer)
    config = PEagleSpeculatorConfig(
        transformer_layer_config=layer_config,
        draft_vocab_size=v.draft_vocab or layer["vocab_size"],
        norm_before_residual=v.norm_before_residual,
        norm_before_fc=v.norm_before_fc, fc_norm=v.fc_norm, norm_output=v.norm_output,
        eagle_aux_hidden_state_layer_ids=list(v.aux_ids),
        mask_token_id=mask,
        speculators_config=SpeculatorsConfig(
            algorithm="peagle", default_proposal_method="greedy",
            proposal_methods=[GreedyTokenProposalConfig(speculative_tokens=v.k)],
            verifier=VerifierConfig(name_or_path=target,
                                    architectures=target_config["architectures"])))
    out = config.to_dict()
    # The tiny weights are float32; so are the runs that compare them.
    out["torch_dtype"] = "float32"
    return out


def _native_config(v: Variant, layer: dict, target_config: dict, mask: int) -> dict:
    """vLLM's native Eagle3 format, as the published P-EAGLE drafts ship it."""
    arch = {"llama": "LlamaForCausalLMEagle3", "qwen3": "Eagle3Qwen3ForCausalLM"}[v.arch]
    return dict(layer, architectures=[arch], draft_vocab_size=v.draft_vocab or layer["vocab_size"],
                target_hidden_size=target_config["hidden_size"], ptd_token_id=mask,
                eagle_config={"eagle_aux_hidden_state_layer_ids": list(v.aux_ids),
                              "use_aux_hidden_state": True},
                torch_dtype="float32")


def main(argv: list[str] | None = None) -> int:
    """Write dev/tiny.py's models and the zoo under DIR, with DIR/zoo.json (the
    index a venv without speculators reads through VLLM_PEAGLE_ZOO_DIR)."""
    import sys

    from dev.tiny import make_tiny

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m dev.zoo DIR", file=sys.stderr)
        return 2
    out = os.path.abspath(argv[0])
    index_path = os.path.join(out, "zoo.json")
    if os.path.exists(index_path):
        return 0
    tiny = make_tiny(os.path.join(out, "tiny"), seed=0)
    index = {"paths": write_zoo(tiny, os.path.join(out, "zoo")), "targets": targets_of(tiny)}
    with open(index_path + ".tmp", "w") as f:
        json.dump(index, f, indent=1)
    os.replace(index_path + ".tmp", index_path)
    print(f"zoo: {len(index['paths'])} checkpoints in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
