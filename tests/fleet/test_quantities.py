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

    from planner.perf.params import PerfParams

    m, w, e = load_model("llama-3.1-8b"), Workload(1000, 300), _Estimate()
    assert replica_requests_per_s(m, AGG, w, e, None) == pytest.approx(600.0 / 300)  # output tok/s ÷ OSL
    # decode: batch ÷ (cycle · OSL); the synthetic rows have batch 1 (their NICs take a prompt in ~3 ms: not binding)
    assert replica_requests_per_s(m, DEC, w, e, PerfParams()) == pytest.approx(1 / (0.025 * 300))


def test_short_outputs_bound_a_decode_replica_by_its_nic(catalog):
    """Llama-3.1-70B, 8000-token prompts with fp8 KV (8000 · 163,840 B = 1.31 GB each), one output token: a TP1
    decode replica of batch 512 at a 40 ms cycle would finish 512 / 0.04 = 12,800 requests/s, but its one NIC
    (40 GB/s at 80 %) takes a prompt in 1.31e9 / 40e9 + 15 µs = 32.78 ms: 30.5 requests/s. With TP4 (2 of the 8
    KV heads per GPU) each NIC takes a quarter, 4 × as many."""
    from planner.catalog import load_model
    from planner.fleet.pools import Pool
    from planner.search.space import Row
    from planner.specs.workload import Workload

    m, h100, perf = load_model("llama-3.1-70b"), catalog.gpu("h100-sxm"), catalog.perf
    w = Workload(8000, 1)
    e = _Estimate()
    e.decode_cycle_s = 0.04
    dec = Pool(0, "decode", Row(h100, "fp8", "fp8", 1, 1, 1, 512), (80,), 1, 0, 0, 0)
    t = 8000 * 163_840 / (50e9 * 0.8) + 15e-6
    assert replica_requests_per_s(m, dec, w, e, perf) == pytest.approx(1 / t)
    tp4 = Pool(0, "decode", Row(h100, "fp8", "fp8", 4, 1, 1, 512), (80,), 1, 0, 0, 0)
    assert replica_requests_per_s(m, tp4, w, e, perf) == pytest.approx(1 / ((t - 15e-6) / 4 + 15e-6))
    # with 2000 output tokens the cycle binds again: 512 / (0.04 · 2000) = 6.4 < 30.5 (at 300 tokens, 42.7, it
    # would not: the NIC still binds there)
    assert replica_requests_per_s(m, dec, Workload(8000, 2000), e, perf) == pytest.approx(512 / (0.04 * 2000))
    assert replica_requests_per_s(m, dec, Workload(8000, 300), e, perf) == pytest.approx(1 / t)
