"""``vllm-peagle bench``: the arithmetic on hand-made rows, and a real run on the
CPU with a tiny shape (three engines: none, Eagle3, PEagle)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from vllm_peagle.tools.bench import acceptance_len, summarize


def test_projection_arithmetic():
    rows = [
        {"method": "none", "k": 0, "batch_size": 1, "ms_per_step": 10.0},
        {"method": "peagle", "k": 3, "batch_size": 1, "ms_per_step": 12.0},
        {"method": "peagle", "k": 7, "batch_size": 1, "ms_per_step": 12.6},
        {"method": "eagle3", "k": 1, "batch_size": 1, "ms_per_step": 11.0},
        {"method": "eagle3", "k": 3, "batch_size": 1, "ms_per_step": 14.0},
    ]
    assert acceptance_len((0.5, 0.25, 0.125), 2) == pytest.approx(1.75)
    assert acceptance_len((0.5,), 3) == pytest.approx(1.5)  # rates beyond the list: 0
    summary = summarize(rows, (0.5, 0.25, 0.125), (0.6, 0.3, 0.1))
    peagle3 = rows[1]
    assert peagle3["ratio_to_none"] == pytest.approx(1.2)
    # AL(3) = 1.875; speedup = 1.875 * 10 / 12
    assert peagle3["speedup_projected"] == pytest.approx(1.5625)
    assert rows[4]["speedup_projected"] == pytest.approx(2.0 * 10 / 14)
    s = summary["bs1"]
    assert s["peagle_t7_over_t3"] == pytest.approx(1.05)
    assert s["eagle3_ms_per_extra_token"] == pytest.approx(1.5)
    assert s["peagle_overhead_vs_none"] == pytest.approx(0.23)


@pytest.mark.engine
def test_bench_runs_on_cpu_with_a_tiny_shape(tmp_path):
    out = tmp_path / "bench"
    env = dict(os.environ, VLLM_PEAGLE_MODE="force")
    proc = subprocess.run(
        [sys.executable, "-m", "vllm_peagle.tools.cli", "bench", "--shape", "tiny", "--ks", "2",
         "--batch-sizes", "1", "--output-len", "8", "--repeats", "2",
         "--gpu-memory-utilization", "0.3", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-5000:]
    result = json.loads((out / "bench.json").read_text())
    rows = {(r["method"], r["k"]): r for r in result["rows"]}
    assert set(rows) == {("none", 0), ("eagle3", 2), ("peagle", 2)}
    assert rows[("peagle", 2)]["resolved_method"] == "eagle3"
    assert rows[("peagle", 2)]["parallel_drafting"] is True
    assert rows[("eagle3", 2)]["parallel_drafting"] is False
    assert rows[("none", 0)]["resolved_method"] is None
    for r in rows.values():
        runs = r["ms_per_step_runs"]
        assert len(runs) == 2 and min(runs) <= r["ms_per_step"] <= max(runs)
        # Step 0 (the prefill) is not a decode step; then at least one token a step.
        assert all(0 < steps <= 8 - 1 for steps in r["steps_per_run"])
    # Without speculation each decode step yields exactly one token.
    assert rows[("none", 0)]["steps_per_run"] == [8 - 1, 8 - 1]
    none_ms = rows[("none", 0)]["ms_per_step"]
    assert rows[("peagle", 2)]["ratio_to_none"] == pytest.approx(
        rows[("peagle", 2)]["ms_per_step"] / none_ms)
    assert (out / "bench.png").stat().st_size > 1000
    assert "| peagle | 2 | 1 |" in proc.stdout
    assert result["meta"]["vllm_version"]
