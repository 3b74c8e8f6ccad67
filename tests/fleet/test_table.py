"""planner/fleet/table.py: exact pruning of dominated pools, its knapsack, equal-demand hour groups and the
integer reference semantics (`check`), on pools small enough to reason about by hand."""
from __future__ import annotations

from planner.fleet.table import _knapsack, check, prune

from .conftest import pool, table

OD = {"h100-sxm": 100, "a100-80gb": 150}
RES = {"h100-sxm": None, "a100-80gb": None}
NO_LIMIT = {"h100-sxm": None, "a100-80gb": None}


def test_knapsack_most_capacity_within_a_gpu_count():
    assert _knapsack([(1, 10), (2, 25)], 4) == 50  # two 2-GPU items beat 25 + 10 + 10
    assert _knapsack([(1, 10), (2, 25)], 3) == 35
    assert _knapsack([(3, 40)], 2) == 0


def test_a_pool_that_copies_of_a_smaller_same_type_pool_match_is_dropped():
    one = pool(0, "aggregated", "h100-sxm", 1, 10)
    two_weak = pool(0, "aggregated", "h100-sxm", 2, 18)  # 2 x one = 20 >= 18 in the same 2 GPUs
    two_strong = pool(0, "aggregated", "h100-sxm", 2, 25)
    assert prune([one, two_weak], OD, RES, NO_LIMIT) == [one]
    assert prune([one, two_strong], OD, RES, NO_LIMIT) == [one, two_strong]


def test_another_type_dominates_only_at_no_higher_price_and_without_an_availability_limit():
    a100 = pool(0, "aggregated", "a100-80gb", 1, 30)  # 150 per replica-hour
    weak_h100 = pool(0, "aggregated", "h100-sxm", 2, 20)  # one A100 replica serves it for 150 <= 200
    strong_h100 = pool(0, "aggregated", "h100-sxm", 2, 50)  # needs 2 A100 replicas: 300 > 200
    assert prune([a100, weak_h100], OD, RES, NO_LIMIT) == [a100]
    assert prune([a100, strong_h100], OD, RES, NO_LIMIT) == [a100, strong_h100]
    limited = {**NO_LIMIT, "a100-80gb": 4}
    assert prune([a100, weak_h100], OD, RES, limited) == [a100, weak_h100]  # A100s may run out
    # a reserved H100 replica (60/GPU-hour: 120) is cheaper than the A100 held all period (150): kept
    assert prune([a100, weak_h100], OD, {**RES, "h100-sxm": 60}, NO_LIMIT) == [a100, weak_h100]
    # other classes and roles never dominate each other
    assert len(prune([a100, pool(1, "aggregated", "h100-sxm", 2, 20)], OD, RES, NO_LIMIT)) == 2


def test_hours_with_equal_demand_are_grouped_in_first_seen_order():
    ft = table([pool(0, "aggregated", "h100-sxm", 1, 10)], [[5, 7, 5, 7]], od={"h100-sxm": 100})
    assert ft.hour_groups() == [((5,), [0, 2]), ((7,), [1, 3])]


def test_check_prices_a_fleet_and_names_every_broken_constraint():
    p = pool(0, "aggregated", "h100-sxm", 2, 10)
    ft = table([p], [[10, 30]], od={"h100-sxm": 100}, res={"h100-sxm": 70}, avail={"h100-sxm": 6}, budget_hour=540)
    ok = check(ft, [1], [[1, 3]])
    # hour 0: 2 GPUs x 70 = 140; hour 1: 2 x (70 + 2 x 100) = 540, just within the hourly budget
    assert ok.feasible and ok.violated == ()
    assert ok.hourly_cost_1e4_usd == (140, 540) and ok.objective == 680
    bad = check(ft, [2], [[1, 4]])  # hour 1: 8 GPUs > 6, and 2 x (2 x 70 + 2 x 100) = 680 > 540
    assert not bad.feasible
    assert set(bad.violated) == {"pool 0: fewer replicas than reserved", "hour 1: h100-sxm availability",
                                 "hour 1: budget"}
    short = check(ft, [0], [[1, 2]])
    assert short.violated == ("hour 1: class 0 demand",)
