"""The session runner (vllm_peagle/tools/runner.py): an engine that fails to
start leaves nothing behind for the next one in the same process."""

import gc
import json
import weakref

import vllm

from vllm_peagle.tools import runner


class _HalfBuilt:
    """A stand-in for an engine that fails part-way: it holds a large object in
    a reference cycle (as vLLM's engine objects do), which only the garbage
    collector frees."""

    def __init__(self):
        self.self_ref = self


def test_failed_engine_is_collected_before_the_result_returns(monkeypatch):
    built = []

    class FailingLLM:
        def __init__(self, *args, **kwargs):
            obj = _HalfBuilt()
            built.append(weakref.ref(obj))
            self.part = obj
            raise RuntimeError("No module named 'cutlass'")

    monkeypatch.setattr(vllm, "LLM", FailingLLM)
    gc.disable()  # only the runner's own collection may free it
    try:
        result = runner.run_scenario({"model": "unused"})
        alive = built[0]() is not None
    finally:
        gc.enable()
    assert result["ok"] is False and result["error_type"] == "RuntimeError"
    assert "cutlass" in result["error"]
    assert not alive, "the half-built engine outlived run_scenario (freed later, during the next engine's start)"


def test_each_engine_is_logged_as_it_ends(tmp_path, monkeypatch):
    """With VLLM_PEAGLE_ENGINE_LOG set, a batch of engines leaves a line per
    engine as each ends (a GPU session watches it; a batch stopped part-way
    keeps the lines of the engines that ended)."""
    log = tmp_path / "engines.jsonl"
    monkeypatch.setenv(runner.ENGINE_LOG_ENV, str(log))
    seen = []

    def fake_run_scenario(scenario, release=False):
        # Each engine's line is written before the next engine starts.
        seen.append(log.read_text().count("\n") if log.exists() else 0)
        ok = scenario["model"] != "broken"
        return {"ok": ok, "startup_s": 1.5, "error": None if ok else "No module named 'cutlass'",
                "stats": {"per_pos_acceptance_rates": [0.5, 0.25]} if ok else None}

    monkeypatch.setattr(runner, "run_scenario", fake_run_scenario)
    runner.run_scenarios([{"model": "a"}, {"model": "broken"}, {"model": "c"}])
    assert seen == [0, 1, 2]
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(x["model"], x["ok"]) for x in lines] == [("a", True), ("broken", False), ("c", True)]
    assert "cutlass" in lines[1]["error"] and lines[0]["per_pos_acceptance"] == [0.5, 0.25]


def test_engine_failing_in_generate_is_a_result_and_the_next_engine_runs(monkeypatch):
    """An engine that starts but fails on its first real batch (a drafter's
    decode path runs only there) is that scenario's result, shut down; the
    scenarios after it in the same process still run."""
    shut = []

    class FakeEngine:
        def __init__(self, model):
            self.model = model
            self.engine_core = self
            self.vllm_config = None

        def shutdown(self):
            shut.append(self.model)

    class FakeLLM:
        def __init__(self, model, **kwargs):
            self.llm_engine = FakeEngine(model)

        def generate(self, prompts, params, use_tqdm=False):
            if self.llm_engine.model == "breaks-in-decode":
                raise IndexError("index 9 is out of bounds for dimension 0 with size 8")
            out = type("Out", (), {"token_ids": [1, 2], "text": "a b"})()
            return [type("Req", (), {"prompt_token_ids": [0], "outputs": [out]})()
                    for _ in prompts]

        def get_metrics(self):
            return []

    monkeypatch.setattr(vllm, "LLM", FakeLLM)
    monkeypatch.setattr(runner, "speculative_summary", lambda config: None)
    results = runner.run_scenarios([{"model": "breaks-in-decode"}, {"model": "fine"}])
    assert [r["ok"] for r in results] == [False, True]
    assert results[0]["failed_in"] == "generate" and results[0]["error_type"] == "IndexError"
    assert "out of bounds" in results[0]["error"] and "IndexError" in results[0]["traceback"]
    assert results[1]["token_ids"] == [[1, 2]] * len(results[1]["prompts"])
    assert shut == ["breaks-in-decode", "fine"], "each engine is shut down, the failed one too"


def test_each_engine_starts_with_cudagraph_capture_enabled(monkeypatch):
    """vLLM's V1 runner turns its process-wide capture guard off after its
    capture; the next engine in the process starts as in a fresh process."""
    from vllm.compilation import monitor

    seen = []

    class RecordingLLM:
        def __init__(self, model, **kwargs):
            seen.append(monitor.cudagraph_capturing_enabled)
            # As vLLM's V1 runner leaves it once its capture has ended.
            monitor.set_cudagraph_capturing_enabled(False)
            raise RuntimeError("stop after recording")

    monkeypatch.setattr(vllm, "LLM", RecordingLLM)
    monkeypatch.setattr(monitor, "cudagraph_capturing_enabled", False)
    runner.run_scenarios([{"model": "a"}, {"model": "b"}])
    assert seen == [True, True]
