"""planner/sim/metrics.py: percentiles (numpy's linear interpolation), step-function series and time-weighted
means, and the exact queue-length events, against hand computations."""
from __future__ import annotations

import numpy as np
import pytest

from planner.sim.metrics import percentile_key, percentiles, queue_events, r6, step_series_at, time_mean
from planner.sim.replica import Book


def test_percentiles_interpolate_linearly_between_ranks():
    v = np.arange(1.0, 101.0)  # 1..100
    # rank (n − 1)·p/100: p50 → 49.5 → halfway from 50 to 51; p90 → 89.1 → 90.1; p99 → 98.01 → 99.01
    assert percentiles(v) == {"p50": 50.5, "p90": 90.1, "p99": 99.01, "mean": 50.5}
    out = percentiles(v, extra=99.9)  # 98.901 → 99.901, keyed as the plan's SLO percentile
    assert out["p99.9"] == pytest.approx(99.901) and list(out) == ["p50", "p90", "p99", "p99.9", "mean"]
    assert percentiles(np.array([]), extra=95) == {"p50": None, "p90": None, "p95": None, "p99": None, "mean": None}


def test_keys_and_rounding():
    assert [percentile_key(p) for p in (50, 99.0, 99.9)] == ["p50", "p99", "p99.9"]
    assert r6(1 / 3) == 0.333333 and r6(float("nan")) is None and r6(float("inf")) is None


def test_step_series_and_time_weighted_mean():
    t, v = np.array([0.0, 1.0, 3.0]), np.array([0.0, 2.0, 1.0])  # 0 on [0,1), 2 on [1,3), 1 from 3
    assert step_series_at(t, v, np.array([-1.0, 0.0, 2.0, 3.0, 9.0]), before=-5).tolist() == [-5, 0, 2, 1, 1]
    assert time_mean(t, v, 0.0, 4.0) == pytest.approx((0 * 1 + 2 * 2 + 1 * 1) / 4)  # 1.25
    assert time_mean(t, v, 2.0, 4.0) == pytest.approx((2 * 1 + 1 * 1) / 2)  # the window clips the steps
    assert time_mean(t, v, 4.0, 4.0) == 1.0  # an empty window: the last value


def test_queue_length_counts_waiting_requests_and_not_instant_admissions():
    book = Book(np.array([0.0, 1.0, 2.0]), np.array([10, 10, 10]), np.array([5, 5, 5]))
    book.admitted_s[:] = [0.0, 2.5, 2.0]  # request 0 and 2 are admitted the moment they arrive; 1 waits 1.5 s
    book.preempted_at_s.append(3.0)  # one preemption at 3 s, readmitted at 4 s
    book.readmitted_at_s.append(4.0)
    t, q = queue_events(book, np.array([True, True, True]))
    # leaving events sort first at equal times, so the queue never counts an instant admission
    q_at = step_series_at(t, q, np.array([0.0, 1.0, 2.0, 2.5, 3.0, 4.0]))
    assert q_at.tolist() == [0, 1, 1, 0, 1, 0]
    assert q[-1] == 0  # everyone admitted in the end
