"""`estimate()`: one deployment configuration in, latency / throughput / memory / cost out.

`step_terms()` computes, for arrays of candidates, every per-layer and per-stage quantity the planner needs;
`estimate()` and the search (planner/search/) both use it, so there is one copy of each formula."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from ..numbers import is_whole, round6
from ..specs.accelerator import Accelerator
from ..specs.cluster import pipeline_link_bytes_per_s
from ..specs.model import ModelSpec
from ..specs.workload import Workload
from ..units import BYTES_PER_ELEMENT, KV_PRECISIONS, WEIGHT_PRECISIONS
from . import memory as mem
from .batching import output_tokens_per_s, replica_time_per_round_s, steady_state_tpot_s
from .comm import p2p_time_s
from .cost import all_tokens_basis, marginal_usd_per_million, usd_per_million_at
from .params import PerfParams
from .pipeline import (balance_layer_kinds, balance_layers, chunk_stall_s, decode_cycle_s, prefill_latency_s,
                       stage_kind_times_s)
from .specdec import draft_pass_s, expected_tokens_per_step
from .step import (ACTIVATION_BYTES_PER_ELEMENT, Hardware, StepTime, embedding_step, kind_models, kind_prefix_counts,
                   layer_step, lm_head_step, placement_dict, stage_kind_counts)
from .window import attended_tokens_over_layers


@dataclass(frozen=True)
class SpecDecode:
    """Speculative decoding with a draft model proposing `draft_length` (γ) tokens, each accepted with
    probability `acceptance` (α)."""

    draft: ModelSpec
    draft_length: int
    acceptance: float

    def __post_init__(self) -> None:
        if not 1 <= self.draft_length <= 16:
            raise InputError(f"--spec-gamma must be in 1..16, got {self.draft_length}")
        if not 0 <= self.acceptance < 1:
            raise InputError(f"--spec-alpha must be in [0, 1), got {self.acceptance}")


@dataclass(frozen=True)
class Config:
    gpu: Accelerator
    tp: int = 1
    pp: int = 1
    ep: int = 1
    batch: int = 1  # concurrent sequences per replica (split into pp micro-batches, each over dp groups)
    weights: str = "bf16"
    kv: str = "bf16"
    layers_per_stage: tuple[int, ...] | None = None
    spec: SpecDecode | None = None
    usd_per_hour_per_gpu: float | None = None  # price override
    dp: int = 1  # attention data-parallel groups per stage (each TP-way, with its own sequences and KV)
    redundant_experts: int = 0  # extra expert copies over the EP ranks (EPLB), 0 = none

    @property
    def gpus(self) -> int:
        return self.tp * self.dp * self.pp

    @property
    def micro_batch(self) -> float:
        return self.batch / self.pp

    @property
    def price_per_gpu(self) -> float:
        return self.gpu.usd_per_hour if self.usd_per_hour_per_gpu is None else self.usd_per_hour_per_gpu


_hardware_kept: dict = {}  # (id(gpu), weights, tp, dp) -> (gpu, its Hardware)


def hardware(gpu: Accelerator, weights: str, tp: int = 1, dp: int = 1) -> Hardware:
    """The rates one GPU of a TP × DP stage sees: its tensor FLOP/s, HBM, the link TP collectives use
    (Accelerator.intra_node_link), the link EP all-to-alls use inside one node (over min(TP·DP, node) GPUs) and
    the scale-out NIC beyond it. Kept per GPU object (by identity; the entry holds it, so its id stays its own)
    and arguments: a search asks ~6k times for a few dozen distinct ones (Hardware is frozen)."""
    key = (id(gpu), weights, tp, dp)
    hit = _hardware_kept.get(key)
    if hit is not None and hit[0] is gpu:
        return hit[1]
    if len(_hardware_kept) >= 4096:
        _hardware_kept.clear()
    hw = _hardware_kept[key] = (gpu, _hardware(gpu, weights, tp, dp))
    return hw[1]


def _hardware(gpu: Accelerator, weights: str, tp: int, dp: int) -> Hardware:
    attn = gpu.flops_per_s.get("bf16") or gpu.flops_per_s.get("fp16") or max(gpu.flops_per_s.values())
    tp_link = gpu.intra_node_link(tp) or gpu.intra_node_link(1)
    a2a_link = gpu.intra_node_link(min(tp * dp, gpu.node_gpus))
    return Hardware(gpu.peak_flops(weights), attn, gpu.hbm_bytes_per_s, tp_link.bytes_per_s,
                    tp_link.efficiency, tp_link.latency_s, a2a_link.bytes_per_s, a2a_link.efficiency,
                    a2a_link.latency_s, gpu.node_gpus, gpu.scale_out_bytes_per_s, gpu.sm_count)


@dataclass(frozen=True)
class StepTerms:
    """Per-GPU times (s) and bytes for one candidate or an array of them."""

    decode_layer: StepTime  # one average layer, one micro-batch decode step
    decode_first: StepTime  # first-stage extra (embedding, input handling)
    decode_last: StepTime  # last-stage extra (LM head)
    prefill_layer: StepTime  # one layer, one request's prompt
    prefill_first: StepTime
    prefill_last: StepTime
    decode_p2p_s: Any
    prefill_p2p_s: Any
    layer_weight_bytes: Any  # per GPU, per layer
    kv_bytes_per_seq_layer: Any  # per GPU, per average layer, per sequence at full context (isl + osl), windowed
    # chunked prefill of one prompt riding on the decode micro-batch (`prefill_chunk_terms`): the prompt takes
    # `prefill_chunks` steps, each longer by these increments
    chunk: "ChunkTerms" = None
    prefill_chunks: Any = 1
    # what each of those steps adds beyond `chunk`, as a fraction of the decode micro-batch step (its layers,
    # extras incl. the per-step overhead, and hop): > 0 only where the prompts arriving per step overflow the token
    # budget and the steady-state round needs steps beyond the cycle's (`packed_chunk`)
    chunk_decode_share: Any = 0.0


@dataclass(frozen=True)
class ChunkTerms:
    """How much longer (s, per GPU) a decode step gets when a prefill chunk rides in the same forward pass: per
    layer, on the first stage (embedding), on the last (LM head) and per stage-to-stage hop."""

    layer_s: Any
    first_s: Any
    last_s: Any
    p2p_s: Any


def _chunk_step_kw(tp, ep, weight_bytes, kv_bytes, decode_tokens, dp, redundant_experts) -> dict:
    # only the steps' times are read (time_only: the same floats, without the bookkeeping of what bounds them)
    return dict(tp=tp, ep=ep, dp=dp, weight_bytes=weight_bytes, kv_bytes=kv_bytes, tokens=decode_tokens,
                sequences=0.0, context_from=0.0, context_to=0.0, reads_cache=False, redundant_experts=redundant_experts,
                time_only=True)


def chunk_base_layer_s(model: ModelSpec, hw: Hardware, p: PerfParams, *, tp, ep, weight_bytes, kv_bytes,
                       decode_tokens, dp=1, redundant_experts=0):
    """The step `prefill_chunk_terms` subtracts, per layer (s): the decode tokens alone through the weights and
    collectives (their attention left out: it cancels). Depends on the decode load only, so a caller asking for
    many chunks at one load may compute it once (the simulator's MoE chunk terms, #16)."""
    return layer_step(model, hw, p, **_chunk_step_kw(tp, ep, weight_bytes, kv_bytes, decode_tokens, dp,
                                                     redundant_experts)).time_s


def prefill_chunk_terms(model: ModelSpec, hw: Hardware, p: PerfParams, *, tp, ep, weight_bytes, kv_bytes,
                        decode_tokens, chunk_tokens, chunk_attended_tokens, chunk_kv_read_tokens, logit_tokens=0.0,
                        pipeline_link_bytes_per_s=np.inf, dp=1, redundant_experts=0, base_layer_s=None) -> ChunkTerms:
    """Mixed step − decode step, both from `layer_step` (the decode attention is its own kernel group, so it
    cancels: the increment does not depend on the decoders' context). `logit_tokens`: prompts the chunk
    completes (each needs one row of logits). With DP groups, `decode_tokens` and `chunk_tokens` are the whole
    stage's (one chunk per group); the embedding, LM head and stage-to-stage hop see one group's share.
    `base_layer_s`: `chunk_base_layer_s` at these arguments, when the caller keeps it.

    MoE tile edges: the increment inherits the grouped GEMM's M-tile padding (step.py), the expectation over each
    expert's Binomial load (kernels.expected_padded_rows), so a chunk that tips experts past a tile edge is charged
    the new tiles of the experts likely to cross it. Rounding the mean load instead (before 2026-11-27) made a
    cliff: Mixtral-8x7B TP2 on A100 at batch 512, 128/128, filled all 8 experts' 128-row tiles exactly and the
    128-token chunk padded every expert to a second tile (TPOT 164 ms against 88 ms at batch 576)."""
    kw = _chunk_step_kw(tp, ep, weight_bytes, kv_bytes, decode_tokens, dp, redundant_experts)
    mixed = layer_step(model, hw, p, chunk_tokens=chunk_tokens, chunk_attended_tokens=chunk_attended_tokens,
                       chunk_kv_read_tokens=chunk_kv_read_tokens, **kw)
    alone_s = layer_step(model, hw, p, **kw).time_s if base_layer_s is None else base_layer_s
    dpf = np.asarray(dp, float)
    dec = np.asarray(decode_tokens, float) / dpf
    both = dec + np.asarray(chunk_tokens, float) / dpf
    first = (embedding_step(model, hw, p, tokens=both, time_only=True).time_s
             - embedding_step(model, hw, p, tokens=dec, time_only=True).time_s)
    last = (lm_head_step(model, hw, p, tp=tp, logit_tokens=dec + logit_tokens, time_only=True).time_s
            - lm_head_step(model, hw, p, tp=tp, logit_tokens=dec, time_only=True).time_s)
    msg = model.hidden_size * ACTIVATION_BYTES_PER_ELEMENT
    hop = (p2p_time_s(both * msg, pipeline_link_bytes_per_s, p.link_efficiency, p.p2p_latency_s)
           - p2p_time_s(dec * msg, pipeline_link_bytes_per_s, p.link_efficiency, p.p2p_latency_s))
    return ChunkTerms(np.asarray(mixed.time_s) - np.asarray(alone_s), first, last, hop)


def prefill_chunks(isl, decode_tokens, max_batched_tokens: int):
    """Steps a prompt of `isl` tokens takes when each step's token budget (max_batched_tokens) is shared with
    `decode_tokens` decode tokens: ⌈isl / (budget − decode tokens)⌉ (at least one prompt token per step). With
    DP groups each group has its own budget and its own decode tokens (pass one group's)."""
    room = np.maximum(1.0, float(max_batched_tokens) - np.asarray(decode_tokens, float))
    return np.ceil(np.asarray(isl, float) / room - 1e-9)


def packed_chunk(isl, osl, sequences, decode_tokens, prompt_chunk_tokens, max_batched_tokens):
    """How chunked prefill packs prompts into a decode micro-batch's steps in steady state (per DP group).

    Each step every one of the group's `sequences` (S) decodes and S/OSL of them finish, so S·ISL/OSL prompt
    tokens arrive per step (A). The engine fills each step's token budget M after the D decode tokens
    (room R = M − D) with prompt chunks, several prompts' in one forward pass, so a step carries
    c = min(R, max(k, A)) prompt tokens: a lone prompt's chunk k (= ISL / its chunks) while fewer arrive (a
    prompt's chunks ride alone on a fraction A/k of the steps), the arrivals A when they fit, the room R when
    they overflow it (then A/R > 1 steps per cycle carry chunks: the round repeats the decode step A/R − 1 times
    more). Per prompt (ISL tokens) that is ISL/c chunk-carrying steps; written per chunk of the prompt's own
    (`prefill_chunks` of them, whose count TTFT's queueing bound reads), each costs

        k/c · (Δ(c) + max(0, 1 − c/A) · t_dec)

    Δ(c) the mixed step's increment at c prompt tokens (`prefill_chunk_terms`), t_dec the decode step. Returns
    (c, share = k/c, decode_share = k/c · max(0, 1 − c/A)). The round B decode tokens plus B·ISL/OSL prompt tokens
    then costs at least their FLOPs at peak (MFU ≤ 1): each step is at least its tokens' compute time."""
    k = np.asarray(prompt_chunk_tokens, float)
    # (no output tokens, as calibration's steps pass: no request finishes, none arrives)
    arriving = np.asarray(sequences, float) * np.asarray(isl, float) / float(osl) if osl > 0 else 0.0 * k
    room = np.maximum(1.0, np.asarray(max_batched_tokens, float) - np.asarray(decode_tokens, float))
    packed = np.minimum(room, np.maximum(k, arriving))
    share = k / packed
    over = np.where(arriving > packed, 1.0 - packed / np.maximum(arriving, 1e-300), 0.0)
    return packed, share, share * over


def step_terms(model: ModelSpec, hw: Hardware, p: PerfParams, *, tp, ep, weight_bytes, kv_bytes, micro_batch,
               isl: int, osl: int, tokens_per_seq=1, pipeline_link_bytes_per_s=np.inf, dp=1,
               redundant_experts=0, chunked: bool = True, prefill: bool = True, decode: bool = True,
               time_only: bool = False) -> StepTerms:
    """Decode at `micro_batch` sequences over the stage's DP groups, spread over contexts isl … isl + osl (full
    attention: isl + osl/2 keys per query on average), and prefill of one prompt of `isl` tokens in each DP group
    at once (causal: isl/2 keys per query; TTFT is that step's latency); sliding and chunked layers attend at most
    their window (perf/window.py). Chunked prefill puts one chunk per DP group into a decode step, so the chunk
    terms (the stall one prompt adds) are that mixed step's increment over DP: per prompt. `chunked=False` leaves
    the chunk terms out (chunk None, one chunk) for callers that need only the decode and prefill steps (the
    simulator's tables, whose 2-D grids would give MoE models one expert-load computation per grid point).
    `prefill=False` (with chunked=False) leaves the prefill terms out too (prefill_layer, prefill_first,
    prefill_last, prefill_p2p_s None): for callers that read the decode terms only (the search's decode-cycle
    bounds, table_of's `decode_only`); the decode terms are the same calls either way. `decode=False` leaves the
    decode layer step out (decode_layer None) for a caller that has it already (table_of's `decode_terms`).
    `time_only=True` keeps only time_s in the StepTime terms (their other fields None; the same time_s floats,
    less bookkeeping): for callers that read the times alone (the search's tables, the simulator's)."""
    dpf = np.asarray(dp, float)
    dec_tokens = np.asarray(micro_batch, float) * tokens_per_seq
    kw = dict(tp=tp, ep=ep, dp=dp, weight_bytes=weight_bytes, kv_bytes=kv_bytes, redundant_experts=redundant_experts)
    dec = (layer_step(model, hw, p, tokens=dec_tokens, sequences=micro_batch, context_from=isl,
                      context_to=np.add(isl, osl), reads_cache=True, time_only=time_only, **kw) if decode else None)
    if chunked and not prefill:
        raise ValueError("step_terms: the chunk terms need the prefill terms (prefill=False needs chunked=False)")
    pre = (layer_step(model, hw, p, tokens=np.asarray(isl, float) * dpf, sequences=dpf, context_from=0.0,
                      context_to=isl, reads_cache=False, prefill=True, time_only=time_only, **kw) if prefill else None)
    msg = model.hidden_size * ACTIVATION_BYTES_PER_ELEMENT
    # one prompt in c equal chunks of k = isl/c tokens; chunk j (offset j·k) attends j·k + k/2 keys per token and
    # reads its j·k cached tokens: on average isl/2 keys and (isl − k)/2 cached tokens
    chunk, chunks, decode_share = None, 1, 0.0
    if chunked:
        chunks = prefill_chunks(isl, dec_tokens / dpf, p.max_batched_tokens)
        k = np.asarray(isl, float) / chunks
        packed, share, decode_share = packed_chunk(isl, osl, micro_batch / dpf, dec_tokens / dpf, k,
                                                   p.max_batched_tokens)
        chunk = prefill_chunk_terms(model, hw, p, decode_tokens=dec_tokens, chunk_tokens=packed * dpf,
                                    chunk_attended_tokens=np.asarray(isl, float) / 2.0,
                                    chunk_kv_read_tokens=(np.asarray(isl, float) - k) / 2.0,
                                    logit_tokens=packed / np.asarray(isl, float),
                                    pipeline_link_bytes_per_s=pipeline_link_bytes_per_s, **kw)
        chunk = ChunkTerms(*(np.asarray(getattr(chunk, f)) * (share / dpf) for f in ChunkTerms.__dataclass_fields__))
        decode_share = decode_share / dpf
    return StepTerms(
        decode_layer=dec,
        decode_first=embedding_step(model, hw, p, tokens=dec_tokens / dpf, time_only=time_only),
        decode_last=lm_head_step(model, hw, p, tp=tp, logit_tokens=dec_tokens / dpf, time_only=time_only),
        prefill_layer=pre,
        prefill_first=embedding_step(model, hw, p, tokens=isl, time_only=time_only) if prefill else None,
        prefill_last=lm_head_step(model, hw, p, tp=tp, logit_tokens=1, time_only=time_only) if prefill else None,
        decode_p2p_s=p2p_time_s(dec_tokens / dpf * msg, pipeline_link_bytes_per_s, p.link_efficiency, p.p2p_latency_s),
        prefill_p2p_s=(p2p_time_s(isl * msg, pipeline_link_bytes_per_s, p.link_efficiency, p.p2p_latency_s)
                       if prefill else None),
        layer_weight_bytes=mem.layer_weight_bytes_per_gpu(model, weight_bytes, tp, dp, redundant_experts),
        kv_bytes_per_seq_layer=mem.kv_bytes_per_sequence_per_layer_per_gpu(model, kv_bytes, tp, np.add(isl, osl)) / dpf,
        chunk=chunk, prefill_chunks=chunks, chunk_decode_share=decode_share,
    )


@dataclass(frozen=True)
class DraftTerms:
    """What a draft model adds to a replica; it runs whole (TP-way, not pipelined) on the first stage's GPUs, over
    the replica's whole batch. Per GPU, arrays over candidates."""

    step_s: Any  # one draft decode pass (specdec.draft_pass_s, per-step overhead included)
    prefill_s: Any  # the draft's prefill of one prompt (added to TTFT)
    weight_bytes: Any  # the draft's weights on each first-stage GPU
    kv_bytes: Any  # the draft's KV cache for the batch at full context (isl + osl) on each first-stage GPU


def draft_terms(spec: "SpecDecode", hw: Hardware, p: PerfParams, *, tp, dp, weight_bytes, kv_bytes, batch, isl: int,
                osl: int) -> DraftTerms:
    """The draft model's step, prefill and memory terms (step_terms of the draft at the replica's whole batch, in
    the target's precisions); `estimate()` and the search's table both use this."""
    d = spec.draft
    dt = step_terms(d, hw, p, tp=tp, ep=1, weight_bytes=weight_bytes, kv_bytes=kv_bytes, micro_batch=batch, isl=isl,
                    osl=osl, dp=dp)
    step = draft_pass_s(d.num_layers, np.asarray(dt.decode_layer.time_s), np.asarray(dt.decode_first.time_s),
                        np.asarray(dt.decode_last.time_s), p.step_overhead_s)
    prefill = draft_pass_s(d.num_layers, np.asarray(dt.prefill_layer.time_s), np.asarray(dt.prefill_first.time_s),
                           np.asarray(dt.prefill_last.time_s))
    w = mem.stage_weight_bytes_per_gpu(d, weight_bytes, tp, d.num_layers, True, True)
    kv = mem.kv_cache_bytes_per_gpu(d, kv_bytes, tp, d.num_layers, batch, isl + osl, dp)
    return DraftTerms(step, prefill, w, kv)


def check_config(model: ModelSpec, c: Config) -> None:
    """Reject configurations that cannot be built (as opposed to ones that do not fit or are slow)."""
    for name, v in (("--tp", c.tp), ("--pp", c.pp), ("--ep", c.ep), ("--dp", c.dp), ("--batch", c.batch)):
        if not is_whole(v) or v < 1:
            raise InputError(f"{name} must be a positive integer, got {v!r}")
    if not is_whole(c.redundant_experts) or c.redundant_experts < 0:
        raise InputError(f"--redundant-experts must be an integer >= 0, got {c.redundant_experts!r}")
    if c.weights not in WEIGHT_PRECISIONS:
        raise InputError(f"--weights must be one of {', '.join(WEIGHT_PRECISIONS)}, got {c.weights!r}")
    if c.kv not in KV_PRECISIONS:
        raise InputError(f"--kv must be one of {', '.join(KV_PRECISIONS)}, got {c.kv!r}")
    if not c.gpu.supports_weights(c.weights):
        raise InputError(f"{c.gpu.id} has no {c.weights} tensor cores (has: {', '.join(sorted(c.gpu.flops_per_s))})")
    if c.gpu.intra_node_link(c.tp) is None:
        raise InputError(f"--tp {c.tp} exceeds {c.gpu.id}'s {c.gpu.node_gpus} GPUs on one scale-up domain or PCIe "
                         "host (TP does not cross the scale-out network; use --dp or --pp)")
    if model.num_heads % c.tp:
        raise InputError(f"--tp {c.tp} must divide the model's {model.num_heads} attention heads")
    if c.spec is not None and c.spec.draft.num_heads % c.tp:
        raise InputError(f"--tp {c.tp} must divide the draft model's {c.spec.draft.num_heads} attention heads (the "
                         "draft runs on the same TP GPUs)")
    if c.pp > model.num_layers:
        raise InputError(f"--pp {c.pp} exceeds the model's {model.num_layers} layers")
    if c.ep > 1 and not model.is_moe:
        raise InputError(f"--ep {c.ep}: {model.name} is not a mixture-of-experts model")
    if (c.tp * c.dp) % c.ep:
        raise InputError(f"--ep {c.ep} must divide --tp x --dp = {c.tp * c.dp} (the GPUs of one pipeline stage)")
    if c.redundant_experts and (c.ep == 1 or not model.is_moe):
        raise InputError("--redundant-experts needs expert parallelism (--ep > 1) on a mixture-of-experts model")
    if model.is_moe and (model.num_experts + c.redundant_experts) % c.ep:
        raise InputError(f"--ep {c.ep} must divide the {model.num_experts} experts"
                         + (f" plus {c.redundant_experts} redundant copies" if c.redundant_experts else "")
                         + " (each rank holds the same number)")
    if c.batch % c.dp:
        raise InputError(f"--batch {c.batch} must be a multiple of --dp {c.dp} (each attention group serves "
                         "batch/dp sequences)")
    if c.layers_per_stage is not None:
        if len(c.layers_per_stage) != c.pp or sum(c.layers_per_stage) != model.num_layers or min(c.layers_per_stage) < 1:
            raise InputError(f"layers per stage {list(c.layers_per_stage)} must be {c.pp} positive counts "
                             f"summing to {model.num_layers}")
    if c.usd_per_hour_per_gpu is not None and not c.usd_per_hour_per_gpu > 0:
        raise InputError(f"--price must be > 0, got {c.usd_per_hour_per_gpu}")


@dataclass(frozen=True)
class Estimate:
    model: str
    config: Config
    workload: Workload
    layers_per_stage: tuple[int, ...]
    ttft_s: float
    tpot_s: float
    decode_cycle_s: float
    output_tokens_per_s: float
    mfu: float
    mbu: float
    memory: dict[str, float]
    fits: bool
    max_batch: int
    bottleneck: str
    usd_per_hour: float
    messages: tuple[str, ...] = field(default=())
    prefill_stall_s: float = 0.0  # how much one prompt's (chunked) prefill lengthens the decode steps it shares
    # The slowest stage's increment for one prefill chunk (its share of the packed steps, `packed_chunk`; + the
    # chunk's hop with PP > 1), and the chunks per prompt: the exact search charges a prompt's stall at their bound
    # pp · prefill_chunks · chunk_stage_s (search/table.py; = prefill_stall_s with one stage, ≥ it with several);
    # read by the property tests' checker.
    chunk_stage_s: float = 0.0
    prefill_chunks: float = 1.0
    engine: str = ""  # the engine profile the perf terms were taken for
    profile: tuple[str, ...] = ()  # the catalog [profile.*] tables applied (PerfParams.for_gpu)
    two_batch_overlap: bool = False  # the MoE layers' steps were timed with two-batch overlap (perf/step.py)
    placement: dict[str, Any] = field(default_factory=dict)  # step.placement_dict (layers, and kinds per stage)

    @property
    def tokens_per_s_per_user(self) -> float:
        return 1.0 / self.tpot_s

    @property
    def usd_per_million_output_tokens(self) -> float:
        return usd_per_million_at(self.usd_per_hour, self.output_tokens_per_s)

    @property
    def usd_per_million_tokens(self) -> float:
        w = self.workload
        return all_tokens_basis(self.usd_per_million_output_tokens, w.isl, w.osl)

    @property
    def marginal_usd_per_million(self) -> tuple[float, float]:
        """($/M input tokens, $/M output tokens) at full load: perf.cost.marginal_usd_per_million."""
        w = self.workload
        per_token = self.tpot_s - max(self.config.batch - 1, 0) / w.osl * self.prefill_stall_s  # cycle per token
        return marginal_usd_per_million(self.usd_per_hour, per_token, self.config.batch, self.prefill_stall_s, w.isl)

    def to_dict(self) -> dict[str, Any]:
        c, w = self.config, self.workload
        return {
            "model": self.model,
            "gpu": c.gpu.id,
            "inputs": {"tp": c.tp, "dp": c.dp, "pp": c.pp, "ep": c.ep, "redundant_experts": c.redundant_experts,
                       "batch": c.batch, "isl": w.isl, "osl": w.osl,
                       "weights": c.weights, "kv": c.kv, "usd_per_hour_per_gpu": round(c.price_per_gpu, 6),
                       "price_tier": c.gpu.price.tier if c.usd_per_hour_per_gpu is None else "user",
                       "speculative": None if c.spec is None else {
                           "draft": c.spec.draft.name, "gamma": c.spec.draft_length, "alpha": c.spec.acceptance}},
            "placement": self.placement or {"layers_per_stage": list(self.layers_per_stage)},
            "tp_link": c.gpu.intra_node_link(c.tp).kind,
            "metrics": {
                "ttft_s": round6(self.ttft_s), "tpot_s": round6(self.tpot_s),
                "tokens_per_s_per_user": round6(self.tokens_per_s_per_user),
                "output_tokens_per_s": round6(self.output_tokens_per_s),
                "output_tokens_per_s_per_gpu": round6(self.output_tokens_per_s / c.gpus),
                "mfu": round6(self.mfu), "mbu": round6(self.mbu),
            },
            "memory_per_gpu_bytes": {k: int(round(v)) for k, v in self.memory.items()},
            "fits": self.fits,
            "max_batch": self.max_batch,
            "cost": {"usd_per_hour": round6(self.usd_per_hour), "basis": "capacity",
                     "usd_per_million_output_tokens": round6(self.usd_per_million_output_tokens),
                     "usd_per_million_tokens": round6(self.usd_per_million_tokens),
                     **{f"usd_per_million_{k}_tokens_marginal": round6(v)
                        for k, v in zip(("input", "output"), self.marginal_usd_per_million)}},
            "bottleneck": self.bottleneck,
            "perf_profile": {"engine": self.engine, "family": c.gpu.family, "tables": list(self.profile),
                             **({"two_batch_overlap": True} if self.two_batch_overlap else {})},
            "messages": list(self.messages),
        }


def estimate(model: ModelSpec, config: Config, workload: Workload, params: PerfParams | None = None) -> Estimate:
    c = config
    check_config(model, c)
    if params is None:  # the shipped catalog's calibrated values and profiles
        from ..catalog import load_catalog
        params = load_catalog().perf
    p = params.for_gpu(c.gpu.id, c.gpu.family)
    wb, kvb = BYTES_PER_ELEMENT[c.weights], BYTES_PER_ELEMENT[c.kv]
    hw = hardware(c.gpu, c.weights, c.tp, c.dp)
    q = 1 if c.spec is None else c.spec.draft_length + 1
    link = pipeline_link_bytes_per_s(c.gpu, c.tp * c.dp, c.pp)
    # one layer of each kind (step.kind_models; a one-kind model is itself); the stage ends, hops and chunk counts
    # do not depend on the kind and are read from the first kind's terms
    kts = [step_terms(km, hw, p, tp=c.tp, ep=c.ep, weight_bytes=wb, kv_bytes=kvb, micro_batch=c.micro_batch,
                      isl=workload.isl, osl=workload.osl, tokens_per_seq=q, pipeline_link_bytes_per_s=link, dp=c.dp,
                      redundant_experts=c.redundant_experts) for _, _, km in kind_models(model)]
    t = kts[0]

    def per_kind(f) -> list[float]:
        return [float(f(kt)) for kt in kts]

    layer_s = per_kind(lambda kt: kt.decode_layer.time_s)
    first_s, last_s = float(t.decode_first.time_s), float(t.decode_last.time_s)

    # memory per stage: weights + KV + activations + reserve (+ the draft model on stage 0)
    reserve = float(mem.reserve_bytes(c.gpu.memory_bytes, p.memory_reserve_fraction))
    # Under continuous batching a step packs several prompts up to the token budget, so the workspace is sized by
    # max_batched_tokens whatever the prompt length; the decode logits grow with the batch (per sequence below).
    act = float(mem.activation_bytes_per_gpu(model, c.tp, p.max_batched_tokens, c.micro_batch / c.dp))
    logits_per_seq = float(mem.activation_bytes_per_gpu(model, c.tp, 0, 1)) / (c.pp * c.dp)
    draft_w = draft_kv = 0.0
    dterms = None
    if c.spec is not None:
        dterms = draft_terms(c.spec, hw, p, tp=c.tp, dp=c.dp, weight_bytes=wb, kv_bytes=kvb, batch=c.batch,
                             isl=workload.isl, osl=workload.osl)
        draft_w, draft_kv = float(dterms.weight_bytes), float(dterms.kv_bytes)
    free = c.gpu.memory_bytes - reserve - act
    kv_per_seq_layer = per_kind(lambda kt: kt.kv_bytes_per_seq_layer)

    def stage_fixed(s: int) -> float:
        w = float(mem.stage_weight_bytes_per_gpu(model, wb, c.tp, 0, s == 0, s == c.pp - 1))
        return w + (draft_w + draft_kv if s == 0 else 0.0)

    layer_w = per_kind(lambda kt: kt.layer_weight_bytes)
    layer_bytes = [w + c.batch * kv for w, kv in zip(layer_w, kv_per_seq_layer)]
    if c.layers_per_stage is not None:
        layers = list(c.layers_per_stage)
    elif len(kts) > 1:  # several layer kinds: min-max over the kinds' times, each stage's bytes in its room
        rooms = [free - stage_fixed(s) for s in range(c.pp)]
        prefix = kind_prefix_counts(model)
        layers = balance_layer_kinds(prefix, c.pp, layer_s, first_s, last_s, layer_bytes, rooms)
        if layers is None:  # does not fit: place by time alone and report the overflow
            layers = balance_layer_kinds(prefix, c.pp, layer_s, first_s, last_s)
    else:
        caps = [max(0, int((free - stage_fixed(s)) // layer_bytes[0])) for s in range(c.pp)]
        layers = balance_layers(model.num_layers, c.pp, layer_s[0], first_s, last_s, caps)
        if layers is None:  # does not fit: place by time alone and report the overflow
            layers = balance_layers(model.num_layers, c.pp, layer_s[0], first_s, last_s)
    counts = stage_kind_counts(model, layers).tolist()  # [pp][K] layers of each kind per stage

    def on_stage(s: int, values, scale=1) -> float:
        """Σ_k n_{s,k} · scale · values_k: stage s's share of a per-layer quantity (one kind: l_s · scale · v)."""
        return sum(n * scale * v for n, v in zip(counts[s], values))

    stage_w = [float(mem.stage_weight_bytes_per_gpu(model, wb, c.tp, layers[s], s == 0, s == c.pp - 1, c.dp,
                                                    c.redundant_experts, layers_bytes=on_stage(s, layer_w)))
               + (draft_w if s == 0 else 0.0) for s in range(c.pp)]
    stage_kv = [on_stage(s, kv_per_seq_layer, c.batch) + (draft_kv if s == 0 else 0.0) for s in range(c.pp)]
    totals = [stage_w[s] + stage_kv[s] + act + reserve for s in range(c.pp)]
    worst = int(np.argmax(totals))
    # Engines size their KV pool from the memory left and refuse to start when one sequence of their maximum length
    # does not fit in it (vLLM: "max seq len ... is larger than the maximum number of tokens that can be stored in
    # KV cache"), whatever the batch: each stage must also hold max_len tokens of KV for its layers.
    max_len = workload.engine_max_len(model)
    long_kv_per_layer = [float(mem.kv_bytes_per_sequence_per_layer_per_gpu(km, kvb, c.tp, max_len))
                         for _, _, km in kind_models(model)]
    long_totals = [stage_w[s] + on_stage(s, long_kv_per_layer) + (draft_kv if s == 0 else 0.0) + act + reserve
                   for s in range(c.pp)]
    long_worst = int(np.argmax(long_totals))
    long_fits = long_totals[long_worst] <= c.gpu.memory_bytes
    fits = totals[worst] <= c.gpu.memory_bytes and long_fits
    draft_kv_per_seq = draft_kv / c.batch
    room = c.gpu.memory_bytes - reserve - (act - c.batch * logits_per_seq)  # all but batch-dependent memory
    max_batch = max(0, min(int((room - stage_w[s])
                               // (on_stage(s, kv_per_seq_layer) + logits_per_seq
                                   + (draft_kv_per_seq if s == 0 else 0.0)))
                           for s in range(c.pp)))
    memory = {"weights": stage_w[worst], "kv_cache": stage_kv[worst], "activations": act, "reserve": reserve,
              "total": totals[worst], "capacity": c.gpu.memory_bytes}

    # time
    dec_stage = stage_kind_times_s(counts, layer_s, first_s, last_s, p.step_overhead_s)
    cycle = decode_cycle_s(dec_stage, float(t.decode_p2p_s), c.pp)
    pre_layer = per_kind(lambda kt: kt.prefill_layer.time_s)
    pre_stage = stage_kind_times_s(counts, pre_layer, float(t.prefill_first.time_s), float(t.prefill_last.time_s),
                                   p.step_overhead_s)
    ttft = prefill_latency_s(pre_stage, float(t.prefill_p2p_s))
    tokens_per_cycle = 1.0
    if dterms is not None:
        cycle += c.spec.draft_length * float(dterms.step_s)
        tokens_per_cycle = float(expected_tokens_per_step(c.spec.acceptance, c.spec.draft_length))
        ttft += float(dterms.prefill_s)
    # chunked prefill: each prompt's chunks ride on decode steps; what they add to the cycle is the stall that the
    # other sequences wait for (perf/batching.py)
    # (per chunk of the prompt's own: its share of the packed steps it rides on, and of any extra steps; see
    # packed_chunk)
    ch, dshare = t.chunk, float(t.chunk_decode_share)
    chunk_stage = stage_kind_times_s(counts, per_kind(lambda kt: kt.chunk.layer_s), float(ch.first_s),
                                     float(ch.last_s), 0.0) + dshare * dec_stage
    chunk_hop = float(ch.p2p_s) + dshare * float(t.decode_p2p_s)
    stall = float(t.prefill_chunks) * chunk_stall_s(dec_stage, chunk_stage, float(t.decode_p2p_s), chunk_hop, c.pp)
    if p.prefill_first:  # the prompt runs alone and the decoders wait for its slowest stage
        stall = float(np.max(pre_stage))
    tpot = float(steady_state_tpot_s(cycle / tokens_per_cycle, c.batch, stall, workload.osl))
    thr = float(output_tokens_per_s(c.batch, replica_time_per_round_s(cycle / tokens_per_cycle, c.batch, stall,
                                                                      workload.osl)))

    # utilization: useful model FLOPs and decode bytes against the replica's peaks
    ctx_end = workload.isl + workload.osl
    # decode attends in MLA's absorbed form, the prompt's prefill in its materialized form (as the step terms count)
    a = model.attention_flops_per_token_per_context
    a_pre = model.prefill_attention_flops_per_token_per_context
    flops_per_out = model.matmul_flops_per_token + a * float(attended_tokens_over_layers(model, workload.isl, ctx_end))
    prefill_flops = workload.isl * (model.matmul_flops_per_token
                                    + a_pre * float(attended_tokens_over_layers(model, 0.0, workload.isl)))
    mfu = thr * (flops_per_out + prefill_flops / workload.osl) / (c.gpus * hw.peak_flops_per_s)
    bottleneck_stage = int(np.argmax(dec_stage))
    # the embedding is read on the first stage only, the LM head on the last only
    b = bottleneck_stage
    dec_bytes = (on_stage(b, per_kind(lambda kt: kt.decode_layer.bytes))
                 + (float(t.decode_first.bytes) if bottleneck_stage == 0 else 0.0)
                 + (float(t.decode_last.bytes) if bottleneck_stage == c.pp - 1 else 0.0))
    mbu = dec_bytes * c.pp / cycle / c.gpu.hbm_bytes_per_s  # the bottleneck stage steps pp micro-batches per cycle

    parts = {
        "compute": on_stage(b, per_kind(lambda kt: kt.decode_layer.compute_bound_s)),
        "memory_bandwidth": on_stage(b, per_kind(lambda kt: kt.decode_layer.memory_bound_s)) + p.step_overhead_s,
        "communication": on_stage(b, per_kind(lambda kt: kt.decode_layer.comm_s))
        + (float(t.decode_p2p_s) if c.pp > 1 else 0.0),
    }
    messages = []
    if not long_fits and totals[worst] <= c.gpu.memory_bytes:  # (when the batch does not fit, that says it)
        messages.append(
            f"does not fit one sequence of the maximum length {max_len} tokens: stage {long_worst} needs "
            f"{long_totals[long_worst] / 2**30:.1f} GiB per GPU "
            f"(KV {on_stage(long_worst, long_kv_per_layer) / 2**30:.1f}"
            f" GiB) but {c.gpu.id} has {c.gpu.memory_bytes / 2**30:.1f} GiB; the engine would refuse to start: "
            "lower --max-model-len or use more GPUs")
    if not fits:
        bottleneck = "memory_capacity"
    if totals[worst] > c.gpu.memory_bytes:
        over = totals[worst] - c.gpu.memory_bytes
        messages.append(
            f"does not fit: stage {worst} needs {totals[worst] / 2**30:.1f} GiB per GPU "
            f"(weights {stage_w[worst] / 2**30:.1f}, KV {stage_kv[worst] / 2**30:.1f}, activations "
            f"{act / 2**30:.1f}, reserve {reserve / 2**30:.1f}) but {c.gpu.id} has {c.gpu.memory_bytes / 2**30:.1f} GiB "
            f"({over / 2**30:.1f} GiB over); max batch here is {max_batch}")
    if fits:
        bottleneck = max(parts, key=lambda k: parts[k])
    return Estimate(
        model=model.name, config=c, workload=workload, layers_per_stage=tuple(layers), ttft_s=ttft, tpot_s=tpot,
        decode_cycle_s=cycle, output_tokens_per_s=thr, mfu=float(mfu), mbu=float(mbu), memory=memory, fits=bool(fits),
        max_batch=max_batch, bottleneck=bottleneck, usd_per_hour=c.gpus * c.price_per_gpu, messages=tuple(messages),
        prefill_stall_s=stall, chunk_stage_s=float(np.max(chunk_stage)) + (chunk_hop if c.pp > 1 else 0.0),
        prefill_chunks=float(t.prefill_chunks),
        engine=p.engine, profile=p.profile, two_batch_overlap=bool(p.two_batch_overlap),
        placement=placement_dict(model, layers),
    )
