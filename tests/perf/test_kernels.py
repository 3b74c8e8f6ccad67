"""planner/perf/kernels.py and the kernel-shape terms of planner/perf/step.py, by hand."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest

from planner.perf.estimate import hardware
import numpy as np

from planner.perf.kernels import (attention_occupancy, expected_padded_rows, gemm_flops_efficiency,
                                  grouped_gemm_efficiency, moe_tile_tokens, wave_efficiency)
from planner.perf.step import layer_step


def test_wave_efficiency_by_hand():
    # Llama-3.1-70B shared GEMMs on one of 8 GPUs: N = 855,654,400 / (8192 · 8) = 13,056 columns -> 102 tiles of 128;
    # one token fills 1 of each tile's 128 rows, in one wave over 132 SMs
    assert wave_efficiency(1, 13056, 132, 128, 128) == pytest.approx(13056 / (132 * 128 * 128))
    # 4096 tokens: 32 · 102 = 3264 full tiles in ⌈3264 / 132⌉ = 25 waves of 132
    assert wave_efficiency(4096, 13056, 132, 128, 128) == pytest.approx(3264 / 3300)
    # 129 tokens: a second, nearly empty row of tiles; the time (∝ waves) never falls as tokens grow
    assert wave_efficiency(129, 13056, 132, 128, 128) == pytest.approx(129 * 13056 / (2 * 132 * 128 * 128))
    times = [t / wave_efficiency(t, 13056, 132, 128, 128) for t in range(1, 600)]
    assert all(b >= a - 1e-9 for a, b in zip(times, times[1:]))
    # exactly two full waves
    assert wave_efficiency(256, 128 * 132, 132, 128, 128) == pytest.approx(1.0)
    # off: no tile or no SM count
    assert wave_efficiency(1, 13056, 132, 0, 128) == 1.0 and wave_efficiency(1, 13056, 0, 128, 128) == 1.0


def test_gemm_efficiency_rises_with_tokens():
    # η = η_max · wave; with the tile off the wave factor is 1
    assert gemm_flops_efficiency(64, 1e5, 132, 0.8, 0, 0) == pytest.approx(0.8)
    # 8192 tokens, N = 8192: 64 · 64 = 4096 full tiles in 32 waves of 132 -> 4096 / 4224
    assert gemm_flops_efficiency(8192, 8192, 132, 0.8, 128, 128) == pytest.approx(0.8 * 4096 / 4224)
    # 64 tokens fill half of each tile's rows: 64 column tiles in one wave
    assert gemm_flops_efficiency(64, 8192, 132, 0.8, 128, 128) == pytest.approx(0.8 * 64 * 8192 / (132 * 128 * 128))


def test_attention_occupancy_by_hand():
    # batch 1, 8 KV heads, no KV split: 8 work items against 0.5 · 132 = 66 needed
    assert attention_occupancy(1, 8, 8192, 132, 0.5, 0) == pytest.approx(8 / 66)
    # split-KV in chunks of 512: 8 · 16 = 128 items >= 66 -> saturated
    assert attention_occupancy(1, 8, 8192, 132, 0.5, 512) == 1.0
    # a 1000-token context gives 1000 / 512 = 1.95 chunks' worth of work per head: 8 · 1.953 / 66
    assert attention_occupancy(1, 8, 1000, 132, 0.5, 512) == pytest.approx(8 * 1000 / 512 / 66)
    assert attention_occupancy(1, 8, 300, 132, 0.5, 512) == pytest.approx(8 / 66)  # at least one item per head
    assert attention_occupancy(1, 8, 8192, 132, 0.0, 0) == 1.0  # not modelled


def _tiles_exact(n: int, q_num: int, q_den: int, tile: int) -> float:
    """E[⌈X / tile⌉] for X ~ Binomial(n, q_num/q_den), summed over every x in exact integer arithmetic."""
    total = sum(math.comb(n, x) * q_num ** x * (q_den - q_num) ** (n - x) * -(-x // tile) for x in range(n + 1))
    return total / q_den ** n


def test_expected_padded_rows_by_hand():
    # 2 tokens, each picks the expert with probability 1/2: X = 0, 1, 2 with 1/4, 1/2, 1/4. Tile 2: ⌈X/2⌉ = 0, 1, 1
    # -> 3/4 tile per expert; 4 experts · 2 rows · 3/4 = 6 rows. Tile 1: E[X] = 1 -> 4 · 1 · 1 = 4 (no padding)
    assert expected_padded_rows(2, 0.5, 4, 2) == pytest.approx(6.0, rel=1e-12)
    assert expected_padded_rows(2, 0.5, 4, 1) == pytest.approx(4.0, rel=1e-12)
    # 3 tokens: X = 0..3 with 1/8, 3/8, 3/8, 1/8; ⌈X/2⌉ = 0, 1, 1, 2 -> 1 tile per expert; 2.5 tokens lie halfway
    assert expected_padded_rows(3, 0.5, 4, 2) == pytest.approx(8.0, rel=1e-12)
    assert expected_padded_rows(2.5, 0.5, 4, 2) == pytest.approx(7.0, rel=1e-12)
    # 4 tokens, top-2 of 8 (q = 1/4), 16-row tiles: an expert is padded to one tile when hit, 8·16·(1 − (3/4)^4)
    assert expected_padded_rows(4, 0.25, 8, 16) == pytest.approx(8 * 16 * (1 - 0.75 ** 4), rel=1e-12)
    # Mixtral at 512 tokens (mean 128 per expert, on the edge of a 128-row tile): about half the experts spill into
    # a second tile, where rounding the mean gave none; the exact sum over all 513 outcomes
    rows = expected_padded_rows(512, 0.25, 8, 128)
    assert rows == pytest.approx(8 * 128 * _tiles_exact(512, 1, 4, 128), rel=1e-9)
    assert 1024 + 0.4 * 1024 < rows < 1024 + 0.6 * 1024
    # far from an edge it is the mean rounded up: 640 tokens -> 160 each, two tiles almost surely
    assert expected_padded_rows(640, 0.25, 8, 128) == pytest.approx(8 * 256, rel=1e-3)
    assert expected_padded_rows(4, 0.25, 8, 0) == pytest.approx(8)  # tile off: the assignments T·q·experts
    assert expected_padded_rows(0, 0.25, 8, 16) == 0.0
    # vectorized, and continuous and non-decreasing in the tokens
    grid = np.linspace(0.0, 700.0, 2801)
    curve = expected_padded_rows(grid, 0.25, 8, 64)
    assert curve.shape == grid.shape and np.all(np.diff(curve) >= -1e-9)
    assert np.max(np.diff(curve)) < 8 * 64 * 0.25  # no step: at most ~ the tiles' probability of growing


def test_expected_padded_rows_against_sampled_routing():
    """Top-2 of 8 routing sampled (each token picks 2 distinct experts uniformly): Σ_e ⌈load_e / t⌉ · t averaged
    over 4000 steps matches the formula within a few standard errors."""
    rng = np.random.default_rng(14)
    for tokens, tile in ((512, 64), (200, 16), (1000, 128)):
        picks = np.argpartition(rng.random((4000, tokens, 8)), 2, axis=2)[:, :, :2]
        loads = np.stack([(picks == e).sum(axis=(1, 2)) for e in range(8)], axis=1)
        rows = (np.ceil(loads / tile) * tile).sum(axis=1)
        stderr = rows.std() / math.sqrt(len(rows))
        assert abs(rows.mean() - expected_padded_rows(tokens, 0.25, 8, tile)) < 4 * stderr + 1e-9


def expected_tiles_plain(trials: int, prob: float, tile: float) -> float:
    """kernels._expected_tiles as first written (#14), up to session 15: the binomial window's probabilities by
    lgamma running sums, then np.dot with ⌈x / t⌉ (off by up to ~2e-9 relative at n ~ 2e6; the closed form is
    checked against it at 1e-9 and against exact sums more tightly)."""
    if trials <= 0 or prob <= 0.0:
        return 0.0
    if prob >= 1.0:
        return float(math.ceil(trials / tile - 1e-9))
    mean = trials * prob
    sd = math.sqrt(trials * prob * (1.0 - prob))
    lo = max(0, int(mean - 12.0 * sd) - 1)
    hi = min(trials, int(mean + 12.0 * sd) + 2)
    x = np.arange(lo, hi + 1, dtype=float)
    ln_x_fact = math.lgamma(lo + 1) + np.concatenate(([0.0], np.cumsum(np.log(x[1:]))))
    ln_rest_fact = math.lgamma(trials - lo + 1) - np.concatenate(([0.0], np.cumsum(np.log(trials - x[:-1]))))
    log_pmf = math.lgamma(trials + 1) - ln_x_fact - ln_rest_fact + x * math.log(prob) + (trials - x) * math.log1p(-prob)
    return float(np.dot(np.exp(log_pmf), np.ceil(x / tile - 1e-9)))


def test_expected_tiles_against_exact_rational_sums():
    # E[⌈X / t⌉] = Σ_x P(X = x)·⌈x/t⌉ in exact rationals (q the float's exact value): the Fourier closed form within
    # 2e-15 relative, never further off than the window's running sums; t = 1 is E[X] = nq
    from fractions import Fraction
    from planner.perf.kernels import _expected_tiles
    for n in (0, 1, 2, 3, 7, 16, 17, 33, 64, 129):
        for q in (0.25, 1 / 32, 0.3, 0.9):
            for t in (1, 2, 3, 16, 128):
                qf = Fraction(q)
                exact = sum(math.comb(n, x) * qf ** x * (1 - qf) ** (n - x) * -(-x // t) for x in range(n + 1))
                got = _expected_tiles(n, q, float(t))
                if exact == 0:
                    assert abs(got) < 1e-15
                    continue
                new = abs(Fraction(got) - exact) / exact
                old = abs(Fraction(expected_tiles_plain(n, q, float(t))) - exact) / exact
                assert new < 2e-15 and new <= max(old, Fraction(1, 10**15)), (n, q, t, float(new), float(old))


@pytest.mark.parametrize("n, q, t", [(1_500, 1 / 32, 128), (5_000, 1 / 32, 128), (30_000, 1 / 8, 16),
                                     (100_000, 0.25, 128), (2_000_000, 1 / 32, 128)])
def test_expected_tiles_at_large_n_against_40_digits(n, q, t):
    # against Σ P(x)·⌈x/t⌉ with the probabilities in 40-digit decimals (ratio recurrence from the mode, normalized
    # over mean ± 40σ): within 1e-15 where the window's running sums were off by up to 1.7e-9
    from decimal import Decimal, localcontext
    from planner.perf.kernels import _expected_tiles
    from tests.perf.binomial_reference import DIGITS, binomial_probabilities_40_digits, to_decimal
    p = binomial_probabilities_40_digits(n, q)
    with localcontext() as ctx:
        ctx.prec = DIGITS
        ref = sum(px * -(-x // t) for x, px in p.items())
        got = _expected_tiles(n, q, float(t))
        assert abs(to_decimal(got) - ref) / ref < Decimal("1e-15")


def test_expected_padded_rows_same_floats_when_kept_values_are_dropped(monkeypatch):
    # rows read the kept tile sums by lookup; where a memo past its size bound starts again between computing the
    # missing sums and reading them, each row still gets the float of the one-at-a-time sum (tiny memos: every put
    # clears)
    from planner.perf import kernels, moe
    monkeypatch.setattr(moe.WholeMemo, "DENSE", 16)
    monkeypatch.setattr(moe.WholeMemo, "SPARSE_LIMIT", 4)
    kernels._tile_memos.clear()
    kernels._recent_tiles.entries.clear()
    rng = np.random.default_rng(19)
    tokens = rng.uniform(0, 3000, 60)
    tile = rng.choice([16.0, 64.0], 60)
    for _ in range(2):  # (the second time some sums are kept, some dropped)
        got = expected_padded_rows(tokens, 8 / 256, 1.0, tile)
        for t, w, g in zip(tokens, tile, got):
            base = math.floor(t + 1e-9)
            frac = min(max(t - base, 0.0), 1.0)
            assert g == w * ((1.0 - frac) * kernels._expected_tiles(base, 8 / 256, w)
                             + frac * kernels._expected_tiles(base + 1, 8 / 256, w))
        kernels._recent_tiles.entries.clear()
        tokens = np.concatenate([tokens[:30], rng.uniform(0, 3000, 30)])
    kernels._tile_memos.clear()


def test_expected_padded_rows_same_floats_as_one_at_a_time_sums():
    """The distinct (⌊T⌋, q, t_m) of an array are summed together; each element must be the float the
    one-at-a-time sum gives, interpolated between ⌊T⌋ and ⌊T⌋ + 1 as the docstring says, and within 1e-9 of the
    window's running sums (their error at these n)."""
    from planner.perf import kernels
    rng = np.random.default_rng(18)
    n = 400
    tokens = np.concatenate([[0.0, 0.5, 1.0, 2.0, 3.7], rng.uniform(0, 40_000, n - 5)])
    q = rng.choice([8 / 256, 8 / 288, 2 / 8, 0.5, 1.0, 0.0], n)
    tile = rng.choice([0.0, 16.0, 32.0, 64.0, 128.0], n)
    experts = rng.uniform(1, 300, n)
    kernels._tile_memos.clear()
    got = expected_padded_rows(tokens, q, experts, tile)
    for t, p, e, w, g in zip(tokens, q, experts, tile, got):
        base = math.floor(t + 1e-9)
        frac = min(max(t - base, 0.0), 1.0)
        tiles = ((1.0 - frac) * kernels._expected_tiles(base, p, w or 1.0)
                 + frac * kernels._expected_tiles(base + 1, p, w or 1.0))
        assert g == (e * w * tiles if w > 0 else e * t * p)
        plain = (1.0 - frac) * expected_tiles_plain(base, p, w or 1.0) + frac * expected_tiles_plain(base + 1, p, w or 1.0)
        assert g == pytest.approx(e * w * plain if w > 0 else e * t * p, rel=1e-9)
    assert expected_padded_rows(tokens.copy(), q, experts, tile).tolist() == got.tolist()  # kept result reused
    kernels._tile_memos.clear()
    alone = [float(expected_padded_rows(t, p, e, w)) for t, p, e, w in zip(tokens[:60], q, experts, tile)]
    assert alone == got[:60].tolist()  # one step alone (its own path) gives the array's element


def test_expected_tiles_not_a_whole_tile_is_the_window_sum():
    # a tile that is not a whole number has no residue form: the window sum, as before
    from planner.perf import kernels
    assert kernels._expected_tiles(500, 0.125, 12.5) == expected_tiles_plain(500, 0.125, 12.5)


def test_grouped_gemm_shares_waves_across_experts_by_hand():
    """DeepSeek-V3 decode on 8 GPUs: 32 experts touched, one 128-row tile each (padded), 2048·3·7168 / (7168·8)
    = 768 columns per expert = 6 column tiles. Per expert that would be 6 tiles in a wave of 132 SMs (4.5 % useful);
    in one grouped launch 32·6 = 192 tiles run in 2 waves: 192 / 264 useful."""
    eff = grouped_gemm_efficiency(128, 768, 32, 132, 0.8, 128, 128)
    assert eff == pytest.approx(0.8 * 192 / 264, rel=1e-12)
    assert gemm_flops_efficiency(128, 768, 132, 0.8, 128, 128) == pytest.approx(0.8 * 6 / 132, rel=1e-12)
    # fewer than one expert touched counts as one; tile off: η_max
    assert grouped_gemm_efficiency(128, 768, 0.5, 132, 0.8, 128, 128) == pytest.approx(0.8 * 6 / 132)
    assert grouped_gemm_efficiency(1, 768, 32, 132, 0.8, 0, 0) == 0.8


def test_decode_layer_with_overhead_and_occupancy_by_hand(preset, h100, round_params):
    """Llama-3.1-8B, batch 1 at context 8192 on one H100: weights at the HBM rate, the KV read at the occupancy
    that 8 KV heads allow, plus the fixed per-layer time."""
    m = preset("llama-3.1-8b")
    p = replace(round_params, layer_overhead_s=60e-6, attention_ctas_per_sm=0.5, gemm_tile_tokens=128.0,
                gemm_tile_cols=128.0)
    hw = hardware(h100, "bf16")
    s = layer_step(m, hw, p, tp=1, ep=1, weight_bytes=2.0, kv_bytes=2.0, tokens=1, sequences=1,
                   context_from=8192, context_to=8192, reads_cache=True)
    hbm = 3.35e12 * 0.8
    shared = 4096 * 4096 * 2 + 2 * 4096 * 1024 + 2 * 4096 + 3 * 4096 * 14336  # q, o; k, v; norms; MLP
    assert m.layer_shared_params == shared
    weights_s = shared * 2 / hbm
    # compute: one token padded to 128-row tiles, 417 column tiles in 4 waves of 132 SMs -> still under the weights
    tiles = math.ceil(shared / 4096 / 128)
    compute_s = 2 * shared / (989.4e12 * 0.5 * (shared / 4096) / (math.ceil(tiles / 132) * 132 * 128 * 128))
    assert tiles == 417 and compute_s < weights_s
    kv_token = 2 * 8 * 128 * 2  # K and V, 8 heads, bf16
    kv_s = 8192 * kv_token / (hbm * 8 / 66) + kv_token / hbm
    assert s.time_s == pytest.approx(weights_s + kv_s + 60e-6, rel=1e-9)
    assert s.memory_bound_s == pytest.approx(weights_s + kv_s + 60e-6, rel=1e-9) and s.comm_s == 0.0


def test_prefill_uses_prefill_and_attention_efficiencies(preset, h100, round_params):
    m = preset("llama-3.1-70b")
    p = replace(round_params, prefill_flops_efficiency=0.6, attention_flops_efficiency=0.3)
    hw = hardware(h100, "bf16")
    s = layer_step(m, hw, p, tp=8, ep=1, weight_bytes=2.0, kv_bytes=2.0, tokens=4096, sequences=1,
                   context_from=0, context_to=4096, reads_cache=False, prefill=True)
    matmul = 2 * 855_654_400 * 4096 / 8 / (989.4e12 * 0.6)
    attention = 4 * 64 * 128 * 2048 * 4096 / 8 / (989.4e12 * 0.3)
    ar = 8e-6 + 2 * 7 / 8 * 4096 * 8192 * 2 / (450e9 * 0.8)
    assert s.time_s == pytest.approx(matmul + attention + 2 * ar, rel=1e-9)
    # the same layer as a decode-phase step uses flops_efficiency (0.5) for its GEMMs
    d = layer_step(m, hw, p, tp=8, ep=1, weight_bytes=2.0, kv_bytes=2.0, tokens=4096, sequences=1,
                   context_from=0, context_to=4096, reads_cache=False)
    assert d.time_s == pytest.approx(matmul * 0.6 / 0.5 + attention + 2 * ar, rel=1e-9)


def test_moe_expert_flops_are_padded_to_the_tile(preset, h100, round_params):
    m = preset("mixtral-8x7b")
    p = replace(round_params, gemm_tile_tokens=128.0, gemm_tile_cols=0.0)
    hw = hardware(h100, "bf16")
    base = layer_step(m, hw, round_params, tp=2, ep=1, weight_bytes=2.0, kv_bytes=2.0, tokens=1000, sequences=1,
                      context_from=0, context_to=1000, reads_cache=False, prefill=True)
    tiled = layer_step(m, hw, p, tp=2, ep=1, weight_bytes=2.0, kv_bytes=2.0, tokens=1000, sequences=1,
                       context_from=0, context_to=1000, reads_cache=False, prefill=True)
    expert = 3 * 4096 * 14336
    # 1000 · 2 / 8 = 250 tokens per expert on average in a launch of 1000 tokens (<= 1280): 64-row tiles; each
    # expert's load is Binomial(1000, 1/4), padded to whole tiles: 8 · 64 · E[⌈X/64⌉] rows of 2·P_e FLOP over TP2
    rows = 8 * 64 * _tiles_exact(1000, 1, 4, 64)
    assert 8 * 256 < rows < 8 * 320
    assert tiled.flops - base.flops == pytest.approx(2 * expert * (rows - 2000) / 2, rel=1e-9)
    # without the batch cap the 128-row tile: mostly 2 tiles (256 rows) each, some experts past 256 take a third
    whole = layer_step(m, hw, replace(p, moe_full_tile_batch_tokens=0.0), tp=2, ep=1, weight_bytes=2.0, kv_bytes=2.0,
                       tokens=1000, sequences=1, context_from=0, context_to=1000, reads_cache=False, prefill=True)
    assert whole.flops - base.flops == pytest.approx(2 * expert * (8 * 128 * _tiles_exact(1000, 1, 4, 128) - 2000) / 2,
                                                     rel=1e-9)


def test_moe_tile_tokens_by_hand():
    """The smallest 16 · 2^j holding the tokens per expert, at most 128, at most 64 while the launch has at most
    `full_tile_batch_tokens` tokens (vLLM's tuned fused_moe configs for Mixtral on A100: BLOCK_SIZE_M 16 up to 8
    tokens per expert, 32 up to 32, 64 up to 256 (M = 1024), then 128)."""
    assert moe_tile_tokens(0.5, 16, 128) == 16
    assert moe_tile_tokens(8, 16, 128) == 16
    assert moe_tile_tokens(16, 16, 128) == 16
    assert moe_tile_tokens(17, 16, 128) == 32
    assert moe_tile_tokens(64, 16, 128) == 64
    assert moe_tile_tokens(65, 16, 128) == 128
    assert moe_tile_tokens(250, 16, 128) == 128  # more than one tile: expected_padded_rows takes whole 128s
    assert moe_tile_tokens(8, 0, 128) == 128  # off: the GEMM tile
    assert moe_tile_tokens(8, 16, 0) == 0  # tiles off altogether
    assert list(moe_tile_tokens([3, 20, 40, 1000], 16, 128)) == [16, 32, 64, 128]
    # the launch's batch: at most half the tile (64 rows) up to 1280 tokens, as vLLM's nearest-M config lookup does
    # (Mixtral TP2 on A100: BLOCK_SIZE_M 64 from M = 256 to 1024, 128 from 1536)
    assert moe_tile_tokens(250, 16, 128, 1000, 1280) == 64
    assert moe_tile_tokens(250, 16, 128, 1280, 1280) == 64
    assert moe_tile_tokens(250, 16, 128, 1281, 1280) == 128
    assert moe_tile_tokens(20, 16, 128, 1000, 1280) == 32  # below the cap: unchanged
    assert moe_tile_tokens(250, 16, 128, 1000, 0) == 128  # no cap


def test_moe_decode_pads_experts_to_the_small_tile(preset, h100, round_params):
    """Mixtral TP2 decode of 32 tokens: 64 (token, expert) assignments over 8·(1 − 0.75^32) touched experts, 8 each
    on average, so each touched expert computes one 16-row tile (not a 128-row one)."""
    m = preset("mixtral-8x7b")
    hw = hardware(h100, "bf16")
    kw = dict(tp=2, ep=1, weight_bytes=2.0, kv_bytes=2.0, tokens=32, sequences=32, context_from=1000,
              context_to=1000, reads_cache=True)
    base = layer_step(m, hw, round_params, **kw)  # tiles off: the 64 assignments only
    small = layer_step(m, hw, replace(round_params, gemm_tile_tokens=128.0, moe_min_tile_tokens=16.0), **kw)
    whole = layer_step(m, hw, replace(round_params, gemm_tile_tokens=128.0, moe_min_tile_tokens=0.0), **kw)
    expert = 3 * 4096 * 14336
    touched = 8 * (1 - 0.75 ** 32)
    # Binomial(32, 1/4) loads: one 16-row tile per touched expert, a second one in the rare step an expert gets 17+
    small_rows = 8 * 16 * _tiles_exact(32, 1, 4, 16)
    assert small_rows == pytest.approx(touched * 16, rel=1e-3)
    assert small.flops - base.flops == pytest.approx(2 * expert * (small_rows - 64) / 2, rel=1e-9)
    assert whole.flops - base.flops == pytest.approx(2 * expert * (touched * 128 - 64) / 2, rel=1e-9)
    # at a tenth of peak, whole 128-row tiles make the step compute bound; 16-row tiles leave it on the weight read
    slow = dict(gemm_tile_tokens=128.0, flops_efficiency=0.1)
    base_t = layer_step(m, hw, replace(round_params, flops_efficiency=0.1), **kw).time_s
    small_t = layer_step(m, hw, replace(round_params, moe_min_tile_tokens=16.0, **slow), **kw).time_s
    whole_t = layer_step(m, hw, replace(round_params, moe_min_tile_tokens=0.0, **slow), **kw).time_s
    assert small_t == pytest.approx(base_t, rel=1e-9) and whole_t > 1.5 * small_t


def test_moe_chunk_at_a_tile_edge_pads_by_the_routing_spread(preset, h100, round_params):
    """Mixtral TP2 at batch 512, 128/128 with 128-row tiles (no batch cap): 512 decode tokens give 128 assignments
    per expert on average, exactly one tile. Rounding the mean load charged the decode no padding and a 128-token
    chunk (160 per expert: two tiles on all 8 experts) 8 · 256 − 1280 = 768 padded rows: a cliff in TPOT (164 ms
    against 88 ms at batch 576, before 2026-11-27). Each expert's load is Binomial(T, 1/4): about half the experts
    already spill into a second tile at 512 tokens, so the chunk's increment of padding is the difference of the
    two expectations, 8·128·(E[⌈Y/128⌉] − E[⌈X/128⌉]) − 256, Y ~ Binomial(640, 1/4), X ~ Binomial(512, 1/4)."""
    m = preset("mixtral-8x7b")
    hw = hardware(h100, "bf16")
    tiled = replace(round_params, gemm_tile_tokens=128.0, moe_min_tile_tokens=16.0, moe_full_tile_batch_tokens=0.0)
    kw = dict(tp=2, ep=1, weight_bytes=2.0, kv_bytes=2.0, tokens=512, sequences=512, context_from=128,
              context_to=256, reads_cache=True)
    chunk = dict(chunk_tokens=128, chunk_attended_tokens=64, chunk_kv_read_tokens=0)
    expert = 3 * 4096 * 14336
    alone = layer_step(m, hw, tiled, **kw).flops - layer_step(m, hw, round_params, **kw).flops
    mixed = layer_step(m, hw, tiled, **kw, **chunk).flops - layer_step(m, hw, round_params, **kw, **chunk).flops
    alone_rows = 8 * 128 * _tiles_exact(512, 1, 4, 128) - 1024
    mixed_rows = 8 * 128 * _tiles_exact(640, 1, 4, 128) - 1280
    assert alone == pytest.approx(2 * expert * alone_rows / 2, rel=1e-9)
    assert mixed == pytest.approx(2 * expert * mixed_rows / 2, rel=1e-9)
    assert 400 < alone_rows < 600 and mixed_rows == pytest.approx(768, rel=1e-2)
    assert mixed_rows - alone_rows < 0.4 * 768  # the chunk's own padding: a fraction of the old cliff


def test_moe_padding_is_not_rounded_again_in_the_wave_count(preset, h100, round_params):
    """The expected padded rows are not whole tiles per expert (E[⌈X/t⌉]·t averages over the routing spread), so
    the grouped GEMM's waves count rows / t_m M tiles of the experts' columns rather than ⌈rows per expert / t_m⌉
    tiles of every expert (which would round the spread back up to the mean's tile edge: a jump of one M tile on
    all 8 experts, 8 · 21504 / 128 = 1344 tiles = 10.2 waves of 132 SMs, where the mean crosses 128 or 192).
    Mixtral TP2 decode at 300..1280 tokens on H100 (64-row tiles): one more token never costs more than a few
    waves, one wave = 2 · h · SM · t_m · t_n / (peak · η) = 2 · 4096 · 132 · 64 · 128 / (989.4e12 · 0.1)."""
    m = preset("mixtral-8x7b")
    hw = hardware(h100, "bf16")
    p = replace(round_params, gemm_tile_tokens=128.0, gemm_tile_cols=128.0, moe_min_tile_tokens=16.0,
                moe_full_tile_batch_tokens=1280.0, flops_efficiency=0.1)
    tokens = np.arange(300, 1281)
    step = layer_step(m, hw, p, tp=2, ep=1, weight_bytes=2.0, kv_bytes=2.0, tokens=tokens, sequences=tokens,
                      context_from=128, context_to=256, reads_cache=True)
    wave = 2 * 4096 * 132 * 64 * 128 / (989.4e12 * 0.1)
    jumps = np.diff(step.time_s)
    assert np.all(jumps > 0) and jumps.max() < 3 * wave
