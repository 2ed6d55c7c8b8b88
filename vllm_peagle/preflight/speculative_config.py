"""A user's ``speculative_config`` with a PEagle draft (beyond upstream).

Two ways to run a PEagle draft, both checked here before vLLM sees the dict:

- the checkpoint as the model, K or other fields from the user:
  ``LLM(model=<peagle>, speculative_config={"num_speculative_tokens": 5})``.
  vLLM (0.29.0+, or this package's ``transformers_utils/config.py`` patch)
  merges the user's fields into the checkpoint's and locks ``method`` and
  ``model``; PEagle also needs ``parallel_drafting`` locked, which upstream
  does not do.  A user field that contradicts the checkpoint is an error, not
  silently overwritten;
- the draft given explicitly: ``LLM(model=<verifier>, speculative_config=
  {"model": <peagle>, ...})``.  ``method`` (absent, ``"peagle"`` or
  ``"eagle3"``) becomes ``"eagle3"`` and ``parallel_drafting`` (absent) becomes
  true, each with an INFO line; ``parallel_drafting: false`` is an error: a
  PEagle draft run sequentially drafts positions 2..K without the mask token
  it was trained with, a silent loss of acceptance.

Everywhere: ``num_speculative_tokens`` must be a positive integer; a K above
the checkpoint's own ``speculative_tokens`` (the depth it records) is allowed
with a WARNING.  Small pure functions: a dict in, a dict and notes out, or a
``SpeculativeConfigError`` (a ``ValueError``) naming the field, its value and
the fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vllm_peagle.features import PEAGLE_METHOD, peagle_method_fields

# What a user may call a PEagle draft's method.
PEAGLE_METHODS = ("eagle3", PEAGLE_METHOD)


class SpeculativeConfigError(ValueError):
    def __init__(self, source: str, field_name: str, message: str):
        self.field = f"speculative_config.{field_name}"
        super().__init__(f"{source}: {self.field}: {message}")


@dataclass
class Resolved:
    """The dict to hand vLLM and what to log about it."""
    speculative_config: dict[str, Any] | None
    info: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def checkpoint_k(config: dict[str, Any]) -> int:
    return config["speculators_config"]["proposal_methods"][0]["speculative_tokens"]


def _check_k(source: str, user: dict[str, Any], trained_k: int, out: Resolved) -> None:
    k = user["num_speculative_tokens"]
    if not isinstance(k, int) or isinstance(k, bool) or k <= 0:
        raise SpeculativeConfigError(
            source, "num_speculative_tokens", f"is {k!r} ({type(k).__name__}); it must be a "
            f"positive integer, the number of draft tokens K. Fix: e.g. {trained_k}, the "
            "checkpoint's own K")
    if k > trained_k:
        out.warnings.append(
            f"{source}: num_speculative_tokens={k} is more than the {trained_k} draft tokens "
            "the checkpoint records (speculators_config.proposal_methods[0]."
            f"speculative_tokens); positions past {trained_k} may never have been trained")


def _check_method(source: str, user: dict[str, Any]) -> None:
    method = user.get("method")
    if method is not None and method not in PEAGLE_METHODS:
        raise SpeculativeConfigError(
            source, "method", f"is {method!r}, but the draft is a PEagle checkpoint, which "
            f"vLLM runs as {_describe(peagle_method_fields())}. Fix: drop method, or set it to "
            "\"eagle3\" or \"peagle\"")


def _check_parallel(source: str, user: dict[str, Any]) -> None:
    parallel = user.get("parallel_drafting")
    if parallel is not None and parallel is not True:
        raise SpeculativeConfigError(
            source, "parallel_drafting", f"is {parallel!r}, but the draft is a PEagle "
            "checkpoint: trained to draft all K tokens in one pass, it drafts badly one "
            "token at a time. Fix: drop parallel_drafting or set it true")


def _describe(fields: dict[str, Any]) -> str:
    if fields.get("parallel_drafting"):
        return f"{fields['method']!r} with parallel drafting"
    return f"{fields['method']!r} (this package's V2 speculator)"


def _name_as_peagle(source: str, given: dict[str, Any], out: Resolved) -> None:
    """Name the draft's method as the installed vLLM runs PEagle: eagle3 with
    parallel drafting (0.16-0.33), or this package's ``peagle`` V2 speculator
    (0.34+, where parallel_drafting is refused for eagle3)."""
    fields = peagle_method_fields()
    method = given.get("method")
    if method is None:
        out.info.append(f"{source}: method not given; a PEagle draft runs as "
                        f"{_describe(fields)}")
    elif method != fields["method"]:
        out.info.append(f"{source}: method {method!r} runs as {_describe(fields)}")
    if "parallel_drafting" in fields and "parallel_drafting" not in given:
        out.info.append(f"{source}: parallel_drafting turned on for the PEagle draft")
    given.pop("parallel_drafting", None)
    given.update(fields)


def for_native_draft(source: str, user: dict[str, Any]) -> Resolved:
    """``speculative_config`` naming a P-EAGLE draft in vLLM's own Eagle3 format
    (``ptd_token_id``) the way its card says, ``{"method": "eagle3",
    "parallel_drafting": true}``: unchanged where vLLM runs that (0.16-0.33),
    the ``peagle`` method where this package's V2 speculator runs it (0.34+)."""
    if not (user.get("parallel_drafting") is True and user.get("method") in PEAGLE_METHODS):
        return Resolved(user)
    out = Resolved(dict(user))
    _name_as_peagle(source, out.speculative_config, out)
    return out


def for_checkpoint(source: str, checkpoint: dict[str, Any], model: str,
                   user: Any) -> Resolved:
    """The user's speculative_config given with the PEagle checkpoint at
    ``model`` as the model.  Returns the fields vLLM should merge."""
    fields = peagle_method_fields()
    if not isinstance(user, dict):
        if fields["method"] != PEAGLE_METHOD:
            return Resolved(user)
        user = {}
    out = Resolved(None)
    given = dict(user)
    other = given.get("model")
    if other is not None and str(other) != str(model):
        raise SpeculativeConfigError(
            source, "model", f"is {other!r}, but the model is the PEagle checkpoint {model!r}, "
            "which is its own draft. Fix: drop speculative_config.model, or pass the "
            "verifier as the model and the draft as speculative_config.model")
    _check_method(source, given)
    _check_parallel(source, given)
    if "num_speculative_tokens" in given:
        _check_k(source, given, checkpoint_k(checkpoint), out)
    # The checkpoint dictates these; what is left are the user's own fields.
    for locked in ("method", "model", "parallel_drafting"):
        given.pop(locked, None)
    if given:
        applied = ", ".join(f"{k}={v!r}" for k, v in sorted(given.items()))
        out.info.append(f"{source}: applied user speculative_config fields {applied} "
                        "(method, model and parallel_drafting come from the checkpoint)")
    if fields["method"] == PEAGLE_METHOD:
        # vLLM >= 0.34 runs the checkpoint (an eagle3 one to it) as the custom
        # method the user's dict names: this package's V2 speculator.
        given["method"] = PEAGLE_METHOD
        out.info.append(f"{source}: runs as {_describe(fields)}")
    out.speculative_config = given
    return out


def for_explicit_draft(source: str, draft: dict[str, Any], user: dict[str, Any]) -> Resolved:
    """``speculative_config`` whose ``model`` is the PEagle draft ``draft``
    (its config.json).  Returns the completed dict."""
    out = Resolved(None)
    given = dict(user)
    _check_method(source, given)
    _check_parallel(source, given)
    _name_as_peagle(source, given, out)
    trained_k = checkpoint_k(draft)
    if given.get("num_speculative_tokens") is None:
        given["num_speculative_tokens"] = trained_k
        out.info.append(f"{source}: num_speculative_tokens not given; using the "
                        f"checkpoint's {trained_k}")
    else:
        _check_k(source, given, trained_k, out)
    out.speculative_config = given
    return out
