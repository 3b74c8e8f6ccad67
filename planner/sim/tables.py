"""Step-time tables for the simulator, computed once per plan from the planner's own perf model.

The event loop never evaluates a formula: it looks step times up in tables built here from
`perf.estimate.step_terms` (with `hardware()`), `perf.pipeline.stage_times_s` / `decode_cycle_s` /
`prefill_latency_s` and the same speculative-decoding composition `estimate()` uses. `tests/sim/test_tables.py`
checks that the tables reproduce `estimate()`'s decode cycle and TTFT exactly at the plan's own point. A model of
several layer kinds on several stages (DeepSeek-V3's dense-first layers, Llama-4's interleaved ones) has each stage
timed by its own kinds (`stage_kinds`), as `estimate()` and the search time it; with one stage, by the average layer.

- `decode_s[n, j]`: one decode cycle (every one of n running sequences gains a token, or a speculative
  draft-and-verify round) when the running sequences attend `ctx_grid[j]` tokens on average. Decode time is
  linear in Σ context within each roofline regime, so the mean context is enough and linear interpolation along
  the grid is exact away from the (at most two) regime kinks.
- `prefill_busy_s[j]`: how long a prompt of `ctx_grid[j]` tokens occupies the replica (its slowest stage; with one
  stage, the whole prefill). A chunk of k of its L tokens costs k/L of it.
- `prefill_latency_s[j]`: from the start of that prefill to its first token (every stage plus the hops); the
  part above `prefill_busy_s` is pipeline fill, which delays the first token but not the replica.
- `mixed_extra_s(n, chunk)`: how much longer a decode step of n running sequences gets when prefill chunks ride
  in it (one forward pass, weights read once: `perf.estimate.prefill_chunk_terms` composed over the plan's
  stages by `perf.pipeline.chunk_stall_s`, as `estimate()` charges a prompt's prefill); with n = 0 the whole
  prefill-only step, which for a whole prompt is exactly `prefill_busy_s`.
- `kv_capacity_tokens`: KV-cache tokens one replica holds: `estimate()`'s `max_batch` sequences of the plan's
  isl + osl each (the memory left after weights, activations and reserve, as `estimate()` computes it)."""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..errors import InputError
from ..perf.estimate import Config, Estimate, chunk_base_layer_s, estimate, hardware, prefill_chunk_terms, step_terms
from ..perf.params import PerfParams
from ..perf.pipeline import chunk_stall_s, decode_cycle_s, prefill_latency_s, stage_kind_times_s, stage_times_s
from ..perf.specdec import draft_pass_s
from ..perf.step import chunk_attention_layer_s, kind_models, stage_kind_counts
from ..perf.window import attention_spans
from ..specs.cluster import pipeline_link_bytes_per_s
from ..specs.model import ModelSpec
from ..specs.workload import Workload
from ..units import BYTES_PER_ELEMENT

# Context grid resolution: linear points (decode time is piecewise linear in context) plus geometric points
# (prefill time has an ~L² attention term, best resolved where prompts are short relative to the maximum).
LINEAR_GRID_POINTS = 129
GEOMETRIC_GRID_POINTS = 96


def stage_kinds(model: ModelSpec, pp: int, layers) -> "tuple[list[ModelSpec], list[list[int]]] | None":
    """For a model of several layer kinds (DeepSeek's dense-first layers, Llama-4's interleaved ones) on several
    stages: one model per kind (`perf.step.kind_models`) and each stage's layers of each kind ([pp][K]), so that a
    stage is timed by its own kinds, Σ_k n_{s,k} · t_k, as `estimate()` and the search time it. None for one kind
    or one stage, where the average layer times the stage (exactly, up to float rounding, for one stage)."""
    kinds = kind_models(model)
    if len(kinds) == 1 or pp == 1:
        return None
    return [km for _, _, km in kinds], stage_kind_counts(model, layers).tolist()


def kind_stage_times_s(counts: list[list[int]], layer_s_per_kind, first_extra_s, last_extra_s,
                       per_step_s: float) -> np.ndarray:
    """`perf.pipeline.stage_kind_times_s` for arrays of candidates (the tables' grids): each stage's
    Σ_k n_{s,k} · t_k (the same operations in the same order), then its ends and overhead; shape [pp, ...]."""
    layers_s = np.stack([sum(n * np.asarray(t, float) for n, t in zip(row, layer_s_per_kind)) for row in counts])
    ones = np.ones((len(counts),) + (1,) * (layers_s.ndim - 1))
    return stage_times_s(ones, layers_s, first_extra_s, last_extra_s, per_step_s)


@dataclass(frozen=True)
class StepTables:
    ctx_grid: np.ndarray  # tokens, increasing, ctx_grid[0] = 1
    decode_s: np.ndarray  # (max_running + 1, len(ctx_grid)); row 0 is zeros
    prefill_busy_s: np.ndarray  # (len(ctx_grid),)
    prefill_latency_s: np.ndarray  # (len(ctx_grid),)
    kv_capacity_tokens: int
    max_running: int  # the plan's batch: concurrent sequences per replica
    max_batched_tokens: int  # chunked-prefill token budget per step (PerfParams.max_batched_tokens)
    draft_length: int  # γ; 0 without speculative decoding
    acceptance: float  # α
    estimate: Estimate  # the plan's own steady-state estimate (mean isl/osl, full batch)
    chunk_cost: "ChunkCost | None" = None
    prefill_first: bool = False  # PerfParams.prefill_first: prompts run in steps of their own

    def mixed_extra_s(self, running: int, chunk_tokens: int, attended_key_tokens: float, kv_read_tokens: int,
                      prompts_done: int) -> float:
        """Extra time of a step whose prefill chunks total `chunk_tokens` tokens attending `attended_key_tokens`
        keys in all (Σ k·(offset + k/2)), reading `kv_read_tokens` cached prompt tokens, completing
        `prompts_done` prompts, on top of the decode step of `running` sequences; with running = 0, the whole
        step's time on the replica (its slowest stage)."""
        return self.chunk_cost(running, chunk_tokens, attended_key_tokens, kv_read_tokens, prompts_done)

    @property
    def tokens_per_step(self) -> int:
        """KV slots a running sequence may need in one step: 1, or γ + 1 when verifying a draft."""
        return self.draft_length + 1

    def decode_time_s(self, running: int, mean_ctx) -> np.ndarray:
        return np.interp(mean_ctx, self.ctx_grid, self.decode_s[running])

    def decode_step_s(self, running: int, mean_ctx: float) -> float:
        """`decode_time_s` for one scalar context, in plain Python (the event loop's hot path)."""
        return _interp1(self._grid, self._decode_rows[running], mean_ctx)

    @cached_property
    def _grid(self) -> list[float]:
        return self.ctx_grid.tolist()

    @cached_property
    def _decode_rows(self) -> list[list[float]]:
        return self.decode_s.tolist()

    def prefill_busy(self, prompt_tokens) -> np.ndarray:
        return np.interp(prompt_tokens, self.ctx_grid, self.prefill_busy_s)

    def prefill_fill_s(self, prompt_tokens) -> np.ndarray:
        """First-token delay beyond the busy time: pipeline fill (0 with one stage)."""
        return np.interp(prompt_tokens, self.ctx_grid, self.prefill_latency_s - self.prefill_busy_s)

    def prefill_one(self, prompt_tokens: int) -> tuple[float, float]:
        """(busy, fill) of one prompt, in plain Python."""
        return (_interp1(self._grid, self._busy_row, prompt_tokens),
                _interp1(self._grid, self._fill_row, prompt_tokens))

    @cached_property
    def _busy_row(self) -> list[float]:
        return self.prefill_busy_s.tolist()

    @cached_property
    def _fill_row(self) -> list[float]:
        return (self.prefill_latency_s - self.prefill_busy_s).tolist()


# Chunk sizes tabulated per block: one vectorized `prefill_chunk_terms` call fills a block for one decode load.
# Dense models: ~0.5 ms for 2,048 sizes, about one scalar call. MoE models compute the busiest-rank load once per
# distinct token count (perf/moe.py, ~1 ms each for large steps), so a block would cost one such computation per
# size: they are tabulated one size at a time (the memo and the LM-head table still apply). Measured 2026-11-27.
CHUNK_BLOCK_TOKENS = 2048
MOE_CHUNK_BLOCK_TOKENS = 1
# MoE: a chunk size or step total met at this many decode loads is computed at every load at once
# (ChunkTermRows._fill_lines; one vectorized call costs about as much as a few dozen single ones). Lines that pay
# are met many times: over the quick plan matrix's MoE confirmations 5 rather than 3 fills ~5x fewer lines
# (DeepSeek-V3 8000/2000: 35 -> 6, 20.2k -> 3.1k steps) for ~1 % more single steps (1,463 -> 1,444 of 1,932 met
# along a line), ~0.1 s less CPU per 8000/2000 confirmation (benchmarks/plan_matrix/RESULTS.md, session 14).
LINE_FILL_MISSES = 5
# Prompts one step may complete, tabulated per decode load for the LM-head term (more: computed directly).
MAX_TABULATED_DONE = 64


class ChunkTermRows:
    """`perf.estimate.prefill_chunk_terms` of one model at a fixed decode load, for any chunk, as the event loop
    asks for it.

    A mixed step's increment splits into what depends on the step's token counts (the GEMMs, collectives,
    embedding and hop see decode + chunk tokens; the LM head the prompts completed) and the chunk attention
    (`perf.step.chunk_attention_layer_s`), the only part that depends on where the chunks sit in their prompts.
    The first part is tabulated (exactly `prefill_chunk_terms` at the canonical position: one prompt's whole
    chunk from its start, keys K/2 per token, no cached prefix, evaluated over a block of chunk sizes at once);
    any other position adds the difference of the chunk attention between its position and the canonical one.
    The canonical case is therefore bit-identical to the direct call (MoE: one size at a time, or a line of steps
    at every decode load at once, `_fill_lines`, checked equal to the direct calls); other positions differ from
    the direct call by float rounding only (tests/sim/test_tables.py compares both, `direct` is the reference)."""

    def __init__(self, model: ModelSpec, hw, params: PerfParams, *, tp, dp, kv_bytes, decode_loads=(), **kw):
        self.model, self.hw, self.p = model, hw, params
        self.decode_loads = tuple(decode_loads)  # the decode loads the event loop may ask `_base` for
        self.kw = dict(tp=tp, weight_bytes=kw.pop("weight_bytes"), kv_bytes=kv_bytes, dp=dp, **kw)
        self.attn_kw = dict(tp=tp, dp=dp, kv_bytes=kv_bytes)
        self.spans = attention_spans(model)
        self.block = MOE_CHUNK_BLOCK_TOKENS if model.is_moe else CHUNK_BLOCK_TOKENS
        self.blocks: dict[tuple[float, int], tuple[list[float], list[float], list[float]]] = {}
        self.lm_head: dict[float, list[float]] = {}
        self.single: dict[tuple[float, int, int], tuple[float, float, float, float]] = {}
        self.base: dict[float, object] = {}  # decode load -> chunk_base_layer_s (MoE: ~40 % fewer layer steps)
        self.lines: dict[tuple, int] = {}  # MoE: misses met per line of steps (`_fill_lines`)

    def direct(self, decode_tokens: float, chunk: int, attended: float, kv_read: int, done: int, base_layer_s=None
               ) -> tuple[float, float, float, float]:
        """(layer, first, last, hop) s straight from `prefill_chunk_terms` (the reference)."""
        ch = prefill_chunk_terms(self.model, self.hw, self.p, decode_tokens=decode_tokens, chunk_tokens=chunk,
                                 chunk_attended_tokens=attended, chunk_kv_read_tokens=kv_read, logit_tokens=done,
                                 base_layer_s=base_layer_s, **self.kw)
        return float(ch.layer_s), float(ch.first_s), float(ch.last_s), float(ch.p2p_s)

    def _base(self, decode_tokens: float):
        """`chunk_base_layer_s` at this decode load, once per load (the event loop meets each load at many chunk
        sizes; the value is the one `prefill_chunk_terms` would compute)."""
        hit = self.base.get(decode_tokens)
        if hit is None:
            kw = {k: v for k, v in self.kw.items() if k != "pipeline_link_bytes_per_s"}
            if not self.base and decode_tokens in self.decode_loads:
                # every load the event loop may meet in one vectorized call (the same floats as one call per
                # load: tests/sim/test_tables.py; a MoE layer step costs ~1 ms per call, the loop meets hundreds)
                loads = np.asarray(self.decode_loads, float)
                row = np.broadcast_to(np.asarray(chunk_base_layer_s(self.model, self.hw, self.p, decode_tokens=loads,
                                                                    **kw), float), loads.shape)
                self.base.update(zip(self.decode_loads, row.tolist()))
                return self.base[decode_tokens]
            hit = self.base[decode_tokens] = chunk_base_layer_s(self.model, self.hw, self.p,
                                                                decode_tokens=decode_tokens, **kw)
        return hit

    def _fill_lines(self, decode_tokens: float, chunk: int, done: int) -> None:
        """MoE: the event loop meets the same chunk at many decode loads (a whole prompt), the same step total at
        many (the chunk that fills the token budget, budget − load) and the same chunk − load at many (the rest of
        a prompt whose first chunk filled the budget one step before). Once such a line has been met at
        LINE_FILL_MISSES loads, its canonical steps at every decode load are computed in one vectorized call (the
        same floats as one `direct` call each: tests/sim/test_tables.py) and kept with the single steps."""
        if decode_tokens not in self.decode_loads:
            return
        for line in (("chunk", chunk, done), ("total", decode_tokens + chunk, done),
                     ("excess", chunk - decode_tokens, done)):
            met = self.lines[line] = self.lines.get(line, 0) + 1
            if met != LINE_FILL_MISSES:
                continue
            self._base(decode_tokens)  # the base table over the loads
            loads = np.asarray(self.decode_loads, float)
            kind, at = line[0], line[1]
            chunks = np.full(loads.shape, float(at)) if kind == "chunk" else (at - loads if kind == "total"
                                                                               else at + loads)
            keep = (chunks >= 1.0) & (chunks == np.floor(chunks))  # the loop's chunks are whole tokens
            loads, chunks = loads[keep], chunks[keep]
            base = np.asarray([self.base[d] for d in loads.tolist()], float)
            ch = prefill_chunk_terms(self.model, self.hw, self.p, decode_tokens=loads, chunk_tokens=chunks,
                                     chunk_attended_tokens=chunks / 2.0, chunk_kv_read_tokens=0, logit_tokens=done,
                                     base_layer_s=base, **self.kw)
            cols = [np.broadcast_to(np.asarray(x, float), loads.shape).tolist()
                    for x in (ch.layer_s, ch.first_s, ch.last_s, ch.p2p_s)]
            for d, k, terms in zip(loads.tolist(), chunks.tolist(), zip(*cols)):
                self.single.setdefault((d, int(k), done), terms)

    def __call__(self, decode_tokens: float, chunk: int, attended: float, kv_read: int, done: int
                 ) -> tuple[float, float, float, float]:
        """`direct`, from the tables."""
        if self.block == 1:  # MoE: one size at a time, so the LM head comes with it (no separate table)
            terms = self.single.get((decode_tokens, chunk, done))
            if terms is None:
                self._fill_lines(decode_tokens, chunk, done)
                terms = self.single.get((decode_tokens, chunk, done))
            if terms is None:
                terms = self.single[(decode_tokens, chunk, done)] = self.direct(decode_tokens, chunk, chunk / 2.0, 0,
                                                                                done, self._base(decode_tokens))
            layer, first, last, hop = terms
            if kv_read != 0 or attended != chunk / 2.0:
                at, canonical = self._attention((chunk, chunk), (attended, chunk / 2.0), (kv_read, 0))
                layer += float(at - canonical)
            return layer, first, last, hop
        blk, i = divmod(chunk, self.block)
        rows = self.blocks.get((decode_tokens, blk))
        if rows is None:
            ks = np.arange(blk * self.block, (blk + 1) * self.block, dtype=float)
            with np.errstate(divide="ignore", invalid="ignore"):  # chunk 0 (never asked for) sits in block 0
                ch = prefill_chunk_terms(self.model, self.hw, self.p, decode_tokens=decode_tokens, chunk_tokens=ks,
                                         chunk_attended_tokens=ks / 2.0, chunk_kv_read_tokens=0, logit_tokens=1,
                                         **self.kw)
            rows = tuple(np.broadcast_to(np.asarray(x, float), ks.shape).tolist()
                         for x in (ch.layer_s, ch.first_s, ch.p2p_s))
            self.blocks[(decode_tokens, blk)] = rows
        layer, first, hop = rows[0][i], rows[1][i], rows[2][i]
        if kv_read != 0 or attended != chunk / 2.0:  # this position's chunk attention − the canonical one's
            at, canonical = self._attention((chunk, chunk), (attended, chunk / 2.0), (kv_read, 0))
            layer += float(at - canonical)
        if done > MAX_TABULATED_DONE:
            return layer, first, self.direct(decode_tokens, chunk, attended, kv_read, done)[2], hop
        heads = self.lm_head.get(decode_tokens)
        if heads is None:
            ch = prefill_chunk_terms(self.model, self.hw, self.p, decode_tokens=decode_tokens, chunk_tokens=1,
                                     chunk_attended_tokens=0.5, chunk_kv_read_tokens=0,
                                     logit_tokens=np.arange(MAX_TABULATED_DONE + 1, dtype=float), **self.kw)
            heads = self.lm_head[decode_tokens] = np.asarray(ch.last_s, float).tolist()
        return layer, first, heads[done], hop

    def _attention(self, chunk, attended, kv_read) -> np.ndarray:
        return chunk_attention_layer_s(self.model, self.hw, self.p, chunk_tokens=np.asarray(chunk, float),
                                       chunk_attended_tokens=np.asarray(attended, float),
                                       chunk_kv_read_tokens=np.asarray(kv_read, float), spans=self.spans,
                                       **self.attn_kw)


class ChunkCost:
    """`StepTables.mixed_extra_s`, memoized: the event loop meets the same (running, chunk) steps many times, and
    each new one is composed from `ChunkTermRows` tables (`reference` composes the same from direct calls)."""

    def __init__(self, model: ModelSpec, config: Config, params: PerfParams, layers: tuple[int, ...],
                 workload: Workload):
        c, p = config, params.for_gpu(config.gpu.id, config.gpu.family)
        self.model, self.config, self.params, self.layers = model, c, p, layers
        self.hw = hardware(c.gpu, c.weights, c.tp, c.dp)
        self.wb, self.kvb = BYTES_PER_ELEMENT[c.weights], BYTES_PER_ELEMENT[c.kv]
        self.link = pipeline_link_bytes_per_s(c.gpu, c.tp * c.dp, c.pp)
        # With DP attention groups the simulator keeps one queue per replica and spreads a chunk's tokens over
        # the groups (as `estimate()` charges one chunk per group over DP).
        self.dp_kw = dict(dp=c.dp, redundant_experts=c.redundant_experts)
        self.q = 1 if c.spec is None else c.spec.draft_length + 1
        self.ctx = workload.isl + workload.osl / 2.0  # decoders' context for the stage times (pp > 1 only)
        self.memo: dict[tuple, float] = {}
        # several layer kinds on several stages: each stage timed by its own kinds (one set of rows per kind)
        self.kinds = stage_kinds(model, c.pp, layers)
        # the decode loads `_step_s` passes the target: (running / pp) · q for running = 0 … batch
        loads = [(running / c.pp) * self.q for running in range(c.batch + 1)]
        self.targets = [ChunkTermRows(m, self.hw, p, tp=c.tp, ep=c.ep, weight_bytes=self.wb, kv_bytes=self.kvb,
                                      pipeline_link_bytes_per_s=self.link, decode_loads=loads if m.is_moe else (),
                                      **self.dp_kw)
                        for m in ([model] if self.kinds is None else self.kinds[0])]
        self.target = self.targets[0]  # the model's rows (several kinds: the first kind's, whose ends and hop count)
        # the draft prefills the same chunk (at the full batch, on every GPU of stage 0)
        self.draft = None if c.spec is None else ChunkTermRows(c.spec.draft, self.hw, p, tp=c.tp, ep=1,
                                                               weight_bytes=self.wb, kv_bytes=self.kvb, dp=1)
        self._decode_stages: dict[int, tuple[np.ndarray, float]] = {}
        self._empty: tuple[np.ndarray, float] | None = None

    def __call__(self, running: int, chunk_tokens: int, attended_key_tokens: float, kv_read_tokens: int,
                 prompts_done: int) -> float:
        key = (running, chunk_tokens, round(attended_key_tokens), kv_read_tokens, prompts_done)
        hit = self.memo.get(key)
        if hit is not None:
            return hit
        out = self.memo[key] = self._step_s(running, chunk_tokens, attended_key_tokens, kv_read_tokens,
                                            prompts_done, direct=False)
        return out

    def reference(self, running: int, chunk_tokens: int, attended_key_tokens: float, kv_read_tokens: int,
                  prompts_done: int) -> float:
        """The same step straight from the perf model (no tables, no memo): what the tables must reproduce."""
        return self._step_s(running, chunk_tokens, attended_key_tokens, kv_read_tokens, prompts_done, direct=True)

    def _step_s(self, running: int, chunk_tokens: int, attended_key_tokens: float, kv_read_tokens: int,
                prompts_done: int, direct: bool) -> float:
        c, p = self.config, self.params
        mb = running / c.pp  # the chunk rides in one micro-batch
        attended = attended_key_tokens / max(1, chunk_tokens)
        terms = [(rows.direct if direct else rows)(mb * self.q, chunk_tokens, attended, kv_read_tokens, prompts_done)
                 for rows in self.targets]
        layer_s, first_s, last_s, p2p_s = terms[0]
        if self.kinds is None:
            chunk_stage = stage_times_s(self.layers, layer_s, first_s, last_s, 0.0)
        else:
            chunk_stage = stage_kind_times_s(self.kinds[1], [x[0] for x in terms], first_s, last_s, 0.0)
        draft = 0.0
        if self.draft is not None:
            d = c.spec.draft
            terms = self.draft.direct if direct else self.draft
            dl, df, dlast, _ = terms(float(running), chunk_tokens, attended, kv_read_tokens, prompts_done)
            draft = draft_pass_s(d.num_layers, dl, df, dlast)
        if running == 0:  # a prefill-only step: its slowest stage (the rest of a chunk's path is pipeline fill)
            empty, empty_draft = self._empty_step()
            out = float(np.max(empty + chunk_stage))
            if c.spec is not None:
                out += empty_draft
        elif c.pp == 1:
            out = float(chunk_stage[0])
        else:
            dec_stage, dec_p2p = self._decode_stage(running)
            out = chunk_stall_s(dec_stage, chunk_stage, dec_p2p, p2p_s, c.pp)
        return out + draft

    def _empty_step(self) -> tuple[np.ndarray, float]:
        """Per-stage time of a step with no tokens (weights read, overheads) and the draft's, computed once."""
        if self._empty is None:
            c, p = self.config, self.params
            empty = self._stages(lambda m: step_terms(
                m, self.hw, p, tp=c.tp, ep=c.ep, weight_bytes=self.wb, kv_bytes=self.kvb, micro_batch=0.0, isl=1,
                osl=0, pipeline_link_bytes_per_s=self.link, chunked=False, prefill=False, time_only=True,
                **self.dp_kw))[0]
            empty_draft = 0.0
            if c.spec is not None:
                d = c.spec.draft
                dt = step_terms(d, self.hw, p, tp=c.tp, ep=1, weight_bytes=self.wb, kv_bytes=self.kvb,
                                micro_batch=0.0, isl=1, osl=0, chunked=False, prefill=False, time_only=True)
                empty_draft = draft_pass_s(d.num_layers, float(dt.decode_layer.time_s),
                                           float(dt.decode_first.time_s), float(dt.decode_last.time_s))
            self._empty = (empty, empty_draft)
        return self._empty

    def _decode_stage(self, running: int) -> tuple[np.ndarray, float]:
        """Per-stage decode step of `running` sequences at the decoders' mean context, and its hop (pp > 1)."""
        hit = self._decode_stages.get(running)
        if hit is None:
            c, p = self.config, self.params
            hit = self._decode_stages[running] = self._stages(lambda m: step_terms(
                m, self.hw, p, tp=c.tp, ep=c.ep, weight_bytes=self.wb, kv_bytes=self.kvb, micro_batch=running / c.pp,
                isl=self.ctx, osl=0, tokens_per_seq=self.q, pipeline_link_bytes_per_s=self.link, chunked=False,
                prefill=False, time_only=True, **self.dp_kw))
        return hit

    def _stages(self, terms_of) -> tuple[np.ndarray, float]:
        """Per-stage decode step (with the step overhead) and its hop from `terms_of(model)` (perf step_terms):
        by the average layer, or with several kinds on several stages by each stage's own kinds."""
        p = self.params
        if self.kinds is None:
            t = terms_of(self.model)
            stage = stage_times_s(self.layers, float(t.decode_layer.time_s), float(t.decode_first.time_s),
                                  float(t.decode_last.time_s), p.step_overhead_s)
            return stage, float(t.decode_p2p_s)
        ts = [terms_of(m) for m in self.kinds[0]]
        t = ts[0]
        stage = stage_kind_times_s(self.kinds[1], [float(k.decode_layer.time_s) for k in ts],
                                   float(t.decode_first.time_s), float(t.decode_last.time_s), p.step_overhead_s)
        return stage, float(t.decode_p2p_s)


def _interp1(xs: list[float], ys: list[float], x: float) -> float:
    """np.interp for one point (clamped at the ends)."""
    j = bisect_right(xs, x)
    if j <= 0:
        return ys[0]
    if j >= len(xs):
        return ys[-1]
    x0, x1 = xs[j - 1], xs[j]
    return ys[j - 1] + (ys[j] - ys[j - 1]) * (x - x0) / (x1 - x0)


def context_grid(max_ctx: int, exact: tuple[float, ...] = ()) -> np.ndarray:
    top = max(2.0, float(max_ctx))
    pts = np.concatenate([np.linspace(1.0, top, LINEAR_GRID_POINTS), np.geomspace(1.0, top, GEOMETRIC_GRID_POINTS),
                          np.asarray([x for x in exact if 1.0 <= x <= top], float)])
    return np.unique(pts)


def decode_cycle_table_s(model: ModelSpec, config: Config, params: PerfParams, layers: tuple[int, ...],
                         running: np.ndarray, ctx: np.ndarray) -> np.ndarray:
    """Decode cycle (s) for every (running, ctx) pair, composed exactly as `estimate()` composes it: the target's
    per-stage step at micro-batch running/pp with γ+1 tokens per sequence, `decode_cycle_s` over the stages, plus
    γ draft steps at the full batch."""
    c, p = config, params.for_gpu(config.gpu.id, config.gpu.family)
    wb, kvb = BYTES_PER_ELEMENT[c.weights], BYTES_PER_ELEMENT[c.kv]
    hw = hardware(c.gpu, c.weights, c.tp, c.dp)
    q = 1 if c.spec is None else c.spec.draft_length + 1
    link = pipeline_link_bytes_per_s(c.gpu, c.tp * c.dp, c.pp)
    n = np.asarray(running, float)[:, None]
    cx = np.asarray(ctx, float)[None, :]
    shape = (n.shape[0], cx.shape[1])
    # step_terms decodes at context isl + osl/2: pass isl = ctx, osl = 0
    kinds = stage_kinds(model, c.pp, layers)
    terms = [step_terms(m, hw, p, tp=c.tp, ep=c.ep, weight_bytes=wb, kv_bytes=kvb, micro_batch=n / c.pp, isl=cx,
                        osl=0, tokens_per_seq=q, pipeline_link_bytes_per_s=link, dp=c.dp,
                        redundant_experts=c.redundant_experts, chunked=False, prefill=False, time_only=True)
             for m in ([model] if kinds is None else kinds[0])]
    t = terms[0]  # the stage ends and the hop do not depend on the kind (as in estimate())
    flat = [np.broadcast_to(np.asarray(x, float), shape).ravel() for x in
            (t.decode_first.time_s, t.decode_last.time_s, t.decode_p2p_s)]
    per_kind = [np.broadcast_to(np.asarray(k.decode_layer.time_s, float), shape).ravel() for k in terms]
    stage = _grid_stage_times_s(kinds, layers, per_kind, flat[0], flat[1], p.step_overhead_s)
    if c.pp == 1:
        cycle = stage[0]  # decode_cycle_s of a single stage is that stage's time (no hop, one micro-batch)
    else:
        cycle = decode_cycle_s(stage, flat[2], c.pp)
    cycle = cycle.reshape(shape)
    if c.spec is not None:
        d = c.spec.draft
        dt = step_terms(d, hw, p, tp=c.tp, ep=1, weight_bytes=wb, kv_bytes=kvb, micro_batch=n, isl=cx, osl=0,
                        dp=c.dp, chunked=False, prefill=False, time_only=True)
        draft_step = draft_pass_s(d.num_layers, dt.decode_layer.time_s, dt.decode_first.time_s, dt.decode_last.time_s,
                                  p.step_overhead_s)
        cycle = cycle + c.spec.draft_length * np.broadcast_to(draft_step, shape)
    return cycle


def _grid_stage_times_s(kinds, layers, per_kind: list, first_s, last_s, overhead_s: float) -> np.ndarray:
    """Per-stage times over a grid of candidates ([pp, n]): by the average layer (`per_kind` holds the model's
    one layer time) where `kinds` (stage_kinds) is None, else each stage by its own kinds (`kind_stage_times_s`)."""
    if kinds is None:
        return stage_times_s(np.asarray(layers, float)[:, None], per_kind[0], first_s, last_s, overhead_s)
    return kind_stage_times_s(kinds[1], per_kind, first_s, last_s, overhead_s)


def prefill_tables_s(model: ModelSpec, config: Config, params: PerfParams, layers: tuple[int, ...],
                     prompt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(busy, latency) of one prompt of each length in `prompt`, as `estimate()` computes TTFT: per-stage prefill
    times, `prefill_latency_s` across stages (+ the draft's prefill); busy is the slowest stage (+ the draft).
    With DP attention groups a prefill step carries one prompt per group: busy is that step's share per prompt
    (as in perf.batching), latency the whole step."""
    c, p = config, params.for_gpu(config.gpu.id, config.gpu.family)
    wb, kvb = BYTES_PER_ELEMENT[c.weights], BYTES_PER_ELEMENT[c.kv]
    hw = hardware(c.gpu, c.weights, c.tp, c.dp)
    link = pipeline_link_bytes_per_s(c.gpu, c.tp * c.dp, c.pp)
    L = np.asarray(prompt, float)
    kinds = stage_kinds(model, c.pp, layers)
    terms = [step_terms(m, hw, p, tp=c.tp, ep=c.ep, weight_bytes=wb, kv_bytes=kvb, micro_batch=1.0, isl=L, osl=0,
                        pipeline_link_bytes_per_s=link, dp=c.dp, redundant_experts=c.redundant_experts, chunked=False,
                        decode=False, time_only=True)
             for m in ([model] if kinds is None else kinds[0])]
    t = terms[0]
    flat = [np.broadcast_to(np.asarray(x, float), L.shape) for x in
            (t.prefill_first.time_s, t.prefill_last.time_s, t.prefill_p2p_s)]
    per_kind = [np.broadcast_to(np.asarray(k.prefill_layer.time_s, float), L.shape) for k in terms]
    stage = _grid_stage_times_s(kinds, layers, per_kind, flat[0], flat[1], p.step_overhead_s)
    latency = np.fromiter((prefill_latency_s(stage[:, k], flat[2][k]) for k in range(L.size)), float, L.size)
    busy = np.max(stage, axis=0) / c.dp
    if c.spec is not None:
        d = c.spec.draft
        dt = step_terms(d, hw, p, tp=c.tp, ep=1, weight_bytes=wb, kv_bytes=kvb, micro_batch=1.0, isl=L, osl=0,
                        dp=c.dp, chunked=False, decode=False, time_only=True)
        draft = draft_pass_s(d.num_layers, dt.prefill_layer.time_s, dt.prefill_first.time_s, dt.prefill_last.time_s)
        draft = np.broadcast_to(np.asarray(draft, float), L.shape)
        latency, busy = latency + draft, busy + draft
    return busy, latency


def build_tables(model: ModelSpec, config: Config, workload: Workload, params: PerfParams,
                 max_ctx: int) -> StepTables:
    """Tables for contexts up to `max_ctx` tokens (the longest prompt + output the simulation will see)."""
    est = estimate(model, config, workload, params)
    if est.max_batch < 1:
        why = "; ".join(est.messages) or "no memory is left for the KV cache"
        raise InputError(f"the plan cannot hold a single sequence: {why}")
    layers = est.layers_per_stage
    grid = context_grid(max_ctx, (workload.isl, workload.isl + workload.osl / 2.0))
    running = np.arange(1, config.batch + 1)
    decode = np.zeros((config.batch + 1, grid.size))
    decode[1:] = decode_cycle_table_s(model, config, params, layers, running, grid)
    busy, latency = prefill_tables_s(model, config, params, layers, grid)
    spec = config.spec
    return StepTables(
        ctx_grid=grid, decode_s=decode, prefill_busy_s=busy, prefill_latency_s=latency,
        kv_capacity_tokens=int(est.max_batch * workload.context_tokens), max_running=config.batch,
        max_batched_tokens=int(params.max_batched_tokens),
        draft_length=0 if spec is None else spec.draft_length,
        acceptance=0.0 if spec is None else spec.acceptance, estimate=est,
        chunk_cost=ChunkCost(model, config, params, layers, workload), prefill_first=bool(params.prefill_first))
