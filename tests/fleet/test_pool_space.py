"""planner/fleet/pool_space.py: the pools over the exact integer space (every PP depth, TP degree and micro-batch
memory allows) agree with an exhaustive oracle, the grid sweep of `class_pools` over a table of every row of that
space, on small random instances (reduced-layer models, small GPUs: tests/search/instances.py): the same best
pool per role, GPU type (and KV precision) and cost per request/s, and the same disaggregated pair
(`disagg.best_pair`), with and without a demand."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from planner.disagg import best_pair, demand_units_of, pair_unit_cap
from planner.fleet.pool_space import decode_evaluation, decode_table, exact_pools, pool_request, prefill_evaluation
from planner.fleet.pools import class_pools
from planner.search.bounds import build_space
from planner.search.table import Limits, evaluate

from tests.search.instances import CATALOG, exact_requests

ORACLE_ROWS = 400  # rows of the exhaustive table (every shape × every micro-batch memory allows)
ROLE_SETS = (("prefill", "decode"), ("aggregated",), ("aggregated", "prefill", "decode"))


def _oracle_table(req):
    """Every (shape, micro-batch) of the exact space up to where memory ends, tabulated."""
    p = CATALOG.perf
    sp = build_space(req, p)
    s = np.repeat(np.arange(len(sp)), sp.top)
    if len(s) == 0 or len(s) > ORACLE_ROWS:
        return None
    pos = np.concatenate([np.arange(k) for k in sp.top]).astype(np.int64)
    return sp.table(s, pos, p)


def _pools(req, roles, table=None):
    if table is None:
        return exact_pools(0, pool_request(req.model, req.workload, req.slo, req.gpus, weights=req.weights,
                                           kv=req.kv, max_gpus_per_type=req.max_gpus_per_type), CATALOG.perf, roles)
    return class_pools(0, req.model, req.workload, req.slo, req.gpus, CATALOG.perf, roles=roles,
                       weights=req.weights, kv=req.kv, max_gpus_per_type=req.max_gpus_per_type, table=table)


def _best(pools) -> dict[tuple, float]:
    """Per (role, GPU type, KV precision of the disaggregated roles), the least GPU-hours per request/s."""
    out: dict[tuple, float] = {}
    for x in pools:
        key = (x.role, x.gpu, None if x.role == "aggregated" else x.kv)
        v = x.gpus / x.capacity
        out[key] = min(out.get(key, v), v)
    return out


PROPERTY = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@PROPERTY
@given(req=exact_requests())
def test_exact_pools_equal_the_oracle_over_every_row(req):
    # the GPU limit per type, as disagg.candidate_pools passes it
    req = replace(req, max_gpus=None, max_gpus_per_type={g.id: req.max_gpus for g in req.gpus})
    table = _oracle_table(req)
    assume(table is not None)
    event("moe" if req.model.is_moe else "dense")
    for roles in ROLE_SETS:
        got, ref = _pools(req, roles), _pools(req, roles, table)
        assert _best(got) == _best(ref), roles
        for x in got:  # every kept pool is a row of the space, within the limits its role needs
            assert x.row.pp * x.row.micro_batch == x.row.batch and sum(x.layers) == req.model.num_layers
            if x.role == "decode":
                assert x.tpot_ns <= Limits.of(req, 1).tpot_ns
        if roles == ("prefill", "decode"):
            event("pair" if any(x.role == "decode" for x in ref) else "no pair")
            for demand in (None, 2.0):
                r = replace(req, workload=replace(req.workload, rate_rps=demand, output_tokens_per_s=None))
                a = best_pair(r, got, CATALOG.perf.max_batch)[0]
                b = best_pair(r, ref, CATALOG.perf.max_batch)[0]
                assert (a is None) == (b is None)
                if a is not None:
                    assert a[4] == b[4]  # the same objective


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(req=exact_requests(), data=st.data())
def test_decode_and_prefill_evaluations_are_evaluate_s(req, data):
    """pool_space's lean evaluations (decode / prefill stage, memory) equal `table.evaluate`'s on the same rows
    and placements, and a decode table (decode and memory terms only) gives the full table's numbers."""
    table = _oracle_table(req)
    assume(table is not None)
    lim = Limits.of(req, 1)
    for i in data.draw(st.lists(st.integers(0, len(table) - 1), min_size=1, max_size=6)):
        pp = int(table.pp[i])
        cuts = sorted(data.draw(st.lists(st.integers(1, table.num_layers - 1), min_size=pp - 1, max_size=pp - 1,
                                         unique=True))) if pp > 1 else []
        lay = [b - a for a, b in zip([0] + cuts, cuts + [table.num_layers])]
        ev = evaluate(table, i, lay, lim)
        assert decode_evaluation(table, i, lay) == (ev.dec_stage_ns, "memory" not in ev.violated)
        assert prefill_evaluation(table, i, lay) == (ev.pf_stage_ns, "memory" not in ev.violated)
        r = table.rows[i]
        sp = build_space(req, CATALOG.perf)
        s = next(k for k, x in enumerate(sp.shapes) if (x.gpu.id, x.weights, x.kv, x.tp, x.pp, x.ep, x.dp)
                 == (r.gpu.id, r.weights, r.kv, r.tp, r.pp, r.ep, r.dp))
        d = decode_table(req, sp.terms, np.array([s]), np.array([r.micro_batch]), CATALOG.perf)
        assert decode_evaluation(d, 0, lay) == (ev.dec_stage_ns, "memory" not in ev.violated)


def _pair_key(found):
    """(objective, GPUs) of best_pair's pair: what the plan is, whatever the pools' indices."""
    a, d, n_p, n_d, obj = found
    return obj, n_p * a.gpus + n_d * d.gpus


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(req=exact_requests(), incumbent=st.sampled_from(["optimum", "one GPU type", "seed"]))
def test_pair_bound_pruning_keeps_the_pair(req, incumbent):
    """exact_pools pruned by the pair bound gives best_pair the same objective and GPUs as the unpruned pools, with
    and without a demand (the bounds per demand unit then, as disagg.exact_space_pools asks for them), under a cap
    from the optimum itself, from a weaker incumbent (the best pair of one GPU type's pools, as the grid's is a
    subset of the exact space), or (`cap_from`) from the pools of the shapes of least bound."""
    req = replace(req, max_gpus=None, max_gpus_per_type={g.id: req.max_gpus for g in req.gpus})
    roles = ("prefill", "decode")
    full = _pools(req, roles)
    preq = pool_request(req.model, req.workload, req.slo, req.gpus, weights=req.weights, kv=req.kv,
                        max_gpus_per_type=req.max_gpus_per_type)
    for demand in (None, 2.0):
        r = replace(req, workload=replace(req.workload, rate_rps=demand, output_tokens_per_s=None))
        ref = best_pair(r, full, CATALOG.perf.max_batch)[0]
        assume(ref is not None)
        kw = {"demand_units": demand_units_of(r)}
        if incumbent == "seed":
            def cap_from(seed):
                found = best_pair(r, seed, CATALOG.perf.max_batch)[0]
                event("seed pairs" if found else "seed pairs none")
                return None if found is None else pair_unit_cap(r, found[4])

            kw["cap_from"] = cap_from
        else:
            inc = ref
            if incumbent == "one GPU type":
                sub = [x for x in full if x.gpu == full[0].gpu] if full else []
                inc = best_pair(r, sub, CATALOG.perf.max_batch)[0] or ref
            kw["unit_cost_cap"] = pair_unit_cap(r, inc[4])
        pruned = exact_pools(0, preq, CATALOG.perf, roles, **kw)
        got = best_pair(r, pruned, CATALOG.perf.max_batch)[0]
        event("pruned some" if len(pruned) < len(full) else "pruned none")
        assert got is not None and _pair_key(got) == _pair_key(ref)


def test_pair_bound_pruning_bites():
    """A cap below every pool's cost per unit leaves no pool (the pruning is applied, not only computed)."""
    from hypothesis import find
    req = find(exact_requests(), lambda r: bool(_pools(replace(r, max_gpus=None, max_gpus_per_type={
        g.id: r.max_gpus for g in r.gpus}), ("prefill", "decode"))),
        settings=settings(max_examples=200, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
    req = replace(req, max_gpus=None, max_gpus_per_type={g.id: req.max_gpus for g in req.gpus})
    args = (0, pool_request(req.model, req.workload, req.slo, req.gpus, weights=req.weights, kv=req.kv,
                            max_gpus_per_type=req.max_gpus_per_type), CATALOG.perf, ("prefill", "decode"))
    assert exact_pools(*args) and not exact_pools(*args, unit_cost_cap=0.0)


def _unit(x) -> float:
    """A pool's cost per capacity unit as `disagg.best_pair` ranks pairs (GPUs × price units / capacity)."""
    return x.gpus * (-(-round(x.row.gpu.usd_per_hour * 10**4 * 10**6) // 10**6)) / x.capacity


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(req=exact_requests(), factor=st.floats(1.0, 3.0))
def test_pruning_keeps_every_pool_that_can_pair_under_the_cap(req, factor):
    """For any cap T (not only an incumbent's): every unpruned pool X whose cost per unit plus the cheapest pool's
    of the other role (and its KV precision) is within T has a pool of its role, GPU type and KV precision in the pruned list costing at
    most as much per unit. Fails if a capacity upper bound ever falls below a pool's exact capacity where it
    matters (the bounds under T are lower bounds on u, never above the tabulated value)."""
    req = replace(req, max_gpus=None, max_gpus_per_type={g.id: req.max_gpus for g in req.gpus})
    roles = ("prefill", "decode")
    full = _pools(req, roles)
    least = {r: min((_unit(x) for x in full if x.role == r), default=None) for r in roles}
    assume(None not in least.values())
    cap = factor * (least["prefill"] + least["decode"])
    # a prefill pool is kept only beside a decode pool of its KV precision (the pair's): the other role's
    # cheapest of the same KV precision
    least_kv = {}
    for x in full:
        k = (x.role, x.kv)
        least_kv[k] = min(least_kv.get(k, np.inf), _unit(x))
    pruned = exact_pools(0, pool_request(req.model, req.workload, req.slo, req.gpus, weights=req.weights, kv=req.kv,
                                         max_gpus_per_type=req.max_gpus_per_type), CATALOG.perf, roles,
                         unit_cost_cap=cap)
    other = {"prefill": "decode", "decode": "prefill"}
    must = [x for x in full if _unit(x) + least_kv.get((other[x.role], x.kv), np.inf) <= cap]
    event("pruned some" if len(pruned) < len(full) else "pruned none")
    for x in must:
        assert any(y.role == x.role and y.gpu == x.gpu and y.kv == x.kv and _unit(y) <= _unit(x) * (1 + 1e-12)
                   for y in pruned), (x.role, x.gpu, x.kv)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(req=exact_requests())
def test_unit_bounds_never_exceed_a_pool_s_cost_per_unit(req):
    """`UnitBounds` (what `pool_space` prunes shapes and groups by before any per-shape table): per shape and per
    group (over its depths), the prefill and decode bounds are at most the cost per unit (`_unit`) of every pool
    of that role the exhaustive oracle's table gives, and a shape with such a pool never gets inf; and the pair
    pruning built on them keeps best_pair's pair (test_pair_bound_pruning_keeps_the_pair)."""
    from planner.fleet.pool_space import UnitBounds, _Priced, _StandIns, pool_depths
    from planner.search.space import group_key

    req = replace(req, max_gpus=None, max_gpus_per_type={g.id: req.max_gpus for g in req.gpus})
    table = _oracle_table(req)
    assume(table is not None)
    roles = ("prefill", "decode")
    ref = _pools(req, roles, table)
    assume(ref)
    p = CATALOG.perf
    preq = pool_request(req.model, req.workload, req.slo, req.gpus, weights=req.weights, kv=req.kv,
                        max_gpus_per_type=req.max_gpus_per_type)
    lim = Limits.of(preq, p.max_batch)
    x = _StandIns.of(preq, p)
    depths = pool_depths(preq, p, lim, roles, x)
    deepest = np.array([depths.get(group_key(r), 0) for r in x.reps], np.int64)
    ub = UnitBounds(preq, p, lim, x, deepest)
    at = {group_key(r): k for k, r in enumerate(x.reps)}
    g = np.array([at[group_key(y.row)] for y in ref], np.int64)
    q = np.array([y.row.pp for y in ref], np.int64)
    shape_pre, shape_dec = ub.at(g, q, p)
    group_pre, group_dec = ub.groups(deepest, p)
    event("moe" if req.model.is_moe else "dense")
    for k, y in enumerate(ref):
        u = _unit(y) * (1 + 1e-12)
        bound = shape_pre[k] if y.role == "prefill" else shape_dec[k]
        assert q[k] <= deepest[g[k]]
        assert bound <= u and (group_pre if y.role == "prefill" else group_dec)[g[k]] <= bound * (1 + 1e-12), y
        event(f"{y.role} bound within {int(10 * bound / _unit(y))}/10 of u")
    # with a demand of D capacity units: never above what the pool's ⌈D/c⌉ replicas cost per demand unit
    for D in (300_000, 2_000_000, 7_500_000):
        priced = _Priced(preq, p, lim, x, depths, D)
        share_pre, share_dec = priced.per_demand(g, q, shape_pre), priced.per_demand(g, q, shape_dec)
        for k, y in enumerate(ref):
            share = _unit(y) * y.capacity * -(-D // y.capacity) / D * (1 + 1e-12)  # g·π·⌈D/c⌉ / D
            bound = share_pre[k] if y.role == "prefill" else share_dec[k]
            group = (priced.u_pre if y.role == "prefill" else priced.u_dec)[g[k]]
            assert group <= bound * (1 + 1e-12) and bound <= share, (D, y)
