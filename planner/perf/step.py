"""One forward step through one (average) layer and through a pipeline stage, per GPU.

The average layer is exact: Σ over the model's layers (dense/MoE, full/sliding/chunked) / L. A layer is three
kernel groups, each timed by its own roofline (summing per-group rooflines, rather than taking
one roofline over the layer, keeps a memory-bound attention from hiding behind a compute-bound MLP):
  1. shared weights (attention projections, dense MLP, shared experts, router): 2·P·T FLOP, P·b_w bytes;
  2. routed experts: 2·k·P_e·T FLOP, E[touched](T)·P_e·b_w bytes (moe.expected_experts_touched);
  3. attention core: a·C·T FLOP (a = attention_flops_per_token_per_context, C the keys a query attends: its
     context, capped by a sliding window or chunk), KV read S·C·kv bytes + KV write;
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

from ..specs.model import LayerKind, ModelSpec
from .comm import alltoall_time_s, ring_allreduce_time_s
from .memory import EMBEDDING_BYTES_PER_ELEMENT, kv_bytes_per_token_per_layer_per_gpu, shared_weight_bytes_per_element
from .moe import expected_experts_touched
from .params import PerfParams
from .roofline import compute_time_s, memory_time_s
from .window import attention_spans, mean_span, span_at

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
               sequences, context_from, context_to, reads_cache, chunk_tokens=0.0, chunk_attended_tokens=0.0,
               chunk_kv_read_tokens=0.0) -> StepTime:
    """One average layer's forward step on one GPU: Σ over the model's layers / L, each layer the sum of its own
    kernel groups' rooflines (dense and MoE layers differ in their shared-weight group, full, sliding and chunked
    layers in their attention groups; the experts group and communication scale with the MoE layers' share).

    tokens          tokens processed in the step (decode: sequences × tokens per sequence; prefill: prompt)
    sequences       sequences in the step (KV reads are per sequence)
    context_from/to the contexts the step's queries sit at, spread evenly (decode: isl … isl + osl; a prefill:
                    0 … prompt): each attends its layer's span there (perf/window.py mean_span)
    reads_cache     decode reads each sequence's attended KV from HBM; a prefill computes its own in the step
    chunk_*         a prefill chunk in the same step (group 4): its tokens K, keys per token A for full attention
                    (a chunk at offset o of k tokens: o + k/2; its queries spread over A ± K/2) and the cached
                    prefix R it reads for full attention (o). Windowed layers attend and read within their window
                    there. 0: a plain step."""
    tp = np.asarray(tp, float)
    ep = np.asarray(ep, float)
    chunk = np.asarray(chunk_tokens, float)
    own = np.asarray(tokens, float)  # the decode (or whole-prompt) tokens of group 3
    tokens = own + chunk  # tokens through the weights and collectives
    wb = np.asarray(weight_bytes, float)
    shared_wb = shared_weight_bytes_per_element(model, wb)
    L = model.num_layers
    step = None
    for mlp in ("dense", "moe"):
        n = sum(k.mlp == mlp for k in model.layer_kinds)
        if n:
            shared = model.shared_params_of(LayerKind(mlp))
            g = _group(2.0 * shared * tokens / tp, shared * shared_wb / tp, hw.peak_flops_per_s, hw.hbm_bytes_per_s, p)
            step = g.scaled(n / L) if step is None else step + g.scaled(n / L)
    if model.is_moe:
        f = model.moe_layer_fraction
        touched = expected_experts_touched(model.num_experts, model.experts_per_token, tokens)
        experts = _group(f * 2.0 * model.experts_per_token * model.expert_params * tokens / tp,
                         f * touched * model.expert_params * wb / tp,
                         hw.peak_flops_per_s, hw.hbm_bytes_per_s, p)
        step = step + experts
    kv_token = kv_bytes_per_token_per_layer_per_gpu(model, kv_bytes, tp)
    a = model.attention_flops_per_token_per_context
    has_chunk = np.any(chunk > 0)
    center = np.asarray(chunk_attended_tokens, float)
    for kind, n in attention_spans(model).items():
        span = mean_span(kind, context_from, context_to)
        read = np.asarray(sequences, float) * span if reads_cache else 0.0
        attn = _group(a * span * own / tp, (read + own) * kv_token, hw.attention_flops_per_s, hw.hbm_bytes_per_s, p)
        step = step + attn.scaled(n / L)
        if has_chunk:
            # never more than A: queries of several prompts' chunks need not be contiguous (A − K/2 may be < 0)
            keys = np.minimum(center, mean_span(kind, np.maximum(center - chunk / 2.0, 0.0), center + chunk / 2.0))
            prefix = span_at(kind, chunk_kv_read_tokens)
            g = _group(a * keys * chunk / tp, (prefix + chunk) * kv_token, hw.attention_flops_per_s,
                       hw.hbm_bytes_per_s, p)
            step = step + g.scaled(n / L)
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
