"""Run in a fresh process by tests: ``EngineArgs(...).create_engine_config()``
for each case of a JSON list, in the ``VLLM_PEAGLE_MODE`` of the environment.

usage: python tests/engine_config.py CASES.json OUT.json
A case is {"model": ..., "speculative_config": ... (optional)}, or {"cli": [...]}:
the arguments of ``vllm serve`` (the server's own parser and
``AsyncEngineArgs.from_cli_args``, as the server builds its engine); the output
holds, per case, the resolved speculative config or the error's type and text,
and the plugin's log lines.
"""

from __future__ import annotations

import json
import logging
import sys


def resolve_in_modes(cases: list[dict], tmp_dir, modes=("auto", "force"),
                     env: dict[str, str] | None = None) -> dict[str, list]:
    """Run this script on ``cases`` once per plugin mode, each in a fresh process
    (the patches are process-wide); mode -> its per-case results."""
    import os
    import subprocess

    here = os.path.dirname(os.path.abspath(__file__))
    tag = "-".join(f"{k}={v}" for k, v in sorted((env or {}).items()))
    cases_path = os.path.join(str(tmp_dir), f"cases{tag}.json")
    with open(cases_path, "w") as f:
        json.dump(cases, f)
    out = {}
    for mode in modes:
        out_path = os.path.join(str(tmp_dir), f"{mode}{tag}.json")
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), cases_path, out_path],
                              env=dict(os.environ, VLLM_PEAGLE_MODE=mode, **(env or {})),
                              capture_output=True, text=True, timeout=600,
                              cwd=os.path.dirname(here))
        assert proc.returncode == 0, proc.stderr[-5000:]
        with open(out_path) as f:
            out[mode] = json.load(f)
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


def main() -> int:
    cases_path, out_path = sys.argv[1:]
    with open(cases_path) as f:
        cases = json.load(f)

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
    from vllm.engine.arg_utils import EngineArgs

    results = []
    for case in cases:
        del records[:]
        entry = {"case": case}
        try:
            if "cli" in case:
                engine_args = serve_engine_args(case["cli"])
            else:
                engine_args = EngineArgs(model=case["model"], gpu_memory_utilization=0.3,
                                         speculative_config=case.get("speculative_config"))
            config = engine_args.create_engine_config()
        except Exception as e:  # the type and the text are what the tests check
            entry["error"] = {"type": type(e).__name__,
                              "mro": [c.__name__ for c in type(e).__mro__], "message": str(e)}
        else:
            spec = config.speculative_config
            hf = spec.draft_model_config.hf_config
            entry["speculative_config"] = {
                "method": spec.method, "parallel_drafting": spec.parallel_drafting,
                "num_speculative_tokens": spec.num_speculative_tokens,
                "draft_model": spec.model, "target_model": config.model_config.model,
                "pard_token": getattr(hf, "pard_token", None),
                "fc_norm": getattr(hf, "fc_norm", None),
                "norm_output": getattr(hf, "norm_output", None)}
            # The whole draft config, for comparing this package's with vLLM's.
            entry["draft_hf_config"] = json.loads(json.dumps(hf.to_dict(), default=repr))
        entry["log"] = list(records)
        results.append(entry)
    with open(out_path, "w") as f:
        json.dump(results, f, indent=1, default=repr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
