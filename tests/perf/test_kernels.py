"""planner/perf/kernels.py and the kernel-shape terms of planner/perf/step.py, by hand."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest

from planner.perf.estimate import hardware
from planner.perf.kernels import (attention_occupancy, gemm_flops_efficiency, grouped_gemm_efficiency,
                                  moe_tile_tokens, padded_expert_tokens, wave_efficiency)
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


def test_padded_expert_tokens_by_hand():
    # 4 tokens, top-2 of 8: 8·(1 − 0.75⁴) = 5.46875 experts touched, 8 / 5.47 = 1.46 tokens each, padded to one
    # 128-row tile each: 5.46875 · 128 = 700 rows
    touched = 8 * (1 - 0.75 ** 4)
    assert padded_expert_tokens(4, 2, touched, 128) == pytest.approx(touched * 128)
    # 4096 tokens over all 8 experts: 1024 each = exactly 8 tiles, no padding
    assert padded_expert_tokens(4096, 2, 8.0, 128) == pytest.approx(8192)
    # 1000 tokens · 2 / 8 = 250 each -> 2 tiles = 256 rows per expert
    assert padded_expert_tokens(1000, 2, 8.0, 128) == pytest.approx(8 * 256)
    assert padded_expert_tokens(4, 2, touched, 0) == pytest.approx(8)  # tile off: T·k


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
    touched = 8 * (1 - 0.75 ** 1000)  # = 8 to double precision
    # 1000 · 2 / 8 = 250 tokens per expert -> 256 rows: 8 · 256 − 2000 = 48 padded rows of 2·P_e FLOP over TP2
    assert tiled.flops - base.flops == pytest.approx(2 * expert * (touched * 256 - 2000) / 2, rel=1e-9)


def test_moe_tile_tokens_by_hand():
    """The smallest 16 · 2^j holding the tokens per expert, at most 128 (vLLM's tuned fused_moe configs for
    Mixtral on A100: BLOCK_SIZE_M 16 up to 8 tokens per expert, 32 up to 32, 64 up to 256, then 128)."""
    assert moe_tile_tokens(0.5, 16, 128) == 16
    assert moe_tile_tokens(8, 16, 128) == 16
    assert moe_tile_tokens(16, 16, 128) == 16
    assert moe_tile_tokens(17, 16, 128) == 32
    assert moe_tile_tokens(64, 16, 128) == 64
    assert moe_tile_tokens(65, 16, 128) == 128
    assert moe_tile_tokens(250, 16, 128) == 128  # more than one tile: padded_expert_tokens takes whole 128s
    assert moe_tile_tokens(8, 0, 128) == 128  # off: the GEMM tile
    assert moe_tile_tokens(8, 16, 0) == 0  # tiles off altogether
    assert list(moe_tile_tokens([3, 20, 40, 1000], 16, 128)) == [16, 32, 64, 128]


def test_moe_decode_pads_experts_to_the_small_tile(preset, h100, round_params):
    """Mixtral TP2 decode of 32 tokens: 64 (token, expert) assignments over 8·(1 − 0.75^32) touched experts, 8 each,
    so each touched expert computes one 16-row tile (not a 128-row one)."""
    m = preset("mixtral-8x7b")
    hw = hardware(h100, "bf16")
    kw = dict(tp=2, ep=1, weight_bytes=2.0, kv_bytes=2.0, tokens=32, sequences=32, context_from=1000,
              context_to=1000, reads_cache=True)
    base = layer_step(m, hw, round_params, **kw)  # tiles off: the 64 assignments only
    small = layer_step(m, hw, replace(round_params, gemm_tile_tokens=128.0, moe_min_tile_tokens=16.0), **kw)
    whole = layer_step(m, hw, replace(round_params, gemm_tile_tokens=128.0, moe_min_tile_tokens=0.0), **kw)
    expert = 3 * 4096 * 14336
    touched = 8 * (1 - 0.75 ** 32)
    assert small.flops - base.flops == pytest.approx(2 * expert * (touched * 16 - 64) / 2, rel=1e-9)
    assert whole.flops - base.flops == pytest.approx(2 * expert * (touched * 128 - 64) / 2, rel=1e-9)
    # at a tenth of peak, whole 128-row tiles make the step compute bound; 16-row tiles leave it on the weight read
    slow = dict(gemm_tile_tokens=128.0, flops_efficiency=0.1)
    base_t = layer_step(m, hw, replace(round_params, flops_efficiency=0.1), **kw).time_s
    small_t = layer_step(m, hw, replace(round_params, moe_min_tile_tokens=16.0, **slow), **kw).time_s
    whole_t = layer_step(m, hw, replace(round_params, moe_min_tile_tokens=0.0, **slow), **kw).time_s
    assert small_t == pytest.approx(base_t, rel=1e-9) and whole_t > 1.5 * small_t


def test_moe_chunk_at_a_tile_edge_pads_every_expert(preset, h100, round_params):
    """Why Mixtral TP2 at batch 512, 128/128 has a high TPOT (prefill_chunk_terms' docstring, README Known limits):
    512 decode tokens give 1024 assignments, 128 per expert, exactly one 128-row tile each; a 128-token chunk makes
    1280, 160 per expert, rounded to two tiles (256 rows) on all 8 experts. So the chunk's increment carries
    8 · 256 − 1280 = 768 padded rows of 2·P_e FLOP over TP2 beyond its own 256 assignments, the decode alone none."""
    m = preset("mixtral-8x7b")
    hw = hardware(h100, "bf16")
    tiled = replace(round_params, gemm_tile_tokens=128.0, moe_min_tile_tokens=16.0)
    kw = dict(tp=2, ep=1, weight_bytes=2.0, kv_bytes=2.0, tokens=512, sequences=512, context_from=128,
              context_to=256, reads_cache=True)
    chunk = dict(chunk_tokens=128, chunk_attended_tokens=64, chunk_kv_read_tokens=0)
    expert = 3 * 4096 * 14336
    alone = layer_step(m, hw, tiled, **kw).flops - layer_step(m, hw, round_params, **kw).flops
    mixed = layer_step(m, hw, tiled, **kw, **chunk).flops - layer_step(m, hw, round_params, **kw, **chunk).flops
    assert alone == pytest.approx(0.0, abs=1e-3 * expert)
    assert mixed == pytest.approx(2 * expert * (8 * 256 - 1280) / 2, rel=1e-9)
