"""Run in a fresh process by tests (and the GPU session): what ``register()`` does
to vLLM's tables in one ``VLLM_PEAGLE_MODE``, and what an engine config built
from a PEagle checkpoint looks like.

``collect(PEAGLE_DIR, BAD_DIRS)`` runs first in the config-only process of
each mode (tests/engine_config.py), before anything registers the plugin;
``python tests/plugin_state.py PEAGLE_DIR OUT.json [BAD_DIR ...]`` alone.
Each BAD_DIR's ``create_engine_config`` error is recorded.
"""

from __future__ import annotations

import json
import os
import sys

from vllm_peagle.model_executor.models.registry import PEAGLE_MODELS  # noqa: E402

PEAGLE_ARCHS = tuple(PEAGLE_MODELS)


def _qualname(attr) -> str:
    fn = getattr(attr, "__func__", attr)
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def snapshot() -> dict:
    """A comparable picture of the three tables the plugin may touch."""
    from vllm import ModelRegistry
    from vllm.engine import arg_utils
    from vllm.transformers_utils import config as tu_config
    from vllm.transformers_utils.configs.speculators import algos
    from vllm.transformers_utils.configs.speculators.base import SpeculatorsConfig

    try:  # vLLM >= 0.34: the V2 runner's custom speculative methods
        from vllm.v1.worker.gpu.spec_decode.speculator_config import (
            registered_speculative_methods,
        )
    except ImportError:
        methods = None
    else:
        methods = registered_speculative_methods()
    return {
        "speculative_methods": methods,
        # Pre-flight wraps maybe_override_with_speculators where vLLM calls it.
        "preflight_hooks": {
            where: bool(getattr(module.maybe_override_with_speculators,
                                "__vllm_peagle_preflight__", False))
            for where, module in (("config", tu_config), ("arg_utils", arg_utils))},
        "registry": {a: repr(ModelRegistry.models.get(a)) for a in PEAGLE_ARCHS},
        "registry_ids": {a: id(ModelRegistry.models.get(a)) for a in PEAGLE_ARCHS},
        "algos": {k: f"{v.__module__}.{v.__qualname__}"
                  for k, v in algos.SUPPORTED_SPECULATORS_TYPES.items()},
        "speculators_config": {
            name: _qualname(SpeculatorsConfig.__dict__.get(name))
            for name in ("build_vllm_speculative_config", "validate_speculators_config",
                         "from_pretrained")},
    }


def main() -> int:
    peagle_dir, out_path, *bad_dirs = sys.argv[1:]
    with open(out_path, "w") as f:
        json.dump(collect(peagle_dir, bad_dirs), f, indent=1, default=str)
    return 0


def collect(peagle_dir: str, bad_dirs: list[str]) -> dict:
    import vllm_peagle

    state: dict = {"mode": os.environ.get(vllm_peagle.MODE_ENV, "auto")}
    state["before"] = snapshot()
    state["register_1"] = vllm_peagle.register()
    state["after_1"] = snapshot()
    state["register_2"] = vllm_peagle.register()
    state["after_2"] = snapshot()

    from vllm import ModelRegistry

    resolved = {}
    for arch in PEAGLE_ARCHS:
        cls = ModelRegistry._try_load_model_cls(arch)
        resolved[arch] = None if cls is None else f"{cls.__module__}.{cls.__qualname__}"
    state["resolved"] = resolved

    # The drafter modules resolved above are imported now (through the plugin's
    # post-import hook where it is on): does an fc_norm see a 1-D input?
    from vllm_peagle.model_executor.models.fc_norm_fix import DRAFTERS, norms_see_1d_input

    state["fc_norm_1d"] = {
        f"{module}.{name}": norms_see_1d_input(getattr(sys.modules[module], name))
        for module, name in DRAFTERS.items() if module in sys.modules}

    from vllm.transformers_utils.configs.speculators import algos

    fn = algos.SUPPORTED_SPECULATORS_TYPES.get("peagle")
    state["peagle_algo"] = None if fn is None else f"{fn.__module__}.{fn.__qualname__}"

    from vllm.engine.arg_utils import EngineArgs

    try:
        config = EngineArgs(model=peagle_dir, gpu_memory_utilization=0.3).create_engine_config()
    except Exception as e:  # vLLM < 0.22 with the plugin off rejects the checkpoint
        state["engine_config"] = None
        state["engine_config_error"] = f"{type(e).__name__}: {e}"
    else:
        from vllm_peagle.tools.runner import speculative_summary

        state["engine_config"] = speculative_summary(config)
    state["after_engine_config"] = snapshot()

    errors = {}
    for bad in bad_dirs:
        try:
            EngineArgs(model=bad, gpu_memory_utilization=0.3).create_engine_config()
            errors[bad] = None
        except Exception as e:  # the type and text are what the tests check
            errors[bad] = {"type": type(e).__name__, "mro": [c.__name__ for c in type(e).__mro__],
                           "message": str(e)}
    state["errors"] = errors

    import vllm

    from vllm_peagle import features

    state["vllm_version"] = vllm.__version__
    # What this release has, by the plugin's probes (the release matrix's table).
    state["features"] = {
        "parallel_drafting": features.has_parallel_drafting(),
        "qwen3_eagle3": features.has_qwen3_eagle3(),
        "speculators_overrides_merge": features.speculators_overrides_apply(),
        "drafter_options": None if (options := features.eagle3_drafter_options()) is None
        else sorted(options),
        "drafter_sizes_aux_inputs": features.drafter_sizes_aux_inputs(),
        "v2_runner_excludes_parallel_drafting": features.v2_runner_excludes_parallel_drafting(),
        "v1_parallel_drafter": features.has_v1_parallel_drafter(),
        "native_qwen3_keeps_window": features.native_qwen3_drafter_keeps_window(),
        "v2_speculator_door": features.v2_speculator_door() is not None,
    }
    try:
        import torch

        state["cuda_initialized"] = bool(torch.cuda.is_initialized())
    except ImportError:
        state["cuda_initialized"] = None
    return json.loads(json.dumps(state, default=str))


if __name__ == "__main__":
    sys.exit(main())
