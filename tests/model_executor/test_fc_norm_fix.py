"""The ``fc_norm`` fix (vllm_peagle/model_executor/models/fc_norm_fix.py) keeps
the installed drafter's values: its method with the fix, on vLLM's own RMSNorm
modules, gives what the method without it gives.  In-process, no ``register()``:
the fix is applied to a subclass."""

from __future__ import annotations

import types

import pytest
import torch

from vllm_peagle.model_executor.models.fc_norm_fix import DRAFTERS, fix, norms_see_1d_input


def _drafters():
    import importlib

    for module, name in DRAFTERS.items():
        try:
            yield getattr(importlib.import_module(module), name)
        except ImportError:
            continue


@pytest.mark.parametrize("cls", list(_drafters()), ids=lambda c: c.__module__)
def test_fixed_combine_hidden_states_same_values_2d_norm_input(cls):
    if norms_see_1d_input(cls) is None:
        pytest.skip(f"{cls.__qualname__} of this vLLM applies no fc_norm (0.22.0 has it)")
    from vllm.config import VllmConfig, set_current_vllm_config
    from vllm.model_executor.layers.layernorm import RMSNorm

    fixed = type("Fixed", (cls,), {"combine_hidden_states": cls.combine_hidden_states})
    fix(fixed)
    assert norms_see_1d_input(fixed) is False

    aux, hidden = 4, 8
    torch.manual_seed(0)
    with set_current_vllm_config(VllmConfig()):  # vLLM's custom ops read it when built
        norms = torch.nn.ModuleList(RMSNorm(hidden, eps=1e-6) for _ in range(aux))
    for norm in norms:
        norm.weight.data.uniform_(0.5, 1.5)
    fc = torch.nn.Linear(aux * hidden, hidden, bias=False)
    hidden_states = torch.randn(5, aux * hidden)

    def drafter():
        model = types.SimpleNamespace(
            use_aux_hidden_state=True, norm_before_fc=False, input_norm=None,
            fc_norm=norms, num_aux_hidden_states=aux, num_aux_layers=aux,
            fc=lambda h: fc(h))
        return types.SimpleNamespace(model=model)

    # Rows of aux states as the proposer passes them each step, and one flattened
    # row as it passes mask_hidden at load: the same values and shapes.
    for given in (hidden_states, hidden_states[0]):
        with torch.no_grad():
            want = cls.combine_hidden_states(drafter(), given)
            got = fixed.combine_hidden_states(drafter(), given)
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=0, atol=0)
