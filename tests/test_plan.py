"""planner/plan.py: the Plan JSON's derived numbers, checked by hand against the plan's own layout, metrics and
price: the hourly cost, $ per million tokens on each basis, the solver block, and the schema."""
from __future__ import annotations

import jsonschema
import pytest

import planner
from planner.plan import SCHEMA_VERSION, plan_schema

REQUEST = dict(isl=1000, osl=200, gpus="h100-sxm", weights="fp8", kv="fp8", time_limit_s=10)


@pytest.fixture(scope="module")
def capacity_plan() -> dict:
    return planner.plan("llama-3.1-8b", **REQUEST).to_dict()


@pytest.fixture(scope="module")
def demand_plan() -> dict:
    return planner.plan("llama-3.1-8b", rate_rps=2.0, ttft_ms=2000, **REQUEST).to_dict()


def test_hourly_cost_is_gpus_times_the_gpu_price(capacity_plan, demand_plan):
    for d in (capacity_plan, demand_plan):
        par = d["parallelism"]
        assert d["gpus_per_replica"] == par["tp"] * par["dp"] * par["pp"]
        assert d["total_gpus"] == d["gpus_per_replica"] * par["replicas"]
        assert d["cost"]["usd_per_hour"] == pytest.approx(d["total_gpus"] * d["cost"]["usd_per_hour_per_gpu"])


def test_without_a_demand_tokens_are_priced_at_full_capacity(capacity_plan):
    d, c = capacity_plan, capacity_plan["cost"]
    out_per_hour = d["metrics"]["output_tokens_per_s"] * d["parallelism"]["replicas"] * 3600
    assert c["basis"] == "capacity" and c["usd_per_million_output_tokens_at_demand"] is None
    assert c["usd_per_million_output_tokens"] == pytest.approx(c["usd_per_hour"] / out_per_hour * 1e6, rel=1e-5)
    assert c["usd_per_million_output_tokens_at_capacity"] == c["usd_per_million_output_tokens"]
    # all tokens: the same dollars over (ISL + OSL) / OSL = 6 times the tokens
    assert c["usd_per_million_tokens"] == pytest.approx(c["usd_per_million_output_tokens"] * 200 / 1200, rel=1e-5)
    s = d["solver"]
    assert s["objective_unit"] == "1e-6 USD per million output tokens"
    # the integer objective rounds every time term up to whole ns (per layer, per stage, per prefill chunk), so it
    # sits just above the floating-point cost: within 1e-4 of it (the batch the exact space picks moves the sum of
    # those roundings past a single unit)
    assert -1 <= s["objective"] - c["usd_per_million_output_tokens"] * 1e6 <= max(1, 1e-4 * s["objective"])


def test_with_a_demand_tokens_are_priced_at_the_demand(demand_plan):
    d, c = demand_plan, demand_plan["cost"]
    assert d["workload"]["rate_rps"] == 2.0 and c["basis"] == "demand"
    demand_per_hour = 2.0 * 200 * 3600  # 2 requests/s x 200 output tokens
    assert c["usd_per_million_output_tokens"] == pytest.approx(c["usd_per_hour"] / demand_per_hour * 1e6, rel=1e-5)
    assert c["usd_per_million_output_tokens_at_demand"] == c["usd_per_million_output_tokens"]
    assert c["usd_per_million_output_tokens_at_capacity"] <= c["usd_per_million_output_tokens"]  # demand <= capacity
    assert d["solver"]["objective_unit"].endswith("USD per hour")
    assert d["slo"] == {"ttft_s": 2.0, "tpot_s": pytest.approx(0.03), "percentile": 99.0}
    assert "simulation" in d  # the percentile confirmation (planner/search/percentile.py)


def test_the_json_follows_its_schema_and_names_the_cheapest_as_its_first_alternative(capacity_plan, demand_plan):
    for d in (capacity_plan, demand_plan):
        jsonschema.validate(d, plan_schema())
        assert d["schema_version"] == SCHEMA_VERSION
    a = capacity_plan["alternatives"][0]
    assert (a["gpu"], a["total_gpus"], a["usd_per_hour"]) == (capacity_plan["gpu"], capacity_plan["total_gpus"],
                                                             capacity_plan["cost"]["usd_per_hour"])
