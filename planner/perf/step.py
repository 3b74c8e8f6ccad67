"""One forward step through one (average) layer and through a pipeline stage, per GPU.

A stage of a replica has TP × DP GPUs: attention (and every non-expert weight) runs TP-way inside each of DP
attention groups, each group with its own sequences and KV cache; the routed experts of MoE layers are spread
over EP ranks of expert-TP = TP·DP/EP GPUs each. The average layer is exact: Σ over the model's layers
(dense/MoE, full/sliding/chunked) / L. A layer is kernel groups, each timed by its own roofline (summing
per-group rooflines, rather than taking one roofline over the layer, keeps a memory-bound attention from hiding
behind a compute-bound MLP):
  1. shared weights (attention projections, dense MLP, shared experts, router): 2·P·(T/DP)/TP FLOP,
     P·b_w/TP bytes;
  2. routed experts on the busiest EP rank: 2·P_e·ρ·T·k/EP / eTP FLOP (ρ = moe.busiest_rank_load_ratio), and
     its touched experts' weights (moe.expected_experts_touched_on_rank) · P_e·b_w / eTP bytes;
  3. attention core: a·C·(T/DP)/TP FLOP (a = attention_flops_per_token_per_context, in a prefill
     prefill_attention_flops_per_token_per_context: MLA's materialized form; C the keys a query
     attends: its context, capped by a sliding window or chunk), KV read (S/DP)·C·kv bytes + KV write;
  4. in a mixed step (continuous batching with chunked prefill), the attention of a prefill chunk of K tokens that
     rides on the decode batch: a·A·(K/DP) FLOP (A keys per chunk token), KV read R·kv + write (K/DP)·kv bytes.
     It is its own kernel group (engines run decode and prefill attention as separate kernels), while groups 1–2
     and the collectives see all T + K tokens at once: the weights are read once for the whole step;
plus communication: per layer one TP all-reduce after attention and one after the MLP, or on MoE layers with
EP > 1, a dispatch and a combine all-to-all over the EP ranks (two-level across scale-up domains) and an
all-reduce over the eTP GPUs sharing an expert.
Each GEMM group's compute efficiency depends on its shape (kernels.gemm_flops_efficiency: the useful share of
whole tiles in whole waves over the SMs; prefill and decode have their own maximum), the decode KV read's bandwidth
on the attention work available (kernels.attention_occupancy), and routed experts compute whole kernel tiles per
expert, in M tiles sized to its tokens, in expectation over the routing spread of its load
(kernels.expected_padded_rows, moe_tile_tokens). Every layer also costs a fixed `layer_overhead_s` (launches, norms,
rotary and other small kernels).
With two-batch overlap (PerfParams.two_batch_overlap) a MoE layer with EP > 1 runs as two half-batches whose
all-to-alls overlap the other half's compute (`two_batch_overlap_step`); otherwise all of the above add up.
All quantities are per GPU and broadcast over numpy arrays of candidates; DP = 1 and EP = 1 are plain TP."""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from ..specs.model import LayerKind, ModelSpec
from .comm import ring_allreduce_time_s, two_level_alltoall_time_s
from .kernels import (attention_occupancy, expected_padded_rows, gemm_flops_efficiency, grouped_gemm_efficiency,
                      moe_tile_tokens)
from .memory import EMBEDDING_BYTES_PER_ELEMENT, kv_bytes_per_token_per_layer_per_gpu, shared_weight_bytes_per_element
from .moe import busiest_rank_load_ratio, expected_experts_touched_on_rank, remote_domain_share
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
    scale_up_bytes_per_s: object  # the link TP collectives use (scale-up fabric, or PCIe), per GPU per direction
    tp_link_efficiency: object = None  # share of it collectives reach; None: PerfParams.link_efficiency
    tp_latency_s: object = None  # per-collective latency on it; None: PerfParams.allreduce_latency_s
    a2a_bytes_per_s: object = None  # the link EP all-to-alls use inside a domain/host; None: the TP link
    a2a_efficiency: object = None
    a2a_latency_s: object = None
    domain_gpus: object = np.inf  # GPUs one all-to-all reaches without the scale-out NIC
    scale_out_bytes_per_s: object = np.inf  # NIC bandwidth per GPU per direction
    sm_count: object = 0  # SMs / CUs / MXUs (kernels.py); 0: shape effects off


@dataclass(frozen=True)
class StepTime:
    """Per-GPU time of a step, split by what bounds each part (arrays). A time-only step (`layer_step(time_only=
    True)`, for callers that read time_s alone) keeps None in the other fields: its time_s is the same float."""

    time_s: object
    compute_bound_s: object  # time of kernel groups whose roofline is compute
    memory_bound_s: object  # time of kernel groups whose roofline is memory
    comm_s: object
    flops: object
    bytes: object

    @classmethod
    def of_time(cls, time_s) -> "StepTime":
        """A time-only step: time_s kept, the other fields None."""
        return cls(time_s, None, None, None, None, None)

    def __add__(self, other: "StepTime") -> "StepTime":
        if self.compute_bound_s is None:  # time-only: one field, the same adds
            return StepTime.of_time(np.add(self.time_s, other.time_s))
        return StepTime(*(np.add(getattr(self, f), getattr(other, f)) for f in self.__dataclass_fields__))

    def scaled(self, k) -> "StepTime":
        if type(k) is float and k == 1.0:  # x · 1.0 is x: a kind's own model weighs every group 1 (no passes)
            return self
        if self.compute_bound_s is None:
            return StepTime.of_time(np.multiply(self.time_s, k))
        return StepTime(*(np.multiply(getattr(self, f), k) for f in self.__dataclass_fields__))


def _group(flops, bytes_moved, peak, hbm, flops_efficiency, hbm_efficiency, time_only=False) -> StepTime:
    return _roofline(compute_time_s(flops, peak, flops_efficiency), memory_time_s(bytes_moved, hbm, hbm_efficiency),
                     flops, bytes_moved, time_only)


def _roofline(c, m, flops, bytes_moved, time_only=False) -> StepTime:
    """max(compute time, memory time), recorded by what bounds it (time_only: the time alone)."""
    t = np.maximum(c, m)
    if time_only:
        return StepTime.of_time(t)
    zero = np.zeros_like(t)
    compute_bound = c >= m
    return StepTime(t, np.where(compute_bound, t, 0.0), np.where(compute_bound, 0.0, t), zero,
                    np.asarray(flops, float) + zero, np.asarray(bytes_moved, float) + zero)


def _gemm_efficiency(p: PerfParams, hw: Hardware, tokens, cols, max_efficiency):
    return gemm_flops_efficiency(tokens, cols, hw.sm_count, max_efficiency, p.gemm_tile_tokens, p.gemm_tile_cols)


def layer_step(model: ModelSpec, hw: Hardware, p: PerfParams, *, tp, ep, weight_bytes, kv_bytes, tokens,
               sequences, context_from, context_to, reads_cache, chunk_tokens=0.0, chunk_attended_tokens=0.0,
               chunk_kv_read_tokens=0.0, dp=1, redundant_experts=0, prefill: bool = False,
               time_only: bool = False) -> StepTime:
    """One average layer's forward step on one GPU: Σ over the model's layers / L, each layer the sum of its own
    kernel groups' rooflines (dense and MoE layers differ in their shared-weight group, full, sliding and chunked
    layers in their attention groups; the experts group and communication scale with the MoE layers' share).

    tokens          tokens processed in the step by the whole stage (all DP groups; decode: sequences × tokens
                    per sequence; prefill: the prompts' tokens)
    sequences       sequences in the step over all DP groups (KV reads are per sequence)
    context_from/to the contexts the step's queries sit at, spread evenly (decode: isl … isl + osl; a prefill:
                    0 … prompt): each attends its layer's span there (perf/window.py mean_span)
    reads_cache     decode reads each sequence's attended KV from HBM; a prefill computes its own in the step
    chunk_*         a prefill chunk in the same step (group 4): its tokens K, keys per token A for full attention
                    (a chunk at offset o of k tokens: o + k/2; its queries spread over A ± K/2) and the cached
                    prefix R it reads for full attention (o). Windowed layers attend and read within their window
                    there. 0: a plain step. Over all DP groups (one chunk per group: K/DP each).
    dp              attention data-parallel groups; each holds tokens/dp, sequences/dp and chunk/dp
    redundant_experts  extra expert copies spread over the EP ranks (EPLB); see moe.busiest_rank_load_ratio
    prefill         the GEMMs' maximum efficiency is prefill_flops_efficiency, else flops_efficiency (with a chunk:
                    the smaller of the two)
    time_only       only time_s is kept (StepTime's other fields None): the same float, without the per-group
                    bookkeeping of what bounds it (the search's and simulator's chunk terms read the time alone)"""
    kw = dict(tp=tp, ep=ep, weight_bytes=weight_bytes, kv_bytes=kv_bytes, sequences=sequences,
              context_from=context_from, context_to=context_to, reads_cache=reads_cache,
              chunk_attended_tokens=chunk_attended_tokens, chunk_kv_read_tokens=chunk_kv_read_tokens, dp=dp,
              redundant_experts=redundant_experts, prefill=prefill, time_only=time_only)
    plain = _plain_layer_step(model, hw, p, tokens=tokens, chunk_tokens=chunk_tokens, **kw)
    if not (p.two_batch_overlap and model.is_moe) or not np.any(np.asarray(ep) > 1):
        return plain
    return two_batch_overlap_step(model, hw, p, plain, tokens=tokens, chunk_tokens=chunk_tokens, **kw)


def two_batch_overlap_step(model: ModelSpec, hw: Hardware, p: PerfParams, plain: StepTime, *, tokens, chunk_tokens,
                           **kw) -> StepTime:
    """The average layer under two-batch overlap (TBO: SGLang `--enable-two-batch-overlap`, DeepSeek's V3/R1
    serving): the step's batch runs as two micro-batches of half its tokens and sequences, and while one computes,
    the other's all-to-all is in flight. DeepSeek's profile (deepseek-ai/profile-data@ae7fc078 README: "two
    micro-batches to overlap computation and all-to-all communication", prefill and decode) and SGLang's
    operations per layer (lm-sys.github.io@2db4e404 blog/2025-05-05-large-scale-ep.md "Two-batch Overlap":
    attention | dispatch, MLP | combine, yielding to the other micro-batch at each bar) pair each compute block of
    one micro-batch with a transfer of the other, and a micro-batch's next block waits for its own transfer. Per
    MoE layer with EP > 1, with a = a half's attention and shared-weight groups (+ its TP all-reduce and the fixed
    per-layer time), e = its routed experts (+ the eTP all-reduce), d and c = its dispatch and combine:

        t_moe   = P(a, c) + P(a, d) + P(e, d) + P(e, c)              (A.attn‖B.combine, B.attn‖A.dispatch,
                                                                       A.experts‖B.dispatch, B.experts‖A.combine)
        P(x, y) = max(y, x + σ·y)                                    (compute x beside transfer y)
        t_dense = 2 · (a_dense + 2 · allreduce)                      (nothing to hide: the halves run in turn)

    and once per step the first micro-batch's attention runs alone and the last combine is exposed at the end:
    + min(a, c) over the step (spread over the L layers here). Each half is timed by the same groups at half the
    tokens: its GEMMs at their lower efficiency, every weight read once per half, the busiest EP rank's load and
    touched experts of a half-batch (moe.py), the fixed per-layer time paid per half. σ is the share of the SMs a
    transfer holds while in flight: a prefill's (DeepEP normal kernels) DEEPEP_NORMAL_KERNEL_SMS / SMs, so the
    compute beside it runs at 1 − σ; decode's low-latency kernels hold none (σ = 0: "after RDMA messages are
    issued, all GPU SMs are freed", profile-data README). With σ = 0 and the transfers short t_moe = 2(a + e)
    (compute-bound: all hidden), with them long 2(d + c) (communication-bound). Rows with EP = 1 (no all-to-all
    to hide) keep the plain step."""
    half = dict(kw, sequences=np.asarray(kw["sequences"], float) / 2.0)
    t_half = np.asarray(tokens, float) / 2.0
    k_half = np.asarray(chunk_tokens, float) / 2.0
    groups, fixed = _layer_groups(model, hw, p, tokens=t_half, chunk_tokens=k_half, **half)
    allreduce, dispatch, combine, inner = comm_parts(
        model, hw, p, tp=kw["tp"], ep=kw["ep"], tokens=t_half + k_half, dp=kw["dp"],
        redundant_experts=kw["redundant_experts"], weight_bytes=kw["weight_bytes"], prefill=kw["prefill"])
    attention = sum(g.time_s * w for (what, _), g, w in groups if what in ("attention", "chunk"))
    shared = {kind: g.time_s for (what, kind), g, _ in groups if what == "shared"}
    f = model.moe_layer_fraction
    experts = next(g.time_s for (what, _), g, _ in groups if what == "experts") / f
    a = shared.get("moe", 0.0) + attention + fixed + allreduce
    e = experts + inner
    sms = np.asarray(hw.sm_count, float)
    sigma = (np.where(sms > 0, np.minimum(1.0, DEEPEP_NORMAL_KERNEL_SMS / np.maximum(sms, 1.0)), 0.0)
             if kw["prefill"] else 0.0)
    t_moe = tbo_moe_layer_s(a, e, dispatch, combine, sigma)
    t_dense = 2.0 * (shared.get("dense", 0.0) + attention + fixed + 2.0 * allreduce)
    time_s = (1.0 - f) * t_dense + f * t_moe + np.minimum(a, combine) / model.num_layers
    on = np.asarray(kw["ep"], float) > 1
    if kw["time_only"]:
        return StepTime.of_time(np.where(on, time_s, plain.time_s))
    work = None
    for _, g, w in groups:
        work = g.scaled(w) if work is None else work + g.scaled(w)
    busy_compute, busy_memory = 2.0 * work.compute_bound_s, 2.0 * (work.memory_bound_s + fixed)
    overlapped = StepTime(time_s, busy_compute, busy_memory, time_s - busy_compute - busy_memory,
                          2.0 * work.flops, 2.0 * work.bytes)
    return StepTime(*(np.where(on, getattr(overlapped, n), getattr(plain, n)) for n in StepTime.__dataclass_fields__))


def tbo_moe_layer_s(attention_s, experts_s, dispatch_s, combine_s, sm_share=0.0):
    """One MoE layer of two micro-batches under two-batch overlap (`two_batch_overlap_step`), s, from one half's
    compute a (attention and shared weights), e (routed experts) and transfers d (dispatch), c (combine):
    P(a, c) + P(a, d) + P(e, d) + P(e, c), where P(x, y) = max(y, x + σ·y) is a compute block x beside a transfer
    y that holds σ (`sm_share`) of the SMs while in flight (the compute runs at 1 − σ for y, at full rate after)."""
    def paired(x, y):
        return np.maximum(y, x + sm_share * y)

    a, e, d, c = attention_s, experts_s, dispatch_s, combine_s
    return paired(a, c) + paired(a, d) + paired(e, d) + paired(e, c)


def _plain_layer_step(model: ModelSpec, hw: Hardware, p: PerfParams, *, tokens, chunk_tokens, **kw) -> StepTime:
    """`layer_step` without two-batch overlap: every kernel group, then the communication, one after another."""
    groups, fixed = _layer_groups(model, hw, p, tokens=tokens, chunk_tokens=chunk_tokens, **kw)
    step = None
    for _, g, weight in groups:
        step = g.scaled(weight) if step is None else step + g.scaled(weight)
    comm = layer_comm_time_s(model, hw, p, tp=kw["tp"], ep=kw["ep"], tokens=np.asarray(tokens, float)
                             + np.asarray(chunk_tokens, float), dp=kw["dp"],
                             redundant_experts=kw["redundant_experts"], weight_bytes=kw["weight_bytes"],
                             prefill=kw["prefill"])
    if kw["time_only"]:
        return step + StepTime.of_time(comm + fixed)
    return step + StepTime(comm + fixed, 0.0, fixed, comm, 0.0, 0.0)


_walks: dict = {}  # id(model) -> (model, its layers counted by MLP kind, attention_spans(model))


def _layer_walk(model: ModelSpec) -> tuple[dict, dict]:
    """The layer counts `_layer_groups` needs from a walk over the model's layers ({"dense": n, "moe": n} and
    attention_spans), once per model object: a single step (the simulator's, ~1 ms) spent a tenth of its time
    walking DeepSeek-V3's 61 layers and hashing their kinds. Kept by identity (the entry holds the model, so its
    id stays its own); the dicts are read only."""
    hit = _walks.get(id(model))
    if hit is None or hit[0] is not model:
        if len(_walks) >= 256:
            _walks.clear()
        mlp = {kind: sum(k.mlp == kind for k in model.layer_kinds) for kind in ("dense", "moe")}
        hit = _walks[id(model)] = (model, mlp, attention_spans(model))
    return hit[1], hit[2]


def _layer_groups(model: ModelSpec, hw: Hardware, p: PerfParams, *, tp, ep, weight_bytes, kv_bytes, tokens,
                  sequences, context_from, context_to, reads_cache, chunk_tokens, chunk_attended_tokens,
                  chunk_kv_read_tokens, dp, redundant_experts, prefill, time_only=False):
    """The kernel groups of `layer_step` (module docstring), in the order it sums them, as (what, StepTime of one
    layer of that kind, weight in the average layer): ("shared", "dense"|"moe") per MLP kind (weight n/L),
    ("experts", None) (already over the MoE-layer fraction: weight 1), ("attention", kind) and ("chunk", kind)
    per attention kind (n/L); and the fixed per-layer time."""
    tp = np.asarray(tp, float)
    ep = np.asarray(ep, float)
    dp = np.asarray(dp, float)
    chunk = np.asarray(chunk_tokens, float)
    own = np.asarray(tokens, float)  # the decode (or whole-prompt) tokens of group 3
    tokens = own + chunk  # tokens through the weights and collectives
    group_tokens = tokens / dp  # tokens one attention group puts through its (TP-sharded) shared weights
    wb = np.asarray(weight_bytes, float)
    shared_wb = shared_weight_bytes_per_element(model, wb)
    L = model.num_layers
    # GEMM maximum: a step that carries a prefill chunk runs its GEMMs no faster than a prefill does (measured on
    # H100: the mixed step's increment tracks the prefill's time, not the decode GEMMs' higher efficiency); the
    # smaller of the two maxima keeps a chunk from ever making a step cheaper
    mixed_max = np.minimum(p.prefill_flops_efficiency, p.flops_efficiency)
    eta_max = np.where(prefill, p.prefill_flops_efficiency, np.where(chunk > 0, mixed_max, p.flops_efficiency))
    groups = []
    for mlp in ("dense", "moe"):
        n = _layer_walk(model)[0][mlp]
        if n:
            shared = model.shared_params_of(LayerKind(mlp))
            # the shared GEMMs as one of N = P_shared / (h · TP) output columns (QKV, O, gate/up, down side by side)
            eff = _gemm_efficiency(p, hw, group_tokens, shared / (model.hidden_size * tp), eta_max)
            g = _group(2.0 * shared * group_tokens / tp, shared * shared_wb / tp, hw.peak_flops_per_s,
                       hw.hbm_bytes_per_s, eff, p.hbm_efficiency, time_only)
            groups.append((("shared", mlp), g, n / L))
    if model.is_moe:
        f = model.moe_layer_fraction
        etp = tp * dp / ep  # GPUs sharing each expert
        rho = busiest_rank_load_ratio(model.num_experts, model.experts_per_token, tokens, ep, redundant_experts)
        busiest_assignments = rho * tokens * model.experts_per_token / ep
        touched = expected_experts_touched_on_rank(model.num_experts, model.experts_per_token, tokens, ep,
                                                   redundant_experts, rho)
        # the grouped GEMM computes whole tiles per expert, at the efficiency of its padded rows, in M tiles sized
        # to the tokens each expert gets and the tokens the launch sees (kernels.moe_tile_tokens); each of the
        # rank's (E + R)/ep experts takes a Binomial(T·ρ, k/(E + R)) load (summing to the busiest rank's
        # assignments) and pads it to whole tiles, in expectation over that spread (kernels.expected_padded_rows)
        slots = (model.num_experts + redundant_experts) / ep
        tile = moe_tile_tokens(busiest_assignments / np.maximum(touched, 1e-9), p.moe_min_tile_tokens,
                               p.gemm_tile_tokens, busiest_assignments / model.experts_per_token,
                               p.moe_full_tile_batch_tokens)
        rows = expected_padded_rows(tokens * rho, model.experts_per_token / (model.num_experts + redundant_experts),
                                    slots, tile)
        # one grouped launch: the experts' M tiles (rows / t_m of them, the expected count) share the waves
        # (kernels.grouped_gemm_efficiency, each M tile a group of t_m rows, so the rows' padding is not rounded
        # up a second time); wave quantization per expert would charge every expert a whole wave of idle SMs
        on = tile > 0
        per_expert = np.where(touched > 0, rows / np.maximum(touched, 1e-9), 0.0)
        eff = grouped_gemm_efficiency(np.where(on, tile, per_expert), model.expert_params / (model.hidden_size * etp),
                                      np.where(on, rows / np.where(on, tile, 1.0), touched), hw.sm_count, eta_max,
                                      tile, p.gemm_tile_cols)
        experts = _group(f * 2.0 * model.expert_params * rows / etp,
                         f * touched * model.expert_params * wb / etp,
                         hw.peak_flops_per_s, hw.hbm_bytes_per_s, eff, p.hbm_efficiency, time_only)
        groups.append((("experts", None), experts, 1.0))
    kv_token = kv_bytes_per_token_per_layer_per_gpu(model, kv_bytes, tp)
    # a prefill (and a prefill chunk, group 4) attends in MLA's materialized form, decode in its absorbed form
    a = model.prefill_attention_flops_per_token_per_context if prefill else model.attention_flops_per_token_per_context
    a_chunk = model.prefill_attention_flops_per_token_per_context
    has_chunk = np.any(chunk > 0)
    center = np.asarray(chunk_attended_tokens, float)
    kv_heads = np.maximum(1.0, model.num_kv_heads / tp)
    eta_attn = p.attention_flops_efficiency
    for kind, n in _layer_walk(model)[1].items():
        span = mean_span(kind, context_from, context_to)
        read = np.asarray(sequences, float) / dp * span if reads_cache else 0.0
        # the KV read at the bandwidth the attention work allows (kernels.attention_occupancy); the write at full
        occupancy = attention_occupancy(np.asarray(sequences, float) / dp, kv_heads, span, hw.sm_count,
                                        p.attention_ctas_per_sm, p.attention_split_kv_tokens)
        attn_flops = a * span * own / dp / tp
        attn = _roofline(compute_time_s(attn_flops, hw.attention_flops_per_s, eta_attn),
                         memory_time_s(read * kv_token, hw.hbm_bytes_per_s,
                                       p.hbm_efficiency * np.maximum(occupancy, 1e-12))  # no work: 0 s
                         + memory_time_s(own / dp * kv_token, hw.hbm_bytes_per_s, p.hbm_efficiency),
                         attn_flops, None if time_only else (read + own / dp) * kv_token, time_only)
        groups.append((("attention", kind), attn, n / L))
        if has_chunk:
            g = chunk_attention_group(kind, hw, p, attention_flops_per_token=a_chunk, kv_token_bytes=kv_token, tp=tp,
                                      dp=dp, chunk_tokens=chunk, chunk_attended_tokens=center,
                                      chunk_kv_read_tokens=chunk_kv_read_tokens, time_only=time_only)
            groups.append((("chunk", kind), g, n / L))
    return groups, p.layer_overhead_s


@lru_cache(maxsize=64)
def kind_models(model: ModelSpec) -> tuple[tuple[LayerKind, int, ModelSpec], ...]:
    """Each layer kind of the model (first-appearance order), its count n_k, and the model made of L layers of
    that kind alone: every per-layer term of that model (`layer_step`, memory.layer_weight_bytes_per_gpu, KV per
    layer) is the time or size of one layer of kind k, t_k. `layer_step` is linear in the kinds' shares (each kernel
    group and the communication are scaled by n_k / L), so Σ_k n_k · t_k = L · layer_step(model) up to float
    rounding. A dense kind of a MoE model drops the experts (is_moe False): its terms are the dense MLP's, and the
    routing statistics, which a dense layer scales by 0, are not computed. A one-kind model is itself.
    Under two-batch overlap (`two_batch_overlap_step`) the sum is not exact: a dense kind is timed as a plain dense
    layer (the average times its dense share as two half-batches) and the step's exposed last combine is charged
    per MoE layer; DeepSeek-V3 decode at TP2 DP4 EP8 on H200 comes out 0.7 % below L · layer_step (gpt-oss, all
    MoE: equal)."""
    counts = model.layer_kind_counts()
    if len(counts) == 1:
        ((kind, n),) = counts.items()
        return ((kind, n, model),)
    L = model.num_layers
    out = []
    for kind, n in counts.items():
        dense = kind.mlp == "dense"
        km = replace(model, layer_kinds=(kind,) * L, num_dense_layers=L if dense else 0,
                     **({"num_experts": 0} if dense else {}))
        out.append((kind, n, km))
    return tuple(out)


def kind_prefix_counts(model: ModelSpec) -> np.ndarray:
    """C[k, b]: layers of kind k (kind_models' order) among the model's layers 0 … b − 1, shape [K, L + 1]; a stage
    over layers [a, b) holds C[k, b] − C[k, a] layers of kind k."""
    kinds = [k for k, _, _ in kind_models(model)]
    at = np.array([kinds.index(k) for k in model.layer_kinds], np.int64)
    one_hot = (at[None, :] == np.arange(len(kinds))[:, None]).astype(np.int64)
    return np.concatenate([np.zeros((len(kinds), 1), np.int64), np.cumsum(one_hot, axis=1)], axis=1)


def placement_dict(model: ModelSpec, layers_per_stage) -> dict:
    """The JSON placement block: layers per stage, and for a model of several layer kinds each stage's layers by
    kind ({"dense": 3, "moe": 28}; an attention span other than full is named: "moe/sliding-128")."""
    out = {"layers_per_stage": [int(n) for n in layers_per_stage]}
    kinds = kind_models(model)
    if len(kinds) > 1:
        names = [k.mlp if k.attention == "full" else f"{k.mlp}/{k.attention}-{k.window}" for k, _, _ in kinds]
        out["layer_kinds_per_stage"] = [{name: int(n) for name, n in zip(names, row) if n}
                                        for row in stage_kind_counts(model, layers_per_stage).tolist()]
    return out


def stage_kind_counts(model: ModelSpec, layers_per_stage) -> np.ndarray:
    """[pp, K] layers of each kind on each stage of a placement (stages take consecutive layers in order)."""
    c = kind_prefix_counts(model)
    ends = np.cumsum(np.concatenate([[0], np.asarray(layers_per_stage, np.int64)]))
    return (c[:, ends[1:]] - c[:, ends[:-1]]).T


def chunk_attention_group(kind: LayerKind, hw: Hardware, p: PerfParams, *, attention_flops_per_token,
                          kv_token_bytes, tp, dp, chunk_tokens, chunk_attended_tokens, chunk_kv_read_tokens,
                          time_only=False) -> StepTime:
    """Group 4 of one layer of this attention kind (module docstring): a prefill chunk of K tokens (over all DP
    groups) attending A keys per token around its centre, reading a cached prefix R: a·A'·(K/DP)/TP FLOP at the
    attention efficiency, (R' + K/DP)·kv bytes, where A' and R' are A and R within the kind's window.
    `attention_flops_per_token` is a (per token per key), `kv_token_bytes` one token's KV bytes on one GPU."""
    chunk = np.asarray(chunk_tokens, float)
    center = np.asarray(chunk_attended_tokens, float)
    a = attention_flops_per_token
    # never more than A: queries of several prompts' chunks need not be contiguous (A − K/2 may be < 0)
    keys = np.minimum(center, mean_span(kind, np.maximum(center - chunk / 2.0, 0.0), center + chunk / 2.0))
    prefix = span_at(kind, chunk_kv_read_tokens)
    return _group(a * keys * chunk / dp / tp, (prefix + chunk / dp) * kv_token_bytes, hw.attention_flops_per_s,
                  hw.hbm_bytes_per_s, p.attention_flops_efficiency, p.hbm_efficiency, time_only)


def chunk_attention_layer_s(model: ModelSpec, hw: Hardware, p: PerfParams, *, tp, kv_bytes, chunk_tokens,
                            chunk_attended_tokens, chunk_kv_read_tokens, dp=1, spans=None):
    """Group 4 averaged over the model's layers (Σ over attention kinds of n_kind/L · `chunk_attention_group`), s:
    the only part of a mixed step that depends on where the chunks sit in their prompts (A, R) rather than on how
    many tokens the step carries. `spans`: `attention_spans(model)`, when the caller keeps it (it walks every
    layer)."""
    tp, dp = np.asarray(tp, float), np.asarray(dp, float)
    kv_token = kv_bytes_per_token_per_layer_per_gpu(model, kv_bytes, tp)
    a = model.prefill_attention_flops_per_token_per_context
    out = 0.0
    for kind, n in (attention_spans(model) if spans is None else spans).items():
        g = chunk_attention_group(kind, hw, p, attention_flops_per_token=a, kv_token_bytes=kv_token, tp=tp, dp=dp,
                                  chunk_tokens=chunk_tokens, chunk_attended_tokens=chunk_attended_tokens,
                                  chunk_kv_read_tokens=chunk_kv_read_tokens, time_only=True)
        out = out + g.time_s * (n / model.num_layers)
    return out


def _or(value, default):
    return default if value is None else value


# DeepSeek-V3/R1 serving sends the dispatch all-to-all in FP8 and the combine in BF16 ("matrix multiplications and
# dispatch transmissions adopt the FP8 format ... combine transmissions use the BF16 format": deepseek-ai/
# open-infra-index@56d86855 202502OpenSourceWeek/day_6_one_more_thing_deepseekV3R1_inference_system_overview.md;
# DeepEP's dispatch takes FP8 input): the dispatch carries 1 byte per element when the expert GEMMs take 8-bit
# input (8-bit weights), else 16-bit; 4-bit weights (W4A16 kernels) are counted at 16-bit.
FP8_DISPATCH_BYTES_PER_ELEMENT = 1.0
# SMs DeepEP's high-throughput (normal, prefill) all-to-all kernels occupy while in flight: `Buffer.num_sms = 20`,
# its default (deepseek-ai/DeepEP@04b06f7a deep_ep/buffer.py); SGLang's prefill uses DeepEP's normal kernels
# (sglang#6017 `--deepep-mode normal`). Decode's low-latency kernels free the SMs while in flight.
DEEPEP_NORMAL_KERNEL_SMS = 20.0


def layer_comm_time_s(model: ModelSpec, hw: Hardware, p: PerfParams, *, tp, ep, tokens, dp=1, redundant_experts=0,
                      weight_bytes=2.0, prefill: bool = False):
    """Per-layer communication inside a stage (see module docstring). With M = (T/DP)·h·2 bytes (one group's
    activations) and M_a2a = ρ·T·k/EP·h·2 (what the busiest EP rank's GPUs receive):

        dense layer:           2 · allreduce(TP, M)
        MoE layer, EP = 1:     2 · allreduce(TP, M)
        MoE layer, EP > 1:     allreduce(TP, M) + all-to-all(EP, M_a2a · s) + all-to-all(EP, M_a2a)
                               + allreduce(eTP, T·h·2)

    (dispatch, then combine; s = FP8_DISPATCH_BYTES_PER_ELEMENT / 2 with 8-bit weights, else 1) averaged over
    layers by the MoE-layer fraction; the all-to-all is two-level (comm.two_level_alltoall_time_s) once the EP
    ranks span more GPUs than one domain holds. A prefill's all-to-alls (DeepEP's high-throughput kernels) send
    each token once to every other domain that holds one of its experts and forward it inside that domain, so the
    share of M_a2a leaving over the NIC is moe.remote_domain_share (E[remote domains hit] / k) instead of the
    per-expert (n − d)/n; decode's low-latency kernels send per expert (DeepEP README: normal kernels forward
    NVLink↔RDMA, low-latency kernels use pure RDMA)."""
    allreduce, dispatch, combine, inner = comm_parts(model, hw, p, tp=tp, ep=ep, tokens=tokens, dp=dp,
                                                     redundant_experts=redundant_experts,
                                                     weight_bytes=weight_bytes, prefill=prefill)
    if not model.is_moe:
        return 2.0 * allreduce
    f = model.moe_layer_fraction
    ep = np.asarray(ep, float)
    moe_layer = allreduce + np.where(ep > 1, dispatch + combine + inner, allreduce)
    return (1.0 - f) * 2.0 * allreduce + f * moe_layer


def comm_parts(model: ModelSpec, hw: Hardware, p: PerfParams, *, tp, ep, tokens, dp=1, redundant_experts=0,
               weight_bytes=2.0, prefill: bool = False):
    """The collectives of one layer (`layer_comm_time_s`), each on its own, s: (one TP all-reduce of a group's
    activations, the dispatch all-to-all, the combine all-to-all, the all-reduce over the eTP GPUs sharing an
    expert). The last three are those of a MoE layer with EP > 1 (0 for a dense model)."""
    tp = np.asarray(tp, float)
    dp = np.asarray(dp, float)
    tokens = np.asarray(tokens, float)
    tp_eff = _or(hw.tp_link_efficiency, p.link_efficiency)
    tp_lat = _or(hw.tp_latency_s, p.allreduce_latency_s)
    msg = tokens * model.hidden_size * ACTIVATION_BYTES_PER_ELEMENT
    allreduce = ring_allreduce_time_s(tp, msg / dp, hw.scale_up_bytes_per_s, tp_eff, tp_lat)
    if not model.is_moe:
        return allreduce, 0.0, 0.0, 0.0
    ep = np.asarray(ep, float)
    etp = tp * dp / ep
    rho = busiest_rank_load_ratio(model.num_experts, model.experts_per_token, tokens, ep, redundant_experts)
    a2a_msg = rho * msg / ep * model.experts_per_token
    dispatch_msg = a2a_msg * np.where(np.asarray(weight_bytes, float) == 1.0,
                                      FP8_DISPATCH_BYTES_PER_ELEMENT / ACTIVATION_BYTES_PER_ELEMENT, 1.0)
    ranks_per_domain = np.maximum(1.0, np.floor(np.asarray(hw.domain_gpus, float) / etp))
    out_share = (remote_domain_share(model.num_experts, model.experts_per_token, ep, ranks_per_domain)
                 if prefill else None)
    link = (_or(hw.a2a_bytes_per_s, hw.scale_up_bytes_per_s), _or(hw.a2a_efficiency, tp_eff),
            _or(hw.a2a_latency_s, tp_lat), hw.scale_out_bytes_per_s, p.link_efficiency, p.p2p_latency_s)
    dispatch = two_level_alltoall_time_s(ep, ranks_per_domain, dispatch_msg, *link, out_share=out_share)
    combine = two_level_alltoall_time_s(ep, ranks_per_domain, a2a_msg, *link, out_share=out_share)
    inner = ring_allreduce_time_s(etp, msg, _or(hw.a2a_bytes_per_s, hw.scale_up_bytes_per_s),
                                  _or(hw.a2a_efficiency, tp_eff), _or(hw.a2a_latency_s, tp_lat))
    return allreduce, dispatch, combine, inner


def lm_head_step(model: ModelSpec, hw: Hardware, p: PerfParams, *, tp, logit_tokens, time_only=False) -> StepTime:
    """The LM head on the last stage: 2·V·h FLOP per token that needs logits; V·h 16-bit weights per step."""
    tp = np.asarray(tp, float)
    eff = _gemm_efficiency(p, hw, logit_tokens, model.vocab_size / tp, p.flops_efficiency)
    return _group(2.0 * model.lm_head_params * np.asarray(logit_tokens, float) / tp,
                  model.lm_head_params * EMBEDDING_BYTES_PER_ELEMENT / tp,
                  hw.attention_flops_per_s, hw.hbm_bytes_per_s, eff, p.hbm_efficiency, time_only)


def embedding_step(model: ModelSpec, hw: Hardware, p: PerfParams, *, tokens, time_only=False) -> StepTime:
    """Embedding lookup on the first stage: reads T rows of h 16-bit values; plus `head_stage_overhead_s`."""
    g = _group(0.0, np.asarray(tokens, float) * model.hidden_size * EMBEDDING_BYTES_PER_ELEMENT,
               hw.attention_flops_per_s, hw.hbm_bytes_per_s, p.flops_efficiency, p.hbm_efficiency, time_only)
    extra = p.head_stage_overhead_s
    return g + (StepTime.of_time(extra) if time_only
                else StepTime(extra, 0.0, extra, 0.0, 0.0, 0.0))
