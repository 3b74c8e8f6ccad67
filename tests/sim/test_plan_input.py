"""The plan adapter: plan JSON and estimate JSON in, a validated PlanSpec out; malformed files are one-line
InputErrors that name the problem."""
import json

import pytest

from planner.errors import InputError
from planner.sim.plan_input import load_plan, plan_from_dict

PLAN = {
    "model": "llama-3.1-8b", "gpu": "h100-sxm",
    "parallelism": {"tp": 1, "pp": 1, "ep": 1, "replicas": 2}, "batch": 32,
    "precision": {"weights": "fp8", "kv": "fp8"}, "placement": {"layers_per_stage": [32]},
    "workload": {"isl": 1000, "osl": 200, "rate_rps": 4.5}, "slo": {"ttft_s": None, "tpot_s": 0.03},
}


def test_plan_form():
    s = plan_from_dict(PLAN)
    assert (s.model, s.gpu, s.tp, s.pp, s.ep, s.replicas, s.batch) == ("llama-3.1-8b", "h100-sxm", 1, 1, 1, 2, 32)
    assert (s.weights, s.kv, s.isl, s.osl, s.rate_rps) == ("fp8", "fp8", 1000, 200, 4.5)
    assert s.layers_per_stage == (32,) and s.ttft_slo_s is None and s.tpot_slo_s == 0.03


def test_estimate_form(tmp_path):
    from click.testing import CliRunner

    from planner.cli import main

    out = CliRunner().invoke(main, ["estimate", "--model", "llama-3.1-8b", "--gpu", "h100", "--batch", "16",
                                    "--isl", "512", "--osl", "128", "--json"])
    assert out.exit_code == 0, out.output
    p = tmp_path / "est.json"
    p.write_text(out.output, encoding="utf-8")
    s = load_plan(p)
    assert (s.tp, s.pp, s.batch, s.isl, s.osl, s.replicas, s.rate_rps) == (1, 1, 16, 512, 128, 1, None)


@pytest.mark.parametrize("drop,field", [
    (("parallelism", "tp"), "parallelism.tp"), (("parallelism", "replicas"), "parallelism.replicas"),
    (("batch",), "batch"), (("precision", "kv"), "precision.kv"), (("workload", "osl"), "workload.osl"),
    (("model",), "model"), (("gpu",), "gpu"),
])
def test_missing_field_is_named(drop, field):
    doc = json.loads(json.dumps(PLAN))
    cur = doc
    for k in drop[:-1]:
        cur = cur[k]
    del cur[drop[-1]]
    with pytest.raises(InputError, match=f"missing field '{field}'"):
        plan_from_dict(doc, where="p.json")


@pytest.mark.parametrize("patch,match", [
    ({"batch": 0}, "'batch' must be a positive integer"),
    ({"batch": "8"}, "'batch' must be a positive integer"),
    ({"parallelism": [1, 2]}, "'parallelism' must be an object"),
    ({"workload": {"isl": 10, "osl": 5, "rate_rps": -1}}, "'workload.rate_rps' must be a number > 0"),
    ({"placement": {"layers_per_stage": [16, "x"]}}, "layers_per_stage"),
    ({"speculative": {"draft": "llama-3.1-8b", "gamma": 4, "alpha": 1.5}}, r"speculative.alpha"),
])
def test_bad_values(patch, match):
    with pytest.raises(InputError, match=match):
        plan_from_dict({**PLAN, **patch}, where="p.json")


def test_unreadable_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"model": "\xff"}')
    with pytest.raises(InputError, match="not UTF-8"):
        load_plan(bad)
    bad.write_text('{"model": "x",', encoding="utf-8")
    with pytest.raises(InputError, match="invalid JSON"):
        load_plan(bad)
    bad.write_text("[]", encoding="utf-8")
    with pytest.raises(InputError, match="expected a JSON object"):
        load_plan(bad)
    with pytest.raises(InputError, match="cannot read"):
        load_plan(tmp_path / "missing.json")


def test_demand_in_output_tokens_gives_the_rate():
    s = plan_from_dict({**PLAN, "workload": {"isl": 1000, "osl": 200, "rate_rps": None, "output_tokens_per_s": 900}})
    assert s.rate_rps == pytest.approx(4.5)


def test_schema_version_agrees_with_the_plan_module():
    from planner.plan import SCHEMA_VERSION
    from planner.sim.plan_input import PLAN_SCHEMA_VERSION

    assert PLAN_SCHEMA_VERSION == SCHEMA_VERSION
    assert plan_from_dict({**PLAN, "schema_version": SCHEMA_VERSION}).batch == 32
    with pytest.raises(InputError, match="schema_version 99 is not supported"):
        plan_from_dict({**PLAN, "schema_version": 99})


def test_hostile_json(tmp_path):
    p = tmp_path / "deep.json"
    p.write_bytes(b"[" * 100000)
    with pytest.raises(InputError, match="nested too deeply|invalid JSON"):
        load_plan(p)
    with pytest.raises(InputError, match="'batch' must be a positive integer"):
        plan_from_dict({**PLAN, "batch": float("nan")})
    with pytest.raises(InputError, match="'batch' must be a positive integer"):
        plan_from_dict({**PLAN, "batch": float("inf")})


def test_a_plan_from_planner_plan_simulates(tmp_path):
    from click.testing import CliRunner

    from planner.cli import main
    from planner.sim import simulate_plan

    out = CliRunner().invoke(main, ["plan", "--model", "llama-3.1-8b", "--gpus", "h100-sxm", "--isl", "1024",
                                    "--osl", "256", "--rate-rps", "20", "--ttft-ms", "500", "--tpot-ms", "40",
                                    "--json", "--time-limit-s", "10"])
    if out.exit_code != 0:
        pytest.skip(f"planner plan is not available in this checkout: {out.output.strip()[:200]}")
    p = tmp_path / "plan.json"
    p.write_text(out.output, encoding="utf-8")
    s = load_plan(p)
    assert s.rate_rps == 20.0 and s.ttft_slo_s == 0.5 and s.tpot_slo_s == 0.04
    r = simulate_plan(s, requests=300, seed=1)
    assert r["requests"]["simulated"] == 300 and r["slo_attainment"]["both"] is not None
