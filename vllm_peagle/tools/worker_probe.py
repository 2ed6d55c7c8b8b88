"""What ``vllm-peagle bench`` asks of an engine's worker, through vLLM's
``LLM.collective_rpc`` (each function gets the worker; module-level functions,
so they pickle by name to a worker in another process):

- Triton JIT compilations: ``jit_watch_install`` chains a counter onto Triton's
  ``jit_post_compile_hook`` (where vLLM's own JIT monitor logs, once per kernel
  name); ``jit_events`` returns the kernels compiled so far, so the bench can
  fail a row whose timed steps compiled one.
- A per-phase profile of the decode steps: ``profile_start`` wraps the model
  runner's and the drafter's phase methods in ``torch.profiler.record_function``
  ranges and starts ``torch.profiler``; ``profile_stop`` removes them, writes
  the trace and returns, per phase, CPU and GPU (kernel) milliseconds and the
  GPU's busy time.
"""

from __future__ import annotations

import functools
import time

# (owner, method, phase label): owner "runner" is the model runner, "drafter"
# its proposer.  A method a release lacks is skipped (the breakdown says which
# phases it found).  Labels name what the method does in a PEagle/Eagle3 step.
PHASES = (
    ("runner", "execute_model", "step: execute_model (target)"),
    ("runner", "sample_tokens", "step: sample_tokens (sample, draft)"),
    ("runner", "_prepare_inputs", "target: input preparation"),
    ("runner", "_model_forward", "target: forward"),
    ("runner", "_sample", "sampling and rejection"),
    ("runner", "propose_draft_token_ids", "draft: all"),
    ("drafter", "prepare_next_token_ids_padded", "draft: next token ids"),
    ("drafter", "prepare_next_token_ids_cpu", "draft: next token ids"),
    ("drafter", "prepare_inputs_padded", "draft: rejected-token inputs"),
    ("drafter", "prepare_inputs", "draft: rejected-token inputs"),
    ("drafter", "set_inputs_first_pass", "draft: input expansion (mask tokens, slots)"),
    ("drafter", "build_per_group_and_layer_attn_metadata", "draft: attention metadata"),
    ("drafter", "_greedy_sample", "draft: argmax"),
)
COMBINE_LABEL = "draft: combine aux states (fc)"
FORWARD_LABEL = "draft: forward"


def _ranged(fn, label: str):
    import torch

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with torch.profiler.record_function(label):
            return fn(*args, **kwargs)
    return wrapper


class _RangedModel:
    """The drafter's model with its forward and ``combine_hidden_states`` in
    ranges; everything else is the model's own."""

    def __init__(self, model):
        object.__setattr__(self, "_model", model)
        object.__setattr__(self, "combine_hidden_states",
                           _ranged(model.combine_hidden_states, COMBINE_LABEL))

    @property
    def __class__(self):  # isinstance checks of the proposer (it asserts the drafter class)
        return type(self._model)

    def __call__(self, *args, **kwargs):
        import torch

        with torch.profiler.record_function(FORWARD_LABEL):
            return self._model(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._model, name)

    def __setattr__(self, name, value):
        setattr(self._model, name, value)


def jit_watch_install(worker) -> bool:
    """Count Triton JIT compilations in this worker; False where Triton has no
    post-compile hook (then nothing is counted)."""
    try:
        from triton import knobs
    except ImportError:
        return False
    if getattr(worker, "_peagle_jit_events", None) is not None:
        return True
    events: list[tuple[float, str]] = []
    previous = knobs.runtime.jit_post_compile_hook

    def hook(**kwargs):
        events.append((time.monotonic(), getattr(kwargs.get("fn"), "name", "?")))
        if previous is not None:
            return previous(**kwargs)
        return None

    knobs.runtime.jit_post_compile_hook = hook
    worker._peagle_jit_events = events
    return True


def jit_events(worker) -> list[str] | None:
    """The kernels JIT-compiled since ``jit_watch_install`` (None: not watched)."""
    events = getattr(worker, "_peagle_jit_events", None)
    return None if events is None else [name for _, name in events]


def _objects(worker) -> dict:
    runner = getattr(worker, "model_runner", None)
    return {"runner": runner, "drafter": getattr(runner, "drafter", None)}


def profile_start(worker) -> list[str]:
    """Wrap the phases this release has and start the profiler; returns the
    phase labels found."""
    import torch

    objects = _objects(worker)
    wrapped, found = [], []
    for owner, method, label in PHASES:
        obj = objects[owner]
        fn = getattr(obj, method, None) if obj is not None else None
        if fn is None or method in vars(obj):
            continue
        setattr(obj, method, _ranged(fn, label))  # an instance attribute over the class's
        wrapped.append((obj, method))
        found.append(label)
    drafter = objects["drafter"]
    if drafter is not None and getattr(drafter, "model", None) is not None:
        drafter.model = _RangedModel(drafter.model)
        found += [COMBINE_LABEL, FORWARD_LABEL]
    activities = [torch.profiler.ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(torch.profiler.ProfilerActivity.CUDA)
        torch.cuda.synchronize()
    profiler = torch.profiler.profile(activities=activities)
    profiler.start()
    worker._peagle_profile = (profiler, wrapped, time.perf_counter())
    return sorted(set(found))


def _busy_us(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


def profile_stop(worker, trace_path: str | None, steps: int) -> dict:
    """Stop the profiler, restore the phase methods, write the trace (gzip'd
    Chrome trace) and return ms per decode step (``steps`` of them since
    ``profile_start``): per phase CPU and GPU time, the GPU's busy time (union
    of kernel intervals) and the worker's wall time."""
    import torch

    profiler, wrapped, started = worker._peagle_profile
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    wall_s = time.perf_counter() - started
    profiler.stop()
    for obj, method in wrapped:
        delattr(obj, method)
    drafter = _objects(worker)["drafter"]
    if isinstance(getattr(drafter, "model", None), _RangedModel):
        drafter.model = drafter.model._model
    del worker._peagle_profile
    labels = {label for _, _, label in PHASES} | {COMBINE_LABEL, FORWARD_LABEL}
    phases: dict[str, dict] = {}
    kernels: list[tuple[float, float]] = []
    for event in profiler.events():
        if event.name in labels and event.device_type.name == "CPU":
            p = phases.setdefault(event.name, {"calls": 0, "cpu_us": 0.0, "gpu_us": 0.0})
            p["calls"] += 1
            p["cpu_us"] += event.time_range.elapsed_us()
            p["gpu_us"] += event.device_time_total
        elif event.device_type.name == "CUDA":
            kernels.append((event.time_range.start, event.time_range.end))
    steps = max(steps, 1)
    busy_us = _busy_us(kernels)
    if not kernels:  # no device events of their own: the kernels' summed durations
        busy_us = sum(k.duration for e in profiler.events() if e.device_type.name == "CPU"
                      for k in getattr(e, "kernels", ()))
    if trace_path:
        import gzip
        import os
        import shutil

        profiler.export_chrome_trace(trace_path)
        with open(trace_path, "rb") as src, gzip.open(trace_path + ".gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.remove(trace_path)
    return {
        "steps": steps,
        "wall_ms_per_step": 1000 * wall_s / steps,
        "gpu_busy_ms_per_step": busy_us / 1000 / steps,
        "phases": {name: {"calls_per_step": p["calls"] / steps,
                          "cpu_ms_per_step": p["cpu_us"] / 1000 / steps,
                          "gpu_ms_per_step": p["gpu_us"] / 1000 / steps}
                   for name, p in sorted(phases.items())},
        "trace": trace_path + ".gz" if trace_path else None,
    }
