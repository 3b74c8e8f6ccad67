"""Per-GPU memory: weights, KV cache, activations, runtime reserve; and the largest batch that fits.

Conventions: a stage has TP × DP GPUs. Non-expert weights are sharded over TP and replicated in each of the DP
attention groups; routed experts are spread over all TP·DP GPUs (EP ranks × expert-TP — the same bytes per GPU
for any EP), plus any redundant expert copies. Embeddings and the LM head stay in 16-bit (FP8/INT4 checkpoints
such as NVIDIA ModelOpt and AWQ keep them unquantized) and are vocabulary-parallel over TP. KV heads are split
over TP down to one head per GPU; beyond that each GPU of a group keeps a replica (MQA on TP8 holds the whole KV
on every GPU; MLA's latent is replicated on every TP rank) — but each DP group holds only its own sequences'
KV, so DP·TP GPUs with TP = 1 store MQA/MLA KV once.
A sliding-window or chunked layer holds at most its window of tokens per sequence (perf/window.py); per-layer
figures here are exact averages over the model's layers (Σ over layers / L).
A checkpoint quantized only in its routed experts (gpt-oss MXFP4) keeps attention, norms and router in 16-bit
when served at its native precision."""
from __future__ import annotations

import numpy as np

from ..specs.model import ModelSpec
from ..units import BYTES_PER_ELEMENT
from .window import mean_held_tokens_per_layer

EMBEDDING_BYTES_PER_ELEMENT = BYTES_PER_ELEMENT["bf16"]
LOGIT_BYTES_PER_ELEMENT = BYTES_PER_ELEMENT["fp32"]


def shared_weight_bytes_per_element(model: ModelSpec, weight_bytes_per_element):
    """Bytes per element of the weights every token uses (attention, dense MLP, shared experts, router): the
    weight precision, except 16-bit for a checkpoint whose native quantization covers only the routed experts
    when it is served at that native precision."""
    wb = np.asarray(weight_bytes_per_element, float)
    if model.native_quant_scope != "experts" or not model.native_weights:
        return wb
    native = BYTES_PER_ELEMENT[model.native_weights]
    return np.where(np.isclose(wb, native), EMBEDDING_BYTES_PER_ELEMENT, wb)


def layer_weight_bytes(model: ModelSpec, weight_bytes_per_element):
    """Bytes of one (average) transformer layer: shared weights × their bytes per element (above) + routed-expert
    weights × bytes per element."""
    wb = np.asarray(weight_bytes_per_element, float)
    return model.layer_shared_params * shared_weight_bytes_per_element(model, wb) + model.layer_expert_params * wb


def layer_weight_bytes_per_gpu(model: ModelSpec, weight_bytes_per_element, tp, dp=1, redundant_experts=0):
    """Bytes of one (average) layer on one GPU: shared weights (at their bytes per element, above) / TP + routed
    experts · (E + R)/E / (TP·DP)."""
    wb = np.asarray(weight_bytes_per_element, float)
    tp = np.asarray(tp, float)
    experts = model.layer_expert_params
    if model.is_moe and redundant_experts:
        experts = experts * (model.num_experts + redundant_experts) / model.num_experts
    return (model.layer_shared_params * shared_weight_bytes_per_element(model, wb) / tp
            + experts * wb / (tp * np.asarray(dp, float)))


def kv_fraction_per_gpu(model: ModelSpec, tp):
    """Share of a layer's KV cache one TP rank stores: ceil(n_kv / tp) / n_kv, or 1 for MLA."""
    tp = np.asarray(tp)
    if model.kv_lora_rank:
        return np.ones_like(tp, dtype=float)
    n_kv = model.num_kv_heads
    return np.ceil(n_kv / tp) / n_kv


def kv_bytes_per_token_per_layer_per_gpu(model: ModelSpec, kv_bytes_per_element, tp):
    share = kv_fraction_per_gpu(model, tp)
    return model.kv_elements_per_token_per_layer * np.asarray(kv_bytes_per_element, float) * share


def stage_weight_bytes_per_gpu(model: ModelSpec, weight_bytes_per_element, tp, layers, first, last, dp=1,
                               redundant_experts=0, layers_bytes=None):
    """Weights one GPU of a pipeline stage holds: its layers (layer_weight_bytes_per_gpu), plus the embedding on
    the first stage and the LM head on the last (a tied head is stored once when one stage is both, else on both
    ends). `layers_bytes`: the layers' bytes when given (a model of several layer kinds: Σ_k n_k · one layer of
    kind k, perf.step.kind_models) instead of `layers` average layers."""
    w = (layers * layer_weight_bytes_per_gpu(model, weight_bytes_per_element, tp, dp, redundant_experts)
         if layers_bytes is None else layers_bytes)
    emb = model.embedding_params * EMBEDDING_BYTES_PER_ELEMENT / tp
    head = model.lm_head_params * EMBEDDING_BYTES_PER_ELEMENT / tp
    first = np.asarray(first, bool)
    last = np.asarray(last, bool)
    tied_single = model.tie_word_embeddings & first & last
    return w + np.where(first, emb, 0.0) + np.where(last & ~tied_single, head, 0.0)


def kv_bytes_per_sequence_per_layer_per_gpu(model: ModelSpec, kv_bytes_per_element, tp, context_tokens):
    """KV bytes one sequence at `context_tokens` keeps per (average) layer on one GPU:
    (Σ over layers of min(C, window) / L) · kv_elements · bytes · share_per_gpu."""
    held = mean_held_tokens_per_layer(model, context_tokens)
    return held * kv_bytes_per_token_per_layer_per_gpu(model, kv_bytes_per_element, tp)


def kv_bytes_per_sequence(model: ModelSpec, kv_bytes_per_element, context_tokens):
    """KV bytes of one sequence at `context_tokens` over all layers (unsharded; what a prefill hands to decode):
    Σ over layers of min(C, window) · kv_elements · bytes."""
    held = mean_held_tokens_per_layer(model, context_tokens) * model.num_layers
    return held * model.kv_elements_per_token_per_layer * np.asarray(kv_bytes_per_element, float)


def kv_cache_bytes_per_gpu(model: ModelSpec, kv_bytes_per_element, tp, layers, sequences, context_tokens, dp=1):
    """KV bytes one GPU of a stage holds for a replica's `sequences` sequences of `context_tokens` each, split
    over DP attention groups: (S / DP) · layers · (per-sequence, per-layer KV above)."""
    per_seq_layer = kv_bytes_per_sequence_per_layer_per_gpu(model, kv_bytes_per_element, tp, context_tokens)
    return np.asarray(sequences, float) / np.asarray(dp, float) * layers * per_seq_layer


def activation_bytes_per_gpu(model: ModelSpec, tp, max_batched_tokens, decode_sequences):
    """Peak transient activations of one forward step, per GPU (an estimate, not a measurement):
    the largest step carries `max_batched_tokens` tokens through a layer: residual, normed input, attention
    output and QKV (≈4·h, 16-bit) plus the widest MLP intermediate / tp (×3 for gate, up and product), and the
    fp32 logits of the decoding sequences (vocab / tp each)."""
    ff = max(model.dense_intermediate_size if model.num_dense_layers else 0,
             model.experts_per_token * model.expert_intermediate_size
             + model.num_shared_experts * model.shared_expert_intermediate_size)
    tp = np.asarray(tp, float)
    per_token = 2.0 * (4.0 * model.hidden_size + 3.0 * ff / tp)
    logits = np.asarray(decode_sequences, float) * model.vocab_size / tp * LOGIT_BYTES_PER_ELEMENT
    return max_batched_tokens * per_token + logits


def reserve_bytes(memory_bytes, reserve_fraction):
    """Memory left to the runtime (CUDA context, allocator, graphs): a fixed share of capacity."""
    return np.asarray(memory_bytes, float) * reserve_fraction
