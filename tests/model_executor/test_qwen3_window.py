"""Sliding windows of Qwen3 drafts (issue 32): the probe that reads vLLM's own
Qwen3 drafter for whether a ``sliding_attention`` layer gets its window, on
stand-in layer classes (one passes the window to its base, one drops it, as
vLLM 0.24's does, one calls its base by name), and its answer on the installed
vLLM beside the drafter ``auto`` then resolves Qwen3 drafts to (``test_register``
per mode)."""

from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

from vllm_peagle import features

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BACKPORT = os.path.join(ROOT, "patches", "vllm-0.24.0")

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


def _calls_with(source: str, class_name: str, keyword: str) -> list[str]:
    """The calls in ``class_name.__init__`` that pass ``keyword``, by callee."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            init = next(f for f in node.body
                        if isinstance(f, ast.FunctionDef) and f.name == "__init__")
            return [ast.unparse(c.func) for c in ast.walk(init) if isinstance(c, ast.Call)
                    and any(k.arg == keyword for k in c.keywords)]
    return []


def test_the_0_24_backport_gives_the_drafter_its_window(tmp_path):
    """``patches/vllm-0.24.0``: where vLLM's own Qwen3 drafter drops the window
    (0.24.0, in the matrix), the backport applies to the release's files, and
    then the drafter hands its base layer the window (the probe above says so),
    the base layer its attention, the attention vLLM's attention layer."""
    if features.native_qwen3_drafter_keeps_window() is not False:
        pytest.skip("the installed vLLM's Qwen3 drafter keeps windows (or it has none): "
                    "the backport is for 0.24.0, run in that release's matrix")
    root = importlib.util.find_spec("vllm").submodule_search_locations[0]
    models = os.path.join("vllm", "model_executor", "models")
    os.makedirs(tmp_path / models)
    for name in ("qwen3.py", "qwen3_eagle3.py"):
        shutil.copy(os.path.join(root, "model_executor", "models", name), tmp_path / models)
    patches = sorted(os.path.join(BACKPORT, p) for p in os.listdir(BACKPORT))
    proc = subprocess.run(["git", "apply", "-p1", *patches], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    eagle3 = (tmp_path / models / "qwen3_eagle3.py").read_text()
    qwen3 = (tmp_path / models / "qwen3.py").read_text()
    keyword = "per_layer_sliding_window"
    assert features.passes_to_base_init(eagle3, "Qwen3Eagle3DecoderLayer", keyword) is True
    assert "Qwen3Attention" in _calls_with(qwen3, "Qwen3DecoderLayer", keyword)
    assert "attn_cls" in _calls_with(qwen3, "Qwen3Attention", keyword)
