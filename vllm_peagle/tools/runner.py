"""Run one vLLM engine scenario and report it as JSON.

A scenario is one ``LLM`` (a model, a plugin mode, engine options) and the work
done on it: greedy generation of a prompt batch, optionally GSM8K.  The plugin
patches vLLM process-wide, so tests and the GPU session run each mode in its own
process: ``run_isolated`` starts ``python -m vllm_peagle.tools.runner`` with the mode
in the environment and reads the JSON it writes.  vLLM spawns its workers, so
this module only starts engines under ``__main__`` or when called.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Any

from vllm_peagle import MODE_ENV

DEFAULT_PROMPTS = [
    "Return the value",
    "The file is opened and",
    "If the argument is a string, the result",
    "Raise an error",
    "A list of",
    "This function returns a new object with the same",
    "Convert",
    "When the path does not exist, the default",
    "Return a copy of the string with all",
    "The number",
]


def speculative_summary(config: Any) -> dict[str, Any] | None:
    """The resolved speculative config of a ``VllmConfig`` (a live ``LLM``'s
    ``llm.llm_engine.vllm_config``, or ``EngineArgs.create_engine_config()``):
    the one summary the runner, the config-level tests and the GPU session use."""
    spec = config.speculative_config
    if spec is None:
        return None
    hf = spec.draft_model_config.hf_config
    return {
        "method": spec.method,
        # A plugin's method on vLLM >= 0.34 (method is then the one it is based on).
        "custom_method": getattr(spec, "custom_method", None),
        "parallel_drafting": drafts_in_parallel(spec),
        # Token-budget slots a request's draft pass adds (vLLM >= 0.34).
        "draft_slots": getattr(spec, "max_num_new_slots_for_drafting", None),
        "num_speculative_tokens": spec.num_speculative_tokens,
        "draft_model": spec.model,
        "target_model": config.model_config.model,
        "draft_architectures": list(getattr(hf, "architectures", None) or []),
        "pard_token": getattr(hf, "pard_token", None),
        "norm_before_residual": getattr(hf, "norm_before_residual", None),
        "fc_norm": getattr(hf, "fc_norm", None),
        "norm_output": getattr(hf, "norm_output", None),
        # The draft's layers' window as its HF config holds it (whether the
        # drafter applies it is the drafter's business: docs/support-matrix.md).
        "sliding_window": getattr(hf, "sliding_window", None),
        "layer_types": getattr(hf, "layer_types", None),
    }


def drafts_in_parallel(spec: Any) -> bool:
    """Whether the engine drafts all K tokens in one pass: vLLM's
    ``parallel_drafting`` through 0.33; from 0.34 (where that flag is
    deprecated) what the method's ``SpeculatorConfig`` declares."""
    if getattr(spec, "parallel_drafting", None):
        return True
    speculator = getattr(spec, "speculator_config", None)
    return bool(getattr(speculator, "parallel_drafting", False))


def shutdown_engine(llm: Any) -> None:
    """Free the engine before the next one starts (one process, many engines)."""
    engine_core = getattr(llm.llm_engine, "engine_core", None)
    shutdown = getattr(engine_core, "shutdown", None)
    if callable(shutdown):
        shutdown()
    del llm
    free_device_memory()


def enable_cudagraph_capture() -> None:
    """Turn vLLM's process-wide CUDA graph capture guard back on, as a fresh
    process has it.  vLLM's V1 runner (through 0.33) turns it off when its
    capture ends and never on again before the next engine's warm-up: on 0.33.0
    every CUDA-graph engine after the first in one process failed ("CUDA graph
    capturing detected at an inappropriate time", H100, 2026-12-05)."""
    try:
        from vllm.compilation import monitor
    except ImportError:
        return
    if hasattr(monitor, "set_cudagraph_capturing_enabled"):
        monitor.set_cudagraph_capturing_enabled(True)


def _error_fields(e: Exception) -> dict[str, str]:
    """An engine's error as a result records it; called inside the except block
    (the traceback is the one being handled)."""
    return {"error_type": type(e).__name__, "error": str(e).strip()[-4000:],
            "traceback": traceback.format_exc()[-4000:]}


def free_device_memory() -> None:
    """Collect what a finished or half-built engine left, and hand its GPU
    memory back now, before the next engine in this process measures what is
    free."""
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def run_scenario(scenario: dict[str, Any], release: bool = False) -> dict[str, Any]:
    """Start the engine, do the work, return a JSON-able dict (errors included).
    ``release``: shut the engine down before returning, so that another can
    start in this process (its KV cache is freed only then)."""
    import logging

    # The plugin's registration line in this process, kept whatever vLLM's logging
    # set-up does to handlers (with the engine core in-process, the only one).
    plugin_records: list[str] = []
    plugin_logger = logging.getLogger("vllm.plugins.peagle")
    plugin_logger.setLevel(logging.INFO)
    handle = plugin_logger.handle

    def keep(record):
        plugin_records.append(record.getMessage())
        return handle(record)

    plugin_logger.handle = keep
    from vllm import LLM

    result: dict[str, Any] = {"scenario": scenario, "ok": False,
                              "plugin_records": plugin_records}
    kwargs = dict(scenario.get("llm_kwargs") or {})
    if scenario.get("speculative_config") is not None:
        kwargs["speculative_config"] = scenario["speculative_config"]
    enable_cudagraph_capture()
    started = time.perf_counter()
    try:
        llm = LLM(model=scenario["model"], disable_log_stats=False, **kwargs)
    except Exception as e:  # the error is the result (e.g. vLLM without the plugin)
        result.update(_error_fields(e))
    if "error_type" in result:
        # A half-built engine's GPU memory, freed only when collected, is freed
        # during the next engine's memory profiling, which vLLM then refuses
        # ("Error in memory profiling": 7 of 17 engines of the 2026-12-05 GPU
        # session, each after a failed one).  Here, not in the except block:
        # there the traceback still holds the half-built engine's frames, and
        # the collection frees nothing (the test fails so).
        free_device_memory()
        return result
    result["startup_s"] = time.perf_counter() - started
    result["speculative_config"] = speculative_summary(llm.llm_engine.vllm_config)
    import vllm

    result["vllm_version"] = vllm.__version__

    try:
        _generate(llm, scenario, result)
    except Exception as e:  # noqa: BLE001 - as at start-up, the error is the result
        # An engine that started may still fail on its first real batches (a
        # drafter's decode path runs only there); the engines after it in this
        # process still run.
        result.update(_error_fields(e), ok=False, failed_in="generate")
    if release:
        try:
            shutdown_engine(llm)
        except Exception as e:  # noqa: BLE001 - an engine that failed may not stop cleanly
            result["shutdown_error"] = f"{type(e).__name__}: {str(e)[-500:]}"
            free_device_memory()
    return result


def _generate(llm: Any, scenario: dict[str, Any], result: dict[str, Any]) -> None:
    """Greedy generation of the scenario's prompts, into ``result``."""
    from vllm import SamplingParams

    from vllm_peagle.tools.spec_decode_stats import compute_spec_decode_stats

    # A prompt is text or {"prompt_token_ids": [...]}.
    prompts = scenario.get("prompts") or DEFAULT_PROMPTS
    n_logprobs = scenario.get("logprobs")
    params = SamplingParams(temperature=0.0, max_tokens=int(scenario.get("max_tokens", 32)),
                            ignore_eos=bool(scenario.get("ignore_eos", True)),
                            stop=scenario.get("stop"), logprobs=n_logprobs)
    started = time.perf_counter()
    outputs = llm.generate(prompts, params, use_tqdm=False)
    result["generate_s"] = time.perf_counter() - started
    result["prompts"] = prompts
    result["prompt_token_ids"] = [list(o.prompt_token_ids) for o in outputs]
    result["token_ids"] = [list(o.outputs[0].token_ids) for o in outputs]
    result["texts"] = [o.outputs[0].text for o in outputs]
    if n_logprobs:
        # Per prompt, per generated token: {token id: logprob} of the top n.
        result["logprobs"] = [[{str(t): lp.logprob for t, lp in step.items()}
                               for step in o.outputs[0].logprobs] for o in outputs]
    result["stats"] = compute_spec_decode_stats(llm.get_metrics())

    if scenario.get("gsm8k_limit"):
        from vllm_peagle.tools.gsm8k import evaluate_gsm8k

        result["gsm8k"] = evaluate_gsm8k(llm, limit=int(scenario["gsm8k_limit"]))
        result["stats_after_gsm8k"] = compute_spec_decode_stats(llm.get_metrics())
    result["ok"] = True


def run_isolated(scenario: dict[str, Any] | list[dict[str, Any]], mode: str | None = None,
                 env: dict[str, str] | None = None, timeout: float = 900
                 ) -> dict[str, Any] | list[dict[str, Any]]:
    """``run_scenario`` in a fresh Python process with ``VLLM_PEAGLE_MODE=mode``;
    given a list, ``run_scenarios`` there (a list of results)."""
    child_env = dict(os.environ, **(env or {}))
    if mode is not None:
        child_env[MODE_ENV] = mode
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = os.path.join(tmp, "scenario.json")
        out_path = os.path.join(tmp, "result.json")
        with open(spec_path, "w") as f:
            json.dump(scenario, f)
        proc = subprocess.run([sys.executable, "-m", "vllm_peagle.tools.runner", spec_path, out_path],
                              env=child_env, capture_output=True, text=True, timeout=timeout)
        if not os.path.exists(out_path):
            # The run died (a crash, a kill): its error is in its output.
            died = {"ok": False, "error_type": "RunnerDied",
                    "error": f"runner exited {proc.returncode} without a result:\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}",
                    "log_tail": proc.stderr[-3000:], "plugin_log": []}
            if isinstance(scenario, list):
                return [dict(died, scenario=s) for s in scenario]
            return dict(died, scenario=scenario)
        with open(out_path) as f:
            result = json.load(f)
    # The plugin's one INFO line per process that loaded it (workers included),
    # and the runner's own process's, as it kept it; and any probe that failed.
    marks = ("vllm-peagle (", "vllm-peagle: probe ")
    logged = [line for line in (proc.stdout + proc.stderr).splitlines()
              if any(mark in line for mark in marks)]
    for one in result if isinstance(result, list) else [result]:
        one["log_tail"] = proc.stderr[-3000:]
        one["plugin_log"] = logged + [f"(runner) {line}" for line in one.get("plugin_records", [])
                                      if line.startswith(marks)]
    return result


# Where run_scenarios appends one JSON line per engine as it ends (a GPU session's
# progress, and what is left of a batch stopped part-way); unset: nowhere.
ENGINE_LOG_ENV = "VLLM_PEAGLE_ENGINE_LOG"


def run_scenarios(scenarios: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each scenario's engine in turn, in this process: with vLLM's engine core
    in-process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``) a tiny CPU engine then
    costs about 6 s instead of a process's 20 (vLLM imported once).  Each
    engine is released before the next starts; vLLM's metrics start from zero
    with each engine."""
    import gc

    results = []
    for scenario in scenarios:
        results.append(run_scenario(scenario, release=True))
        gc.collect()  # run_scenario's own reference to the engine is gone only now
        if os.environ.get(ENGINE_LOG_ENV):
            r = results[-1]
            line = {"time": time.strftime("%H:%M:%S"), "model": scenario.get("model"),
                    "speculative_config": scenario.get("speculative_config"),
                    "mode": os.environ.get(MODE_ENV), "ok": r["ok"],
                    "startup_s": r.get("startup_s"), "error": (r.get("error") or "")[-300:],
                    # Where it failed: read from the log while the batch runs on.
                    "traceback": (r.get("traceback") or "")[-1500:] or None,
                    "per_pos_acceptance": (r.get("stats") or {}).get("per_pos_acceptance_rates")}
            with open(os.environ[ENGINE_LOG_ENV], "a") as f:
                f.write(json.dumps(line) + "\n")
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m vllm_peagle.tools.runner SCENARIO.json RESULT.json\n"
              "(a JSON list of scenarios gives a list of results)", file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        scenario = json.load(f)
    result = run_scenarios(scenario) if isinstance(scenario, list) else run_scenario(scenario)
    write_result(result, argv[1])
    return 0


def write_result(result: dict[str, Any], path: str) -> None:
    """Write ``result`` as JSON, whole or not at all.

    What JSON cannot hold (an enum, a dataclass, a tensor vLLM handed back)
    is written as its ``repr``; the text is made before the file is opened,
    so a failure never leaves half a file for the reader to choke on."""
    text = json.dumps(result, default=repr)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
