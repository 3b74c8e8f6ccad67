"""The fleet's derived quantities, each written once (planner/fleet/pools.py, table.py, verify.py) and used by the
integer semantics, the oracle, the warm start, the floating-point verification and the result: per-role capacity,
demand served, one pool's hourly cost and the monthly cost, checked against hand computations."""
from __future__ import annotations

import pytest

from planner.fleet.pools import capacity_by_role, replica_cost, replica_requests_per_s, served
from planner.fleet.verify import usd_per_month
from planner.units import HOURS_PER_MONTH

from .conftest import pool, table

AGG = pool(0, "aggregated", "h100-sxm", 2, 10)
PRE = pool(0, "prefill", "h100-sxm", 1, 30)
DEC = pool(0, "decode", "a100-80gb", 4, 20)
OTHER = pool(1, "aggregated", "h100-sxm", 1, 7)


def test_capacity_by_role_sums_capacity_times_replicas_of_the_class_only():
    cap = capacity_by_role([(AGG, 10, 3), (PRE, 30, 1), (DEC, 20, 2), (OTHER, 7, 5), (AGG, 2.5, 2)], 0)
    assert cap == {"aggregated": 3 * 10 + 2 * 2.5, "prefill": 30, "decode": 40}
    assert capacity_by_role([(OTHER, 7, 5)], 0) == {"aggregated": 0, "prefill": 0, "decode": 0}


def test_served_is_aggregated_plus_the_slower_disaggregated_half():
    assert served({"aggregated": 35, "prefill": 30, "decode": 40}) == 65
    assert served({"aggregated": 0, "prefill": 50, "decode": 0}) == 0  # prefill alone serves nobody


def test_replica_cost_pays_reserved_replicas_at_the_reserved_price():
    # 4 GPUs per replica, 5 replicas of which 2 reserved: 4 · (2 · 1.5 + 3 · 2.0) = 36 $/hour
    assert replica_cost(4, 1.5, 2.0, 2, 5) == pytest.approx(36.0)
    assert replica_cost(4, None, 2.0, 0, 5) == 40.0  # no reserved price
    assert replica_cost(2, 7, 11, 1, 1) == 14  # integer price units stay integers


def test_table_hour_cost_serves_and_availability():
    ft = table([AGG, PRE, DEC], [[50, 0]], od={"h100-sxm": 100, "a100-80gb": 60}, res={"h100-sxm": 70},
               avail={"a100-80gb": 8})
    # AGG: 2 GPUs × (70·1 + 100·(3−1)) = 540; PRE: 1 × 100 · 2 = 200; DEC: 4 × 60 · 2 = 480
    assert ft.hour_cost_1e4_usd([1, 0, 0], [3, 2, 2]) == 540 + 200 + 480
    # 3·10 + min(2·30, 2·20) = 70 ≥ 50 in hour 0; 1·10 + min(1·30, 0) = 10 < 50
    assert ft.serves([3, 2, 2], 0, 0) and not ft.serves([1, 1, 0], 0, 0) and ft.serves([0, 0, 0], 0, 1)
    a100 = ft.types.index("a100-80gb")
    assert ft.within_availability([0, 0, 2], a100) and not ft.within_availability([0, 0, 3], a100)
    assert ft.within_availability([99, 99, 0], ft.types.index("h100-sxm"))  # no limit


def test_usd_per_month_is_the_hourly_mean_over_a_month():
    assert usd_per_month([10.0, 30.0]) == pytest.approx(20.0 * HOURS_PER_MONTH)


class _Estimate:
    output_tokens_per_s = 600.0
    decode_cycle_s = 0.025


def test_replica_requests_per_s_by_role():
    from planner.catalog import load_model
    from planner.specs.workload import Workload

    m, w, e = load_model("llama-3.1-8b"), Workload(1000, 300), _Estimate()
    assert replica_requests_per_s(m, AGG, w, e, None) == pytest.approx(600.0 / 300)  # output tok/s ÷ OSL
    # decode: batch ÷ (cycle · OSL); the synthetic rows have batch 1
    assert replica_requests_per_s(m, DEC, w, e, None) == pytest.approx(1 / (0.025 * 300))
