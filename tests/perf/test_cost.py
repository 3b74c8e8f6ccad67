"""planner/perf/cost.py: $ per million tokens, on its two bases, against hand computations."""
from __future__ import annotations

import pytest

from planner.perf.cost import all_tokens_basis, usd_per_million, usd_per_million_at


def test_usd_per_million_tokens_at_a_rate():
    # 8 GPUs at $2.50/h = $20/h serving 2,000 output tok/s: 7.2 M tokens per hour, so $20 / 7.2 = $2.777…/M
    assert usd_per_million_at(20.0, 2000.0) == pytest.approx(20.0 / 7.2)
    assert usd_per_million(3.0, 1.5e6) == pytest.approx(2.0)


def test_all_tokens_basis_spreads_the_cost_over_input_and_output():
    # 1000 input + 250 output tokens per request: 1250 tokens cost what 250 output tokens cost
    assert all_tokens_basis(10.0, 1000, 250) == pytest.approx(2.0)
