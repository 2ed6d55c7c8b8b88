"""Test-only: with this folder on PYTHONPATH and VLLM_PEAGLE_TEST_BROKEN_PROBES
set (``all``, or ``module:function,...``), every process Python starts (vLLM's
engine core and workers too) has those vllm-peagle probes raise RuntimeError.

The probes are the package's own registry (``vllm_peagle.features.PROBES``,
filled by ``@probe``), so a new probe is broken here without being listed."""

import os


def raising(name: str):
    def broken(*args, **kwargs):
        raise RuntimeError(f"probe {name} broken by the test")
    return broken


def break_probes(wanted: str) -> None:
    """Stand a raising function in for each wanted probe, those registered
    already and those whose modules are imported later."""
    from vllm_peagle import features

    names = None if wanted == "all" else set(wanted.split(","))

    class Breaking(dict):
        def __setitem__(self, name, fn):
            if names is None or name in names:
                fn = raising(name)
            super().__setitem__(name, fn)

    table = Breaking()
    for name, fn in features.PROBES.items():
        table[name] = fn
    features.PROBES = table


if os.environ.get("VLLM_PEAGLE_TEST_BROKEN_PROBES"):
    break_probes(os.environ["VLLM_PEAGLE_TEST_BROKEN_PROBES"])
