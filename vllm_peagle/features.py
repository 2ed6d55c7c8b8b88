"""Feature probes: ask the installed vLLM what it has, never its version string.

Each probe imports only what it inspects and is cached, because vLLM calls the
plugin's ``register()`` in every process and the probes run from there.  Every
probe of the package (here and in the patch modules) is declared with
``@probe``: listed in ``PROBES``, and its answer is None where it raises.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import logging
import os
from typing import Callable

logger = logging.getLogger("vllm.plugins.peagle")

# Every probe, by ``module:name``: the function that asks vLLM.  The wrapper
# ``probe`` returns looks the function up here on each call (so a test can
# stand a broken one in, tests/broken_probes), and answers None where it raises.
PROBES: dict[str, Callable] = {}
_failed: set[str] = set()


def probe(fn: Callable) -> Callable:
    """Declare ``fn`` a probe: listed in ``PROBES``; called, it gives ``fn``'s
    answer, or None (unknown) where ``fn`` raises, with one WARNING per probe
    and process.  An unknown answer never makes the plugin refuse or break
    what vLLM would do: a probe that breaks on a new release costs a patch's
    precision, never vLLM's start."""
    name = f"{fn.__module__}:{fn.__qualname__}"
    PROBES[name] = fn

    @functools.wraps(fn)
    def answer(*args, **kwargs):
        try:
            return PROBES[name](*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - any failure is an unknown answer
            if name not in _failed:
                _failed.add(name)
                logger.warning("vllm-peagle: probe %s failed (%s: %s); taken as unknown",
                               name, type(e).__name__, e)
            return None
    return answer


def vllm_module_file(dotted: str) -> str | None:
    """The file of module ``vllm.<dotted>`` in the installed vLLM, or None.

    Looks at the files only, so probing ``model_executor.models.qwen3_eagle3``
    does not import vLLM's model package (and with it torch).
    """
    spec = importlib.util.find_spec("vllm")
    if spec is None or not spec.submodule_search_locations:
        return None
    parts = dotted.split(".")
    for root in spec.submodule_search_locations:
        base = os.path.join(root, *parts)
        for path in (base + ".py", os.path.join(base, "__init__.py")):
            if os.path.isfile(path):
                return path
    return None


def vllm_module_exists(dotted: str) -> bool:
    """True when ``vllm.<dotted>`` is a module file of the installed vLLM."""
    return vllm_module_file(dotted) is not None


@probe
def has_v1_parallel_drafter() -> bool:
    """vLLM 0.16-0.33: a V1 proposer that drafts in parallel (``v1/spec_decode/``
    with ``llm_base_proposer.py``, or ``eagle.py`` before it).  vLLM 0.34.0
    removed it with the V1 runner: PEagle then runs only on this package's V2
    speculator.  Looks at the files, importing nothing."""
    return any(vllm_module_exists(f"v1.spec_decode.{m}") for m in ("llm_base_proposer", "eagle"))


@probe
def v2_speculator_door():
    """vLLM >= 0.34's ``register_speculative_method`` (the V2 runner's door for
    a plugin's speculator), or None where the release has none."""
    try:
        from vllm.v1.worker.gpu.spec_decode import speculator_config
    except ImportError:
        return None
    return getattr(speculator_config, "register_speculative_method", None)


# How vLLM 0.16-0.33 name a PEagle draft; also the answer where the question fails.
V1_PEAGLE_FIELDS = {"method": "eagle3", "parallel_drafting": True}


def peagle_method_fields() -> dict:
    """``peagle_speculative_fields``, or vLLM 0.16-0.33's naming where that
    probe fails (vLLM then has its say)."""
    return dict(peagle_speculative_fields() or V1_PEAGLE_FIELDS)


@probe
def peagle_speculative_fields() -> dict:
    """How a PEagle draft is named in vLLM's ``SpeculativeConfig`` here: the
    ``peagle`` method where this package's V2 speculator is registered in the
    installed vLLM (>= 0.34, which refuses ``parallel_drafting`` for eagle3),
    else Eagle3 with parallel drafting (0.16-0.33).  Asked each time: it
    follows what ``register()`` installed."""
    door = v2_speculator_door()
    if door is not None:
        from vllm.v1.worker.gpu.spec_decode.speculator_config import (
            registered_speculative_methods,
        )

        if PEAGLE_METHOD in registered_speculative_methods():
            return {"method": PEAGLE_METHOD}
    return dict(V1_PEAGLE_FIELDS)


# The method name a user may give a PEagle draft, and this package's V2 speculator's.
PEAGLE_METHOD = "peagle"


@probe
@functools.cache
def has_parallel_drafting() -> bool:
    """vLLM >= 0.16: ``SpeculativeConfig`` has the ``parallel_drafting`` field
    that PEagle's one-pass drafting runs on."""
    from vllm.config import SpeculativeConfig

    if dataclasses.is_dataclass(SpeculativeConfig):
        return any(f.name == "parallel_drafting" for f in dataclasses.fields(SpeculativeConfig))
    return hasattr(SpeculativeConfig, "parallel_drafting")


# Draft-config options of the Llama Eagle3 drafter, and the first release whose
# llama_eagle3.py reads each (read in the released wheels).
EAGLE3_DRAFTER_OPTIONS = {"norm_before_fc": "0.18.0", "fc_norm": "0.22.0",
                          "norm_output": "0.22.0"}


class _SpyConfig:
    """A draft HF config that records the attributes a drafter reads of it."""

    def __init__(self, values: dict):
        object.__setattr__(self, "_values", dict(values))
        object.__setattr__(self, "reads", set())

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        self.reads.add(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self._values[name] = value

    def get(self, name, default=None):
        self.reads.add(name)
        return self._values.get(name, default)

    def get_text_config(self):
        return self


def _original_init(cls):
    """``cls.__init__`` as its module wrote it: vLLM's ``support_torch_compile``
    wraps it in a function of its own, which holds the original in a closure."""
    module_file = __import__(cls.__module__, fromlist=["_"]).__file__
    todo, seen = [cls.__init__], set()
    while todo:
        fn = todo.pop()
        if id(fn) in seen or not callable(fn):
            continue
        seen.add(id(fn))
        code = getattr(fn, "__code__", None)
        if code is not None and code.co_filename == module_file and code.co_name == "__init__":
            return fn
        todo += [cell.cell_contents for cell in (getattr(fn, "__closure__", None) or ())
                 if callable(getattr(cell, "cell_contents", None))]
    raise LookupError(f"no __init__ of {cls.__qualname__} in {module_file}")


def build_drafter(values: dict, drafter: str = "llama_eagle3:Eagle3LlamaForCausalLM",
                  target_layers: int = 4, target_vocab: int | None = None) -> dict:
    """Build the installed vLLM's Eagle3 drafter class for a draft config of
    ``values``, its heavy layers (embedding, linear, norm, decoder layer, LM
    head) stood in by empty modules, and report what it built: the config
    attributes it read, the ``fc`` input size, ``mask_hidden``'s size and the
    built drafter itself.

    The drafter's own ``__init__`` code runs (rebound to the stand-in layers),
    so the answer is the release's behaviour, wherever in the class it lives.
    Raises whatever the build raises: the caller treats that as unknown."""
    import types

    import torch

    module_name, class_name = drafter.split(":")
    module = __import__(f"vllm.model_executor.models.{module_name}", fromlist=["_"])
    built: dict[str, list] = {}

    def stand_in(name):
        def make(*args, **kwargs):
            built.setdefault(name, []).append((args, kwargs))
            return torch.nn.Identity()
        return make

    # The module's decoder-layer classes (its own and those it imports) and the
    # layers the drafters build directly.
    layers = ("VocabParallelEmbedding", "ReplicatedLinear", "RMSNorm", "ParallelLMHead",
              "LogitsProcessor", "ColumnParallelLinear", "RowParallelLinear", "QKVParallelLinear")
    layers += tuple(name for name, obj in vars(module).items()
                    if isinstance(obj, type) and name.endswith("DecoderLayer"))
    stand_ins = {name: stand_in(name) for name in layers}
    stand_ins.update(get_draft_quant_config=lambda *a, **k: None,
                     get_current_vllm_config=lambda: None)

    def rebind(fn, extra=None):
        g = types.FunctionType(fn.__code__, {**fn.__globals__, **stand_ins, **(extra or {})},
                               fn.__name__, fn.__defaults__, fn.__closure__)
        g.__kwdefaults__ = fn.__kwdefaults__
        return g

    config = _SpyConfig(values)
    vocab = target_vocab or values.get("vocab_size", 8)
    model_config = types.SimpleNamespace(
        dtype=torch.float32, hf_config=config, hf_text_config=config,
        get_total_num_hidden_layers=lambda: target_layers,
        get_num_layers=lambda *args, **kwargs: target_layers,  # 0.16-0.21
        get_vocab_size=lambda: vocab, get_hidden_size=lambda: values.get("hidden_size"))
    speculative_config = types.SimpleNamespace(
        draft_model_config=types.SimpleNamespace(hf_config=config, dtype=torch.float32),
        parallel_drafting=True, method="eagle3", num_speculative_tokens=2)
    vllm_config = types.SimpleNamespace(speculative_config=speculative_config,
                                        model_config=model_config, quant_config=None,
                                        parallel_config=_Permissive())
    # The inner model class the drafter builds (llama_eagle3's LlamaModel, or the
    # module's own), constructed with the rebound __init__.
    inner_classes = {name: obj for name, obj in vars(module).items()
                     if isinstance(obj, type) and obj.__module__ == module.__name__
                     and name.endswith("Model") and issubclass(obj, torch.nn.Module)}

    def inner_factory(cls):
        init = rebind(_original_init(cls))

        def make(*args, **kwargs):
            obj = cls.__new__(cls)
            init(obj, *args, **kwargs)
            return obj
        return make

    extra = {name: inner_factory(cls) for name, cls in inner_classes.items()}
    for name, cls in inner_classes.items():
        stand_ins[name] = extra[name]
    drafter_cls = getattr(module, class_name)
    obj = drafter_cls.__new__(drafter_cls)
    rebind(_original_init(drafter_cls), extra)(obj, vllm_config=vllm_config, prefix="")
    fc = [(a, k) for a, k in built.get("ReplicatedLinear", [])
          if "fc" in str(k.get("prefix", ""))] or built.get("ReplicatedLinear", [])
    fc_input = None
    if fc:
        args, kwargs = fc[0]
        fc_input = kwargs.get("input_size", args[0] if args else None)
    mask = getattr(obj, "mask_hidden", None)
    return {"reads": frozenset(config.reads), "fc_input_size": fc_input,
            "mask_hidden_size": None if mask is None else int(mask.numel()), "drafter": obj}


def passes_to_base_init(source: str, class_name: str, keyword: str) -> bool | None:
    """Whether ``class_name.__init__`` in ``source`` hands its base class's
    ``__init__`` (``super().__init__(...)``) the keyword ``keyword``; None where
    the class, or such a call, is not there (unknown).  Reads the code, runs
    none of it."""
    import ast

    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.ClassDef) and node.name == class_name):
            continue
        init = next((f for f in node.body
                     if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
        calls = [c for c in ast.walk(init) if isinstance(c, ast.Call)
                 and isinstance(c.func, ast.Attribute) and c.func.attr == "__init__"
                 and isinstance(c.func.value, ast.Call)
                 and getattr(c.func.value.func, "id", None) == "super"] if init else []
        if calls:
            return any(k.arg == keyword for c in calls for k in c.keywords)
    return None


@probe
@functools.cache
def native_qwen3_drafter_keeps_window() -> bool | None:
    """Whether vLLM's own Qwen3 Eagle3 drafter gives a ``sliding_attention``
    draft layer its window: whether its decoder layer hands its base Qwen3
    layer ``per_layer_sliding_window`` (0.24's does not: its Qwen3 layers take
    no window, so a windowed draft attends to everything; 0.28's and later
    do).  Read in the module's file, never imported: ``register()`` asks this
    and imports no model code.  None where the release has no such drafter or
    the file does not say (unknown)."""
    path = vllm_module_file("model_executor.models.qwen3_eagle3")
    if path is None:
        return None
    with open(path, encoding="utf-8") as f:
        return passes_to_base_init(f.read(), "Qwen3Eagle3DecoderLayer",
                                   "per_layer_sliding_window")


def peagle_drafter(model_type: str) -> str:
    """The drafter class (``module:class`` under vLLM's models) that sizes a
    PEagle draft of ``model_type`` here: vLLM's own Qwen3 drafter where the
    registry sends the Qwen3 name to it, else the Llama drafter (this package's
    Qwen3 drafter is the release's Llama one with Qwen3 attention)."""
    if model_type == "qwen3":
        from vllm import ModelRegistry

        entry = ModelRegistry.models.get("PeagleQwen3ForCausalLM")
        if registry_target(entry) == NATIVE_QWEN3_DRAFTER:
            return "qwen3_eagle3:Eagle3Qwen3ForCausalLM"
    return "llama_eagle3:Eagle3LlamaForCausalLM"


# vLLM's own Qwen3 Eagle3 drafter (0.24+), as its registry names it.
NATIVE_QWEN3_DRAFTER = "vllm.model_executor.models.qwen3_eagle3:Eagle3Qwen3ForCausalLM"


def registry_target(entry) -> str | None:
    """``module:class`` of a ``ModelRegistry`` entry (lazy or loaded), if it says."""
    module = getattr(entry, "module_name", None)
    cls = getattr(entry, "class_name", None)
    if module and cls:
        return f"{module}:{cls}"
    model_cls = getattr(entry, "model_cls", None) or getattr(entry, "interfaces", None)
    if isinstance(model_cls, type):
        return f"{model_cls.__module__}:{model_cls.__qualname__}"
    return None


@probe
def drafter_input_sizes(config_dict: dict, fallback_update=None
                        ) -> tuple[int | None, int | None] | None:
    """(fc input size, mask_hidden size) that the installed release's drafter
    builds for this PEagle checkpoint's draft config (its layer config with the
    ``peagle`` algorithm's fields, as vLLM makes it: the release's
    ``update_peagle``, else ``fallback_update``, the plugin's, which ``auto``
    installs on a release without one).  None where the drafter cannot be
    built here (unknown)."""
    from vllm.transformers_utils.configs.speculators import algos

    values = dict(_PROBE_CONFIG, **config_dict["transformer_layer_config"])
    update = algos.SUPPORTED_SPECULATORS_TYPES.get("peagle") or fallback_update
    if update is None:
        return None  # no peagle algorithm to build the draft config with
    update(config_dict=config_dict, pre_trained_config=values)
    values = {k: v for k, v in values.items() if v is not None}
    # Only the fc and mask_hidden sizes are asked: the vocabulary and the layer
    # count (stood-in layers, a long draft_id_to_target_id) stay small, and a
    # config whose inputs would not fit in memory here is not built.
    values.update(vocab_size=16, draft_vocab_size=16, num_hidden_layers=1)
    widths = [values.get("hidden_size"), values.get("target_hidden_size") or 0,
              values.get("num_aux_hidden_states") or 0,
              len(values.get("eagle_aux_hidden_state_layer_ids") or ())]
    if not all(isinstance(w, int) for w in widths) or \
            max(widths[0], widths[1]) * max(3, widths[2], widths[3]) > 2**24:
        return None  # too large (or not integers) to build the drafter here
    built = build_drafter(values, peagle_drafter(values.get("model_type", "llama")))
    return built["fc_input_size"], built["mask_hidden_size"]


# A small draft config every Eagle3 drafter of 0.16+ can be built for.
_PROBE_CONFIG = {"vocab_size": 16, "hidden_size": 8, "num_hidden_layers": 1,
                 "num_attention_heads": 2, "num_key_value_heads": 1, "intermediate_size": 16,
                 "rms_norm_eps": 1e-6, "draft_vocab_size": 16, "model_type": "llama",
                 "max_position_embeddings": 64, "hidden_act": "silu", "head_dim": 4}


@probe
@functools.cache
def eagle3_drafter_options() -> frozenset[str] | None:
    """The options of ``EAGLE3_DRAFTER_OPTIONS`` that the installed Llama
    Eagle3 drafter reads from the draft config when it is built (this
    package's Qwen3 drafter builds on it, so it reads the same); None if the
    drafter cannot be built here (unknown)."""
    reads = build_drafter(_PROBE_CONFIG)["reads"]
    return frozenset(o for o in EAGLE3_DRAFTER_OPTIONS if o in reads)


@probe
@functools.cache
def drafter_sizes_aux_inputs() -> bool | None:
    """Whether the installed Llama Eagle3 drafter sizes ``fc`` and
    ``mask_hidden`` from the aux count and ``target_hidden_size`` (vLLM >= 0.22)
    rather than as 3 * hidden_size (0.16-0.21): built for 4 aux hidden states
    of a target twice the draft's width.  None if it cannot be built here."""
    values = dict(_PROBE_CONFIG, target_hidden_size=16, num_aux_hidden_states=4,
                  eagle_aux_hidden_state_layer_ids=[0, 1, 2, 3])
    built = build_drafter(values)
    return built["fc_input_size"] == 64 and built["mask_hidden_size"] == 64


class _Permissive:
    """Any attribute, call or comparison answers something harmless: a stand-in
    for the parts of a ``VllmConfig`` a feature check reads but does not decide on."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Permissive()

    def __call__(self, *args, **kwargs):
        return _Permissive()

    def __bool__(self):
        return False

    def __eq__(self, other):
        return False

    __hash__ = object.__hash__
    __lt__ = __le__ = __gt__ = __ge__ = __eq__

    def __iter__(self):
        return iter(())

    def __int__(self):
        return 0


@probe
@functools.cache
def v2_runner_excludes_parallel_drafting() -> bool | None:
    """vLLM >= 0.22 keeps parallel drafting off its V2 model runner, where
    PEagle's acceptance collapsed (vllm-project/vllm#43010).  Asks the release's
    own list of what the V2 runner does not support, for a config with and
    without parallel drafting.  A release with a V2 runner and no such list
    (0.16-0.21) lets it through: False.  None if the answer cannot be had."""

    from vllm.config import VllmConfig

    method = getattr(VllmConfig, "_get_v2_model_runner_unsupported_features", None)
    if method is None:
        return False if vllm_module_exists("v1.worker.gpu.model_runner") else None

    def unsupported(parallel: bool) -> list:
        # Every other part of the config answers harmlessly; the two calls differ
        # in parallel drafting alone.
        # (0.24 also asks uses_dynamic_speculative_decoding(): unknown attributes
        # of the speculative config answer harmlessly too.)
        fake = _Permissive()
        spec = _Permissive()
        spec.method, spec.parallel_drafting, spec.num_speculative_tokens = "eagle3", parallel, 2
        spec.use_eagle = lambda: True
        fake.speculative_config = spec
        return list(method(fake))

    return len(unsupported(True)) > len(unsupported(False))


@probe
def eagle3_verifier_support(arch: str) -> bool | None:
    """Whether the installed vLLM's model class for ``arch`` can hand Eagle3
    drafts its aux hidden states (``SupportsEagle3``); None if vLLM does not
    know the architecture (vLLM reports that itself)."""
    from vllm import ModelRegistry
    from vllm.model_executor.models.interfaces import supports_eagle3

    # The registry's loader for one name (imports that model's module only).
    cls = ModelRegistry._try_load_model_cls(arch)
    return None if cls is None else bool(supports_eagle3(cls))


@probe
def has_qwen3_eagle3() -> bool:
    """The Qwen3 Eagle3 drafter that ``PeagleQwen3ForCausalLM`` resolves to."""
    return vllm_module_exists("model_executor.models.qwen3_eagle3")


@probe
@functools.cache
def speculators_overrides_apply() -> bool | None:
    """Whether vLLM merges a user's ``speculative_config`` into the one read
    from a speculators checkpoint (e.g. to override ``num_speculative_tokens``).

    Older releases replace the user's dict with the checkpoint's.  Asks the
    release's own ``maybe_override_with_speculators`` (under whatever this
    plugin wrapped around it) with a minimal Eagle3 checkpoint and a user K;
    None if it cannot be asked."""
    import json
    import tempfile

    from vllm.transformers_utils import config as tu_config

    fn = getattr(tu_config, "maybe_override_with_speculators", None)
    if fn is None:
        return False
    while hasattr(fn, "__wrapped__"):
        fn = fn.__wrapped__
    checkpoint = {
        "architectures": ["Eagle3Speculator"], "speculators_model_type": "eagle3",
        "speculators_config": {"algorithm": "eagle3",
                               "proposal_methods": [{"proposal_type": "greedy",
                                                     "speculative_tokens": 2}],
                               "default_proposal_method": "greedy",
                               "verifier": {"name_or_path": "verifier",
                                            "architectures": ["LlamaForCausalLM"]}},
        "transformer_layer_config": {"model_type": "llama", "hidden_size": 8,
                                     "num_hidden_layers": 1, "vocab_size": 16},
        "draft_vocab_size": 16}
    with tempfile.TemporaryDirectory(prefix="vllm-peagle-probe-") as tmp:
        with open(f"{tmp}/config.json", "w") as f:
            json.dump(checkpoint, f)
        _, _, spec = fn(model=tmp, tokenizer=None, trust_remote_code=False,
                        vllm_speculative_config={"num_speculative_tokens": 7})
    return isinstance(spec, dict) and spec.get("num_speculative_tokens") == 7
