"""vllm-peagle: PEagle (Parallel EAGLE) speculative decoding for vLLM, as a plugin.

vLLM calls ``register()`` (entry point ``vllm.general_plugins: peagle``) in every
process it starts, unguarded: ``register()`` never raises (a failing patch is
logged and marked ``failed``).  Depending on ``VLLM_PEAGLE_MODE`` it installs the patches
below where the installed vLLM lacks them (``auto``, the default), everywhere
(``force``, for conformance tests on vLLM >= 0.22) or nowhere (``off``).

The package in three parts:
- the patches, one module per upstream file at upstream's path
  (``model_executor/models/{registry,qwen3_eagle3}.py``, ``transformers_utils/
  config.py``, ``transformers_utils/configs/speculators/{algos,base}.py``):
  what newer vLLM releases have, for releases without it;
- beyond upstream: ``preflight/``, checks hooked into vLLM's loading, and
  ``model_executor/models/fc_norm_fix.py``, a fix upstream lacks;
- ``tools/``: the ``vllm-peagle`` command (check, demo, bench) and what it
  runs on (runner, GSM8K through lm-eval, spec-decode stats, model configs).

Patch manifest:

** File: vllm_peagle/model_executor/models/registry.py **
   1. ``vllm.model_executor.models.registry._SPECULATIVE_DECODING_MODELS``
      Why: the draft config of a PEagle checkpoint names ``PeagleLlamaForCausalLM``
           (or ``PEagleDraftModel``), which vLLM < 0.22 and >= 0.34 cannot resolve;
           vLLM 0.24's own Qwen3 drafter drops a draft layer's sliding window.
      How: ``ModelRegistry.register_model`` with lazy ``module:class`` strings,
           to ``llama_eagle3.Eagle3LlamaForCausalLM``; the Qwen3 names
           (``PeagleQwen3ForCausalLM``, ``Eagle3Qwen3ForCausalLM``) to vLLM's
           ``qwen3_eagle3`` where it has one that keeps windows (a probe reads its
           decoder layer's code), else to this package's.
      Related PR: vllm-project/vllm#41826 (native in vLLM 0.22.0, removed in 0.34.0),
           #43132 (Qwen3, 0.24.0); windows: #47568 (in 0.28.0), backported
           to 0.24.0 in ``patches/vllm-0.24.0/0001``
      Future plan: the names stay while vLLM has no PEagle; the Qwen3 routing goes
           when the oldest supported vLLM's Qwen3 drafter keeps windows.

** File: vllm_peagle/v1/worker/gpu/spec_decode/speculator_config.py ** (beyond upstream)
   1a. ``register_speculative_method("peagle", PEagleSpeculatorConfig)`` (vLLM >= 0.34)
      Why: vLLM 0.34.0 removed P-EAGLE with its V1 runner; its V2 runner drafts
           PEagle nowhere, so every PEagle checkpoint stops there.
      How: upstream's own door for a plugin's speculator, from ``register()``
           where the release has it and no V1 parallel drafter; the speculator
           (``spec_decode/peagle/``: config, speculator, inputs) drafts all K
           tokens in one pass on the V2 runner, PIECEWISE CUDA graphs; PEagle
           checkpoints are named ``method="peagle"`` (``base.py``, pre-flight).
      Related PR: vllm-project/vllm#44816 (a V2 port, not merged)
      Future plan: keep while vLLM has no PEagle of its own.

** File: vllm_peagle/model_executor/models/qwen3_eagle3.py **
   2. ``vllm.model_executor.models.qwen3_eagle3.Eagle3Qwen3ForCausalLM`` (a module
      vLLM < 0.24 lacks)
      Why: speculators >= 0.7 writes qwen3-arch PEagle drafts by default; vLLM
           0.16-0.23 has only the Llama drafter, which fails on their
           ``self_attn.q_norm``/``k_norm`` weights.
      How: the release's own ``Eagle3LlamaForCausalLM`` with Qwen3's attention
           (per-head q/k RMSNorm before rotary); a missing or extra layer weight
           is a one-line ``ValueError``.
      Related PR: vllm-project/vllm#43132 (native in vLLM 0.24.0)
      Future plan: remove when the oldest supported vLLM is 0.24.0.

** File: vllm_peagle/transformers_utils/configs/speculators/algos.py **
   3. ``vllm.transformers_utils.configs.speculators.algos.SUPPORTED_SPECULATORS_TYPES["peagle"]``
      Why: vLLM < 0.22 has no ``peagle`` algorithm, so the draft's HF config never
           gets ``pard_token`` (the mask token the parallel-drafting proposer reads)
           nor PEagle's ``norm_before_residual=False`` default.
      How: ``register_speculator("peagle")(update_peagle)``, upstream's pure function;
           also over 0.22/0.23's native one, which names qwen3 drafts Llama, and over
           any native one that drops ``fc_norm``/``norm_output`` (probes; through 0.33).
      Related PR: vllm-project/vllm#41826 (native in vLLM 0.22.0), #43132 (qwen3, 0.24.0)
      Future plan: the routing part goes when the oldest supported vLLM is 0.24.0; the
           norm flags when upstream's ``update_peagle`` passes them on (not yet in 0.33).

** File: vllm_peagle/transformers_utils/configs/speculators/base.py **
   4. ``vllm.transformers_utils.configs.speculators.base.SpeculatorsConfig.build_vllm_speculative_config``
      Why: vLLM < 0.22 builds ``method="peagle"``, which ``SpeculativeConfig``
           rejects; PEagle runs as ``eagle3`` with ``parallel_drafting=True``.
           vLLM >= 0.34 refuses ``peagle`` outright.
      How: wrap vLLM's own builder, asked for the Eagle3 config the draft is;
           upstream's mapping on its result (0.16-0.21), or the eagle3 base of
           the ``peagle`` method the user's dict names (0.34+, pre-flight adds it).
      Related PR: vllm-project/vllm#41826 (native in vLLM 0.22.0-0.33.0)
      Future plan: keep while vLLM has no PEagle of its own.

** File: vllm_peagle/transformers_utils/config.py **
   5. ``vllm.transformers_utils.config.maybe_override_with_speculators`` (and its
      binding in ``vllm.engine.arg_utils``)
      Why: before vLLM 0.29.0 a user's ``speculative_config`` given with a
           speculators checkpoint is dropped without a word (no K override).
      How: wrap the release's function; merge the user's fields into the
           checkpoint's config as 0.29.0 does (``method`` and ``model`` locked).
      Related PR: the merge in vLLM 0.29.0's ``maybe_override_with_speculators``
      Future plan: remove when the oldest supported vLLM is 0.29.0.

** File: vllm_peagle/model_executor/models/fc_norm_fix.py ** (beyond upstream)
   6. ``combine_hidden_states`` of ``llama_eagle3.Eagle3LlamaForCausalLM`` and
      ``qwen3_eagle3.Eagle3Qwen3ForCausalLM``
      Why: at load vLLM projects a PEagle draft's ``mask_hidden`` through it
           flattened to 1-D; with ``fc_norm: true`` the per-slice RMSNorms then get
           1-D tensors, which vLLM's CUDA ``rms_norm`` rejects (engines die at start
           on 0.22-0.24, H200); the CPU kernels take them.
      How: a post-import hook (``register()`` imports no model code) wraps the
           method where a probe sees a norm get a 1-D tensor (``force``: always):
           a 1-D input goes in as one row and comes back 1-D (same values).
      Related PR: none (upstream lacks it through 0.33; ``patches/upstream/0002``).
      Future plan: remove when upstream's drafters take the 1-D input.

** File: vllm_peagle/preflight/ ** (beyond upstream)
   7. ``vllm.transformers_utils.config.maybe_override_with_speculators`` (and its
      binding in ``vllm.engine.arg_utils``), ``SpeculatorsConfig.from_pretrained``
      Why: vLLM reads PEagle checkpoints with few checks: a malformed one, or one
           the installed release cannot run, fails late (``KeyError``, a shape
           error in a worker) or not at all.
      How: before vLLM's own code, check the checkpoint directory once per load
           (config, verifier, safetensors headers, release features) and raise a
           ``ValueError`` with one line per problem, the lines ``vllm-peagle
           check`` prints; check the user's ``speculative_config`` with a PEagle
           draft (``parallel_drafting`` locked on, K a positive integer, the
           ``peagle`` method alias, the explicit ``{"model": <peagle>}`` path).
      Related PR: none; could go upstream as its own PR.
      Future plan: keep while vLLM has no equivalent checks.
"""

from __future__ import annotations

import logging
import os

__all__ = ["register", "MODES", "MODE_ENV"]

MODE_ENV = "VLLM_PEAGLE_MODE"
MODES = ("auto", "force", "off")

# Child of vLLM's logger, so it prints with vLLM's format and level.
logger = logging.getLogger("vllm.plugins.peagle")

_registered: dict[str, str] | None = None
_registered_mode: str | None = None


def mode_from_env() -> str:
    mode = os.environ.get(MODE_ENV, "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise ValueError(
            f"{MODE_ENV}={os.environ.get(MODE_ENV)!r} is not a valid mode; "
            f"use one of {', '.join(MODES)} (auto is the default)"
        )
    return mode


# (name, module): each module's ``apply(force)`` installs one patch.  Pre-flight
# last: its hook must wrap the merge patch, so that it runs first.
PATCHES = (
    ("registry", "vllm_peagle.model_executor.models.registry"),
    ("peagle_speculator", "vllm_peagle.v1.worker.gpu.spec_decode.speculator_config"),
    ("fc_norm_rows", "vllm_peagle.model_executor.models.fc_norm_fix"),
    ("speculators_algo", "vllm_peagle.transformers_utils.configs.speculators.algos"),
    ("speculative_config_mapping", "vllm_peagle.transformers_utils.configs.speculators.base"),
    ("speculative_config_merge", "vllm_peagle.transformers_utils.config"),
    ("preflight", "vllm_peagle.preflight"),
)
STATES = ("installed", "native", "unavailable", "failed")


def _apply(name: str, module: str, force: bool) -> str:
    """One patch's state; never raises (vLLM calls ``register()`` unguarded in
    every process it starts, PEagle or not)."""
    import importlib

    try:
        return importlib.import_module(module).apply(force)
    except ImportError as e:
        if (e.name or "").startswith("vllm_peagle"):
            logger.warning("vllm-peagle: patch %s failed and is not installed: %s: %s",
                           name, type(e).__name__, e)
            return "failed"
        # A vLLM without speculators support (< 0.10) has nothing to patch.
        return "unavailable"
    except Exception as e:  # noqa: BLE001 - any failure leaves vLLM as it was
        logger.warning("vllm-peagle: patch %s failed and is not installed: %s: %s",
                       name, type(e).__name__, e)
        return "failed"


def register() -> dict[str, str]:
    """Install the PEagle patches the installed vLLM needs.

    Idempotent and cheap: imports lazily, never touches CUDA, never raises.
    Returns patch name -> "installed" | "native" | "unavailable" | "failed"
    (empty for ``off``).  A patch whose ``apply`` raises is logged (one
    WARNING naming it) and marked "failed"; the others still install.  A probe
    that raises answers None (``features.probe``: unknown, one WARNING)."""
    global _registered, _registered_mode
    try:
        mode = mode_from_env()
    except ValueError as e:
        logger.warning("vllm-peagle: %s; nothing installed (as %s=off)", e, MODE_ENV)
        return {}
    if mode == "off":
        return {}
    if _registered is not None and _registered_mode == mode:
        return dict(_registered)

    force = mode == "force"
    result = {name: _apply(name, module, force) for name, module in PATCHES}
    if result != _registered:
        by = {v: [k for k, r in result.items() if r == v] for v in STATES}
        line = (f"vllm-peagle ({mode} mode): installed {', '.join(by['installed']) or 'nothing'}"
                f"; kept native {', '.join(by['native']) or 'nothing'}")
        if by["unavailable"]:
            line += "; not in this vLLM: " + ", ".join(by["unavailable"])
        if by["failed"]:
            line += "; failed: " + ", ".join(by["failed"])
        logger.info("%s", line)
    _registered, _registered_mode = result, mode
    return dict(result)
