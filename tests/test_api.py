"""planner/api.py: a `PlanRequest` becomes the search's `Request` (names resolved, defaults filled in, the
engine's perf profile applied), and the keyword form (`make_request`) is the same request."""
from __future__ import annotations

from pathlib import Path

import pytest

from planner import api, plan_request
from planner.errors import InputError
from planner.search.space import DEFAULT_KV, DEFAULT_PP, DEFAULT_WEIGHTS
from planner.specs.workload import SLO, Workload

CONFIGS = Path(__file__).resolve().parent / "data" / "configs"


def test_search_request_resolves_names_and_fills_the_search_defaults():
    pr = plan_request.PlanRequest(model="llama-3.1-8b", workload=Workload(isl=1000, osl=200, rate_rps=2.0),
                                  slo=SLO(ttft_s=0.5, tpot_s=0.04),
                                  limits=plan_request.SearchLimits(gpus="H100, a100-80gb",
                                                                   max_gpus_per_type={"H100": 8}))
    req, cat = api.search_request(pr)
    assert [g.id for g in req.gpus] == ["a100-80gb", "h100-sxm"]  # aliases resolved, sorted by id
    assert req.max_gpus_per_type == {"h100-sxm": 8}  # keyed by the catalog id
    # pp and tp left open: the exact space (every depth, every head divisor); the grid is req.grid()'s
    assert (req.weights, req.kv, req.pp, req.tp) == (DEFAULT_WEIGHTS, DEFAULT_KV, None, None)
    assert req.grid().pp == DEFAULT_PP
    assert req.workload is pr.workload and req.slo is pr.slo and req.time_limit_s == 30.0
    assert cat.perf == cat.perf.with_engine(None)  # the vLLM profile by default


def test_a_quantized_checkpoint_is_searched_at_its_own_precision_unless_asked():
    req, _ = api.make_request(str(CONFIGS / "gpt-oss-20b.json"), isl=1000, osl=200, gpus="h100-sxm")
    assert req.weights == ("mxfp4",)
    req, _ = api.make_request(str(CONFIGS / "gpt-oss-20b.json"), isl=1000, osl=200, gpus="h100-sxm",
                              weights="bf16, fp8")
    assert req.weights == ("bf16", "fp8")


def test_the_keyword_form_is_the_plan_request_form():
    kw, _ = api.make_request("llama-3.1-8b", isl=1000, osl=200, gpus="h100-sxm", ttft_ms=500, tpot_ms=40,
                             pp=[1, 2], max_gpus=16)
    pr = plan_request.resolve("llama-3.1-8b", {"isl": 1000, "osl": 200, "gpus": "h100-sxm", "ttft_ms": 500,
                                               "tpot_ms": 40, "pp": [1, 2], "max_gpus": 16})
    dc, _ = api.search_request(pr)
    assert kw == dc and kw.pp == (1, 2) and kw.slo == SLO(ttft_s=0.5, tpot_s=0.04)


def test_isl_plus_osl_beyond_the_context_is_refused_before_any_search():
    with pytest.raises(InputError, match="exceeds llama-3.1-8b's context of 131072 tokens"):
        api.make_request("llama-3.1-8b", isl=131_000, osl=1000, gpus="h100-sxm")
    with pytest.raises(InputError, match="exceeds --max-model-len 4096"):
        api.make_request("llama-3.1-8b", isl=4000, osl=200, max_model_len=4096)


def test_export_defaults_to_the_engine_the_plan_names():
    import planner

    d = planner.plan("llama-3.1-8b", isl=1000, osl=200, gpus="h100-sxm", weights="fp8", kv="fp8",
                     time_limit_s=10).to_dict()
    named = {**d, "serving_engine": {**d["serving_engine"], "id": "sglang"}}
    assert api.export(named).to_dict()["engine"] == "sglang"
    older = {k: v for k, v in d.items() if k != "serving_engine"}  # a plan written before serving_engine
    assert api.export({**older, "perf_profile": {**d["perf_profile"], "engine": "trtllm"}}).to_dict()["engine"] \
        == "trtllm"
    assert api.export({**older, "perf_profile": {}}).to_dict()["engine"] == "vllm"
    assert api.export(d, "trtllm").to_dict()["engine"] == "trtllm"  # an explicit engine wins
