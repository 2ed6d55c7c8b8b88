"""PEagle's speculator for vLLM's V2 model runner (vLLM >= 0.34).

New runtime code where upstream keeps its own (``spec_decode/<method>/``);
no vLLM release has it (0.34.0 removed P-EAGLE with its V1 runner, and
upstream's port of parallel drafting to this runner, vllm-project/vllm#44816,
was not merged).  The meeting of two upstream speculators: Eagle's (the Eagle3
draft model, its loader, the target's aux hidden states, draft KV written in
the draft's own cache groups) and DFlash's (every draft token from one forward
pass, mask tokens at positions 2..K).

Each step: the target's tokens of every request (shifted, beside the target's
hidden states), the bonus token and K - 1 mask tokens (beside ``mask_hidden``)
go through the draft model once, in token-keyed PIECEWISE CUDA graphs where
the target has them (attention outside the graphs, as for the target's mixed
batches); the K rows after each request's last accepted token draft its K
tokens.  ``utils.prepare_peagle_inputs`` lays the batch out.

vLLM 0.34's Eagle3 loaders skip ``mask_hidden``; this speculator reads it from
the checkpoint itself and projects it as the target's aux hidden states are.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from vllm.config import VllmConfig
from vllm.config.compilation import CUDAGraphMode
from vllm.logger import init_logger
from vllm.v1.attention.backends.utils import PAD_SLOT_ID
from vllm.v1.kv_cache_interface import KVCacheConfig, get_kv_cache_spec_sliding_window
from vllm.v1.worker.gpu.attn_utils import build_slot_mappings_by_layer
from vllm.v1.worker.gpu.block_table import BlockTables
from vllm.v1.worker.gpu.dp_utils import DPSyncState, dispatch_cg_and_sync_dp
from vllm.v1.worker.gpu.input_batch import InputBatch, InputBuffers
from vllm.v1.worker.gpu.model_states.interface import ModelState
from vllm.v1.worker.gpu.spec_decode.autoregressive.cudagraph_utils import (
    SpeculatorCudaGraphManager,
)
from vllm.v1.worker.gpu.spec_decode.eagle.speculator import EagleSpeculator
from vllm.v1.worker.gpu.spec_decode.eagle.utils import load_eagle_model
from vllm.v1.worker.gpu.spec_decode.utils import get_parallel_drafting_token_id
from vllm.v1.worker.utils import AttentionGroup

from vllm_peagle.v1.worker.gpu.spec_decode.peagle.utils import (
    prepare_peagle_inputs,
    read_mask_hidden,
)

logger = init_logger(__name__)


class PEagleSpeculator(EagleSpeculator):
    def __init__(self, vllm_config: VllmConfig, device: torch.device):
        super().__init__(vllm_config, device)
        k = self.num_speculative_steps
        self.mask_token_id = get_parallel_drafting_token_id(self.draft_model_config.hf_config)
        # The draft batch: the target's tokens plus K - 1 mask tokens a request
        # (the scheduler keeps that room: max_num_new_slots_for_drafting).
        self.max_num_draft_tokens = self.max_num_tokens + self.max_num_reqs * (k - 1)
        self.input_buffers = InputBuffers(self.max_num_reqs, self.max_num_draft_tokens, device)
        self.hidden_states = torch.zeros(
            self.max_num_draft_tokens, self.hidden_size, dtype=self.dtype, device=device
        )
        self.no_kv = torch.zeros(self.max_num_draft_tokens, dtype=torch.bool, device=device)
        self.arange = torch.arange(self.max_num_draft_tokens + 1, dtype=torch.int64, device=device)
        num_samples = self.max_num_reqs * k
        self.sample_indices = torch.zeros(num_samples, dtype=torch.int64, device=device)
        # -1: a row no request owns (sampling skips it).
        self.sample_idx_mapping = torch.full((num_samples,), -1, dtype=torch.int64,
                                             device=device)
        self.mask_hidden_state: torch.Tensor | None = None
        self.slot_mappings: torch.Tensor | None = None

    # --- loading ---

    def load_draft_model(self, target_model: nn.Module,
                         target_attn_layer_names: set[str]) -> nn.Module:
        model = load_eagle_model(target_model, self.vllm_config)
        self.mask_hidden_state = self._mask_hidden_state(model)
        return model

    @torch.inference_mode()
    def _mask_hidden_state(self, model: nn.Module) -> torch.Tensor:
        """The draft's input hidden state at mask positions: the checkpoint's
        ``mask_hidden`` (aux-width, as the target's aux states are) through the
        draft's own combine_hidden_states, as one row (fc_norm's CUDA kernel
        takes no 1-D input)."""
        width = getattr(model.model, "fc_input_size", None) or self.hidden_size
        if self.vllm_config.load_config.load_format == "dummy":
            # Dummy weights (benchmarks): as vLLM initialises every other weight.
            raw = torch.empty(width).uniform_(-1e-3, 1e-3)
        else:
            raw = read_mask_hidden(self.draft_model_config.model,
                                   self.draft_model_config.revision)
            if raw is None:
                raise ValueError(
                    f"PEagle draft {self.draft_model_config.model!r}: its weights hold no "
                    "mask_hidden, the hidden state of the mask positions parallel drafting "
                    "needs. Fix: export the draft with mask_hidden")
        if raw.numel() != width:
            raise ValueError(
                f"PEagle draft {self.draft_model_config.model!r}: mask_hidden has "
                f"{raw.numel()} elements, the draft's fc takes {width}. Fix: export the "
                "draft again with the checkpoint's own mask_hidden")
        row = raw.to(device=self.device, dtype=self.dtype).view(1, -1)
        if width != self.hidden_size:
            row = model.combine_hidden_states(row)
        return row.view(-1).clone()

    # --- attention and CUDA graphs ---

    def set_attn(self, model_state: ModelState, kv_cache_config: KVCacheConfig,
                 block_tables: BlockTables, target_input_buffers: InputBuffers,
                 target_attn_groups: list[list[AttentionGroup]]) -> None:
        super().set_attn(model_state, kv_cache_config, block_tables, target_input_buffers,
                         target_attn_groups)
        # As DFlash's set_attn: FlashAttention's ahead-of-time split schedule
        # does not hold for sliding-window draft layers.
        for groups in self.attn_groups:
            for group in groups:
                builder = group.get_metadata_builder()
                if getattr(builder, "aot_schedule", False) and \
                        get_kv_cache_spec_sliding_window(builder.kv_cache_spec):
                    builder.aot_schedule = False
        self.slot_mappings = torch.full(
            (block_tables.slot_mappings.shape[0], self.max_num_draft_tokens), PAD_SLOT_ID,
            dtype=block_tables.slot_mappings.dtype, device=self.device)

    def init_cudagraph_manager(self, cudagraph_mode: CUDAGraphMode) -> None:
        # One draft pass whose tokens per request vary (rejections, prefills):
        # token-keyed PIECEWISE graphs, as the target's mixed batches take.
        mode = (CUDAGraphMode.PIECEWISE if cudagraph_mode.has_piecewise_cudagraphs()
                else CUDAGraphMode.NONE)
        self.prefill_cudagraph_manager = SpeculatorCudaGraphManager(
            self.vllm_config, self.device, mode,
            {self.num_speculative_steps + 1: self.max_num_reqs})
        self.decode_cudagraph_manager = None

    def capture(self) -> None:
        logger.info("Capturing the PEagle draft model...")
        self.idx_mapping.fill_(-1)
        self.sample_idx_mapping.fill_(-1)
        self.sample_indices.zero_()
        manager = self.prefill_cudagraph_manager
        assert manager is not None and self.slot_mappings is not None
        if manager.use_breakable_cg:
            manager.init_breakable_cg_runner(self.model)
        manager.capture(
            self._draft_forward, self.model_state, self.input_buffers, self.block_tables,
            self.attn_groups, self.kv_cache_config,
            progress_bar_desc="Capturing PEagle CUDA graphs",
            slot_mappings_buffer=self.slot_mappings)

    def _draft_forward(self, num_reqs: int, num_tokens: int,
                       attn_metadata: dict[str, Any] | None,
                       slot_mappings: dict[str, torch.Tensor] | None,
                       num_tokens_across_dp: torch.Tensor | None,
                       cudagraph_runtime_mode: CUDAGraphMode = CUDAGraphMode.NONE,
                       **_: Any) -> torch.Tensor:
        last_hidden_states, _hidden = self._run_model(
            num_tokens, attn_metadata, slot_mappings, num_tokens_across_dp,
            cudagraph_runtime_mode)
        return last_hidden_states

    # --- drafting ---

    def sample_draft(self, hidden_states: torch.Tensor, sample_src_positions: torch.Tensor,
                     idx_mapping: torch.Tensor, temperature: torch.Tensor,
                     seeds: torch.Tensor, draft_step: torch.Tensor, draft_logits,
                     spec_step_idx: int = 0, num_steps: int = 1) -> torch.Tensor:
        d2t = getattr(self.model, "draft_id_to_target_id", None)
        if (draft_logits is None and d2t is not None and self.acceptance_estimator is None
                and self.draft_watermarker is None and not self.use_local_argmax_reduction):
            # Greedy drafts of a reduced vocabulary: the argmax in the draft's
            # own vocabulary, then its target id (the model's compute_logits
            # scatters every row into the target's vocabulary first).
            logits = self.model.logits_processor(self.model.lm_head, hidden_states)
            ids = logits.argmax(dim=-1)
            return ids + d2t[ids]
        return super().sample_draft(hidden_states, sample_src_positions, idx_mapping,
                                    temperature, seeds, draft_step, draft_logits,
                                    spec_step_idx, num_steps)

    @torch.inference_mode()
    def propose(
        self,
        input_batch: InputBatch,
        attn_metadata: dict[str, Any],
        slot_mappings: dict[str, torch.Tensor],
        last_hidden_states: torch.Tensor,
        aux_hidden_states: list[torch.Tensor] | None,
        num_sampled: torch.Tensor,
        num_rejected: torch.Tensor,
        last_sampled: torch.Tensor,
        next_prefill_tokens: torch.Tensor,
        temperature: torch.Tensor,
        seeds: torch.Tensor,
        dp_sync_state: DPSyncState | None = None,
        dummy_run: bool = False,
        skip_attn_for_dummy_run: bool = False,
        mm_inputs: tuple[list[torch.Tensor], torch.Tensor] | None = None,
        is_profile: bool = False,
        num_speculative_tokens: int | None = None,
    ) -> torch.Tensor:
        num_reqs = input_batch.num_reqs
        num_target_tokens = input_batch.num_tokens
        k = self.num_speculative_steps if num_speculative_tokens is None else num_speculative_tokens
        # K = 0 (a dynamic schedule) still runs the pass: it writes the draft KV
        # of this step's tokens, which later drafts attend to.
        num_drafts = max(k, 1)
        num_mask = num_drafts - 1
        assert self.mask_hidden_state is not None

        if aux_hidden_states:
            hidden_states = self.model.combine_hidden_states(
                torch.cat([h[:num_target_tokens] for h in aux_hidden_states], dim=-1))
        else:
            hidden_states = last_hidden_states[:num_target_tokens]
        self._copy_request_inputs(num_reqs, input_batch.idx_mapping, temperature, seeds,
                                  dummy_run=dummy_run)
        idx_mapping = input_batch.idx_mapping[:num_reqs]
        # last_sampled is [max_num_reqs, 1]; next_prefill_tokens' first row is
        # each request's next prompt token.
        next_token_ids = torch.where(
            num_sampled[:num_reqs] > 0, last_sampled.reshape(-1)[idx_mapping],
            next_prefill_tokens.reshape(-1)[idx_mapping].to(last_sampled.dtype))
        num_tokens = prepare_peagle_inputs(
            target_input_ids=input_batch.input_ids[:num_target_tokens],
            target_positions=input_batch.positions[:num_target_tokens],
            target_query_start_loc=input_batch.query_start_loc,
            num_rejected=num_rejected, next_token_ids=next_token_ids,
            hidden_states=hidden_states, mask_hidden=self.mask_hidden_state,
            num_reqs=num_reqs, num_tokens=num_target_tokens, num_drafts=num_drafts,
            mask_token_id=self.mask_token_id, max_model_len=self.max_model_len,
            arange=self.arange, out_input_ids=self.input_buffers.input_ids,
            out_positions=self.input_buffers.positions,
            out_hidden_states=self.hidden_states,
            out_query_start_loc=self.input_buffers.query_start_loc,
            out_sample_indices=self.sample_indices, out_no_kv=self.no_kv)
        torch.add(input_batch.seq_lens[:num_reqs], num_mask,
                  out=self.input_buffers.seq_lens[:num_reqs])
        max_seq_len = int(input_batch.seq_lens_cpu_upper_bound[:num_reqs].max())
        self.draft_max_seq_len = min(max_seq_len + num_mask, self.max_model_len)

        batch_desc, batch_sync = dispatch_cg_and_sync_dp(
            self.prefill_cudagraph_manager, num_reqs, num_tokens, None,
            dp_size=self.dp_size, dp_rank=self.dp_rank, need_eager=is_profile,
            parallel_config=self.vllm_config.parallel_config)
        num_tokens_across_dp = (batch_sync.num_tokens_across_dp
                                if batch_sync is not None else None)
        draft_attn_metadata = draft_slot_mappings = None
        if not (dummy_run and skip_attn_for_dummy_run):
            assert self.slot_mappings is not None
            slots = self.block_tables.compute_slot_mappings(
                self.idx_mapping[:num_reqs], self.input_buffers.query_start_loc[: num_reqs + 1],
                self.input_buffers.positions, batch_desc.num_tokens, out=self.slot_mappings)
            slots[:, :num_tokens].masked_fill_(self.no_kv[:num_tokens], PAD_SLOT_ID)
            draft_slot_mappings = build_slot_mappings_by_layer(slots, self.kv_cache_config)
            query_start_loc_np = (input_batch.query_start_loc_np[: num_reqs + 1]
                                  + self.arange_np[: num_reqs + 1] * num_mask)
            draft_attn_metadata = self._build_attn_metadata(
                num_reqs=num_reqs, batch_desc=batch_desc,
                query_start_loc_np=query_start_loc_np,
                seq_lens_cpu_upper_bound=input_batch.seq_lens_cpu_upper_bound,
                step=num_mask, slot_mappings=slots)

        self._prepare_eplb_forward(num_tokens)
        last_hidden = self._draft_forward(
            num_reqs, batch_desc.num_tokens, draft_attn_metadata, draft_slot_mappings,
            num_tokens_across_dp, batch_desc.cg_mode)

        num_samples = num_reqs * num_drafts
        sample_indices = self.sample_indices[:num_samples]
        self.sample_idx_mapping[:num_samples] = torch.repeat_interleave(
            self.idx_mapping[:num_reqs], num_drafts, output_size=num_samples)
        draft_tokens = self.sample_draft(
            last_hidden[sample_indices],
            # Sampling keys a draw by the position before the drafted token.
            self.input_buffers.positions[sample_indices],
            self.sample_idx_mapping[:num_samples], self.temperature, self.seeds,
            (self.arange[:num_samples] % num_drafts).to(torch.int32), self.draft_logits,
            num_steps=num_drafts)
        self.draft_tokens[:num_reqs, :num_drafts] = draft_tokens.view(num_reqs, num_drafts)
        if k == 0:
            self.draft_tokens[:num_reqs].fill_(-1)
        return self.draft_tokens[:num_reqs]
