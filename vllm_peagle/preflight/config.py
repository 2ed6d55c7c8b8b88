"""Pre-flight, first level (beyond upstream): a PEagle checkpoint's config.json by
itself (``config_problems``), then against its verifier's config.json
(``verifier_problems``); each problem one ``Problem`` naming the field, the
value and the fix.  The rules on the config's own numbers live here once
(vLLM's default aux layers, the aux count the fc takes, its input width)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vllm_peagle.transformers_utils.configs.speculators.algos import PEAGLE_ARCHITECTURES

# speculators_model_type values that are valid speculators checkpoints, just not PEagle.
OTHER_SPECULATOR_TYPES = {"eagle", "eagle3", "dflash", "dflash2", "mtp", "mlp_speculator", "dspark"}

# Upstream's Eagle3 drafter sizes its fc for this many aux hidden states unless
# the draft config says ``num_aux_hidden_states`` (llama_eagle3.py).
VLLM_DEFAULT_NUM_AUX = 3


@dataclass(frozen=True)
class Problem:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class PEagleCheckpointError(ValueError):
    """A PEagle checkpoint that vLLM would fail on; one line per problem."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"Invalid PEagle checkpoint {source}:\n{lines}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _show(value: Any) -> str:
    if value is None:
        return "missing"
    return f"{value!r} ({type(value).__name__})"


def vllm_default_aux_layer_ids(num_layers: int) -> tuple[int, ...]:
    """The aux layers vLLM taps when the draft names none
    (``SupportsEagle3.get_eagle3_default_aux_hidden_state_layers``)."""
    return (2, num_layers // 2, num_layers - 3)


def config_problems(config_dict: dict[str, Any]) -> list[Problem]:
    """Checks that need nothing but the draft's config.json."""
    problems: list[Problem] = []
    add = lambda field, msg: problems.append(Problem(field, msg))  # noqa: E731

    kind = config_dict.get("speculators_model_type")
    if kind != "peagle":
        # A list or an object here is malformed too (and unhashable: no set lookup).
        if isinstance(kind, str) and kind in OTHER_SPECULATOR_TYPES:
            add("speculators_model_type", f"is {kind!r}: a speculators checkpoint, but not "
                "PEagle; vLLM runs it without this plugin (vllm serve <dir>)")
        else:
            add("speculators_model_type", f"is {_show(kind)}; a PEagle checkpoint says "
                "\"peagle\". Fix: set \"speculators_model_type\": \"peagle\" in config.json")
        return problems

    spec = config_dict.get("speculators_config")
    if not isinstance(spec, dict):
        add("speculators_config", f"is {_show(spec)}; it must be an object with "
            "proposal_methods and verifier. Fix: re-export the checkpoint with speculators")
    else:
        methods = spec.get("proposal_methods")
        if not isinstance(methods, list) or not methods or not isinstance(methods[0], dict):
            add("speculators_config.proposal_methods", f"is {_show(methods)}; it must be a "
                "non-empty list like [{\"proposal_type\": \"greedy\", \"speculative_tokens\": 7}]")
        else:
            k = methods[0].get("speculative_tokens")
            if not _is_int(k) or k <= 0:
                add("speculators_config.proposal_methods[0].speculative_tokens",
                    f"is {_show(k)}; it must be a positive integer, the number of draft "
                    "tokens K. Fix: e.g. \"speculative_tokens\": 7")
        verifier = spec.get("verifier")
        name = verifier.get("name_or_path") if isinstance(verifier, dict) else None
        if not isinstance(name, str) or not name:
            add("speculators_config.verifier.name_or_path", f"is {_show(name)}; it must name "
                "the target model (hub id or local directory) the draft was trained on")

    layer = config_dict.get("transformer_layer_config")
    if not isinstance(layer, dict):
        add("transformer_layer_config", f"is {_show(layer)}; it must be the draft layer's "
            "HF config as an object (model_type, hidden_size, ...)")
    else:
        model_type = layer.get("model_type", "llama")
        if not isinstance(model_type, str) or model_type not in PEAGLE_ARCHITECTURES:
            add("transformer_layer_config.model_type", f"is {_show(model_type)}; PEagle "
                f"supports {sorted(PEAGLE_ARCHITECTURES)}. Fix: export the draft with a "
                "llama or qwen3 decoder layer")
        for key in ("hidden_size", "num_aux_hidden_states"):
            if key in layer and layer[key] is not None and (not _is_int(layer[key]) or layer[key] <= 0):
                add(f"transformer_layer_config.{key}",
                    f"is {_show(layer[key])}; it must be a positive integer")

    if "mask_token_id" not in config_dict:
        add("mask_token_id", "is missing; PEagle fills draft positions 2..K with this "
            "token. Fix: add \"mask_token_id\": <id of the mask token the draft was trained with>")
    else:
        mask = config_dict["mask_token_id"]
        if not _is_int(mask) or mask < 0:
            add("mask_token_id", f"is {_show(mask)}; it must be a non-negative integer token "
                "id. Fix: write it as a JSON integer, e.g. \"mask_token_id\": 128002")

    for key in ("draft_vocab_size", "target_hidden_size"):
        value = config_dict.get(key)
        if value is not None and (not _is_int(value) or value <= 0):
            add(key, f"is {_show(value)}; it must be a positive integer or absent")

    for key in ("norm_before_residual", "norm_before_fc", "fc_norm", "norm_output"):
        value = config_dict.get(key)
        if value is not None and not isinstance(value, bool):
            add(key, f"is {_show(value)}; it must be true or false")

    ids = config_dict.get("eagle_aux_hidden_state_layer_ids")
    if ids is not None:
        if not isinstance(ids, list) or not all(_is_int(i) and i >= 0 for i in ids) or not ids:
            add("eagle_aux_hidden_state_layer_ids", f"is {_show(ids)}; it must be a non-empty "
                "list of non-negative verifier layer indices, e.g. [2, 16, 29]")
        elif len(set(ids)) != len(ids):
            add("eagle_aux_hidden_state_layer_ids", f"is {ids!r}; the ids must be distinct "
                "(vLLM taps each layer once)")
    return problems


def expected_num_aux(config_dict: dict[str, Any]) -> int:
    """How many aux hidden states the checkpoint's fc takes, by its own config:
    ``transformer_layer_config.num_aux_hidden_states``, else one per
    ``eagle_aux_hidden_state_layer_ids`` entry (speculators writes the ids and
    an fc to match, for any tap count), else vLLM's default of 3."""
    layer = config_dict.get("transformer_layer_config") or {}
    n = layer.get("num_aux_hidden_states") if isinstance(layer, dict) else None
    if _is_int(n) and n > 0:
        return n
    ids = config_dict.get("eagle_aux_hidden_state_layer_ids")
    return len(ids) if isinstance(ids, list) and ids else VLLM_DEFAULT_NUM_AUX


def text_config(verifier_config: dict[str, Any]) -> dict[str, Any]:
    """The language-model part of a verifier config (multimodal configs nest it)."""
    inner = verifier_config.get("text_config")
    return inner if isinstance(inner, dict) else verifier_config


def aux_layer_ids(config_dict: dict[str, Any], num_layers: int) -> tuple[tuple[int, ...], bool]:
    """(ids, explicit): the aux layers vLLM will tap on a verifier of ``num_layers``."""
    ids = config_dict.get("eagle_aux_hidden_state_layer_ids")
    if ids:
        return tuple(ids), True
    return vllm_default_aux_layer_ids(num_layers), False


def verifier_problems(config_dict: dict[str, Any], verifier_config: dict[str, Any]) -> list[Problem]:
    """Checks of the draft against its verifier's config.json.

    Assumes ``config_problems`` found nothing."""
    problems: list[Problem] = []
    add = lambda field, msg: problems.append(Problem(field, msg))  # noqa: E731
    target = text_config(verifier_config)
    hidden = target.get("hidden_size")
    layers = target.get("num_hidden_layers")
    vocab = target.get("vocab_size")

    target_hidden = config_dict.get("target_hidden_size")
    if target_hidden is not None and _is_int(hidden) and target_hidden != hidden:
        add("target_hidden_size", f"is {target_hidden} but the verifier's hidden_size is "
            f"{hidden}. Fix: set \"target_hidden_size\": {hidden}, or point "
            "verifier.name_or_path at the model the draft was trained on")

    if _is_int(layers):
        ids, explicit = aux_layer_ids(config_dict, layers)
        n_aux = expected_num_aux(config_dict)
        if explicit:
            outside = [i for i in ids if not 0 <= i < layers]
            if outside:
                add("eagle_aux_hidden_state_layer_ids", f"is {list(ids)} but the verifier has "
                    f"{layers} layers (ids 0..{layers - 1}); {outside} are out of range. "
                    "Fix: use layer ids of the verifier the draft was trained on")
            elif len(ids) != n_aux:
                add("eagle_aux_hidden_state_layer_ids", f"names {len(ids)} layers but the "
                    f"draft's fc takes {n_aux} aux hidden states. Fix: list exactly {n_aux} "
                    "layer ids, or set transformer_layer_config.num_aux_hidden_states")
        elif any(i < 0 for i in ids) or len(set(ids)) != n_aux:
            add("eagle_aux_hidden_state_layer_ids", f"is absent, so vLLM taps its default layers "
                f"(2, L/2, L-3) = {list(ids)} of the verifier's {layers} layers: "
                f"{len(set(i for i in ids if i >= 0))} distinct valid layers where the draft "
                f"needs {n_aux}. Fix: add \"eagle_aux_hidden_state_layer_ids\" with {n_aux} "
                "distinct layer ids, or use a verifier with at least 8 layers")

    mask = config_dict.get("mask_token_id")
    if _is_int(vocab) and _is_int(mask) and mask >= vocab:
        add("mask_token_id", f"is {mask} but the verifier's vocab_size is {vocab}; the "
            f"mask token must be a verifier token id (0..{vocab - 1})")

    draft_vocab = config_dict.get("draft_vocab_size")
    if _is_int(vocab) and _is_int(draft_vocab) and draft_vocab > vocab:
        add("draft_vocab_size", f"is {draft_vocab}, larger than the verifier's vocab_size "
            f"{vocab}. Fix: draft_vocab_size must be <= {vocab}")
    return problems


def aux_inputs(config_dict: dict[str, Any],
               verifier_config: dict[str, Any] | None) -> tuple[int, Any]:
    """(n_aux, width): the checkpoint's fc takes n_aux aux hidden states of
    ``width`` each: ``target_hidden_size``, else the verifier's hidden_size,
    else the draft's own."""
    layer = config_dict["transformer_layer_config"]
    target = text_config(verifier_config or {})
    width = (config_dict.get("target_hidden_size") or target.get("hidden_size")
             or layer.get("hidden_size"))
    return expected_num_aux(config_dict), width
