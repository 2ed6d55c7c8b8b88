"""The ``vllm-peagle`` command: check, bench, demo.  (The tiny models' makers are
developers' tools: ``python -m dev.tiny``, ``python -m dev.train_tiny``.)"""

from __future__ import annotations

import argparse
import sys


def _cmd_demo(args) -> int:
    from vllm_peagle.tools.demo import run_demo

    return run_demo(args.cache_dir, max_tokens=args.max_tokens)


def _cmd_check(args) -> int:
    from vllm_peagle.tools.check import run_check

    return run_check(args.dir, args.verifier, release=not args.no_release)


def _cmd_bench(args) -> int:
    from vllm_peagle.tools.bench import run_bench

    return run_bench(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vllm-peagle",
        description="PEagle (Parallel EAGLE) speculative decoding for vLLM: tools.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="run PEagle on the trained tiny pair on the CPU")
    p.add_argument("--cache-dir", default=None,
                   help="where the trained tiny models are copied (default ~/.cache/vllm-peagle/trained)")
    p.add_argument("--max-tokens", type=int, default=64)
    p.set_defaults(fn=_cmd_demo)

    p = sub.add_parser("check", help="validate a PEagle checkpoint before vLLM loads it")
    p.add_argument("dir")
    p.add_argument("--verifier", default=None,
                   help="verifier directory (default: speculators_config.verifier."
                        "name_or_path when it is a local directory)")
    p.add_argument("--no-release", action="store_true",
                   help="skip the checks against the installed vLLM release")
    p.set_defaults(fn=_cmd_check)

    from vllm_peagle.tools.bench import add_bench_arguments

    p = sub.add_parser("bench", help="time decode steps: no speculation, Eagle3, PEagle")
    add_bench_arguments(p)
    p.set_defaults(fn=_cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
