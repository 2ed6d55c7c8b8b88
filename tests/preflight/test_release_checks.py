"""Pre-flight's questions to the installed vLLM, through ``EngineArgs``, in
``auto`` and ``force``: a verifier whose architecture cannot hand Eagle3 drafts
its aux hidden states stops in the main process with one line, the same draft
with a verifier that can resolves; a draft with ``fc_norm`` and ``norm_output``
reaches the draft's config where the drafter has them, and stops with one line
per option naming the release that has it where it does not."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.conftest import AUX4_IDS
from tests.engine_config import cases_of
from tests.malformed import _edit_config, _rewrite_weights

pytestmark = pytest.mark.engine


def config_cases(tiny: dict, tmp: str) -> list[tuple[dict, tuple[str, ...]]]:
    verifier, draft = os.path.join(tmp, "verifier"), os.path.join(tmp, "draft")
    shutil.copytree(tiny["target"], verifier)
    # An architecture vLLM knows but whose class has no SupportsEagle3 here.
    _edit_config(verifier, lambda c: c.update(architectures=["OPTForCausalLM"]))
    shutil.copytree(tiny["peagle"], draft)
    _edit_config(draft, lambda c: c["speculators_config"]["verifier"].update(
        name_or_path=verifier))
    norms = os.path.join(tmp, "norms")
    shutil.copytree(tiny["peagle"], norms)
    _edit_config(norms, lambda c: c.update(fc_norm=True, norm_output=True))
    # Two aux hidden states, weights to match: valid, but 0.16-0.21's drafter holds 3.
    aux2 = os.path.join(tmp, "aux2")
    shutil.copytree(tiny["peagle"], aux2)
    _edit_config(aux2, lambda c: (c["transformer_layer_config"].update(num_aux_hidden_states=2),
                                  c.update(eagle_aux_hidden_state_layer_ids=[2, 5])))
    _rewrite_weights(aux2, _two_aux)
    # Its own copy: pre-flight checks a directory once per process (the V2 runner
    # variable is read then), and the plain draft has passed already.
    v2 = os.path.join(tmp, "v2")
    shutil.copytree(tiny["peagle"], v2)
    both = ("auto", "force")
    return [({"model": draft}, both), ({"model": tiny["peagle"]}, both),
            ({"model": norms}, both), ({"model": aux2}, both),
            ({"model": v2, "env": {"VLLM_USE_V2_MODEL_RUNNER": "1"}}, ("auto",)),
            # 5, 6: 4 aux hidden states, Llama and Qwen3 drafts, in every mode.
            ({"model": tiny["peagle-aux4"]}, ("auto", "force", "off")),
            ({"model": tiny["qwen3-peagle-aux4"]}, ("auto", "force", "off"))]


@pytest.fixture(scope="module")
def results(engine_configs) -> dict[str, list[dict]]:
    results = cases_of(engine_configs, "release_checks")
    results["v2"] = results["auto"][4:5]
    return results


def _two_aux(t: dict) -> None:
    h = t["fc.weight"].shape[0]
    t["fc.weight"] = t["fc.weight"][:, : 2 * h].contiguous()
    t["mask_hidden"] = t["mask_hidden"][: 2 * h].contiguous()


@pytest.mark.parametrize("mode", ["auto", "force"])
def test_verifier_without_eagle3_support(results, mode):
    from vllm_peagle import features

    if features.eagle3_verifier_support("OPTForCausalLM") is not False:
        pytest.skip("OPTForCausalLM supports Eagle3 in this vLLM: no architecture to test with")
    bad, good = results[mode][:2]
    assert "ValueError" in bad["error"]["mro"], bad
    lines = [line for line in bad["error"]["message"].splitlines() if line.startswith("  - ")]
    assert len(lines) == 1
    assert lines[0].startswith("  - speculators_config.verifier.name_or_path: is a "
                               "OPTForCausalLM") and "SupportsEagle3" in lines[0]
    assert good["speculative_config"]["parallel_drafting"] is True


@pytest.mark.parametrize("mode", ["auto", "force"])
def test_fc_norm_and_norm_output(results, mode):
    from vllm_peagle import features

    got = results[mode][2]
    missing = [o for o in ("fc_norm", "norm_output")
               if o not in features.eagle3_drafter_options()]
    if not missing:
        # Passed on to the drafter (upstream's update_peagle drops them).
        assert got["speculative_config"]["fc_norm"] is True, got
        assert got["speculative_config"]["norm_output"] is True, got
        return
    lines = [line for line in got["error"]["message"].splitlines() if line.startswith("  - ")]
    assert [line.split(":")[0] for line in lines] == [f"  - {o}" for o in missing]
    assert all("Fix: use vLLM >= 0.22.0" in line for line in lines)


@pytest.mark.parametrize("mode", ["auto", "force"])
def test_aux_count_the_drafter_cannot_hold(results, mode):
    from vllm_peagle import features

    got = results[mode][3]
    if features.drafter_sizes_aux_inputs():
        spec = got["speculative_config"]
        assert spec is not None and spec["parallel_drafting"] is True, got
        assert got["draft_hf_config"]["num_aux_hidden_states"] == 2
        return
    lines = [line for line in got["error"]["message"].splitlines() if line.startswith("  - ")]
    assert lines == [line for line in lines
                     if line.startswith("  - transformer_layer_config.num_aux_hidden_states: is 2")]
    assert len(lines) == 1 and "Fix: use vLLM >= 0.22.0" in lines[0]


def test_v2_model_runner_with_parallel_drafting(results):
    """Pre-flight refuses it where the release would run parallel drafting on
    its V2 model runner (0.16-0.21)."""
    from vllm_peagle import features

    if features.v2_runner_excludes_parallel_drafting():
        pytest.skip("this vLLM keeps parallel drafting off its V2 model runner itself "
                    "(0.22+): nothing for pre-flight to guard")
    got = results["v2"][0]
    assert "error" in got, got
    assert "  - VLLM_USE_V2_MODEL_RUNNER: is '1'" in got["error"]["message"]


@pytest.mark.parametrize("index", [0, 2, 3])
def test_check_reports_what_engine_args_refuses(results, index):
    """``vllm-peagle check`` asks the installed release too: it exits 1 with
    the lines ``LLM(...)`` raises where the release refuses the checkpoint, 0
    where it runs it (a draft with ``fc_norm``/``norm_output``, one with 2 aux
    hidden states, one whose verifier cannot be tapped)."""
    from tests.malformed import problem_lines, run_check

    got = results["auto"][index]
    draft = got["case"]["model"]
    proc = run_check(draft)
    assert "Traceback" not in proc.stdout + proc.stderr
    if "error" not in got:
        assert proc.returncode == 0, proc.stdout
        return
    assert proc.returncode == 1, proc.stdout
    lines = problem_lines(draft, proc.stdout)
    assert lines and all(f"  - {line}" in got["error"]["message"] for line in lines), (
        lines, got["error"]["message"])
    assert "--no-release" not in proc.stdout
    assert run_check(draft, "--no-release").returncode == 0


@pytest.mark.parametrize("index,arch", [(5, "llama"), (6, "qwen3")])
def test_four_aux_layers(results, index, arch, tiny_models):
    """A draft with 4 aux hidden states: never refused where vLLM alone takes
    it (``off`` resolves it) in ``auto``; resolved with its 4 inputs
    (``num_aux_hidden_states``), or stopped with one line naming the field and
    the release that can, in ``auto`` and ``force``."""
    native = results["off"][index]
    for mode in ("auto", "force"):
        got = results[mode][index]
        if "error" not in got:
            assert got["speculative_config"]["parallel_drafting"] is True
            hf = got["draft_hf_config"]
            assert hf["eagle_aux_hidden_state_layer_ids"] == AUX4_IDS, hf
            assert hf["num_aux_hidden_states"] == len(AUX4_IDS), hf
            continue
        assert not (mode == "auto" and "error" not in native and arch == "qwen3"), (
            "auto refuses a Qwen3 4-aux draft that vLLM alone takes", got["error"])
        lines = [line for line in got["error"]["message"].splitlines()
                 if line.startswith("  - ")]
        assert len(lines) == 1, got["error"]["message"]
        assert lines[0].startswith(("  - eagle_aux_hidden_state_layer_ids: is [1, 3, 5, 6]",
                                    "  - transformer_layer_config.num_aux_hidden_states")), lines
        assert "Fix: use vLLM >= 0.22.0" in lines[0]
