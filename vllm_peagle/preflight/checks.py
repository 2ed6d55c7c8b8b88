"""The pre-flight checks (beyond upstream): a speculators PEagle checkpoint
against its own config, its verifier, its safetensors headers and the installed
vLLM, each problem one ``Problem`` naming the field, the value and the fix.

vLLM reads these checkpoints with few checks, so a malformed one fails late and
far from its cause: a bare ``KeyError: 'mask_token_id'``, or inside a worker
``shape '[-1, 384]' is invalid for input of size 3328`` when the verifier's
default aux layers collapse.  ``vllm-peagle check`` prints these problems and
the pre-flight hooks (``vllm_peagle.preflight``) raise them, in the same words.

Levels, each usable alone:
- ``config_problems``: the draft's config.json by itself;
- ``verifier_problems``: against the verifier's config.json;
- ``weights_problems``: against the safetensors headers (never the tensors);
- ``release_problems``: against what the installed vLLM can run.
"""

from __future__ import annotations

import json
import os
import re
import struct
from dataclasses import dataclass
from typing import Any

from vllm_peagle.transformers_utils.configs.speculators.algos import (
    PEAGLE_ARCHITECTURES,
    update_peagle,
)

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


class SafetensorsHeaderError(ValueError):
    pass


# safetensors' prefix on every header error; the rest says what is wrong.
_SAFETENSORS_PREFIX = "Error while deserializing header: "


def read_safetensors_header(path: str) -> dict[str, list[int]]:
    """Tensor name -> shape, from the header alone (``safetensors.safe_open``
    maps the file and parses the header; no tensor is read).

    Raises ``SafetensorsHeaderError`` saying what is wrong with the file."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="numpy") as f:
            return {name: list(f.get_slice(name).get_shape()) for name in f.keys()}
    except SafetensorError as e:
        detail = str(e).removeprefix(_SAFETENSORS_PREFIX)
    except OSError as e:
        raise SafetensorsHeaderError(f"cannot be read ({e.strerror or e})") from None
    if "not fully covered" in detail:
        raise SafetensorsHeaderError(_coverage(path)) from None
    raise SafetensorsHeaderError(f"is not a valid safetensors file ({detail})") from None


def _coverage(path: str) -> str:
    """Why a file whose header safetensors accepted does not match its size.

    safetensors has validated the header (length, UTF-8, JSON, contiguous
    offsets) by the time it reports this; only the sizes are left to say."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    need = 8 + n + max((t["data_offsets"][1] for t in header.values()), default=0)
    if size < need:
        return f"is truncated: its tensors need {need} bytes, the file has {size}"
    return (f"has {size - need} bytes after its last tensor ({need} expected): "
            "not a file safetensors wrote")


def weights_problems(draft_dir: str, config_dict: dict[str, Any],
                     verifier_config: dict[str, Any] | None) -> list[Problem]:
    """Checks of the draft's safetensors headers against its config.

    Assumes ``config_problems`` found nothing."""
    files = sorted(f for f in os.listdir(draft_dir) if f.endswith(".safetensors"))
    if not files:
        return []
    problems: list[Problem] = []
    tensors: dict[str, list[int]] = {}
    for name in files:
        try:
            tensors.update(read_safetensors_header(os.path.join(draft_dir, name)))
        except SafetensorsHeaderError as e:
            problems.append(Problem(name, f"{e}. Fix: copy or download the weights again"))
    if problems:
        return problems
    add = lambda field, msg: problems.append(Problem(field, msg))  # noqa: E731

    layer = config_dict["transformer_layer_config"]
    hidden = layer.get("hidden_size")
    target = text_config(verifier_config or {})
    target_hidden = config_dict.get("target_hidden_size") or target.get("hidden_size") or hidden
    vocab = target.get("vocab_size") or layer.get("vocab_size")
    draft_vocab = config_dict.get("draft_vocab_size") or vocab
    n_aux = expected_num_aux(config_dict)
    fc_in = n_aux * target_hidden if _is_int(target_hidden) else None

    def shape(name: str) -> list[int] | None:
        return tensors.get(name)

    fc = shape("fc.weight")
    if fc is not None and fc_in is not None and fc != [hidden, fc_in]:
        add("fc.weight", f"has shape {fc} but the config says [hidden_size, n_aux * "
            f"target_hidden_size] = [{hidden}, {n_aux} * {target_hidden}] = [{hidden}, {fc_in}] "
            "(n_aux: num_aux_hidden_states, else the aux layer ids' count, else 3). "
            "Fix: set target_hidden_size / num_aux_hidden_states to match the weights")
    mask = shape("mask_hidden")
    if mask is None:
        add("mask_hidden", "is missing from the weights; PEagle's parallel drafting needs it "
            "(the hidden state fed at mask positions). Fix: export it with the draft")
    elif fc_in is not None and _numel(mask) != fc_in:
        add("mask_hidden", f"has shape {mask} ({_numel(mask)} elements) but must hold "
            f"n_aux * target_hidden_size = {fc_in}")
    lm_head = shape("lm_head.weight")
    if lm_head is not None and _is_int(draft_vocab) and lm_head[0] != draft_vocab:
        add("lm_head.weight", f"has {lm_head[0]} rows but draft_vocab_size is {draft_vocab}. "
            "Fix: set draft_vocab_size to the lm_head's rows")
    embed = shape("embed_tokens.weight")
    if embed is not None and _is_int(vocab) and embed[0] != vocab:
        add("embed_tokens.weight", f"has {embed[0]} rows but the verifier's vocab_size is "
            f"{vocab}; the draft embeds verifier token ids")
    problems += _qk_norm_problems(layer, tensors)
    if _is_int(vocab) and _is_int(draft_vocab) and draft_vocab < vocab:
        missing = [t for t in ("d2t", "t2d") if t not in tensors]
        if missing:
            add("draft_vocab_size", f"is {draft_vocab} < the verifier's {vocab} but the "
                f"weights lack {missing}, the draft-to-target vocabulary maps. Fix: export them")
    return problems


def _qk_norm_problems(layer: dict[str, Any], tensors: dict[str, list[int]]) -> list[Problem]:
    """A qwen3-arch draft carries per-head q_norm/k_norm in every layer; a
    llama-arch one has none (the Llama drafter has nowhere to put them)."""
    model_type = layer.get("model_type", "llama")
    # The attention layers the weights hold (not the config's count: a malformed
    # num_hidden_layers, 10**12 say, must not size anything here).
    indices = sorted({int(m.group(1)) for n in tensors
                      if (m := re.match(r"layers\.(\d+)\.self_attn\.", n))}
                     | ({0} if any(n.startswith("midlayer.self_attn.") for n in tensors)
                        else set())) or [0]
    names = [f"layers.{i}.self_attn.{norm}.weight"
             for i in indices for norm in ("q_norm", "k_norm")]
    names_0 = {n.replace("layers.0.", "midlayer.") for n in names}
    present = [n for n in tensors if n in names or n in names_0]
    if model_type == "qwen3" and len(present) < len(names):
        missing = [n for n in names if n not in tensors and
                   n.replace("layers.0.", "midlayer.") not in tensors]
        return [Problem("transformer_layer_config.model_type",
                        f"is 'qwen3' but the weights lack {missing}, which Qwen3 layers "
                        "have. Fix: export the draft again, or set model_type to the "
                        "layers it was trained with (llama)")]
    if model_type == "llama" and present:
        return [Problem("transformer_layer_config.model_type",
                        f"is 'llama' but the weights carry {sorted(present)}, Qwen3 "
                        "layers' q/k norms. Fix: set \"model_type\": \"qwen3\" in "
                        "transformer_layer_config")]
    return []


def _numel(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


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


def release_problems(config_dict: dict[str, Any],
                     verifier_config: dict[str, Any] | None = None) -> list[Problem]:
    """What the installed vLLM lacks to run this (well-formed) checkpoint.

    Feature probes, never version strings; each problem names what is missing
    and where to get it, and only a definite answer refuses (a probe answers None where it cannot
    tell, ``features.probe``).  A Qwen3 draft needs nothing more: where vLLM has no
    Qwen3 drafter (before 0.24.0), this package registers its own."""
    from vllm_peagle import MODE_ENV, features

    problems: list[Problem] = []
    if features.has_parallel_drafting() is False:
        problems.append(Problem(
            "speculators_model_type",
            "is 'peagle', but the installed vLLM has no parallel drafting "
            "(SpeculativeConfig.parallel_drafting). Fix: PEagle needs vLLM >= 0.16; "
            "upgrade vLLM"))
    options = features.eagle3_drafter_options()
    for option, release in features.EAGLE3_DRAFTER_OPTIONS.items():
        if config_dict.get(option) is True and options is not None and option not in options:
            problems.append(Problem(
                option, f"is true, but the installed vLLM's Eagle3 drafter (llama_eagle3.py) "
                f"has no {option} option: the draft would run without it, its greedy "
                f"output still right but its acceptance lower. Fix: use vLLM >= {release}"))
    on_v2_speculator = features.peagle_method_fields()["method"] == features.PEAGLE_METHOD
    if features.has_v1_parallel_drafter() is False and not on_v2_speculator:
        problems.append(Problem(
            "speculators_model_type",
            "is 'peagle', but the installed vLLM has no parallel-drafting runner (vLLM "
            "0.34.0 removed P-EAGLE) and this package's V2 PEagle speculator is not "
            "registered in it (see the vllm-peagle WARNING at start-up). Fix: keep "
            f"{MODE_ENV} unset or 'auto', or use vLLM 0.22.0-0.33.0"))
    problems += _drafter_size_problems(config_dict, verifier_config)
    v2 = os.environ.get("VLLM_USE_V2_MODEL_RUNNER", "").strip().lower()
    if v2 in ("1", "true") and not on_v2_speculator and \
            features.v2_runner_excludes_parallel_drafting() is False:
        problems.append(Problem(
            "VLLM_USE_V2_MODEL_RUNNER",
            f"is {os.environ['VLLM_USE_V2_MODEL_RUNNER']!r}: the installed vLLM lets its V2 "
            "model runner take parallel drafting, where PEagle's acceptance collapses "
            "(vllm-project/vllm#43010; vLLM 0.22.0 refuses the combination). "
            "Fix: unset VLLM_USE_V2_MODEL_RUNNER"))
    for arch in (verifier_config or {}).get("architectures") or []:
        supported = features.eagle3_verifier_support(arch)
        if supported is False:
            problems.append(Problem(
                "speculators_config.verifier.name_or_path",
                f"is a {arch}, which the installed vLLM cannot tap for Eagle3 aux hidden "
                f"states ({arch} does not implement SupportsEagle3 here). Fix: use a vLLM "
                f"release whose {arch} supports Eagle3, or a verifier architecture that does"))
    return problems


def _drafter_size_problems(config_dict: dict[str, Any],
                           verifier_config: dict[str, Any] | None) -> list[Problem]:
    """Whether the installed release's drafter for this checkpoint builds fc
    and mask_hidden for the inputs the checkpoint has (its aux count times the
    target's width): asked of the drafter itself (``features.drafter_input_sizes``);
    an unknown answer refuses nothing."""
    from vllm_peagle import features

    layer = config_dict["transformer_layer_config"]
    hidden = layer.get("hidden_size")
    target = text_config(verifier_config or {})
    target_hidden = config_dict.get("target_hidden_size") or target.get("hidden_size") or hidden
    n_aux = expected_num_aux(config_dict)
    if not (_is_int(hidden) and _is_int(target_hidden)):
        return []
    sizes = features.drafter_input_sizes(config_dict, update_peagle)
    if sizes is None:
        return []
    want = n_aux * target_hidden
    fc, mask = sizes
    problems = []
    if fc != want:
        ids = config_dict.get("eagle_aux_hidden_state_layer_ids")
        field = ("eagle_aux_hidden_state_layer_ids" if ids and "num_aux_hidden_states" not in layer
                 else "transformer_layer_config.num_aux_hidden_states")
        value = ids if field == "eagle_aux_hidden_state_layer_ids" else n_aux
        problems.append(Problem(
            field, f"is {value!r}: the checkpoint's fc takes {n_aux} aux hidden states of "
            f"{target_hidden} ({want} inputs), but the installed vLLM's drafter for it builds "
            f"fc for {fc}. Fix: use vLLM >= 0.22.0 (Llama and Qwen3 drafts, seen on "
            "0.22.0 and 0.23.0 on a GPU)"))
    elif mask is not None and mask != want:
        problems.append(Problem(
            "target_hidden_size", f"is {config_dict.get('target_hidden_size')!r}, but the "
            f"installed vLLM's drafter sizes mask_hidden as {mask}, not {n_aux} * "
            f"{target_hidden} = {want}. Fix: use vLLM >= 0.22.0"))
    return problems
