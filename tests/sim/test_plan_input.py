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
