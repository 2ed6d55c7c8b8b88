"""No input makes ``vllm-peagle check`` or pre-flight raise.

Random mutations of the valid tiny Llama and Qwen3 PEagle configs (a field
deleted, its type changed, a nested value replaced, the JSON truncated), with
a fixed seed: ``check`` exits 0 or 1, prints one line per problem and no
traceback, and leaves the directory as it was, and the release checks of
those it passes raise nothing; the mutations ``check`` refuses
go through ``EngineArgs`` (one config-only process per plugin mode, shared with
the other engine-config tests) and raise a ``ValueError`` holding those lines.
"""

from __future__ import annotations

import copy
import io
import json
import os
import random
import shutil

import pytest

from tests.malformed import tree_state
from vllm_peagle.preflight.checks import check_checkpoint, load_json
from vllm_peagle.preflight.release import release_problems
from vllm_peagle.tools.check import run_check

SEED = 20261130
# Per draft (Llama, Qwen3): mutations checked in-process, and how many of the
# refused ones go through EngineArgs as well.
N_MUTATIONS = 300
N_ENGINE_ARGS = 12
# Values of other JSON types a field is replaced with.
ODD_VALUES = (None, True, -1, 0, 2.5, "", "qwen3", [], [1, 2], {}, {"a": 1}, [[0]], 10**12)


def _paths(value, prefix=()):
    """Every path (tuple of keys and indices) inside a JSON value."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield prefix + (key,)
            yield from _paths(inner, prefix + (key,))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield prefix + (i,)
            yield from _paths(inner, prefix + (i,))


def _parent(config, path):
    for key in path[:-1]:
        config = config[key]
    return config


def mutate(config: dict, rng: random.Random) -> tuple[str, str]:
    """(what was done, config.json text) for one random mutation of ``config``."""
    config = copy.deepcopy(config)
    kind = rng.choice(("delete", "retype", "nested", "truncate"))
    if kind == "truncate":
        text = json.dumps(config, indent=2)
        cut = rng.randrange(0, len(text))
        return f"truncated at {cut}", text[:cut]
    paths = list(_paths(config))
    if kind == "nested":  # a value at depth >= 2
        paths = [p for p in paths if len(p) >= 2] or paths
    path = rng.choice(paths)
    parent = _parent(config, path)
    if kind == "delete":
        del parent[path[-1]]
        return f"deleted {path}", json.dumps(config)
    value = rng.choice(ODD_VALUES)
    parent[path[-1]] = value
    return f"{path} = {value!r}", json.dumps(config)


def _drafts(tiny_models) -> dict[str, str]:
    return {"llama": tiny_models["peagle"], "qwen3": tiny_models["qwen3-peagle"]}


def run_fuzz(tiny: dict[str, str], root: str) -> list[dict]:
    """Each mutation written beside a copy of its draft's weights under
    ``root`` and checked in-process; a record per mutation."""
    rng = random.Random(SEED)
    runs = []
    for arch, source in _drafts(tiny).items():
        with open(os.path.join(source, "config.json")) as f:
            valid = json.load(f)
        for i in range(N_MUTATIONS):
            what, text = mutate(valid, rng)
            draft = os.path.join(root, f"{arch}-{i}")
            shutil.copytree(source, draft)
            with open(os.path.join(draft, "config.json"), "w") as f:
                f.write(text)
            before = tree_state(draft)
            out = io.StringIO()
            try:
                # The release checks without check's register(), which would patch
                # vLLM in this (the test's) process: release_problems directly.
                code = run_check(draft, out=out, release=False)
                error = None
                if code == 0:
                    release_problems(load_json(os.path.join(draft, "config.json"))[0],
                                     check_checkpoint(draft).verifier_config)
            except Exception as e:  # the failure this test exists to find
                code, error = None, f"{type(e).__name__}: {e}"
            runs.append({"arch": arch, "what": what, "draft": draft, "code": code,
                         "error": error, "stdout": out.getvalue(),
                         "unchanged": tree_state(draft) == before})
    return runs


@pytest.fixture(scope="module")
def fuzz_runs(tiny_models, tmp_path_factory) -> list[dict]:
    return run_fuzz(tiny_models, str(tmp_path_factory.mktemp("fuzz")))


def test_check_never_raises_on_mutated_configs(fuzz_runs):
    raised = [(r["arch"], r["what"], r["error"]) for r in fuzz_runs if r["error"]]
    assert not raised, f"{len(raised)} of {len(fuzz_runs)} mutations raised: {raised[:5]}"
    assert all(r["code"] in (0, 1) for r in fuzz_runs)
    assert all(r["unchanged"] for r in fuzz_runs)
    # The mutations reach the checks (a third or more refused), each refusal
    # with its lines.
    refused = [r for r in fuzz_runs if r["code"] == 1]
    assert len(refused) > len(fuzz_runs) // 3
    for r in refused:
        lines = [line for line in r["stdout"].splitlines() if line.startswith(r["draft"] + ": ")]
        assert lines, (r["what"], r["stdout"])
        assert all(": " in line[len(r["draft"]) + 2:] for line in lines), r["stdout"]


def test_check_cli_on_a_truncated_config_prints_no_traceback(fuzz_runs):
    """The command itself, in a process of its own, on one mutation."""
    from tests.malformed import run_check as run_check_cli

    run = next(r for r in fuzz_runs if r["what"].startswith("truncated"))
    proc = run_check_cli(run["draft"])
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[:-1] == run["stdout"].splitlines()[:-1]


def _says_peagle(draft: str) -> bool:
    try:
        with open(os.path.join(draft, "config.json")) as f:
            config = json.load(f)
    except ValueError:
        return False
    return isinstance(config, dict) and config.get("speculators_model_type") == "peagle"


def engine_args_cases(fuzz_runs) -> list[dict]:
    """The refused mutations whose config.json still reads as a PEagle one
    (without that, vLLM does not take the directory for a PEagle draft and
    reports it itself, as tests/malformed.py's two such cases), a fixed sample
    per draft."""
    rng = random.Random(SEED)
    cases = []
    for arch in ("llama", "qwen3"):
        refused = [r for r in fuzz_runs if r["arch"] == arch and r["code"] == 1
                   and _says_peagle(r["draft"])]
        cases += rng.sample(refused, min(N_ENGINE_ARGS, len(refused)))
    return [{"model": r["draft"], "what": r["what"], "stdout": r["stdout"]} for r in cases]



def config_cases(tiny: dict[str, str], tmp: str) -> list[tuple[dict, tuple[str, ...]]]:
    """The sample of refused mutations, for the session's config-only process
    (``auto``), with what ``check`` printed for each."""
    cases = engine_args_cases(run_fuzz(tiny, tmp))
    return [(case, ("auto",)) for case in cases]


@pytest.mark.engine
def test_engine_args_raise_check_lines(engine_configs):
    """A sample of the refused mutations through ``EngineArgs`` (plugin ``auto``):
    a ``ValueError`` holding every line ``check`` printed."""
    from tests.engine_config import cases_of
    from tests.malformed import problem_lines

    results = cases_of(engine_configs, "fuzz")["auto"]
    assert len(results) == 2 * N_ENGINE_ARGS
    for result in results:
        case, error = result["case"], result.get("error")
        assert error is not None, f"EngineArgs accepted {case['what']}"
        assert "ValueError" in error["mro"], (case["what"], error)
        lines = problem_lines(case["model"], case["stdout"])
        assert lines and all(line in error["message"] for line in lines), (
            case["what"], lines, error["message"])
