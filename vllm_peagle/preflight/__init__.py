"""Pre-flight: stop a PEagle checkpoint that vLLM would fail on, before any
worker starts, with one line per problem.  Beyond upstream: vLLM has no
equivalent, so this patch is installed in ``auto`` and ``force`` alike.

The checks are in ``checks.py`` and its levels (``config.py``, ``weights.py``,
``release.py``); ``vllm-peagle check`` prints the same lines.
They run once per load, at the earliest point that sees the checkpoint:

- ``vllm.transformers_utils.config.maybe_override_with_speculators`` (and its
  binding in ``vllm.engine.arg_utils``): ``LLM(model=<peagle dir>)`` and
  ``vllm serve <peagle dir>``.  vLLM swaps the model for the verifier here, so
  this is the last point that knows the draft directory before the verifier
  is loaded (a missing verifier would otherwise read as "model not found").
  The user's ``speculative_config`` passes here too, with either kind of
  PEagle draft: ``speculative_config.py`` checks and completes it.
- ``SpeculatorsConfig.from_pretrained``: every load of a speculators draft
  config, so also ``speculative_config={"model": <peagle dir>}`` and hub ids
  (config-level and release checks; the files are vLLM's to fetch).

A directory that passed is not checked again in the same process while its
config.json is unchanged (vLLM reads the draft config several times a load).
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
from typing import Any

from vllm_peagle.preflight import speculative_config
from vllm_peagle.preflight.checks import check_checkpoint, load_json
from vllm_peagle.preflight.config import PEagleCheckpointError, config_problems
from vllm_peagle.preflight.release import release_problems

_ORIGINAL_FROM_PRETRAINED = "__vllm_peagle_original_from_pretrained__"
_WRAPPED = "__vllm_peagle_preflight__"
logger = logging.getLogger("vllm.plugins.peagle")

# (real path, config.json mtime_ns, size) of directories that passed.
_passed: set[tuple[str, int, int]] = set()


def _peagle_config(path: str) -> dict[str, Any] | None:
    """The config.json of a local PEagle checkpoint, else None (not local, not
    readable as JSON, or not PEagle: vLLM's own loading reports those)."""
    try:
        config, problem = load_json(os.path.join(path, "config.json"))
    except OSError:  # unreadable: vLLM's own loading reports it
        return None
    if problem is None and config.get("speculators_model_type") == "peagle":
        return config
    return None


def preflight_dir(path: str) -> dict[str, Any] | None:
    """Raise ``PEagleCheckpointError`` if the local PEagle checkpoint at ``path``
    would fail in vLLM.  Returns its config.json, or None for anything that is
    not a local PEagle checkpoint."""
    path = os.fspath(path)
    config = _peagle_config(path) if os.path.isdir(path) else None
    if config is None:
        return None
    stat = os.stat(os.path.join(path, "config.json"))
    key = (os.path.realpath(path), stat.st_mtime_ns, stat.st_size)
    if key in _passed:
        return config
    report = check_checkpoint(path)
    problems = report.problems or release_problems(report.config, report.verifier_config)
    if problems:
        raise PEagleCheckpointError(repr(path), problems)
    _passed.add(key)
    return config


def preflight_config(source: str, config_dict: dict[str, Any]) -> None:
    """Config-level and release checks for a PEagle config known only as a dict
    (a hub checkpoint)."""
    if config_dict.get("speculators_model_type") != "peagle":
        return
    problems = config_problems(config_dict) or release_problems(config_dict)
    if problems:
        raise PEagleCheckpointError(repr(source), problems)


def _hub_peagle_config(model: str, arguments: dict[str, Any]) -> dict[str, Any] | None:
    """The config.json of a PEagle checkpoint named by hub id, read as vLLM's
    ``maybe_override_with_speculators`` reads it (offline where the hub is), or
    None (not PEagle, or unreadable: vLLM's own call reports that)."""
    try:
        import huggingface_hub
        from transformers import PretrainedConfig

        config_dict, _ = PretrainedConfig.get_config_dict(
            model, revision=arguments.get("revision"), token=arguments.get("hf_token"),
            local_files_only=huggingface_hub.constants.HF_HUB_OFFLINE)
    except Exception:  # noqa: BLE001 - vLLM's own read reports it
        return None
    if config_dict.get("speculators_model_type") != "peagle":
        return None
    preflight_config(model, config_dict)
    return config_dict


def _resolve_user_config(model: Any, user: Any, arguments: dict[str, Any]) -> Any:
    """Check the checkpoint(s) and the user's speculative_config; returns the
    speculative_config to hand vLLM."""
    checkpoint = preflight_dir(model) if isinstance(model, (str, os.PathLike)) else None
    if checkpoint is None and isinstance(model, str) and not os.path.exists(model):
        checkpoint = _hub_peagle_config(model, arguments)
    if checkpoint is not None:
        resolved = speculative_config.for_checkpoint(repr(os.fspath(model)), checkpoint,
                                                     os.fspath(model), user)
    elif isinstance(user, dict) and isinstance(user.get("model"), (str, os.PathLike)):
        draft = preflight_dir(user["model"])
        source = repr(os.fspath(user["model"]))
        if draft is None:
            # Not a speculators PEagle draft: perhaps one in vLLM's Eagle3 format.
            resolved = speculative_config.for_native_draft(source, user)
        else:
            resolved = speculative_config.for_explicit_draft(source, draft, user)
    else:
        return user
    for line in resolved.info:
        logger.info("vllm-peagle: %s", line)
    for line in resolved.warnings:
        logger.warning("vllm-peagle: %s", line)
    return resolved.speculative_config


def _wrap_maybe_override(original):
    signature = inspect.signature(original)

    @functools.wraps(original)
    def maybe_override_with_speculators(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        user = bound.arguments.get("vllm_speculative_config")
        resolved = _resolve_user_config(bound.arguments["model"], user, bound.arguments)
        if resolved is not user:
            bound.arguments["vllm_speculative_config"] = resolved
        return original(*bound.args, **bound.kwargs)

    setattr(maybe_override_with_speculators, _WRAPPED, True)
    return maybe_override_with_speculators


def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
    path = os.fspath(pretrained_model_name_or_path)
    if os.path.isdir(path):
        preflight_dir(path)
    else:
        try:
            from vllm.transformers_utils.utils import without_trust_remote_code
        except ImportError:  # vLLM < 0.21 passes kwargs through as they are
            without_trust_remote_code = dict
        try:
            config_dict, _ = cls.get_config_dict(path, **without_trust_remote_code(kwargs))
        except Exception:  # unreachable or not a config: vLLM's own call reports it
            config_dict = {}
        preflight_config(path, config_dict)
    return getattr(cls, _ORIGINAL_FROM_PRETRAINED)(pretrained_model_name_or_path, **kwargs)


def apply(force: bool) -> str:
    """Install both hooks (``force`` changes nothing: vLLM has no pre-flight).

    Returns "installed"."""
    from vllm.transformers_utils.configs.speculators.base import SpeculatorsConfig

    from vllm_peagle.transformers_utils.config import install_maybe_override

    install_maybe_override(_wrap_maybe_override, _WRAPPED)
    if _ORIGINAL_FROM_PRETRAINED not in SpeculatorsConfig.__dict__:
        setattr(SpeculatorsConfig, _ORIGINAL_FROM_PRETRAINED,
                inspect.getattr_static(SpeculatorsConfig, "from_pretrained"))
        SpeculatorsConfig.from_pretrained = classmethod(from_pretrained)
    return "installed"
