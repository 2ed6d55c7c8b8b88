"""``vllm-peagle demo``: PEagle on the built-in tiny models, on the CPU.

Builds the tiny models if absent, runs ``LLM(model=<tiny peagle>)`` with no
speculative flags, and a target-only ``LLM`` on the same prompts, each in its
own process (vLLM holds one engine's memory until its process ends), then prints
what vLLM resolved, a few generations, the spec-decode stats and whether the
greedy token ids equal the target-only ones.
"""

from __future__ import annotations

import os
from typing import Any

from vllm_peagle.tools.runner import DEFAULT_PROMPTS, run_isolated
from vllm_peagle.tools.tiny import ensure_tiny

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


def run_demo(cache_dir: str | None = None, max_tokens: int = 32, shown: int = 3) -> int:
    paths = ensure_tiny(cache_dir)
    print(f"tiny models: {os.path.dirname(paths['peagle'])}")
    scenario = {"prompts": DEFAULT_PROMPTS, "max_tokens": max_tokens,
                "llm_kwargs": CPU_LLM_KWARGS}
    print("running LLM(model=<tiny peagle>) ...", flush=True)
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
    print(f"\ngenerations (greedy, {max_tokens} tokens; the tiny model's weights are random):")
    for prompt, text in list(zip(spec["prompts"], spec["texts"]))[:shown]:
        print(f"  {prompt!r} -> {text!r}")
    print("\nspec-decode stats:")
    print("\n".join(format_stats(spec["stats"])))
    same = sum(a == b for a, b in zip(spec["token_ids"], base["token_ids"]))
    n = len(base["token_ids"])
    verdict = "yes" if same == n else "NO"
    print(f"\ntoken ids equal the target-only run: {verdict} ({same}/{n} prompts)")
    return 0 if same == n else 1
