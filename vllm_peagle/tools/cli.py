"""The ``vllm-peagle`` command: make-tiny, demo, check, bench."""

from __future__ import annotations

import argparse
import sys


def _cmd_make_tiny(args) -> int:
    from vllm_peagle.tools.tiny import make_tiny

    paths = make_tiny(args.dir, seed=args.seed)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def _cmd_demo(args) -> int:
    from vllm_peagle.tools.demo import run_demo

    return run_demo(args.cache_dir, max_tokens=args.max_tokens)


def _cmd_check(args) -> int:
    from vllm_peagle.tools.check import run_check

    return run_check(args.dir, args.verifier)


def _cmd_bench(args) -> int:
    from vllm_peagle.tools.bench import run_bench

    return run_bench(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vllm-peagle",
        description="PEagle (Parallel EAGLE) speculative decoding for vLLM: tools.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("make-tiny", help="write tiny offline target/peagle/eagle3 models")
    p.add_argument("dir")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=_cmd_make_tiny)

    p = sub.add_parser("demo", help="run PEagle on the tiny models on the CPU")
    p.add_argument("--cache-dir", default=None,
                   help="where the tiny models live (default ~/.cache/vllm-peagle/tiny)")
    p.add_argument("--max-tokens", type=int, default=32)
    p.set_defaults(fn=_cmd_demo)

    p = sub.add_parser("check", help="validate a PEagle checkpoint before vLLM loads it")
    p.add_argument("dir")
    p.add_argument("--verifier", default=None,
                   help="verifier directory (default: speculators_config.verifier."
                        "name_or_path when it is a local directory)")
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
