"""planner/fleet/pools.py: candidate pools are sound (their integer capacity and latencies are conservative against
the floating-point `perf.estimate`), non-dominated within their group, and pair only when the KV transfer fits."""
from __future__ import annotations

import pytest

from planner.catalog import load_model
from planner.fleet.pools import (CAP_UNITS_PER_RPS, Pool, class_pools, compatible, estimate_pool, kv_transfer_ns,
                                  kv_transfer_s, pair_kv_transfer_s, prefill_period_s)
from planner.search.space import Row
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


def test_kv_transfer_sharded_over_tp_and_stages_by_hand(catalog):
    """Each GPU sends (or receives) its own share over its own NIC. Llama-3.1-70B, 1000 tokens, fp8 KV
    (163.84 MB in all): TP4 holds 2 of the 8 KV heads per GPU, PP2 with 40 layers a stage: 163.84 / 4 / 2 =
    20.48 MB per GPU, 0.512 ms at 40 GB/s (+ 15 µs). An uneven split counts its largest stage (50 of 80 layers).
    TP16 cannot split 8 heads further (each GPU keeps one: 1/8). DeepSeek-V3's MLA latent is one head, whole on
    every TP rank: TP8 moves no less than TP1, PP8 (largest stage 8 of 61 layers) 8/61 of it."""
    m = load_model("llama-3.1-70b")
    bw, perf = catalog.gpu("h100-sxm").scale_out_bytes_per_s, catalog.perf
    link = 50e9 * 0.8
    assert kv_transfer_s(m, "fp8", bw, 1000, perf, tp=4, stage_layers=40) == pytest.approx(20_480_000 / link + 15e-6)
    assert kv_transfer_s(m, "fp8", bw, 1000, perf, tp=1, stage_layers=50) == pytest.approx(
        163_840_000 * 50 / 80 / link + 15e-6)
    assert kv_transfer_s(m, "fp8", bw, 1000, perf, tp=16) == pytest.approx(163_840_000 / 8 / link + 15e-6)
    ds = load_model("deepseek-v3")
    whole = kv_transfer_s(ds, "bf16", bw, 4000, perf)
    latent = 4000 * 61 * (512 + 64) * 2  # kv_lora_rank + rope key, bf16
    assert whole == pytest.approx(latent / link + 15e-6)
    assert kv_transfer_s(ds, "bf16", bw, 4000, perf, tp=8) == whole
    assert kv_transfer_s(ds, "bf16", bw, 4000, perf, stage_layers=8) == pytest.approx(latent * 8 / 61 / link + 15e-6)
    # the integer form agrees, row by row
    ns = kv_transfer_ns(m, [1.0, 1.0], [bw, bw], 1000, perf, [4, 1], [40, 80])
    assert list(ns) == [pytest.approx((20_480_000 / link + 15e-6) * 1e9, abs=1),
                        pytest.approx((163_840_000 / link + 15e-6) * 1e9, abs=1)]


def test_pair_transfer_is_the_slower_side(catalog):
    """A PP8 prefill pool sends 1/8 of the cache per GPU, a TP1 decode pool receives all of it on one GPU: the
    pair takes the decode side's time; on a slower NIC (A100: 25 GB/s) that side is slower still."""
    m = load_model("llama-3.1-70b")
    h100, a100, perf = catalog.gpu("h100-sxm"), catalog.gpu("a100-80gb"), catalog.perf
    pre = Pool(0, "prefill", Row(h100, "fp8", "fp8", 1, 8, 1, 1), (10,) * 8, 1, 0, 0, 0)
    dec = Pool(0, "decode", Row(h100, "fp8", "fp8", 1, 1, 1, 64), (80,), 1, 0, 0, 0)
    slow = Pool(0, "decode", Row(a100, "fp8", "fp8", 1, 1, 1, 64), (80,), 1, 0, 0, 0)
    assert pair_kv_transfer_s(m, pre, dec, 1000, perf) == pytest.approx(163_840_000 / (50e9 * 0.8) + 15e-6)
    assert pair_kv_transfer_s(m, pre, slow, 1000, perf) == pytest.approx(163_840_000 / (25e9 * 0.8) + 15e-6)
    assert pair_kv_transfer_s(m, dec, pre, 1000, perf) == pair_kv_transfer_s(m, pre, dec, 1000, perf)


def test_pairing_needs_the_same_kv_precision_and_fits_ttft():
    p = pool(0, "prefill", "h100-sxm", 1, 10, kv="fp8", latency_ns=900, kv_ns=50)
    d_fast = pool(0, "decode", "h100-sxm", 1, 10, kv="fp8", kv_ns=50)
    d_slow = pool(0, "decode", "a100-80gb", 1, 10, kv="fp8", kv_ns=150)  # a slower NIC sets the pace
    d_bf16 = pool(0, "decode", "h100-sxm", 1, 10, kv="bf16", kv_ns=50)
    assert compatible(p, d_fast, 1000) and compatible(p, d_fast, None)
    assert not compatible(p, d_slow, 1000) and compatible(p, d_slow, 1050)
    assert not compatible(p, d_bf16, None)
