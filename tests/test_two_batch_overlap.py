"""Two-batch overlap in a plan (api._plan_tbo): the request key and flag, "auto" planning SGLang MoE requests both
ways and keeping the cheaper, the plan JSON's perf_profile.two_batch_overlap, the simulator replaying it and the
exports (SGLang turns it on; vLLM says it does not)."""
from __future__ import annotations

import jsonschema
import pytest
from click.testing import CliRunner

from planner import api
from planner.cli import main
from planner.errors import InputError
from planner.plan import plan_schema

# DeepSeek-V3 on up to 16 H100 nodes: wide EP across nodes, where the all-to-all is worth hiding
WIDE_EP = dict(model="deepseek-v3", gpus="h100-sxm", max_gpus=128, isl=2000, osl=100, ttft_ms=5000, tpot_ms=100,
               slo_percentile=50, engine="sglang")


@pytest.fixture(scope="module")
def plans():
    return {mode: api.plan(**WIDE_EP, two_batch_overlap=mode).to_dict() for mode in ("auto", "on", "off")}


def test_auto_keeps_the_cheaper_of_both(plans):
    on, off, auto = (plans[m]["solver"]["objective"] for m in ("on", "off", "auto"))
    assert auto == min(on, off)
    assert on < off  # on this wide-EP request the overlap pays, so auto takes it
    assert plans["auto"]["perf_profile"]["two_batch_overlap"] is True
    assert plans["on"]["perf_profile"]["two_batch_overlap"] is True
    assert "two_batch_overlap" not in plans["off"]["perf_profile"]
    for d in plans.values():
        jsonschema.validate(d, plan_schema())


def test_sglang_export_turns_it_on(plans):
    with_tbo = api.export(plans["auto"], "sglang").to_dict()
    text = repr(with_tbo)
    assert "--enable-two-batch-overlap" in text and "'--moe-a2a-backend', 'deepep'" in text
    assert "--enable-two-batch-overlap" not in repr(api.export(plans["off"], "sglang").to_dict())
    note = repr(api.export(plans["auto"], "vllm").to_dict())
    assert "assume two-batch overlap" in note and "does not turn it on" in note
    colocated = api.plan(**WIDE_EP, two_batch_overlap="on", disagg="off").to_dict()
    assert colocated["parallelism"]["ep"] > 1
    assert "does not turn it on" in repr(api.export(colocated, "k8s").to_dict())  # vLLM inside the pods
    assert "--enable-two-batch-overlap" in repr(api.export(colocated, "k8s", k8s_engine="sglang").to_dict())


def test_simulation_replays_it(plans):
    """The same plan replayed with and without the flag: the simulator times its steps as the plan did."""
    d = plans["auto"]
    plain = {**d, "perf_profile": {k: v for k, v in d["perf_profile"].items() if k != "two_batch_overlap"}}
    a = api.simulate(d, rate_rps=2, requests=60)
    b = api.simulate(plain, rate_rps=2, requests=60)
    assert a["ttft_s"]["p50"] != b["ttft_s"]["p50"] and a["tpot_s"]["p50"] != b["tpot_s"]["p50"]


def test_other_engines_and_dense_models_plan_without_it():
    d = api.plan(model="mixtral-8x7b", gpus="h100-sxm", isl=1000, osl=200, max_gpus=8, tpot_ms=50).to_dict()
    assert "two_batch_overlap" not in d["perf_profile"]  # auto without --engine sglang: off


def test_bad_values_are_one_line_errors():
    with pytest.raises(InputError, match="--two-batch-overlap must be one of auto, on, off"):
        api.plan(model="llama-3.1-8b", isl=100, osl=10, two_batch_overlap="maybe")
    with pytest.raises(InputError, match="on or off for one configuration"):
        api.estimate("deepseek-v3", "h200", tp=1, dp=8, ep=8, batch=64, isl=100, osl=10, two_batch_overlap="auto")
    r = CliRunner().invoke(main, ["plan", "--model", "llama-3.1-8b", "--isl", "100", "--osl", "10",
                                  "--two-batch-overlap", "maybe"])
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_estimate_flag():
    kw = dict(tp=1, dp=8, ep=8, batch=512, isl=2000, osl=100, weights="fp8", kv="bf16")
    on = api.estimate("deepseek-v3", "h200", two_batch_overlap="on", **kw).to_dict()
    off = api.estimate("deepseek-v3", "h200", **kw).to_dict()
    assert on["perf_profile"]["two_batch_overlap"] is True and "two_batch_overlap" not in off["perf_profile"]
    assert on["metrics"]["ttft_s"] != off["metrics"]["ttft_s"]


def test_auto_compares_the_objective_the_json_prints():
    # _plan_tbo reads the objective from the plan (not its whole JSON): the same number, colocated or disaggregated
    for disagg in ("off", "on"):
        p = api.plan(model="llama-3.1-8b", gpus="h100-sxm", isl=1000, osl=300, disagg=disagg)
        d = p.to_dict()
        assert ("pools" in d) == (disagg == "on")
        assert api._objective(p) == d["solver"]["objective"]
