"""``vllm-peagle demo``: PEagle on the trained tiny pair the package ships, on the CPU.

Copies the trained tiny models (``python -m dev.train_tiny`` made them) to the cache, runs
``LLM(model=<trained peagle>)`` with no speculative flags, and a target-only
``LLM`` on the same GSM8K-style questions, each in its own process (vLLM holds
one engine's memory until its process ends), then prints what vLLM resolved, a
few generations, the spec-decode stats (acceptance at every draft position),
output tokens per second of both runs and whether the greedy token ids equal
the target-only ones.
"""

from __future__ import annotations

import os
from typing import Any

from vllm_peagle.tools.runner import run_isolated
from vllm_peagle.tools.trained import default_cache_dir, ensure_trained_tiny

# Written for the demo in GSM8K's style (the target was trained on GSM8K's train
# split), in lm-eval's prompt format.
QUESTIONS = [
    "Tom has 5 apples and buys 3 more bags with 4 apples each. How many apples does he have?",
    "A train travels 60 miles per hour for 3 hours. How far does it travel?",
    "Sara earns $12 an hour and works 8 hours a day for 5 days. How much does she earn?",
    "A baker makes 24 cupcakes and sells half of them. How many cupcakes are left?",
    "John reads 20 pages a day. How many pages does he read in 2 weeks?",
    "There are 30 students in a class and 2/5 of them are boys. How many girls are there?",
    "A shirt costs $25 and is on sale for 20% off. What is the sale price?",
    "Mia has 3 times as many stickers as Leo, who has 15. How many do they have together?",
]
PROMPTS = [f"Question: {q}\nAnswer:" for q in QUESTIONS]

# On the CPU backend this is the share of host memory vLLM reserves.
# float32, the tiny models' own dtype: the token-id comparison is then not
# at the mercy of bf16 rounding.
CPU_LLM_KWARGS = {"gpu_memory_utilization": 0.3, "max_model_len": 2048, "dtype": "float32"}


def _fail(what: str, result: dict[str, Any]) -> None:
    raise SystemExit(f"demo: the {what} run failed: {result.get('error_type')}: "
                     f"{result.get('error')}")


def format_stats(stats: dict[str, Any]) -> list[str]:
    rates = ", ".join(f"{r:.3f}" for r in stats["per_pos_acceptance_rates"])
    return [
        f"  drafts:                {stats['num_drafts']}",
        f"  draft tokens:          {stats['num_draft_tokens']}",
        f"  accepted tokens:       {stats['num_accepted_tokens']}",
        f"  acceptance length:     {stats['acceptance_len']:.3f}",
        f"  acceptance rate:       {stats['overall_acceptance_rate']:.3f}",
        f"  per-position rates:    [{rates}]",
    ]


def tokens_per_second(result: dict[str, Any]) -> float:
    return sum(len(ids) for ids in result["token_ids"]) / result["generate_s"]


def run_demo(cache_dir: str | None = None, max_tokens: int = 64, shown: int = 3) -> int:
    cache_dir = cache_dir or default_cache_dir()
    paths = ensure_trained_tiny(cache_dir)
    print(f"trained tiny models: {cache_dir}")
    scenario = {"prompts": PROMPTS, "max_tokens": max_tokens, "llm_kwargs": CPU_LLM_KWARGS}
    print("running LLM(model=<trained tiny peagle>) ...", flush=True)
    spec = run_isolated(dict(scenario, model=paths["peagle"]))
    if not spec["ok"]:
        _fail("PEagle", spec)
    print("running the target alone for comparison ...", flush=True)
    base = run_isolated(dict(scenario, model=paths["target"]))
    if not base["ok"]:
        _fail("target-only", base)

    sc = spec["speculative_config"]
    print(f"\nvLLM {spec['vllm_version']}, plugin mode "
          f"{os.environ.get('VLLM_PEAGLE_MODE', 'auto')}")
    print("resolved speculative config:")
    print(f"  method:                {sc['method']}")
    print(f"  parallel_drafting:     {sc['parallel_drafting']}")
    print(f"  num_speculative_tokens (K): {sc['num_speculative_tokens']}")
    print(f"  draft model:           {sc['draft_model']}")
    print(f"  target model:          {sc['target_model']}")
    print(f"  draft architecture:    {', '.join(sc['draft_architectures'])} "
          f"(pard_token {sc['pard_token']})")
    print(f"\ngenerations (greedy, {max_tokens} tokens, a 1.5M-parameter model trained "
          "for minutes on GSM8K):")
    for prompt, text in list(zip(spec["prompts"], spec["texts"]))[:shown]:
        print(f"  {prompt!r}\n    -> {text!r}")
    print("\nspec-decode stats:")
    print("\n".join(format_stats(spec["stats"])))
    with_peagle, without = tokens_per_second(spec), tokens_per_second(base)
    print(f"\noutput tokens/s on this CPU ({len(PROMPTS)} prompts in one batch):")
    print(f"  target alone:          {without:.1f}")
    print(f"  with PEagle:           {with_peagle:.1f} ({with_peagle / without:.2f}x)")
    print("  (Speculation pays where the target's step is slow to run and the draft's cheap\n"
          "  beside it: an 8B model on a GPU.  Here the target is a 1.5M-parameter model on\n"
          "  a CPU, as cheap to run as its draft, so drafting and verifying cost more than\n"
          "  they save.  GPU figures: benchmarks/README.md.)")
    same = sum(a == b for a, b in zip(spec["token_ids"], base["token_ids"]))
    n = len(base["token_ids"])
    verdict = "yes" if same == n else "NO"
    print(f"\ntoken ids equal the target-only run: {verdict} ({same}/{n} prompts)")
    return 0 if same == n else 1
