"""planner/perf/step.py two-batch overlap: the schedule of two micro-batches by hand, and layers where the
all-to-all hides fully behind the other half's compute and where it cannot."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from planner.perf.estimate import hardware
from planner.perf.step import (DEEPEP_NORMAL_KERNEL_SMS, comm_parts, layer_step, tbo_moe_layer_s)


def test_schedule_by_hand():
    """a = 3, e = 2, d = 1, c = 4 (ms): A.attn‖B.combine max(3, 4) = 4, B.attn‖A.dispatch max(3, 1) = 3,
    A.experts‖B.dispatch max(2, 1) = 2, B.experts‖A.combine max(2, 4) = 4: 13 ms, against 2·(3+2+1+4) = 20 ms
    one after another. With the transfers holding a quarter of the SMs: 3 beside 4 finishes with the transfer
    (3 ≤ 0.75·4), max(4, 3 + 1) = 4; 3 beside 1 takes 3 + 0.25 = 3.25; 2 beside 1 takes 2.25; 2 beside 4 ends
    with the transfer at 4 (2 < 3): 13.5 ms."""
    assert tbo_moe_layer_s(3.0, 2.0, 1.0, 4.0) == pytest.approx(13.0)
    assert tbo_moe_layer_s(3.0, 2.0, 1.0, 4.0, 0.25) == pytest.approx(13.5)
    # compute-bound: every transfer hidden, the layer is both halves' compute
    assert tbo_moe_layer_s(3.0, 2.0, 0.5, 0.5) == pytest.approx(10.0)
    # communication-bound: the compute hidden, the layer is both halves' transfers
    assert tbo_moe_layer_s(0.5, 0.5, 3.0, 2.0) == pytest.approx(10.0)


def _mixtral_ep8(preset, h100, round_params, **links):
    m = preset("mixtral-8x7b")  # every layer MoE (f = 1), no shared experts
    hw = replace(hardware(h100, "bf16", 1, 8), **links)
    p = replace(round_params, allreduce_latency_s=0.0, p2p_latency_s=0.0)
    kw = dict(tp=1, dp=8, ep=8, weight_bytes=2.0, kv_bytes=2.0, sequences=512, context_from=1000,
              context_to=1000, reads_cache=True)
    return m, hw, p, kw


def test_all_to_all_hidden_behind_the_other_half(preset, h100, round_params):
    """Mixtral-8x7B decode, 512 sequences over TP1 × DP8, EP8 on one node with a link so fast that the
    all-to-alls take ~0 s: under TBO the layer is the two halves' compute back to back (each half at 256
    sequences: its own weight reads and expert load), the transfers hidden."""
    m, hw, p, kw = _mixtral_ep8(preset, h100, round_params, a2a_bytes_per_s=1e30, a2a_latency_s=0.0)
    half = layer_step(m, hw, p, tokens=256, **dict(kw, sequences=256))
    assert float(half.comm_s) < 1e-12
    tbo = layer_step(m, hw, replace(p, two_batch_overlap=True), tokens=512, **kw)
    assert float(tbo.time_s) == pytest.approx(2 * float(half.time_s), rel=1e-9)
    assert float(tbo.flops) == pytest.approx(2 * float(half.flops), rel=1e-12)
    assert float(tbo.bytes) == pytest.approx(2 * float(half.bytes), rel=1e-12)  # weights read once per half
    plain = layer_step(m, hw, p, tokens=512, **kw)
    # decode at 256 sequences is bound by weight reads: two halves read them twice, so TBO costs here
    assert float(tbo.time_s) > float(plain.time_s)


def test_all_to_all_too_long_to_hide(preset, h100, round_params):
    """The same layer with the all-to-all link at 1 GB/s: each half's dispatch and combine dwarf its compute, so
    the layer is the two halves' transfers back to back, 2·(d + c) at half the tokens, plus the first half's
    attention that runs alone once per step (at most a half's compute / L per layer), against d + c of the
    whole batch plus the compute without TBO."""
    m, hw, p, kw = _mixtral_ep8(preset, h100, round_params, a2a_bytes_per_s=1e9, a2a_latency_s=0.0)
    _, d_half, c_half, _ = comm_parts(m, hw, p, tp=1, dp=8, ep=8, tokens=256)
    half = layer_step(m, hw, p, tokens=256, **dict(kw, sequences=256))
    tbo = layer_step(m, hw, replace(p, two_batch_overlap=True), tokens=512, **kw)
    transfers = 2 * (float(d_half) + float(c_half))
    assert transfers <= float(tbo.time_s) <= transfers + float(half.time_s - half.comm_s) / m.num_layers
    plain = layer_step(m, hw, p, tokens=512, **kw)
    _, d, c, _ = comm_parts(m, hw, p, tp=1, dp=8, ep=8, tokens=512)
    assert float(plain.time_s) == pytest.approx(float(d + c) + float(plain.time_s - plain.comm_s), rel=1e-12)
    assert float(tbo.time_s) < float(plain.time_s)
    # what the layer spends beyond both halves' compute is reported as communication
    assert float(tbo.comm_s) == pytest.approx(float(tbo.time_s - tbo.compute_bound_s - tbo.memory_bound_s))


def test_prefill_transfer_holds_sms(preset, h100, round_params):
    """A prefill's all-to-all (DeepEP normal kernels) holds 20 of the H100's 132 SMs: the same layer as a
    prefill schedules P(x, y) = max(y, x + 20/132·y); decode's low-latency kernels hold none."""
    m, hw, p, kw = _mixtral_ep8(preset, h100, round_params, a2a_bytes_per_s=50e9, a2a_latency_s=0.0)
    sigma = DEEPEP_NORMAL_KERNEL_SMS / 132
    assert h100.sm_count == 132
    kw = dict(kw, sequences=8, context_from=0.0, context_to=1024, reads_cache=False)
    on = replace(p, two_batch_overlap=True)
    tbo = layer_step(m, hw, on, tokens=8192, prefill=True, **kw)
    # the same halves without the SM share, by the schedule with σ = 0, rebuilt from the σ'd one's pieces
    _, d, c, _ = comm_parts(m, hw, p, tp=1, dp=8, ep=8, tokens=4096, prefill=True)
    no_share = layer_step(m, replace(hw, sm_count=0), on, tokens=8192, prefill=True, **kw)
    assert float(tbo.time_s) > float(no_share.time_s) * 1.001  # the share costs time
    assert float(tbo.time_s) <= float(no_share.time_s) + sigma * 2 * float(d + c) + 1e-9


def test_only_layouts_with_an_all_to_all(preset, h100, round_params):
    """EP = 1 rows (no all-to-all) and dense models keep the plain step under TBO; arrays mix both."""
    on = replace(round_params, two_batch_overlap=True)
    m, hw = preset("mixtral-8x7b"), hardware(h100, "bf16", 8, 1)
    kw = dict(tp=8, weight_bytes=2.0, kv_bytes=2.0, tokens=64, sequences=64, context_from=500, context_to=600,
              reads_cache=True)
    both = layer_step(m, hw, on, ep=np.array([1.0, 8.0]), **kw)
    assert both.time_s[0] == layer_step(m, hw, round_params, ep=1, **kw).time_s
    assert both.time_s[1] == pytest.approx(float(layer_step(m, hw, on, ep=8, **kw).time_s), rel=1e-12)
    dense = preset("llama-3.1-70b")
    assert (layer_step(dense, hw, on, ep=1, **kw).time_s == layer_step(dense, hw, round_params, ep=1, **kw).time_s)
