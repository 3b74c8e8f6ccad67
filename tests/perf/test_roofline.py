"""planner/perf/roofline.py: t = max(F / (peak·η_F), B / (BW·η_BW)) by hand."""
from __future__ import annotations

import numpy as np
import pytest

from planner.perf.roofline import compute_time_s, memory_time_s, roofline_time_s


def test_compute_bound_by_hand():
    # 1e12 FLOP on 1e15 FLOP/s at 50 %: 2 ms; 1e9 B on 1e12 B/s at 80 %: 1.25 ms -> compute bound, 2 ms
    assert compute_time_s(1e12, 1e15, 0.5) == pytest.approx(2e-3)
    assert memory_time_s(1e9, 1e12, 0.8) == pytest.approx(1.25e-3)
    assert roofline_time_s(1e12, 1e9, 1e15, 1e12, 0.5, 0.8) == pytest.approx(2e-3)


def test_memory_bound_llama_70b_weights_on_one_h100():
    # batch-1 decode of 141.1e9 B of bf16 weights at 3.35 TB/s × 0.8: 52.65 ms; the 1.41e11 FLOP take only
    # 1.41e11 / (989.4e12 × 0.5) = 0.285 ms
    weights = 70.55e9 * 2
    t = roofline_time_s(2 * 70.55e9, weights, 989.4e12, 3.35e12, 0.5, 0.8)
    assert t == pytest.approx(weights / (3.35e12 * 0.8))
    assert t == pytest.approx(52.649e-3, rel=1e-4)


def test_vectorized_and_ridge_point():
    # ridge intensity = peak·η_F / (BW·η_BW) = 1e15·0.5 / (1e12·1) = 500 FLOP/B: below it memory bound, above compute
    flops = np.array([100.0, 500.0, 2000.0]) * 1e9
    t = roofline_time_s(flops, 1e9, 1e15, 1e12, 0.5, 1.0)
    np.testing.assert_allclose(t, [1e-3, 1e-3, 4e-3])
