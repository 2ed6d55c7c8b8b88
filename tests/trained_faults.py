"""The trained PEagle draft broken three ways, each a fault that greedy
equality cannot see (speculative decoding is lossless whatever the draft
proposes) and acceptance at positions 2..K must:

- ``peagle-wrong-mask-token``: ``mask_token_id`` names another token, so the
  mask positions get a real token's embedding;
- ``peagle-zero-mask-hidden``: ``mask_hidden`` is zeros, so the mask positions
  get no learnt hidden state;
- ``peagle-sequential``: the same weights as a speculators Eagle3 checkpoint
  (no mask token, no ``mask_hidden``), so vLLM drafts positions 2..K one pass
  at a time from the draft's own hidden state, which it was never trained on.
"""

from __future__ import annotations

import json
import os

FAULTS = ("peagle-wrong-mask-token", "peagle-zero-mask-hidden", "peagle-sequential")
# Each trained PEagle draft with the faults its figures catch.  Not the Qwen3
# draft with another mask token: it tells mask positions by mask_hidden and
# barely reads the mask token's embedding (on the CPU, 2026-11-28: positions
# 2..K kept 95% of their summed rate, every one within the figures' tolerance),
# so acceptance cannot show that fault there; the Llama draft's test does.
TRAINED_FAULTS = {
    "peagle": FAULTS,
    "qwen3-peagle": ("peagle-zero-mask-hidden", "peagle-sequential"),
}


def wrong_mask_token_id(draft_dir: str) -> int:
    """A frequent real token of the draft's verifier: the first of "Answer"."""
    from tokenizers import Tokenizer

    with open(os.path.join(draft_dir, "config.json")) as f:
        verifier = json.load(f)["speculators_config"]["verifier"]["name_or_path"]
    tok = Tokenizer.from_file(os.path.join(verifier, "tokenizer.json"))
    return tok.encode("Answer").ids[0]


def write_faulty_drafts(peagle_dir: str, out_dir: str, prefix: str = "",
                        faults: tuple[str, ...] = FAULTS) -> dict[str, str]:
    """``faults`` of the draft in ``peagle_dir``, named ``prefix + fault``."""
    import torch
    from safetensors.torch import load_file, save_file

    with open(os.path.join(peagle_dir, "config.json")) as f:
        config = json.load(f)
    tensors = load_file(os.path.join(peagle_dir, "model.safetensors"))
    paths = {}
    for fault in faults:
        cfg, weights = json.loads(json.dumps(config)), dict(tensors)
        if fault == "peagle-wrong-mask-token":
            wrong = wrong_mask_token_id(peagle_dir)
            assert wrong != cfg["mask_token_id"]
            cfg["mask_token_id"] = wrong
        elif fault == "peagle-zero-mask-hidden":
            weights["mask_hidden"] = torch.zeros_like(weights["mask_hidden"])
        else:
            cfg.update(architectures=["Eagle3Speculator"], speculators_model_type="eagle3")
            cfg["speculators_config"]["algorithm"] = "eagle3"
            del cfg["mask_token_id"]
            del weights["mask_hidden"]
        d = os.path.join(out_dir, prefix + fault)
        os.makedirs(d)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        save_file(weights, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
        paths[prefix + fault] = d
    return paths
