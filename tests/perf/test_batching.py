"""planner/perf/batching.py: continuous-batching steady state, TPOT = t_cycle + (B / OSL) · t_prefill."""
from __future__ import annotations

import numpy as np
import pytest

from planner.perf.batching import output_tokens_per_s, steady_state_tpot_s


def test_steady_state_by_hand():
    # 64 sequences, 20 ms cycle, 80 ms prefill on the bottleneck stage, 256 output tokens each:
    # 64/256 = 0.25 requests finish per cycle -> 0.25 × 80 ms = 20 ms of prefill per token -> TPOT 40 ms
    tpot = steady_state_tpot_s(0.020, 64, 0.080, 256)
    assert tpot == pytest.approx(0.040)
    assert output_tokens_per_s(64, tpot) == pytest.approx(1600.0)  # B / TPOT


def test_vectorized():
    tpot = steady_state_tpot_s(np.array([0.01, 0.01]), np.array([1, 128]), 0.1, 128)
    np.testing.assert_allclose(tpot, [0.01 + 0.1 / 128, 0.11])
    np.testing.assert_allclose(output_tokens_per_s(np.array([1, 128]), tpot), [1 / (0.01 + 0.1 / 128), 128 / 0.11])


def test_no_prefill_cost_is_the_cycle():
    assert steady_state_tpot_s(0.015, 512, 0.0, 100) == pytest.approx(0.015)
