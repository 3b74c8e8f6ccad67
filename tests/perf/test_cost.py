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


def test_marginal_split_by_hand():
    """$3.60/h = $0.001/s. A prompt's stall of 0.2 s over 1000 input tokens: $0.0002 / 1000 tokens = $0.2/M input.
    A 20 ms decode cycle per token shared by 64 sequences: $0.001 × 0.02 / 64 per output token = $0.3125/M."""
    from planner.perf.cost import marginal_usd_per_million

    inp, out = marginal_usd_per_million(3.6, 0.020, 64, 0.2, 1000)
    assert inp == pytest.approx(0.2) and out == pytest.approx(0.3125)


def test_marginal_split_adds_up_to_the_capacity_cost():
    """ISL × $/M input + OSL × $/M output = OSL × $/M output tokens at full capacity (one request's cost)."""
    from planner import api

    for kw in (dict(batch=1, isl=4000, osl=10, tp=2, weights="fp8", kv="fp8"), dict(batch=64, isl=1000, osl=300, tp=4)):
        e = api.estimate("llama-3.1-70b", "h100-sxm", **kw)
        inp, out = e.marginal_usd_per_million
        assert kw["isl"] * inp + kw["osl"] * out == pytest.approx(kw["osl"] * e.usd_per_million_output_tokens,
                                                                  rel=1e-9)
