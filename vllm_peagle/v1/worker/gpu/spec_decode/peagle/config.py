"""PEagle's ``SpeculatorConfig`` for vLLM's V2 model runner (vLLM >= 0.34).

Beside upstream's own, as ``spec_decode/dflash/config.py`` is: how a PEagle
draft sets up ``SpeculativeConfig`` and what it tells code outside the
speculator.  vLLM 0.34.0 removed P-EAGLE (its V1 runner, the only one that
drafted in parallel, is gone); this package registers the ``peagle`` method
with ``register_speculative_method`` from ``register()``
(``vllm_peagle/v1/worker/gpu/spec_decode/speculator_config.py``).  No vLLM
release has it natively.

A PEagle draft is an Eagle3 draft (the same checkpoint loader, aux hidden
states, ``d2t``) that drafts all K tokens in one forward pass.  Like upstream's
config modules, this one never imports the speculator: vLLM imports it in
every process.
"""

from __future__ import annotations

from vllm.v1.worker.gpu.spec_decode.eagle.config import Eagle3SpeculatorConfig


class PEagleSpeculatorConfig(Eagle3SpeculatorConfig):
    speculator_class = (
        "vllm_peagle.v1.worker.gpu.spec_decode.peagle.speculator.PEagleSpeculator"
    )
    # All K draft tokens from one forward pass, with mask tokens.
    parallel_drafting = True
    # Draft sampling is Eagle's; watermarking the K draws of one pass is untested.
    supports_watermarking = False

    @property
    def max_num_new_slots_for_drafting(self) -> int:
        # The draft pass adds K - 1 mask tokens to each request's target tokens;
        # the scheduler keeps that room in the token budget.
        return self.num_speculative_tokens - 1
