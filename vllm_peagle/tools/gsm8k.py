"""GSM8K through lm-eval, on an ``LLM`` the caller already holds.

The data comes from the hub's ``openai/gsm8k`` (lm-eval's own ``gsm8k`` task)
or, offline, from a directory with ``test.jsonl`` and ``train.jsonl`` named by
``GSM8K_DATA``; the task is then lm-eval's ``gsm8k`` YAML with only its data
source replaced, so prompts, few-shot examples and the strict-match filter are
lm-eval's.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

GSM8K_DATA_ENV = "GSM8K_DATA"


def local_data_dir() -> str | None:
    path = os.environ.get(GSM8K_DATA_ENV)
    if not path:
        return None
    for name in ("test.jsonl", "train.jsonl"):
        if not os.path.isfile(os.path.join(path, name)):
            raise FileNotFoundError(
                f"{GSM8K_DATA_ENV}={path!r} has no {name}; point it at a directory "
                "with GSM8K's test.jsonl and train.jsonl (e.g. ../shared/data/gsm8k)")
    return os.path.abspath(path)


def _local_task(data_dir: str, task_dir: str) -> str:
    import lm_eval

    upstream = os.path.join(os.path.dirname(lm_eval.__file__), "tasks", "gsm8k", "gsm8k.yaml")
    with open(os.path.join(task_dir, "gsm8k_local.yaml"), "w") as f:
        f.write(
            f"include: {upstream}\n"
            "task: gsm8k_local\n"
            "tag: []\n"
            "dataset_path: json\n"
            "dataset_name: null\n"
            "dataset_kwargs:\n"
            "  data_files:\n"
            f"    train: {os.path.join(data_dir, 'train.jsonl')}\n"
            f"    test: {os.path.join(data_dir, 'test.jsonl')}\n"
        )
    return "gsm8k_local"


def make_lm(llm: Any):
    """An lm-eval ``LM`` that generates greedily with ``llm`` in one batch.

    Like lm-eval's own vLLM model, a context longer than the model's window
    minus the generation budget keeps its last tokens."""
    from lm_eval.api.model import LM
    from vllm import SamplingParams

    tokenizer = llm.get_tokenizer()
    max_model_len = llm.llm_engine.vllm_config.model_config.max_model_len

    class VLLMGreedyLM(LM):
        def __init__(self):
            super().__init__()
            self.generations: list[str] = []
            # Token ids too, so a divergence between two runs can be located.
            self.prompt_token_ids: list[list[int]] = []
            self.token_ids: list[list[int]] = []

        def generate_until(self, requests, disable_tqdm: bool = False):
            prompts, params = [], []
            for req in requests:
                context, gen_kwargs = req.args
                until = gen_kwargs.get("until") or []
                max_tokens = int(gen_kwargs.get("max_gen_toks", 256))
                ids = tokenizer.encode(context)[-(max_model_len - max_tokens):]
                prompts.append({"prompt_token_ids": ids})
                params.append(SamplingParams(
                    temperature=0.0, max_tokens=max_tokens,
                    stop=list(until) if isinstance(until, (list, tuple)) else [until]))
            outputs = llm.generate(prompts, params, use_tqdm=False)
            texts = [o.outputs[0].text for o in outputs]
            self.generations.extend(texts)
            self.prompt_token_ids.extend(p["prompt_token_ids"] for p in prompts)
            self.token_ids.extend(list(o.outputs[0].token_ids) for o in outputs)
            return texts

        def loglikelihood(self, requests, disable_tqdm: bool = False):
            raise NotImplementedError("GSM8K needs generation only")

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
            raise NotImplementedError("GSM8K needs generation only")

    return VLLMGreedyLM()


def record_requests(limit: int | None = None, num_fewshot: int = 5) -> list[dict[str, Any]]:
    """The generation requests lm-eval makes for GSM8K (context, stop strings,
    token budget), without a model: a host without lm-eval (the GPU machine)
    replays them with vLLM alone and meets the same prompts."""
    from lm_eval.api.model import LM

    class RecordingLM(LM):
        def __init__(self):
            super().__init__()
            self.requests: list[dict[str, Any]] = []

        def generate_until(self, requests, disable_tqdm: bool = False):
            for req in requests:
                context, gen_kwargs = req.args
                until = gen_kwargs.get("until") or []
                self.requests.append({
                    "context": context,
                    "until": list(until) if isinstance(until, (list, tuple)) else [until],
                    "max_gen_toks": int(gen_kwargs.get("max_gen_toks", 256))})
            return [""] * len(requests)

        def loglikelihood(self, requests, disable_tqdm: bool = False):
            raise NotImplementedError

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
            raise NotImplementedError

    lm = RecordingLM()
    _evaluate(lm, limit, num_fewshot)
    return lm.requests


def replay_scenario(requests: list[dict[str, Any]], tokenizer_dir: str,
                    max_model_len: int) -> dict[str, Any]:
    """A runner scenario's prompts and sampling for recorded requests, token
    ids made as ``make_lm`` makes them (one stop list, one budget: GSM8K's)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    budget = requests[0]["max_gen_toks"]
    assert all(r["max_gen_toks"] == budget and r["until"] == requests[0]["until"]
               for r in requests)
    return {"prompts": [{"prompt_token_ids":
                         tokenizer.encode(r["context"])[-(max_model_len - budget):]}
                        for r in requests],
            "max_tokens": budget, "stop": requests[0]["until"], "ignore_eos": False}


def _evaluate(lm: Any, limit: int | None, num_fewshot: int) -> tuple[dict, str, str | None]:
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    data_dir = local_data_dir()
    with tempfile.TemporaryDirectory() as task_dir:
        if data_dir is not None:
            task = _local_task(data_dir, task_dir)
            manager = TaskManager(include_path=task_dir)
        else:
            task, manager = "gsm8k", TaskManager()
        results = simple_evaluate(model=lm, tasks=[task], num_fewshot=num_fewshot,
                                  limit=limit, task_manager=manager, log_samples=False,
                                  random_seed=0, numpy_random_seed=0, torch_random_seed=0,
                                  fewshot_random_seed=0)
    return results, task, data_dir


def evaluate_gsm8k(llm: Any, limit: int | None = None, num_fewshot: int = 5) -> dict[str, Any]:
    """Strict-match accuracy and the raw generations of ``llm`` on GSM8K."""
    lm = make_lm(llm)
    results, task, data_dir = _evaluate(lm, limit, num_fewshot)
    accuracy = results["results"][task]["exact_match,strict-match"]
    return {"accuracy": accuracy, "generations": lm.generations,
            "prompt_token_ids": lm.prompt_token_ids, "token_ids": lm.token_ids,
            "source": data_dir or "hub:openai/gsm8k", "limit": limit}


def main(argv: list[str] | None = None) -> int:
    """``python -m vllm_peagle.tools.gsm8k record OUT.json [--limit N]``: write
    lm-eval's GSM8K requests (``GSM8K_DATA`` or the hub) for ``replay_scenario``."""
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m vllm_peagle.tools.gsm8k")
    p.add_argument("command", choices=["record"])
    p.add_argument("out")
    p.add_argument("--limit", type=int, default=30)
    args = p.parse_args(argv)
    requests = record_requests(args.limit)
    with open(args.out, "w") as f:
        json.dump({"limit": args.limit, "source": local_data_dir() or "hub:openai/gsm8k",
                   "requests": requests}, f)
    print(f"wrote {len(requests)} requests to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
