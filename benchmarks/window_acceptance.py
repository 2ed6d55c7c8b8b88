"""What keeping a draft's sliding window is worth: a PEagle draft trained with
every layer sliding a window (``python -m dev.train_tiny DIR --archs qwen3
--sliding-window N``), served on GSM8K 5-shot prompts far longer than the
window, once as its config says (the window kept) and once with the window
taken out of its config (the same weights over full attention: what a drafter
that drops the window, as vLLM 0.24's own Qwen3 drafter, runs).  Prints the
per-position acceptance of both, and of the committed full-attention draft of
the same pair beside them (where the windowed draft's verifier is a committed
target); writes them to OUT/window_acceptance.json.

usage: python benchmarks/window_acceptance.py WINDOWED_DRAFT OUT [--questions N]
       [--max-tokens N] [--mode auto|force]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from dev.train_tiny import gsm8k_documents  # noqa: E402
from vllm_peagle.tools.runner import run_isolated  # noqa: E402
from vllm_peagle.tools.trained import TRAINED_DIR  # noqa: E402

WINDOW_FIELDS = ("layer_types", "sliding_window", "use_sliding_window")


def fewshot_prompts(gsm8k_dir: str, n: int, shots: int = 5) -> list[str]:
    """lm-eval's GSM8K 5-shot shape: the first ``shots`` train examples, then
    each of the first ``n`` test questions."""
    train = gsm8k_documents(gsm8k_dir, "train")[:shots]
    test = gsm8k_documents(gsm8k_dir, "test")[:n]
    head = "\n\n".join(train)
    return [f"{head}\n\n{doc.split(chr(10) + 'Answer:')[0]}\nAnswer:" for doc in test]


def without_window(draft: str, out: str) -> str:
    """A copy of ``draft`` whose config names no window (its weights the same)."""
    if os.path.exists(out):
        shutil.rmtree(out)
    shutil.copytree(draft, out)
    path = os.path.join(out, "config.json")
    with open(path) as f:
        config = json.load(f)
    layer = config["transformer_layer_config"]
    if not any(field in layer for field in WINDOW_FIELDS):
        raise SystemExit(f"{draft}: its transformer_layer_config names no sliding window")
    for field in WINDOW_FIELDS:
        layer.pop(field, None)
    with open(path, "w") as f:
        json.dump(config, f, indent=2)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/window_acceptance.py")
    p.add_argument("draft")
    p.add_argument("out")
    p.add_argument("--questions", type=int, default=16)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--gsm8k", default=os.path.join(ROOT, "..", "shared", "data", "gsm8k"))
    p.add_argument("--mode", default="auto", choices=("auto", "force"))
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.draft, "config.json")) as f:
        config = json.load(f)
    verifier = config["speculators_config"]["verifier"]["name_or_path"]
    window = config["transformer_layer_config"].get("sliding_window")
    dropped = without_window(args.draft, os.path.join(args.out, "window-dropped"))
    reference = os.path.join(TRAINED_DIR, os.path.basename(verifier).replace("target", "peagle"))
    prompts = fewshot_prompts(args.gsm8k, args.questions)
    drafts = {"window kept": args.draft, "window dropped": dropped}
    if os.path.dirname(os.path.abspath(verifier)) == TRAINED_DIR and os.path.isdir(reference):
        drafts["trained with full attention"] = reference
    kw = {"gpu_memory_utilization": 0.3, "max_model_len": 2048, "dtype": "float32",
          "enforce_eager": True}
    scenarios = [{"model": verifier, "prompts": prompts, "max_tokens": args.max_tokens,
                  "llm_kwargs": kw}]
    scenarios += [{"model": verifier, "prompts": prompts, "max_tokens": args.max_tokens,
                   "llm_kwargs": dict(kw, speculative_config={"model": d, "method": "peagle",
                                                              "num_speculative_tokens": 4})}
                  for d in drafts.values()]
    runs = run_isolated(scenarios, mode=args.mode, env={"VLLM_ENABLE_V1_MULTIPROCESSING": "0"},
                        timeout=1800)
    target, results = runs[0], {}
    print(f"window {window}; {len(prompts)} GSM8K 5-shot prompts (~{len(prompts[0]) // 4} "
          f"tokens), {args.max_tokens} tokens each, K=4, VLLM_PEAGLE_MODE={args.mode}")
    print("| draft | acceptance length | per-position acceptance | ids == target's |")
    print("|---|---|---|---|")
    for (name, path), r in zip(drafts.items(), runs[1:]):
        stats = r.get("stats") or {}
        same = bool(r["ok"] and target["ok"] and r["token_ids"] == target["token_ids"])
        results[name] = {"draft": path, "ok": r["ok"], "error": r.get("error"),
                         "acceptance_len": stats.get("acceptance_len"),
                         "per_pos_acceptance_rates": stats.get("per_pos_acceptance_rates"),
                         "num_drafts": stats.get("num_drafts"),
                         "token_ids_equal_target": same,
                         "draft_sliding_window": (r.get("speculative_config") or {}).get(
                             "sliding_window"),
                         "draft_architectures": (r.get("speculative_config") or {}).get(
                             "draft_architectures")}
        rates = " ".join(f"{x:.3f}" for x in stats.get("per_pos_acceptance_rates") or [])
        line = (f"{stats['acceptance_len']:.3f} | {rates} | {same}" if r["ok"]
                else f"failed: {(r.get('error') or '')[-200:]} | |")
        print(f"| {name} | {line} |")
    record = {"date": time.strftime("%Y-%m-%d"), "host": platform.processor() or "cpu",
              "vllm_version": target.get("vllm_version"), "mode": args.mode,
              "window": window, "questions": len(prompts), "max_tokens": args.max_tokens,
              "target_ok": target["ok"], "results": results}
    with open(os.path.join(args.out, "window_acceptance.json"), "w") as f:
        json.dump(record, f, indent=2)
    return 0 if target["ok"] and all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
