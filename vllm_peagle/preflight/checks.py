"""The pre-flight checks (beyond upstream): a speculators PEagle checkpoint
against its own config, its verifier, its safetensors headers and the installed
vLLM, each problem one ``Problem`` naming the field, the value and the fix.

vLLM reads these checkpoints with few checks, so a malformed one fails late and
far from its cause: a bare ``KeyError: 'mask_token_id'``, or inside a worker
``shape '[-1, 384]' is invalid for input of size 3328`` when the verifier's
default aux layers collapse.  ``vllm-peagle check`` prints these problems and
the pre-flight hooks (``vllm_peagle.preflight``) raise them, in the same words.

The levels, one module each, each usable alone:
- ``config``: the draft's config.json by itself, then against the verifier's;
- ``weights``: against the safetensors headers (never the tensors);
- ``release``: against what the installed vLLM can run.
This module reads a checkpoint directory and runs the first two.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from vllm_peagle.preflight.config import Problem, config_problems, verifier_problems
from vllm_peagle.preflight.weights import weights_problems


def load_json(path: str) -> tuple[dict[str, Any] | None, Problem | None]:
    where = os.path.basename(path)
    if not os.path.isfile(path):
        return None, Problem(where, f"not found at {path}")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        return None, Problem(where, f"is not valid JSON ({e}). Fix: restore the file")
    if not isinstance(data, dict):
        return None, Problem(where, f"holds a {type(data).__name__}, not a JSON object")
    return data, None


def local_verifier_dir(name: str) -> tuple[str | None, Problem | None]:
    """(directory, None) for a local verifier, (None, None) for a hub id, and a
    problem for a path that is not a directory."""
    path = os.path.expanduser(name)
    if os.path.isdir(path):
        return path, None
    if os.path.isabs(path) or name.startswith((".", "~")) or name.count("/") > 1:
        return None, Problem("speculators_config.verifier.name_or_path",
                             f"is {name!r}, which is not a directory. Fix: set it to the "
                             "verifier's local directory or hub id")
    return None, None


@dataclass
class CheckReport:
    draft_dir: str
    config: dict[str, Any] | None
    verifier_dir: str | None
    verifier_config: dict[str, Any] | None
    problems: list[Problem]
    notes: list[str]


def check_checkpoint(draft_dir: str, verifier_dir: str | None = None) -> CheckReport:
    """All checks on a local draft directory; never raises for a bad checkpoint."""
    notes: list[str] = []
    config, problem = load_json(os.path.join(draft_dir, "config.json"))
    if problem is not None:
        return CheckReport(draft_dir, None, None, None, [problem], notes)
    problems = config_problems(config)
    if problems:
        return CheckReport(draft_dir, config, None, None, problems, notes)

    if verifier_dir is None:
        name = config["speculators_config"]["verifier"]["name_or_path"]
        verifier_dir, problem = local_verifier_dir(name)
        if problem is not None:
            return CheckReport(draft_dir, config, None, None, [problem], notes)
        if verifier_dir is None:
            notes.append(f"verifier {name!r} is not a local directory: verifier checks skipped "
                         "(pass --verifier DIR to run them)")
    verifier_config = None
    if verifier_dir is not None:
        if not os.path.isdir(verifier_dir):
            problems.append(Problem("speculators_config.verifier.name_or_path",
                                    f"points at {verifier_dir!r}, which is not a directory. "
                                    "Fix: set it to the verifier's path or hub id"))
        else:
            verifier_config, problem = load_json(os.path.join(verifier_dir, "config.json"))
            if problem is not None:
                problems.append(Problem(f"verifier {problem.field}", problem.message))
            else:
                problems += verifier_problems(config, verifier_config)
    problems += weights_problems(draft_dir, config, verifier_config)
    return CheckReport(draft_dir, config, verifier_dir, verifier_config, problems, notes)
