"""``vllm-peagle bench``: decode-step time of no speculation, Eagle3 and PEagle.

Builds config-only checkpoints of one shape (default: a Llama-3-8B-shaped
target and a 1-layer draft) and runs them with dummy weights, all in one
process run so the numbers compare:
- no speculation;
- Eagle3, sequential drafting: K draft forward passes per step;
- PEagle, parallel drafting: one draft forward pass for all K tokens;
for each K and batch size, with a fixed output length (``ignore_eos``), a
warm-up first and the median of ``--repeats`` timed repeats.

A "decode step" is one engine step after the prefill: draft plus verify.  With
dummy weights nearly every draft is rejected, so a step's cost is measured, not
its yield; ``--rates`` turn step times into the projected speedup
``AL(K) * t_base / t_spec(K)`` with AL(K) = 1 + sum of the first K per-position
acceptance rates.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any

# Published per-position acceptance rates (speculators model cards, Qwen3-8B).
PEAGLE_QWEN3_8B_RATES = (0.78, 0.59, 0.43, 0.29, 0.18, 0.10, 0.05)
EAGLE3_QWEN3_8B_RATES = (0.76, 0.55, 0.36)


@dataclass(frozen=True)
class BenchShape:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    max_position_embeddings: int = 8192


SHAPES = {
    "llama3-8b": BenchShape(128256, 4096, 32, 32, 8, 14336),
    "tiny": BenchShape(512, 128, 8, 4, 2, 256, 2048),
}


def _llama(shape: BenchShape, layers: int) -> dict[str, Any]:
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "vocab_size": shape.vocab_size, "hidden_size": shape.hidden_size,
        "intermediate_size": shape.intermediate_size, "num_hidden_layers": layers,
        "num_attention_heads": shape.num_attention_heads,
        "num_key_value_heads": shape.num_key_value_heads,
        "head_dim": shape.hidden_size // shape.num_attention_heads,
        "max_position_embeddings": shape.max_position_embeddings, "rms_norm_eps": 1e-5,
        "rope_theta": 500000.0, "hidden_act": "silu", "tie_word_embeddings": False,
        "bos_token_id": 0, "eos_token_id": 1, "torch_dtype": "bfloat16",
    }


def write_checkpoints(root: str, shape: BenchShape, k: int) -> dict[str, str]:
    """Config-only target and speculators drafts (peagle, eagle3) with K tokens."""
    from vllm_peagle.tools.tiny import speculators_config

    target = os.path.join(root, "target")
    os.makedirs(target, exist_ok=True)
    with open(os.path.join(target, "config.json"), "w") as f:
        json.dump(_llama(shape, shape.num_hidden_layers), f, indent=2)
    layer = _llama(shape, 1)
    layer.pop("architectures")
    paths = {"target": target}
    for kind in ("peagle", "eagle3"):
        d = os.path.join(root, f"{kind}-k{k}")
        os.makedirs(d, exist_ok=True)
        extra = {"mask_token_id": shape.vocab_size - 1} if kind == "peagle" else {}
        cfg = speculators_config(kind, layer, target, k, extra)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        paths[kind] = d
    return paths


def time_decode_steps(llm: Any, batch_size: int, prompt_len: int, output_len: int,
                      vocab_size: int, seed: int) -> dict[str, float]:
    """One timed generation: the mean time of the engine steps after the prefill."""
    import random

    from vllm import SamplingParams

    rng = random.Random(seed)
    params = SamplingParams(temperature=0.0, max_tokens=output_len, ignore_eos=True,
                            detokenize=False)
    engine = llm.llm_engine
    for i in range(batch_size):
        ids = [rng.randrange(2, vocab_size - 2) for _ in range(prompt_len)]
        engine.add_request(f"bench-{seed}-{i}", {"prompt_token_ids": ids}, params)
    step_times: list[float] = []
    tokens = 0
    while engine.has_unfinished_requests():
        t0 = time.perf_counter()
        outputs = engine.step()
        step_times.append(time.perf_counter() - t0)
        tokens += sum(len(o.outputs[0].token_ids) for o in outputs if o.finished)
    decode = step_times[1:]  # step 0 is the prefill (the whole batch fits in one)
    return {"ms_per_step": 1000 * sum(decode) / max(len(decode), 1),
            "steps": len(decode), "tokens": tokens}


def run_config(model: str, method: str, k: int, batch_sizes: list[int], args,
               shape: BenchShape) -> list[dict[str, Any]]:
    from vllm import LLM

    llm = LLM(model=model, load_format="dummy", skip_tokenizer_init=True,
              max_model_len=args.max_model_len, gpu_memory_utilization=args.gpu_memory_utilization,
              enforce_eager=args.enforce_eager, max_num_seqs=max(batch_sizes),
              seed=0)
    spec = llm.llm_engine.vllm_config.speculative_config
    rows = []
    for bs in batch_sizes:
        time_decode_steps(llm, bs, args.prompt_len, args.output_len, shape.vocab_size, seed=-1)
        runs = [time_decode_steps(llm, bs, args.prompt_len, args.output_len, shape.vocab_size,
                                  seed=r) for r in range(args.repeats)]
        ms = [r["ms_per_step"] for r in runs]
        rows.append({
            "method": method, "k": k, "batch_size": bs,
            "ms_per_step": statistics.median(ms), "ms_per_step_runs": ms,
            "steps_per_run": [r["steps"] for r in runs],
            "resolved_method": spec.method if spec else None,
            "parallel_drafting": bool(getattr(spec, "parallel_drafting", False)) if spec else None,
            "num_speculative_tokens": spec.num_speculative_tokens if spec else 0,
        })
        print(f"  {method:7s} K={k} bs={bs}: {rows[-1]['ms_per_step']:.3f} ms/step "
              f"(runs {', '.join(f'{m:.3f}' for m in ms)})", flush=True)
    _shutdown(llm)
    return rows


def _shutdown(llm: Any) -> None:
    """Free the engine before the next one starts (one process, many engines)."""
    import gc

    engine_core = getattr(llm.llm_engine, "engine_core", None)
    shutdown = getattr(engine_core, "shutdown", None)
    if callable(shutdown):
        shutdown()
    del llm
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def acceptance_len(rates: tuple[float, ...], k: int) -> float:
    return 1 + sum(rates[:k])


def summarize(rows: list[dict[str, Any]], peagle_rates, eagle3_rates) -> dict[str, Any]:
    base = {r["batch_size"]: r["ms_per_step"] for r in rows if r["method"] == "none"}
    for r in rows:
        t0 = base.get(r["batch_size"])
        r["ratio_to_none"] = r["ms_per_step"] / t0 if t0 else None
        rates = {"peagle": peagle_rates, "eagle3": eagle3_rates}.get(r["method"])
        if rates is not None and t0:
            r["acceptance_len_projected"] = acceptance_len(rates, r["k"])
            r["speedup_projected"] = r["acceptance_len_projected"] * t0 / r["ms_per_step"]
    summary: dict[str, Any] = {}
    for bs in sorted(base):
        pe = {r["k"]: r["ms_per_step"] for r in rows if r["method"] == "peagle" and r["batch_size"] == bs}
        e3 = {r["k"]: r["ms_per_step"] for r in rows if r["method"] == "eagle3" and r["batch_size"] == bs}
        s: dict[str, Any] = {"none_ms": base[bs]}
        if 3 in pe and 7 in pe:
            s["peagle_t7_over_t3"] = pe[7] / pe[3]
        if pe:
            s["peagle_overhead_vs_none"] = statistics.median(pe.values()) / base[bs] - 1
        if len(e3) >= 2:
            ks = sorted(e3)
            s["eagle3_ms_per_extra_token"] = (e3[ks[-1]] - e3[ks[0]]) / (ks[-1] - ks[0])
        summary[f"bs{bs}"] = s
    return summary


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| method | K | batch | ms/step | x no-spec | projected speedup |",
             "|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["batch_size"], r["method"], r["k"])):
        ratio = f"{r['ratio_to_none']:.3f}" if r.get("ratio_to_none") else "-"
        speedup = f"{r['speedup_projected']:.2f}" if r.get("speedup_projected") else "-"
        lines.append(f"| {r['method']} | {r['k']} | {r['batch_size']} | "
                     f"{r['ms_per_step']:.3f} | {ratio} | {speedup} |")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for bs in sorted({r["batch_size"] for r in rows}):
        for method, style in (("eagle3", "o-"), ("peagle", "s-")):
            pts = sorted((r["k"], r["ms_per_step"]) for r in rows
                         if r["method"] == method and r["batch_size"] == bs)
            if pts:
                ax.plot(*zip(*pts), style, label=f"{method} bs={bs}")
        base = [r["ms_per_step"] for r in rows if r["method"] == "none" and r["batch_size"] == bs]
        if base:
            ax.axhline(base[0], linestyle="--", color="gray", linewidth=1)
            ax.annotate(f"no spec bs={bs}", (0.02, base[0]), xycoords=("axes fraction", "data"),
                        fontsize=8, color="gray", va="bottom")
    ax.set_xlabel("K (draft tokens per step)")
    ax.set_ylabel("ms per decode step (median)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--shape", choices=sorted(SHAPES), default="llama3-8b")
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
    p.add_argument("--peagle-rates", type=float, nargs="+", default=list(PEAGLE_QWEN3_8B_RATES),
                   help="per-position acceptance rates for the projection (default: "
                        "PEagle Qwen3-8B, published)")
    p.add_argument("--eagle3-rates", type=float, nargs="+", default=list(EAGLE3_QWEN3_8B_RATES),
                   help="per-position acceptance rates for the projection (default: "
                        "Eagle3 Qwen3-8B, published)")
    p.add_argument("--out", default="bench-out", help="directory for bench.json and bench.png")
    p.add_argument("--replot", metavar="BENCH_JSON", default=None,
                   help="only redraw bench.png from an earlier run's bench.json")


def run_bench(args) -> int:
    if args.replot:
        with open(args.replot) as f:
            result = json.load(f)
        m = result["meta"]
        png = os.path.join(os.path.dirname(args.replot), "bench.png")
        plot(result["rows"], png, _title(m["shape"], m["device"], m["vllm_version"]))
        print(f"wrote {png}")
        return 0
    if args.repeats < 1 or any(k < 1 for k in args.ks) or any(b < 1 for b in args.batch_sizes):
        print("bench: --repeats, --ks and --batch-sizes must be positive", file=sys.stderr)
        return 2
    import vllm

    shape = SHAPES[args.shape]
    os.makedirs(args.out, exist_ok=True)
    json_path = os.path.join(args.out, "bench.json")
    meta = {"device": device_name(), "vllm_version": vllm.__version__,
            "date": time.strftime("%Y-%m-%d"), "shape": args.shape, "shape_dims": asdict(shape),
            "command": "vllm-peagle bench " + " ".join(sys.argv[2:])
            if sys.argv[1:2] == ["bench"] else None,
            "args": {k: v for k, v in vars(args).items() if k != "fn"},
            "plugin_mode": os.environ.get("VLLM_PEAGLE_MODE", "auto")}
    rows: list[dict[str, Any]] = []
    started = time.time()

    def save() -> dict[str, Any]:
        # After every engine: a sweep cut short still leaves its numbers.
        meta["wall_s"] = time.time() - started
        result = {"meta": meta, "rows": rows,
                  "summary": summarize(rows, tuple(args.peagle_rates), tuple(args.eagle3_rates))}
        with open(json_path, "w") as f:
            json.dump(result, f, indent=2)
        return result

    with tempfile.TemporaryDirectory() as root:
        target = write_checkpoints(root, shape, 1)["target"]
        if "none" in args.methods:
            rows += run_config(target, "none", 0, args.batch_sizes, args, shape)
            save()
        for k in args.ks:
            paths = write_checkpoints(root, shape, k)
            for method in ("eagle3", "peagle"):
                if method in args.methods:
                    rows += run_config(paths[method], method, k, args.batch_sizes, args, shape)
                    save()
    result = save()
    print(f"\n{meta['device']}, vLLM {meta['vllm_version']}, {meta['date']}, shape {args.shape}")
    print(format_table(rows))
    for key, s in result["summary"].items():
        print(f"{key}: " + ", ".join(f"{k}={v:.4g}" for k, v in s.items()))
    try:
        plot(rows, os.path.join(args.out, "bench.png"),
             _title(args.shape, meta["device"], meta["vllm_version"]))
    except ImportError:
        print("matplotlib is not installed: no bench.png; elsewhere run "
              f"`vllm-peagle bench --replot {json_path}`")
    print(f"wrote {json_path}")
    return 0


def _title(shape: str, device: str, version: str) -> str:
    return f"{shape} target, 1-layer draft, dummy weights\n{device}, vLLM {version}"


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
