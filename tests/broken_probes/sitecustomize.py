"""Test-only: with this folder on PYTHONPATH and VLLM_PEAGLE_TEST_BROKEN_PROBES
set (``all``, or ``module:function,...``), every process Python starts (vLLM's
engine core and workers too) has those vllm-peagle probes raise RuntimeError."""

import os

# module -> probes: every function vllm-peagle asks the installed vLLM with.
PROBES = {
    "vllm_peagle.features": (
        "has_parallel_drafting", "eagle3_drafter_options", "drafter_sizes_aux_inputs",
        "v2_runner_excludes_parallel_drafting", "eagle3_verifier_support",
        "has_qwen3_eagle3", "speculators_overrides_apply", "drafter_input_sizes",
        "native_qwen3_drafter_keeps_window", "has_v1_parallel_drafter", "v2_speculator_door",
        "peagle_speculative_fields"),
    "vllm_peagle.transformers_utils.configs.speculators.algos": (
        "routes_qwen3", "passes_norm_flags"),
    "vllm_peagle.transformers_utils.configs.speculators.base": (
        "has_native_peagle_mapping",),
    # Asked by a post-import hook, when vLLM imports a drafter module.
    "vllm_peagle.model_executor.models.fc_norm_fix": ("norms_see_1d_input",),
}


def break_probes(wanted: str) -> None:
    import importlib

    names = None if wanted == "all" else set(wanted.split(","))
    for module_name, probes in PROBES.items():
        module = importlib.import_module(module_name)
        for probe in probes:
            if names is not None and f"{module_name}:{probe}" not in names:
                continue

            def broken(*args, _name=f"{module_name}:{probe}", **kwargs):
                raise RuntimeError(f"probe {_name} broken by the test")

            setattr(module, probe, broken)


if os.environ.get("VLLM_PEAGLE_TEST_BROKEN_PROBES"):
    break_probes(os.environ["VLLM_PEAGLE_TEST_BROKEN_PROBES"])
