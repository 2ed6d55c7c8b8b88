"""The ``vllm-peagle`` command: make-tiny, train-tiny, demo, check, bench."""

from __future__ import annotations

import argparse
import sys


def _cmd_make_tiny(args) -> int:
    from vllm_peagle.tools.tiny import make_tiny

    paths = make_tiny(args.dir, seed=args.seed)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def _cmd_train_tiny(args) -> int:
    from vllm_peagle.tools.train_tiny import Recipe, train_all

    paths = train_all(args.dir, args.gsm8k, Recipe(seed=args.seed), threads=args.threads,
                      archs=tuple(args.archs))
    for name, path in sorted(paths.items()):
        print(f"{name}: {path}")
    return 0


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

    p = sub.add_parser("make-tiny", help="write tiny offline target/peagle/eagle3 models")
    p.add_argument("dir")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=_cmd_make_tiny)

    from vllm_peagle.tools.train_tiny import TRAINED_DIR

    p = sub.add_parser("train-tiny", help="re-make the trained tiny target and drafts "
                       "(minutes on a CPU; the package ships them)")
    p.add_argument("dir", nargs="?", default=TRAINED_DIR,
                   help=f"output directory (default: the package's own, {TRAINED_DIR})")
    p.add_argument("--gsm8k", default="../shared/data/gsm8k",
                   help="directory with GSM8K's train.jsonl")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--archs", nargs="+", choices=["llama", "qwen3"], default=["llama"],
                   help="which pairs to (re)train, the others are left as they are "
                        "(the package ships the llama and the qwen3 pair)")
    p.add_argument("--threads", type=int, default=2,
                   help="torch CPU threads; the weights are reproducible for a fixed count")
    p.set_defaults(fn=_cmd_train_tiny)

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
