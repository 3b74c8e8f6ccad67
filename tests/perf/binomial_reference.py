"""A 40-digit reference for the routing statistics' tests (tests/perf/test_moe.py, test_kernels.py): the binomial
probabilities at large n, where exact rational sums are too slow."""
from __future__ import annotations

import math
from decimal import Decimal, localcontext
from fractions import Fraction

DIGITS = 40


def to_decimal(v: float) -> Decimal:
    """A float's exact value as a Decimal."""
    f = Fraction(v)
    return Decimal(f.numerator) / Decimal(f.denominator)


def binomial_probabilities_40_digits(n: int, q: float) -> dict[int, Decimal]:
    """P(X = x), X ~ Binomial(n, q), for x over mean ± 40σ (the mass outside is below 1e-300), in 40-digit decimals:
    the ratio recurrence from the mode, normalized over the range. Sum them inside `localcontext()` with
    prec = DIGITS too."""
    with localcontext() as ctx:
        ctx.prec = DIGITS
        qd = to_decimal(q)
        mean, sd = n * q, math.sqrt(n * q * (1 - q))
        lo, hi = max(0, int(mean - 40 * sd)), min(n, int(mean + 40 * sd) + 2)
        mode = int((n + 1) * q)
        w = {mode: Decimal(1)}
        for y in range(mode, hi):
            w[y + 1] = w[y] * (n - y) / (y + 1) * qd / (1 - qd)
        for y in range(mode, lo, -1):
            w[y - 1] = w[y] * y / (n - y + 1) * (1 - qd) / qd
        total = sum(w.values())
        return {x: w[x] / total for x in sorted(w)}
