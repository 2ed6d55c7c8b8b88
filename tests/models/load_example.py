"""Run in a fresh process: load a tiny PEagle example with the draft's HF config
naming ``ARCH``, and report which class vLLM built for the draft.

usage: python tests/models/load_example.py ARCH DRAFT_DIR OUT.json
The checkpoint's ``transformer_layer_config.model_type`` picks the architecture
name, so to load an example under another PEagle name the ``peagle`` algorithm
is wrapped to write that name instead; everything else is vLLM's loading path.
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    arch, draft, out = sys.argv[1:]
    import vllm_peagle

    vllm_peagle.register()
    from vllm.transformers_utils.configs.speculators import algos

    update = algos.SUPPORTED_SPECULATORS_TYPES["peagle"]

    def update_as(config_dict, pre_trained_config):
        update(config_dict=config_dict, pre_trained_config=pre_trained_config)
        pre_trained_config["architectures"] = [arch]

    algos.SUPPORTED_SPECULATORS_TYPES["peagle"] = update_as
    from vllm import LLM, SamplingParams

    llm = LLM(model=draft, gpu_memory_utilization=0.3, max_model_len=512, dtype="float32")
    spec = llm.llm_engine.vllm_config.speculative_config
    out_ids = llm.generate(["Return the value"], SamplingParams(temperature=0, max_tokens=8),
                           use_tqdm=False)[0].outputs[0].token_ids
    from vllm import ModelRegistry

    cls, _ = ModelRegistry.resolve_model_cls(spec.draft_model_config.hf_config.architectures,
                                             spec.draft_model_config)
    with open(out, "w") as f:
        json.dump({"draft_architectures": spec.draft_model_config.hf_config.architectures,
                   "draft_class": f"{cls.__module__}.{cls.__qualname__}",
                   "parallel_drafting": spec.parallel_drafting,
                   "generated": len(out_ids)}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
