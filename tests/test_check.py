"""``vllm-peagle check``: every malformed checkpoint gives exit 1 and one line per
problem naming the field, no traceback, and leaves the directory as it was."""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest

from tests.malformed import CASES, build_case, problem_lines, run_check, tree_state


@pytest.mark.parametrize("case_id,field", [(c[0], c[1]) for c in CASES],
                         ids=[c[0] for c in CASES])
def test_check_malformed(case_id, field, tiny_models, tmp_path):
    draft = build_case(case_id, str(tmp_path), tiny_models)
    before = tree_state(str(tmp_path))
    proc = run_check(draft)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = problem_lines(draft, proc.stdout)
    assert lines, proc.stdout
    assert any(line.startswith(f"{field}: ") for line in lines), proc.stdout
    assert tree_state(str(tmp_path)) == before


@pytest.mark.parametrize("kind", ["peagle"])
def test_check_valid_tiny(kind, tiny_models):
    proc = run_check(tiny_models[kind])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    with open(os.path.join(tiny_models[kind], "config.json")) as f:
        k = json.load(f)["speculators_config"]["proposal_methods"][0]["speculative_tokens"]
    assert f"method=eagle3 parallel_drafting=True num_speculative_tokens={k}" in out
    assert "PeagleLlamaForCausalLM" in out
    # The tiny target has 8 layers: vLLM's defaults (2, 8 // 2, 8 - 3).
    assert "aux layer ids: [2, 4, 5]" in out


def test_check_eagle3_is_not_peagle(tiny_models):
    proc = run_check(tiny_models["eagle3"])
    assert proc.returncode == 1
    assert "speculators_model_type: is 'eagle3'" in proc.stdout
    assert "not PEagle" in proc.stdout


def test_check_explicit_verifier_flag(tiny_models, tmp_path):
    # The draft names a verifier that is gone; --verifier points at the real one.
    draft = str(tmp_path / "draft")
    shutil.copytree(tiny_models["peagle"], draft)
    path = os.path.join(draft, "config.json")
    with open(path) as f:
        config = json.load(f)
    config["speculators_config"]["verifier"]["name_or_path"] = "some-org/some-model"
    with open(path, "w") as f:
        json.dump(config, f)
    no_verifier = run_check(draft)
    assert no_verifier.returncode == 0
    assert "verifier checks skipped" in no_verifier.stdout
    with_verifier = run_check(draft, "--verifier", tiny_models["target"])
    assert with_verifier.returncode == 0
    assert "aux layer ids: [2, 4, 5]" in with_verifier.stdout


def test_speculators_package_validation(tiny_models):
    speculators = pytest.importorskip(
        "speculators", reason="the optional `speculators` package is not installed")
    from vllm_peagle.tools.check import speculators_problems

    with open(os.path.join(tiny_models["peagle"], "config.json")) as f:
        config = json.load(f)
    assert speculators_problems(config) == []
    config["mask_token_id"] = "not-an-int"
    assert any(p.field == "mask_token_id" for p in speculators_problems(config)), speculators


def test_speculators_only_findings_are_notes(tiny_models, tmp_path):
    """A field only speculators' config model refuses (vLLM ignores it) is a note:
    check exits 0, as LLM(...) runs it."""
    pytest.importorskip("speculators", reason="the optional `speculators` package is not installed")
    draft = str(tmp_path / "peagle")
    shutil.copytree(tiny_models["peagle"], draft)
    with open(os.path.join(draft, "config.json")) as f:
        config = json.load(f)
    config["speculators_config"]["proposal_methods"][0]["accept_tolerance"] = {}
    with open(os.path.join(draft, "config.json"), "w") as f:
        json.dump(config, f)
    result = run_check(draft, "--no-release")
    assert result.returncode == 0, result.stdout
    assert "note: the speculators package would not load this config" in result.stdout
    assert "accept_tolerance" in result.stdout


def test_speculators_errors_in_one_line_form(monkeypatch, tiny_models):
    """The adapter to speculators' own config model, with a stand-in model: its
    pydantic errors come back as Problems naming the field."""
    import types

    from pydantic import BaseModel, ConfigDict

    class PEagleSpeculatorConfig(BaseModel):  # the field speculators types as int | None
        model_config = ConfigDict(extra="allow")
        mask_token_id: int | None = None

    module = types.ModuleType("speculators.models.peagle")
    module.PEagleSpeculatorConfig = PEagleSpeculatorConfig
    monkeypatch.setitem(sys.modules, "speculators", types.ModuleType("speculators"))
    monkeypatch.setitem(sys.modules, "speculators.models", types.ModuleType("speculators.models"))
    monkeypatch.setitem(sys.modules, "speculators.models.peagle", module)
    from vllm_peagle.tools.check import speculators_problems

    with open(os.path.join(tiny_models["peagle"], "config.json")) as f:
        config = json.load(f)
    assert speculators_problems(config) == []
    config["mask_token_id"] = "not-an-int"
    problems = speculators_problems(config)
    assert [p.field for p in problems] == ["mask_token_id"]
    assert problems[0].message.startswith("speculators: ")
