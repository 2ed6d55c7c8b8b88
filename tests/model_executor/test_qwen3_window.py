"""Sliding windows of Qwen3 drafts (issue 32): the probe that reads vLLM's own
Qwen3 drafter for whether a ``sliding_attention`` layer gets its window, on
stand-in layer classes (one passes the window to its base, one drops it, as
vLLM 0.24's does, one calls its base by name), and its answer on the installed
vLLM beside the drafter ``auto`` then resolves Qwen3 drafts to (``test_register``
per mode)."""

from __future__ import annotations

import subprocess
import sys

from vllm_peagle import features

STAND_INS = '''
class Keeps(Base):
    def __init__(self, vllm_config, prefix="", config=None, layer_idx=0):
        window = config.sliding_window if config.layer_types[layer_idx] == "sliding" else None
        super().__init__(config=config, prefix=prefix, per_layer_sliding_window=window)


class Drops(Base):
    def __init__(self, vllm_config, prefix="", config=None, layer_idx=0):
        super().__init__(config=config, prefix=prefix)


class ByName(Base):
    def __init__(self, vllm_config, prefix="", config=None, layer_idx=0):
        Base.__init__(self, config=config, per_layer_sliding_window=4)
'''


def test_probe_reads_what_a_layer_hands_its_base():
    def ask(name):
        return features.passes_to_base_init(STAND_INS, name, "per_layer_sliding_window")

    assert ask("Keeps") is True
    assert ask("Drops") is False
    # No super().__init__ call, or no such class: unknown, never a guess.
    assert ask("ByName") is None
    assert ask("Missing") is None


def test_installed_drafter_answer_without_importing_it():
    answer = features.native_qwen3_drafter_keeps_window()
    if not features.has_qwen3_eagle3():
        assert answer is None  # 0.16-0.23: no Qwen3 drafter of vLLM's own
    else:
        # 0.24.0 drops the window (its layers take none), 0.28.0 and later keep
        # it (read in their wheels); the matrix runs this on each.
        assert answer in (True, False)


def test_register_imports_no_drafter_module():
    # register() asks this probe in every vLLM process: it reads the file.
    code = ("import sys, vllm_peagle; vllm_peagle.register(); "
            "print(sorted(m for m in sys.modules if m.endswith('_eagle3')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()[-1]
    assert out == "[]"
