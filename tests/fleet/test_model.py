"""planner/fleet/ (table, model, oracle): the CP-SAT fleet model against its exhaustive oracle, and the integer semantics
(`check`) of demand, reserved replicas, availability, budgets and prefill/decode pairing."""
from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner import api
from planner.errors import InfeasibleError
from planner.fleet import request_from_dict
from planner.search.cpsat import SolverSettings
from planner.fleet.model import solve
from planner.fleet.oracle import exhaustive
from planner.fleet.pools import candidate_pools
from planner.fleet.search import optimize
from planner.fleet.table import check, fleet_table

from .conftest import CHAT, LONG, pool, small_request, table

FAST = SolverSettings(time_limit_s=20.0)


@st.composite
def small_tables(draw):
    """1-2 classes, 1-3 hours, 2-4 pools on 1-2 types, small capacities and demands, optional reserved prices,
    availability, budgets and incompatible prefill/decode pairs: few enough states for the oracle."""
    classes = draw(st.integers(1, 2))
    hours = draw(st.integers(1, 3))
    types = ["h100-sxm", "a100-80gb"][: draw(st.integers(1, 2))]
    pools = []
    for c in range(classes):
        if draw(st.booleans()) or classes == 1 and not pools:
            pools.append(pool(c, "aggregated", draw(st.sampled_from(types)), draw(st.sampled_from([1, 2])),
                              draw(st.integers(2, 6))))
        if draw(st.booleans()) or not any(p.cls == c for p in pools):
            for role in ("prefill", "decode"):
                pools.append(pool(c, role, draw(st.sampled_from(types)), draw(st.sampled_from([1, 2])),
                                  draw(st.integers(2, 8))))
    pools = pools[:4]
    demand = [[draw(st.integers(0, 9)) for _ in range(hours)] for _ in range(classes)]
    od = {t: draw(st.integers(2, 9)) for t in types}
    res = {t: draw(st.one_of(st.none(), st.integers(1, 9))) for t in types}
    avail = {t: draw(st.one_of(st.none(), st.integers(0, 6))) for t in types}
    pre = [i for i, p in enumerate(pools) if p.role == "prefill"]
    dec = [i for i, p in enumerate(pools) if p.role == "decode"]
    bad = [(i, j) for i in pre for j in dec if pools[i].cls == pools[j].cls and draw(st.booleans())]
    budget_hour = draw(st.one_of(st.none(), st.integers(5, 60)))
    budget_total = draw(st.one_of(st.none(), st.integers(10, 150)))
    return table(pools, demand, od, res, avail, budget_hour, budget_total, bad)


def _capped(ft):
    return [min(b, 2) for b in ft.max_replicas]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_tables())
def test_cp_sat_equals_exhaustive_on_small_tables(ft):
    ft.max_replicas = _capped(ft)  # keeps the oracle's space small; both see the same bounds
    oracle = exhaustive(ft)
    sol = solve(ft, FAST)
    if oracle is None:
        assert sol is None
        return
    assert sol is not None and sol.status == "OPTIMAL"
    assert sol.objective == oracle[0]
    c = check(ft, sol.reserved, sol.counts)
    assert c.feasible, c.violated
    assert c.objective == sol.objective
    assert check(ft, oracle[1], oracle[2]).objective == oracle[0]


def _real_table(rates, **top):
    """A two-class Llama-3.1-8B request whose classes have the given hourly rates (any number of hours)."""
    req, cat = request_from_dict(small_request([{**CHAT, "rate_rps": 1}, {**LONG, "rate_rps": 1}], **top))
    req = replace(req, classes=tuple(replace(c, rate_rps=tuple(r)) for c, r in zip(req.classes, rates)))
    return req, cat, candidate_pools(req, cat.perf)


@pytest.mark.parametrize("rates,top", [
    # (chat at 15-45 req/s: the most 7 GPUs at TP1 serve under the calibrated perf model)
    ([[15, 45], [1, 2]], {"disaggregation": "off", "available": {"h100-sxm": 2, "a100-80gb": 5}}),
    ([[30, 80, 10], [0, 0, 0]], {"gpus": ("h100-sxm",), "available": {"h100-sxm": 6}}),
], ids=["two-types-aggregated", "one-type-disaggregated"])
def test_optimize_equals_exhaustive_on_small_real_requests(rates, top):
    req, _, pools = _real_table(rates, tp=[1], pp=[1], **top)
    fleet = optimize(req, pools)
    ft = fleet.table
    oracle = exhaustive(ft, max_states=5_000_000)
    assert fleet.solution.status == "OPTIMAL"
    assert fleet.solution.objective == oracle[0]
    assert len({p.gpu for p in ft.pools}) == len(req.offers)  # both types (and, second case, all roles) in play
    if top.get("disaggregation") != "off":
        assert {p.role for p in ft.pools} == {"aggregated", "prefill", "decode"}


def test_pruning_keeps_the_optimum():
    """Dominance pruning (within a type, across unlimited types, whole KV precisions) is exact."""
    # two KV precisions, so that whole-precision dominance has something to prune (with one, the calibrated model
    # of planner/perf leaves no pool of this request dominated)
    req, _, pools = _real_table([[2, 5, 1], [0.3, 0.1, 0.05]], available={"a100-80gb": 6}, kv=["fp8", "int8"])
    pruned = fleet_table(req, pools)
    full = fleet_table(req, pools, prune_pools=False)
    assert len(pruned.pools) < len(full.pools)
    a, b = solve(pruned, FAST), solve(full, FAST)
    assert a.status == b.status == "OPTIMAL"
    assert a.objective == b.objective


def test_constant_demand_is_reserved_and_a_spike_is_bought_by_the_hour():
    p = pool(0, "aggregated", "h100-sxm", 1, 10)
    # reserved at 6 vs on-demand 10 per GPU-hour: hold the base (2 replicas) all day, buy the third at the spike
    ft = table([p], [[20, 20, 30]], {"h100-sxm": 10}, {"h100-sxm": 6})
    sol = solve(ft, FAST)
    assert sol.reserved == (2,) and sol.counts == ((2, 2, 3),)
    assert sol.objective == 3 * 2 * 6 + 10
    # reserved dearer than 2/3 of on-demand for a replica used 2 hours in 3: keep it on demand
    ft = table([p], [[20, 20, 0]], {"h100-sxm": 10}, {"h100-sxm": 7})
    assert solve(ft, FAST).reserved == (0,)


def test_availability_forces_the_second_type():
    a, b = pool(0, "aggregated", "h100-sxm", 1, 10), pool(0, "aggregated", "a100-80gb", 1, 4)
    ft = table([a, b], [[50]], {"h100-sxm": 10, "a100-80gb": 6}, avail={"h100-sxm": 3})
    sol = solve(ft, FAST)
    assert sol.counts[0][0] == 3 and sol.counts[1][0] == 5  # 30 + 20 ≥ 50
    assert not check(ft, (0, 0), ((5,), (0,))).feasible  # 5 H100s exceed the 3 available


def test_disaggregated_demand_needs_both_halves_and_pairable_pools():
    pre, dec, dec2 = (pool(0, "prefill", "h100-sxm", 1, 10), pool(0, "decode", "h100-sxm", 1, 5),
                      pool(0, "decode", "a100-80gb", 1, 6))
    ft = table([pre, dec, dec2], [[10]], {"h100-sxm": 10, "a100-80gb": 7}, incompatible=[(0, 2)])
    sol = solve(ft, FAST)
    assert sol.counts == ((1,), (2,), (0,))  # the cheaper A100 decode cannot take this prefill's KV
    c = check(ft, (0, 0, 0), ((1,), (0,), (2,)))
    assert not c.feasible and any("cannot pair" in v for v in c.violated)
    assert not check(ft, (0, 0, 0), ((0,), (2,), (0,))).feasible  # decode without prefill serves nothing


def test_budgets_bind_or_make_the_request_infeasible():
    p = pool(0, "aggregated", "h100-sxm", 1, 10)
    assert solve(table([p], [[30]], {"h100-sxm": 10}, budget_hour=29), FAST) is None
    assert solve(table([p], [[30, 10]], {"h100-sxm": 10}, budget_total=39), FAST) is None
    assert solve(table([p], [[30, 10]], {"h100-sxm": 10}, budget_total=40), FAST).objective == 40


def test_search_explains_a_budget_it_cannot_meet():
    doc = small_request([{**CHAT, "rate_rps": 5}], budget_usd_per_month=100)
    with pytest.raises(InfeasibleError) as e:
        api.fleet(doc)
    assert any(r.startswith("budget:") for r in e.value.reasons)


def test_search_explains_availability_and_slos():
    doc = small_request([{**CHAT, "rate_rps": 500}], available={"h100-sxm": 1, "a100-80gb": 1})
    with pytest.raises(InfeasibleError) as e:
        api.fleet(doc)
    assert any("availability" in r and "'chat'" in r for r in e.value.reasons)
    doc = small_request([{**CHAT, "rate_rps": 1, "min_tokens_per_s_user": 5000}])
    with pytest.raises(InfeasibleError) as e:
        api.fleet(doc)
    assert any("no configuration" in r for r in e.value.reasons)


def test_hours_with_equal_demand_share_variables():
    p = pool(0, "aggregated", "h100-sxm", 1, 10)
    ft = table([p], [[20, 30, 20, 30]], {"h100-sxm": 10})
    assert [h for _, h in ft.hour_groups()] == [[0, 2], [1, 3]]
    assert solve(ft, FAST).counts == ((2, 3, 2, 3),)


def test_time_limit_is_a_deterministic_budget():
    req, _, pools = _real_table([[3, 6, 2], [0.2, 0.1, 0.3]])
    a = optimize(req, pools, time_limit_s=0.5)
    b = optimize(replace(req), pools, time_limit_s=0.5)
    assert a.solution.counts == b.solution.counts and a.solution.objective == b.solution.objective
