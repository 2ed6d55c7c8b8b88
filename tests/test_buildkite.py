"""The Buildkite files: the pipeline validates against Buildkite's schema, and
the test area names the speculators suite in upstream vLLM's format."""

from __future__ import annotations

import json
import os

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA = os.path.join(ROOT, "..", "shared", "data", "buildkite", "pipeline-schema.json")
SUITE = "tests/v1/spec_decode/test_speculators_correctness.py"


def _load(path: str):
    with open(os.path.join(ROOT, path)) as f:
        return yaml.safe_load(f)


def test_pipeline_validates_against_buildkite_schema():
    if not os.path.isfile(SCHEMA):
        pytest.skip(f"Buildkite schema not found at {SCHEMA} (../shared beside the checkout)")
    import jsonschema

    with open(SCHEMA) as f:
        schema = json.load(f)
    pipeline = _load(".buildkite/pipeline.yml")
    jsonschema.validate(pipeline, schema)
    steps = {s["key"]: s for s in pipeline["steps"]}
    assert steps["cpu-make-test"]["command"] == "make test"
    assert steps["cpu-release-matrix"]["command"] == "make test-matrix"
    # The load-bearing GPU step runs the pre-PEagle release with the plugin in auto,
    # the hub-tier step the newest vLLM in force (this package's code, not vLLM's).
    pre = steps["h100-vllm-0-21-auto"]
    assert any('"vllm==0.21.0"' in c for c in pre["commands"])
    assert pre["env"]["VLLM_PEAGLE_MODE"] == "auto"
    assert steps["h100-speculators-correctness"]["env"]["VLLM_PEAGLE_MODE"] == "force"
    # The release engines on the GPU: every release the GPU image's torch runs,
    # TP=1 and TP=2, plugin auto.
    for key, step_name in (("gpu-release-tp1", "release"), ("gpu-release-tp2", "release_tp2")):
        step = steps[key]
        assert {"0.21.0", "0.22.0", "0.23.0", "0.24.0"} <= set(step["matrix"]["setup"]["vllm"])
        assert step["env"]["VLLM_PEAGLE_MODE"] == "auto"
        assert any('"vllm=={{matrix.vllm}}"' in c for c in step["commands"])
        assert any(c.endswith(f"--only={step_name}") for c in step["commands"])
    # Issue 32's guard: the windowed draft on the release whose own drafter drops
    # the window and on the V2 runner's.
    window = steps["gpu-window"]
    assert {"0.24.0", "0.34.0"} <= set(window["matrix"]["setup"]["vllm"])
    assert any(c.endswith("--only=window") for c in window["commands"])
    gpu = steps["h100-speculators-correctness"]
    assert gpu["timeout_in_minutes"] == 30
    assert gpu["agents"]["queue"]
    assert any("-m slow_test" in c and SUITE in c and "VLLM_ALLOW_INSECURE_SERIALIZATION=1" in c
               for c in gpu["commands"])


def test_schema_rejects_a_broken_pipeline():
    # Guards the test above: the schema really constrains step fields.
    if not os.path.isfile(SCHEMA):
        pytest.skip(f"Buildkite schema not found at {SCHEMA}")
    import jsonschema

    with open(SCHEMA) as f:
        schema = json.load(f)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"steps": [{"command": "x", "timeout_in_minutes": "soon"}]}, schema)


def test_spec_decode_test_area():
    area = _load(".buildkite/test_areas/spec_decode.yaml")
    steps = {s["key"]: s for s in area["steps"]}
    step = steps["speculators-correctness"]
    for field in ("label", "key", "device", "timeout_in_minutes", "source_file_dependencies",
                  "commands"):
        assert step.get(field), field
    assert step["device"] == "h100"
    assert SUITE in step["source_file_dependencies"]
    assert any(SUITE in c for c in step["commands"])
    assert all(os.path.exists(os.path.join(ROOT, p.rstrip("/")))
               for p in step["source_file_dependencies"])
