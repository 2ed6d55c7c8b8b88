"""``vllm-peagle bench``: the arithmetic on hand-made rows, and a real run on the
CPU with a tiny shape (three engines: none, Eagle3, PEagle)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import IN_PROCESS_ENGINE
from vllm_peagle.tools.bench import (
    acceptance_len,
    draft_param_bytes,
    floor_ms,
    startup_summary,
    summarize,
    target_param_bytes,
)
from vllm_peagle.tools.checkpoint import ModelShape


def test_floor_arithmetic():
    # h=2, one head of dim 2, one kv head, intermediate 4, vocab 10, one layer.
    shape = ModelShape(vocab_size=10, hidden_size=2, num_hidden_layers=1, num_attention_heads=1,
                       num_key_value_heads=1, intermediate_size=4, max_position_embeddings=64)
    # Target layer: q,k,v 2x2 each (12) + o 2x2 (4) + gate/up/down 2x4 (24) = 40;
    # lm_head 10x2 = 20; bf16: 2 * 60 bytes.
    assert target_param_bytes(shape) == 120
    # Draft layer 0 reads [embeds, hidden] (4 wide): q,k,v 4x2 (24) + o 4 + mlp 24 = 52;
    # fc 6x2 = 12; lm_head of a 5-token draft vocabulary 5x2 = 10: 2 * 74 bytes.
    assert draft_param_bytes(shape, 1, 5) == 148
    # A second draft layer adds a plain (2-wide) layer: 40 more parameters.
    assert draft_param_bytes(shape, 2, 5) == 148 + 80
    # KV: 2 (k, v) x 1 head x dim 2 x 2 bytes = 8 bytes per token and layer.
    # Target step at bs 1, 10 tokens of context: 120 + 80 = 200 bytes in 1 ms.
    row = {"method": "peagle", "k": 3, "batch_size": 1, "draft_layers": 1, "draft_vocab": 5}
    f = floor_ms(shape, row, none_ms=1.0, context=10)
    assert f["bandwidth_gb_s"] == pytest.approx(200 / 1e-3 / 1e9)
    # Draft: 148 + 80 = 228 bytes at 200 bytes/ms.
    assert f["floor_ms"] == pytest.approx(1.14)
    # Eagle3 reads them K times.
    assert floor_ms(shape, dict(row, method="eagle3"), 1.0, 10)["floor_ms"] == pytest.approx(3.42)


def test_projection_arithmetic():
    rows = [
        {"method": "none", "k": 0, "batch_size": 1, "ms_per_step": 10.0},
        {"method": "peagle", "k": 3, "batch_size": 1, "ms_per_step": 12.0},
        {"method": "peagle", "k": 7, "batch_size": 1, "ms_per_step": 12.6},
        {"method": "eagle3", "k": 1, "batch_size": 1, "ms_per_step": 11.0},
        {"method": "eagle3", "k": 3, "batch_size": 1, "ms_per_step": 14.0},
        # Far from the best: 1.9 * 10 / 20 = 0.95.
        {"method": "eagle3", "k": 2, "batch_size": 1, "ms_per_step": 20.0},
    ]
    assert acceptance_len((0.5, 0.25, 0.125), 2) == pytest.approx(1.75)
    assert acceptance_len((0.5,), 3) == pytest.approx(1.5)  # rates beyond the list: 0
    summary = summarize(rows, {"set": {"peagle": (0.5, 0.25, 0.125), "eagle3": (0.6, 0.3, 0.1)}})
    peagle3 = rows[1]
    assert peagle3["ratio_to_none"] == pytest.approx(1.2)
    # AL(3) = 1.875; speedup = 1.875 * 10 / 12
    assert peagle3["speedup_projected"]["set"] == pytest.approx(1.5625)
    assert rows[4]["speedup_projected"]["set"] == pytest.approx(2.0 * 10 / 14)
    s = summary["bs1"]
    assert s["peagle_l1_t7_over_t3"] == pytest.approx(1.05)
    assert s["eagle3_l1_ms_per_extra_token"] == pytest.approx(1.5)
    assert s["peagle_l1_overhead_vs_none"] == pytest.approx(0.23)
    # K=7 is past the set's three positions: no projection, so no best K there.
    assert "set" not in rows[2]["speedup_projected"]
    assert s["peagle_l1_best_k_set"] == 3
    # Eagle3 K=1: 1.6 * 10 / 11 = 1.455 beats K=3: 2.0 * 10 / 14 = 1.429.
    assert s["eagle3_l1_best_k_set"] == 1
    # K=3 (1.429) is within 5% of K=1 (1.455): one run does not tell them apart;
    # K=2 (0.95) is not.
    assert s["eagle3_l1_near_best_ks_set"] == [1, 3]
    # PEagle's K=7 has no projection, so it is not near the best either.
    assert s["peagle_l1_near_best_ks_set"] == [3]


def test_startup_summary_counts_each_engine_once():
    # Two batch sizes per engine (two rows, one start-up); the first PEagle
    # engine compiled (10 s), the later K of the same draft did not (4 s, 6 s).
    def rows(method, k, layers, startup):
        return [{"method": method, "k": k, "draft_layers": layers, "batch_size": bs,
                 "startup_s": startup} for bs in (1, 8)]
    s = startup_summary(rows("none", 0, 0, 7.0) + rows("peagle", 1, 1, 10.0)
                        + rows("eagle3", 1, 1, 9.0) + rows("peagle", 8, 1, 4.0)
                        + rows("peagle", 4, 1, 6.0) + rows("peagle", 1, 4, 12.0))
    assert s["none"] == {"first_s": 7.0, "later_median_s": None, "engines": 1}
    assert s["peagle_l1"] == {"first_s": 10.0, "later_median_s": 5.0, "engines": 3}
    assert s["eagle3_l1"]["engines"] == 1
    assert s["peagle_l4"] == {"first_s": 12.0, "later_median_s": None, "engines": 1}


def test_replot_merges_runs_each_with_its_own_baseline(tmp_path, capsys):
    from vllm_peagle.tools.bench import SHAPES, replot

    def run(name, method, none_ms, ms, shape="tiny"):
        rows = [{"method": "none", "k": 0, "batch_size": 1, "ms_per_step": none_ms},
                {"method": method, "k": 2, "batch_size": 1, "ms_per_step": ms,
                 "draft_layers": 1, "draft_vocab": 256}]
        summarize(rows, {}, SHAPES[shape], 40)
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"meta": {"shape": shape, "draft_vocab": 256, "device": "cpu",
                                             "vllm_version": "0"}, "rows": rows}))
        return str(path)

    # Two jobs of a split sweep: PEagle with a 1.0 ms baseline, Eagle3 with 1.1 ms.
    a, b = run("a", "peagle", 1.0, 1.2), run("b", "eagle3", 1.1, 2.2)
    assert replot([a, b], str(tmp_path / "merged")) == 0
    table = capsys.readouterr().out
    assert "| peagle | 1 | 2 | 1 | 1.200 | 1.200 |" in table
    # Eagle3's ratio is to its own run's baseline (2.2 / 1.1), not the first run's.
    assert "| eagle3 | 1 | 2 | 1 | 2.200 | 2.000 |" in table
    # And each run's summary on its own rows.
    assert f"{b} bs1: none_ms=1.1, eagle3_l1_overhead_vs_none=1" in table
    assert (tmp_path / "merged" / "bench.png").stat().st_size > 1000
    # Runs of another shape, or no bench.json: one line naming the file, no plot.
    other = run("c", "peagle", 1.0, 1.2, shape="tiny-qwen3")
    assert replot([a, other], str(tmp_path / "bad")) == 2
    assert other in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert replot([str(tmp_path / "missing.json")], str(tmp_path / "bad")) == 2
    assert "missing.json: not a bench.json" in capsys.readouterr().err


def _gpu_session():
    """benchmarks/gpu_session.py, a script outside the package."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "benchmarks", "gpu_session.py")
    spec = importlib.util.spec_from_file_location("gpu_session", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _unset_engine_log(monkeypatch, g) -> None:
    """main() sets the engine log variable for its engines; unset here and again
    after the test.  (delenv of an absent name records nothing to undo, and the
    variable, pointing into this test's tmp_path, leaked into later tests.)"""
    monkeypatch.setenv(g.ENGINE_LOG_ENV, "")
    monkeypatch.delenv(g.ENGINE_LOG_ENV)


@pytest.mark.parametrize("target_starts", [True, False])
def test_session_gates_engine_steps_on_the_target_alone(tmp_path, monkeypatch, target_starts):
    """Where the tiny target alone cannot start an engine (a package the kit
    lacks), the session skips its engine steps and says why once; where it can,
    they run.  Engines are stood in for: the gate is what is tested."""
    g = _gpu_session()
    started = []

    def fake_run_isolated(scenario, mode=None, env=None, timeout=900):
        started.append((scenario, mode))
        return {"ok": target_starts, "startup_s": 1.0,
                "error": None if target_starts else "No module named 'cutlass'"}

    ran = []
    monkeypatch.setattr(g, "run_isolated", fake_run_isolated)
    _unset_engine_log(monkeypatch, g)
    monkeypatch.setattr(g, "make_tiny", lambda out, seed=0: {"target": "tiny-target"})
    monkeypatch.setattr(g, "release_explicit",
                        lambda s, tiny, parts: ran.append("release_explicit"))
    monkeypatch.setattr(g, "pytest_tier", lambda s, files, name, env: ran.append(name))
    monkeypatch.setattr(sys, "argv", ["gpu_session.py", str(tmp_path),
                                      "--only=release_explicit,config"])
    assert g.main() == 0
    with open(tmp_path / "gpu_session.json") as f:
        steps = json.load(f)["steps"]
    # The gate is one engine of the target alone, vLLM without the plugin.
    assert [(sc["model"], mode) for sc, mode in started] == [("tiny-target", "off")]
    assert steps["engine_gate"]["ok"] is target_starts
    if target_starts:
        assert ran == ["release_explicit", "config_tier"]
    else:
        assert "cutlass" in steps["engine_gate"]["error"]
        assert ran == ["config_tier"]  # config level needs no engine


@pytest.mark.parametrize("only,parts", [
    ("release_explicit", ("trained", "zoo")), ("release_explicit_trained", ("trained",)),
    ("release_explicit_zoo", ("zoo",)), ("release_explicit_zoo,release_explicit_trained",
                                         ("trained", "zoo"))])
def test_session_runs_the_explicit_parts_asked_for(tmp_path, monkeypatch, only, parts):
    """``release_explicit`` is the trained pairs and the zoo; each part alone is
    a step of its own (a half-hour machine holds two releases' trained part)."""
    g = _gpu_session()
    ran = []
    monkeypatch.setattr(g, "run_isolated", lambda *a, **k: {"ok": True, "startup_s": 1.0})
    _unset_engine_log(monkeypatch, g)
    monkeypatch.setattr(g, "make_tiny", lambda out, seed=0: {"target": "tiny-target"})
    monkeypatch.setattr(g, "release_explicit", lambda s, tiny, parts: ran.append(parts))
    monkeypatch.setattr(sys, "argv", ["gpu_session.py", str(tmp_path), f"--only={only}"])
    assert g.main() == 0
    assert ran == [parts]


@pytest.mark.parametrize("gpus", [0, 1, 2, 3, 4, 8])
def test_session_splits_the_sweep_over_the_gpus(gpus):
    g = _gpu_session()
    jobs = g.bench_jobs(gpus)
    # Every draft depth and method is in exactly one job, and no job waits for a GPU.
    covered = [(n, m) for job in jobs for n in job["layers"] for m in job["methods"]]
    assert sorted(covered) == sorted((n, m) for n in (1, 4) for m in ("peagle", "eagle3"))
    assert len(jobs) <= max(gpus, 1)
    # One job per GPU, up to one per depth and method: a four-GPU host runs all
    # four sweeps at once, a two-GPU host one per depth.
    assert len(jobs) == {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 8: 4}[gpus]


def test_session_pins_each_job_to_its_own_cpus():
    g = _gpu_session()
    assert g.parse_cpulist("0-3,8,10-11\n") == {0, 1, 2, 3, 8, 10, 11}
    # Two NUMA nodes of 32 CPUs, GPUs 0 and 2 on the first, 1 and 3 on the second
    # (splitting the CPUs in GPU order would cross nodes); the container has 16-47.
    local = [set(range(32)), set(range(32, 64))] * 2
    allowed = set(range(16, 48))
    slices = g.cpu_slices(4, allowed, local)
    for gpu, cpus in enumerate(slices):
        assert len(cpus) >= 2 and cpus <= allowed & local[gpu]
    assert sum(map(len, slices)) == len(set().union(*slices))  # disjoint
    # Without NUMA information: the allowed CPUs in order, disjoint.
    slices = g.cpu_slices(4, set(range(64)))
    assert sum(map(len, slices)) == 64 == len(set().union(*slices))
    # Too few CPUs to give each job two, or one job: no pinning.
    assert g.cpu_slices(4, {0, 1}) == [None] * 4
    assert g.cpu_slices(1, set(range(64))) == [None]


class _StaggeredEngine:
    """An LLM whose engine core, like vLLM's in its own process, starts on the
    first request before the others arrive: step 0 prefills request 0 alone,
    step 1 the rest beside request 0's decode.  The clock advances 100 s in a
    step with a prefill and 1 s in a decode step; the worker JIT-compiles a
    kernel in step 1 and, with ``compile_in_decode``, another in step 3."""

    def __init__(self, output_len: int, compile_in_decode: bool = False):
        self.llm_engine, self.output_len = self, output_len
        self.compile_in_decode, self.now, self.step_no = compile_in_decode, 0.0, 0
        self.requests: dict[str, int] = {}
        self.compiled: list[str] = []

    def add_request(self, request_id, prompt, params):
        self.requests[request_id] = -1  # tokens so far; -1: not yet scheduled

    def has_unfinished_requests(self):
        return any(n < self.output_len for n in self.requests.values())

    def step(self):
        from types import SimpleNamespace

        ids = list(self.requests)
        prefill = ids[:1] if self.step_no == 0 else [i for i in ids if self.requests[i] < 0]
        self.now += 100.0 if prefill else 1.0
        if self.step_no == 1:
            self.compiled.append("prefill_shape_kernel")
        if self.step_no == 3 and self.compile_in_decode:
            self.compiled.append("decode_shape_kernel")
        self.step_no += 1
        outputs = []
        for i in ids:
            n = self.requests[i]
            if n == self.output_len or (n < 0 and i not in prefill):
                continue
            self.requests[i] = n = max(n, 0) + 1
            outputs.append(SimpleNamespace(request_id=i, finished=n == self.output_len,
                                           outputs=[SimpleNamespace(token_ids=[0] * n)]))
        return outputs

    def collective_rpc(self, fn, args=()):
        from vllm_peagle.tools import worker_probe

        assert fn is worker_probe.jit_events
        return [list(self.compiled)]


@pytest.mark.parametrize("compile_in_decode", [False, True])
def test_timed_window_starts_once_every_request_decodes(monkeypatch, compile_in_decode):
    """The steps in which requests were still being prefilled are neither timed
    nor watched for JIT compilations; every step after them is."""
    from vllm_peagle.tools import bench

    llm = _StaggeredEngine(output_len=5, compile_in_decode=compile_in_decode)
    monkeypatch.setattr(bench.time, "perf_counter", lambda: llm.now)
    r = bench.time_decode_steps(llm, batch_size=3, prompt_len=4, output_len=5, vocab_size=100,
                                seed=0, watch_jit=True)
    # Steps 0 and 1 prefill; steps 2-5 decode (request 0 finishes in step 4, the
    # others in step 5), each 1 s.
    assert (r["prefill_steps"], r["steps"], r["tokens"]) == (2, 4, 15)
    assert r["ms_per_step"] == r["median_step_ms"] == r["max_step_ms"] == 1000.0
    assert r["jit"] == (["decode_shape_kernel"] if compile_in_decode else [])


def test_profile_breakdown_attributes_gpu_work_and_idle_time():
    """worker_probe.breakdown on a hand-made trace (microseconds): GPU work goes
    to the phases around its launch (a CUDA graph's kernels share the launch's
    correlation id), and each idle gap to the innermost phase the CPU was in."""
    from vllm_peagle.tools.worker_probe import NO_PHASE, breakdown

    def rng(name, ts, dur):
        return {"cat": "user_annotation", "name": name, "pid": 1, "tid": 1, "ts": ts, "dur": dur}

    def launch(name, ts, corr):
        return {"cat": "cuda_runtime", "name": name, "pid": 1, "tid": 1, "ts": ts, "dur": 2,
                "args": {"correlation": corr}}

    def kernel(ts, dur, corr):
        return {"cat": "kernel", "name": "k", "pid": 0, "tid": 7, "ts": ts, "dur": dur,
                "args": {"correlation": corr}}

    execute, forward = "step: execute_model (target)", "target: forward"
    sample, draft = "step: sample_tokens (sample, draft)", "draft: all"
    events = [rng(execute, 0, 100), rng(forward, 60, 40), rng(sample, 100, 100),
              rng(draft, 120, 70),
              launch("cudaLaunchKernel", 5, 10), kernel(10, 10, 10),       # in execute_model
              launch("cudaGraphLaunch", 70, 11), kernel(75, 75, 11), kernel(150, 10, 11),
              launch("cudaLaunchKernel", 130, 12), kernel(180, 20, 12),    # in draft: all
              launch("cudaLaunchKernel", 205, 13), kernel(230, 10, 13)]    # in no phase
    b = breakdown(events, steps=1)
    gpu = {name: p["gpu_ms_per_step"] * 1000 for name, p in b["phases"].items()}
    assert gpu == pytest.approx({execute: 10 + 85, forward: 85, sample: 20, draft: 20})
    assert b["gpu_busy_ms_per_step"] * 1000 == pytest.approx(10 + 85 + 20 + 10)
    # Gaps: 20-75 (execute_model's own code to 60, then the forward's launch),
    # 160-180 (the draft), 200-230 (after every phase).
    idle = {name: ms * 1000 for name, ms in b["gpu_idle_by_cpu_phase"].items()}
    assert idle == pytest.approx({execute: 40, forward: 15, draft: 20, NO_PHASE: 30})
    assert b["gpu_idle_ms_per_step"] * 1000 == pytest.approx(105)


@pytest.mark.engine
def test_bench_runs_on_cpu_with_a_tiny_shape(tmp_path):
    out = tmp_path / "bench"
    # Eager and the engine core in-process, as the other CPU engines (tests/conftest.py):
    # the bench's machinery is under test here, not its numbers.
    env = dict(os.environ, VLLM_PEAGLE_MODE="force", **IN_PROCESS_ENGINE)
    proc = subprocess.run(
        [sys.executable, "-m", "vllm_peagle.tools.cli", "bench", "--shape", "tiny", "--ks", "2",
         "--draft-layers", "2", "--draft-vocab", "256", "--enforce-eager",
         "--batch-sizes", "1", "--output-len", "8", "--repeats", "2",
         "--gpu-memory-utilization", "0.3", "--profile", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-5000:]
    result = json.loads((out / "bench.json").read_text())
    rows = {(r["method"], r["k"]): r for r in result["rows"]}
    assert set(rows) == {("none", 0), ("eagle3", 2), ("peagle", 2)}
    assert rows[("peagle", 2)]["resolved_method"] == "eagle3"
    assert rows[("peagle", 2)]["parallel_drafting"] is True
    assert rows[("eagle3", 2)]["parallel_drafting"] is False
    assert rows[("none", 0)]["resolved_method"] is None
    assert rows[("peagle", 2)]["num_speculative_tokens"] == rows[("eagle3", 2)][
        "num_speculative_tokens"] == 2
    for r in rows.values():
        runs = r["ms_per_step_runs"]
        assert len(runs) == 2 and min(runs) <= r["ms_per_step"] <= max(runs)
        # Step 0 (the prefill) is not a decode step; then at least one token a step.
        assert all(0 < steps <= 8 - 1 for steps in r["steps_per_run"])
        # Per run: the median step and the longest one bracket the mean step.
        for mean, median, longest in zip(runs, r["median_step_ms_runs"], r["max_step_ms_runs"]):
            assert 0 < median <= longest and mean <= longest
    # Without speculation each decode step yields exactly one token.
    assert rows[("none", 0)]["steps_per_run"] == [8 - 1, 8 - 1]
    # One request: its prefill is one step, before the timed window.
    assert all(r["prefill_steps_per_run"] == [1, 1] for r in rows.values())
    none_ms = rows[("none", 0)]["ms_per_step"]
    assert rows[("peagle", 2)]["ratio_to_none"] == pytest.approx(
        rows[("peagle", 2)]["ms_per_step"] / none_ms)
    assert (out / "bench.png").stat().st_size > 1000
    assert "| peagle | 2 | 2 | 1 |" in proc.stdout
    # The floor: a bandwidth from the no-spec step, the draft's reads over it.
    peagle = rows[("peagle", 2)]
    assert peagle["draft_layers"] == 2 and peagle["draft_vocab"] == 256
    assert peagle["floor_ms"] > 0 and peagle["overhead_over_floor"] == pytest.approx(
        (peagle["ms_per_step"] - none_ms) / peagle["floor_ms"])
    assert rows[("eagle3", 2)]["floor_ms"] == pytest.approx(2 * peagle["floor_ms"])
    assert result["meta"]["vllm_version"]
    # JIT compilations are watched in the worker (this CPU build's Triton has no
    # CPU backend: nothing compiles), and the profiled generation is phased as
    # the methods differ: PEagle one draft forward a step, Eagle3 K of them.
    for r in rows.values():
        assert r["jit_in_timed_steps"] == []
        assert r["profile"]["steps"] == 8 - 1, r["profile"]
        assert 0 < r["profile"]["phases"]["target: forward"]["cpu_ms_per_step"] <= \
            r["profile"]["wall_ms_per_step"]
    # The drafts compute logits over their own 256-row vocabulary (vLLM shares
    # the target's lm_head with a draft of dummy weights; the bench unshares it).
    assert rows[("peagle", 2)]["draft_lm_head_rows"] == rows[("eagle3", 2)][
        "draft_lm_head_rows"] == 256
    forwards = {m: rows[(m, 2)]["profile"]["phases"]["draft: forward"]["calls_per_step"]
                for m in ("peagle", "eagle3")}
    assert forwards == {"peagle": 1, "eagle3": 2}
    assert "draft: forward" not in rows[("none", 0)]["profile"]["phases"]
    assert "| draft: forward: GPU / CPU |" in proc.stdout
    assert (out / "trace-peagle-L2-K2-bs1.json.gz").stat().st_size > 1000
