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
