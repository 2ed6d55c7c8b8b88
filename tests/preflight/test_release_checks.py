"""Pre-flight's questions to the installed vLLM, through ``EngineArgs``, in
``auto`` and ``force``: a verifier whose architecture cannot hand Eagle3 drafts
its aux hidden states stops in the main process with one line, the same draft
with a verifier that can resolves; a draft with ``fc_norm`` and ``norm_output``
reaches the draft's config where the drafter has them, and stops with one line
per option naming the release that has it where it does not."""

from __future__ import annotations

import shutil

import pytest

from tests.engine_config import resolve_in_modes
from tests.malformed import _edit_config

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def results(tiny_models, tmp_path_factory) -> dict[str, list[dict]]:
    tmp = tmp_path_factory.mktemp("release")
    verifier, draft = str(tmp / "verifier"), str(tmp / "draft")
    shutil.copytree(tiny_models["target"], verifier)
    # An architecture vLLM knows but whose class has no SupportsEagle3 here.
    _edit_config(verifier, lambda c: c.update(architectures=["OPTForCausalLM"]))
    shutil.copytree(tiny_models["peagle"], draft)
    _edit_config(draft, lambda c: c["speculators_config"]["verifier"].update(
        name_or_path=verifier))
    norms = str(tmp / "norms")
    shutil.copytree(tiny_models["peagle"], norms)
    _edit_config(norms, lambda c: c.update(fc_norm=True, norm_output=True))
    return resolve_in_modes([{"model": draft}, {"model": tiny_models["peagle"]},
                             {"model": norms}], tmp)


@pytest.mark.parametrize("mode", ["auto", "force"])
def test_verifier_without_eagle3_support(results, mode):
    from vllm_peagle import features

    if features.eagle3_verifier_support("OPTForCausalLM") is not False:
        pytest.skip("OPTForCausalLM supports Eagle3 in this vLLM: no architecture to test with")
    bad, good, _ = results[mode]
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
