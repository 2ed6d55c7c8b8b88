"""What keeping a draft's sliding window is worth: a PEagle draft trained with
every layer sliding a window (``vllm_peagle/trained_tiny/qwen3-peagle-window32``
and ``llama-peagle-window32``, made by ``python -m dev.train_tiny DIR --archs
qwen3|llama --sliding-window 32``),
served on GSM8K 5-shot prompts far longer than the window, once as its config
says (the window kept) and once with the window taken out of its config (the
same weights over full attention: what a drafter that drops the window, as vLLM
0.24's own Qwen3 drafter, runs).  Prints the per-position acceptance of both,
and of the committed full-attention draft of the same pair beside them; writes
OUT/window_acceptance.json.  The GPU session's ``window`` step runs the same
(``measure``) and fails where the two are equal: the window was dropped.

usage: python benchmarks/window_acceptance.py OUT [--windowed NAME | --draft DIR]
       [--gsm8k TEST_JSONL] [--questions N] [--max-tokens N] [--mode auto|force|off]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from vllm_peagle.tools.runner import run_isolated  # noqa: E402
from vllm_peagle.tools.trained import ensure_trained_tiny  # noqa: E402

WINDOW_FIELDS = ("layer_types", "sliding_window", "use_sliding_window")
# Each committed windowed draft (every layer a 32-token window) and the committed
# draft of the same pair trained with full attention.
WINDOWED_DRAFTS = {"qwen3-peagle-window32": "qwen3-peagle", "llama-peagle-window32": "peagle"}
DEFAULT_WINDOWED = "qwen3-peagle-window32"  # CI's window guard and the committed CPU record


def fewshot_prompts(test_jsonl: str, n: int, shots: int = 5) -> list[str]:
    """lm-eval's GSM8K 5-shot shape from the test split alone (so the CPU and the
    GPU, which has only this file, ask the same): rows 0..shots-1 solved, then
    each of the next ``n`` questions."""
    with open(test_jsonl) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    if len(rows) < shots + n:
        raise SystemExit(f"{test_jsonl}: {len(rows)} rows, {shots + n} wanted")
    head = "\n\n".join(f"Question: {r['question']}\nAnswer: {r['answer']}" for r in rows[:shots])
    return [f"{head}\n\nQuestion: {r['question']}\nAnswer:" for r in rows[shots:shots + n]]


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


def measure(work: str, prompts: list[str], llm_kwargs: dict, mode: str = "auto",
            max_tokens: int = 64, draft: str | None = None,
            windowed: str = DEFAULT_WINDOWED) -> dict:
    """A windowed draft (``draft``, else the committed ``windowed``) kept and
    dropped (and the committed full-attention draft of its pair beside them, for
    a committed one), K=4, greedy; each draft's per-position acceptance and
    whether its ids equal the target's."""
    trained = ensure_trained_tiny(os.path.join(work, "trained"))
    committed = draft is None
    draft = draft or trained[windowed]
    with open(os.path.join(draft, "config.json")) as f:
        config = json.load(f)
    verifier = config["speculators_config"]["verifier"]["name_or_path"]
    drafts = {"window kept": draft,
              "window dropped": without_window(draft, os.path.join(work, "window-dropped"))}
    if committed:
        drafts["trained with full attention"] = trained[WINDOWED_DRAFTS[windowed]]
    base = {"model": verifier, "prompts": prompts, "max_tokens": max_tokens,
            "llm_kwargs": llm_kwargs}
    # "peagle" is a method only where the plugin adds it; vLLM alone (``off``) runs
    # a PEagle draft given explicitly as Eagle3 drafting in parallel (without a
    # method it would take the draft for a standalone draft model).
    method = ({"method": "eagle3", "parallel_drafting": True} if mode == "off"
              else {"method": "peagle"})
    scenarios = [base] + [dict(base, llm_kwargs=dict(llm_kwargs, speculative_config=dict(
        method, model=d, num_speculative_tokens=4))) for d in drafts.values()]
    runs = run_isolated(scenarios, mode=mode, env={"VLLM_ENABLE_V1_MULTIPROCESSING": "0"},
                        timeout=1800)
    target, results = runs[0], {}
    for (name, path), r in zip(drafts.items(), runs[1:]):
        stats, sc = r.get("stats") or {}, r.get("speculative_config") or {}
        results[name] = {
            "ok": r["ok"], "error": None if r["ok"] else (r.get("error") or "")[-800:],
            "acceptance_len": stats.get("acceptance_len"),
            "per_pos_acceptance_rates": stats.get("per_pos_acceptance_rates"),
            "num_drafts": stats.get("num_drafts"),
            "token_ids_equal_target": bool(r["ok"] and target["ok"]
                                           and r["token_ids"] == target["token_ids"]),
            "draft_sliding_window": sc.get("sliding_window"),
            "draft_architectures": sc.get("draft_architectures")}
    kept, dropped = results["window kept"], results["window dropped"]
    return {"date": time.strftime("%Y-%m-%d"), "vllm_version": target.get("vllm_version"),
            "mode": mode, "draft": windowed if committed else draft,
            "window": config["transformer_layer_config"].get("sliding_window"),
            "questions": len(prompts), "max_tokens": max_tokens, "target_ok": target["ok"],
            "error": None if target["ok"] else (target.get("error") or "")[-800:],
            # Equal rates: the window changed nothing, i.e. it was dropped.
            "window_applied": (kept["per_pos_acceptance_rates"]
                               != dropped["per_pos_acceptance_rates"])
            if kept["ok"] and dropped["ok"] else None,
            "results": results}


def table(record: dict) -> str:
    lines = [f"vLLM {record['vllm_version']}, VLLM_PEAGLE_MODE={record['mode']}, "
             f"{record['draft']}, window "
             f"{record['window']}; {record['questions']} GSM8K 5-shot prompts, "
             f"{record['max_tokens']} tokens each, K=4; window applied: "
             f"{record['window_applied']}",
             "| draft | acceptance length | per-position acceptance | ids == target's |",
             "|---|---|---|---|"]
    for name, r in record["results"].items():
        if r["ok"]:
            rates = " ".join(f"{x:.3f}" for x in r["per_pos_acceptance_rates"] or [])
            lines.append(f"| {name} | {r['acceptance_len']:.3f} | {rates} | "
                         f"{r['token_ids_equal_target']} |")
        else:
            lines.append(f"| {name} | failed: {r['error'][-200:]} | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/window_acceptance.py")
    p.add_argument("out")
    p.add_argument("--windowed", default=DEFAULT_WINDOWED, choices=WINDOWED_DRAFTS,
                   help="the committed windowed draft")
    p.add_argument("--draft", default=None, help="another windowed draft (a directory)")
    p.add_argument("--gsm8k", default=os.path.join(ROOT, "..", "shared", "data", "gsm8k",
                                                   "test.jsonl"))
    p.add_argument("--questions", type=int, default=16)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--mode", default="auto", choices=("auto", "force", "off"))
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    kw = {"gpu_memory_utilization": 0.3, "max_model_len": 2048, "dtype": "float32",
          "enforce_eager": True}
    record = measure(args.out, fewshot_prompts(args.gsm8k, args.questions), kw, args.mode,
                     args.max_tokens, args.draft, args.windowed)
    with open(os.path.join(args.out, "window_acceptance.json"), "w") as f:
        json.dump(record, f, indent=2)
    print(table(record))
    return 0 if record["window_applied"] else 1


if __name__ == "__main__":
    sys.exit(main())
