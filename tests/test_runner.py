"""The session runner (vllm_peagle/tools/runner.py): an engine that fails to
start leaves nothing behind for the next one in the same process."""

import gc
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
