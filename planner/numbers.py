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
