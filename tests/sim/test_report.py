"""planner/sim/report.py: durations as a person reads them, and the one-line bar chart."""
from __future__ import annotations

import pytest

from planner.sim.report import _spark, duration


@pytest.mark.parametrize("seconds, text", [
    (None, "-"), (4.2e-6, "4.2 µs"), (0.006, "6 ms"), (0.4234, "423 ms"), (1.2449, "1.24 s"),
    (462.0, "7.7 min"), (12.9 * 3600, "12.9 h"), (3.2 * 86400, "3.2 days"), (59.99, "60 s"),
])
def test_duration_picks_the_largest_unit_not_above_the_value(seconds, text):
    assert duration(seconds) == text


def test_spark_scales_to_the_maximum_and_resamples_by_maxima():
    assert _spark([]) == ""
    assert _spark([0.0, 1.0, 2.0, 7.0]) == "▁▂▃█"  # level round(v / 7 · 7)
    assert _spark([0.0, 0.0]) == "▁▁"  # an all-zero series does not divide by zero
    assert _spark([1.0, 7.0, 0.0, 0.0], width=2) == "█▁"  # two columns, each the max of its pair


def test_simulation_text_says_what_the_warm_up_left_out():
    from planner.sim import simulate_plan
    from planner.sim.report import simulation_text

    plan = {"model": "llama-3.1-8b", "gpu": "h100-sxm", "parallelism": {"tp": 1, "pp": 1, "ep": 1, "replicas": 1},
            "batch": 8, "precision": {"weights": "bf16", "kv": "bf16"},
            "workload": {"isl": 256, "osl": 32, "rate_rps": 5.0}, "slo": {"ttft_s": 0.5, "tpot_s": 0.05}}
    warm = simulation_text(simulate_plan(plan, requests=40, warmup_requests=10))
    assert "40 requests simulated; the first 10 are warm-up, left out of TTFT, TPOT and attainment" in warm
    assert "warm-up" not in simulation_text(simulate_plan(plan, requests=40))
