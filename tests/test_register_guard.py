"""``register()`` can never break vLLM: a probe that raises answers None
(unknown), with one WARNING naming it; no patch fails for it, register() never
raises, and pre-flight takes the unknown answer as no reason to refuse.  Every
probe in the package's registry (``features.PROBES``, filled by ``@probe``) is
made to raise, one at a time, in a fresh process (the patches are
process-wide); then all of them at once under a real engine."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
BROKEN_DIR = os.path.join(HERE, "broken_probes")


def registered_probes() -> list[str]:
    """Every probe the runtime declares: each runtime module imported (the
    tools are no runtime), then the registry read."""
    import vllm_peagle
    from vllm_peagle import features

    for info in pkgutil.walk_packages(vllm_peagle.__path__, "vllm_peagle."):
        if info.name.startswith("vllm_peagle.tools"):
            continue
        try:
            importlib.import_module(info.name)
        except ImportError:
            pass  # code for another release's vLLM (the V2 speculator before 0.34)
    return sorted(features.PROBES)


ALL_PROBES = registered_probes()

# One process per probe would cost a vLLM import each; this script breaks one
# probe at a time itself, in one process, for register() (reset in between)
# and for pre-flight's release checks.
_SCRIPT = r"""
import importlib, json, logging, sys
sys.path.insert(0, sys.argv[2])
import sitecustomize, vllm_peagle
from vllm_peagle import features
from vllm_peagle.preflight.release import release_problems

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
    importlib.import_module(name.split(":")[0])
    original = features.PROBES[name]
    calls = []
    def spy(*args, _original=original, **kwargs):
        calls.append(1)
        return _original(*args, **kwargs)
    features.PROBES[name] = spy
    vllm_peagle._registered = None          # register afresh, the probe intact:
    intact = vllm_peagle.register()          # does register() ask it?
    asked = bool(calls)
    features.PROBES[name] = sitecustomize.raising(name)
    vllm_peagle._registered = None
    del records[:]
    try:
        result, error = vllm_peagle.register(), None
    except Exception as e:
        result, error = None, repr(e)
    log = list(records)
    try:
        release, release_error = [str(p) for p in release_problems(config, verifier)], None
    except Exception as e:
        release, release_error = None, repr(e)
    out[name] = {"asked": asked, "intact": intact, "register": result, "error": error, "log": log,
                 "release": release, "release_error": release_error}
    features.PROBES[name] = original
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


def test_the_registry_holds_the_probes():
    """The registry is filled by the modules' own declarations: the probes of
    the probe module and of the patch modules that ask vLLM themselves."""
    modules = {name.split(":")[0] for name in ALL_PROBES}
    assert "vllm_peagle.features" in modules
    assert "vllm_peagle.model_executor.models.fc_norm_fix" in modules
    assert "vllm_peagle.transformers_utils.configs.speculators.algos" in modules


@pytest.mark.engine
@pytest.mark.parametrize("probe", ALL_PROBES)
def test_a_raising_probe_is_an_unknown_answer(broken_runs, probe):
    clean, run = broken_runs["clean"], broken_runs[probe]
    assert run["error"] is None, run["error"]
    assert run["release_error"] is None, run["release_error"]
    # Pre-flight: an unknown answer refuses nothing the intact probes let through.
    assert run["release"] == clean["release"]
    # No patch fails for an unknown answer.
    assert "failed" not in run["register"].values(), run["register"]
    warnings = [m for level, m in run["log"] if level == "WARNING"]
    if not run["asked"]:
        # (compared with register() just before, the probe intact: an unknown
        # answer may have installed a patch that an earlier probe's run kept native)
        assert run["register"] == run["intact"] and not warnings, run["log"]
        return
    # The probe register() asked: one WARNING naming it and the exception.
    assert len(warnings) == 1, run["log"]
    assert f"probe {probe} failed" in warnings[0] and "broken by the test" in warnings[0]


@pytest.mark.engine
def test_some_probe_is_asked_here(broken_runs):
    """On every release some of register()'s probes run (else the test above
    checks nothing): the registry's, at least."""
    assert broken_runs["vllm_peagle.features:has_qwen3_eagle3"]["asked"]


@pytest.mark.engine
def test_engine_starts_with_every_probe_broken(engine_run, tiny_models):
    run = engine_run("peagle-broken-probes")
    registration = [line for line in run["plugin_log"] if "vllm-peagle (" in line]
    assert registration, "no vllm-peagle registration line in the engine's log"
    assert not any("failed: " in line for line in registration), registration
    assert any("broken by the test" in line for line in run["plugin_log"]), run["plugin_log"]
    assert all(len(ids) == run["scenario"]["max_tokens"] for ids in run["token_ids"])
    base = engine_run("target")
    assert run["token_ids"] == base["token_ids"]
