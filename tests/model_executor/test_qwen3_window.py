"""Sliding windows of Qwen3 drafts (issue 32): the probe that asks vLLM's own
Qwen3 drafter whether a ``sliding_attention`` layer gets its window, on
stand-in layer classes (one passes the window to its base, one drops it, as
vLLM 0.24's does), and its answer on the installed vLLM beside the drafter
``auto`` then resolves Qwen3 drafts to (``test_register`` per mode)."""

from __future__ import annotations

from types import SimpleNamespace

from vllm_peagle import features


class _Base:
    def __init__(self, config, cache_config=None, quant_config=None, prefix="",
                 per_layer_sliding_window=None):
        raise AssertionError("the probe must not build the real base layer")


class _Keeps(_Base):
    def __init__(self, vllm_config, prefix: str = "", config=None, layer_idx: int = 0):
        config = config or vllm_config.model_config.hf_config
        window = (config.sliding_window
                  if config.layer_types[layer_idx] == "sliding_attention" else None)
        super().__init__(config=config, prefix=prefix, per_layer_sliding_window=window)
        self.built = True


class _Drops(_Base):
    def __init__(self, vllm_config, prefix: str = "", config=None, layer_idx: int = 0):
        config = config or vllm_config.model_config.hf_config
        super().__init__(config=config, prefix=prefix)


class _CallsBaseByName(_Base):
    def __init__(self, vllm_config, prefix: str = "", config=None, layer_idx: int = 0):
        _Base.__init__(self, config=config)


def _ask(cls):
    config = SimpleNamespace(layer_types=["sliding_attention"], sliding_window=5)
    return features._base_init_kwargs(cls, vllm_config=SimpleNamespace(), prefix="",
                                      config=config, layer_idx=0)


def test_probe_reads_what_a_layer_hands_its_base():
    assert _ask(_Keeps)["per_layer_sliding_window"] == 5
    assert "per_layer_sliding_window" not in _ask(_Drops)
    # A layer that does not call super(): unknown, never a guess.
    assert _ask(_CallsBaseByName) is None


def test_installed_drafter_answer():
    answer = features.native_qwen3_drafter_keeps_window()
    if not features.has_qwen3_eagle3():
        assert answer is None  # 0.16-0.23: no Qwen3 drafter of vLLM's own
    else:
        # 0.24's drops the window (read in its wheel: its layers take none),
        # 0.28 and later keep it; the matrix runs this on each.
        assert answer in (True, False)
