"""The session's config-only vLLM runs: one fresh process per plugin mode
(the patches are process-wide) for every test that needs an engine config and
no engine.

Each test module that has such cases gives them with ``config_cases(tiny, tmp)``
(a list of (case, modes)); ``run_all`` runs them, with ``register()``'s own
state (``tests/plugin_state.py``) recorded first in each process, before
anything else loads the plugin.

A case is {"model": ..., "speculative_config": ..., "engine_args": {...}} (the
last two optional), or {"cli": [...]}:
the arguments of ``vllm serve`` (the server's own parser and
``AsyncEngineArgs.from_cli_args``, as the server builds its engine); "env"
sets environment variables for that case alone.  Its result holds the
resolved speculative config and draft config, or the error's type and text,
and the plugin's log lines.

usage (as the fixture runs it): python tests/engine_config.py IN.json OUT.json
"""

from __future__ import annotations

import json
import logging
import os
import sys

MODES = ("auto", "force", "off")
# test module -> its cases' id prefix
PROVIDERS = {
    "tests.preflight.test_speculative_config": "speculative_config",
    "tests.preflight.test_release_checks": "release_checks",
    "tests.test_native_parity": "native_parity",
    "tests.entrypoints.openai.test_serve_speculative_config": "serve",
    "tests.test_check_fuzz": "fuzz",
    "tests.test_zoo": "zoo",
    "tests.v1.worker.test_peagle_v2_config": "v2",
}


def gather(tiny: dict[str, str], tmp_dir: str) -> list[dict]:
    """Every provider's cases, each with its id and modes."""
    import importlib

    cases = []
    for module, prefix in PROVIDERS.items():
        folder = os.path.join(tmp_dir, prefix)
        os.makedirs(folder, exist_ok=True)
        provided = importlib.import_module(module).config_cases(tiny, folder)
        for i, (case, modes) in enumerate(provided):
            cases.append(dict(case, id=f"{prefix}:{i}", modes=list(modes)))
    return cases


def run_all(cases: list[dict], state: dict, tmp_dir: str) -> dict[str, dict]:
    """mode -> {"state": register()'s state, "cases": {id: result}}, one
    process per mode, the three side by side (each mostly imports vLLM on one
    core).  ``state`` is {"peagle_dir": ..., "bad_dirs": {mode: [...]}}."""
    started = {mode: start_mode([c for c in cases if mode in c["modes"]], mode,
                                state["peagle_dir"], state["bad_dirs"].get(mode, []), tmp_dir)
               for mode in MODES}
    return {mode: finish_mode(run) for mode, run in started.items()}


def start_mode(cases: list[dict], mode: str, peagle_dir: str, bad_dirs: list[str],
               tmp_dir: str, pythonpath: str | None = None, tag: str = "") -> tuple:
    """The cases (each with its "id") in one fresh process with the plugin in
    ``mode``, started (``finish_mode`` waits for it and reads its results);
    ``pythonpath`` goes first on the path (a patched vLLM tree)."""
    import subprocess

    here = os.path.dirname(os.path.abspath(__file__))
    in_path = os.path.join(tmp_dir, f"in-{mode}{tag}.json")
    out_path = os.path.join(tmp_dir, f"out-{mode}{tag}.json")
    with open(in_path, "w") as f:
        json.dump({"peagle_dir": peagle_dir, "bad_dirs": bad_dirs, "cases": cases}, f)
    env = dict(os.environ, VLLM_PEAGLE_MODE=mode)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, env.get("PYTHONPATH")) if p)
    # Its output to a file, not a pipe: a pipe nobody reads yet fills and stalls it.
    log = open(os.path.join(tmp_dir, f"log-{mode}{tag}.txt"), "w+")
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), in_path, out_path],
                            env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
                            cwd=os.path.dirname(here))
    return proc, log, out_path


def finish_mode(started: tuple) -> dict:
    import subprocess

    proc, log, out_path = started
    try:
        proc.wait(timeout=900)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    with log:
        log.seek(0)
        output = log.read()
    assert proc.returncode == 0, output[-5000:]
    with open(out_path) as f:
        return json.load(f)


def cases_of(results: dict[str, dict], prefix: str) -> dict[str, list[dict]]:
    """One provider's results: mode -> its cases' results by their index in
    its list (None for a case not run in that mode)."""
    out = {}
    for mode, run in results.items():
        mine = {int(i.split(":")[1]): r for i, r in run["cases"].items()
                if i.split(":")[0] == prefix}
        if mine:
            out[mode] = [mine.get(i) for i in range(max(mine) + 1)]
    return out


def serve_engine_args(argv: list[str]):
    """The engine arguments ``vllm serve`` builds from ``argv``."""
    from vllm.engine.arg_utils import AsyncEngineArgs

    try:  # the parser moved to the launchers package (0.30-ish)
        from vllm.entrypoints.launchers.cli_args import make_arg_parser
    except ImportError:
        from vllm.entrypoints.openai.cli_args import make_arg_parser
    try:
        from vllm.utils.argparse_utils import FlexibleArgumentParser
    except ImportError:
        from vllm.utils import FlexibleArgumentParser
    args = make_arg_parser(FlexibleArgumentParser()).parse_args(argv)
    return AsyncEngineArgs.from_cli_args(args)


def resolve(case: dict) -> dict:
    """One case's engine config (or error)."""
    from vllm.engine.arg_utils import EngineArgs

    entry: dict = {"case": case}
    saved = {k: os.environ.get(k) for k in case.get("env", {})}
    os.environ.update(case.get("env", {}))
    try:
        if "cli" in case:
            engine_args = serve_engine_args(case["cli"])
        else:
            engine_args = EngineArgs(model=case["model"], gpu_memory_utilization=0.3,
                                     speculative_config=case.get("speculative_config"),
                                     **case.get("engine_args", {}))
        config = engine_args.create_engine_config()
    except Exception as e:  # the type and the text are what the tests check
        entry["error"] = {"type": type(e).__name__,
                          "mro": [c.__name__ for c in type(e).__mro__], "message": str(e)}
        return entry
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    from vllm_peagle.tools.runner import speculative_summary

    hf = config.speculative_config.draft_model_config.hf_config
    entry["speculative_config"] = speculative_summary(config)
    # The whole draft config, for comparing this package's with vLLM's.
    entry["draft_hf_config"] = json.loads(json.dumps(hf.to_dict(), default=repr))
    return entry


def main() -> int:
    in_path, out_path = sys.argv[1:]
    with open(in_path) as f:
        data = json.load(f)

    records: list[str] = []
    # vLLM's logging set-up (dictConfig, inside create_engine_config) drops the
    # handlers of existing child loggers, so keep the records at the logger itself.
    plugin_logger = logging.getLogger("vllm.plugins.peagle")
    handle = plugin_logger.handle

    def keep(record):
        if record.levelno >= plugin_logger.getEffectiveLevel():
            records.append(f"{record.levelname} {record.getMessage()}")
        return handle(record)

    plugin_logger.handle = keep
    if os.environ.get("VLLM_PEAGLE_TEST_ASSUME_TRITON") == "1":
        # A CUDA build of vLLM read on a CPU (VLLM_TARGET_DEVICE=cpu; 0.34 has no
        # CPU build): its CPU platform refuses an x86 host without triton-cpu when
        # it checks an engine config.  Config level only: no kernel runs here.
        import vllm.triton_utils

        vllm.triton_utils.HAS_TRITON = True
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from tests.plugin_state import collect

    # register()'s state first: nothing has loaded the plugin yet.
    out = {"state": collect(data["peagle_dir"], data["bad_dirs"]), "cases": {}}
    for case in data["cases"]:
        del records[:]
        entry = resolve(case)
        entry["log"] = list(records)
        out["cases"][case["id"]] = entry
    text = json.dumps(out, indent=1, default=repr)
    with open(out_path, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
