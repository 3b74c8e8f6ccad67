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


def test_bare_perf_params_are_the_shipped_calibrated_values():
    """One source for the perf defaults (issue 11 item 4): PerfParams() takes catalog/perf.toml's [perf] with
    catalog/calibration/fit.toml's [fitted] over it, read here independently of planner.perf.params."""
    import tomllib
    from dataclasses import fields

    from planner.catalog import CATALOG, load_catalog
    from planner.perf import params as params_module

    assert str(params_module._catalog_dir()) == str(CATALOG)
    perf = tomllib.loads((CATALOG / "perf.toml").read_text(encoding="utf-8"))["perf"]
    fitted = tomllib.loads((CATALOG / "calibration" / "fit.toml").read_text(encoding="utf-8"))["fitted"]
    p = PerfParams()
    for f in fields(p):
        if f.name in ("engine", "profiles", "profile"):
            continue
        assert getattr(p, f.name) == fitted.get(f.name, perf[f.name]), f.name
    assert p.hbm_efficiency == fitted["hbm_efficiency"] != perf["hbm_efficiency"]  # the fit, not the start value
    shipped = load_catalog().perf
    assert all(getattr(p, f.name) == getattr(shipped, f.name) for f in fields(p)
               if f.name not in ("engine", "profiles", "profile"))


def test_estimate_without_params_uses_the_shipped_catalog():
    from planner.catalog import load_catalog, load_model
    from planner.perf.estimate import Config, estimate
    from planner.specs.workload import Workload

    cat = load_catalog()
    m, w = load_model("llama-3.1-8b"), Workload(isl=1000, osl=200)
    cfg = Config(gpu=cat.gpu("h100-sxm"), tp=1, batch=8)
    bare, shipped = estimate(m, cfg, w), estimate(m, cfg, w, cat.perf)
    assert bare.tpot_s == shipped.tpot_s and bare.profile == shipped.profile == ("vllm",)
    # a different parameter set gives a different answer (the comparison can fail)
    assert estimate(m, cfg, w, cat.perf.updated({"hbm_efficiency": 0.5}, "t")).tpot_s > bare.tpot_s
