"""``vllm-peagle bench``: decode-step time of no speculation, Eagle3 and PEagle.

Builds config-only checkpoints of one target shape (``llama3-8b``, ``qwen3-8b``
or CPU-sized ``tiny``/``tiny-qwen3``) and drafts of ``--draft-layers`` decoder
layers with a ``--draft-vocab`` vocabulary (speculators' default 32000, with
``d2t``; the target's own vocabulary when 0), runs them with dummy weights,
all in one process run so the numbers compare:
- no speculation;
- Eagle3, sequential drafting: K draft forward passes per step;
- PEagle, parallel drafting: one draft forward pass for all K tokens;
for each K and batch size, with a fixed output length (``ignore_eos``), a
warm-up first and the median of ``--repeats`` timed repeats.

A "decode step" is one engine step once every request of the batch is past its
prefill (which can span two steps): draft plus verify.  With
dummy weights nearly every draft is rejected, so a step's cost is measured, not
its yield; ``--rates`` turn step times into the projected speedup
``AL(K) * t_base / t_spec(K)`` with AL(K) = 1 + sum of the first K per-position
acceptance rates (for the K a rate set covers).

The floor: the bytes one draft forward must read (its parameters: layers,
``fc``, the draft vocabulary's lm_head rows; plus its KV cache) over the
bandwidth the target-only step achieves in the same run (its parameters and KV
cache over its step time).  PEagle reads them once a step, Eagle3 K times;
``overhead_over_floor`` is (t_spec - t_none) / floor.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from typing import Any

from vllm_peagle import MODE_ENV
from vllm_peagle.tools import worker_probe
from vllm_peagle.tools.checkpoint import ModelShape, hf_config, speculators_config
from vllm_peagle.tools.runner import drafts_in_parallel, shutdown_engine

# Per-position acceptance rates for the projection, by name:
# - published-qwen3-8b: speculators' model cards for Qwen3-8B;
# - trained-tiny: the trained tiny pair (dev/train_tiny.py, 2-layer drafts,
#   K=4) on GSM8K on the CPU, the figures test_speculators_correctness.py holds.
RATE_SETS = {
    "published-qwen3-8b": {"peagle": (0.78, 0.59, 0.43, 0.29, 0.18, 0.10, 0.05),
                           "eagle3": (0.76, 0.55, 0.36)},
    "trained-tiny": {"peagle": (0.526, 0.234, 0.137, 0.097),
                     "eagle3": (0.522, 0.285, 0.204, 0.135)},
}
PEAGLE_QWEN3_8B_RATES = RATE_SETS["published-qwen3-8b"]["peagle"]
EAGLE3_QWEN3_8B_RATES = RATE_SETS["published-qwen3-8b"]["eagle3"]
# A K whose projected speedup is within this fraction of the best K's is listed
# beside it (``near_best_ks``).
NEAR_BEST = 0.05
# speculators' default draft vocabulary (with d2t/t2d).
DEFAULT_DRAFT_VOCAB = 32000


# The bench's shapes: two published targets' config.json values (Llama 3's rope
# base), and tiny ones for a CPU.
SHAPES = {
    "llama3-8b": ModelShape(128256, 4096, 32, 32, 8, 14336, 8192, rope_theta=500000.0),
    "qwen3-8b": ModelShape(151936, 4096, 36, 32, 8, 12288, 40960, arch="qwen3", head_dim=128),
    "tiny": ModelShape(512, 128, 8, 4, 2, 256, 2048, rope_theta=500000.0),
    "tiny-qwen3": ModelShape(512, 128, 8, 4, 2, 256, 2048, arch="qwen3"),
}


def draft_vocab_size(shape: ModelShape, requested: int) -> int:
    """The draft vocabulary: ``requested`` capped at the target's; 0 = the target's."""
    return min(requested, shape.vocab_size) if requested > 0 else shape.vocab_size


def write_target(root: str, shape: ModelShape) -> str:
    target = os.path.join(root, "target")
    os.makedirs(target, exist_ok=True)
    with open(os.path.join(target, "config.json"), "w") as f:
        json.dump(hf_config(shape, dtype="bfloat16"), f, indent=2)
    return target


def write_checkpoints(root: str, shape: ModelShape, k: int, draft_layers: int = 1,
                      draft_vocab: int = 0) -> dict[str, str]:
    """Config-only target and speculators drafts (peagle, eagle3) with K tokens.

    The sweep writes one draft per depth with the largest K and asks each K
    through ``speculative_config``, so the draft's config stays the same across
    K.  vLLM's compile-cache key still changes with K: it holds the CUDA-graph
    capture sizes, whose largest is max_num_seqs * (K + 1) * 2 capped at 512
    (vllm/config/vllm.py, 0.21.0), so only K values that reach the cap share
    compiled graphs, unless ``--max-cudagraph-capture-size`` fixes that size
    (benchmarks/README.md: engine start-up)."""
    target = write_target(root, shape)
    layer = hf_config(shape, layers=draft_layers, dtype="bfloat16")
    vocab = draft_vocab_size(shape, draft_vocab)
    paths = {"target": target}
    for kind in ("peagle", "eagle3"):
        d = os.path.join(root, f"{kind}-l{draft_layers}-v{vocab}")
        os.makedirs(d, exist_ok=True)
        extra = {"mask_token_id": shape.vocab_size - 1} if kind == "peagle" else {}
        cfg = speculators_config(kind, layer, target, k, extra)
        cfg["draft_vocab_size"] = vocab
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        paths[kind] = d
    return paths


# --- the floor ------------------------------------------------------------------

def _attn_mlp_params(shape: ModelShape, qkv_in: int) -> int:
    h, hd = shape.hidden_size, shape.hd
    q, kv = shape.num_attention_heads * hd, shape.num_key_value_heads * hd
    return qkv_in * (q + 2 * kv) + q * h + 3 * h * shape.intermediate_size


def target_param_bytes(shape: ModelShape, dtype_bytes: int = 2) -> int:
    """What a decode step reads of the target: its layers and lm_head (embedding
    rows are a few per token)."""
    layer = _attn_mlp_params(shape, shape.hidden_size)
    return dtype_bytes * (shape.num_hidden_layers * layer + shape.vocab_size * shape.hidden_size)


def draft_param_bytes(shape: ModelShape, draft_layers: int, draft_vocab: int,
                      dtype_bytes: int = 2) -> int:
    """One draft forward's parameters: layer 0 (q/k/v over [embeds, hidden], 2h),
    the layers after it, fc (3 aux states -> h) and the draft vocabulary's lm_head."""
    h = shape.hidden_size
    layers = _attn_mlp_params(shape, 2 * h) + (draft_layers - 1) * _attn_mlp_params(shape, h)
    vocab = draft_vocab_size(shape, draft_vocab)
    return dtype_bytes * (layers + 3 * h * h + vocab * h)


def kv_bytes_per_token(shape: ModelShape, layers: int, dtype_bytes: int = 2) -> int:
    return dtype_bytes * layers * 2 * shape.num_key_value_heads * shape.hd


def floor_ms(shape: ModelShape, row: dict[str, Any], none_ms: float, context: float) -> dict:
    """Bytes and the bandwidth-bound time of the draft's reads for one row."""
    bs = row["batch_size"]
    target_bytes = (target_param_bytes(shape)
                    + bs * context * kv_bytes_per_token(shape, shape.num_hidden_layers))
    bandwidth = target_bytes / (none_ms / 1000)  # bytes/s the target-only step achieves
    draft_bytes = (draft_param_bytes(shape, row["draft_layers"], row["draft_vocab"])
                   + bs * context * kv_bytes_per_token(shape, row["draft_layers"]))
    passes = row["k"] if row["method"] == "eagle3" else 1
    return {"target_bytes": target_bytes, "bandwidth_gb_s": bandwidth / 1e9,
            "draft_bytes": draft_bytes * passes,
            "floor_ms": 1000 * draft_bytes * passes / bandwidth}


def time_decode_steps(llm: Any, batch_size: int, prompt_len: int, output_len: int,
                      vocab_size: int, seed: int, profile: str | None = None,
                      watch_jit: bool = False) -> dict[str, Any]:
    """One timed generation: the mean time of the engine steps once every request
    is decoding.  The engine core may start on the first request before the
    others reach it (seen on vLLM 0.32, CPU: step 0 prefilled 1 of 8 requests in
    three trials of four, all 8 in the fourth), so the prefill can span two steps
    and the second mixes prefills with a decode, in shapes that vary from run to
    run: the window starts after the step in which the last request got its
    first token.  ``profile``: a trace path; the window's steps run under the
    worker's profiler (tools/worker_probe.py) and the result has its per-phase
    ``profile``.  ``watch_jit``: the result's ``jit`` lists the Triton kernels
    the worker compiled during the window."""
    import random

    from vllm import SamplingParams

    rng = random.Random(seed)
    params = SamplingParams(temperature=0.0, max_tokens=output_len, ignore_eos=True,
                            detokenize=False)
    engine = llm.llm_engine
    for i in range(batch_size):
        ids = [rng.randrange(2, vocab_size - 2) for _ in range(prompt_len)]
        engine.add_request(f"bench-{seed}-{i}", {"prompt_token_ids": ids}, params)
    started: set[str] = set()  # requests that have their first token
    window: list[float] = []  # step times once every request decodes
    compiled_before: list[str] | None = None
    prefill_steps = 0
    tokens = 0
    while engine.has_unfinished_requests():
        decoding = len(started) == batch_size
        if decoding and not window:  # the window opens (untimed calls here)
            if watch_jit:
                compiled_before = llm.collective_rpc(worker_probe.jit_events)[0]
            if profile is not None:
                llm.collective_rpc(worker_probe.profile_start)
        t0 = time.perf_counter()
        outputs = engine.step()
        elapsed = time.perf_counter() - t0
        if decoding:
            window.append(elapsed)
        else:
            prefill_steps += 1
        for o in outputs:
            if o.outputs and o.outputs[0].token_ids:
                started.add(o.request_id)
            if o.finished:
                tokens += len(o.outputs[0].token_ids)
    decode = window or [0.0]
    # The mean is the figure (a step's cost as throughput sees it); the median and
    # the longest step tell a stall in one step from a slower engine.
    result = {"ms_per_step": 1000 * sum(decode) / len(decode),
              "median_step_ms": 1000 * statistics.median(decode),
              "max_step_ms": 1000 * max(decode),
              "steps": len(window), "prefill_steps": prefill_steps, "tokens": tokens}
    if watch_jit:
        after = llm.collective_rpc(worker_probe.jit_events)[0]
        result["jit"] = None if compiled_before is None else after[len(compiled_before):]
    if profile is not None and window:
        result["profile"] = llm.collective_rpc(
            worker_probe.profile_stop, args=(profile, len(window)))[0]
    return result


def run_config(target: str, draft: str | None, method: str, k: int, batch_sizes: list[int],
               args, shape: ModelShape, draft_layers: int = 0, draft_vocab: int = 0
               ) -> list[dict[str, Any]]:
    from vllm import LLM

    # The draft given explicitly (a speculators checkpoint as the model resolves
    # to the same, but vLLM >= 0.34 refuses one whose verifier is a local path).
    extra: dict[str, Any] = {}
    if draft:
        extra["speculative_config"] = {"model": draft, "num_speculative_tokens": k}
        if method == "eagle3":
            extra["speculative_config"]["method"] = "eagle3"
    if args.max_cudagraph_capture_size:
        # vLLM derives the largest CUDA-graph capture size from K (max_num_seqs *
        # (K + 1) * 2, up to 512) and keys its compile cache on the capture sizes:
        # one fixed size lets the engines of every K share one compilation.
        extra["compilation_config"] = {
            "max_cudagraph_capture_size": args.max_cudagraph_capture_size}
    started = time.perf_counter()
    llm = LLM(model=target, load_format="dummy", skip_tokenizer_init=True, **extra,
              max_model_len=args.max_model_len, gpu_memory_utilization=args.gpu_memory_utilization,
              enforce_eager=args.enforce_eager, max_num_seqs=max(batch_sizes),
              seed=0)
    # Engine start-up (load, compile or compile-cache hit, CUDA graphs): shows
    # whether later K values of one draft reuse the first one's compiled graphs.
    startup_s = time.perf_counter() - started
    spec = llm.llm_engine.vllm_config.speculative_config
    # Triton kernels compiled in the worker, watched from here on (vLLM's own
    # monitor logs a kernel once per process, and only from its version on).
    watched = all(llm.collective_rpc(worker_probe.jit_watch_install))
    # The draft's own lm_head (draft vocabulary rows), as a real draft has.
    draft_head = llm.collective_rpc(worker_probe.own_draft_lm_head)[0] if spec else None
    rows = []
    for bs in batch_sizes:
        # Two warm-up generations: the second meets what the first compiled
        # for the shapes a step can take (accepted-token counts vary them).
        for seed in (-1, -2):
            time_decode_steps(llm, bs, args.prompt_len, args.output_len, shape.vocab_size, seed)
        runs = [time_decode_steps(llm, bs, args.prompt_len, args.output_len, shape.vocab_size,
                                  seed=r, watch_jit=watched) for r in range(args.repeats)]
        # Compilations inside the timed windows only: the prefill steps before a
        # window take shapes that vary from run to run, and are not timed.
        jit = [k for r in runs for k in (r.get("jit") or [])] if watched else None
        profile = None
        if args.profile:
            trace = os.path.join(args.out, f"trace-{method}-L{draft_layers}-K{k}-bs{bs}.json")
            try:
                profile = time_decode_steps(llm, bs, args.prompt_len, args.output_len,
                                            shape.vocab_size, seed=-3, profile=trace)["profile"]
            except Exception as e:  # noqa: BLE001 - the timed rows stand without it
                import traceback

                profile = {"error": f"{type(e).__name__}: {e}",
                           "traceback": traceback.format_exc()[-2000:]}
                try:  # a profiler left running would profile the next rows
                    llm.collective_rpc(worker_probe.profile_stop, args=(None, 1))
                except Exception:  # noqa: BLE001 - it never started
                    pass
        ms = [r["ms_per_step"] for r in runs]
        rows.append({
            "method": method, "k": k, "batch_size": bs, "draft_layers": draft_layers,
            "draft_vocab": draft_vocab,
            "ms_per_step": statistics.median(ms), "ms_per_step_runs": ms,
            "median_step_ms_runs": [r["median_step_ms"] for r in runs],
            "max_step_ms_runs": [r["max_step_ms"] for r in runs],
            "steps_per_run": [r["steps"] for r in runs],
            "prefill_steps_per_run": [r["prefill_steps"] for r in runs],
            "resolved_method": (getattr(spec, "custom_method", None) or spec.method)
            if spec else None,
            "parallel_drafting": drafts_in_parallel(spec) if spec else None,
            "num_speculative_tokens": spec.num_speculative_tokens if spec else 0,
            "startup_s": startup_s,
            # Kernels JIT-compiled during the timed runs (None: not watched): the
            # row then measured compilation, and it is left out of the summary.
            "jit_in_timed_steps": jit,
            "draft_lm_head_rows": (draft_head or {}).get("rows"),
            "profile": profile,
        })
        print(f"  {method:7s} L={draft_layers} K={k} bs={bs}: {rows[-1]['ms_per_step']:.3f} ms/step "
              f"(runs {', '.join(f'{m:.3f}' for m in ms)})"
              + (f" FAILED: JIT compilation in timed steps: {sorted(set(jit))}" if jit else ""),
              flush=True)
    shutdown_engine(llm)
    return rows


def acceptance_len(rates: tuple[float, ...], k: int) -> float:
    return 1 + sum(rates[:k])


def summarize(rows: list[dict[str, Any]], rate_sets: dict[str, dict[str, tuple]],
              shape: ModelShape | None = None, context: float = 0.0) -> dict[str, Any]:
    """Per row: ratio to no speculation, the floor (with ``shape``), projected
    speedup per rate set; per batch size: the best K per method, draft depth
    and rate set."""
    # A row whose timed steps JIT-compiled a kernel measured compilation: out.
    rows = [r for r in rows if not r.get("jit_in_timed_steps")]
    base = {r["batch_size"]: r["ms_per_step"] for r in rows if r["method"] == "none"}
    for r in rows:
        t0 = base.get(r["batch_size"])
        r["ratio_to_none"] = r["ms_per_step"] / t0 if t0 else None
        if r["method"] == "none" or not t0:
            continue
        if shape is not None:
            r.update(floor_ms(shape, r, t0, context))
            r["overhead_ms"] = r["ms_per_step"] - t0
            r["overhead_over_floor"] = r["overhead_ms"] / r["floor_ms"]
        r["speedup_projected"] = {}
        for name, rates in rate_sets.items():
            # Only where the set has a rate for every position up to K: past its
            # last position the acceptance is unknown, not zero.
            if r["method"] in rates and r["k"] <= len(rates[r["method"]]):
                al = acceptance_len(rates[r["method"]], r["k"])
                r["speedup_projected"][name] = al * t0 / r["ms_per_step"]
    summary: dict[str, Any] = {}
    for bs in sorted(base):
        s: dict[str, Any] = {"none_ms": base[bs]}
        groups = sorted({(r["method"], r.get("draft_layers", 1)) for r in rows
                         if r["batch_size"] == bs and r["method"] != "none"})
        for method, layers in groups:
            mine = [r for r in rows if r["batch_size"] == bs and r["method"] == method
                    and r.get("draft_layers", 1) == layers]
            key = f"{method}_l{layers}"
            ks = {r["k"]: r["ms_per_step"] for r in mine}
            if method == "peagle" and 3 in ks and 7 in ks:
                s[f"{key}_t7_over_t3"] = ks[7] / ks[3]
            if method == "eagle3" and len(ks) >= 2:
                lo, hi = min(ks), max(ks)
                s[f"{key}_ms_per_extra_token"] = (ks[hi] - ks[lo]) / (hi - lo)
            s[f"{key}_overhead_vs_none"] = statistics.median(ks.values()) / base[bs] - 1
            floors = [r["overhead_over_floor"] for r in mine if "overhead_over_floor" in r]
            if floors:
                s[f"{key}_overhead_over_floor_median"] = statistics.median(floors)
            for name in rate_sets:
                best = max(mine, key=lambda r: r.get("speedup_projected", {}).get(name, 0))
                if name in best.get("speedup_projected", {}):
                    top = best["speedup_projected"][name]
                    s[f"{key}_best_k_{name}"] = best["k"]
                    s[f"{key}_best_speedup_{name}"] = top
                    # Every K within NEAR_BEST of the best: step times of speculative
                    # engines vary by more than that between engines (benchmarks/
                    # README.md), so these K are not told apart by one run.
                    s[f"{key}_near_best_ks_{name}"] = sorted(
                        r["k"] for r in mine
                        if r.get("speedup_projected", {}).get(name, 0) >= (1 - NEAR_BEST) * top)
        summary[f"bs{bs}"] = s
    return summary


def startup_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Engine start-up per draft, in the order the engines started: the first
    engine compiles the draft, later K values of the same draft can load it
    from vLLM's compile cache (K is not in its key)."""
    engines: dict[str, list[float]] = {}
    seen = set()
    for r in rows:
        engine = (r["method"], r.get("draft_layers", 0), r["k"])
        if engine in seen:
            continue  # one row per batch size, one start-up per engine
        seen.add(engine)
        key = r["method"] if r["method"] == "none" else f"{r['method']}_l{r['draft_layers']}"
        engines.setdefault(key, []).append(r["startup_s"])
    return {key: {"first_s": times[0], "later_median_s":
                  statistics.median(times[1:]) if len(times) > 1 else None,
                  "engines": len(times)} for key, times in engines.items()}


def format_table(rows: list[dict[str, Any]], rate_names: list[str] | None = None) -> str:
    names = rate_names or sorted({n for r in rows for n in r.get("speedup_projected") or {}})
    lines = ["| method | layers | K | batch | ms/step | x no-spec | floor ms | overhead / floor | "
             + " | ".join(f"speedup ({n})" for n in names) + " |",
             "|---|---|---|---|---|---|---|---|" + "---|" * len(names)]
    for r in sorted(rows, key=lambda r: (r["batch_size"], r["method"], r.get("draft_layers", 0),
                                         r["k"])):
        ratio = f"{r['ratio_to_none']:.3f}" if r.get("ratio_to_none") else "-"
        floor = f"{r['floor_ms']:.3f}" if "floor_ms" in r else "-"
        over = f"{r['overhead_over_floor']:.2f}" if "overhead_over_floor" in r else "-"
        speedups = [f"{r['speedup_projected'][n]:.2f}" if n in (r.get("speedup_projected") or {})
                    else "-" for n in names]
        layers = r.get("draft_layers") or "-"
        lines.append(f"| {r['method']} | {layers} | {r['k']} | {r['batch_size']} | "
                     f"{r['ms_per_step']:.3f} | {ratio} | {floor} | {over} | "
                     + " | ".join(speedups) + " |")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: str, title: str) -> None:
    """One panel per batch size: ms/step against K per method and draft depth,
    no speculation (dashed) and no speculation + PEagle's floor (dotted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r["batch_size"] for r in rows})
    fig, axes = plt.subplots(1, len(sizes), figsize=(5 * len(sizes), 4.2), squeeze=False)
    for ax, bs in zip(axes[0], sizes):
        mine = [r for r in rows if r["batch_size"] == bs]
        groups = sorted({(r["method"], r.get("draft_layers", 1)) for r in mine
                         if r["method"] != "none"})
        for method, layers in groups:
            pts = sorted((r["k"], r["ms_per_step"]) for r in mine
                         if r["method"] == method and r.get("draft_layers", 1) == layers)
            line, = ax.plot(*zip(*pts), "o-" if method == "eagle3" else "s-",
                            label=f"{method} {layers}-layer")
            floors = [r for r in mine if r["method"] == "peagle" and "floor_ms" in r
                      and r.get("draft_layers", 1) == layers]
            if method == "peagle" and floors:
                none_ms = floors[0]["ms_per_step"] - floors[0]["overhead_ms"]
                ax.axhline(none_ms + floors[0]["floor_ms"], linestyle=":",
                           color=line.get_color(), linewidth=1,
                           label=f"no spec + PEagle {layers}-layer floor")
        base = [r["ms_per_step"] for r in mine if r["method"] == "none"]
        if base:
            # Runs merged by --replot each bring their own no-speculation engine.
            ax.axhline(statistics.median(base), linestyle="--", color="gray", linewidth=1,
                       label="no spec" + (f" (median of {len(base)})" if len(base) > 1 else ""))
        ax.set_title(f"batch {bs}", fontsize=10)
        ax.set_xlabel("K (draft tokens per step)")
        ax.set_ylabel("ms per decode step (median)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--shape", choices=sorted(SHAPES), default="llama3-8b")
    p.add_argument("--draft-layers", type=int, nargs="+", default=[1],
                   help="decoder layers of the draft, one sweep each (e.g. 1 4)")
    p.add_argument("--draft-vocab", type=int, default=DEFAULT_DRAFT_VOCAB,
                   help="draft vocabulary with d2t (default 32000 as speculators writes; "
                        "0: the target's own; capped at the target's)")
    p.add_argument("--ks", type=int, nargs="+", default=list(range(1, 9)))
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    p.add_argument("--methods", nargs="+", default=["none", "eagle3", "peagle"],
                   choices=["none", "eagle3", "peagle"])
    p.add_argument("--prompt-len", type=int, default=32)
    p.add_argument("--output-len", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-model-len", type=int, default=1024)
    p.add_argument("--gpu-memory-utilization", type=float, default=0.5)
    p.add_argument("--enforce-eager", action="store_true")
    p.add_argument("--max-cudagraph-capture-size", type=int, default=0,
                   help="the same largest CUDA-graph capture size for every K (e.g. 512), "
                        "so that every K's engine can load the compiled graphs from vLLM's "
                        "compile cache; 0 (default): vLLM's own, which grows with K")
    p.add_argument("--profile", action="store_true",
                   help="after the timed runs, one more generation per batch size under "
                        "torch.profiler: per-phase CPU/GPU ms per decode step in bench.json "
                        "and a table; traces as trace-*.json.gz in --out")
    p.add_argument("--time-budget-s", type=float, default=0,
                   help="start no engine after this many seconds (0: no limit); the "
                        "configurations left out are listed in bench.json's meta.skipped")
    p.add_argument("--peagle-rates", type=float, nargs="+", default=None,
                   help="per-position acceptance rates for one more projection, \"given\" "
                        f"(the table always projects with {', '.join(RATE_SETS)})")
    p.add_argument("--eagle3-rates", type=float, nargs="+", default=None,
                   help="the same for Eagle3")
    p.add_argument("--out", default="bench-out", help="directory for bench.json and bench.png")
    p.add_argument("--replot", metavar="BENCH_JSON", nargs="+", default=None,
                   help="only print the table and redraw bench.png of earlier runs: one "
                        "bench.json (the png beside it), or several of one shape, e.g. "
                        "the jobs of a split sweep (one plot in --out)")


def rate_sets_of(args) -> dict[str, dict[str, tuple]]:
    sets = dict(RATE_SETS)
    given = {m: tuple(v) for m, v in (("peagle", args.peagle_rates),
                                      ("eagle3", args.eagle3_rates)) if v}
    if given:
        sets["given"] = given
    return sets


def decode_context(args) -> float:
    """Mean tokens in context over the decode steps (prompt + half the output)."""
    return args.prompt_len + args.output_len / 2


def run_bench(args) -> int:
    if args.replot:
        return replot(args.replot, args.out)
    if (args.repeats < 1 or any(k < 1 for k in args.ks) or any(b < 1 for b in args.batch_sizes)
            or any(n < 1 for n in args.draft_layers) or args.draft_vocab < 0
            or args.max_cudagraph_capture_size < 0):
        print("bench: --repeats, --ks, --batch-sizes and --draft-layers must be positive, "
              "--draft-vocab and --max-cudagraph-capture-size >= 0", file=sys.stderr)
        return 2
    # The bench hands its engines' workers functions (tools/worker_probe.py,
    # LLM.collective_rpc); with the engine core in its own process vLLM sends
    # them only with pickle allowed.  The bench's engines are its own, local.
    os.environ.setdefault("VLLM_ALLOW_INSECURE_SERIALIZATION", "1")
    import vllm

    shape = SHAPES[args.shape]
    vocab = draft_vocab_size(shape, args.draft_vocab)
    rate_sets = rate_sets_of(args)
    os.makedirs(args.out, exist_ok=True)
    json_path = os.path.join(args.out, "bench.json")
    meta = {"device": device_name(), "vllm_version": vllm.__version__,
            "date": time.strftime("%Y-%m-%d"), "shape": args.shape, "shape_dims": asdict(shape),
            "draft_vocab": vocab, "decode_context": decode_context(args),
            "rate_sets": rate_sets,
            "command": "vllm-peagle bench " + " ".join(sys.argv[2:])
            if sys.argv[1:2] == ["bench"] else None,
            "args": {k: v for k, v in vars(args).items() if k != "fn"},
            "plugin_mode": os.environ.get(MODE_ENV, "auto")}
    rows: list[dict[str, Any]] = []
    started = time.time()

    def save() -> dict[str, Any]:
        # After every engine: a sweep cut short still leaves its numbers.
        meta["wall_s"] = time.time() - started
        result = {"meta": meta, "rows": rows,
                  "summary": summarize(rows, rate_sets, shape, decode_context(args)),
                  "startup": startup_summary(rows)}
        with open(json_path, "w") as f:
            json.dump(result, f, indent=2)
        return result

    with tempfile.TemporaryDirectory() as root:
        target = write_target(root, shape)
        if "none" in args.methods:
            rows += run_config(target, None, "none", 0, args.batch_sizes, args, shape)
            save()
        paths = {n: write_checkpoints(root, shape, max(args.ks), n, vocab)
                 for n in args.draft_layers}
        # K outermost, in the order given: a sweep stopped by --time-budget-s
        # has the same K values for every draft and method.
        plan = [(k, n, m) for k in args.ks for n in args.draft_layers
                for m in ("peagle", "eagle3") if m in args.methods]
        meta["skipped"] = []
        for k, layers, method in plan:
            if args.time_budget_s and time.time() - started > args.time_budget_s:
                meta["skipped"].append({"method": method, "k": k, "draft_layers": layers})
                continue
            rows += run_config(target, paths[layers][method], method, k, args.batch_sizes,
                               args, shape, layers, vocab)
            save()
    result = save()
    if meta["skipped"]:
        print(f"--time-budget-s {args.time_budget_s}: {len(meta['skipped'])} configurations "
              "not run (meta.skipped)")
    print(f"\n{meta['device']}, vLLM {meta['vllm_version']}, {meta['date']}, shape "
          f"{args.shape}, draft vocab {vocab}")
    print(format_table(rows, list(rate_sets)))
    for key, s in result["summary"].items():
        print(summary_line(key, s))
    for key, s in result["startup"].items():
        later = (f", later K median {s['later_median_s']:.1f} s" if s["later_median_s"]
                 is not None else "")
        print(f"engine start-up, {key}: first {s['first_s']:.1f} s{later} "
              f"({s['engines']} engines)")
    if args.profile:
        print(format_profile(rows))
    jit = [r for r in rows if r.get("jit_in_timed_steps")]
    if jit:
        print(f"{len(jit)} rows FAILED (JIT compilation in timed steps; left out of the "
              "summary): " + "; ".join(f"{r['method']} L={r['draft_layers']} K={r['k']} "
                                       f"bs={r['batch_size']}" for r in jit))
    try:
        plot(rows, os.path.join(args.out, "bench.png"),
             _title(args.shape, meta["device"], meta["vllm_version"], vocab))
    except ImportError:
        print("matplotlib is not installed: no bench.png; elsewhere run "
              f"`vllm-peagle bench --replot {json_path}`")
    print(f"wrote {json_path}")
    return 0


def format_profile(rows: list[dict[str, Any]]) -> str:
    """The profiled generation of each row, one column per row: ms per decode
    step in the worker (wall, GPU busy, GPU idle and the CPU's phase meanwhile),
    then each phase's GPU (kernel) / CPU time and calls per step.  Phases nest:
    ``step: ...`` holds the others, ``draft: all`` the ``draft: ...`` ones."""
    done = [r for r in rows if r.get("profile")]
    if not done:
        return ""
    phases = sorted({name for r in done for name in (r["profile"].get("phases") or {})})
    head = ["ms per decode step"] + [f"{r['method']} L{r['draft_layers']} K{r['k']} "
                                     f"bs{r['batch_size']}" for r in done]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cells(fn) -> str:
        out = []
        for r in done:
            p = r["profile"]
            out.append(f"failed: {p['error'][:60]}" if "error" in p else fn(p))
        return " | ".join(out)

    lines.append("| wall (worker) | " + cells(lambda p: f"{p['wall_ms_per_step']:.3f}") + " |")
    lines.append("| GPU busy | " + cells(lambda p: f"{p['gpu_busy_ms_per_step']:.3f}") + " |")
    lines.append("| GPU idle | " + cells(lambda p: f"{p.get('gpu_idle_ms_per_step', 0):.3f}")
                 + " |")
    # The GPU waiting on the CPU, by the phase the CPU was in: where a step is
    # paced by the CPU, these are the phases to make cheaper.
    waits = sorted({name for r in done for name in
                    (r["profile"].get("gpu_idle_by_cpu_phase") or {})})
    for name in waits:
        def wait(p, name=name):
            ms = (p.get("gpu_idle_by_cpu_phase") or {}).get(name)
            return "-" if ms is None else f"{ms:.3f}"
        lines.append(f"| GPU idle, CPU in {name} | " + cells(wait) + " |")
    for name in phases:
        def phase(p, name=name):
            ph = p["phases"].get(name)
            return "-" if ph is None else (f"{ph['gpu_ms_per_step']:.3f} / "
                                           f"{ph['cpu_ms_per_step']:.3f} "
                                           f"(x{ph['calls_per_step']:.0f})")
        lines.append(f"| {name}: GPU / CPU | " + cells(phase) + " |")
    return "\n".join(lines)


def summary_line(label: str, values: dict[str, Any]) -> str:
    """One batch size's summary as the bench prints it."""
    return f"{label}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                    for k, v in values.items())


def replot(paths: list[str], out: str) -> int:
    """The table and plot of earlier runs.  Each row keeps the ratios of its own
    run (its own no-speculation engine); several runs must share shape and
    draft vocabulary."""
    results, first = [], None
    for path in paths:
        try:
            with open(path) as f:
                results.append(json.load(f))
            meta = results[-1]["meta"]
            key = (meta["shape"], meta.get("draft_vocab"))
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"bench: --replot {path}: not a bench.json ({type(e).__name__}: {e})",
                  file=sys.stderr)
            return 2
        first = first or key
        if key != first:
            print(f"bench: --replot {path}: shape {key[0]}, draft vocab {key[1]}, but "
                  f"{paths[0]} has {first[0]}, {first[1]}; give runs of one shape",
                  file=sys.stderr)
            return 2
    m = results[0]["meta"]
    rows = [r for result in results for r in result["rows"]]
    out_dir = os.path.dirname(paths[0]) if len(paths) == 1 else out
    os.makedirs(out_dir or ".", exist_ok=True)
    print(format_table(rows, list(m.get("rate_sets") or RATE_SETS)))
    # Each run's summary on its own rows (its own baseline), by this version's code.
    for path, result in zip(paths, results):
        meta = result["meta"]
        shape = ModelShape(**meta["shape_dims"]) if "shape_dims" in meta else SHAPES[meta["shape"]]
        summary = summarize(result["rows"], meta.get("rate_sets") or RATE_SETS, shape,
                            meta.get("decode_context", 0.0))
        for key, v in summary.items():
            print(summary_line(f"{path} {key}", v))
    png = os.path.join(out_dir, "bench.png")
    plot(rows, png, _title(m["shape"], m["device"], m["vllm_version"], m.get("draft_vocab")))
    print(f"wrote {png}")
    return 0


def _title(shape: str, device: str, version: str, draft_vocab: int | None = None) -> str:
    vocab = f", draft vocab {draft_vocab}" if draft_vocab else ""
    return f"{shape} target{vocab}, dummy weights\n{device}, vLLM {version}"


def device_name() -> str:
    """The GPU's name, or the CPU's, for result tables."""
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except ImportError:
        pass
    import platform

    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
