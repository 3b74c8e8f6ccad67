"""planner/specs/workload.py: demand and SLO conversions, validation at the edge."""
from __future__ import annotations

import pytest

from planner.errors import InputError
from planner.specs.workload import SLO, Workload


def test_demand_from_rate_and_context():
    w = Workload(isl=2000, osl=500, rate_rps=3.0)
    assert w.context_tokens == 2500
    assert w.demand_output_tokens_per_s == 3.0 * 500
    assert Workload(isl=1, osl=1, output_tokens_per_s=42.0).demand_output_tokens_per_s == 42.0
    assert Workload(isl=1, osl=1).demand_output_tokens_per_s is None


@pytest.mark.parametrize("kwargs, field", [
    ({"isl": 0, "osl": 1}, "--isl"), ({"isl": 1, "osl": -5}, "--osl"), ({"isl": 1.5, "osl": 1}, "--isl"),
    ({"isl": 1, "osl": 1, "rate_rps": 1.0, "output_tokens_per_s": 1.0}, "either"),
])
def test_workload_validation(kwargs, field):
    with pytest.raises(InputError, match=field):
        Workload(**kwargs)


def test_slo_from_flags():
    s = SLO.from_flags(ttft_ms=500, tpot_ms=40)
    assert s.ttft_s == pytest.approx(0.5) and s.tpot_s == pytest.approx(0.04)
    assert s.min_tokens_per_s_user == pytest.approx(25.0)
    assert SLO.from_flags(min_tokens_per_s_user=20).tpot_s == pytest.approx(0.05)
    assert SLO.from_flags().tpot_s == pytest.approx(0.03)  # default: 33.3 tok/s/user
    with pytest.raises(InputError, match="contradictory"):
        SLO.from_flags(tpot_ms=40, min_tokens_per_s_user=30)
