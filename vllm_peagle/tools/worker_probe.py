"""What ``vllm-peagle bench`` asks of an engine's worker, through vLLM's
``LLM.collective_rpc`` (each function gets the worker; module-level functions,
so they pickle by name to a worker in another process):

- Triton JIT compilations: ``jit_watch_install`` chains a counter onto Triton's
  ``jit_post_compile_hook`` (where vLLM's own JIT monitor logs, once per kernel
  name); ``jit_events`` returns the kernels compiled so far, so the bench can
  fail a row whose timed steps compiled one.
- A drafter of dummy weights with the lm_head a speculators draft has
  (``own_draft_lm_head``: vLLM shares the target's when it loads none).
- A per-phase profile of the decode steps: ``profile_start`` wraps the model
  runner's and the drafter's phase methods in ``torch.profiler.record_function``
  ranges and starts ``torch.profiler``; ``profile_stop`` removes them, writes
  the trace and returns ``breakdown``: per phase, CPU milliseconds and the GPU
  milliseconds of the work launched inside it (by launch correlation, so CUDA
  graphs' kernels count), the GPU's busy time, and its idle time by the phase
  the CPU was in meanwhile (what a step waits on when the CPU paces it).
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
    # vLLM's V2 model runner (0.34: every engine; earlier: those it takes) and
    # its speculator (this package's PEagle one, vLLM's Eagle one).
    ("runner", "prepare_inputs", "target: input preparation"),
    ("runner", "sample", "sampling and rejection"),
    ("drafter", "propose", "draft: propose"),
    ("drafter", "_build_attn_metadata", "draft: attention metadata"),
    ("drafter", "sample_draft", "draft: argmax"),
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


def own_draft_lm_head(worker) -> dict:
    """Give the drafter an lm_head of its own draft vocabulary, as a speculators
    draft has.  With dummy weights vLLM finds no ``lm_head`` in the draft's
    (absent) checkpoint and shares the target's, so the draft computes logits
    over the whole target vocabulary and keeps the first ``draft_vocab_size``
    (seen on 0.21.0, H200: 0.30 ms of a 1-layer draft's 0.55 ms per step, where
    its own 32000 rows read a fifth of the bytes).  The first rows of the shared
    weight, copied.  TP=1 only (a sharded head is left alone).  Returns the
    head's rows before and after."""
    import copy

    import torch

    model = getattr(_objects(worker)["drafter"], "model", None)
    head = getattr(model, "lm_head", None)
    vocab = getattr(getattr(model, "config", None), "draft_vocab_size", None)
    weight = getattr(head, "weight", None)
    if weight is None or not vocab:
        return {"rows_before": None, "rows": None}
    rows = weight.shape[0]
    if rows <= vocab or getattr(head, "tp_size", 1) != 1:
        return {"rows_before": rows, "rows": rows}
    own = copy.copy(head)
    own._parameters = dict(head._parameters)  # copy.copy shares the dict
    own.weight = torch.nn.Parameter(weight[:vocab].clone(), requires_grad=False)
    model.lm_head = own
    return {"rows_before": rows, "rows": vocab}


def _objects(worker) -> dict:
    runner = getattr(worker, "model_runner", None)
    # V1's proposer is the runner's ``drafter``, V2's the runner's ``speculator``.
    drafter = getattr(runner, "drafter", None) or getattr(runner, "speculator", None)
    return {"runner": runner, "drafter": drafter}


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


def _merged(intervals: list[tuple[float, float]]) -> list[list[float]]:
    """The union of the intervals, as sorted disjoint intervals."""
    union: list[list[float]] = []
    for start, stop in sorted(intervals):
        if union and start <= union[-1][1]:
            union[-1][1] = max(union[-1][1], stop)
        else:
            union.append([start, stop])
    return union


GPU_CATEGORIES = ("kernel", "gpu_memcpy", "gpu_memset")
NO_PHASE = "(no phase: scheduler, engine loop)"


def _idle_by_phase(busy: list[list[float]], ranges: dict[tuple, list]) -> dict[str, float]:
    """The GPU's idle gaps (between its ``busy`` intervals, ``_merged``) in
    microseconds, by the innermost phase of the thread with the most phase
    ranges (the worker's) at each moment of the gap.  A phase's own time
    outside the phases nested in it counts under its own name."""
    gaps = [(a[1], b[0]) for a, b in zip(busy, busy[1:])]
    if not gaps:
        return {}
    main = max(ranges.values(), key=len) if ranges else []
    # Ranges on one thread nest: cut them into segments labelled by the
    # innermost range (a stack walk over start/stop points).
    points = sorted([(a, 1, -b, name) for a, b, name in main] + [(b, 0, 0, name)
                                                                 for a, b, name in main])
    segments, stack, last = [], [], None
    for t, opening, _, name in points:
        if last is not None and t > last:
            segments.append((last, t, stack[-1] if stack else NO_PHASE))
        if opening:
            stack.append(name)
        elif name in stack:
            stack.reverse()
            stack.remove(name)  # the innermost open range of that name
            stack.reverse()
        last = t
    out: dict[str, float] = {}
    i = 0
    for g0, g1 in gaps:
        covered = 0.0
        while i < len(segments) and segments[i][1] <= g0:
            i += 1
        j = i
        while j < len(segments) and segments[j][0] < g1:
            a, b = max(segments[j][0], g0), min(segments[j][1], g1)
            if b > a:
                out[segments[j][2]] = out.get(segments[j][2], 0.0) + (b - a)
                covered += b - a
            j += 1
        if g1 - g0 > covered:
            out[NO_PHASE] = out.get(NO_PHASE, 0.0) + (g1 - g0 - covered)
    return out


def breakdown(events: list[dict], steps: int) -> dict:
    """Per phase ms per step from a Chrome trace's events (torch.profiler's
    export): CPU time of the phase's ranges, and GPU time of the work launched
    inside them.  A kernel belongs to the launch call with its correlation id
    (for a CUDA graph's kernels, the ``cudaGraphLaunch``), and a launch to every
    phase range around it on its thread (phases nest).  Also the GPU's busy time
    (union of its work) and its idle time by the CPU's phase (``_idle_by_phase``)."""
    labels = {label for _, _, label in PHASES} | {COMBINE_LABEL, FORWARD_LABEL}
    ranges: dict[tuple, list] = {}
    launches, gpu, spans = [], {}, []
    for e in events:
        cat = e.get("cat")
        if cat == "user_annotation" and e.get("name") in labels:
            ranges.setdefault((e["pid"], e["tid"]), []).append(
                (e["ts"], e["ts"] + e["dur"], e["name"]))
        elif cat in ("cuda_runtime", "cuda_driver") and "correlation" in e.get("args", {}):
            launches.append(e)
        elif cat in GPU_CATEGORIES:
            spans.append((e["ts"], e["ts"] + e["dur"]))
            corr = e.get("args", {}).get("correlation")
            gpu[corr] = gpu.get(corr, 0.0) + e["dur"]
    phases: dict[str, dict] = {}
    for rs in ranges.values():
        for start, stop, name in rs:
            p = phases.setdefault(name, {"calls": 0, "cpu_us": 0.0, "gpu_us": 0.0})
            p["calls"] += 1
            p["cpu_us"] += stop - start
    for launch in launches:
        work = gpu.get(launch["args"]["correlation"])
        if not work:
            continue
        for start, stop, name in ranges.get((launch["pid"], launch["tid"]), ()):
            if start <= launch["ts"] <= stop:
                phases[name]["gpu_us"] += work
    steps = max(steps, 1)
    busy = _merged(spans)
    idle = _idle_by_phase(busy, ranges)
    return {
        "steps": steps,
        "gpu_busy_ms_per_step": sum(b - a for a, b in busy) / 1000 / steps,
        # Where a step waits on the CPU: the GPU's idle time between its first
        # and last work, by the innermost phase the worker's CPU was in.
        "gpu_idle_ms_per_step": sum(idle.values()) / 1000 / steps,
        "gpu_idle_by_cpu_phase": {name: us / 1000 / steps
                                  for name, us in sorted(idle.items(), key=lambda x: -x[1])},
        "phases": {name: {"calls_per_step": p["calls"] / steps,
                          "cpu_ms_per_step": p["cpu_us"] / 1000 / steps,
                          "gpu_ms_per_step": p["gpu_us"] / 1000 / steps}
                   for name, p in sorted(phases.items())},
    }


def profile_stop(worker, trace_path: str | None, steps: int) -> dict:
    """Stop the profiler, restore the phase methods and return ``breakdown`` of
    the ``steps`` decode steps since ``profile_start`` (with the worker's wall
    time per step); the trace is written as ``trace_path``.gz (gzip'd Chrome
    trace; None: a temporary file, removed)."""
    import gzip
    import json
    import os
    import shutil
    import tempfile

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
    path = trace_path or os.path.join(tempfile.mkdtemp(), "trace.json")
    profiler.export_chrome_trace(path)
    with open(path) as f:
        result = breakdown(json.load(f)["traceEvents"], steps)
    if trace_path:
        with open(path, "rb") as src, gzip.open(path + ".gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
    os.remove(path)
    result["wall_ms_per_step"] = 1000 * wall_s / max(steps, 1)
    result["trace"] = trace_path + ".gz" if trace_path else None
    return result


def main(argv: list[str] | None = None) -> int:
    """``python -m vllm_peagle.tools.worker_probe STEPS TRACE.json.gz...``: the
    breakdown of traces written by ``vllm-peagle bench --profile`` (as JSON)."""
    import gzip
    import json
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or not args[0].isdigit():
        print("usage: python -m vllm_peagle.tools.worker_probe STEPS TRACE.json.gz...",
              file=sys.stderr)
        return 2
    out = {}
    for path in args[1:]:
        with (gzip.open if path.endswith(".gz") else open)(path, "rt") as f:
            out[path] = breakdown(json.load(f)["traceEvents"], int(args[0]))
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
