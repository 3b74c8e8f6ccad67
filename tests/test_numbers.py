"""planner/numbers.py: the one number check and the one rounding helper every reader and JSON writer uses."""
from __future__ import annotations

import math

from planner.numbers import is_number, is_real, is_whole, round6


def test_is_real_accepts_finite_ints_and_floats_only():
    assert is_real(3) and is_real(-2.5) and is_real(0)
    for bad in (True, False, math.inf, -math.inf, math.nan, "3", None, [1]):
        assert not is_real(bad), bad


def test_is_number_allows_non_finite_but_not_bools():
    assert is_number(math.inf) and is_number(1) and not is_number(True) and not is_number("1")


def test_is_whole_is_an_int_not_a_bool():
    assert is_whole(7) and not is_whole(7.0) and not is_whole(True) and not is_whole(None)


def test_round6_keeps_six_significant_digits():
    assert round6(1234567.89) == 1234570.0
    assert round6(0.000123456789) == 0.000123457
    assert round6(2) == 2.0 and isinstance(round6(2), float)


def test_one_tolerance_for_limits_and_demand():
    from planner.numbers import TOLERANCE, covers, within

    assert within(1.0, 1.0) and within(1.0 + TOLERANCE / 2, 1.0) and not within(1.0 + 2 * TOLERANCE, 1.0)
    assert covers(1.0, 1.0) and covers(1.0 - TOLERANCE / 2, 1.0) and not covers(1.0 - 2 * TOLERANCE, 1.0)
    assert not within(math.nan, 1.0) and not covers(math.nan, 1.0)  # NaN meets nothing
