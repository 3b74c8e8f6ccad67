"""Bytes per GPU in training: model states under ZeRO 0-3 and activations under no / selective / full
recomputation, for a layout of t (TP) × p (PP) × d (DP) × c (CP) GPUs with e-way expert parallelism (EP ranks are
carved out of the d·c data-parallel ranks, as in Megatron-Core: experts are sharded t·p·e ways and replicated
d·c/e ways).

Mixed-precision Adam (Rajbhandari et al. 2020, ZeRO, arXiv:1910.02054, section 3.1): per parameter 2 bytes of
bf16 weights, 2 of bf16 gradients and K = 12 of optimizer state (fp32 master weights, momentum and variance),
16 bytes in all. Over N_d data-parallel ranks ZeRO-1 shards the optimizer state, ZeRO-2 also the gradients,
ZeRO-3 also the weights (the paper's Figure 1: (2+2+K)Ψ, (2+2)Ψ + KΨ/N_d, 2Ψ + (2+K)Ψ/N_d, (2+2+K)Ψ/N_d).
"""
from __future__ import annotations

import numpy as np

from ..specs.model import ModelSpec

WEIGHT_BYTES = 2.0  # bf16 weights
GRAD_BYTES = 2.0  # bf16 gradients
OPTIMIZER_BYTES = 12.0  # fp32 master weights + Adam m + Adam v (ZeRO's K = 12)
ACT_BYTES = 2.0  # bf16 activations


def model_state_bytes(params, dp, zero):
    """Weights, gradients and optimizer state per GPU (bytes) for Ψ = `params` held by the GPU's model-parallel
    shard, replicated over `dp` ranks, at ZeRO stage `zero` (Rajbhandari et al. 2020, Figure 1). Returns
    (weights, gradients, optimizer). Vectorized over numpy arrays."""
    params, dp, zero = np.asarray(params, float), np.asarray(dp, float), np.asarray(zero)
    weights = WEIGHT_BYTES * params / np.where(zero >= 3, dp, 1.0)
    grads = GRAD_BYTES * params / np.where(zero >= 2, dp, 1.0)
    optim = OPTIMIZER_BYTES * params / np.where(zero >= 1, dp, 1.0)
    return weights, grads, optim


def layers_on_stage(m: ModelSpec, pp):
    """Layers on the fullest pipeline stage: ⌈L / p⌉ (stages may differ by one layer)."""
    return np.ceil(m.num_layers / np.asarray(pp, float))


def params_per_gpu(m: ModelSpec, tp, pp, ep):
    """(Ψ_dense, Ψ_expert): parameters on the fullest stage's GPU. Dense: ⌈L/p⌉ layers' shared weights (attention,
    norms, dense MLPs, routers, shared experts) plus the embedding (first stage) or LM head, over t; routed
    experts: ⌈L/p⌉ layers' experts over t·e."""
    lay = layers_on_stage(m, pp)
    tp, ep = np.asarray(tp, float), np.asarray(ep, float)
    dense = (lay * m.layer_shared_params + max(m.embedding_params, m.lm_head_params)) / tp
    expert = lay * m.layer_expert_params / (tp * ep)
    return dense, expert


def activation_bytes_per_token_per_layer(m: ModelSpec, seq_len, recompute):
    """Stored activation bytes per token per layer before TP/CP sharding (Korthikanti et al. 2022,
    arXiv:2205.05198, section 4): with no recomputation s·b·h·(34 + 5·a·s/h) per layer, i.e. per token
    h·(34 + 5·a·s/h): attention 11h + 5·a·s (scores, softmax, dropout), two layer norms 4h, MLP 19h.
    With grouped-query or multi-query attention the K and V tensors (2h each in the paper, which assumes MHA)
    shrink to 2h·(kv heads / heads) each.
    Generalized here for gated and MoE MLPs: MLP = 2h (input) + h (dropout mask) + c·f bytes, f the active MLP
    width (top-k experts + shared + dense, averaged over layers), c = 4 (two f-wide bf16 tensors around the
    activation) or 6 for gated MLPs (gate, up and product); GPT-3's f = 4h gives Korthikanti's 19h.
    selective: the attention core (the 5·a·s term) is recomputed: h·34 (generalized likewise);
    full: only each layer's input is kept, 2h per token (plus one layer's full set while it is recomputed,
    added by `activation_bytes`)."""
    h = m.hidden_size
    # K and V are each 2·h·(kv heads / heads) bytes per token under GQA / MQA (Korthikanti's 2h each assume MHA)
    kv_saving = 4.0 * h * (1.0 - m.num_kv_heads / m.num_heads) if not m.kv_lora_rank else 0.0
    f_active = (m.num_dense_layers * m.dense_intermediate_size
                + m.num_moe_layers * (m.experts_per_token * m.expert_intermediate_size
                                      + m.num_shared_experts * m.shared_expert_intermediate_size)) / m.num_layers
    c = 6.0 if m.mlp_gated else 4.0
    linear = 11.0 * h - kv_saving + 4.0 * h + 3.0 * h + c * f_active
    scores = 5.0 * m.num_heads * np.asarray(seq_len, float)
    rc = np.asarray(recompute)
    return np.where(rc == "full", ACT_BYTES * h, np.where(rc == "selective", linear, linear + scores))


def activation_bytes(m: ModelSpec, seq_len, micro_batch, tp, pp, cp, micro_batches, recompute):
    """Activation bytes on the first pipeline stage's GPU. Sequence parallelism shards every term over t
    (Korthikanti et al. 2022 eq. 5), context parallelism the tokens over c; under 1F1B the first stage holds
    min(p, m) micro-batches in flight (Narayanan et al. 2021, section 2.2.1), each of b·s tokens on ⌈L/p⌉ layers.
    Full recomputation adds one layer's un-recomputed activations (the layer being recomputed)."""
    tokens = np.asarray(micro_batch, float) * np.asarray(seq_len, float) / np.asarray(cp, float)
    per_layer = activation_bytes_per_token_per_layer(m, np.asarray(seq_len, float) / np.asarray(cp, float),
                                                     recompute) * tokens / np.asarray(tp, float)
    in_flight = np.minimum(np.asarray(pp, float), np.asarray(micro_batches, float))
    total = per_layer * layers_on_stage(m, pp) * in_flight
    working = activation_bytes_per_token_per_layer(m, np.asarray(seq_len, float) / np.asarray(cp, float),
                                                   "none") * tokens / np.asarray(tp, float)
    return total + np.where(np.asarray(recompute) == "full", working, 0.0)
