"""planner/fleet/verify.py: a fleet's dollars per pool and hour, by hand from its replica counts and the request's
prices, the monthly mean, and the independent check catching a broken budget or availability."""
from __future__ import annotations

from dataclasses import replace

import pytest

from planner.fleet import request_from_dict
from planner.fleet.search import search
from planner.fleet.table import FleetSolution
from planner.fleet.verify import hourly_usd, pool_usd, usd_per_month, verify
from planner.units import HOURS_PER_MONTH

from .conftest import CHAT, small_request


@pytest.fixture(scope="module")
def solved():
    req, cat = request_from_dict(small_request([{**CHAT, "rate_rps": 6, "profile": [1] * 12 + [3] * 12}], gpus=["h100-sxm"],
                                               prices={"h100-sxm": {"reserved": 1.5}}))
    return req, cat, search(req, cat.perf).best


def _with_counts(fleet, reserved, counts):
    return replace(fleet, solution=FleetSolution(tuple(reserved), tuple(tuple(c) for c in counts), 0, "FEASIBLE",
                                                 0.0, 0.0))


def test_pool_dollars_pay_reserved_replicas_every_hour_at_the_reserved_price(solved):
    req, _, best = solved
    k = next(k for k, row in enumerate(best.solution.counts) if any(row))
    pools, hours = len(best.table.pools), best.table.hours
    reserved = [0] * pools
    counts = [[0] * hours for _ in range(pools)]
    reserved[k], counts[k] = 1, [1] + [3] * (hours - 1)  # one reserved replica; two more on demand after hour 0
    fleet = _with_counts(best, reserved, counts)
    g, o = best.table.pools[k].gpus, req.offer(best.table.pools[k].gpu)
    assert o.reserved_usd_per_hour == 1.5
    assert pool_usd(req, fleet, k, 0) == pytest.approx(g * 1.5)
    assert pool_usd(req, fleet, k, 1) == pytest.approx(g * (1.5 + 2 * o.on_demand_usd_per_hour))
    assert hourly_usd(req, fleet) == pytest.approx([g * 1.5] + [g * (1.5 + 2 * o.on_demand_usd_per_hour)] * (hours - 1))


def test_usd_per_month_is_the_mean_hour_times_730():
    assert usd_per_month([10.0, 30.0]) == pytest.approx(20.0 * 730) and HOURS_PER_MONTH == 730


def test_verify_passes_the_solver_fleet_and_catches_a_broken_budget_and_availability(solved):
    req, cat, best = solved
    assert verify(req, best, cat.perf) == []
    cheapest = min(hourly_usd(req, best))
    assert any("over the hourly budget" in v
               for v in verify(replace(req, budget_usd_per_hour=cheapest / 2), best, cat.perf))
    used = max(sum(best.table.pools[k].gpus * best.solution.counts[k][h] for k in range(len(best.table.pools)))
               for h in range(best.table.hours))
    offers = tuple(replace(o, available=used - 1) for o in req.offers)
    assert any(f"> {used - 1} available" in v for v in verify(replace(req, offers=offers), best, cat.perf))
