"""``vllm serve`` with ``--speculative-config`` and a PEagle draft, both ways:

- the checkpoint as the model, K from the flag (``{"num_speculative_tokens": 5}``
  over the checkpoint's 3): vLLM before 0.29 drops the flag without this
  package's merge patch;
- the verifier as the model and the draft in the flag
  (``{"model": <peagle>, "method": "peagle", "num_speculative_tokens": 4}``).

Each server: greedy completions, the draft tokens per draft in ``/metrics``
equal the K asked for, and the server log has pre-flight's INFO line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from tests.entrypoints.openai.test_serve_peagle import (
    _complete,
    _free_port,
    _metric,
    _served_model,
    _wait_healthy,
    server_command,
)

pytestmark = pytest.mark.engine

# id: (model kind, --speculative-config with DRAFT for the peagle directory, K, log line)
SERVERS = {
    "checkpoint-k5": ("peagle", {"num_speculative_tokens": 5}, 5,
                      "applied user speculative_config fields num_speculative_tokens=5"),
    "explicit-k4": ("target", {"model": "DRAFT", "method": "peagle",
                               "num_speculative_tokens": 4}, 4,
                    "parallel_drafting turned on for the PEagle draft"),
}


@pytest.fixture(scope="module", params=list(SERVERS))
def server(request, tiny_models, tmp_path_factory):
    kind, flag, k, line = SERVERS[request.param]
    flag = {key: tiny_models["peagle"] if value == "DRAFT" else value
            for key, value in flag.items()}
    port = _free_port()
    log_path = tmp_path_factory.mktemp("serve") / "server.log"
    env = dict(os.environ)
    env.setdefault("VLLM_PEAGLE_MODE", "force")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            server_command(tiny_models[kind], port, ("--speculative-config", json.dumps(flag))),
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            _wait_healthy(proc, f"http://127.0.0.1:{port}", log_path, timeout=420)
            yield {"base": f"http://127.0.0.1:{port}", "k": k, "line": line, "log": log_path}
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=30)


def test_serve_drafts_k_tokens(server):
    import requests

    base = server["base"]
    model = _served_model(base)
    for prompt in ("Return the value", "The file is opened and", "A list of"):
        assert _complete(base, model, prompt)
    metrics = requests.get(f"{base}/metrics", timeout=10).text
    drafts = _metric(metrics, "vllm:spec_decode_num_drafts_total")
    draft_tokens = _metric(metrics, "vllm:spec_decode_num_draft_tokens_total")
    assert drafts > 0
    assert draft_tokens / drafts == server["k"], (drafts, draft_tokens)
    assert server["line"] in server["log"].read_text()
