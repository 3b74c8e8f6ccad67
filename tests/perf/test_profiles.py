"""Perf profiles per accelerator family and engine (planner/perf/params.py, catalog/perf.toml [profile.*])."""
from __future__ import annotations

import numpy as np
import pytest

from planner.catalog import load_catalog, load_model
from planner.errors import InputError
from planner.perf.estimate import Config, estimate
from planner.perf.params import PerfParams
from planner.specs.workload import Workload


def _params() -> PerfParams:
    return PerfParams(hbm_efficiency=0.5, layer_overhead_s=0.0).with_profiles({
        "hopper": {"hbm_efficiency": 0.6, "layer_overhead_s": 1e-5},
        "vllm": {"step_overhead_s": 0.004},
        "hopper.vllm": {"hbm_efficiency": 0.7},
        "h200": {"layer_overhead_s": 2e-5},
    }, "test")


def test_profiles_apply_family_engine_pair_then_gpu():
    p = _params()
    h100 = p.for_gpu("h100-sxm", "hopper")
    assert (h100.hbm_efficiency, h100.layer_overhead_s, h100.step_overhead_s) == (0.7, 1e-5, 0.004)
    assert h100.profile == ("hopper", "vllm", "hopper.vllm")
    h200 = p.for_gpu("h200", "hopper")
    assert h200.layer_overhead_s == 2e-5 and h200.profile[-1] == "h200"
    # another engine: the hopper.vllm pair no longer applies
    t = p.with_engine("trtllm").for_gpu("h100-sxm", "hopper")
    assert (t.hbm_efficiency, t.step_overhead_s) == (0.6, p.step_overhead_s) and t.profile == ("hopper",)
    # a family without a profile keeps the base values
    a = p.with_engine("trtllm").for_gpu("a100-80gb", "ampere")
    assert a.hbm_efficiency == 0.5 and a.profile == ()


def test_for_rows_gives_arrays_where_profiles_differ():
    rows = [("h100-sxm", "hopper"), ("a100-80gb", "ampere"), ("h200", "hopper")]
    r = _params().for_rows(rows)
    assert np.allclose(r.hbm_efficiency, [0.7, 0.5, 0.7])
    assert np.allclose(r.layer_overhead_s, [1e-5, 0.0, 2e-5])
    assert r.step_overhead_s == 0.004  # the same for every row: stays a scalar


def test_engine_and_profile_validation():
    with pytest.raises(InputError, match="--engine must be one of vllm, sglang, trtllm"):
        PerfParams().with_engine("tgi")
    with pytest.raises(InputError, match=r"x.toml \[profile.hopper\]: unknown perf parameter 'hbm'"):
        PerfParams().with_profiles({"hopper": {"hbm": 0.5}}, "x.toml")
    with pytest.raises(InputError, match=r"\(0, 1\]"):
        PerfParams().with_profiles({"vllm": {"hbm_efficiency": 2.0}}, "x.toml")


def test_user_catalog_profile_overrides_shipped(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text('[profile."h100-sxm"]\nlayer_overhead_s = 0.0002\n', encoding="utf-8")
    cat = load_catalog(f)
    p = cat.perf.for_gpu("h100-sxm", "hopper")
    assert p.layer_overhead_s == 0.0002 and p.profile[-1] == "h100-sxm"
    bad = tmp_path / "bad.toml"
    bad.write_text('[profile.hopper]\nstep_overhead_s = 100\n', encoding="utf-8")
    with pytest.raises(InputError, match="plausible maximum"):
        load_catalog(bad)


def test_shipped_catalog_has_a_family_and_sm_count_per_accelerator(catalog):
    for g in catalog.accelerators.values():
        assert g.family in ("ampere", "ada", "hopper", "blackwell", "cdna3", "tpu") and g.sm_count > 0, g.id
    assert catalog.gpu("h100-sxm").sm_count == 132 and catalog.gpu("mi300x").sm_count == 304


def test_estimate_reports_its_profile_and_engine_changes_the_answer(catalog):
    m = load_model("llama-3.1-8b")
    cfg = Config(gpu=catalog.gpu("h100-sxm"), batch=1)
    w = Workload(isl=1000, osl=200)
    v = estimate(m, cfg, w, catalog.perf.with_engine("vllm"))
    t = estimate(m, cfg, w, catalog.perf.with_engine("trtllm"))
    # Hopper's kernel fractions are the fitted base values (calibration/fit.toml [fitted]); the engines add theirs
    assert v.to_dict()["perf_profile"] == {"engine": "vllm", "family": "hopper", "tables": ["vllm"]}
    assert t.to_dict()["perf_profile"]["tables"] == ["trtllm", "hopper.trtllm"]
    assert v.tpot_s != t.tpot_s


def test_plan_json_names_its_engine_and_export_defaults_to_it(tmp_path):
    from click.testing import CliRunner

    from planner.cli import main

    r = CliRunner().invoke(main, ["plan", "--model", "llama-3.1-8b", "--gpus", "h100-sxm", "--isl", "1000",
                                  "--osl", "200", "--engine", "trtllm", "--json"])
    assert r.exit_code == 0, r.output
    import json
    d = json.loads(r.stdout)
    assert d["perf_profile"]["engine"] == "trtllm" and d["perf_profile"]["family"] == "hopper"
    path = tmp_path / "plan.json"
    path.write_text(r.stdout, encoding="utf-8")
    out = CliRunner().invoke(main, ["export", str(path)])
    assert out.exit_code == 0 and "TensorRT-LLM launch" in out.output
    bad = CliRunner().invoke(main, ["plan", "--model", "llama-3.1-8b", "--isl", "10", "--osl", "10", "--engine", "tgi"])
    assert bad.exit_code == 2 and bad.output.strip().splitlines() == [
        "error: --engine must be one of vllm, sglang, trtllm, got 'tgi'"]
