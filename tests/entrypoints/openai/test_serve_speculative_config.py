"""``vllm serve`` with ``--speculative-config`` and a PEagle draft, both ways,
through the server's own argument parser and ``AsyncEngineArgs.from_cli_args``
(config level; the served engine itself is ``test_serve_peagle.py``'s, which
starts with the first of these):

- the checkpoint as the model, K from the flag (``{"num_speculative_tokens": 5}``
  over the checkpoint's 3): vLLM before 0.29 drops the flag without this
  package's merge patch;
- the verifier as the model and the draft in the flag
  (``{"model": <peagle>, "method": "peagle", "num_speculative_tokens": 4}``).

Each: the engine config drafts the K asked for with parallel drafting, and
pre-flight logged its INFO line.
"""

from __future__ import annotations

import json

import pytest

from tests.engine_config import cases_of

pytestmark = pytest.mark.engine

# id: (model kind, --speculative-config with DRAFT for the peagle directory, K, log line)
SERVERS = {
    "checkpoint-k5": ("peagle", {"num_speculative_tokens": 5}, 5,
                      "applied user speculative_config fields num_speculative_tokens=5"),
    "explicit-k4": ("target", {"model": "DRAFT", "method": "peagle",
                               "num_speculative_tokens": 4}, 4,
                    "parallel_drafting turned on for the PEagle draft"),
}


def serve_flag(flag: dict, draft: str) -> str:
    return json.dumps({key: draft if value == "DRAFT" else value for key, value in flag.items()})


def config_cases(tiny: dict, tmp: str) -> list[tuple[dict, tuple[str, ...]]]:
    return [({"cli": ["--model", tiny[kind], "--gpu-memory-utilization", "0.3",
                      "--speculative-config", serve_flag(flag, tiny["peagle"])]},
             ("auto", "force")) for kind, flag, _, _ in SERVERS.values()]


@pytest.fixture(scope="module")
def served(engine_configs):
    return cases_of(engine_configs, "serve")


@pytest.mark.parametrize("mode", ["auto", "force"])
@pytest.mark.parametrize("index,name", list(enumerate(SERVERS)))
def test_serve_flag_drafts_k_tokens(served, mode, index, name, tiny_models):
    kind, _, k, line = SERVERS[name]
    result = served[mode][index]
    assert "error" not in result, result["error"]
    spec = result["speculative_config"]
    assert (spec["method"], spec["parallel_drafting"], spec["num_speculative_tokens"]) == (
        "eagle3", True, k)
    assert spec["draft_model"] == tiny_models["peagle"]
    assert any(line in entry for entry in result["log"]), result["log"]
