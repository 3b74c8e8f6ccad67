"""The pools of one request class over every micro-batch memory allows (`exact_pools`, as `fleet.pools.class_pools`
keeps them over the grid): every shape `search.space.enumerate_shapes` lists for the request (PP any integer up
to the layers within the GPU budget and TP any divisor of the heads in the scale-up domain, or the request's
lists: `disagg.candidate_pools` passes the grid's; `disagg.exact_space_pools`, the default, none, with the pair
bound pruning groups and shapes first: `UnitBounds`), each with every micro-batch from DP up to what memory allows
(`search.bounds._memory_top`, up to `bounds.MAX_BATCH` sequences per replica; no 2048 cap).

Tabulating every (shape, micro-batch) is far too slow and unnecessary. The roles and their rows:

- prefill: one row per shape, at micro-batch DP (one prompt per attention-DP group in each micro-batch);
- decode and aggregated: the micro-batches whose decode-cycle bound pp · (balanced slowest decode stage + hop)
  (`table.decode_cycle_ns`) meets the TPOT target. The bound never falls as the micro-batch grows (bounds.py,
  fact 1: the decode and memory terms never fall; tested in tests/search/test_bounds.py), so these are a prefix
  of each shape's positions; positions past `bounds.cycle_floor`'s floor or memory's end are known to miss. A
  row past the prefix is no candidate of either role: a decode pool needs its cycle, an aggregated pool its TPOT
  (the cycle plus prefill stalls >= 0), within the target.

Inside a shape's prefix the useful micro-batches are not provably few (the exact decode cycle after the greedy
placement, MoE tile padding, and the placement's largest stage, hence the KV-transfer key, can move either way),
so the positions are searched by dominance, as `search.bounds.search_space` searches them by cost. Claim: every
candidate row of a gap of unexamined positions a … b − 1 of shape s, whose decode-cycle bound at position a is
at least c_a, has

    capacity <= min(⌊pp·m_{b−1}·K / (c_a·OSL)⌋, ⌊DP·K / t_kv,min⌋)   (decode; aggregated: the first term)
    latency key >= the key of t_kv,min                                  (decode; aggregated: 0)

with K = CAP_UNITS_PER_RPS·1e9, m_{b−1} the gap's largest micro-batch and t_kv,min the transfer of the shape's
smallest possible largest stage (⌈L/PP⌉ layers). Proof: a row's batch is at most pp·m_{b−1}; its exact decode cycle
is at least its own bound, which is at least c_a (monotone in the micro-batch); the aggregated round is at least
the cycle (stalls >= 0); the transfer grows with the largest stage, which holds at least ⌈L/PP⌉ layers, and the
decode key is non-decreasing in the transfer (`class_pools`' recv_key). So where a kept pool A (same group: GPU
type, and KV precision for the disaggregated roles) with g_A <= g_s, ⌊g_s/g_A⌋·cap_A >= that capacity bound and
key_A <= that key bound exists, A dominates every candidate row of the gap (class_pools' dominance), and the gap
is dropped unexamined. Otherwise one row of it is examined: an "edge" gap (its end not known to pass the cycle
bound) is bisected for where the prefix ends (a failing row drops every position above it), an inner gap split
at its geometric middle; each shape's largest passing row is found before the first sweep (it usually dominates
the rest of its shape). A decode row that is no pool (no placement within memory, or its exact cycle over TPOT)
has none above it in its shape, and the gap above it is dropped: the greedy placement is the exact min-max over
the placements within each stage's memory (`perf.pipeline.balance_layers` / `balance_layer_kinds`), and as the
micro-batch grows every stage's time grows and its room shrinks (fact 1), so the placements only shrink and the
least slowest stage never falls. Each round sweeps (`pools._sweep`) the pools kept so far and the new rows. A pool that
dominated a gap and is dropped later was dominated by the one that dropped it (dominance is transitive), so the
kept pools dominate every row never examined: the fleet model and the disaggregated pairing lose no optimum to
the rows left out. Tested against an exhaustive oracle over every integer micro-batch, PP and TP of small random
instances (tests/fleet/test_pool_space.py)."""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np

from ..perf.params import PerfParams
from ..specs.accelerator import Accelerator
from ..specs.model import ModelSpec
from ..specs.workload import SLO, Workload
from ..search.bounds import CYCLE_GRID, MAX_BATCH, Space, _memory_top, cycle_floor
from ..search.placement import greedy_placement
from ..search.space import (DEFAULT_PP, GRID_TP, MAX_MICRO_BATCH, Request, Row, Shapes, enumerate_shapes, group_key,
                            shape_groups)
from ..search.table import (BYTES_PER_MEM_UNIT, Limits, ShapeTerms, Table, decode_cycle_ns, lower_bounds,
                            memory_fits, memory_kib, stage_sum, table_of)
from ..units import BYTES_PER_ELEMENT
from .pools import Pool, _Exact, _sweep, aggregated_pool, capacity_units, kv_transfer_ns, price_units
from .pools import candidate_pools as grid_candidate_pools
from .request import FleetRequest, roles_of

_NEVER = np.iinfo(np.int64).max


def pool_depths(req: Request, p: PerfParams, lim: Limits, roles: Sequence[str],
                stand_ins: "_StandIns | None" = None) -> dict[tuple, int]:
    """Per group (space.group_key), the deepest PP at which a shape of the group may hold a pool of some role;
    groups where none may: left out (as `bounds.latency_depths`, with each role's own latency).

    Claim: a shape of group g at depth q, at micro-batch DP (its smallest), has a decode-cycle bound >= L·d +
    E_dec(q) and a TTFT >= L·f + E_pf(q) (`latency_depths`' terms and proof: per-layer terms and stage extras do
    not depend on the depth, hops >= 0, extras >= 0 checked per group). A decode pool needs the cycle within the
    TPOT target at some micro-batch, so at DP (the cycle never falls as the micro-batch grows); a prefill pool
    needs its TTFT (plus a transfer >= 0) within the TTFT target; an aggregated pool both. Depths failing every
    role's condition hold no pool; every depth up to the deepest that passes is kept."""
    x = stand_ins or _StandIns.of(req, p)
    reps, t = x.reps, x.table
    if not reps:
        return {}
    L = req.model.num_layers
    nonneg = ((t.dec_extra_ns >= 0).all(axis=1) & (t.dec_extra_single_ns >= 0) & (t.pf_extra_ns >= 0).all(axis=1)
              & (t.pf_extra_single_ns >= 0))
    limit = {g.id: req.gpu_limit(g) for g in req.gpus}
    tops = np.array([L if limit[r.gpu.id] is None else min(L, limit[r.gpu.id] // (r.tp * r.dp)) for r in reps],
                    np.int64)
    tops = np.maximum(tops, 0)
    g = np.repeat(np.arange(len(reps)), tops)  # every (group, depth q)
    q = np.arange(len(g)) - np.repeat(np.cumsum(tops) - tops, tops) + 1
    cycle = (t.dec_ns_per_kind @ t.kind_counts)[g] + stage_sum(t.dec_extra_ns[g], t.dec_extra_single_ns[g], q)
    ttft = (t.pf_ns_per_kind @ t.kind_counts)[g] + stage_sum(t.pf_extra_ns[g], t.pf_extra_single_ns[g], q)
    cycle_ok = cycle <= lim.tpot_ns
    ttft_ok = np.ones(len(g), bool) if lim.ttft_ns is None else ttft <= lim.ttft_ns
    ok = np.zeros(len(g), bool)
    if "decode" in roles:
        ok |= cycle_ok
    if "aggregated" in roles:
        ok |= cycle_ok & ttft_ok
    if "prefill" in roles:
        ok |= ttft_ok
    ok |= ~nonneg[g]  # a group whose terms the claim does not cover keeps every depth
    deepest = np.zeros(len(reps), np.int64)
    np.maximum.at(deepest, g[ok], q[ok])
    return {group_key(r): int(d) for r, d in zip(reps, deepest.tolist()) if d > 0}


@dataclass(frozen=True)
class _StandIns:
    """One shape per group (`space.shape_groups`: PP 1, micro-batch 1 standing in), their terms, and their table at
    micro-batch DP: the per-group facts `pool_depths` and `UnitBounds` read, computed once."""

    reps: list[Row]
    terms: ShapeTerms | None
    table: Table | None

    @classmethod
    def of(cls, req: Request, p: PerfParams) -> "_StandIns":
        reps = shape_groups(req)
        if not reps:
            return cls(reps, None, None)
        terms = ShapeTerms.of(req, reps, p)
        return cls(reps, terms, table_of(req, terms, np.arange(len(reps)), terms.dp, p))  # micro-batch DP, depth 1


# The decode ladder's points per group tabulated at a time (`UnitBounds`: later ones only while the cycle passes)
LADDER_BLOCK = 4


class UnitBounds:
    """Lower bounds on the cost per capacity unit u = g_s·π / c of every prefill and every decode pool a shape
    holds (`exact_pools`' pools: g_s = TP·DP·q GPUs at π price units per GPU-hour, c its capacity), from its
    group's stand-in terms alone (`_StandIns`; no per-shape table), per shape (`at`) or per group over every depth
    up to the deepest it lists (`groups`). With K = CAP_UNITS_PER_RPS·1e9, t_kv,min(q) the KV transfer of the
    smallest possible largest stage (⌈L/q⌉ layers, `exact_pools`' kv_lb) and Σ_s over a shape's q stages
    (table.stage_sum) of its group's terms:

        u_pre >= TP·π·max(S_pf(q), q·t_kv,min(q)) / K,   S_pf(q) = L·f + Σ_s e_pf                       (prefill)
        u_dec >= max(TP·DP·π·OSL·min_j c_j(q) / hi_j, TP·q·π·t_kv,min(q)) / K                            (decode)
        c_j(q) = L·d(m_j) + Σ_s e_dec(m_j),  m_j = DP·CYCLE_GRID[j],  hi_j = min(m_{j+1} − 1, m_max(q)),
        m_max(q) = ⌊(q·cap − W − Σ_s F_s) / (q·V)⌋   (KiB: W = Σ_k n_k·w_k, V = Σ_k n_k·v_k per sequence,
                                                       F_s a stage's fixed memory at micro-batch DP)

    (L·f = Σ_k n_k·f_k with several layer kinds), the min over the j with m_j <= m_max(q) and c_j(q) <= the TPOT
    target (none: no decode pool, u_dec = inf; no prefill pool where m_max(q) < DP or S_pf(q) + t_kv,min(q) is
    over the TTFT target).

    Proof. Prefill: a pool's capacity is at most ⌊DP·K / (T_pf + hop)⌋ and ⌊DP·K / t_kv⌋; its slowest stage T_pf
    is at least the mean S_pf(q)/q of its stages at micro-batch DP (per-layer terms and stage extras do not depend
    on the depth or the link: `pool_depths`' claim), the hop >= 0, and t_kv >= t_kv,min(q) (the transfer grows
    with the largest stage, which holds >= ⌈L/q⌉ layers); so g_s·π / c >= TP·DP·q·π·max(S_pf/q, t_kv,min) /
    (DP·K). Its TTFT is >= S_pf(q) (hops >= 0) and a prefill candidate needs TTFT + t_kv,min <= the target; it
    needs memory at DP. Decode: a pool at micro-batch m >= DP (batch q·m) fits every stage's memory,
    Σ_k n_{s,k}·⌈(w_k + q·m·v_k)/U⌉ + F_s(m) <= cap (`table.memory_kib`: a layer's memory is its weights plus the
    batch's KV or more), so, summed over the stages and with F_s(m) >= F_s(DP) (fact 1 of search/bounds.py:
    the memory terms never fall as the micro-batch grows), m <= m_max(q); m is also at most DP·count
    (`pool_space`'s range). Its cycle q·(T_dec + hop) >= Σ_s of its stages' decode times >= c_j(q) for m >= m_j
    (the decode terms never fall as m grows: `bounds.cycle_floor`'s claim, whose ladder this is), a decode pool
    needs its cycle within TPOT, and its capacity is at most ⌊q·m·K / (cycle·OSL)⌋ and ⌊DP·K / t_kv⌋: for m in
    [m_j, hi_j], g_s·π / c >= TP·DP·q·π·cycle·OSL / (q·m·K) >= TP·DP·π·OSL·c_j(q) / (hi_j·K), and every m >= DP
    lies in one such range (m_0 = DP). Per group (`groups`), over its depths q = 1 … Q: Σ_s e at its least
    (the single stage's, or at q = 2 or Q as the middle stage's extra is >= 0 or not: the sum is affine in
    q >= 2), t_kv,min(Q) <= t_kv,min(q) <= q·t_kv,min(q), m_max <= ⌊cap / V⌋: each term at most the shape's.
    Tested: never above an exact pool's u (tests/fleet/test_pool_space.py)."""

    def __init__(self, req: Request, p: PerfParams, lim: Limits, x: _StandIns, deepest: np.ndarray):
        """`deepest`: per stand-in (`x.reps`), the deepest depth listed (0: none)."""
        self.req, self.lim, self.x = req, lim, x
        model, t, terms = req.model, x.table, x.terms
        self.L = model.num_layers
        self.tp, self.dp = terms.tp.astype(np.int64), terms.dp.astype(np.int64)
        self.price = np.array([price_units(r.gpu.usd_per_hour) for r in x.reps], float)
        self.kvb = np.array([BYTES_PER_ELEMENT[r.kv] for r in x.reps], float)
        self.nic = np.array([r.gpu.scale_out_bytes_per_s for r in x.reps], float)
        self.kv = np.array([r.kv for r in x.reps])
        counts = t.kind_counts
        _, _, self.fixed, self.single, self.cap_kib = memory_kib(req, terms, np.arange(len(x.reps)), terms.dp)
        unit = float(BYTES_PER_MEM_UNIT)
        self.w_kib = terms.layer_weight_bytes @ counts / unit
        self.v_kib = terms.kv_seq_layer_bytes @ counts / unit
        self.f_pf = (t.pf_ns_per_kind @ counts).astype(float)
        # each group's ladder, up to the largest micro-batch memory leaves any of its depths (⌊cap / V⌋)
        with np.errstate(divide="ignore"):
            m_top = np.where(self.v_kib > 0, np.floor(self.cap_kib / np.where(self.v_kib > 0, self.v_kib, 1.0)),
                             float(MAX_MICRO_BATCH))
        self.m_top = np.minimum(m_top, float(MAX_MICRO_BATCH))
        top = np.where(deepest > 0, np.minimum(self.m_top // np.maximum(self.dp, 1), CYCLE_GRID[-1]), 0)
        self.per = np.searchsorted(CYCLE_GRID, top.astype(np.int64), side="right")
        self.start = np.cumsum(self.per) - self.per
        # the ladder's decode terms, LADDER_BLOCK points per group at a time, until the cycle at every depth
        # (its least, over_depths) misses TPOT: it never falls as the micro-batch grows, so no later point holds a
        # decode pool and those stay uncomputed (a_dec = inf)
        total = int(self.per.sum())
        self.a_dec = np.full(total, np.inf)
        self.dec_extra = np.zeros((total, 3), np.int64)
        self.dec_single = np.zeros(total, np.int64)
        alive = np.flatnonzero(self.per > 0)
        for lo in range(0, int(self.per.max(initial=0)), LADDER_BLOCK):
            alive = alive[self.per[alive] > lo]
            if len(alive) == 0:
                break
            n_of = np.minimum(self.per[alive] - lo, LADDER_BLOCK)
            gi = np.repeat(alive, n_of)
            j = lo + np.arange(len(gi)) - np.repeat(np.cumsum(n_of) - n_of, n_of)
            d = table_of(req, terms, gi, terms.dp[gi] * CYCLE_GRID[j], p, decode_only=True)
            k = self.start[gi] + j
            self.a_dec[k] = d.dec_ns_per_kind @ d.kind_counts
            self.dec_extra[k], self.dec_single[k] = d.dec_extra_ns, d.dec_extra_single_ns
            last = self.start[alive] + lo + n_of - 1
            e, q_top = self.dec_extra[last], np.maximum(deepest[alive] - 2, 0)
            least = self.a_dec[last] + np.minimum(self.dec_single[last], e[:, 0] + e[:, 2] + np.minimum(0, q_top * e[:, 1]))
            alive = alive[least <= lim.tpot_ns]

    def at(self, g: np.ndarray, q: np.ndarray, p: PerfParams) -> tuple[np.ndarray, np.ndarray]:
        """(u_pre, u_dec) of the shapes of groups `g` (indices into the stand-ins) at depths `q`."""
        return self._bounds(g, q, p, over_depths=False)

    def groups(self, deepest: np.ndarray, p: PerfParams) -> tuple[np.ndarray, np.ndarray]:
        """(u_pre, u_dec) per group, at most every one of its shapes' at depths 1 … `deepest` (inf where 0)."""
        g = np.flatnonzero(deepest > 0)
        u_pre, u_dec = np.full(len(deepest), np.inf), np.full(len(deepest), np.inf)
        u_pre[g], u_dec[g] = self._bounds(g, deepest[g], p, over_depths=True)
        return u_pre, u_dec

    def _bounds(self, g: np.ndarray, q: np.ndarray, p: PerfParams, over_depths: bool
                ) -> tuple[np.ndarray, np.ndarray]:
        from .pools import _CAP_NUM

        lim, osl = self.lim, self.req.workload.osl
        q = np.asarray(q, np.int64)
        n = len(g)

        def esum(e: np.ndarray, single: np.ndarray, q: np.ndarray) -> np.ndarray:
            """Σ_s e over q stages, or (over_depths) its least over depths 1 … q."""
            if not over_depths:
                return stage_sum(e, single, q)
            two_up = np.where(q >= 2, e[:, 0] + e[:, 2] + np.minimum(0, (q - 2) * e[:, 1]), np.inf)
            return np.minimum(single, two_up)

        tp, dp, price = self.tp[g], self.dp[g], self.price[g]
        kv_lb = kv_transfer_ns(self.req.model, self.kvb[g], self.nic[g], self.req.workload.isl, p, tp,
                               -(-self.L // q)).astype(float)
        nic_units = kv_lb if over_depths else q * kv_lb  # q·t_kv,min(q) >= t_kv,min(Q)
        if over_depths:
            m_max = self.m_top[g]
        else:
            room = q * self.cap_kib[g] - stage_sum(self.fixed[g], self.single[g], q) - self.w_kib[g]
            v = self.v_kib[g]
            with np.errstate(divide="ignore", invalid="ignore"):
                m_mem = np.where(v > 0, np.floor(room / np.where(v > 0, q * v, 1.0)), np.inf)
            count = np.minimum(MAX_MICRO_BATCH, MAX_BATCH // q) // dp
            m_max = np.minimum(m_mem, (dp * count).astype(float))
        fits = m_max >= dp
        t = self.x.table
        s_pf = self.f_pf[g] + esum(t.pf_extra_ns[g], t.pf_extra_single_ns[g], q)
        pre_ok = fits if lim.ttft_ns is None else fits & (s_pf + kv_lb <= lim.ttft_ns)
        u_pre = np.where(pre_ok, tp * price * np.maximum(s_pf, 0 if over_depths else nic_units) / _CAP_NUM, np.inf)
        best = np.full(n, np.inf)
        per = self.per[g]
        if len(self.a_dec):
            for j in range(int(per.max(initial=0))):
                i = np.flatnonzero(fits & (per > j))
                k = self.start[g[i]] + j
                m_j = dp[i] * CYCLE_GRID[j]
                nxt = (np.where(per[i] > j + 1, dp[i] * CYCLE_GRID[min(j + 1, len(CYCLE_GRID) - 1)] - 1, np.inf)
                       if j + 1 < len(CYCLE_GRID) else np.full(len(i), np.inf))
                hi = np.minimum(nxt, m_max[i])
                c = self.a_dec[k] + esum(self.dec_extra[k], self.dec_single[k], q[i])
                ok = (m_j <= hi) & (c <= lim.tpot_ns)
                best[i[ok]] = np.minimum(best[i[ok]], c[ok] / hi[ok])
        u_dec = np.where(np.isfinite(best), np.maximum(tp * dp * price * osl * best, tp * price * nic_units)
                         / _CAP_NUM, np.inf)
        return u_pre, u_dec


def _pairs_under(kv: np.ndarray, u_pre: np.ndarray, u_dec: np.ndarray, cap: float) -> np.ndarray:
    """Which shapes (or groups) may hold a pool of some pair whose bound u_p + u_d is within `cap`: a prefill pool
    beside the least u_dec of its KV precision `kv` (a pair shares it: `pools.compatible`), or a decode pool beside
    the least u_pre. The least is over the shapes given: a pool of a shape left out earlier pairs with none under
    `cap` (its own bound plus the least of the other role was already over it)."""
    least_pre, least_dec = np.full(len(kv), np.inf), np.full(len(kv), np.inf)
    for k in np.unique(kv).tolist():
        on = kv == k
        least_pre[on], least_dec[on] = u_pre[on].min(), u_dec[on].min()
    return (u_pre + least_dec <= cap) | (u_dec + least_pre <= cap)


def _take(shapes: Shapes, keep: np.ndarray) -> Shapes:
    """The shapes where `keep`, in their order, groups numbered again by first appearance."""
    group = shapes.group[keep]
    used, first = np.unique(group, return_index=True)
    order = used[np.argsort(first, kind="stable")]
    number = np.empty(len(shapes.reps), np.int64)
    number[order] = np.arange(len(order))
    return Shapes([shapes.reps[i] for i in order.tolist()], number[group], shapes.pp[keep])


class _Priced:
    """The disaggregated pools' groups with their `UnitBounds`, for listing the shapes that may pair under a cap
    (`under`) or the few of least bound (`seed`). With a demand of D capacity units (`demand_units`), each bound
    is that of a pool's replicas' cost per demand unit (`per_demand`)."""

    def __init__(self, req: Request, p: PerfParams, lim: Limits, x: _StandIns, depths: dict[tuple, int],
                 demand_units: int | None = None):
        self.req, self.p, self.x, self.demand_units = req, p, x, demand_units
        self.keys = [group_key(r) for r in x.reps]
        self.deepest = np.array([depths.get(k, 0) for k in self.keys], np.int64)
        self.ub = UnitBounds(req, p, lim, x, self.deepest)
        every = np.arange(len(self.keys))
        self.u_pre, self.u_dec = (self.per_demand(every, None, u) for u in self.ub.groups(self.deepest, p))

    def per_demand(self, g: np.ndarray, q: np.ndarray | None, u: np.ndarray) -> np.ndarray:
        """`u` (a `UnitBounds` bound of stand-ins `g` at depths `q`; None: over every depth), or with a demand of
        D capacity units a bound on g_s·π·⌈D/c⌉ / D, what the pool's replicas add to a pair's hourly cost
        (`disagg.demand_sizes`: ⌈D/c⌉ replicas) per demand unit: its capacity c is at most g_s·π/u, so that is at
        least g_s·π·⌈D·u / (g_s·π)⌉ / D >= u, and (one replica at least, g_s >= TP·DP) >= TP·DP·π / D."""
        D = self.demand_units
        if D is None:
            return u
        ub = self.ub
        replica = (ub.tp[g] * ub.dp[g] * (1 if q is None else np.asarray(q, np.int64))) * ub.price[g]
        if q is None:
            return np.maximum(u, replica / D)
        with np.errstate(invalid="ignore", over="ignore"):
            n = np.ceil(D * u / replica * (1 - 1e-12))  # (1 − 1e-12): never above the exact ⌈·⌉
        return np.where(np.isfinite(u), np.maximum(u, replica * n / D), np.inf)

    def _shapes(self, groups: np.ndarray) -> tuple[Shapes, np.ndarray, np.ndarray, np.ndarray]:
        """The shapes of the stand-ins `groups` (bool), their stand-ins and their (u_pre, u_dec)."""
        shapes = enumerate_shapes(self.req, {k: int(d) for k, d, ok in zip(self.keys, self.deepest.tolist(),
                                                                           groups.tolist()) if ok and d})
        at = {k: i for i, k in enumerate(self.keys)}
        g = np.array([at[group_key(r)] for r in shapes.reps], np.int64)[shapes.group] if len(shapes) else \
            np.zeros(0, np.int64)
        return (shapes, g) + tuple(self.per_demand(g, shapes.pp, u) for u in self.ub.at(g, shapes.pp, self.p))

    def under(self, cap: float) -> Shapes:
        """The shapes that may hold a pool of a pair whose bound is within `cap`: groups first (every depth at
        once), then the shapes of the groups left."""
        shapes, g, u_pre, u_dec = self._shapes(_pairs_under(self.ub.kv, self.u_pre, self.u_dec, cap))
        return _take(shapes, _pairs_under(self.ub.kv[g], u_pre, u_dec, cap)) if len(shapes) else shapes

    def seed(self, n: int) -> Shapes:
        """Per KV precision and role, the `n` shapes of least bound among the `n` groups of least bound: where
        the cheapest pair usually is (a cheap incumbent for `under`'s cap)."""
        shapes, g, u_pre, u_dec = self._shapes(_least(self.ub.kv, self.u_pre, n) | _least(self.ub.kv, self.u_dec, n))
        return _take(shapes, _least(self.ub.kv[g], u_pre, n) | _least(self.ub.kv[g], u_dec, n))


def _least(kv: np.ndarray, u: np.ndarray, n: int) -> np.ndarray:
    """Per KV precision, the `n` entries of least finite `u` (ties to the earlier)."""
    out = np.zeros(len(u), bool)
    for k in np.unique(kv).tolist():
        i = np.flatnonzero((kv == k) & np.isfinite(u))
        out[i[np.argsort(u[i], kind="stable")[:n]]] = True
    return out


def pool_space(req: Request, p: PerfParams, lim: Limits, roles: Sequence[str],
               unit_cost_cap: float | None = None, demand_units: int | None = None) -> Space:
    """The shapes that may hold a pool (`pool_depths`) and their micro-batch ranges before latency: every multiple
    of DP up to bounds.MAX_BATCH per replica (and MAX_MICRO_BATCH), cut where memory ends (`_memory_top`).
    `unit_cost_cap` (the disaggregated roles only, `exact_pools`'): only the shapes whose bounds (`UnitBounds`)
    may pair under it (with `demand_units`, `exact_pools`': under the cap's demand)."""
    x = _StandIns.of(req, p)
    depths = pool_depths(req, p, lim, roles, x)
    if unit_cost_cap is not None and set(roles) == {"prefill", "decode"} and depths:
        return space_of(req, p, _Priced(req, p, lim, x, depths, demand_units).under(unit_cost_cap))
    return space_of(req, p, enumerate_shapes(req, depths))


def space_of(req: Request, p: PerfParams, shapes: Shapes) -> Space:
    """`shapes` with their micro-batch ranges (`pool_space`)."""
    terms = ShapeTerms.of(req, shapes, p)
    n = len(shapes)
    count = np.maximum(0, np.minimum(MAX_MICRO_BATCH, MAX_BATCH // np.maximum(terms.pp, 1)) // np.maximum(terms.dp, 1))
    count = np.asarray(count, np.int64).reshape(n)
    type_of = {g.id: k for k, g in enumerate(req.gpus)}
    gpu_type = (np.array([type_of[r.gpu.id] for r in shapes.reps], np.int64)[shapes.group].reshape(n) if n
                else np.zeros(0, np.int64))
    sp = Space(req, shapes, terms, None, np.zeros(n, np.int64), count, gpu_type, 1)
    sp.top = _memory_top(sp, count) if n else np.zeros(0, np.int64)
    return sp


class _Store:
    """Rows tabulated in several tables (the rounds of the search), numbered in order of tabulation; per row its
    shape, position and the table facts the sweeps read."""

    def __init__(self, lim: Limits):
        self.lim = lim
        self.tables: list[Table] = []
        self.start: list[int] = []
        # per column a buffer grown by doubling, its first len(self) entries the rows' values (a table's rows are
        # copied in once, not the whole column joined again after every table)
        self._buf: dict[str, np.ndarray] = {}

    def add(self, t: Table, s: np.ndarray, pos: np.ndarray, memory_ok: np.ndarray | None = None) -> np.ndarray:
        """Append table `t` (rows: shapes `s` at positions `pos`); `memory_ok` given: a decode table
        (`decode_table`), whose prefill and stall columns are left 0."""
        first = len(self)
        if memory_ok is None:
            b = lower_bounds(t, self.lim)
            cols = (("memory_ok", b.memory_ok), ("ttft_ok", b.ttft_ok), ("tpot_ok", b.tpot_ok),
                    ("round_ns", b.round_ns), ("cycle", t.pp * (b.dec_stage_ns + t.dec_hop_ns)),
                    ("ttft_ns", t.ttft_ns), ("pf_period", b.pf_stage_ns + t.pf_hop_ns))
        else:
            none = np.zeros(len(t), np.int64)
            cols = (("memory_ok", memory_ok), ("ttft_ok", none.astype(bool)), ("tpot_ok", none.astype(bool)),
                    ("round_ns", none), ("cycle", decode_cycle_ns(t)), ("ttft_ns", none), ("pf_period", none))
        end = first + len(t)
        for name, v in (("s", s), ("pos", pos), ("batch", t.batch), ("gpus", t.gpus)) + cols:
            v = np.asarray(v)
            buf = self._buf.get(name)
            if buf is None:
                buf = np.empty(max(64, 2 * end), v.dtype)
            else:
                dtype = np.result_type(buf.dtype, v.dtype)  # as np.concatenate of the parts would give
                if len(buf) < end or dtype != buf.dtype:
                    grown = np.empty(max(len(buf), 2 * end), dtype)
                    grown[:first] = buf[:first]
                    buf = grown
            buf[first:end] = v
            self._buf[name] = buf
        self.start.append(first)
        self.tables.append(t)
        return np.arange(first, end)

    def __len__(self) -> int:
        return self.start[-1] + len(self.tables[-1]) if self.tables else 0

    def col(self, name: str) -> np.ndarray:
        """Column `name` over every row (a view of its buffer: the rows added later are not in it)."""
        return self._buf[name][:len(self)]

    def at(self, i: int) -> tuple[Table, int]:
        k = bisect_right(self.start, i) - 1  # `start` is a sorted list: bisect, not an array built per call
        return self.tables[k], i - self.start[k]


def pool_request(model: ModelSpec, workload: Workload, slo: SLO, gpus: Sequence[Accelerator], *,
                 weights: Sequence[str], kv: Sequence[str], pp: Sequence[int] | None = None,
                 tp: Sequence[int] | None = None, max_gpus_per_type: dict[str, int] | None = None,
                 engine: str | None = None) -> Request:
    """The request whose space `exact_pools` searches: every micro-batch; PP and TP the lists given, or (None)
    every depth and degree `enumerate_shapes` allows; no demand (a pool's capacity does not depend on one)."""
    return Request(model=model, workload=Workload(workload.isl, workload.osl, max_model_len=workload.max_model_len),
                   slo=slo, gpus=tuple(gpus), weights=tuple(weights), kv=tuple(kv),
                   pp=None if pp is None else tuple(pp), micro_batches=None, tp=None if tp is None else tuple(tp),
                   max_gpus_per_type=dict(max_gpus_per_type or {}), engine=engine)


def decode_table(req: Request, terms: ShapeTerms, s: np.ndarray, mb: np.ndarray, p: PerfParams) -> Table:
    """The table of rows (shapes `s` of `terms`, micro-batches `mb`) with only what a decode pool reads: the decode
    terms (`table_of` decode_only: the same numbers as a full table's) and the memory terms (`table.memory_kib`,
    as `table_of` fills them without a draft); the prefill and chunk terms stay None (a read fails loudly). The
    prefill-chunk step is most of a full table's cost and a decode pool never runs one."""
    t = table_of(req, terms, s, mb, p, decode_only=True)
    mem_kind, long_kind, fixed, fixed_single, cap = memory_kib(req, terms, s, mb)
    return replace(t, mem_kib_per_kind=mem_kind, long_kib_per_kind=long_kind, fixed_mem_kib=fixed,
                   fixed_mem_single_kib=fixed_single, cap_kib=cap)


def _stage_evaluation(t: Table, i: int, layers: Sequence[int], per_kind: np.ndarray, extra: np.ndarray,
                      single: np.ndarray) -> tuple[int, bool]:
    """(slowest stage of the time term (per_kind, extra, single), ns; memory fits) of row i with `layers` per
    stage: `table.evaluate`'s max over stages of Σ_k n_{s,k}·t_k + o_s and its "memory" condition (every stage's
    Σ_k n_{s,k}·m_k + fixed <= capacity, for each memory term), in integers as there, the stages' kind counts
    n_{s,k} taken from `kind_prefix` at the stage bounds at once."""
    pp = len(layers)
    ends = np.zeros(pp + 1, np.int64)
    np.cumsum(layers, out=ends[1:])
    counts = t.kind_prefix[:, ends[1:]] - t.kind_prefix[:, ends[:-1]]  # [K, pp]
    if pp == 1:
        e, fixed = np.array([single[i]]), np.array([t.fixed_mem_single_kib[i]])
    else:  # first, middle × (pp − 2), last (without np.r_, whose indexing machinery cost more than the rest)
        e, fixed = np.full(pp, extra[i, 1]), np.full(pp, t.fixed_mem_kib[i, 1])
        e[0], e[-1] = extra[i, 0], extra[i, 2]
        fixed[0], fixed[-1] = t.fixed_mem_kib[i, 0], t.fixed_mem_kib[i, 2]
    stage_ns = int((per_kind[i] @ counts + e).max())
    cap_kib = int(t.cap_kib[i])
    fits = all(bool((m[i] @ counts + fixed <= cap_kib).all()) for _, m in t.memory_per_kind)
    return stage_ns, fits


def decode_evaluation(t: Table, i: int, layers: Sequence[int]) -> tuple[int, bool]:
    """(slowest decode stage, ns; memory fits) of row i with `layers` per stage: `table.evaluate`'s dec_stage_ns and
    its "memory" condition, from the decode and memory terms only (`decode_table`; tested equal)."""
    return _stage_evaluation(t, i, layers, t.dec_ns_per_kind, t.dec_extra_ns, t.dec_extra_single_ns)


def prefill_evaluation(t: Table, i: int, layers: Sequence[int]) -> tuple[int, bool]:
    """(slowest prefill stage, ns; memory fits) of row i with `layers` per stage: `table.evaluate`'s pf_stage_ns
    and its "memory" condition, without the decode and chunk stages a prefill pool does not read (its latency is
    the placement-independent `ttft_ns`; tested equal)."""
    return _stage_evaluation(t, i, layers, t.pf_ns_per_kind, t.pf_extra_ns, t.pf_extra_single_ns)


# Per KV precision and role, how many groups and shapes of least bound (`_Priced.seed`) give the incumbent pair
# that `exact_pools(cap_from=...)` prunes the rest under
SEED_SHAPES = 8


def exact_pools(cls: int, req: Request, p: PerfParams, roles: Sequence[str],
                unit_cost_cap: float | None = None,
                cap_from: "Callable[[list[Pool]], float | None] | None" = None,
                demand_units: int | None = None) -> list[Pool]:
    """`class_pools`' non-dominated pools of class `cls` over `req`'s space with every micro-batch memory allows
    (`pool_request`; module docstring).

    `unit_cost_cap` (the disaggregated roles only): T, in price units per GPU-hour × GPUs per capacity unit. A pool
    X costs u_X = g_X·π_X / c_X per capacity unit (g GPUs per replica, π `pools.price_units`, c its capacity); a
    prefill or decode pool is left out when a lower bound on u_X (its capacity's upper bound: `cap_pre`, the
    decode rows' and gaps' bounds of the module docstring) plus a lower bound on every partner's u exceeds T.
    `disagg.best_pair`'s pair bound is u_p + u_d per request/s, and it never reports a pair whose bound exceeds
    the near-cheapest objective: with T at least that (over an incumbent's objective, which is at least the
    optimum's), every pair it could report keeps both pools; a pool another left-out pool would have dominated
    costs at least as much per unit (same group and price, ⌊g_Z/g_X⌋·c_X >= c_Z) and cannot pair under T
    either (`pool_space.pair_unit_cap`; tested against the unpruned pools). Before any shape is tabulated, the
    same test drops whole groups (over every depth) and then shapes, by `UnitBounds`' lower bounds on u from the
    groups' stand-in terms (`pool_space`): on the 1.8T MoE headline 224k shapes -> 8.8k after the groups, 3.5k
    after the shapes.

    `cap_from` (the disaggregated roles; instead of `unit_cost_cap`): the cap from pools, `disagg.pair_unit_cap`
    of their best pair: it is given the pools of the few shapes of least bound (`_Priced.seed`, real pools of the
    space: their best pair's objective is at least the optimum's), and the space is then pruned under its answer
    (None: not pruned).

    `demand_units` (with a cap): the demand D, in capacity units, that `disagg.best_pair` sizes the pairs for
    (⌈D/c⌉ replicas of each pool; the cap T then is the objective over D): the groups and shapes are then bounded
    by what their pools' replicas cost per demand unit (`_Priced.per_demand`), a pair costing D times the sum of
    its two pools' shares, which whole replicas make much tighter than u where a replica serves a large part of D."""
    lim = Limits.of(req, p.max_batch)
    if cap_from is not None:
        x = _StandIns.of(req, p)
        depths = pool_depths(req, p, lim, roles, x)
        if not depths:
            return []
        priced = _Priced(req, p, lim, x, depths, demand_units)
        cap = cap_from(_space_pools(cls, req, p, roles, space_of(req, p, priced.seed(SEED_SHAPES)), None))
        shapes = enumerate_shapes(req, depths) if cap is None else priced.under(cap)
        return _space_pools(cls, req, p, roles, space_of(req, p, shapes), cap)
    return _space_pools(cls, req, p, roles, pool_space(req, p, lim, roles, unit_cost_cap, demand_units),
                        unit_cost_cap)


def _space_pools(cls: int, req: Request, p: PerfParams, roles: Sequence[str], sp: Space,
                 unit_cost_cap: float | None) -> list[Pool]:
    """`exact_pools` over the space `sp`."""
    model = req.model
    osl, isl = req.workload.osl, req.workload.isl
    L = model.num_layers
    terms, shapes = sp.terms, sp.shapes
    live = np.flatnonzero(sp.top > 0)
    if len(live) == 0:
        return []
    max_batch = int((terms.pp[live] * sp.micro_batch(live, sp.top[live] - 1)).max())
    lim = Limits.of(req, max(max_batch, 1))
    n = len(sp)
    reps, grp = shapes.reps, shapes.group
    gpus_s = (terms.tp * terms.dp * terms.pp).astype(np.int64)
    kvb_s = np.array([BYTES_PER_ELEMENT[r.kv] for r in reps], float)[grp]
    nic_s = np.array([r.gpu.scale_out_bytes_per_s for r in reps], float)[grp]
    kv_s = np.array([r.kv for r in reps])[grp]
    # the sweeps' groups: GPU type (aggregated), GPU type and KV precision (prefill, decode), ranked in key order
    type_keys = sorted({(r.gpu.id,) for r in reps})
    kv_keys = sorted({(r.gpu.id, r.kv) for r in reps})
    by_type_s = np.array([type_keys.index((r.gpu.id,)) for r in reps], np.int64)[grp]
    by_kv_s = np.array([kv_keys.index((r.gpu.id, r.kv)) for r in reps], np.int64)[grp]

    store = _Store(lim)
    # every shape at its smallest micro-batch (DP): the prefill rows, and each range's first row
    rows0 = store.add(table_of(req, terms, live, terms.dp[live], p), live, np.zeros(len(live), np.int64))
    c0 = np.full(n, _NEVER, np.int64)
    c0[live] = store.col("cycle")[rows0]
    mem0 = np.zeros(n, bool)
    mem0[live] = store.col("memory_ok")[rows0]
    row0_of = np.full(n, -1, np.int64)  # each shape's first row in the store
    row0_of[live] = rows0
    placed: dict = {}  # greedy_placement's memo (content-keyed: shared by every table)
    pools: list[Pool] = []

    def pool(i: int, role: str, x: _Exact) -> Pool:
        t, j = store.at(i)
        return Pool(cls, role, t.rows[j], x.layers, x.capacity, x.latency_ns, x.tpot_ns, x.kv_ns)

    # per shape, the positions a decode or aggregated row may take: memory's (`top`) up to where the cycle is
    # known to miss TPOT (`bounds.cycle_floor`); where in them the cycle bound passes for the last time is found by
    # the search's edge gaps, and only where no kept pool dominates them
    below = np.zeros(n, np.int64)
    if "aggregated" in roles or "decode" in roles:
        floor = cycle_floor(sp, p, lim.tpot_ns)
        below = np.where(floor == _NEVER, sp.top, np.minimum(sp.top, np.maximum(floor - 1, 0) // terms.dp))
        below = np.where(mem0 & (c0 <= lim.tpot_ns), below, 0)

    zero_key = np.zeros(n, np.int64)

    def search(role: str, cand_rows: np.ndarray, gap_shapes: np.ndarray, cap_row, key_row, cap_gap, key_gap,
               group_s: np.ndarray, exact, dear=None) -> list[tuple[int, _Exact]]:
        """The non-dominated rows of a role over the ranges: `cand_rows` the candidates among the first rows,
        `gap_shapes` the shapes whose later positions may hold one, `cap_row(rows)`/`key_row(rows)` the rows'
        bounds, `cap_gap(s, last, cycle)`/`key_gap(s)` a gap's (module docstring). Each round sweeps the pools
        kept so far and the rows just examined: a row the sweeps dropped is dominated by a kept pool (dominance is
        transitive), so the pools kept are those of one sweep over every row examined, ties aside."""
        memo: dict[int, _Exact | None] = {}

        def ex(i: int) -> _Exact | None:
            if i not in memo:
                memo[i] = exact(i)
            return memo[i]

        # gaps (s, a, b, c_a, edge, seek, fresh): positions a … b − 1 unexamined, c_a a cycle bound at a (that of
        # the examined row before it); edge: b is where the positions known to miss end (position b fails the
        # cycle bound, or b = below), not a row known to pass; seek: no row of the shape above its first examined
        # yet passes the cycle bound; fresh: none examined but the first
        gs = gap_shapes[below[gap_shapes] > 1]
        g_a, g_b, g_c = np.ones(len(gs), np.int64), below[gs], c0[gs]
        g_edge, g_seek, g_fresh = (np.ones(len(gs), bool) for _ in range(3))
        # and g_row: the examined row just below the gap (-1: none). A decode row that is no pool (no placement
        # in memory, or its exact cycle over TPOT) has none above it either (`exact_pools`): its gap is dropped
        g_row = row0_of[gs]
        cand = np.asarray(cand_rows, np.int64)
        kept: list[tuple[int, _Exact]] = []
        while True:
            if dear is not None and len(gs):
                # gaps whose every row costs too much per unit to pair under the cap (`exact_pools`' docstring),
                # and the rows just examined that do
                live_ = ~dear(gs, cap_gap(gs, g_b - 1, g_c))
                gs, g_a, g_b, g_c, g_edge, g_seek, g_fresh, g_row = (
                    x[live_] for x in (gs, g_a, g_b, g_c, g_edge, g_seek, g_fresh, g_row))
            if dear is not None and len(cand):
                cand = cand[~dear(store.col("s")[cand], cap_row(cand))]
            # until each range has a row passing the cycle bound above its first (its largest such row usually
            # dominates the rest of its shape, and its bounds drop most other rows unevaluated), only those
            # ranges are probed, with no sweep: their largest position first, then bisected
            seeking = bool(g_seek.any())
            if not seeking:
                rows = np.concatenate([np.array([i for i, _ in kept], np.int64), cand])
                n_rows = len(store)
                cap_ub, key_lb = np.zeros(n_rows, np.int64), np.zeros(n_rows, np.int64)
                cap_ub[rows], key_lb[rows] = cap_row(rows), key_row(rows)
                group = np.zeros(n_rows, np.int64)
                group[rows] = group_s[store.col("s")[rows]]
                kept = _sweep(store.col("gpus"), rows, cap_ub, key_lb, group, ex)
                cand = np.zeros(0, np.int64)
                if len(gs) == 0:
                    return kept
                # drop the gaps a kept pool dominates
                cap = cap_gap(gs, g_b - 1, g_c)
                key = key_gap(gs)
                dead = np.zeros(len(gs), bool)
                if kept:
                    k_rows = np.array([i for i, _ in kept], np.int64)
                    dead = _gaps_dominated(group_s[store.col("s")[k_rows]], store.col("gpus")[k_rows],
                                           np.array([x.capacity for _, x in kept], np.int64),
                                           np.array([x.latency_key for _, x in kept], np.int64),
                                           group_s[gs], gpus_s[gs], cap, key)
                if role == "decode":
                    dead |= np.array([r >= 0 and r in memo and memo[r] is None for r in g_row.tolist()], bool)
                live_ = ~dead
                gs, g_a, g_b, g_c, g_edge, g_seek, g_fresh, g_row = (
                    x[live_] for x in (gs, g_a, g_b, g_c, g_edge, g_seek, g_fresh, g_row))
                if len(gs) == 0:
                    return kept
            probe = g_seek if seeking else np.ones(len(gs), bool)
            wait = ~probe  # gaps left for the next round as they are
            w = [x[wait] for x in (gs, g_a, g_b, g_c, g_edge, g_seek, g_row)]
            gs, g_a, g_b, g_c, g_edge, g_fresh, g_row = (x[probe] for x in (gs, g_a, g_b, g_c, g_edge, g_fresh,
                                                                            g_row))
            # a fresh range: its largest position first; an edge gap: bisected for where the cycle bound ends;
            # an inner gap: split where its bound is loosest (geometric middle)
            mid = np.where(g_fresh, g_b - 1, np.where(g_edge, (g_a + g_b - 1) // 2, _geometric_middle(g_a, g_b)))
            mbs = sp.micro_batch(gs, mid)
            if role == "aggregated":
                # the decode terms first; the full table (prefill-chunk step and all) only where the cycle bound
                # passes, the others being no candidates (as bounds.search_space's examine)
                td = table_of(req, terms, gs, mbs, p, decode_only=True)
                cm = decode_cycle_ns(td)
                live = np.flatnonzero(cm <= lim.tpot_ns)
                dec = tuple(x[live] for x in (td.dec_ns_per_kind, td.dec_extra_ns, td.dec_extra_single_ns,
                                              td.dec_hop_ns))
                new = store.add(table_of(req, terms, gs[live], mbs[live], p, decode_terms=dec), gs[live], mid[live])
                probe_row = np.full(len(gs), -1, np.int64)
                probe_row[live] = new
            else:
                new = store.add(decode_table(req, terms, gs, mbs, p), gs, mid, memory_fits(req, terms, gs, mbs))
                cm = store.col("cycle")[new]
                probe_row = new
            ok_m = cm <= lim.tpot_ns  # monotone: every position below passes too, every one above an edge's fails
            cand = np.concatenate([cand, row_cand(new, role)])
            # (a, mid): inner where mid passes, else still an edge (and still seeking); (mid + 1, b), only where mid
            # passes: its cycle bound is the examined row's, its kind the gap's
            lower, upper = mid > g_a, (g_b > mid + 1) & ok_m
            gs, g_a, g_b, g_c, g_edge, g_seek = (
                np.concatenate([w[0], gs[lower], gs[upper]]), np.concatenate([w[1], g_a[lower], mid[upper] + 1]),
                np.concatenate([w[2], mid[lower], g_b[upper]]), np.concatenate([w[3], g_c[lower], cm[upper]]),
                np.concatenate([w[4], ~ok_m[lower], g_edge[upper]]),
                np.concatenate([w[5], ~ok_m[lower], np.zeros(int(upper.sum()), bool)]))
            g_row = np.concatenate([w[6], g_row[lower], probe_row[upper]])
            g_fresh = np.zeros(len(gs), bool)

    def row_cand(rows: np.ndarray, role: str) -> np.ndarray:
        c = store.col
        if role == "aggregated":
            return rows[(c("memory_ok") & c("ttft_ok") & c("tpot_ok"))[rows]]
        return rows[(c("memory_ok")[rows]) & (c("cycle")[rows] <= lim.tpot_ns)]

    if "aggregated" in roles:
        def agg(i: int) -> _Exact | None:
            return aggregated_pool(*store.at(i), lim, osl, placed)

        ttft_ok0 = np.zeros(n, bool)
        ttft_ok0[live] = store.col("ttft_ok")[rows0]
        # TTFT does not depend on the micro-batch; the TPOT with stalls need not grow with it (bounds.py), so every
        # shape whose range is not empty and whose TTFT passes is searched
        kept = search("aggregated", row_cand(rows0, "aggregated"), np.flatnonzero(ttft_ok0 & (below > 0)),
                      lambda r: capacity_units(store.col("batch")[r], store.col("round_ns")[r] * osl),
                      lambda r: np.zeros(len(r), np.int64),
                      lambda s, last, c: capacity_units(terms.pp[s] * sp.micro_batch(s, last), c * osl),
                      lambda s: zero_key[s], by_type_s, agg)
        pools += [pool(i, "aggregated", x) for i, x in kept]

    if "prefill" in roles and "decode" in roles:
        ttft = lim.ttft_ns
        tp_s = terms.tp
        kv_lb_s = kv_transfer_ns(model, kvb_s, nic_s, isl, p, tp_s, -(-L // terms.pp))
        kv_ub_s = kv_transfer_ns(model, kvb_s, nic_s, isl, p, tp_s)
        kv_seen: dict[tuple, int] = {}
        price_s = np.array([price_units(r.gpu.usd_per_hour) for r in reps], np.int64)[grp].reshape(n)

        def unit_cost(s: np.ndarray, cap: np.ndarray) -> np.ndarray:
            """g·π / c per shape `s` at capacity (upper bound) `cap`: a lower bound on its pools' unit cost."""
            cap = np.asarray(cap, np.int64)
            with np.errstate(divide="ignore"):
                return np.where(cap > 0, (gpus_s[s] * price_s[s]).astype(float) / np.maximum(cap, 1), np.inf)

        def dec_cap_ub(s: np.ndarray) -> np.ndarray:
            """Per decode shape, an upper bound on every decode row's capacity: its batch is at most pp·m at the
            last position it may take (`below` − 1, or its first), its cycle at least the bound at its first row
            (c0: the bound never falls as the micro-batch grows, module docstring), and the NIC bound."""
            last = np.maximum(below[s] - 1, 0)
            return np.minimum(capacity_units(terms.pp[s] * sp.micro_batch(s, last), c0[s] * osl),
                              capacity_units(terms.dp[s], kv_lb_s[s]))

        def kv_exact(s: int, lay: Sequence[int]) -> int:
            key = (float(kvb_s[s]), float(nic_s[s]), int(tp_s[s]), max(lay))
            if key not in kv_seen:
                kv_seen[key] = int(kv_transfer_ns(model, kvb_s[s], nic_s[s], isl, p, tp_s[s], max(lay)))
            return kv_seen[key]

        col = store.col
        s0 = col("s")[rows0]
        ok = col("memory_ok")[rows0].copy()
        if ttft is not None:
            ok &= col("ttft_ns")[rows0] + kv_lb_s[s0] <= ttft
        dec_shape = mem0 & (c0 <= lim.tpot_ns)  # shapes with a decode row (their first row is one)
        recv_worst = {k: int(kv_ub_s[dec_shape & (kv_s == k)].max(initial=0)) for k in np.unique(kv_s).tolist()}
        worst_s = np.array([recv_worst[k] for k in kv_s.tolist()], np.int64).reshape(n)
        # a prefill pool's latency is a dominance key only where it can bind (as class_pools' pre_key)
        pre_key_s = np.zeros(n, np.int64)
        if ttft is not None:
            ttft_s = np.zeros(n, np.int64)
            ttft_s[s0] = col("ttft_ns")[rows0]
            pre_key_s = np.where(ttft_s + worst_s <= ttft, 0, ttft_s)

        def pre(i: int) -> _Exact | None:
            t, j = store.at(i)
            s = int(col("s")[i])
            lay = greedy_placement(t, j, "pf", placed)
            if lay is None:
                return None
            pf_stage_ns, fits = prefill_evaluation(t, j, lay)
            if not fits:
                return None
            kv = kv_exact(s, lay)
            latency = int(t.ttft_ns[j])
            if ttft is not None and latency + kv > ttft:
                return None
            dp_ = int(terms.dp[s])
            cap = int(min(capacity_units(dp_, pf_stage_ns + int(t.pf_hop_ns[j])), capacity_units(dp_, kv)))
            return _Exact(cap, int(pre_key_s[s]), lay, latency, 0, kv)

        pcand = rows0[ok]
        cap_pre = np.zeros(len(store), np.int64)
        # no faster than the NIC takes a prompt's KV at the smallest largest stage (kv_lb)
        cap_pre[pcand] = np.minimum(capacity_units(terms.dp[col("s")[pcand]], col("pf_period")[pcand]),
                                    capacity_units(terms.dp[col("s")[pcand]], kv_lb_s[col("s")[pcand]]))
        u_pre_min = u_dec_min = 0.0
        if unit_cost_cap is not None:
            # lower bounds on every decode pool's and every prefill pool's cost per capacity unit, then the
            # prefill candidates that cannot pair under the cap (`exact_pools`' docstring)
            u_dec = unit_cost(np.flatnonzero(dec_shape), dec_cap_ub(np.flatnonzero(dec_shape)))
            u_dec_min = float(u_dec.min(initial=np.inf))
            u_pre = unit_cost(col("s")[pcand], cap_pre[pcand])
            u_pre_min = float(u_pre.min(initial=np.inf))
            pcand = pcand[u_pre + u_dec_min <= unit_cost_cap]
        key_pre = np.zeros(len(store), np.int64)
        key_pre[pcand] = pre_key_s[col("s")[pcand]]
        group = np.zeros(len(store), np.int64)
        group[pcand] = by_kv_s[col("s")[pcand]]
        prefill = _sweep(col("gpus"), pcand, cap_pre, key_pre, group, pre)
        slowest: dict[str, int] = {}
        for i, x in prefill:
            k = str(kv_s[int(col("s")[i])])
            slowest[k] = max(slowest.get(k, 0), x.latency_ns)
        room = {k: (None if ttft is None else ttft - v) for k, v in slowest.items()}
        limit_s = np.full(n, -1, np.int64)
        for k, r in room.items():
            limit_s[kv_s == k] = -1 if r is None else r
        recv_lb_s = np.zeros(n, np.int64) if ttft is None else np.where(kv_lb_s <= limit_s, 0, kv_lb_s)

        def recv_key(kv: int, s: int) -> int:
            return 0 if ttft is None or kv <= room[str(kv_s[s])] else kv

        def dec(i: int) -> _Exact | None:
            t, j = store.at(i)
            s = int(col("s")[i])
            lay = greedy_placement(t, j, memo=placed)
            if lay is None:
                return None
            dec_stage_ns, fits = decode_evaluation(t, j, lay)
            if not fits:
                return None
            cycle = int(t.pp[j]) * (dec_stage_ns + int(t.dec_hop_ns[j]))
            if cycle > lim.tpot_ns:
                return None
            kv = kv_exact(s, lay)
            cap = int(min(capacity_units(int(t.batch[j]), cycle * osl), capacity_units(int(terms.dp[s]), kv)))
            return _Exact(cap, recv_key(kv, s), lay, 0, cycle, kv)

        has_kv = np.isin(kv_s, list(slowest))
        dcand = row_cand(rows0, "decode")
        dcand = dcand[has_kv[col("s")[dcand]]]

        def cap_dec_rows(r: np.ndarray) -> np.ndarray:
            s = store.col("s")[r]
            return np.minimum(capacity_units(store.col("batch")[r], store.col("cycle")[r] * osl),
                              capacity_units(terms.dp[s], kv_lb_s[s]))

        def cap_dec_gap(s: np.ndarray, last: np.ndarray, c: np.ndarray) -> np.ndarray:
            return np.minimum(capacity_units(terms.pp[s] * sp.micro_batch(s, last), c * osl),
                              capacity_units(terms.dp[s], kv_lb_s[s]))

        dear = None
        dshapes = col("s")[dcand]  # every decode shape's later positions, whatever its first row costs
        if unit_cost_cap is not None:
            dcand = dcand[unit_cost(col("s")[dcand], cap_dec_rows(dcand)) + u_pre_min <= unit_cost_cap]

            def dear(s: np.ndarray, cap: np.ndarray) -> np.ndarray:
                return unit_cost(s, cap) + u_pre_min > unit_cost_cap

        decode = search("decode", dcand, dshapes, cap_dec_rows, lambda r: recv_lb_s[store.col("s")[r]], cap_dec_gap,
                        lambda s: recv_lb_s[s], by_kv_s, dec, dear) if slowest else []
        dec_kv = {str(kv_s[int(col("s")[i])]) for i, _ in decode}
        pools += [pool(i, "prefill", x) for i, x in prefill if str(kv_s[int(col("s")[i])]) in dec_kv]
        pools += [pool(i, "decode", x) for i, x in decode]
    return pools


def _gaps_dominated(k_group: np.ndarray, k_gpus: np.ndarray, k_cap: np.ndarray, k_key: np.ndarray,
                    g_group: np.ndarray, g_gpus: np.ndarray, g_cap: np.ndarray, g_key: np.ndarray) -> np.ndarray:
    """Per gap, is there a kept pool k of its group with gpus_k <= gpus_g, ⌊gpus_g/gpus_k⌋·cap_k >= cap_g and
    key_k <= key_g (`class_pools`' dominance of the gap's bounds)? The same test as over every (kept, gap) pair,
    made within each group only (pools of other groups never dominate), in blocks of 256 kept pools."""
    dead = np.zeros(len(g_group), bool)
    for grp in np.unique(g_group).tolist():
        gi = np.flatnonzero(g_group == grp)
        ki = np.flatnonzero(k_group == grp)
        if len(ki) == 0:
            continue
        gg, gc, gk = g_gpus[gi][None, :], g_cap[gi][None, :], g_key[gi][None, :]
        kg, kc, kk = k_gpus[ki][:, None], k_cap[ki][:, None], k_key[ki][:, None]
        hit = np.zeros(len(gi), bool)
        for lo in range(0, len(ki), 256):
            sl = slice(lo, lo + 256)
            hit |= ((kg[sl] <= gg) & ((gg // kg[sl]) * kc[sl] >= gc) & (kk[sl] <= gk)).any(axis=0)
        dead[gi] = hit
    return dead


def _geometric_middle(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A position in lo … hi − 1 (hi − lo >= 1) near the geometric mean of the micro-batches at its ends."""
    mid = np.floor(np.sqrt((lo + 1.0) * hi)).astype(np.int64) - 1
    return np.clip(mid, lo, hi - 1)


def candidate_pools(req: FleetRequest, p: PerfParams) -> list[Pool]:
    """`planner fleet`'s pools: every class's non-dominated pools over every micro-batch memory allows
    (`exact_pools`) on the request's PP list (the grid's by default) and TP list (powers of two by default), or,
    where the request pins micro-batches, `fleet.pools.candidate_pools` over them. With pool_space "exact", PP
    and TP are the request's lists or (None) every depth and degree (no pair bound prunes them: a fleet's pools
    serve many classes and hours)."""
    if req.micro_batches is not None:
        return grid_candidate_pools(req, p)
    exact = req.pool_space == "exact"
    pp, tp = (req.pp, req.tp) if exact else (req.pp or DEFAULT_PP, req.tp or GRID_TP)
    gpus = [o.gpu for o in req.offers]
    limits = {o.gpu.id: o.available for o in req.offers if o.available is not None}
    out: list[Pool] = []
    for c, cl in enumerate(req.classes):
        r = pool_request(req.model, cl.workload, cl.slo, gpus, weights=req.weights, kv=req.kv, pp=pp, tp=tp,
                         max_gpus_per_type=limits, engine=req.engine)
        out += exact_pools(c, r, p, roles_of(req.disaggregation))
    return out
