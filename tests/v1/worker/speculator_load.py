"""Run in a fresh process by ``test_peagle_speculator_load.py`` (vLLM >= 0.34,
its CUDA wheel on the CPU): build vLLM's engine config for a target and a
PEagle draft given explicitly, then this package's V2 speculator as the model
runner builds it, load the target and the draft through it, and report what
the speculator loaded.  No kernel runs: the draft pass needs Triton.

usage: python tests/v1/worker/speculator_load.py TARGET DRAFT OUT.json
"""

from __future__ import annotations

import json
import os
import sys


def main() -> int:
    target, draft, out_path = sys.argv[1:]
    import torch
    import vllm.triton_utils

    import vllm_peagle

    vllm_peagle.register()
    from vllm.engine.arg_utils import EngineArgs

    # As in tests/engine_config.py: the CPU platform's config check wants
    # triton-cpu; nothing here runs a kernel.  Put back before anything
    # imports Triton-using modules as if Triton were there.
    assume = os.environ.get("VLLM_PEAGLE_TEST_ASSUME_TRITON") == "1"
    has_triton = vllm.triton_utils.HAS_TRITON
    vllm.triton_utils.HAS_TRITON = has_triton or assume
    config = EngineArgs(model=target, speculative_config={"model": draft}, dtype="float32",
                        gpu_memory_utilization=0.3, max_num_seqs=8,
                        max_model_len=512).create_engine_config()
    vllm.triton_utils.HAS_TRITON = has_triton

    from vllm.config import set_current_vllm_config
    from vllm.distributed import init_distributed_environment, initialize_model_parallel
    from vllm.model_executor.model_loader import get_model
    from vllm.v1.worker.gpu.spec_decode import init_speculator

    result: dict = {}
    with set_current_vllm_config(config):
        init_distributed_environment(world_size=1, rank=0, local_rank=0, backend="gloo",
                                     distributed_init_method="tcp://127.0.0.1:29517")
        initialize_model_parallel(1, 1)
        speculator = init_speculator(config, torch.device("cpu"), None)
        result["speculator"] = type(speculator).__qualname__
        result["mask_token_id"] = speculator.mask_token_id
        result["max_num_draft_tokens"] = speculator.max_num_draft_tokens
        result["max_num_tokens"] = speculator.max_num_tokens
        result["max_num_reqs"] = speculator.max_num_reqs
        try:
            speculator.load_model(get_model(vllm_config=config))
        except Exception as e:  # the one-line error is what a test checks
            result["load_error"] = f"{type(e).__name__}: {e}"
        else:
            result["draft_class"] = type(speculator.model).__qualname__
            result["draft_layers"] = sorted(speculator.draft_attn_layer_names)
            # Each draft attention layer's window: what its KV cache spec, and
            # so the backend, gets (None: full attention).
            from vllm.config import get_layers_from_vllm_config
            from vllm.model_executor.layers.attention_layer_base import AttentionLayerBase

            layers = get_layers_from_vllm_config(config, AttentionLayerBase)
            result["draft_sliding_windows"] = {
                name: getattr(layers[name], "sliding_window", None)
                for name in result["draft_layers"]}
            result["mask_hidden_state"] = speculator.mask_hidden_state.tolist()
    with open(out_path, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
