"""``vllm-peagle check DIR``: pre-flight validation of a PEagle checkpoint.

Exit 0 with a summary of what vLLM will run; exit 1 with one line per problem
(field, value, fix) and no traceback.  Reads config files and safetensors
headers (no tensors loaded, nothing written), then, where vLLM is importable,
asks the installed release what it lacks for this checkpoint (``release:``
findings; ``--no-release`` skips them).  The checks are the pre-flight patch's
(``vllm_peagle.preflight.checks``), so ``LLM(...)`` raises the same lines.
"""

from __future__ import annotations

import os
import sys

from vllm_peagle import features
from vllm_peagle.preflight.checks import check_checkpoint
from vllm_peagle.preflight.config import Problem, aux_layer_ids, text_config
from vllm_peagle.transformers_utils.configs.speculators.algos import PEAGLE_ARCHITECTURES


def speculators_problems(config: dict) -> list[Problem]:
    """Validation through the optional ``speculators`` package's own config model
    (``check`` prints these as notes: they matter to speculators' tools, not to vLLM)."""
    try:
        from speculators.models.peagle import PEagleSpeculatorConfig
    except ImportError:
        return []
    try:
        PEagleSpeculatorConfig.model_validate(config)
    except Exception as e:  # pydantic.ValidationError, or speculators' own errors
        errors = getattr(e, "errors", None)
        if callable(errors):
            return [Problem(".".join(str(p) for p in err.get("loc", ())) or "config.json",
                            f"speculators: {err.get('msg')}") for err in errors()]
        return [Problem("config.json", f"speculators: {e}")]
    return []


def release_findings(report) -> tuple[list[Problem], str]:
    """What the installed vLLM lacks for a well-formed checkpoint (the release
    checks pre-flight runs inside ``LLM(...)``), and a note saying against which."""
    try:
        import vllm
    except ImportError:
        return [], "vLLM is not importable here: release checks skipped"
    import vllm_peagle
    from vllm_peagle.preflight.release import release_problems

    # vLLM as LLM(...) would have it: with the plugin's patches (VLLM_PEAGLE_MODE).
    vllm_peagle.register()

    problems = release_problems(report.config, report.verifier_config)
    return problems, f"release checks against the installed vLLM {vllm.__version__}"


def run_check(draft_dir: str, verifier_dir: str | None = None, out=None,
              release: bool = True) -> int:
    out = out or sys.stdout
    report = check_checkpoint(draft_dir, verifier_dir)
    problems = list(report.problems)
    if report.config is not None and not problems:
        # Notes, not problems: vLLM never reads a checkpoint through speculators,
        # so a field only speculators' model refuses (say accept_tolerance: {})
        # does not stop LLM(...), and check must not say it would.
        for p in speculators_problems(report.config):
            report.notes.append(f"the speculators package would not load this config "
                                f"({p}); vLLM does not read it through speculators")
    if report.config is not None and not problems and release:
        found, note = release_findings(report)
        report.notes.append(note)
        problems += found
    for note in report.notes:
        print(f"note: {note}", file=out)
    if problems:
        for p in problems:
            print(f"{draft_dir}: {p}", file=out)
        if report.config is not None and report.config.get("speculators_model_type") != "peagle":
            print("not a PEagle checkpoint", file=out)
        else:
            print(f"{len(problems)} problem(s); vLLM would fail on this checkpoint", file=out)
        return 1

    config = report.config
    # How the installed vLLM (with the plugin) names a PEagle draft, and K.
    k = config["speculators_config"]["proposal_methods"][0]["speculative_tokens"]
    spec = dict(features.peagle_method_fields(), num_speculative_tokens=k)
    model_type = config["transformer_layer_config"].get("model_type", "llama")
    print(f"{draft_dir}: OK, a PEagle checkpoint", file=out)
    print("  vLLM speculative config: " + " ".join(f"{f}={v}" for f, v in spec.items()),
          file=out)
    print(f"  draft architecture: {PEAGLE_ARCHITECTURES[model_type]} "
          f"(mask_token_id {config['mask_token_id']} -> pard_token)", file=out)
    if report.verifier_config is not None:
        layers = text_config(report.verifier_config).get("num_hidden_layers")
        ids, explicit = aux_layer_ids(config, layers)
        origin = "from eagle_aux_hidden_state_layer_ids" if explicit else \
            f"vLLM's default (2, L/2, L-3) for L={layers}"
        print(f"  aux layer ids: {list(ids)} ({origin})", file=out)
        print(f"  verifier: {os.path.abspath(report.verifier_dir)}", file=out)
    else:
        ids = config.get("eagle_aux_hidden_state_layer_ids")
        print(f"  aux layer ids: {ids if ids else 'vLLM default (2, L/2, L-3) of the verifier'}",
              file=out)
    return 0
