"""``register()`` can never break vLLM: a probe that raises marks its patch
``failed`` (one WARNING naming the patch and the exception, the INFO line says
so), the other patches install, and pre-flight takes the failed probe's answer
as unknown, never as a reason to refuse.  Each probe of
``tests/broken_probes/sitecustomize.py`` is made to raise in a fresh process
(the patches are process-wide); then all of them at once under a real engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.broken_probes.sitecustomize import PROBES

HERE = os.path.dirname(os.path.abspath(__file__))
BROKEN_DIR = os.path.join(HERE, "broken_probes")
ALL_PROBES = [f"{m}:{p}" for m, probes in PROBES.items() for p in probes]

# One process per probe would cost a vLLM import each; this script breaks one
# probe at a time itself, in one process, for register() (reset in between)
# and for pre-flight's release checks.
_SCRIPT = r"""
import json, logging, sys
sys.path.insert(0, sys.argv[2])
import sitecustomize, vllm_peagle
from vllm_peagle.preflight.checks import release_problems

records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append((record.levelname, record.getMessage()))
plugin_logger = logging.getLogger("vllm.plugins.peagle")
plugin_logger.addHandler(Keep())
plugin_logger.setLevel(logging.INFO)
config = json.load(open(sys.argv[1]))
verifier = {"architectures": ["LlamaForCausalLM"]}
out = {"clean": {"register": vllm_peagle.register(),
                 "release": [str(p) for p in release_problems(config, verifier)]}}
for name in sys.argv[3:]:
    module, probe = name.split(":")
    original = getattr(sys.modules[module], probe)
    calls = []
    def spy(*args, _original=original, **kwargs):
        calls.append(1)
        return _original(*args, **kwargs)
    setattr(sys.modules[module], probe, spy)
    vllm_peagle._registered = None          # register afresh, the probe intact:
    vllm_peagle.register()                   # does register() ask it?
    asked = bool(calls)
    sitecustomize.break_probes(name)
    vllm_peagle._registered = None
    del records[:]
    try:
        result, error = vllm_peagle.register(), None
    except Exception as e:
        result, error = None, repr(e)
    try:
        release, release_error = [str(p) for p in release_problems(config, verifier)], None
    except Exception as e:
        release, release_error = None, repr(e)
    out[name] = {"asked": asked, "register": result, "error": error, "log": list(records),
                 "release": release, "release_error": release_error}
    setattr(sys.modules[module], probe, original)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def broken_runs(tiny_models):
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, os.path.join(tiny_models["peagle"], "config.json"),
         BROKEN_DIR, *ALL_PROBES], capture_output=True, text=True, timeout=600,
        env=dict(os.environ, VLLM_PEAGLE_MODE="auto"), cwd=os.path.dirname(HERE))
    assert proc.returncode == 0, proc.stderr[-5000:]
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.engine
@pytest.mark.parametrize("probe", ALL_PROBES)
def test_a_raising_probe_fails_only_its_patch(broken_runs, probe):
    clean, run = broken_runs["clean"], broken_runs[probe]
    assert run["error"] is None, run["error"]
    assert run["release_error"] is None, run["release_error"]
    # Pre-flight: an unknown answer refuses nothing the intact probes let through.
    assert run["release"] == clean["release"]
    failed = {name for name, state in run["register"].items() if state == "failed"}
    if not run["asked"]:
        assert not failed
        return
    # The patch that asked it: failed, one WARNING naming it and the exception;
    # every other patch as without the fault.
    assert len(failed) == 1, run["register"]
    (patch,) = failed
    assert {k: v for k, v in run["register"].items() if k != patch} == {
        k: v for k, v in clean["register"].items() if k != patch}
    warnings = [m for level, m in run["log"] if level == "WARNING"]
    assert len(warnings) == 1, run["log"]
    assert f"patch {patch} failed" in warnings[0] and "broken by the test" in warnings[0]
    info = [m for level, m in run["log"] if level == "INFO"]
    assert any(f"failed: {patch}" in m for m in info), run["log"]


@pytest.mark.engine
def test_some_probe_is_asked_here(broken_runs):
    """On every release some of register()'s probes run (else the test above
    checks nothing): the registry's, at least."""
    assert broken_runs["vllm_peagle.features:has_qwen3_eagle3"]["asked"]


@pytest.mark.engine
def test_engine_starts_with_every_probe_broken(engine_run, tiny_models):
    run = engine_run("peagle-broken-probes")
    assert run["plugin_log"], "no vllm-peagle registration line in the engine's log"
    assert all("failed: " in line for line in run["plugin_log"]), run["plugin_log"]
    assert all(len(ids) == run["scenario"]["max_tokens"] for ids in run["token_ids"])
    base = engine_run("target")
    assert run["token_ids"] == base["token_ids"]
