"""planner/fleet/result.py, verify.py and search.py through `planner.api.fleet`: the typed result and its JSON, the
floating-point verification, and the comparison with single-type fleets (a mixed fleet is never dearer)."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner import api
from planner.fleet import request_from_dict, verify
from planner.fleet.search import search
from planner.fleet.table import FleetSolution
from planner.units import HOURS_PER_MONTH

from .conftest import CHAT, LONG, small_request

DAY = [1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 10, 10, 10, 10, 10, 9, 8, 6, 5, 4, 3, 2, 1, 1]


# ---- the result ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def day_result():
    doc = small_request([{**CHAT, "rate_rps": 4, "profile": DAY}, {**LONG, "rate_rps": 0.3}],
                        available={"h100-sxm": 4}, on_demand_tier="list",
                        prices={"a100-80gb": {"reserved": 1.6}})
    return api.fleet(doc)


def test_result_is_consistent(day_result):
    r = day_result
    d = r.to_dict()
    H = r.hours
    assert H == 24 and d["kind"] == "fleet" and d["schema_version"] == 1
    # GPUs per type per hour = Σ pools' replicas × GPUs per replica, within availability
    for t, per_hour in r.gpus_per_hour.items():
        assert list(per_hour) == [sum(p.replicas[h] * p.gpus_per_replica for p in r.pools if p.gpu == t)
                                  for h in range(H)]
    assert max(r.gpus_per_hour.get("h100-sxm", [0])) <= 4
    # cost: reserved replicas every hour + the rest at on-demand prices; month = mean hour × 730
    for h in range(H):
        usd = 0.0
        for p in r.pools:
            price = r.prices[p.gpu]
            usd += p.gpus_per_replica * (p.reserved * (price["reserved_usd_per_hour"] or 0)
                                         + (p.replicas[h] - p.reserved) * price["on_demand_usd_per_hour"])
        assert r.usd_per_hour[h] == pytest.approx(usd)
    assert r.usd_per_month == pytest.approx(sum(r.usd_per_hour) / H * HOURS_PER_MONTH)
    assert sum(sum(c.usd_per_hour) for c in r.classes) == pytest.approx(sum(r.usd_per_hour))
    # each class's capacity covers its demand every hour; utilization and idle GPUs are within range
    for c in r.classes:
        for h in range(H):
            by = {role: sum(p.requests_per_s_per_replica * p.replicas[h] for p in r.pools
                            if p.cls == c.name and p.role == role) for role in ("aggregated", "prefill", "decode")}
            assert by["aggregated"] + min(by["prefill"], by["decode"]) >= c.rate_rps[h] * (1 - 1e-9)
    assert all(0 <= u <= 1 for u in r.utilization)
    for t, idle in r.idle_gpus_per_hour.items():
        assert all(0 <= x <= g + 1e-9 for x, g in zip(idle, r.gpus_per_hour[t]))
    # the demand swings 10x over the day: some replicas are bought by the hour
    assert any(min(p.replicas) != max(p.replicas) for p in r.pools)
    json.dumps(d)


def test_json_is_repeatable_without_timings(day_result):
    d = day_result.to_dict()
    assert "wall_s" not in d["solver"]
    assert d["solver"]["space"] == "grid"  # the pools are rows of the PP list and the grid's micro-batches
    doc = small_request([{**CHAT, "rate_rps": 4, "profile": DAY}, {**LONG, "rate_rps": 0.3}],
                        available={"h100-sxm": 4}, on_demand_tier="list", prices={"a100-80gb": {"reserved": 1.6}})
    assert json.dumps(api.fleet(doc).to_dict()) == json.dumps(d)


def test_verify_catches_a_fleet_that_misses_demand(catalog):
    req, cat = request_from_dict(small_request([{**CHAT, "rate_rps": 20}], gpus=["h100-sxm"]))
    s = search(req, cat.perf)
    assert verify(req, s.best, cat.perf) == []
    sol = s.best.solution
    short = replace(s.best, solution=FleetSolution(tuple(0 for _ in sol.reserved),
                                                   tuple(tuple(0 for _ in row) for row in sol.counts),
                                                   0, "FEASIBLE", 0.0, 0.0))
    assert any("served" in v for v in verify(req, short, cat.perf))


# ---- mixed vs single type -----------------------------------------------------------------------------------------
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chat=st.floats(0.5, 40), long_=st.floats(0.05, 3), cap=st.one_of(st.none(), st.integers(1, 8)))
def test_mixed_fleet_is_never_dearer_than_the_best_single_type(chat, long_, cap):
    doc = small_request([{**CHAT, "rate_rps": round(chat, 2)}, {**LONG, "rate_rps": round(long_, 3)}],
                        time_limit_s=2, **({} if cap is None else {"available": {"h100-sxm": cap}}))
    try:
        r = api.fleet(doc)
    except Exception as e:  # noqa: BLE001 - an infeasible draw (availability) proves nothing here
        assert type(e).__name__ == "InfeasibleError"
        return
    cmp = r.comparison
    singles = [v for v in cmp["single_type_usd_per_month"].values() if v is not None]
    assert singles, cmp
    assert r.usd_per_month <= min(singles) * (1 + 1e-9)
    assert cmp["mixed_saving_usd_per_month"] >= -1e-6


def test_mixed_fleet_is_strictly_cheaper_when_the_classes_differ():
    """examples/fleet-chat-and-summarize.toml: fast chat is cheapest on A100-40GB, long summarization needs the
    80 GB part's memory for its decode KV cache: the mixed fleet saves money, and the saving is reported."""
    from pathlib import Path

    r = api.fleet(Path(__file__).resolve().parents[2] / "examples" / "fleet-chat-and-summarize.toml")
    cmp = r.comparison
    best = cmp["best_single_type_usd_per_month"]
    assert set(r.gpus_per_hour) == {"a100-40gb", "a100-80gb"}
    assert r.usd_per_month < best * 0.97  # at least 3 % cheaper
    assert cmp["mixed_saving_usd_per_month"] == pytest.approx(best - r.usd_per_month, rel=1e-5)
    assert cmp["mixed_saving_fraction"] == pytest.approx((best - r.usd_per_month) / best, rel=1e-5)
    assert r.solver["status"] == "OPTIMAL"
    by_class = {c: {p.gpu for p in r.pools if p.cls == c and p.role == "decode"} for c in ("chat", "summarize")}
    assert by_class == {"chat": {"a100-40gb"}, "summarize": {"a100-80gb"}}
