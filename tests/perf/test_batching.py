"""planner/perf/batching.py: continuous-batching steady state. A user waits for the other B − 1 requests'
prefill stalls, TPOT = t_cycle + ((B − 1) / OSL) · s; the replica serves B tokens per t_cycle + (B / OSL) · s."""
from __future__ import annotations

import numpy as np
import pytest

from planner.perf.batching import output_tokens_per_s, replica_time_per_round_s, steady_state_tpot_s


def test_steady_state_by_hand():
    # 64 sequences, 20 ms cycle, 80 ms stall per prompt, 256 output tokens each: 64/256 = 0.25 prompts per cycle
    # -> the replica spends 20 + 0.25 × 80 = 40 ms per round of 64 tokens (1600 tok/s); a user waits only for the
    # 63 others: 20 + 63/256 × 80 = 39.6875 ms per token
    assert steady_state_tpot_s(0.020, 64, 0.080, 256) == pytest.approx(0.0396875)
    round_s = replica_time_per_round_s(0.020, 64, 0.080, 256)
    assert round_s == pytest.approx(0.040)
    assert output_tokens_per_s(64, round_s) == pytest.approx(1600.0)


def test_batch_one_is_not_charged_its_own_prefill():
    # the case: one sequence, 4000-token prompt, 10 output tokens: its prefill is TTFT's, not TPOT's
    assert steady_state_tpot_s(0.0149, 1, 0.34, 10) == pytest.approx(0.0149)
    assert replica_time_per_round_s(0.0149, 1, 0.34, 10) == pytest.approx(0.0149 + 0.034)


def test_vectorized():
    tpot = steady_state_tpot_s(np.array([0.01, 0.01]), np.array([1, 128]), 0.1, 128)
    np.testing.assert_allclose(tpot, [0.01, 0.01 + 127 / 128 * 0.1])
    rnd = replica_time_per_round_s(np.array([0.01, 0.01]), np.array([1, 128]), 0.1, 128)
    np.testing.assert_allclose(output_tokens_per_s(np.array([1, 128]), rnd), [1 / (0.01 + 0.1 / 128), 128 / 0.11])


def test_no_prefill_cost_is_the_cycle():
    assert steady_state_tpot_s(0.015, 512, 0.0, 100) == pytest.approx(0.015)
