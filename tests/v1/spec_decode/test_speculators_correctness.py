"""Speculators checkpoints end to end: the speculative config comes from the
checkpoint alone, generation works, and GSM8K accuracy and acceptance hold.

Two tiers over one parametrization (``SPECULATOR_CONFIGS``):
- hub: upstream's published models and figures; needs CUDA and the Hugging Face
  hub (``slow_test``), skipped with the missing piece named otherwise;
- offline: the tiny models ``vllm-peagle make-tiny`` builds, on the CPU, in CI.
  Their weights are random, so instead of absolute figures the offline tier
  checks what must hold for any weights: speculative decoding changes nothing
  under greedy sampling (same generations, same accuracy).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from vllm_peagle.tools.spec_decode_stats import compute_spec_decode_stats


@dataclass
class SpeculatorTestConfig:
    model_path: str
    method: str
    display_name: str
    expected_gsm8k_accuracy: float | None
    accuracy_rtol: float
    expected_acceptance_len: float | None
    acceptance_len_rtol: float
    expected_per_pos_acceptance_rates: tuple[float, ...] | None
    per_pos_rtol: float
    quantization: str | None = None
    parallel_drafting: bool | None = None


HUB_CONFIGS = [
    SpeculatorTestConfig(
        model_path="nm-testing/dflash-qwen3-8b-speculators", method="dflash",
        display_name="dflash-qwen3-8b", expected_gsm8k_accuracy=0.885, accuracy_rtol=0.03,
        expected_acceptance_len=3.45, acceptance_len_rtol=0.15,
        expected_per_pos_acceptance_rates=(0.795, 0.611, 0.429, 0.282), per_pos_rtol=0.15,
        quantization="fp8_per_tensor"),
    SpeculatorTestConfig(
        model_path="nm-testing/qwen3-8b-peagle-speculators", method="eagle3",
        display_name="peagle-qwen3-8b", expected_gsm8k_accuracy=0.88, accuracy_rtol=0.05,
        expected_acceptance_len=2.27, acceptance_len_rtol=0.20,
        expected_per_pos_acceptance_rates=(0.66, 0.36, 0.18, 0.09), per_pos_rtol=0.20,
        parallel_drafting=True),
]

# model_path "tiny:<kind>" is a directory of the session's make-tiny build.
OFFLINE_CONFIGS = [
    SpeculatorTestConfig(
        model_path="tiny:peagle", method="eagle3", display_name="tiny-peagle",
        expected_gsm8k_accuracy=None, accuracy_rtol=0.0, expected_acceptance_len=None,
        acceptance_len_rtol=0.0, expected_per_pos_acceptance_rates=None, per_pos_rtol=0.0,
        parallel_drafting=True),
    SpeculatorTestConfig(
        model_path="tiny:eagle3", method="eagle3", display_name="tiny-eagle3",
        expected_gsm8k_accuracy=None, accuracy_rtol=0.0, expected_acceptance_len=None,
        acceptance_len_rtol=0.0, expected_per_pos_acceptance_rates=None, per_pos_rtol=0.0,
        parallel_drafting=False),
]

SPECULATOR_CONFIGS = [
    *[pytest.param(c, id=c.display_name, marks=pytest.mark.slow_test) for c in HUB_CONFIGS],
    *[pytest.param(c, id=c.display_name, marks=pytest.mark.engine) for c in OFFLINE_CONFIGS],
]


def hub_tier_missing() -> str | None:
    """What the hub tier lacks here, or None.

    Only a missing piece that can be named is a skip: no CUDA, the hub switched
    off, its host not resolving or refusing the connection.  Anything else (a
    timeout, an outage, a bad token) is left to fail the test that meets it."""
    import socket
    from urllib.parse import urlparse

    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA GPU (hub tier runs on an H100: see README)"
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return "HF_HUB_OFFLINE=1: no Hugging Face hub access"
    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.getaddrinfo(host, 443)
    except socket.gaierror:
        return f"the Hugging Face hub's host {host} does not resolve"
    try:
        socket.create_connection((host, 443), timeout=10).close()
    except ConnectionRefusedError:
        return f"the Hugging Face hub's host {host} refuses the connection"
    except OSError:
        pass  # a timeout or another network error: the test will fail on it
    return None


def _offline_kind(config: SpeculatorTestConfig) -> str:
    return config.model_path.split(":", 1)[1]


def _skip_hub(config: SpeculatorTestConfig) -> None:
    if not config.model_path.startswith("tiny:"):
        missing = hub_tier_missing()
        if missing:
            pytest.skip(f"hub tier: {missing}")


@pytest.mark.parametrize("config", SPECULATOR_CONFIGS)
def test_speculators_model(config, request):
    """The speculative config comes from the checkpoint alone; greedy generation works."""
    _skip_hub(config)
    if config.model_path.startswith("tiny:"):
        kind = _offline_kind(config)
        result = request.getfixturevalue("engine_run")(f"{kind}-auto")
        draft_path = request.getfixturevalue("tiny_models")[kind]
    else:
        result = _hub_run(config, gsm8k=False)
        draft_path = config.model_path
    spec = result["speculative_config"]
    assert spec["method"] == config.method
    assert spec["parallel_drafting"] is bool(config.parallel_drafting)
    assert spec["num_speculative_tokens"] > 0
    assert spec["draft_model"] == draft_path
    assert all(len(ids) == result["scenario"]["max_tokens"] for ids in result["token_ids"])
    assert result["stats"]["num_drafts"] > 0


@pytest.mark.parametrize("config", SPECULATOR_CONFIGS)
def test_speculators_correctness(config, request):
    _skip_hub(config)
    if not config.model_path.startswith("tiny:"):
        _check_hub_figures(config, _hub_run(config, gsm8k=True))
        return
    if not os.environ.get("GSM8K_DATA"):
        missing = ("offline tier: GSM8K_DATA is not set (a directory with GSM8K's "
                   "test.jsonl and train.jsonl, e.g. ../shared/data/gsm8k)")
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing}; CI must run it")
        pytest.skip(missing)
    from tests.conftest import CPU_LLM_KWARGS, GSM8K_LIMIT
    from tests.divergence import assert_same_ids

    engine_run = request.getfixturevalue("engine_run")
    spec = engine_run(f"{_offline_kind(config)}-auto")
    base = engine_run("target")
    # lm-eval asked for every question of the limit, in both runs.
    assert len(spec["gsm8k"]["generations"]) == len(base["gsm8k"]["generations"]) == GSM8K_LIMIT
    assert_same_ids(spec["gsm8k"]["token_ids"], base["gsm8k"]["token_ids"],
                    base["gsm8k"]["prompt_token_ids"],
                    request.getfixturevalue("tiny_models")["target"], CPU_LLM_KWARGS,
                    what="GSM8K question")
    assert spec["gsm8k"]["generations"] == base["gsm8k"]["generations"]
    assert spec["gsm8k"]["accuracy"] == base["gsm8k"]["accuracy"]
    # GSM8K ran with speculation: more drafts after it than before.
    assert spec["stats_after_gsm8k"]["num_drafts"] > spec["stats"]["num_drafts"]


def _hub_run(config: SpeculatorTestConfig, gsm8k: bool) -> dict:
    from vllm_peagle.tools.runner import run_isolated

    limit = int(os.environ.get("GSM8K_LIMIT", "0")) or None
    kwargs = {"max_model_len": 4096, "gpu_memory_utilization": 0.8}
    if config.quantization:
        kwargs["quantization"] = config.quantization
    result = run_isolated({"model": config.model_path, "max_tokens": 32, "llm_kwargs": kwargs,
                           **({"gsm8k_limit": limit or 1319} if gsm8k else {})})
    assert result["ok"], result.get("error")
    return result


def _check_hub_figures(config: SpeculatorTestConfig, result: dict) -> None:
    stats = result["stats_after_gsm8k"]
    assert result["gsm8k"]["accuracy"] == pytest.approx(
        config.expected_gsm8k_accuracy, rel=config.accuracy_rtol)
    assert stats["acceptance_len"] == pytest.approx(
        config.expected_acceptance_len, rel=config.acceptance_len_rtol)
    rates = stats["per_pos_acceptance_rates"]
    for pos, expected in enumerate(config.expected_per_pos_acceptance_rates):
        assert rates[pos] == pytest.approx(expected, rel=config.per_pos_rtol), pos


# --- compute_spec_decode_stats on hand-made metrics ---

def _counter(name, value):
    return SimpleNamespace(name=name, value=value)


def _vector(name, values):
    return SimpleNamespace(name=name, values=values)


def test_compute_spec_decode_stats():
    metrics = [
        _counter("vllm:num_requests_running", 99),  # ignored
        _counter("vllm:spec_decode_num_drafts", 10),
        _counter("vllm:spec_decode_num_draft_tokens", 30),
        _counter("vllm:spec_decode_num_accepted_tokens", 12),
        _vector("vllm:spec_decode_num_accepted_tokens_per_pos", [7, 4, 1]),
    ]
    stats = compute_spec_decode_stats(metrics)
    assert stats["num_drafts"] == 10
    assert stats["num_draft_tokens"] == 30
    assert stats["num_accepted_tokens"] == 12
    assert stats["acceptance_len"] == pytest.approx(2.2)
    assert stats["draft_tokens_per_step"] == pytest.approx(3.0)
    assert stats["overall_acceptance_rate"] == pytest.approx(0.4)
    assert stats["per_pos_accepted"] == [7, 4, 1]
    assert stats["per_pos_acceptance_rates"] == pytest.approx([0.7, 0.4, 0.1])


def test_compute_spec_decode_stats_sums_label_sets():
    # One metric object per engine (label set): the stats are their sum.
    metrics = [
        _counter("vllm:spec_decode_num_drafts", 2), _counter("vllm:spec_decode_num_drafts", 2),
        _counter("vllm:spec_decode_num_draft_tokens", 4),
        _counter("vllm:spec_decode_num_draft_tokens", 4),
        _counter("vllm:spec_decode_num_accepted_tokens", 1),
        _counter("vllm:spec_decode_num_accepted_tokens", 3),
        _vector("vllm:spec_decode_num_accepted_tokens_per_pos", [1, 0]),
        _vector("vllm:spec_decode_num_accepted_tokens_per_pos", [2, 1]),
    ]
    stats = compute_spec_decode_stats(metrics)
    assert (stats["num_drafts"], stats["num_draft_tokens"], stats["num_accepted_tokens"]) == (4, 8, 4)
    assert stats["per_pos_accepted"] == [3, 1]
    assert stats["acceptance_len"] == pytest.approx(2.0)


def test_compute_spec_decode_stats_zero_drafts():
    stats = compute_spec_decode_stats([
        _counter("vllm:spec_decode_num_drafts", 0),
        _counter("vllm:spec_decode_num_draft_tokens", 0),
        _counter("vllm:spec_decode_num_accepted_tokens", 0),
        _vector("vllm:spec_decode_num_accepted_tokens_per_pos", [0, 0, 0]),
    ])
    assert stats["acceptance_len"] == 1.0
    assert stats["draft_tokens_per_step"] == 0.0
    assert stats["overall_acceptance_rate"] == 0.0
    assert stats["per_pos_acceptance_rates"] == [0.0, 0.0, 0.0]
    assert compute_spec_decode_stats([])["num_drafts"] == 0
