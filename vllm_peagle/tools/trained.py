"""The trained tiny pairs the package ships (``vllm_peagle/trained_tiny/``, made
by ``python -m dev.train_tiny``): the demo runs on them, the tests and the GPU
session too.  Each draft names its verifier relative to the repository root;
``ensure_trained_tiny`` copies them with absolute paths."""

from __future__ import annotations

import json
import os
import shutil

from vllm_peagle.tools.checkpoint import write_whole

TRAINED_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "trained_tiny")
# Each committed draft and the target it was trained against; the "-window32"
# ones, every layer sliding a 32-token window (issue 32: what keeping a window is worth).
TRAINED_DRAFTS = {"peagle": "target", "eagle3": "target", "qwen3-peagle": "qwen3-target",
                  "qwen3-peagle-window32": "qwen3-target", "llama-peagle-window32": "target"}
TRAINED_MODELS = ("target", "peagle", "eagle3", "qwen3-target", "qwen3-peagle",
                  "qwen3-peagle-window32", "llama-peagle-window32")


def default_cache_dir() -> str:
    """Where the demo copies them: ``~/.cache/vllm-peagle/trained``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "vllm-peagle", "trained")


def ensure_trained_tiny(out_dir: str, source: str = TRAINED_DIR,
                        names: tuple[str, ...] = TRAINED_MODELS) -> dict[str, str]:
    """Copy the committed trained models to ``out_dir`` with each draft's
    verifier set to the copied target's absolute path, so vLLM and
    ``vllm-peagle check`` find it from any working directory."""
    out_dir = os.path.abspath(out_dir)
    if not os.path.isdir(os.path.join(source, "target")):
        raise SystemExit(f"the trained tiny models are missing from {source}; "
                         "re-make them with `python -m dev.train_tiny` (a checkout)")

    def copy(tmp: str) -> None:
        for name in names:
            shutil.copytree(os.path.join(source, name), os.path.join(tmp, name))
            path = os.path.join(tmp, name, "config.json")
            with open(path) as f:
                config = json.load(f)
            spec = config.get("speculators_config")
            if spec:
                verifier = os.path.basename(spec["verifier"]["name_or_path"])
                spec["verifier"]["name_or_path"] = os.path.join(out_dir, verifier)
                with open(path, "w") as f:
                    json.dump(config, f, indent=2)

    write_whole(out_dir, copy)
    return {n: os.path.join(out_dir, n) for n in names}
