"""Number checks and rounding shared by every module that reads user numbers or writes JSON."""
from __future__ import annotations

import math
from typing import Any


def is_number(x: Any) -> bool:
    """An int or a float, not a bool (JSON and TOML booleans are ints to Python)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def is_real(x: Any) -> bool:
    """A real number as users write one: an int or a float (not a bool), finite."""
    return is_number(x) and math.isfinite(x)


def is_whole(x: Any) -> bool:
    """An integer (not a bool)."""
    return isinstance(x, int) and not isinstance(x, bool)


def round6(x: float) -> float:
    """Round to 6 significant digits so JSON is stable across platforms' last-bit float differences."""
    return float(f"{float(x):.6g}")


# A floating-point re-estimate meets a limit it passes by at most this share: the last-bit differences between the
# search's conservatively rounded integers and the float model. One constant for every SLO, demand and budget check.
TOLERANCE = 1e-9


def within(value: float, limit: float) -> bool:
    """value ≤ limit up to TOLERANCE (a latency SLO, a budget)."""
    return value <= limit * (1 + TOLERANCE)


def covers(supply: float, demand: float) -> bool:
    """supply ≥ demand up to TOLERANCE (capacity against demand)."""
    return supply >= demand * (1 - TOLERANCE)
