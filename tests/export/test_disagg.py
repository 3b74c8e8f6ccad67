"""planner/export/disagg.py: a disaggregated plan exports both pools for every engine that serves them apart
(each pool's command checked against the recorded flags, the role settings and a router for every replica), and
k8s or an engine without the feature is refused in one line."""
from __future__ import annotations

import subprocess

import pytest

from planner import api
from planner.errors import InputError
from planner.export import disagg as export_disagg
from planner.export import export
from planner.export.disagg import pool_plan

from .conftest import EXAMPLES
from .flags import check_argv, engine_doc, yaml_keys

yaml = pytest.importorskip("yaml")

DSV3 = dict(model="deepseek-v3", gpus="h200", max_gpus=16, isl=4000, osl=500, ttft_ms=2000, tpot_ms=50,
            slo_percentile=50)


@pytest.fixture(scope="module")
def plans():
    gpt4 = next(p for p in EXAMPLES if p.stem == "gpt4-moe-a100-vs-h100")
    out = {"dsv3": api.plan(**DSV3).to_dict(), "gpt4": api.plan(gpt4).to_dict()}
    assert all("pools" in d for d in out.values()), "both requests plan disaggregated pools"
    return out


def _args(argv: list[str]) -> dict[str, str]:
    return dict(zip(argv, argv[1:]))


@pytest.mark.parametrize("which", ["dsv3", "gpt4"])
@pytest.mark.parametrize("engine", ["sglang", "vllm", "trtllm"])
def test_both_pools_export(plans, which, engine):
    plan = plans[which]
    ex = export(plan, engine)
    pools = plan["pools"]
    assert ex.replicas == {r: pools[r]["replicas"] for r in ("prefill", "decode")}
    script = ex.script()
    assert subprocess.run(["sh", "-n"], input=script, text=True).returncode == 0
    for role, part in ex.pools.items():
        assert check_argv(engine, part.argv) == [], role
        lay = part.layout["emitted"]
        assert lay["pp"] == pools[role]["pp"] and lay["tp"] * lay["dp"] == pools[role]["tp"] * pools[role]["dp"]
        a = _args(part.argv)
        if engine == "sglang":
            assert a["--disaggregation-mode"] == role
        if engine == "vllm":
            assert '"kv_connector":"NixlConnector"' in a["--kv-transfer-config"]
        if engine == "trtllm":
            opts = yaml.safe_load(ex.files[a["--extra_llm_api_options"]])
            assert set(yaml_keys(opts)) <= {k["name"] for k in engine_doc("trtllm")["yaml_key"]}
            assert opts["cache_transceiver_config"]["backend"] == "UCX"
            assert opts.get("disable_overlap_scheduler", False) == (role == "prefill")
    if engine == "sglang":  # the prefill server is told the decode layout; the router lists every replica
        dec = pools["decode"]
        a = _args(ex.pools["prefill"].argv)
        assert int(a["--disaggregation-decode-tp"]) == dec["tp"] * dec["dp"]
        assert int(a["--disaggregation-decode-dp"]) == dec["dp"]
        assert int(_args(ex.pools["decode"].argv)["--disaggregation-prefill-pp"]) == pools["prefill"]["pp"]
        assert ex.router_argv[:4] == engine_doc("sglang")["disaggregation"]["router"]
        assert ex.router_argv.count("--prefill") == pools["prefill"]["replicas"]
        assert ex.router_argv.count("--decode") == pools["decode"]["replicas"]
    if engine == "trtllm":
        cfg = yaml.safe_load(ex.files["disagg-config.yaml"])
        assert cfg["context_servers"]["num_instances"] == len(cfg["context_servers"]["urls"]) == pools["prefill"]["replicas"]
        assert cfg["generation_servers"]["num_instances"] == pools["decode"]["replicas"]
        assert set(yaml_keys(cfg)) <= set(engine_doc("trtllm")["disaggregation"]["config_keys"])
    if engine == "vllm":
        assert ex.router_argv == [] and any("P/D proxy" in n for n in ex.notes)
    d = ex.to_dict()
    assert d["mode"] == "disaggregated" and set(d["pools"]) == {"prefill", "decode"}


def test_pool_plan_is_each_pool_as_one_layout(plans):
    plan = plans["dsv3"]
    for role in ("prefill", "decode"):
        p, sub = plan["pools"][role], pool_plan(plan, role)
        assert sub["parallelism"] == {k: p[k] for k in ("tp", "dp", "pp", "ep", "replicas")}
        assert sub["placement"]["layers_per_stage"] == p["layers_per_stage"] and sub["batch"] == p["batch"]
        assert "pools" not in sub and sub["total_gpus"] == p["gpus"]
    broken = {**plan, "pools": {"prefill": plan["pools"]["prefill"]}}
    with pytest.raises(InputError, match="'pools' must hold a 'prefill' and a 'decode'"):
        export(broken, "sglang")


def test_k8s_and_engines_without_the_feature_are_refused_in_one_line(plans, monkeypatch):
    with pytest.raises(InputError) as e:
        export(plans["dsv3"], "k8s")
    assert "\n" not in str(e.value) and "no manifest export" in str(e.value)
    real = export_disagg.support_matrix()
    fake = {**real, "features": {**real["features"], "vllm": {**real["features"]["vllm"], "supported": ["pp"]}}}
    monkeypatch.setattr(export_disagg, "support_matrix", lambda: fake)
    with pytest.raises(InputError) as e:
        export(plans["dsv3"], "vllm")
    msg = str(e.value)
    assert "\n" not in msg and "does not serve prefill and decode pools apart" in msg
    assert "--engine sglang or trtllm" in msg


@pytest.mark.parametrize("model, gpus, isl, osl", [
    ("llama-3.1-8b", "a100-80gb", 2000, 200),
    ("llama-3.1-70b", "h100-sxm,l40s", 4000, 300),
    ("mixtral-8x7b", "h200", 1000, 500),
    ("llama-3.1-8b", "mi300x", 8000, 100),
])
def test_forced_pairs_verify_and_export_where_an_engine_runs_both_pools(model, gpus, isl, osl):
    """--disagg on over a few models and GPU types: the pair verifies in floating point, its JSON holds together,
    and it exports (or is refused in one line) for every engine."""
    from planner.disagg import verify
    from planner.errors import InfeasibleError
    from planner.plan import plan_schema

    import jsonschema

    try:
        p = api.plan(model=model, gpus=gpus, isl=isl, osl=osl, ttft_ms=3000, disagg="on")
    except InfeasibleError:
        return
    d = p.to_dict()
    jsonschema.validate(d, plan_schema())
    assert verify(p.disagg.request, p.disagg.choice) == []
    pools = d["pools"]
    assert d["total_gpus"] == sum(x["gpus"] for x in pools.values())
    assert d["metrics"]["ttft_s"] == pytest.approx(pools["prefill"]["latency_s"] + d["kv_transfer_s"], abs=2e-6)
    assert pools["prefill"]["kv"] == pools["decode"]["kv"]  # the cache is sent as computed
    for engine in ("sglang", "vllm", "trtllm"):
        try:
            ex = export(d, engine)
        except InputError as e:
            assert "\n" not in str(e) and ("pool:" in str(e) or "cannot" in str(e))
            continue
        for part in ex.pools.values():
            assert check_argv(engine, part.argv) == []
