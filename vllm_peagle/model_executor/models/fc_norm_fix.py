"""Beyond upstream: PEagle drafts with ``fc_norm`` on CUDA (a fix upstream lacks,
through 0.33).

When vLLM loads a parallel-drafting Eagle3 drafter it projects the draft's
``mask_hidden`` (the aux states of a mask position) through the drafter's
``combine_hidden_states`` once, flattened to one dimension
(``mask_hidden.view(-1)``, ``vllm/v1/spec_decode/llm_base_proposer.py``).  With
``fc_norm`` set that method RMS-normalises each aux slice, and vLLM's CUDA
``rms_norm`` kernel reads the row stride of its input (``stride(-2)``), which a
1-D tensor lacks: the engine dies at start-up with ``aoti_torch_get_stride(...)
API call failed`` (H200, vLLM 0.22.0, 0.23.0 and 0.24.0, 2026-11-30; at TP=2
during engine start-up too).  The CPU kernels take 1-D input, so the CPU suite
never saw it.  Here ``combine_hidden_states`` of vLLM's Eagle3 drafters
(``vllm/model_executor/models/llama_eagle3.py`` from 0.22.0, ``qwen3_eagle3.py``
from 0.24.0) takes a 1-D input as one row and returns it 1-D again: the same
values, and the norms see the 2-D tensor the kernel needs.

Installed lazily: ``register()`` must not import vLLM's model code (it runs in
every process, the API server's too), so ``apply`` sets a post-import hook for
the drafter modules and the fix is applied when vLLM imports one.  ``auto``
fixes a drafter class only where its ``combine_hidden_states`` hands a norm a
1-D tensor (a probe with stand-in modules asks it); ``force`` everywhere.  This
package's Qwen3 drafter (0.16-0.23) inherits the Llama drafter's method, so it
is fixed with it.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import logging
import sys

from vllm_peagle.features import probe

logger = logging.getLogger("vllm.plugins.peagle")

# module -> the drafter class in it whose combine_hidden_states applies fc_norm.
DRAFTERS = {
    "vllm.model_executor.models.llama_eagle3": "Eagle3LlamaForCausalLM",
    "vllm.model_executor.models.qwen3_eagle3": "Eagle3Qwen3ForCausalLM",
}
_MARK = "_peagle_fc_norm_rows"


@probe
def norms_see_1d_input(cls) -> bool | None:
    """Whether ``cls.combine_hidden_states``, given one flattened row (as vLLM
    passes ``mask_hidden``), hands an ``fc_norm`` module a 1-D tensor: True,
    False, or None (the method never reaches ``fc_norm``, as before 0.22.0, or
    it raises: a release whose method needs more)."""
    import types

    import torch

    seen: list[int] = []

    class Recorder(torch.nn.Module):
        def forward(self, x):
            seen.append(x.dim())
            return x

    aux = 3
    model = types.SimpleNamespace(
        use_aux_hidden_state=True, norm_before_fc=False, input_norm=None,
        fc_norm=torch.nn.ModuleList(Recorder() for _ in range(aux)),
        num_aux_hidden_states=aux, num_aux_layers=aux, fc=lambda h: h)
    cls.combine_hidden_states(types.SimpleNamespace(model=model), torch.zeros(4 * aux))
    return (min(seen) < 2) if seen else None


def fix(cls) -> None:
    """Wrap ``cls.combine_hidden_states``: with ``fc_norm`` set, a 1-D input goes
    in as one row and comes back 1-D (any other call is the method's own)."""
    original = cls.__dict__["combine_hidden_states"]
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def combine_hidden_states(self, hidden_states):
        if hidden_states.dim() == 1 and getattr(self.model, "fc_norm", None) is not None:
            return original(self, hidden_states.unsqueeze(0)).squeeze(0)
        return original(self, hidden_states)

    setattr(combine_hidden_states, _MARK, True)
    cls.combine_hidden_states = combine_hidden_states


def _fix_module(module, force: bool) -> None:
    cls = getattr(module, DRAFTERS[module.__name__], None)
    if cls is None or "combine_hidden_states" not in vars(cls):
        return
    if force or norms_see_1d_input(cls):
        fix(cls)
        logger.debug("vllm-peagle: fc_norm inputs kept 2-D in %s", cls.__qualname__)


class _FixOnImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the loader of the drafter modules so that
    the fix runs right after vLLM's module has executed."""

    def __init__(self, force: bool):
        self.force = force

    def find_spec(self, fullname, path, target=None):
        if fullname not in DRAFTERS:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _Loader(spec.loader, self.force)
        return spec


class _Loader(importlib.abc.Loader):
    def __init__(self, loader, force: bool):
        self.loader, self.force = loader, force

    def __getattr__(self, name):  # get_source, get_filename, ... (tracebacks)
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        try:
            _fix_module(module, self.force)
        except Exception as e:  # noqa: BLE001 - never break vLLM's import
            logger.warning("vllm-peagle: fc_norm fix not applied to %s: %s: %s",
                           module.__name__, type(e).__name__, e)


def apply(force: bool) -> str:
    """Set the post-import hook (or fix the drafter modules already imported).
    Returns "installed": whether a class needs the fix is asked on import."""
    for finder in sys.meta_path:
        if isinstance(finder, _FixOnImport):
            finder.force = force
            break
    else:
        sys.meta_path.insert(0, _FixOnImport(force))
    for name in DRAFTERS:
        if name in sys.modules:
            _fix_module(sys.modules[name], force)
    return "installed"
