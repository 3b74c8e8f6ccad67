"""One forward step through one (average) layer and through a pipeline stage, per GPU.

A layer is three kernel groups, each timed by its own roofline (summing per-group rooflines, rather than taking
one roofline over the layer, keeps a memory-bound attention from hiding behind a compute-bound MLP):
  1. shared weights (attention projections, dense MLP, shared experts, router): 2·P·T FLOP, P·b_w bytes;
  2. routed experts: 2·k·P_e·T FLOP, E[touched](T)·P_e·b_w bytes (moe.expected_experts_touched);
  3. attention core: a·C·T FLOP (a = attention_flops_per_token_per_context), KV read S·C·kv bytes + KV write;
  4. in a mixed step (continuous batching with chunked prefill), the attention of a prefill chunk of K tokens that
     rides on the decode batch: a·A·K FLOP (A keys per chunk token), KV read R·kv + write K·kv bytes. It is its own
     kernel group (engines run decode and prefill attention as separate kernels), while groups 1–2 and the
     collectives see all T + K tokens at once: the weights are read once for the whole step;
plus communication: per layer one TP all-reduce after attention and one after the MLP, or on MoE layers with
EP > 1, a dispatch and a combine all-to-all (and an all-reduce over the TP/EP ranks sharing an expert).
All quantities are per GPU (divided over TP) and broadcast over numpy arrays of candidates."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..specs.model import ModelSpec
from .comm import alltoall_time_s, ring_allreduce_time_s
from .memory import EMBEDDING_BYTES_PER_ELEMENT, kv_bytes_per_token_per_layer_per_gpu
from .moe import expected_experts_touched
from .params import PerfParams
from .roofline import compute_time_s, memory_time_s

ACTIVATION_BYTES_PER_ELEMENT = 2.0  # activations travel in 16-bit between GPUs


@dataclass(frozen=True)
class Hardware:
    """Per-candidate hardware arrays (or scalars)."""

    peak_flops_per_s: object  # tensor FLOP/s in the weights' compute dtype
    attention_flops_per_s: object  # 16-bit FLOP/s for the attention core
    hbm_bytes_per_s: object
    scale_up_bytes_per_s: object


@dataclass(frozen=True)
class StepTime:
    """Per-GPU time of a step, split by what bounds each part (arrays)."""

    time_s: object
    compute_bound_s: object  # time of kernel groups whose roofline is compute
    memory_bound_s: object  # time of kernel groups whose roofline is memory
    comm_s: object
    flops: object
    bytes: object

    def __add__(self, other: "StepTime") -> "StepTime":
        return StepTime(*(np.add(getattr(self, f), getattr(other, f)) for f in self.__dataclass_fields__))

    def scaled(self, k) -> "StepTime":
        return StepTime(*(np.multiply(getattr(self, f), k) for f in self.__dataclass_fields__))


def _group(flops, bytes_moved, peak, hbm, p: PerfParams) -> StepTime:
    c = compute_time_s(flops, peak, p.flops_efficiency)
    m = memory_time_s(bytes_moved, hbm, p.hbm_efficiency)
    t = np.maximum(c, m)
    zero = np.zeros_like(t)
    return StepTime(t, np.where(c >= m, t, 0.0), np.where(c >= m, 0.0, t), zero, np.asarray(flops, float) + zero,
                    np.asarray(bytes_moved, float) + zero)


def layer_step(model: ModelSpec, hw: Hardware, p: PerfParams, *, tp, ep, weight_bytes, kv_bytes, tokens,
               sequences, kv_read_tokens, attended_tokens, chunk_tokens=0.0, chunk_attended_tokens=0.0,
               chunk_kv_read_tokens=0.0) -> StepTime:
    """One average layer's forward step on one GPU.

    tokens          tokens processed in the step (decode: sequences × tokens per sequence; prefill: prompt)
    sequences       sequences in the step (KV reads are per sequence)
    kv_read_tokens  cached tokens each sequence reads from HBM (decode: its context; prefill: 0)
    attended_tokens keys each query token attends to on average (decode: context; causal prefill: ~prompt/2)
    chunk_*         a prefill chunk in the same step (group 4): its tokens K, keys per token A (a chunk at offset
                    o of k tokens: o + k/2), cached prefix tokens R it reads (o). 0: a plain step."""
    tp = np.asarray(tp, float)
    ep = np.asarray(ep, float)
    chunk = np.asarray(chunk_tokens, float)
    tokens = np.asarray(tokens, float) + chunk  # tokens through the weights and collectives
    shared = _group(2.0 * model.layer_shared_params * tokens / tp,
                    model.layer_shared_params * np.asarray(weight_bytes, float) / tp,
                    hw.peak_flops_per_s, hw.hbm_bytes_per_s, p)
    step = shared
    if model.is_moe:
        f = model.moe_layer_fraction
        touched = expected_experts_touched(model.num_experts, model.experts_per_token, tokens)
        experts = _group(f * 2.0 * model.experts_per_token * model.expert_params * tokens / tp,
                         f * touched * model.expert_params * np.asarray(weight_bytes, float) / tp,
                         hw.peak_flops_per_s, hw.hbm_bytes_per_s, p)
        step = step + experts
    kv_token = kv_bytes_per_token_per_layer_per_gpu(model, kv_bytes, tp)
    own = tokens - chunk  # the decode (or whole-prompt) tokens of group 3
    attn = _group(model.attention_flops_per_token_per_context * np.asarray(attended_tokens, float) * own / tp,
                  (np.asarray(sequences, float) * np.asarray(kv_read_tokens, float) + own) * kv_token,
                  hw.attention_flops_per_s, hw.hbm_bytes_per_s, p)
    step = step + attn
    if np.any(chunk > 0):
        step = step + _group(model.attention_flops_per_token_per_context * np.asarray(chunk_attended_tokens, float)
                             * chunk / tp, (np.asarray(chunk_kv_read_tokens, float) + chunk) * kv_token,
                             hw.attention_flops_per_s, hw.hbm_bytes_per_s, p)
    comm = layer_comm_time_s(model, hw, p, tp=tp, ep=ep, tokens=tokens)
    return step + StepTime(comm, 0.0, 0.0, comm, 0.0, 0.0)


def layer_comm_time_s(model: ModelSpec, hw: Hardware, p: PerfParams, *, tp, ep, tokens):
    """Per-layer communication inside a stage (scale-up link): see module docstring."""
    msg = np.asarray(tokens, float) * model.hidden_size * ACTIVATION_BYTES_PER_ELEMENT
    allreduce = ring_allreduce_time_s(tp, msg, hw.scale_up_bytes_per_s, p.link_efficiency, p.allreduce_latency_s)
    if not model.is_moe:
        return 2.0 * allreduce
    f = model.moe_layer_fraction
    ep = np.asarray(ep, float)
    # dispatch + combine: each GPU holds tokens/ep of the step and sends each token to k experts
    a2a = alltoall_time_s(ep, msg / ep * model.experts_per_token, hw.scale_up_bytes_per_s, p.link_efficiency,
                          p.allreduce_latency_s)
    inner = ring_allreduce_time_s(tp / ep, msg, hw.scale_up_bytes_per_s, p.link_efficiency, p.allreduce_latency_s)
    moe_layer = allreduce + np.where(ep > 1, 2.0 * a2a + inner, allreduce)
    return (1.0 - f) * 2.0 * allreduce + f * moe_layer


def lm_head_step(model: ModelSpec, hw: Hardware, p: PerfParams, *, tp, logit_tokens) -> StepTime:
    """The LM head on the last stage: 2·V·h FLOP per token that needs logits; V·h 16-bit weights per step."""
    tp = np.asarray(tp, float)
    return _group(2.0 * model.lm_head_params * np.asarray(logit_tokens, float) / tp,
                  model.lm_head_params * EMBEDDING_BYTES_PER_ELEMENT / tp,
                  hw.attention_flops_per_s, hw.hbm_bytes_per_s, p)


def embedding_step(model: ModelSpec, hw: Hardware, p: PerfParams, *, tokens) -> StepTime:
    """Embedding lookup on the first stage: reads T rows of h 16-bit values; plus `head_stage_overhead_s`."""
    g = _group(0.0, np.asarray(tokens, float) * model.hidden_size * EMBEDDING_BYTES_PER_ELEMENT,
               hw.attention_flops_per_s, hw.hbm_bytes_per_s, p)
    extra = p.head_stage_overhead_s
    return g + StepTime(extra, 0.0, extra, 0.0, 0.0, 0.0)
