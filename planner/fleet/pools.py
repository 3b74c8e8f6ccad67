"""Candidate replica configurations ("pools") of one request class, the building blocks of the fleet model
(planner/fleet/).

A pool is one replica configuration (GPU type, precision, TP/PP/EP, batch, layers per stage) in one role:

- aggregated: each replica runs prefill and decode under continuous batching (`table.round_ns`, the time per
  round of B tokens with every prefill stall): capacity = B / (round · OSL) requests/s, subject to the class's
  TTFT, TPOT (`table.tpot_ns`) and memory;
- prefill: a replica only runs prompts, one per attention-DP group in each pipeline micro-batch (rows with
  micro-batch = DP), pipelined: capacity = DP / (slowest prefill stage + stage hop) prompts/s; its prompt's KV cache is then sent to a decode
  replica over the scale-out network (`kv_transfer_ns`; a prefill and a decode pool pair when the prefill
  latency plus the transfer fits the TTFT, see `compatible`);
- decode: a replica only runs decode steps, with no prefill interference: TPOT = pp · (T_dec + hop) (the decode
  cycle, `batching.steady_state_tpot_s` without its prefill term): capacity = B / (cycle · OSL) requests/s.

Every quantity comes from the optimizer's integer table (`table.table_of`, `table.evaluate`) with its
conservative rounding, for a placement found by the optimizer's greedy (`solve.greedy_placement`, or the same
`greedy_placement(..., "pf")` on prefill terms for prefill pools) and verified by `table.evaluate`.

Only the grid's rows some role may choose are tabulated (`search.bounds.pool_rows`, proven there: memory, and
the decode cycle's bound against the TPOT target, bisected per shape group over its micro-batches; prefill rows
are kept whatever their decode). Pruning keeps, per GPU type (and KV precision, for the disaggregated roles, whose prefill and decode halves must
agree on it), the non-dominated configurations: B is dropped when m = ⌊g_B / g_A⌋ ≥ 1 replicas of a kept A use
no more GPUs, serve at least as many requests/s (m · cap_A ≥ cap_B) and are at least as compatible (A's latency
key ≤ B's). Replacing every B replica by m copies of A keeps every constraint of the fleet model (demand,
availability, budget, prefill/decode pairing) and does not raise its cost, so the pruning loses no optimum."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ..perf.comm import p2p_time_s
from ..perf.memory import kv_bytes_per_sequence, kv_fraction_per_gpu
from ..perf.params import PerfParams
from ..specs.accelerator import Accelerator
from ..specs.model import ModelSpec
from ..specs.workload import SLO, Workload
from ..units import BYTES_PER_ELEMENT
from .request import ROLES, FleetRequest, roles_of
from ..search.solve import greedy_placement
from ..search.space import DEFAULT_KV, DEFAULT_MICRO_BATCHES, DEFAULT_PP, DEFAULT_WEIGHTS, Request, Row, RowList, enumerate_rows, per_row
from ..search.bounds import pool_rows
from ..search.table import NS_PER_S, PRICE_UNITS_PER_USD, Limits, ShapeTerms, Table, evaluate, lower_bounds, table_of

# Capacity and demand unit: micro-requests per second. Capacities are rounded down, demands up.
CAP_UNITS_PER_RPS = 10**6
_CAP_NUM = CAP_UNITS_PER_RPS * NS_PER_S  # capacity = _CAP_NUM · requests / time_ns



@dataclass(frozen=True)
class Pool:
    """One candidate replica configuration of one class in one role (integer-scaled, conservative)."""

    cls: int  # index of the request class it serves
    role: str  # aggregated | prefill | decode
    row: Row
    layers: tuple[int, ...]
    capacity: int  # requests/s per replica × CAP_UNITS_PER_RPS, rounded down
    latency_ns: int  # aggregated: TTFT; prefill: prefill latency (before the KV transfer); decode: 0
    tpot_ns: int  # aggregated: TPOT; decode: the decode cycle; prefill: 0
    kv_transfer_ns: int  # disaggregated: this side of a prompt's KV transfer (`kv_transfer_ns`); aggregated: 0

    @property
    def gpu(self) -> str:
        return self.row.gpu.id

    @property
    def gpus(self) -> int:
        return self.row.gpus

    @property
    def kv(self) -> str:
        return self.row.kv


def capacity_by_role(items: Iterable[tuple[Pool, Any, int]], cls: int) -> dict[str, Any]:
    """Per role, Σ capacity of one replica × replicas over the pools of class `cls`; `items` are (pool, capacity of
    one replica, replicas): integer capacity units in the integer model, requests/s in floating point."""
    cap = dict.fromkeys(ROLES, 0)
    for pool, capacity, replicas in items:
        if pool.cls == cls:
            cap[pool.role] += capacity * replicas
    return cap


def served(capacity: Mapping[str, Any]) -> Any:
    """What a class's pools serve (`capacity_by_role`): the aggregated capacity plus the disaggregated capacity at
    the pace of its slower half (every prompt is prefilled once and decoded once)."""
    return capacity["aggregated"] + min(capacity["prefill"], capacity["decode"])


def replica_cost(gpus: int, reserved_price, on_demand_price, reserved: int, replicas: int):
    """One hour of a pool of `replicas` replicas, `reserved` of them reserved: g · (ρ·r + π·(n − r)), with ρ the
    reserved and π the on-demand price per GPU-hour (ρ = None: nothing can be reserved). Integer price units in
    the integer model, USD in floating point."""
    return gpus * ((reserved_price or 0) * reserved + on_demand_price * (replicas - reserved))


def compatible(p: Pool, d: Pool, ttft_ns: int | None) -> bool:
    """Can prefill pool p hand its prompts to decode pool d? Same KV-cache precision (the cache is reused as
    computed; a transfer library such as NIXL re-shards it between different TP degrees, but does not convert
    it), and prefill latency + KV transfer within the TTFT limit. Each side's busiest GPU sends or receives its
    share over its own NIC, so the transfer takes max(t_p, t_d) (`kv_transfer_ns`)."""
    if p.kv != d.kv:
        return False
    return ttft_ns is None or p.latency_ns + max(p.kv_transfer_ns, d.kv_transfer_ns) <= ttft_ns


def kv_transfer_bytes_per_gpu(model: ModelSpec, kv_bytes_per_element, isl: int, tp=1, stage_layers=None):
    """One prompt's KV bytes the busiest GPU of a replica holds, so sends (a prefill replica) or receives (a decode
    replica) over its own NIC, B:

        B = min(M, n_stage · isl · e · b) · share(TP)

    M = `memory.kv_bytes_per_sequence` at isl (windowed layers hold at most their window), n_stage the layers of
    the replica's largest pipeline stage (each stage holds only its layers' KV; a layer holds at most isl tokens
    of e elements at b bytes), share(TP) = `memory.kv_fraction_per_gpu` (each TP rank holds its KV heads; a
    single-head MLA/MQA cache is whole on every rank). Attention-DP groups hold whole prompts: no split.
    `stage_layers` None: one stage of every layer (B = M · share). Every GPU of an HGX/DGX node has a NIC of its
    own (catalog scale_out.gbit_s is per GPU: DGX H100 8 × ConnectX-7, one per GPU), so the shards move in
    parallel and the busiest GPU sets the time."""
    kvb = np.asarray(kv_bytes_per_element, float)
    total = kv_bytes_per_sequence(model, kvb, isl)
    if stage_layers is not None:
        n = np.asarray(stage_layers, float)
        stage = np.minimum(total, n * float(isl) * model.kv_elements_per_token_per_layer * kvb)
        total = np.where(n >= model.num_layers, total, stage)
    return total * kv_fraction_per_gpu(model, np.asarray(tp, float))


def kv_transfer_ns(model: ModelSpec, kv_bytes_per_element, scale_out_bytes_per_s, isl: int, p: PerfParams,
                   tp=1, stage_layers=None) -> np.ndarray:
    """Time for one replica's side of a prompt's KV transfer: its busiest GPU's bytes
    (`kv_transfer_bytes_per_gpu`) through that GPU's scale-out NIC, t = α + B / (BW_out · η) (`comm.p2p_time_s`),
    rounded up to ns (vectorized over rows). A prefill pool p and a decode pool d pair when
    latency_p + max(t_p, t_d) ≤ TTFT (`compatible`: the slower side sets the pace).

    Conservative in that the cache moves after the whole prefill completes (no layer-by-layer overlap, and the
    earlier stages' shares are counted as if they too left only then)."""
    bytes_ = kv_transfer_bytes_per_gpu(model, kv_bytes_per_element, isl, tp, stage_layers)
    t = p2p_time_s(bytes_, np.asarray(scale_out_bytes_per_s, float), p.link_efficiency, p.p2p_latency_s)
    return np.ceil(np.asarray(t) * NS_PER_S - 1e-9).astype(np.int64)


def price_units(usd_per_hour: float) -> int:
    """One GPU-hour at this price in 1e-4 USD (search.table.PRICE_UNITS_PER_USD), rounded up (a price given to
    six decimals of a unit is taken as it is): what the disaggregated pairing and its pair bound charge."""
    return -(-round(usd_per_hour * PRICE_UNITS_PER_USD * 10**6) // 10**6)


def capacity_units(requests, time_ns) -> np.ndarray:
    """⌊requests · CAP_UNITS_PER_RPS · 1e9 / time_ns⌋ in exact integers (vectorized)."""
    return (np.asarray(requests, np.int64) * _CAP_NUM) // np.asarray(time_ns, np.int64)


@dataclass(frozen=True)
class _Exact:
    capacity: int
    latency_key: int
    layers: tuple[int, ...]
    latency_ns: int
    tpot_ns: int
    kv_ns: int


def _sweep(gpus: np.ndarray, cand: np.ndarray, cap_ub: np.ndarray, lat_lb: np.ndarray, group: np.ndarray,
           exact: Callable[[int], _Exact | None]) -> list[tuple[int, _Exact]]:
    """The non-dominated rows of `cand`, evaluating exactly only rows whose upper bounds are not yet dominated.
    `group`: each row's group as an integer (`_group_rank`); dominance is within a group.

    Rows are visited by (group, GPUs, −capacity bound, latency bound, row); a row is skipped when a pool kept
    before it dominates its bounds. Each kept pool marks the later rows of its group it dominates at once
    (numpy), which is the same test: a kept pool dropped later was dominated by the pool that dropped it, and
    dominance is transitive (⌊g_c/g_a⌋ ≥ ⌊g_c/g_b⌋·⌊g_b/g_a⌋), so that pool dominates whatever it marked.
    `gpus`: each row's GPUs per replica."""
    cand = np.asarray(cand, np.int64)
    order = cand[np.lexsort((cand, lat_lb[cand], -cap_ub[cand], gpus[cand], group[cand]))]
    starts = np.flatnonzero(np.diff(group[order])) + 1
    out: list[tuple[int, _Exact]] = []

    def dominated(kept: list[tuple[int, _Exact]], g: int, cap: int, lat: int, skip: int = -1) -> bool:
        for j, a in kept:
            ga = int(gpus[j])
            if j != skip and ga <= g and (g // ga) * a.capacity >= cap and a.latency_key <= lat:
                return True
        return False

    for seg in np.split(order, starts):
        g_seg, cap_seg, lat_seg = gpus[seg], cap_ub[seg], lat_lb[seg]
        alive = np.ones(len(seg), bool)
        kept: list[tuple[int, _Exact]] = []
        for k, i in enumerate(seg.tolist()):
            if not alive[k]:
                continue  # a kept pool dominates its bounds
            g = int(g_seg[k])
            x = exact(i)
            if x is None or x.capacity <= 0 or dominated(kept, g, x.capacity, x.latency_key):
                continue
            kept.append((i, x))
            # an equal-size later row may dominate an earlier one (copies of a larger replica never dominate)
            kept[:] = [(j, a) for j, a in kept
                       if j == i or not dominated([(i, x)], int(gpus[j]), a.capacity, a.latency_key)]
            # (tested only on the later rows still alive: a dead one stays dead)
            rest = k + 1 + np.flatnonzero(alive[k + 1:])
            g_rest = g_seg[rest]
            alive[rest] = ~((g <= g_rest) & ((g_rest // g) * x.capacity >= cap_seg[rest])
                            & (x.latency_key <= lat_seg[rest]))
        out += kept
    return out


def aggregated_pool(t: Table, i: int, lim: Limits, osl: int, placed: dict) -> _Exact | None:
    """Row i of table t as an aggregated pool: its greedy placement (`placed`: the table's placement memo), None
    where no placement fits or the placed row misses memory, TPOT or TTFT; its capacity from the round time."""
    lay = greedy_placement(t, i, memo=placed)
    if lay is None:
        return None
    ev = evaluate(t, i, lay, lim)
    if {"memory", "tpot", "ttft"} & set(ev.violated):
        return None
    cap = int(capacity_units(int(t.batch[i]), ev.round_ns * osl))
    return _Exact(cap, 0, lay, ev.ttft_ns, ev.tpot_ns, 0)


def _group_rank(rows: Sequence[Row], key: Callable[[Row], tuple]) -> np.ndarray:
    """Each row's rank among the distinct `key(row)` values in sorted order (integer order = key order); for a
    RowList from its shapes (`key` must not read the micro-batch)."""
    lazy = isinstance(rows, RowList)
    ks = [key(r) for r in (rows.shapes if lazy else rows)]
    rank = {k: n for n, k in enumerate(sorted(set(ks)))}
    out = np.fromiter((rank[k] for k in ks), np.int64, len(ks))
    return out[rows.shape_index] if lazy else out


def class_pools(cls: int, model: ModelSpec, workload: Workload, slo: SLO, gpus: Sequence[Accelerator],
                p: PerfParams, *, roles: Sequence[str] = ROLES, weights: Sequence[str] = DEFAULT_WEIGHTS,
                kv: Sequence[str] = DEFAULT_KV, pp: Sequence[int] = DEFAULT_PP,
                micro_batches: Sequence[int] = DEFAULT_MICRO_BATCHES, tp: Sequence[int] | None = None,
                max_gpus_per_type: dict[str, int] | None = None, table: Table | None = None,
                engine: str | None = None) -> list[Pool]:
    """The non-dominated candidate pools of one request class (`roles` picks aggregated / disaggregated).
    Over every micro-batch memory allows: `fleet.pool_space.exact_pools`.
    `table`: the request's whole grid table, when a caller wants the pools from it rather than from the pruned
    one built here (the tests compare the two); `engine`: only rows that engine runs (`search.space.Request.engine`)."""
    req = Request(model=model, workload=Workload(workload.isl, workload.osl, max_model_len=workload.max_model_len),
                  slo=slo, gpus=tuple(gpus), weights=tuple(weights), kv=tuple(kv), pp=tuple(pp),
                  micro_batches=tuple(micro_batches), tp=None if tp is None else tuple(tp),
                  max_gpus_per_type=dict(max_gpus_per_type or {}), engine=engine)
    lim = Limits.of(req, p.max_batch)
    if table is None:
        rows = enumerate_rows(req, p.max_batch)
        if not rows:
            return []
        # only the rows some role's candidate filter below may pass are tabulated (bounds.pool_rows: proven there)
        terms = ShapeTerms.of(req, rows.shapes, p)
        keep = pool_rows(req, terms, rows.shape_index, rows.micro_batch, p, lim,
                         "prefill" in roles and "decode" in roles)
        rows = RowList(rows.shapes, rows.shape_index[keep], rows.micro_batch[keep])
        if not rows:
            return []
        table = table_of(req, terms, rows.shape_index, rows.micro_batch, p, rows=rows)
    t = table
    b = lower_bounds(t, lim)
    osl = workload.osl
    pools: list[Pool] = []
    zero = np.zeros(len(t), np.int64)

    def pool(i: int, role: str, x: _Exact) -> Pool:
        return Pool(cls, role, t.rows[i], x.layers, x.capacity, x.latency_ns, x.tpot_ns, x.kv_ns)

    placed: dict = {}  # greedy_placement's memo on this table: rows with the same placement problem

    # the sweep's groups, per row from the shapes (no Row made per row)
    by_type = _group_rank(t.rows, lambda r: (r.gpu.id,))
    by_type_kv = _group_rank(t.rows, lambda r: (r.gpu.id, r.kv))

    if "aggregated" in roles:
        cand = np.flatnonzero(b.memory_ok & b.ttft_ok & b.tpot_ok)
        cap_ub = capacity_units(t.batch, b.round_ns * osl)

        def agg(i: int) -> _Exact | None:
            return aggregated_pool(t, i, lim, osl, placed)

        pools += [pool(i, "aggregated", x) for i, x in _sweep(t.gpus, cand, cap_ub, zero, by_type, agg)]

    if "prefill" in roles and "decode" in roles:
        ttft = lim.ttft_ns
        kvb = per_row(t.rows, lambda r: BYTES_PER_ELEMENT[r.kv])
        nic = per_row(t.rows, lambda r: r.gpu.scale_out_bytes_per_s)
        row_tp = per_row(t.rows, lambda r: r.tp)
        L = model.num_layers

        kv_seen: dict[tuple, int] = {}

        def kv_exact(i: int, lay: Sequence[int]) -> int:
            """The pool's side of the KV transfer for its placement (its largest stage); one computation per
            distinct input (KV bytes, NIC, TP, largest stage)."""
            key = (float(kvb[i]), float(nic[i]), int(row_tp[i]), max(lay))
            if key not in kv_seen:
                kv_seen[key] = int(kv_transfer_ns(model, kvb[i], nic[i], workload.isl, p, row_tp[i], max(lay)))
            return kv_seen[key]

        # per row, before placement: a lower bound (no stage holds fewer than ⌈L/PP⌉ layers) for the filters and
        # the sweeps' bounds, an upper bound (every layer on one stage) where a worst case is needed
        kv_lb = kv_transfer_ns(model, kvb, nic, workload.isl, p, row_tp, -(-L // t.pp))
        kv_ub = kv_transfer_ns(model, kvb, nic, workload.isl, p, row_tp)
        # one prompt per DP group in each micro-batch: a stage prefills dp prompts at once (perf step_terms)
        dp = per_row(t.rows, lambda r: r.dp).astype(np.int64)
        ok = (t.batch == t.pp * dp) & b.memory_ok
        if ttft is not None:
            ok &= t.ttft_ns + kv_lb <= ttft
        cap_ub = capacity_units(dp, b.pf_stage_ns + t.pf_hop_ns)

        def pre(i: int) -> _Exact | None:
            lay = greedy_placement(t, i, "pf", placed)
            if lay is None:
                return None
            ev = evaluate(t, i, lay, lim)
            if "memory" in ev.violated:
                return None
            kv = kv_exact(i, lay)
            if ttft is not None and ev.ttft_ns + kv > ttft:
                return None  # cannot hand over its own prompts in time: pairs with no decode pool (`compatible`)
            # each DP group's GPUs send one prompt's share per prompt over their NICs: no faster than the NIC
            cap = int(min(capacity_units(t.rows[i].dp, ev.pf_stage_ns + int(t.pf_hop_ns[i])),
                          capacity_units(t.rows[i].dp, kv)))
            # every kept prefill pool meets latency + its own transfer ≤ TTFT, so of two with latency keys
            # a ≤ b the first pairs with every decode pool the second does, whatever their own transfers
            return _Exact(cap, int(pre_key[i]), lay, ev.ttft_ns, 0, kv)

        cycle_lb = t.pp * (b.dec_stage_ns + t.dec_hop_ns)
        kvs = per_row(t.rows, lambda r: r.kv)
        dec_ok = b.memory_ok & (cycle_lb <= lim.tpot_ns)
        # A prefill pool's latency is a dominance key only where it can bind: against the slowest receive of any
        # decode row of its KV precision.
        recv_worst = {k: int(kv_ub[dec_ok & (kvs == k)].max(initial=0)) for k in np.unique(kvs).tolist()}
        worst = np.zeros(len(t), np.int64)
        for k, v in recv_worst.items():
            worst[kvs == k] = v
        pre_key = np.zeros(len(t), np.int64) if ttft is None else np.where(t.ttft_ns + worst <= ttft, 0, t.ttft_ns)
        prefill = _sweep(t.gpus, np.flatnonzero(ok), cap_ub, pre_key, by_type_kv, pre)
        slowest: dict[str, int] = {}
        for i, x in prefill:
            slowest[t.rows[i].kv] = max(slowest.get(t.rows[i].kv, 0), x.latency_ns)
        dec_ok &= np.isin(kvs, list(slowest))
        cap_ub = capacity_units(t.batch, cycle_lb * osl)

        def dec(i: int) -> _Exact | None:
            lay = greedy_placement(t, i, memo=placed)
            if lay is None:
                return None
            ev = evaluate(t, i, lay, lim)
            if "memory" in ev.violated:
                return None
            cycle = int(t.pp[i]) * (ev.dec_stage_ns + int(t.dec_hop_ns[i]))
            if cycle > lim.tpot_ns:
                return None
            kv = kv_exact(i, lay)
            # and no faster than its GPUs' NICs take the prompts in (one per request, per DP group)
            cap = int(min(capacity_units(int(t.batch[i]), cycle * osl), capacity_units(t.rows[i].dp, kv)))
            return _Exact(cap, recv_key(kv, i), lay, 0, cycle, kv)

        # A decode pool's receive is a dominance key only where it can bind: above TTFT − the slowest kept prefill
        # pool of its KV precision (below it every prefill pool's latency + it fits); the key is monotone in the
        # transfer, so the rows' lower bounds bound it from below.
        room = {k: (None if ttft is None else ttft - v) for k, v in slowest.items()}

        def recv_key(kv: int, i: int) -> int:
            return 0 if ttft is None or kv <= room[t.rows[i].kv] else kv

        if ttft is None:
            recv_lb = zero
        else:
            limit = np.full(len(t), -1, np.int64)
            for k, r in room.items():
                limit[kvs == k] = r
            recv_lb = np.where(kv_lb <= limit, 0, kv_lb)
        decode = _sweep(t.gpus, np.flatnonzero(dec_ok), cap_ub, recv_lb, by_type_kv, dec)
        dec_kv = {t.rows[i].kv for i, _ in decode}
        pools += [pool(i, "prefill", x) for i, x in prefill if t.rows[i].kv in dec_kv]
        pools += [pool(i, "decode", x) for i, x in decode]
    return pools


# ---- floating-point re-estimates, for verifying a chosen fleet ------------------------------------------------------
def estimate_pool(model: ModelSpec, pool: Pool, workload: Workload, p: PerfParams):
    """`perf.estimate` of the pool's replica (batch = pp for prefill pools: one prompt per micro-batch)."""
    from ..perf.estimate import Config, estimate

    r = pool.row
    cfg = Config(gpu=r.gpu, tp=r.tp, pp=r.pp, ep=r.ep, batch=r.pp * r.dp if pool.role == "prefill" else r.batch,
                 weights=r.weights, kv=r.kv, layers_per_stage=pool.layers, dp=r.dp)
    return estimate(model, cfg, Workload(workload.isl, workload.osl), p)


def prefill_period_s(model: ModelSpec, pool: Pool, workload: Workload, p: PerfParams) -> float:
    """Seconds between prompts leaving a pipelined prefill replica: slowest prefill stage + stage hop (floating
    point, from the same `perf` functions as `estimate`)."""
    from ..perf.estimate import hardware, step_terms
    from ..perf.pipeline import stage_kind_times_s
    from ..perf.step import kind_models, stage_kind_counts
    from ..specs.cluster import pipeline_link_bytes_per_s

    r = pool.row
    p = p.for_gpu(r.gpu.id, r.gpu.family)
    # one layer of each kind (perf.step.kind_models), each stage timed by the kinds it holds
    ts = [step_terms(km, hardware(r.gpu, r.weights, r.tp, r.dp), p, tp=r.tp, ep=r.ep,
                     weight_bytes=BYTES_PER_ELEMENT[r.weights], kv_bytes=BYTES_PER_ELEMENT[r.kv], micro_batch=r.dp,
                     isl=workload.isl, osl=workload.osl, dp=r.dp,
                     pipeline_link_bytes_per_s=pipeline_link_bytes_per_s(r.gpu, r.tp * r.dp, r.pp))
          for _, _, km in kind_models(model)]
    t = ts[0]
    stages = stage_kind_times_s(stage_kind_counts(model, pool.layers), [float(k.prefill_layer.time_s) for k in ts],
                                float(t.prefill_first.time_s), float(t.prefill_last.time_s), p.step_overhead_s)
    return float(np.max(stages)) + (float(t.prefill_p2p_s) if r.pp > 1 else 0.0)


def replica_requests_per_s(model: ModelSpec, pool: Pool, workload: Workload, e, p: PerfParams) -> float:
    """Requests/s one replica of the pool serves, in floating point, from its estimate `e` (`estimate_pool`):
    aggregated output tokens/s / OSL; decode B / (decode cycle · OSL); prefill DP / `prefill_period_s` (one prompt
    per attention-DP group). A prefill or decode replica also moves each request's KV cache through its NICs
    (each GPU its share, `pool_kv_transfer_s` t_kv per prompt, one prompt at a time per DP group): at most
    DP / t_kv requests/s. The transfer overlaps the compute (RDMA from a background thread: SGLang's
    "Non-blocking Transfer", LMSYS large-scale-EP blog), so the smaller of the two rates holds; it binds only
    where outputs are short (a decode GPU of B sequences takes in B / (OSL · cycle) prompts/s)."""
    if pool.role == "aggregated":
        return e.output_tokens_per_s / workload.osl
    nic = pool.row.dp / pool_kv_transfer_s(model, pool, workload.isl, p)
    if pool.role == "decode":
        return min(pool.row.batch / (e.decode_cycle_s * workload.osl), nic)
    return min(pool.row.dp / prefill_period_s(model, pool, workload, p), nic)


def kv_transfer_s(model: ModelSpec, kv: str, scale_out_bytes_per_s: float, isl: int, p: PerfParams, tp: int = 1,
                  stage_layers: int | None = None) -> float:
    """`kv_transfer_ns` in floating point seconds."""
    bytes_ = float(kv_transfer_bytes_per_gpu(model, BYTES_PER_ELEMENT[kv], isl, tp, stage_layers))
    return float(p2p_time_s(bytes_, scale_out_bytes_per_s, p.link_efficiency, p.p2p_latency_s))


def pool_kv_transfer_s(model: ModelSpec, pool: Pool, isl: int, p: PerfParams) -> float:
    """`kv_transfer_s` of one pool's side: its GPU's NIC, its TP degree and its largest stage."""
    return kv_transfer_s(model, pool.kv, pool.row.gpu.scale_out_bytes_per_s, isl, p, pool.row.tp,
                         max(pool.layers) if pool.layers else None)


def pair_kv_transfer_s(model: ModelSpec, prefill: Pool, decode: Pool, isl: int, p: PerfParams) -> float:
    """A prompt's KV transfer from a prefill pool to a decode pool, s: the slower side (`compatible`)."""
    return max(pool_kv_transfer_s(model, prefill, isl, p), pool_kv_transfer_s(model, decode, isl, p))


def candidate_pools(req: FleetRequest, p: PerfParams) -> list[Pool]:
    """Every class's non-dominated pools over the grid (the request's micro-batches, else the grid's; dominance
    within a GPU type only, so any subset of types stays exact). `fleet.pool_space.candidate_pools` takes every
    micro-batch where the request pins none."""
    gpus = [o.gpu for o in req.offers]
    limits = {o.gpu.id: o.available for o in req.offers if o.available is not None}
    out: list[Pool] = []
    for c, cl in enumerate(req.classes):
        out += class_pools(c, req.model, cl.workload, cl.slo, gpus, p, roles=roles_of(req.disaggregation),
                           weights=req.weights, kv=req.kv, pp=req.pp or DEFAULT_PP,
                           micro_batches=req.micro_batches or DEFAULT_MICRO_BATCHES, tp=req.tp,
                           max_gpus_per_type=limits, engine=req.engine)
    return out
