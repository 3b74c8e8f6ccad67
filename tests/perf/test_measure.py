"""planner/perf/measure.py and `planner calibrate`: fitting a GPU-run record on CPU (the recorded H100 run), the
catalog it writes, and the one-line refusals without PyTorch or a GPU."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from click.testing import CliRunner

from planner.catalog import CATALOG, load_catalog
from planner.cli import main
from planner.perf import calibrate as cal
from planner.perf.measure import MEASURED_TERMS, catalog_toml, fit_record


@pytest.fixture(scope="module")
def record():
    return json.loads((CATALOG / "calibration" / "h100-sxm-pytorch-bf16.json").read_text(encoding="utf-8"))


def test_fitted_catalog_reproduces_its_own_measurements(record, tmp_path, catalog):
    """Issue 14: the catalog `calibrate` writes, passed back with --catalog, reproduces the measurements it was fitted
    on within 10 % (here the recorded H100 run; a few fit rounds keep the test fast)."""
    values, table = fit_record(record, "h100-sxm", catalog, rounds=4)
    assert set(values) == set(MEASURED_TERMS)
    path = tmp_path / "measured.toml"
    path.write_text(catalog_toml("h100-sxm", values, record, table), encoding="utf-8")
    mine = load_catalog(path)
    assert mine.perf.for_gpu("h100-sxm", "hopper").profile[-1] == "h100-sxm"
    rows = [r for r in cal.gpu_run_rows(record, dataset="m", source="m", gpu="h100-sxm") if r.split != "reference"]
    e = cal.errors(rows, mine.perf, mine)
    assert np.max(np.abs(e)) <= 0.10
    # the per-GPU profile leaves other GPUs of the family alone
    assert mine.perf.for_gpu("h200", "hopper").profile == catalog.perf.for_gpu("h200", "hopper").profile


def test_record_without_layer_cases_is_refused(catalog):
    with pytest.raises(Exception, match="no decode_step or prefill cases"):
        fit_record({"micro_benchmarks": {"read_only_TBps": 3.0}, "cases": []}, "h100-sxm", catalog)


def test_cli_refusals_are_one_line_exit_2(tmp_path):
    r = CliRunner().invoke(main, ["calibrate", "--gpu", "h100-sxm"])
    assert r.exit_code == 2 and "exactly one of --measure or --record" in r.output
    r = CliRunner().invoke(main, ["calibrate", "--gpu", "h100-sxm", "--record", str(tmp_path / "none.json")])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1
    if importlib.util.find_spec("torch") is None:
        r = CliRunner().invoke(main, ["calibrate", "--measure", "--gpu", "h100-sxm", "--out", str(tmp_path / "x.toml")])
        assert r.exit_code == 2 and r.output.strip().splitlines() == [
            "error: planner calibrate --measure needs PyTorch: pip install 'inference-planner[measure]'"]
