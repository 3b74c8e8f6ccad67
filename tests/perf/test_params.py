"""planner/perf/params.py: named perf assumptions, their shipped values and validation of overrides."""
from __future__ import annotations

import pytest

from planner.errors import InputError
from planner.perf.params import PerfParams


def test_shipped_values_are_the_documented_ones(catalog):
    p = catalog.perf
    # catalog/perf.toml: vLLM's gpu_memory_utilization 0.9 leaves 10 %; max_num_batched_tokens 8192
    assert p.memory_reserve_fraction == 0.10 and p.max_batched_tokens == 8192 and p.link_efficiency == 0.80
    # calibration/fit.toml overrides the three fitted factors
    assert 0 < p.hbm_efficiency <= 1 and 0 < p.flops_efficiency <= 1 and p.step_overhead_s >= 0


def test_updated_overrides_and_validates():
    p = PerfParams().updated({"hbm_efficiency": 0.5, "max_batch": 64.0}, "x.toml")
    assert p.hbm_efficiency == 0.5 and p.max_batch == 64 and isinstance(p.max_batch, int)
    for bad, match in (({"hbm_eff": 0.5}, "unknown perf parameter 'hbm_eff'"),
                       ({"flops_efficiency": 1.5}, r"\(0, 1\]"),
                       ({"memory_reserve_fraction": 1.0}, "< 1"),
                       ({"max_batch": 2.5}, "positive integer"),
                       ({"p2p_latency_s": -1}, ">= 0"),
                       ({"p2p_latency_s": True}, ">= 0")):
        with pytest.raises(InputError, match=match) as e:
            PerfParams().updated(bad, "x.toml")
        assert str(e.value).startswith("x.toml:")
