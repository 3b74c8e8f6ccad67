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
