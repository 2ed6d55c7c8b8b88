"""A stand-in Hugging Face hub for the hub tier: a hub cache in the standard
layout (``models--<org>--<name>/refs/main`` and ``snapshots/<rev>/``) holding
the committed trained tiny Qwen3 pair under upstream's hub ids, read with
``HF_HUB_OFFLINE=1``.  With it the hub tier's code path (hub ids resolved by
vLLM and Transformers, the draft's verifier named by hub id) runs on any
machine; its figures are the stand-in's own.
"""

from __future__ import annotations

import json
import os
import shutil

from vllm_peagle.tools.trained import TRAINED_DIR

# hub id -> the trained tiny model that stands in for it.
STANDIN_MODELS = {
    "Qwen/Qwen3-8B": "qwen3-target",
    "nm-testing/qwen3-8b-peagle-speculators": "qwen3-peagle",
}
# trained draft -> its hub id on the stand-in.
STANDIN_DRAFTS = {name: hub_id for hub_id, name in STANDIN_MODELS.items()
                  if name.endswith("peagle")}
# Each draft names its verifier by this hub id, as upstream's checkpoint does.
STANDIN_VERIFIER = "Qwen/Qwen3-8B"
# A fixed revision: the stand-in's content is the committed models'.
STANDIN_REVISION = "5f1d0c0ffee0000000000000000000000000cafe"


def repo_folder(hub_id: str) -> str:
    """huggingface_hub's cache folder name for a model repository."""
    return "models--" + hub_id.replace("/", "--")


def build_standin_hub(cache_dir: str, source: str = TRAINED_DIR) -> dict[str, str]:
    """Write the stand-in cache under ``cache_dir``; returns the environment
    that points Hugging Face's libraries (and so vLLM) at it, offline."""
    for hub_id, name in STANDIN_MODELS.items():
        repo = os.path.join(cache_dir, repo_folder(hub_id))
        snapshot = os.path.join(repo, "snapshots", STANDIN_REVISION)
        shutil.copytree(os.path.join(source, name), snapshot)
        os.makedirs(os.path.join(repo, "refs"))
        with open(os.path.join(repo, "refs", "main"), "w") as f:
            f.write(STANDIN_REVISION)
        config_path = os.path.join(snapshot, "config.json")
        with open(config_path) as f:
            config = json.load(f)
        if "speculators_config" in config:
            config["speculators_config"]["verifier"]["name_or_path"] = STANDIN_VERIFIER
            with open(config_path, "w") as f:
                json.dump(config, f, indent=2)
    return {"HF_HUB_CACHE": cache_dir, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
