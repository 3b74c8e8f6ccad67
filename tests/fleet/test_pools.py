"""planner/fleet/pools.py: candidate pools are sound (their integer capacity and latencies are conservative against
the floating-point `perf.estimate`), non-dominated within their group, and pair only when the KV transfer fits."""
from __future__ import annotations

import pytest

from planner.catalog import load_model
from planner.fleet.pools import (CAP_UNITS_PER_RPS, class_pools, compatible, estimate_pool, kv_transfer_ns,
                                  kv_transfer_s, prefill_period_s)
from planner.specs.workload import SLO, Workload

from .conftest import pool

W = Workload(1000, 300)
SLO_CHAT = SLO(ttft_s=0.5, tpot_s=0.02)


@pytest.fixture(scope="module")
def pools(catalog):
    m = load_model("llama-3.1-8b")
    return m, class_pools(0, m, W, SLO_CHAT, catalog.gpus("h100-sxm,a100-80gb"), catalog.perf,
                          weights=("fp8", "int8", "bf16"), kv=("fp8", "bf16"), pp=(1, 2))


def test_every_role_has_candidates(pools):
    _, ps = pools
    assert {p.role for p in ps} == {"aggregated", "prefill", "decode"}
    assert {p.gpu for p in ps} == {"h100-sxm", "a100-80gb"}


def test_integer_terms_are_conservative_against_perf_estimate(pools, catalog):
    m, ps = pools
    p = catalog.perf
    for x in ps:
        e = estimate_pool(m, x, W, p)
        assert e.fits
        if x.role == "aggregated":
            cap = e.output_tokens_per_s / W.osl
            assert e.tpot_s <= SLO_CHAT.tpot_s and e.ttft_s <= SLO_CHAT.ttft_s
            assert x.tpot_ns >= e.tpot_s * 1e9 - 1 and x.latency_ns >= e.ttft_s * 1e9 - 1
        elif x.role == "decode":
            cap = x.row.batch / (e.decode_cycle_s * W.osl)
            assert e.decode_cycle_s <= SLO_CHAT.tpot_s
        else:
            cap = 1 / prefill_period_s(m, x, W, p)
            assert x.latency_ns >= e.ttft_s * 1e9 - 1
        assert x.capacity <= cap * CAP_UNITS_PER_RPS  # rounded down


def test_no_kept_pool_is_dominated_by_copies_of_another(pools):
    """Within a (type[, KV precision]) group, no pool is matched by ⌊g_b/g_a⌋ copies of another (latency aside)."""
    _, ps = pools
    for a in ps:
        for b in ps:
            if a is b or a.role != b.role or a.gpu != b.gpu or (a.role != "aggregated" and a.kv != b.kv):
                continue
            m = b.gpus // a.gpus
            if m >= 1 and m * a.capacity >= b.capacity:
                assert a.role == "prefill" and a.latency_ns > b.latency_ns  # kept for its shorter latency


def test_kv_transfer_by_hand(catalog):
    """Llama-3.1-70B, 1000-token prompt, fp8 KV: 1000 · 80 layers · 2 · 8 heads · 128 · 1 B = 163.84 MB over one
    400 Gbit/s NIC at 80 % efficiency (40 GB/s) = 4.096 ms, + 15 µs latency."""
    m = load_model("llama-3.1-70b")
    h100 = catalog.gpu("h100-sxm")
    assert m.kv_bytes_per_token(1.0) * 1000 == 163_840_000
    t = kv_transfer_s(m, "fp8", h100.scale_out_bytes_per_s, 1000, catalog.perf)
    assert t == pytest.approx(163_840_000 / (50e9 * 0.8) + 15e-6)
    assert int(kv_transfer_ns(m, [1.0], [h100.scale_out_bytes_per_s], 1000, catalog.perf)[0]) == pytest.approx(t * 1e9, abs=1)


def test_pairing_needs_the_same_kv_precision_and_fits_ttft():
    p = pool(0, "prefill", "h100-sxm", 1, 10, kv="fp8", latency_ns=900, kv_ns=50)
    d_fast = pool(0, "decode", "h100-sxm", 1, 10, kv="fp8", kv_ns=50)
    d_slow = pool(0, "decode", "a100-80gb", 1, 10, kv="fp8", kv_ns=150)  # a slower NIC sets the pace
    d_bf16 = pool(0, "decode", "h100-sxm", 1, 10, kv="bf16", kv_ns=50)
    assert compatible(p, d_fast, 1000) and compatible(p, d_fast, None)
    assert not compatible(p, d_slow, 1000) and compatible(p, d_slow, 1050)
    assert not compatible(p, d_bf16, None)
