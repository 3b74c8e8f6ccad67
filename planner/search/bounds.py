"""The exact integer space, searched lazily: which (shape, micro-batch) rows CP-SAT needs to see.

A shape is a row without its micro-batch (GPU, weights, KV, TP, DP, PP, EP; `space.enumerate_shapes`); its
micro-batches are every multiple of DP memory allows (or the request's pinned list). Tabulating every (shape,
micro-batch) is far too slow, and unnecessary, because of two facts about the integer table (`table.table_of`),
both tested on the perf model (tests/search/test_bounds.py):

1. Monotone in the micro-batch: every decode time term (per layer, per stage, per hop), the memory per layer and
   per stage, and the prefill-chunk count grow (or stay) as the micro-batch grows; TTFT does not depend on it.
   (The prefill-chunk *increment* need not grow, so the stall-inclusive TPOT is left out of this.)
2. So for any micro-batch m between two examined ones a < m < c of a shape, with `cycle(a)` = pp·(T_dec + hop) at
   a (the balanced-placement lower bound, no prefill stalls):
     - if a fails memory, or cycle(a) exceeds the TPOT target (or the round limit), m fails too;
     - the objective at m is at least price · GPUs · cycle(a) / batch(c − 1) (per token; with a demand, the
       replicas that rate needs): cycle never falls as m grows and the batch is at most batch(c − 1).

`search_space` keeps, per shape, the examined micro-batches (at first the smallest and, where that one is in the
range, the largest memory allows), bounds every gap between them as in 2, and splits the gaps whose bound is below
the best known plan (an upper bound from greedy placements, per GPU type) at their geometric middle, all shapes at
once, until no gap can hold a cheaper plan. The rows examined whose own lower bound (`table.lower_bounds`) is not
above that plan go to CP-SAT; every row never examined is provably no cheaper, so CP-SAT's optimum is the optimum
over the exact space (ties in cost are resolved among the examined rows)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np

from ..perf.estimate import packed_chunk, prefill_chunks
from ..perf.params import PerfParams
from ..perf.step import ACTIVATION_BYTES_PER_ELEMENT, Hardware, chunk_attention_layer_s, kind_models, kind_prefix_counts
from .queueing import NO_REPLICA_COUNT, QueueTarget, RowTimes, fewest_replicas, row_key
from .space import MAX_MICRO_BATCH, Request, Row, enumerate_shapes, group_key, shape_group_index, shape_groups
from .table import (INT_LIMIT, MAX_ROUND_NS, MAX_STALL_COEF, NS_PER_S, OBJ_DIVISOR, Bounds, Limits, ShapeTerms,
                    Table, decode_cycle_ns, evaluate, lower_bounds, memory_excess_kib, memory_fits, min_over_kinds,
                    piped_cycle_floor, stage_sum, table_of, with_memory)

# A replica batch (pp × micro-batch) of the exact space stays at most this (no catalog GPU holds that many
# sequences of a real model); it sizes the integer objective's range (Limits.of).
MAX_BATCH = 1 << 16
GREEDY_ROWS_PER_TYPE = 8  # rows per GPU type and round (lowest bounds first) given a greedy placement


@dataclass
class Space:
    """The exact space of a request: shapes, their per-shape terms, and per shape the number of allowed
    micro-batch positions memory leaves (`top`; 0: none fits). Independent of its SLOs, unless built for the
    latency targets of `latency` (build_space's `lim`: then only the shapes that may meet them are listed)."""

    req: Request
    shapes: list[Row]
    terms: ShapeTerms
    values: list[np.ndarray] | None  # per shape, the allowed micro-batches (None: every multiple of DP)
    top: np.ndarray
    count: np.ndarray  # per shape, the allowed positions before memory
    gpu_type: np.ndarray  # per shape, the index of its GPU in req.gpus
    max_batch: int
    queue: "QueueBound | None" = None  # with a demand and a TTFT percentile: each shape's queueing replicas
    latency: Limits | None = None  # the limits whose latency targets the shapes were listed for (None: every shape)
    # `latency_depths`' stand-ins (space.shape_groups: one shape per group at PP 1) and their terms, when it ran:
    # `cycle_floor` takes its groups' terms from them instead of computing them again
    stand_ins: "tuple[list[Row], ShapeTerms] | None" = None
    # (TPOT target, params, `cycle_floor` at them): computed once for the queueing bound's range ends and the search
    floor: "tuple[int, PerfParams, np.ndarray] | None" = None

    def __len__(self) -> int:
        return len(self.shapes)

    def micro_batch(self, s: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Micro-batch at position `pos` (0-based) of shapes `s`."""
        s, pos = np.asarray(s, np.int64), np.asarray(pos, np.int64)
        if self.values is None:
            return self.terms.dp[s] * (pos + 1)
        return np.array([self.values[i][j] for i, j in zip(s.tolist(), pos.tolist())], np.int64)

    @property
    def rows(self) -> int:
        """(shape, micro-batch) rows the space holds."""
        return int(self.top.sum())

    def placements(self) -> int:
        """(row, layer placement) pairs: each row of pp stages has C(L − 1, pp − 1) placements."""
        L = self.req.model.num_layers
        rows_per_pp = np.bincount(self.terms.pp, weights=self.top, minlength=L + 1) if len(self) else []
        return sum(int(n) * math.comb(L - 1, pp - 1) for pp, n in enumerate(rows_per_pp) if n and pp >= 1)

    def table(self, s: np.ndarray, pos: np.ndarray, p: PerfParams, decode_terms: tuple | None = None,
              fits: bool = False) -> Table:
        s = np.asarray(s, np.int64)
        t = table_of(self.req, self.terms, s, self.micro_batch(s, pos), p, decode_terms=decode_terms, fits=fits)
        if self.queue is not None:
            t.min_replicas = self.queue.replicas(t, s)
        return t


@dataclass
class QueueBound:
    """The TTFT percentile's queueing bound (search/queueing.py) over the exact space. The bound of a row depends
    on its shape only, through the shape's concurrency row: the largest micro-batch that meets the TPOT and memory
    bounds, which is where the shape's range ends (`range_ends`: the oracle's space is each shape's micro-batches
    up to there, and `queueing.concurrency_rows` over it picks that row). So the fewest replicas meeting the
    percentile are computed once per shape (`need`), and every row tabulated later takes them as
    `queueing.min_replicas` does for a grid table."""

    lim: Limits
    need: np.ndarray  # per shape, the fewest replicas meeting the TTFT percentile (NO_REPLICA_COUNT: none)
    extra: dict[tuple[int, int], int]  # (shape, micro-batch) -> at least this many (percentile's tightening)

    def replicas(self, t: Table, s: np.ndarray) -> np.ndarray:
        """`queueing.min_replicas` of the rows of `t` (shapes `s`)."""
        b = lower_bounds(t, self.lim)
        out = np.maximum(1, b.replicas).astype(np.int64)
        cand = b.memory_ok & b.tpot_ok & b.gpus_ok & b.ttft_ok
        need = self.need[s]
        out = np.where(cand, np.where(need < 0, NO_REPLICA_COUNT, np.maximum(out, need)), out)
        for (shape, mb), k in self.extra.items():
            hit = (s == shape) & (np.asarray(t.rows.micro_batch) == mb) & (out >= 0)
            out[hit] = np.maximum(out[hit], k)
        return out


def queue_bound(sp: Space, lim: Limits, p: PerfParams, target: QueueTarget) -> QueueBound:
    """Each shape's queueing replicas at its range's end (QueueBound)."""
    ends = _range_ends(sp, lim, p)
    need = np.full(len(sp), NO_REPLICA_COUNT, np.int64)
    has = np.flatnonzero(ends > 0)
    if len(has):
        t = table_of(sp.req, sp.terms, has, sp.micro_batch(has, ends[has] - 1), p)
        need[has] = fewest_replicas(RowTimes.of(t, lower_bounds(t, lim)), target, lim.max_replicas)
    # the shapes keyed one by one only when the percentile's rounds asked for more replicas somewhere
    shape_of = {row_key(r)[:-1]: k for k, r in enumerate(sp.shapes)} if target.extra_replicas else {}
    extra = {}
    for key, k in target.extra_replicas.items():
        shape = shape_of.get(key[:-1])
        if shape is not None:
            extra[(shape, key[-1])] = k
    return QueueBound(lim, need, extra)


def _range_ends(sp: Space, lim: Limits, p: PerfParams) -> np.ndarray:
    """`range_ends`, all shapes at once (the same positions tried in the same order), tabulating about
    2 + log2(range) rows per shape. Rows whose decode cycle alone, or with their prompts' stalls at their floor
    (chunk sends and the chunk's own attention: `_hop_stall_fails`), misses the targets fail `passes` whatever
    their other terms (as `search_space`'s examine takes them): they are tabulated for their decode terms only."""
    floor = _known_floor(sp, p, lim.tpot_ns)

    def ok(s: np.ndarray, pos: np.ndarray) -> np.ndarray:
        mb = sp.micro_batch(s, pos)
        if sp.req.spec is not None:
            t = table_of(sp.req, sp.terms, s, mb, p)
            return passes(t, lower_bounds(t, lim), lim)
        out = np.zeros(len(s), bool)
        ask = np.flatnonzero(mb < floor[s])  # from the floor on every position fails (cycle_floor): not tabulated
        s, pos, mb = s[ask], pos[ask], mb[ask]
        td = table_of(sp.req, sp.terms, s, mb, p, decode_only=True)
        cycle = decode_cycle_ns(td)
        live = cycle <= lim.tpot_ns
        f = np.flatnonzero(live)
        live[f[_hop_stall_fails(sp, lim, s[f], pos[f], cycle[f], _dec_sum(td, f))]] = False
        k = np.flatnonzero(live)
        k_out = ask[k]
        dec = tuple(x[k] for x in (td.dec_ns_per_kind, td.dec_extra_ns, td.dec_extra_single_ns, td.dec_hop_ns))
        t = table_of(sp.req, sp.terms, s[k], mb[k], p, decode_terms=dec)
        out[k_out] = passes(t, lower_bounds(t, lim), lim)
        return out

    out = np.zeros(len(sp), np.int64)
    live = np.flatnonzero(sp.top > 0)
    live = live[ok(live, np.zeros(len(live), np.int64))]
    last = sp.top[live] - 1
    whole = ok(live, last)
    out[live[whole]] = sp.top[live[whole]]
    act, lo, hi = live[~whole], np.zeros(int((~whole).sum()), np.int64), last[~whole]
    while True:
        more = hi - lo > 1
        out[act[~more]] = lo[~more] + 1
        act, lo, hi = act[more], lo[more], hi[more]
        if len(act) == 0:
            return out
        mid = (lo + hi) // 2
        good = ok(act, mid)
        lo, hi = np.where(good, mid, lo), np.where(good, hi, mid)


def build_space(req: Request, p: PerfParams, demand_cap: int | None = None, lim: Limits | None = None) -> Space:
    """Shapes and their micro-batch ranges. `demand_cap`: the largest batch worth searching with a demand. `lim`:
    leave out the shapes that cannot meet its TPOT and TTFT targets even at their smallest micro-batch
    (`latency_depths`; they hold no row of the space); None: every shape (a space shared by several targets, as the frontier's)."""
    depths, stand_ins = (None, None) if lim is None else _latency_depths(req, p, lim)
    shapes = enumerate_shapes(req, depths)
    terms = ShapeTerms.of(req, shapes, p)
    n = len(shapes)
    dp, pp = terms.dp, terms.pp
    cap_batch = MAX_BATCH if demand_cap is None else max(1, min(MAX_BATCH, demand_cap))
    if req.micro_batches is None and req.batches is None:
        values = None
        count = np.maximum(0, np.minimum(MAX_MICRO_BATCH, cap_batch // pp) // dp)
    else:
        values = []
        for r in shapes:
            v = (sorted(set(req.micro_batches)) if req.micro_batches is not None
                 else sorted({b // r.pp for b in req.batches if b % r.pp == 0}))
            v = [m for m in v if m % r.dp == 0 and r.pp * m <= max(cap_batch, min(v, default=0) * r.pp)
                 and (req.batches is None or r.pp * m in req.batches)]
            values.append(np.array(v, np.int64))
        count = np.array([len(v) for v in values], np.int64).reshape(n)
    type_of = {g.id: k for k, g in enumerate(req.gpus)}
    space = Space(req, shapes, terms, values, np.zeros(n, np.int64), count,
                  np.array([type_of[r.gpu.id] for r in shapes.reps], np.int64)[shapes.group].reshape(n), 1)
    space.latency = None if depths is None else lim
    space.stand_ins = stand_ins
    space.top = _memory_top(space, count)
    tops = np.flatnonzero(space.top)
    if len(tops):
        space.max_batch = int((pp[tops] * space.micro_batch(tops, space.top[tops] - 1)).max())
    return space


def latency_depths(req: Request, p: PerfParams, lim: Limits) -> dict[tuple, int] | None:
    """Per group (space.group_key: a shape without its PP depth), the deepest PP at which a shape of the group may
    meet `lim`'s TPOT and TTFT targets (groups where none may: left out); None where the request leaves nothing
    out (a draft model, or pinned micro-batches or batches).

    Claim: a shape of group g at depth q, at its smallest micro-batch (position 0: DP sequences, B = q·DP), has
    `lower_bounds` TPOT >= ⌈(osl·(L·d + E_dec(q)) + u(q)·⌈(L·c + E_ch(q))/q⌉)/osl⌉ and TTFT >= L·f + E_pf(q),
    with d, c, f the group's decode, prefill-chunk increment and prefill times per layer at that micro-batch, E(q)
    the sum of the q stages' extras (table.stage_sum) and u(q) the stalling prompts `lower_bounds` counts
    ((B − 1) · q · chunks, clamped as there). Proof: per-layer terms and stage extras do not depend on the depth or
    the pipeline link (`table_of` computes them once per unit, a shape without its depth), so one stand-in row per
    group gives them for every q; the slowest stage is at least the balanced share (L·d + E_dec(q))/q (with
    several layer kinds L·d is Σ_k n_k·d_k, the same for every placement), the hops are >= 0 and so is the
    chunk's stage time when c and the chunk extras are (checked per group here; the hops and the claim itself
    on the perf model in tests/search/test_bounds.py). Where the bound misses the target (or
    the stall range `B · q · chunks <= MAX_STALL_COEF` is exceeded, which is exact), position 0 fails `passes`, and
    a shape failing at position 0 has no range (`range_ends`): it holds no row of the space. Every depth up to the
    deepest that passes is kept. This decides before any shape is listed (a 1.8T MoE over the catalog: 3.5k groups
    for 224k shapes, most of them too slow for the TPOT target at their smallest micro-batch: too few GPUs per
    stage, or so many stages that the prompts' stalls alone exceed it)."""
    return _latency_depths(req, p, lim)[0]


def _latency_depths(req: Request, p: PerfParams, lim: Limits) -> tuple[dict[tuple, int] | None,
                                                                        tuple[list[Row], ShapeTerms] | None]:
    """`latency_depths`, and the stand-ins it computed the terms of (Space.stand_ins; None where it returns None)."""
    if req.spec is not None or req.micro_batches is not None or req.batches is not None:
        return None, None
    reps = shape_groups(req)
    if not reps:
        return {}, None
    terms = ShapeTerms.of(req, reps, p)
    # position 0: micro-batch DP, depth 1; nothing here reads the memory terms (left out: `fits`)
    t = table_of(req, terms, np.arange(len(reps)), terms.dp, p, fits=True)
    L, osl = req.model.num_layers, req.workload.osl
    nonneg = ((t.dec_extra_ns >= 0).all(axis=1) & (t.dec_extra_single_ns >= 0) & (t.pf_extra_ns >= 0).all(axis=1)
              & (t.pf_extra_single_ns >= 0) & (t.chunk_ns_per_kind >= 0).all(axis=1)
              & (t.chunk_extra_ns >= 0).all(axis=1)
              & (t.chunk_extra_single_ns >= 0))
    limit = {g.id: req.gpu_limit(g) for g in req.gpus}
    tops = np.array([L if limit[r.gpu.id] is None else min(L, limit[r.gpu.id] // (r.tp * r.dp)) for r in reps],
                    np.int64)
    g = np.repeat(np.arange(len(reps)), tops)  # every (group, depth q)
    q = np.arange(len(g)) - np.repeat(np.cumsum(tops) - tops, tops) + 1
    dp = terms.dp[g]
    chunks = t.stall_coef[g]  # at depth 1: the prompt's chunks (1 when engines prefill first)
    first = bool(np.any(terms.params.prefill_first))
    coef = chunks if first else q * chunks
    users = np.minimum((q * dp - 1) * np.minimum(coef, MAX_STALL_COEF + 1), MAX_STALL_COEF + 1)
    layers_dec, layers_ch, layers_pf = (x @ t.kind_counts for x in (t.dec_ns_per_kind, t.chunk_ns_per_kind,
                                                                    t.pf_ns_per_kind))  # L·d, L·c, L·f
    dec_sum = layers_dec[g] + stage_sum(t.dec_extra_ns[g], t.dec_extra_single_ns[g], q)
    ch_sum = layers_ch[g] + stage_sum(t.chunk_extra_ns[g], t.chunk_extra_single_ns[g], q)
    chunk = -(-ch_sum // q)
    tpot = -(-(osl * dec_sum + users * chunk) // osl)
    users_p = np.minimum((q * dp - 1) * np.minimum(chunks, MAX_STALL_COEF + 1), MAX_STALL_COEF + 1)
    e = np.flatnonzero((q > 1) & (users_p <= osl)) if not first else np.zeros(0, np.int64)
    if len(e):
        # pipelined depths with at most one chunk per cycle: table.piped_cycle_floor (hops >= 0 left out), as
        # lower_bounds takes it (beyond, the bound above is its own); table.slowest_stage_chunk_ns at the balanced
        # share, its per-group parts taken once per group
        ge, qe, dsum = g[e], q[e], dec_sum[e]
        de, ce = t.dec_extra_ns, t.chunk_extra_ns
        deep = qe > 2
        d_max = np.max(t.dec_ns_per_kind, axis=1)
        d_max = np.where(d_max > 0, d_max, INT_LIMIT)  # no decode time per layer: one layer
        need = -(-dsum // qe) - np.where(deep, np.maximum(np.maximum(de[:, 0], de[:, 1]), de[:, 2])[ge],
                                         np.maximum(de[:, 0], de[:, 2])[ge])
        layers = np.maximum(1, -(-np.maximum(need, 0) // d_max[ge]))
        least = layers * min_over_kinds(t.chunk_ns_per_kind)[ge] + np.where(
            deep, np.minimum(np.minimum(ce[:, 0], ce[:, 1]), ce[:, 2])[ge], np.minimum(ce[:, 0], ce[:, 2])[ge])
        low = piped_cycle_floor(osl, users_p[e], qe, dsum, dsum + ch_sum[e], least, chunk[e])
        tpot[e] = -(-low // osl)
    ok = (tpot <= lim.tpot_ns) & (q * dp * coef <= MAX_STALL_COEF)
    if lim.ttft_ns is not None:
        ok &= layers_pf[g] + stage_sum(t.pf_extra_ns[g], t.pf_extra_single_ns[g], q) <= lim.ttft_ns
    ok |= ~nonneg[g]  # a group whose terms the claim does not cover keeps every depth
    deepest = np.zeros(len(reps), np.int64)
    np.maximum.at(deepest, g[ok], q[ok])
    return {group_key(r): int(d) for r, d in zip(reps, deepest.tolist()) if d > 0}, (reps, terms)


# Micro-batches (in units of DP) at which each group's decode terms are tabulated for `cycle_floor`: about √2 apart
CYCLE_GRID = np.unique(np.round(2.0 ** (np.arange(0, 41) / 2.0))).astype(np.int64)


def cycle_floor(sp: Space, p: PerfParams, tpot_ns: int) -> np.ndarray:
    """Per shape, a micro-batch from which on every micro-batch fails TPOT (`passes`): the smallest of a grid of
    micro-batches (CYCLE_GRID · DP) at which the shape's decode cycle alone provably exceeds `tpot_ns`
    (np.iinfo(int64).max where none does, or where the space has pinned micro-batches or a draft model).

    Claim: a shape of group g (space.group_key) at depth q and micro-batch m >= m' has `lower_bounds` TPOT >=
    L · d(m') + E_dec(q, m'), d the group's decode time per layer and E_dec the sum of its q stages' decode
    extras (table.stage_sum). Proof: TPOT >= the decode cycle q · (T_dec + hop) (the prefill stalls are >= 0:
    chunk increments and hops are times; tested on the perf model), T_dec >= the balanced share
    (L · d(m) + E_dec(q, m))/q (with several layer kinds L · d is Σ_k n_k · d_k), hops >= 0, and d and the
    extras never fall as the micro-batch grows (fact 1 of the module docstring); d and the extras do not depend
    on the depth or the pipeline link (`table_of`: one unit per shape without its depth), so one stand-in row
    per group and grid micro-batch gives them for every depth, and grid micro-batches are shared by groups alike
    in DP and EP (MoE routing statistics are computed once per distinct token count and EP). The search then
    skips tabulating positions known to fail: most of a large request's shapes miss TPOT at the largest
    micro-batch memory allows (the range's first probe)."""
    never = np.iinfo(np.int64).max
    out = np.full(len(sp), never, np.int64)
    if sp.values is not None or sp.req.spec is not None or len(sp) == 0:
        return out
    g = shape_group_index(sp.shapes)
    terms = _group_terms(sp, g, p)
    largest = np.zeros(len(terms), np.int64)  # per group, its largest micro-batch memory allows, in units of DP
    np.maximum.at(largest, g, sp.top)
    per = np.searchsorted(CYCLE_GRID, largest, side="right")  # grid points up to it, per group
    gi = np.repeat(np.arange(len(terms)), per)
    j = CYCLE_GRID[np.arange(len(gi)) - np.repeat(np.cumsum(per) - per, per)]
    if len(gi) == 0:
        return out
    t = table_of(sp.req, terms, gi, terms.dp[gi] * j, p, decode_only=True)  # reads the decode terms only
    mb = terms.dp[gi] * j  # each (group, grid point)'s micro-batch, in order within each group
    # The bound at depth q is A + D (q = 1) or A + B + (q − 2)·C (q > 1), A = L·d, D the single stage's extra,
    # B the first and last stages' and C the middle one's (stage_sum): per (group, grid point), where it exceeds
    # the target is decided for every depth at once, then each shape takes its group's first such grid point.
    A = t.dec_ns_per_kind @ t.kind_counts
    e = t.dec_extra_ns
    if (e[:, 1] < 0).any():  # a middle stage's extra below 0: not affine upwards in q; bound every shape
        return _cycle_floor_per_shape(sp, g, per, gi, mb, t, tpot_ns)
    fails_one = A + t.dec_extra_single_ns > tpot_ns
    rest = tpot_ns - A - e[:, 0] - e[:, 2]  # q > 1 fails where (q − 2)·C > rest
    C = e[:, 1]
    top_q = int(sp.terms.pp.max()) + 1  # deeper than any shape: "at no depth"
    q_min = np.where(C > 0, 2 + np.floor_divide(rest, np.maximum(C, 1)) + 1, np.where(rest < 0, 2, top_q))
    q_min = np.clip(q_min, 2, top_q)
    group_end = np.cumsum(per)
    # the first grid point of group h failing at depth q is the first whose q_min <= q: along the grid the running
    # minimum of q_min falls, so it is found by one search over all groups' (group, −running minimum) keys
    span = top_q + 2
    lift = (len(terms) - gi) * span  # earlier groups lifted above later ones: one running minimum serves all
    run_min = np.minimum.accumulate(q_min + lift) - lift
    keys = gi * span + (top_q - run_min)  # non-decreasing within each group, groups in order
    q = sp.terms.pp
    deep = q > 1
    at = np.searchsorted(keys, g * span + (top_q - q), side="left")
    hit = deep & (at < group_end[g])
    out[hit] = mb[at[hit]]
    # depth 1: the first grid point of the group where A + D exceeds the target
    first_one = np.full(len(terms), -1, np.int64)
    idx = np.flatnonzero(fails_one)
    h, at_one = np.unique(gi[idx], return_index=True)
    first_one[h] = idx[at_one]
    one = ~deep & (first_one[g] >= 0)
    out[one] = mb[first_one[g[one]]]
    return out


def _known_floor(sp: Space, p: PerfParams, tpot_ns: int) -> np.ndarray:
    """`cycle_floor` for a space listed for these targets (computed once per target and params: the queueing
    bound's range ends and the search both skip the positions past it); for any other space no floor
    (np.iinfo(int64).max: the explanation of an infeasible request and the frontier's shared space tabulate
    those positions)."""
    if sp.latency is None:
        return np.full(len(sp), np.iinfo(np.int64).max, np.int64)
    if sp.floor is None or sp.floor[0] != tpot_ns or sp.floor[1] is not p:
        sp.floor = (tpot_ns, p, cycle_floor(sp, p, tpot_ns))
    return sp.floor[2]


def _group_terms(sp: Space, g: np.ndarray, p: PerfParams) -> ShapeTerms:
    """The terms of one stand-in per group of the space's shapes (its first shape at PP 1; groups `g` numbered
    by first appearance): taken from `Space.stand_ins` where the space has them (the same rows: `enumerate_shapes`
    lists its groups' stand-ins as `shape_groups` does, PP 1 and micro-batch 1; ShapeTerms.take), else computed."""
    reps = getattr(sp.shapes, "reps", None)  # a space.Shapes holds them
    if reps is None:
        first = np.unique(g, return_index=True)[1]
        reps = [replace(sp.shapes[i], pp=1) for i in first.tolist()]
    if sp.stand_ins is None:
        return ShapeTerms.of(sp.req, reps, p)
    all_reps, all_terms = sp.stand_ins
    at = {group_key(r): k for k, r in enumerate(all_reps)}
    return all_terms.take(np.array([at[group_key(r)] for r in reps], np.int64))


def _cycle_floor_per_shape(sp: Space, g: np.ndarray, per: np.ndarray, gi: np.ndarray, mb: np.ndarray, t: Table,
                           tpot_ns: int) -> np.ndarray:
    """`cycle_floor`'s bound at every (shape, grid point of its group) (the form that needs no sign of the
    middle stage's extra)."""
    out = np.full(len(sp), np.iinfo(np.int64).max, np.int64)
    start = np.cumsum(per) - per
    n_of = per[g]
    s_rep = np.repeat(np.arange(len(sp)), n_of)
    k = start[g][s_rep] + (np.arange(len(s_rep)) - np.repeat(np.cumsum(n_of) - n_of, n_of))
    q = sp.terms.pp[s_rep]
    bound = (t.dec_ns_per_kind @ t.kind_counts)[k] + stage_sum(t.dec_extra_ns[k], t.dec_extra_single_ns[k], q)
    fails = bound > tpot_ns
    np.minimum.at(out, s_rep[fails], mb[k[fails]])
    return out


def pool_rows(req: Request, terms: ShapeTerms, idx: np.ndarray, mb: np.ndarray, p: PerfParams, lim: Limits,
              prefill: bool) -> np.ndarray:
    """Which rows (shapes `idx` of `terms`, micro-batches `mb`) the pools of `fleet.pools.class_pools` may choose,
    decided before they are tabulated: a mask that keeps every row any role's candidate filter there can pass.
    `prefill`: the prefill role is searched (its rows are those at micro-batch = DP).

    Claim: a row is a candidate of some role only if (a) it passes `memory_fits` and (b) its micro-batch is DP
    (a prefill row) or its decode cycle bound pp · (dec_stage + hop) (`lower_bounds`) is at most the TPOT target.
    Proof: every role's candidates need `lower_bounds`' memory_ok, which is `memory_fits` (the same condition
    on the same memory terms). A decode candidate needs that cycle bound <= TPOT; an aggregated one needs the
    TPOT bound <= TPOT, and that bound is the cycle plus the prefill stalls (>= 0), so it needs the cycle bound
    <= TPOT too. Only prefill rows (micro-batch = DP) are exempt. For (b) without tabulating every row: a shape
    of group g (space.group_key) at depth q and micro-batch m has cycle bound >= L · d(m) + E_dec(q, m) (the
    slowest stage takes at least the balanced share, times q; the hop is >= 0), d and the extras per group as in
    `cycle_floor` (one stand-in row per group at depth 1 gives them for every depth) and non-decreasing in m
    (fact 1). So min over the group's depths q of L · d(m) + E_dec(q, m) is non-decreasing in m, and where it
    exceeds the target at some m, no row of the group at m or above is a decode or aggregated candidate: per
    group, the largest micro-batch (of those its memory-fitting rows hold) where it does not is found by
    bisection, tabulating about log2(micro-batches) stand-in rows per group instead of every (group,
    micro-batch) unit. Tested on the perf model in tests/search/test_bounds.py."""
    idx, mb = np.asarray(idx, np.int64), np.asarray(mb, np.int64)
    keep = _memory_prefix(req, terms, idx, mb)
    if req.spec is not None or not keep.any():
        return keep
    shapes = terms.shapes
    g_shape = shape_group_index(shapes)
    first = np.unique(g_shape, return_index=True)[1]
    reps = [replace(shapes[i], pp=1) for i in first.tolist()]
    rt = ShapeTerms.of(req, reps, p)
    g_row = g_shape[idx]
    live = np.flatnonzero(keep)
    # per group, its memory-fitting micro-batches (sorted) and depths
    base = int(max(mb.max(), terms.pp.max())) + 1
    key = np.unique(g_row[live] * base + mb[live])
    pairs = np.stack([key // base, key % base])  # (group, micro-batch), sorted
    count = np.bincount(pairs[0], minlength=len(reps)).astype(np.int64)
    start = np.cumsum(count) - count
    depths: list[np.ndarray] = [np.zeros(0, np.int64)] * len(reps)
    key = np.unique(g_row[live] * base + terms.pp[idx[live]])
    gq = np.stack([key // base, key % base])  # (group, depth), sorted
    cuts = np.flatnonzero(np.diff(gq[0])) + 1
    for seg in np.split(np.arange(gq.shape[1]), cuts):
        if len(seg):
            depths[int(gq[0, seg[0]])] = gq[1, seg]
    nq = np.array([len(d) for d in depths], np.int64)
    tpot = lim.tpot_ns

    def ok(gs: np.ndarray, pos: np.ndarray) -> np.ndarray:
        m_ = pairs[1, start[gs] + pos]
        t = table_of(req, rt, gs, m_, p, decode_only=True)  # reads the decode terms only
        layers = t.dec_ns_per_kind @ t.kind_counts
        k = np.repeat(np.arange(len(gs)), nq[gs])  # every (stand-in row, depth of its group)
        q = np.concatenate([depths[i] for i in gs.tolist()]) if len(gs) else np.zeros(0, np.int64)
        bound = layers[k] + stage_sum(t.dec_extra_ns[k], t.dec_extra_single_ns[k], q)
        best = np.full(len(gs), np.iinfo(np.int64).max, np.int64)
        np.minimum.at(best, k, bound)
        return best <= tpot

    n_ok = _last_true(ok, count)
    top = np.zeros(len(reps), np.int64)  # per group, the largest micro-batch passing (0: none)
    has = np.flatnonzero(n_ok > 0)
    top[has] = pairs[1, start[has] + n_ok[has] - 1]
    dec = mb <= top[g_row]
    if prefill:
        dec |= mb == terms.dp[idx]
    return keep & dec


def _memory_prefix(req: Request, terms: ShapeTerms, idx: np.ndarray, mb: np.ndarray) -> np.ndarray:
    """`memory_fits` of every row, tested on about log2(micro-batches) rows per shape: where the rows come as
    runs of one shape with rising micro-batches (enumerate_rows' order), the rows that fit are the first of each
    run, since every memory term is non-decreasing in the micro-batch (weights fixed, KV and activations
    affine with non-negative slopes, each rounded up) and the conditions compare them with fixed capacities;
    found by bisection (`_last_true`). Other row orders: every row tested."""
    n = len(idx)
    if n == 0:
        return np.zeros(0, bool)
    new_run = np.r_[True, idx[1:] != idx[:-1]]
    runs = np.flatnonzero(new_run)
    if not ((idx[1:] >= idx[:-1]).all() and (mb[1:] > mb[:-1])[~new_run[1:]].all()):
        return memory_fits(req, terms, idx, mb)
    count = np.diff(np.r_[runs, n])
    n_fit = _last_true(lambda rs, pos: memory_fits(req, terms, idx[runs[rs]], mb[runs[rs] + pos]), count)
    return np.arange(n) - np.repeat(runs, count) < np.repeat(n_fit, count)


def _memory_top(sp: Space, count: np.ndarray) -> np.ndarray:
    """Per shape, how many of its first `count` micro-batch positions pass `memory_fits` (monotone: true, then
    false), as `_last_true`'s bisection finds it, with fewer tabulations: each condition's excess (need − room)
    at the first and the last position gives by proportion where it reaches 0, the earliest of those is checked
    at two positions (the last passing, the first failing), and only the shapes where that check fails (a kink
    where the batch's KV overtakes one long sequence's, rounding) are bisected, inside the bracket the check
    left. The answer is the same: a count is taken only where the position before it passes and the one at it
    fails (or it is 0 or `count`, decided at the ends)."""
    req, terms = sp.req, sp.terms

    def excess(s: np.ndarray, pos: np.ndarray) -> np.ndarray:
        return memory_excess_kib(req, terms, s, sp.micro_batch(s, pos))

    def ok(s: np.ndarray, pos: np.ndarray) -> np.ndarray:
        return (excess(s, pos) <= 0).all(axis=1)

    n = len(count)
    out = np.zeros(n, np.int64)
    live = np.flatnonzero(count > 0)
    if len(live) == 0:
        return out
    last = count[live].astype(np.int64) - 1
    e0 = excess(live, np.zeros(len(live), np.int64))
    e1 = excess(live, last)
    fits0, fits1 = (e0 <= 0).all(axis=1), (e1 <= 0).all(axis=1)
    out[live[fits0 & fits1]] = count[live[fits0 & fits1]]
    mid = fits0 & ~fits1  # position 0 passes, the last fails: the count is in 1 … last
    s, e0, e1, last = live[mid], e0[mid], e1[mid], last[mid]
    if len(s) == 0:
        return out
    # per condition missed at the last position, the last position where its chord is still <= 0
    crossing = np.where(e1 > 0, (-e0 * last[:, None]) // np.maximum(e1 - e0, 1), np.iinfo(np.int64).max)
    guess = np.clip(crossing.min(axis=1) + 1, 1, last)  # the count: positions < guess pass
    before, at = ok(s, guess - 1), ok(s, guess)
    right = before & ~at
    out[s[right]] = guess[right]
    lo = np.where(at, guess + 1, 1)  # positions < lo pass
    hi = np.where(before, last, guess - 1)  # positions >= hi fail
    wrong = ~right
    out[s[wrong]] = _last_true(ok, count[s[wrong]], s[wrong], lo[wrong], hi[wrong])
    return out


def _last_true(ok, count: np.ndarray, shapes: np.ndarray | None = None, lo: np.ndarray | None = None,
               hi: np.ndarray | None = None) -> np.ndarray:
    """Per shape, how many of its first `count` positions pass `ok(shapes, positions)`, given ok monotone (true,
    then false): bisection, all shapes at once. `shapes`: the shape numbers `ok` takes (default 0 … n − 1);
    `lo`, `hi`: a bracket already known (positions < lo pass, positions >= hi fail; lo <= hi)."""
    n = len(count)
    ids = np.arange(n) if shapes is None else np.asarray(shapes, np.int64)
    if lo is None:
        lo = np.zeros(n, np.int64)  # positions < lo pass
        hi = count.astype(np.int64).copy()  # positions >= hi fail
        live = np.flatnonzero(hi > 0)
        first = ok(ids[live], np.zeros(len(live), np.int64)) if len(live) else np.zeros(0, bool)
        lo[live[first]] = 1
        hi[live[~first]] = 0
    else:
        lo, hi = lo.astype(np.int64).copy(), hi.astype(np.int64).copy()
    while True:
        act = np.flatnonzero(hi - lo > 0)
        if len(act) == 0:
            return lo
        mid = (lo[act] + hi[act]) // 2  # lo - 1 passes; test mid in [lo, hi)
        good = ok(ids[act], mid)
        lo[act] = np.where(good, mid + 1, lo[act])
        hi[act] = np.where(good, hi[act], mid)


@dataclass
class Examined:
    """The rows the lazy search examined, the candidates among them, and its counts."""

    table: Table  # candidate rows (shape order, then micro-batch), each shape's next micro-batch kept for explain
    candidates: np.ndarray  # indices into `table` CP-SAT may choose
    upper: dict[int, int]  # per GPU type index, the best objective a greedy placement reached
    examined: int  # rows tabulated in all
    rounds: int
    table_s: float = 0.0  # time in tabulating them
    all_table: Table | None = None  # every examined row (only when nothing is feasible: for the explanation)


def passes(t: Table, b: Bounds, lim: Limits) -> np.ndarray:
    """The conditions that bound a shape's micro-batch range (module docstring, 1): memory, TPOT, TTFT, the round
    and stall ranges and, without a demand, the GPU limit, each from `table.lower_bounds`."""
    ok = (b.memory_ok & b.ttft_ok & b.tpot_ok)
    if lim.demand_tokens_per_s is None:
        ok &= (t.gpu_limit < 0) | (t.gpus <= t.gpu_limit)
    return ok


def search_space(sp: Space, lim: Limits, p: PerfParams, per_type: bool = True) -> Examined:
    """The lazy search of the module docstring. `per_type`: bound every GPU type by its own best plan (so that
    each type's best plan, the plan's alternatives, is found too); else by the best plan of any type."""
    req = sp.req
    live = np.flatnonzero(sp.top > 0)
    ev_s: list[np.ndarray] = []  # examined rows, concatenated over rounds
    ev_pos: list[np.ndarray] = []
    ev_lb: list[np.ndarray] = []
    ev_feas: list[np.ndarray] = []
    upper: dict[int, int] = {}
    inc = np.full(len(req.gpus), np.iinfo(np.int64).max, np.int64)
    greedy_done: set[tuple[int, int]] = set()
    examined, table_s = 0, 0.0

    def examine(s: np.ndarray, pos: np.ndarray, gap: tuple | None = None):
        """Tabulate rows (s, pos): their decode cycle (which never falls as the micro-batch grows) and `passes`.
        The rows whose decode cycle alone exceeds the TPOT target are tabulated for their decode terms only
        (`table_of` decode_only: no prefill-chunk step, whose MoE routing statistics at each mixed token count
        are most of a table's cost): they fail `passes` and are not feasible, because `lower_bounds`' TPOT is
        ⌈(osl · cycle + stalling prompts · (chunk stage + chunk hop)) / osl⌉ >= cycle, the stall term being
        >= 0 (counts >= 0; chunk increments and hops are times, >= 0: tested on the perf model in
        tests/search/test_bounds.py, as cycle_floor's claim takes them), and their objective bound is read only
        where feasible. So are the rows whose decode cycle plus their prompts' stalls at their floor (the chunk
        sends between stages and, on the probes, the chunk's own attention) miss the TPOT target or the round and
        stall ranges (`_hop_stall_fails`), and the probes `_settled` finds (`gap`: the probed gaps (edge, lo, hi, cycle at lo)):
        they are reported as failing `passes`, which changes no later step. The others get the full table, as
        before; the verdicts read are the same."""
        nonlocal examined, table_s
        n = len(s)
        t0 = time.perf_counter()
        td = table_of(req, sp.terms, s, sp.micro_batch(s, pos), p, decode_only=True)
        cycle = decode_cycle_ns(td)
        fast = cycle <= lim.tpot_ns
        if req.spec is None and fast.any():  # the prompts' stage-to-stage sends alone miss TPOT (or the ranges)
            f = np.flatnonzero(fast)
            # (the chunk's floor only on the probes: round 0's rows, at DP sequences each, share units across PP
            # depths and cost little in full, about what their floors would)
            fast[f[_hop_stall_fails(sp, lim, s[f], pos[f], cycle[f], _dec_sum(td, f),
                                    chunk_floor=gap is not None)]] = False
        if gap is not None and fast.any():
            f = np.flatnonzero(fast)
            bar = inc[sp.gpu_type[s[f]]]  # each row's GPU type's best plan so far
            fast[f[_settled(sp, lim, s[f], pos[f], cycle[f], bar, *(x[f] for x in gap))]] = False
        live = np.flatnonzero(fast)
        # the live rows' full table takes their decode terms from td (the same numbers) when there is no draft
        dec = (None if req.spec is not None else
               tuple(x[live] for x in (td.dec_ns_per_kind, td.dec_extra_ns, td.dec_extra_single_ns, td.dec_hop_ns)))
        # positions below Space.top pass memory_fits: without a draft, no memory terms (table_of fits)
        t = sp.table(s[live], pos[live], p, decode_terms=dec, fits=req.spec is None)
        table_s += time.perf_counter() - t0
        b = lower_bounds(t, lim)
        examined += n
        ok, lb, feas = np.zeros(n, bool), np.full(n, np.iinfo(np.int64).max, np.int64), np.zeros(n, bool)
        ok[live] = passes(t, b, lim)
        lb[live] = b.objective
        feas[live] = b.feasible & ok[live]
        ev_s.append(s)
        ev_pos.append(pos)
        ev_lb.append(lb)
        ev_feas.append(feas)
        _improve(sp, t, b, s[live], pos[live], lim, inc, upper, greedy_done)
        return cycle, ok

    # round 0: every shape at its smallest micro-batch, then the shapes whose smallest passes (the others have no
    # range: range_ends) at the largest memory allows. Most shapes of a large request fail at their smallest
    # micro-batch (a 1.8T MoE on 1-8 GPUs per stage misses TPOT already there: 160k of 202k shapes), and their
    # smallest micro-batch is one tabulation unit for every PP depth, while each depth's largest is its own unit
    n = len(live)
    cycle, first = examine(live, np.zeros(n, np.int64))
    live1 = live[first]
    top = sp.top[live1] - 1
    both = top > 0
    # positions known to fail TPOT (cycle_floor; only for a space listed for these targets: the explanation of an
    # infeasible request and the frontier's shared space tabulate them) are not tabulated: they fail `passes`
    floor = _known_floor(sp, p, lim.tpot_ns)

    def probe(s: np.ndarray, pos: np.ndarray, edge: np.ndarray, lo: np.ndarray, hi: np.ndarray,
              cycle_lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """examine(s, pos) of the gaps (lo, hi) (cycle at lo: cycle_lo) where an edge gap's probe is not known to
        fail; a known failure: (0, False)."""
        known = edge & (sp.micro_batch(s, pos) >= floor[s])
        cycle_, ok_ = np.zeros(len(s), np.int64), np.zeros(len(s), bool)
        if not known.all():
            k = ~known
            cycle_[k], ok_[k] = examine(s[k], pos[k], (edge[k], lo[k], hi[k], cycle_lo[k]))
        return cycle_, ok_

    ok_top = np.ones(len(live1), bool)
    if both.any():
        # the range's last position probed as in a gap (0, top + 1) whose only half is (0, top)
        nb = int(both.sum())
        ok_top[both] = probe(live1[both], top[both], np.ones(nb, bool), np.zeros(nb, np.int64), top[both] + 1,
                             cycle[first][both])[1]
    # gaps (lo, hi): lo examined and in the range; positions lo+1 .. hi-1 unexamined. An edge gap's hi failed the
    # range conditions (the bisection for the range's end goes on in it); an inner gap's hi is in the range.
    g_s, g_lo, g_hi, g_cycle = live1, np.zeros(len(live1), np.int64), top, cycle[first]
    g_edge = ~ok_top
    rounds = 1
    while True:
        open_ = g_hi - g_lo > 1
        g_s, g_lo, g_hi, g_cycle, g_edge = g_s[open_], g_lo[open_], g_hi[open_], g_cycle[open_], g_edge[open_]
        if len(g_s) == 0:
            break
        lb = _gap_bound(sp, lim, g_s, g_hi - 1, g_cycle)
        open_ = lb < (inc[sp.gpu_type[g_s]] if per_type else inc.min())
        g_s, g_lo, g_hi, g_cycle, g_edge = g_s[open_], g_lo[open_], g_hi[open_], g_cycle[open_], g_edge[open_]
        if len(g_s) == 0:
            break
        # the range's end by bisection; inside the range, split where the bound is loosest (geometric middle)
        mid = np.where(g_edge, (g_lo + g_hi) // 2, _geometric_middle(g_lo, g_hi))
        cycle_m, ok_m = probe(g_s, mid, g_edge, g_lo, g_hi, g_cycle)
        rounds += 1
        # inner gap: (lo, mid) and (mid, hi), both inner. Edge gap: mid in range -> (lo, mid) inner and (mid, hi)
        # edge; mid out of range -> (lo, mid) edge
        inner = ~g_edge
        upper_half = inner | ok_m
        g_s, g_lo, g_hi, g_cycle, g_edge = (
            np.concatenate([g_s, g_s[upper_half]]), np.concatenate([g_lo, mid[upper_half]]),
            np.concatenate([mid, g_hi[upper_half]]), np.concatenate([g_cycle, cycle_m[upper_half]]),
            np.concatenate([g_edge & ~ok_m, g_edge[upper_half]]))
    s_all = np.concatenate(ev_s) if ev_s else np.zeros(0, np.int64)
    pos_all = np.concatenate(ev_pos) if ev_pos else np.zeros(0, np.int64)
    lb_all = np.concatenate(ev_lb) if ev_lb else np.zeros(0, np.int64)
    feas_all = np.concatenate(ev_feas) if ev_feas else np.zeros(0, bool)
    limit_all = inc[sp.gpu_type[s_all]] if per_type else np.full(len(s_all), inc.min())
    cand = feas_all & (lb_all <= limit_all)
    if not cand.any():
        return Examined(_empty_or(sp, s_all, pos_all, p), np.zeros(0, np.int64), upper, examined, rounds, table_s,
                        all_table=_explain_table(sp, s_all, pos_all, p))
    cs, cp = s_all[cand], pos_all[cand]
    # each candidate's next micro-batch too (explain.batch_limited_by reads the row after the plan's), not chosen
    nxt = cp + 1
    room = nxt < sp.count[cs]
    keys = {(int(a), int(b)) for a, b in zip(cs, cp)}
    ext = {(int(a), int(b)) for a, b, r in zip(cs, nxt, room) if r}
    allk = sorted(keys | ext)
    t = sp.table(np.array([k[0] for k in allk], np.int64), np.array([k[1] for k in allk], np.int64), p)
    chosen = np.array([k in keys for k in allk], bool)
    return Examined(t, np.flatnonzero(chosen), upper, examined, rounds, table_s)


def _empty_or(sp: Space, s: np.ndarray, pos: np.ndarray, p: PerfParams) -> Table:
    return sp.table(s[:1], pos[:1], p) if len(s) else sp.table(np.zeros(0, np.int64), np.zeros(0, np.int64), p)


def _explain_table(sp: Space, s: np.ndarray, pos: np.ndarray, p: PerfParams) -> Table | None:
    """Every shape at its smallest micro-batch (memory or not) and every examined row: what the infeasibility
    explanation reads."""
    n = len(sp)
    if n == 0:
        return None
    has = np.array([(v is None) or len(v) > 0 for v in (sp.values or [None] * n)], bool)
    base = np.flatnonzero(has)
    keys = sorted(set(zip(base.tolist(), [0] * len(base))) | set(zip(s.tolist(), pos.tolist())))
    if not keys:
        return None
    return sp.table(np.array([k[0] for k in keys], np.int64), np.array([k[1] for k in keys], np.int64), p)


def _settled(sp: Space, lim: Limits, s: np.ndarray, pos: np.ndarray, cycle: np.ndarray, bar: np.ndarray,
             edge: np.ndarray, lo: np.ndarray, hi: np.ndarray, cycle_lo: np.ndarray) -> np.ndarray:
    """Which probes (s, pos) of `search_space`, whose decode cycles `cycle` meet the TPOT target, need no full
    table: nothing the search reads of them can matter while the best plan of their GPU type is `bar` (at least
    the best plan of any type, which bounds the search when it is not `per_type`). A probe at pos of gap
    (lo, hi), lo < pos < hi, cycle at lo `cycle_lo`, edge gap or not (`edge`), is settled when

    (a) its own bound `_gap_bound` at pos (batch at pos, its own cycle) is above `bar`: the row's objective bound
        (`lower_bounds`) is at least that (every term of that bound — replicas, round time >= cycle, the
        queueing replicas — is at least the gap bound's, module docstring 2), so the row is no candidate
        (candidates need a bound at most the final best plan, and the best plan only falls) and no greedy
        placement tries it (`_improve` stops at the first row whose bound is not below the best plan); and
    (b) it probes an inner gap, or an edge gap whose halves are both closed already: (lo, pos) has no position
        inside or its bound (batch at pos − 1, cycle at lo) is at least `bar`, and (pos, hi) likewise (batch at
        hi − 1, cycle at pos). An inner gap's probe splits it into the same two inner halves whether it passes
        or not, and the next round closes every half whose bound is not below the best plan then (<= bar). An
        edge gap's probe decides only which halves are kept and which of them is the edge: once both are
        closed, the same gaps remain for the next round either way.

    So the lazy search examines the same rows, keeps the same candidates and finds the same upper bounds with
    the settled probes reported as failing `passes` (the rows whose decode cycle alone misses TPOT are reported
    so too); each one saves its prefill and prefill-chunk step (the chunk's MoE routing statistics at each mixed
    token count). Tested against the search without it in tests/search/test_bounds.py."""
    out = _gap_bound(sp, lim, s, pos, cycle) > bar
    e = np.flatnonzero(out & edge)
    if len(e) == 0:
        return out
    closed = np.ones(len(e), bool)
    inside = np.flatnonzero(pos[e] - lo[e] > 1)
    ii = e[inside]
    closed[inside] &= _gap_bound(sp, lim, s[ii], pos[ii] - 1, cycle_lo[ii]) >= bar[ii]
    inside = np.flatnonzero(hi[e] - pos[e] > 1)
    ii = e[inside]
    closed[inside] &= _gap_bound(sp, lim, s[ii], hi[ii] - 1, cycle[ii]) >= bar[ii]
    out[e] = closed
    return out


def chunk_hop_floor_ns(sp: Space, s: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(stall coefficient, a lower bound on the chunk hop) of rows (s, pos), without a draft model, from the
    shapes' terms alone: `table_of`'s `stall_coef` (pp · the prompt's chunks, perf.estimate.prefill_chunks at
    the row's decode tokens per DP group; 1 for an engine that prefills first) and at most its `chunk_hop_ns`.

    Claim: chunk_hop_ns >= ⌊k · M / (BW · η · DP) · 1e9⌋ − 1 ns with pp > 1 (0 with pp = 1 or prefill first),
    k = ISL / chunks a chunk's tokens, M the hidden size × the activation bytes, BW the pipeline link, η the link
    efficiency. Proof: a chunk's hop in perf.estimate.prefill_chunk_terms is p2p(both) − p2p(dec), p2p(x) =
    α + x·M/(BW·η) (perf.comm.p2p_time_s), both − dec the prompt tokens the step carries per DP group; step_terms
    takes its share per DP group of the chunk's, so the hop per chunk of the prompt is k·M/(BW·η) / DP (with the
    prompts packed into a step, its share k/c of the c tokens' send: the same), plus any share of extra decode
    steps (>= 0); the table rounds it up to whole ns. The 1 ns and the relative 1e-9 taken off cover the float
    rounding of the difference of two sends. Tested against the tables in tests/search/test_bounds.py."""
    req, t = sp.req, sp.terms
    pp, dp = t.pp[s], t.dp[s]
    dpf = dp.astype(float)
    chunks = prefill_chunks(req.workload.isl, sp.micro_batch(s, pos).astype(float) / dpf,
                            t.param("max_batched_tokens", s))
    first = np.broadcast_to(np.asarray(t.param("prefill_first", s), bool), pp.shape)
    coef = np.where(first, 1, pp * chunks.astype(np.int64))
    msg = req.model.hidden_size * ACTIVATION_BYTES_PER_ELEMENT
    with np.errstate(divide="ignore", invalid="ignore"):
        hop_s = (req.workload.isl / chunks) * msg / (t.link[s] * t.param("link_efficiency", s)) / dpf
    hop = np.floor(np.nan_to_num(hop_s * (1.0 - 1e-9), nan=0.0, posinf=0.0) * NS_PER_S) - 1.0
    hop = np.where((pp > 1) & ~first & np.isfinite(hop), np.maximum(hop, 0.0), 0.0).astype(np.int64)
    return coef, hop


def chunk_layer_floor_ns(sp: Space, s: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """A lower bound on `table_of`'s `chunk_ns_per_kind` of rows (s, pos) ([n, K], ns per layer of each kind,
    perf.step.kind_models), without a draft model, from the chunk's own attention alone: no expert-routing
    statistics (the full table's chunk step computes them at every mixed token count, most of its cost).

    Claim: chunk_ns_per_kind[k] >= ⌊g_k · share / DP · 1e9 · (1 − 1e-9)⌋ − 1 ns, g_k the prefill chunk's attention
    group averaged over kind k's layers (perf.step.chunk_attention_layer_s, group 4 of `layer_step`) at the chunk
    step_terms puts in the decode step (packed_chunk's c · DP tokens attending ISL/2 keys, reading (ISL − k)/2
    cached ones), share = k/c; 0 on rows whose engine prefills first (their chunk terms are the prefill's) and
    on MoE kinds under two-batch overlap with EP > 1 (there the chunk's attention may hide behind the
    all-to-all). Proof: the table's term is ⌈(mixed − alone) · share / DP · 1e9⌉ plus any share of extra decode
    steps (>= 0) (perf.estimate.step_terms, prefill_chunk_terms), mixed and alone each the sum of their kernel
    groups, communication and fixed time (`layer_step` without two-batch overlap); mixed holds group 4 (g_k), and
    each of its other terms is at least alone's: the same decode tokens' attention group, and the GEMM,
    expert and collective terms at the decode plus chunk tokens instead of the decode tokens alone, which never
    fall as the tokens grow (wave quantization, padded expert tiles, the busiest rank's load, bytes sent) nor as
    the GEMM efficiency falls to the mixed step's smaller maximum; the 1 ns and the relative 1e-9 cover the
    float rounding of the difference. Tested against the tables in tests/search/test_bounds.py."""
    t, model, wl = sp.terms, sp.req.model, sp.req.workload
    kinds = kind_models(model)
    out = np.zeros((len(s), len(kinds)), np.int64)
    if len(s) == 0:
        return out
    dp = t.dp[s].astype(float)
    per_group = sp.micro_batch(s, pos).astype(float) / dp  # decode tokens (= sequences) per DP group
    budget = t.param("max_batched_tokens", s)
    k = wl.isl / prefill_chunks(wl.isl, per_group, budget)
    packed, share, _ = packed_chunk(wl.isl, wl.osl, per_group, per_group, k, budget)
    hw = Hardware(**{f: getattr(t.hw, f)[s] for f in Hardware.__dataclass_fields__})
    p = replace(t.params, **{f: v[s] for f, v in vars(t.params).items() if isinstance(v, np.ndarray)})
    first = np.broadcast_to(np.asarray(t.param("prefill_first", s), bool), (len(s),))
    tbo = np.broadcast_to(np.asarray(t.param("two_batch_overlap", s), bool), (len(s),)) & (t.ep[s] > 1)
    for j, (_, _, km) in enumerate(kinds):
        g = chunk_attention_layer_s(km, hw, p, tp=t.tp[s], kv_bytes=t.kv_bytes[s], chunk_tokens=packed * dp,
                                    chunk_attended_tokens=wl.isl / 2.0, chunk_kv_read_tokens=(wl.isl - k) / 2.0,
                                    dp=dp)
        with np.errstate(invalid="ignore", over="ignore"):
            ns = np.floor(np.nan_to_num(g * (share / dp) * (1.0 - 1e-9) * NS_PER_S, nan=0.0, posinf=0.0)) - 1.0
        off = first | (tbo if km.is_moe else False)
        out[:, j] = np.where(off, 0.0, np.maximum(ns, 0.0)).astype(np.int64)
    return out


def _dec_sum(td: Table, f: np.ndarray) -> np.ndarray:
    """Σ_s (decode stage + hop) of rows f of a decode-only table: the same for every placement."""
    pp = td.pp[f]
    return td.dec_ns_per_kind[f] @ td.kind_counts + stage_sum(td.dec_extra_ns[f], td.dec_extra_single_ns[f], pp) \
        + pp * td.dec_hop_ns[f]


def _hop_stall_fails(sp: Space, lim: Limits, s: np.ndarray, pos: np.ndarray, cycle: np.ndarray,
                     dec_sum: np.ndarray | None = None, chunk_floor: bool = True) -> np.ndarray:
    """Which rows (s, pos), decode cycle `cycle` (`decode_cycle_ns`), Σ_s (decode stage + hop) `dec_sum` (None:
    taken as 0, a weaker floor), fail `passes` whatever their prefill-chunk step: `lower_bounds`' TPOT
    ⌈(osl · cycle + users · (chunk stage + chunk hop)) / osl⌉ and round (prompts for users) are at least those
    with the chunk's per-layer terms at their floor (`chunk_layer_floor_ns`) and its stage extras 0 (they are
    >= 0: tested on the perf model, as examine takes them; the slowest chunk stage is at least the balanced share
    of the layers' total and at least the cheapest kind's layer, as in `lower_bounds`) and the chunk hop at its
    floor (`chunk_hop_floor_ns`), users and prompts clamped as there. A pipelined row's (table.stalled_ns, engines
    chunking their prefill) are at least `piped_cycle_floor` with step `cycle`, path `dec_sum` + the chunk's layer
    floors + pp · hop floor, least the cheapest kind's floor + hop floor (the slowest decode stage holds a layer)
    and most the slowest chunk stage's floor + hop floor (first with the chunk's terms at 0: the floor rises
    with each input). The stall range B · stall_coef <= MAX_STALL_COEF is exact. Without a draft model.
    `chunk_floor` False: the chunk's per-layer terms at 0 instead (a weaker bound, for rows whose full table costs
    less than the floor)."""
    t = sp.terms
    coef, hop = chunk_hop_floor_ns(sp, s, pos)
    pp = t.pp[s]
    batch = pp * sp.micro_batch(s, pos)
    osl = sp.req.workload.osl
    c = np.minimum(coef, MAX_STALL_COEF + 1)
    users = np.minimum((batch - 1) * c, MAX_STALL_COEF + 1)
    prompts = np.minimum(batch * c, MAX_STALL_COEF + 1)
    tpot = -(-(osl * cycle + users * hop) // osl)
    rnd = -(-(osl * cycle + prompts * hop) // osl)
    # pipelined rows with at most one chunk per cycle for TPOT (beyond, the bounds above are their own)
    piped = ((pp > 1) & ~np.broadcast_to(np.asarray(t.param("prefill_first", s), bool), pp.shape)
             & ((batch - 1) * (coef // pp) <= osl))
    if piped.any():  # the chunk's stage terms at 0
        j = np.flatnonzero(piped)
        ch = np.minimum(coef[j] // pp[j], MAX_STALL_COEF + 1)
        path = (0 if dec_sum is None else dec_sum[j]) + pp[j] * hop[j]
        for out, n in ((tpot, batch[j] - 1), (rnd, batch[j])):
            k = np.minimum(n * ch, MAX_STALL_COEF + 1)
            out[j] = -(-piped_cycle_floor(osl, k, pp[j], cycle[j], path, hop[j], hop[j]) // osl)
    fails = (tpot > lim.tpot_ns) | (rnd > MAX_ROUND_NS) | (batch * coef > MAX_STALL_COEF)
    # the others with the chunk stage at its floor (0 where no prompt stalls a decoder: one-sequence batches)
    k = np.flatnonzero(~fails & (users > 0) & chunk_floor)
    per_kind = chunk_layer_floor_ns(sp, s[k], pos[k])
    layers = per_kind @ kind_prefix_counts(sp.req.model)[:, -1]
    stage = np.maximum(-(-layers // t.pp[s[k]]), min_over_kinds(per_kind))
    tpot_k = -(-(osl * cycle[k] + users[k] * (stage + hop[k])) // osl)
    rnd_k = -(-(osl * cycle[k] + prompts[k] * (stage + hop[k])) // osl)
    j = np.flatnonzero(piped[k])
    if len(j):
        kj = k[j]
        ch = np.minimum(coef[kj] // pp[kj], MAX_STALL_COEF + 1)
        path = (0 if dec_sum is None else dec_sum[kj]) + layers[j] + pp[kj] * hop[kj]
        least, most = min_over_kinds(per_kind[j]) + hop[kj], stage[j] + hop[kj]
        for out, n in ((tpot_k, batch[kj] - 1), (rnd_k, batch[kj])):
            m = np.minimum(n * ch, MAX_STALL_COEF + 1)
            out[j] = -(-piped_cycle_floor(osl, m, pp[kj], cycle[kj], path, least, most) // osl)
    fails[k] = (tpot_k > lim.tpot_ns) | (rnd_k > MAX_ROUND_NS)
    return fails


def _gap_bound(sp: Space, lim: Limits, s: np.ndarray, last: np.ndarray, cycle: np.ndarray) -> np.ndarray:
    """Lower bound on the objective of any row of shape s with a micro-batch at most position `last`, whose cycle
    is at least `cycle` (module docstring, 2)."""
    t = sp.terms
    batch = t.pp[s] * sp.micro_batch(s, last)
    gpus = t.tp[s] * t.dp[s] * t.pp[s]
    price = np.ceil(t.usd_per_hour[s] * 10**4 - 1e-9).astype(np.int64)  # as table_of rounds it
    cost = price * gpus
    if lim.demand_tokens_per_s is None:
        return -(-(cost * cycle) // (OBJ_DIVISOR * batch))
    replicas = np.maximum(1, -(-(lim.demand_tokens_per_s * cycle) // (batch * NS_PER_S)))
    if sp.queue is not None:  # every feasible row of the shape needs its queueing replicas; none: no row is
        need = sp.queue.need[s]
        return np.where(need < 0, np.iinfo(np.int64).max, np.maximum(replicas, need) * cost)
    return replicas * cost


def _geometric_middle(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A position strictly between lo and hi, near the geometric mean of their micro-batches (the gap bound's
    looseness is the ratio of its ends)."""
    mid = np.floor(np.sqrt((lo + 1.0) * (hi + 1.0))).astype(np.int64) - 1
    return np.clip(mid, lo + 1, hi - 1)


def _improve(sp: Space, t: Table, b: Bounds, s: np.ndarray, pos: np.ndarray, lim: Limits, inc: np.ndarray,
             upper: dict[int, int], done: set) -> None:
    """Raise the per-type upper bounds `inc` with greedy placements of the most promising feasible rows of `t`
    (a table without memory terms, table_of `fits`: the rows the placements may try are given theirs first)."""
    from .placement import greedy_placement

    feas = np.flatnonzero(b.feasible)
    if len(feas) == 0:
        return
    types = sp.gpu_type[s[feas]]
    order = feas[np.lexsort((feas, b.objective[feas], types))]
    types = sp.gpu_type[s[order]]
    at = None  # row of `t` -> row of the table the placements read
    if t.mem_kib_per_kind is None:
        # the rows the loop below may reach: per type, those before its first row whose bound is not below the
        # best plan (which only falls in the loop) and up to its quota of rows not tried before
        reach = []
        for g in np.unique(types):
            left = GREEDY_ROWS_PER_TYPE
            for i in order[types == g].tolist():
                if b.objective[i] >= inc[g] or left == 0:
                    break
                reach.append(i)
                left -= (int(s[i]), int(pos[i])) not in done
        if not reach:
            return
        t = with_memory(sp.req, sp.terms, t, np.array(reach, np.int64))
        at = {i: k for k, i in enumerate(reach)}
    for g in np.unique(types):
        tried = 0
        for i in order[types == g]:
            if b.objective[i] >= inc[g] or tried >= GREEDY_ROWS_PER_TYPE:
                break
            key = (int(s[i]), int(pos[i]))
            if key in done:
                continue
            done.add(key)
            tried += 1
            k = int(i) if at is None else at[int(i)]
            lay = greedy_placement(t, k)
            if lay is None:
                continue
            ev = evaluate(t, k, lay, lim)
            if ev.feasible and ev.objective < inc[g]:
                inc[g] = ev.objective
                upper[int(g)] = ev.objective


def demand_batch_cap(lim: Limits) -> int | None:
    """With a demand, a batch of demand × MAX_ROUND_NS sequences is served by one replica whatever its speed, so
    larger batches cannot cost less; the integer model also needs replicas × batch × 1e9 inside int64."""
    if lim.demand_tokens_per_s is None:
        return None
    one_replica = -(-(lim.demand_tokens_per_s * MAX_ROUND_NS) // NS_PER_S)
    return max(1, min(one_replica, INT_LIMIT // (lim.max_replicas * NS_PER_S)))


def range_ends(sp: Space, lim: Limits, p: PerfParams) -> np.ndarray:
    """Per shape, how many of its first micro-batch positions are in the space, found as the lazy search finds
    them (by tabulating every position: for the oracle on small instances). The range ends where memory ends
    (`Space.top`) or, before it, where the bisection for the range conditions (`passes`) stops: position 0
    must pass, then the last position memory allows is tried, then the middle of the passing and the failing
    ends, until they meet. The conditions grow with the micro-batch except TPOT's prefill-chunk term (see
    search_space), so the bisection's end is where TPOT first fails, or a later point past a dip."""
    out = np.zeros(len(sp), np.int64)
    for s in np.flatnonzero(sp.top > 0):
        n = int(sp.top[s])
        t = sp.table(np.full(n, s), np.arange(n), p)
        ok = passes(t, lower_bounds(t, lim), lim)
        if not ok[0]:
            continue
        lo, hi = 0, n - 1
        if ok[hi]:
            out[s] = n
            continue
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if ok[mid] else (lo, mid)
        out[s] = lo + 1
    return out
