"""FLOPs of training: per token (model FLOPs, and the hardware FLOPs recomputation adds) and for the whole run.

Convention (PaLM, Chowdhery et al. 2022, arXiv:2204.02311, appendix B; Kaplan et al. 2020, arXiv:2001.08361,
section 2.1; Narayanan et al. 2021, arXiv:2104.04473, section 5.1): a training step costs 3x the forward pass
(backward = 2x forward), a forward pass costs 2 FLOPs per multiply-add, so

    model FLOPs per token = 6·N + 12·L·(a·d_head)·s

with N the weights that multiply activations (every layer's active weights and the LM head; the input embedding
is a lookup) and the attention term QKᵀ and PV over s keys, 3 · L · s · 4·a·d_head. Like PaLM's MFU, the
attention term is NOT halved for causal masking (a causal kernel skips half of it; MFU conventions count it
whole). MLA (DeepSeek-V2/V3, Kimi-K2) trains in its materialized multi-head form, as a prefill runs it
(ModelSpec.prefill_attention_flops_per_token_per_context, the inference prefill's own formula): per query·key per
layer 2·a·(qk_nope + qk_rope) + 2·a·v_head in place of 4·a·d_head. MoE counts the top-k routed experts a token
uses. Model FLOPs define MFU; recomputation adds hardware FLOPs (HFU) but not model FLOPs.
"""
from __future__ import annotations

from ..specs.model import ModelSpec

RECOMPUTE = ("none", "selective", "full")
TRAIN_PASSES = 3.0  # forward + backward (2x forward): Kaplan et al. 2020 section 2.1; PaLM appendix B


def matmul_flops_per_token(m: ModelSpec) -> float:
    """Forward FLOPs of the weight matmuls per token: 2·N (N: active layer weights + LM head)."""
    return m.matmul_flops_per_token


def attention_flops_per_token(m: ModelSpec, seq_len: int) -> float:
    """Forward FLOPs of QKᵀ and PV per token at sequence length s, not halved for the causal mask:
    L · s · 4·a·d_head (MLA in its materialized multi-head form, as in an inference prefill: planner.specs.model)."""
    return m.num_layers * seq_len * m.prefill_attention_flops_per_token_per_context


def model_flops_per_token(m: ModelSpec, seq_len: int) -> float:
    """6·N + 12·L·a·d_head·s: forward + backward model FLOPs per trained token (PaLM appendix B)."""
    return TRAIN_PASSES * (matmul_flops_per_token(m) + attention_flops_per_token(m, seq_len))


def hardware_flops_per_token(m: ModelSpec, seq_len: int, recompute: str) -> float:
    """FLOPs the GPUs execute per token: model FLOPs plus what recomputation repeats in the backward pass.
    full: one more forward pass (8·N + 16·L·a·d_head·s; Narayanan et al. 2021 eq. 3 counts the same 4 passes);
    selective: the attention core QKᵀ/softmax/PV once more (Korthikanti et al. 2022, arXiv:2205.05198, section 4.2);
    none: nothing."""
    extra = {"none": 0.0, "selective": attention_flops_per_token(m, seq_len),
             "full": matmul_flops_per_token(m) + attention_flops_per_token(m, seq_len)}[recompute]
    return model_flops_per_token(m, seq_len) + extra


def flops_total(m: ModelSpec, seq_len: int, tokens: float) -> float:
    """Model FLOPs of the run: D tokens × model FLOPs per token."""
    return tokens * model_flops_per_token(m, seq_len)
