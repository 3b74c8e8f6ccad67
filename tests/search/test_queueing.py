"""planner/search/queueing.py: the TTFT-percentile queueing bound, by hand and against the exact chain."""
from __future__ import annotations

import math

import numpy as np
import pytest

from planner.search import queueing as q


def test_mm1_by_hand():
    # one slot, no stall: M/M/1 with λ = 0.5/s, S = 1 s: P(wait) = ρ = 0.5, W_99 = ln(0.5 / 0.01) / (1 − 0.5)
    w = q.wait_quantile_s(1, 0.5, 1.0, 0.0, 99)
    assert float(w) == pytest.approx(2 * math.log(50), rel=1e-6)
    assert float(q.wait_quantile_s(1, 0.4, 1.0, 0.0, 50)) == 0.0  # P(wait) = 0.4 ≤ 1 − 0.5
    assert math.isinf(float(q.wait_quantile_s(1, 1.0, 1.0, 0.0, 99)))  # λ = μ: unstable


def _exact_p_wait(c, lam, s0, s):
    """The chain's probability of waiting, summing every weight (the bound keeps only those near the mode)."""
    w = [1.0]
    for n in range(1, c + 1):
        w.append(w[-1] * lam * (s0 + n * s) / n)
    mu_c = c / (s0 + c * s)
    tail = w[c] / (1 - lam / mu_c)
    return tail / (sum(w[:c]) + tail), mu_c


@pytest.mark.parametrize("c, lam, s0, s", [(8, 1.0, 5.0, 0.05), (48, 2.0, 6.0, 0.08), (24, 1.67, 3.3, 0.265),
                                           (200, 20.0, 4.0, 0.01), (4, 0.2, 10.0, 0.5)])
def test_bound_is_at_least_the_exact_chain(c, lam, s0, s):
    p_wait, mu_c = _exact_p_wait(c, lam, s0, s)
    exact_w = max(0.0, math.log(p_wait / 0.01) / (mu_c - lam))
    bound = float(q.wait_quantile_s(c, lam, s0, s, 99))
    assert bound >= exact_w - 1e-9
    assert bound <= exact_w + 1e-6 or c > 2 * q.NORMALIZER_TERMS  # the partial sum is exact within ±K terms


def test_log_weight_matches_the_product():
    lam, s0, s = 1.5, 4.0, 0.1
    prod = 1.0
    for n in range(1, 30):
        prod *= lam * (s0 + n * s) / n
        assert float(q.log_weight(n, lam, s0, s)) == pytest.approx(math.log(prod), rel=1e-9)


def test_poisson_quantile_by_hand():
    # Poisson(0.5): P(≤0) 0.607, P(≤1) 0.910, P(≤2) 0.986, P(≤3) 0.998
    np.testing.assert_array_equal(q.poisson_quantile(np.array([0.5, 0.5, 0.5]), 99), [3, 3, 3])
    assert float(q.poisson_quantile(np.array(0.5), 90)) == 1
    assert float(q.poisson_quantile(np.array(0.5), 50)) == 0


def test_more_load_needs_more_replicas():
    from planner.api import make_request
    from planner.search.space import enumerate_rows
    from planner.search.table import Limits, build_table, lower_bounds

    needs = []
    for rate in (2.0, 8.0, 32.0):
        req, cat = make_request("llama-3.1-8b", isl=1000, osl=200, gpus="h100-sxm", rate_rps=rate, ttft_ms=500,
                                weights="fp8", kv="fp8")
        t = build_table(req, enumerate_rows(req, cat.perf.max_batch), cat.perf)
        lim = Limits.of(req, cat.perf.max_batch)
        b = lower_bounds(t, lim)
        mr = q.min_replicas(t, b, q.QueueTarget(99, 0.5, rate), lim.max_replicas)
        ok = b.feasible & (mr > 0)
        assert ok.any()
        needs.append(mr[ok])
        # every candidate's answer meets the bound and one fewer replica does not (or its capacity needs them)
        rt = q.RowTimes.of(t, b, np.flatnonzero(ok))
        at = q.ttft_bound_s(rt, mr[ok], q.QueueTarget(99, 0.5, rate))
        assert np.all(at <= 0.5)
        fewer = q.ttft_bound_s(rt, np.maximum(mr[ok] - 1, 1), q.QueueTarget(99, 0.5, rate))
        assert np.all((fewer > 0.5) | (mr[ok] == np.maximum(1, b.replicas[ok])))
    assert needs[0].min() <= needs[1].min() <= needs[2].min()
