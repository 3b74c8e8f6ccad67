"""planner/disagg.py: pool sizing by hand, the choice (disaggregation wins where prompts are long and the TPOT
limit tight, loses where prompts are short and outputs long), the plan JSON and its schema, and the request key."""
from __future__ import annotations

import json
import math
from dataclasses import replace

import jsonschema
import pytest
from click.testing import CliRunner

from planner import api
from planner.cli import main
from planner.disagg import (MAX_POOL_REPLICAS, NEAR_CHEAPEST_PERCENT, balanced_sizes, best_pair, capacity_objective,
                            demand_sizes, pair_cost_units, verify)
from planner.errors import InputError
from planner.fleet.pools import CAP_UNITS_PER_RPS, Pool, replica_requests_per_s, estimate_pool
from planner.plan import plan_schema
from planner.search.space import Request, Row
from planner.specs.workload import SLO, Workload

# the DeepSeek-V3 case: long prompts (4000) against a 50 ms TPOT, where a colocated replica's decode steps
# carry every other request's prefill chunks
DSV3 = dict(model="deepseek-v3", gpus="h200", max_gpus=16, isl=4000, osl=500, ttft_ms=2000, tpot_ms=50,
            slo_percentile=50)
# built against disaggregation: tiny prompts, long outputs, one small GPU type, so a separate prefill pool is
# mostly idle GPUs
SHORT_PROMPTS = dict(model="llama-3.1-8b", gpus="h100-sxm", isl=64, osl=2000, tpot_ms=30)


def _pool(h100, role: str, gpus: int, capacity_rps: float, latency_ns: int = 0) -> Pool:
    return Pool(0, role, Row(h100, "fp8", "fp8", gpus, 1, 1, 1), (32,), int(capacity_rps * CAP_UNITS_PER_RPS),
                latency_ns, 0, 0)


def _request(catalog, **kw) -> Request:
    m = api._model("llama-3.1-8b")
    return Request(model=m, workload=Workload(1000, 100, **kw.pop("workload", {})), slo=SLO(ttft_s=1.0, tpot_s=0.05),
                   gpus=(catalog.gpu("h100-sxm"),), **kw)


def test_full_capacity_sizing_by_hand(catalog, h100):
    # prefill 3 prompts/s on 8 GPUs, decode 2 requests/s on 4 GPUs: 2 prefill + 3 decode replicas serve 6 req/s
    # with neither pool idle; every smaller pair idles one of them
    p, d = _pool(h100, "prefill", 8, 3), _pool(h100, "decode", 4, 2)
    price = math.ceil(h100.usd_per_hour * 10**4 - 1e-9)  # 1e-4 USD per GPU-hour, rounded up
    assert pair_cost_units(p, d, 2, 3) == (2 * 8 + 3 * 4) * price
    # µUSD per million output tokens: ($/h / 3600) / (6 req/s · OSL 100) · 1e12
    obj = capacity_objective(p, d, 2, 3, 100)
    assert obj == math.ceil(28 * price / 1e4 / 3600 / 600 * 1e12 - 1e-6)
    assert capacity_objective(p, d, 1, 1, 100) > capacity_objective(p, d, 1, 2, 100) > obj
    assert (1, 1) in balanced_sizes(p, d, 4, 4) and (2, 3) in balanced_sizes(p, d, 4, 4)
    found, evaluated = best_pair(_request(catalog), [p, d], 2048)
    assert found == (p, d, 2, 3, obj) and evaluated > 0  # ties (4, 6) broken to fewer GPUs
    # a GPU limit of 24: 2 + 3 replicas need 28 GPUs; the best within 24 is 1 prefill + 2 decode (3 req/s, 16 GPUs)
    found, _ = best_pair(_request(catalog, max_gpus=24), [p, d], 2048)
    assert found[2:4] == (1, 2) and found[4] == capacity_objective(p, d, 1, 2, 100)


def test_full_capacity_takes_the_fewest_gpus_near_the_cheapest(catalog, h100):
    # prefill 100 prompts/s and decode 99 requests/s, both on 8 GPUs: 1 + 1 replicas serve 99 req/s (the prefill
    # pool 1 % idle); 99 + 100 replicas would balance exactly, ~0.5 % cheaper per token but on 1,592 GPUs
    p, d = _pool(h100, "prefill", 8, 100), _pool(h100, "decode", 8, 99)
    small, exact = capacity_objective(p, d, 1, 1, 100), capacity_objective(p, d, 63, 64, 100)
    assert exact < small <= exact * 1.01
    found, _ = best_pair(_request(catalog), [p, d], 2048)
    assert found == (p, d, 1, 1, small)
    # decode 90 requests/s: 1 + 1 idles 10 % of the prefill pool, beyond NEAR_CHEAPEST_PERCENT (5), so a larger
    # pair is taken
    d90 = _pool(h100, "decode", 8, 90)
    found, _ = best_pair(_request(catalog), [p, d90], 2048)
    assert found[2:4] != (1, 1)
    assert found[4] <= capacity_objective(p, d90, 9, 10, 100) * (1 + NEAR_CHEAPEST_PERCENT / 100)


def test_demand_sizing_by_hand(catalog, h100):
    p, d = _pool(h100, "prefill", 8, 3), _pool(h100, "decode", 4, 2)
    assert demand_sizes(p, d, 5 * CAP_UNITS_PER_RPS) == (2, 3)  # ⌈5/3⌉, ⌈5/2⌉
    assert demand_sizes(p, d, 6 * CAP_UNITS_PER_RPS + 1) == (3, 4)
    req = _request(catalog, workload={"rate_rps": 5.0})
    found, _ = best_pair(req, [p, d], 2048)
    assert found[2:] == (2, 3, pair_cost_units(p, d, 2, 3))


def test_pairs_respect_the_ttft_limit(catalog, h100):
    # a prefill pool whose latency alone misses the 1 s TTFT never pairs
    slow = _pool(h100, "prefill", 8, 30, latency_ns=1_000_000_001)
    p, d = _pool(h100, "prefill", 8, 3), _pool(h100, "decode", 4, 2)
    found, _ = best_pair(_request(catalog), [slow, p, d], 2048)
    assert found[0] is p
    assert best_pair(_request(catalog), [slow, d], 2048)[0] is None


def test_balanced_sizes_stay_in_range(h100):
    p, d = _pool(h100, "prefill", 8, 7), _pool(h100, "decode", 8, 1)
    sizes = balanced_sizes(p, d, MAX_POOL_REPLICAS, MAX_POOL_REPLICAS)
    assert all(1 <= a <= MAX_POOL_REPLICAS and 1 <= b <= MAX_POOL_REPLICAS for a, b in sizes)
    assert (1, 7) in sizes and (1, 8) in sizes


@pytest.fixture(scope="module")
def dsv3():
    return api.plan(**DSV3)


def test_disaggregation_wins_where_prefill_stalls_the_decoders(dsv3):
    d = dsv3.to_dict()
    g = d["disaggregation"]
    assert g["chosen"] == "disaggregated" and g["mode"] == "auto"
    assert g["disaggregated_usd_per_million_output_tokens"] < g["colocated_usd_per_million_output_tokens"]
    assert d["cost"]["usd_per_million_output_tokens"] == g["disaggregated_usd_per_million_output_tokens"]
    pre, dec = d["pools"]["prefill"], d["pools"]["decode"]
    assert d["total_gpus"] == pre["gpus"] + dec["gpus"] <= 16
    # TTFT = prefill latency + KV transfer; TPOT = the decode cycle, within the limits
    assert d["metrics"]["ttft_s"] == pytest.approx(pre["latency_s"] + d["kv_transfer_s"], abs=2e-6)
    assert d["metrics"]["ttft_s"] <= 2.0 and d["metrics"]["tpot_s"] <= 0.05
    # the pair serves what its slower pool serves
    served = min(pre["replicas"] * pre["requests_per_s_per_replica"], dec["replicas"] * dec["requests_per_s_per_replica"])
    assert d["metrics"]["output_tokens_per_s"] == pytest.approx(served * 500, rel=1e-5)
    assert d["cost"]["usd_per_hour"] == pytest.approx(pre["usd_per_hour"] + dec["usd_per_hour"], rel=1e-6)
    assert d["cost"]["usd_per_million_output_tokens"] == pytest.approx(
        d["cost"]["usd_per_hour"] / 3600 / d["metrics"]["output_tokens_per_s"] * 1e6, rel=1e-5)
    assert verify(dsv3.disagg.request, dsv3.disagg.choice) == []


def test_disaggregated_plan_matches_the_schema_and_repeats(dsv3):
    d = dsv3.to_dict()
    jsonschema.validate(d, plan_schema())
    assert d["solver"]["space"] == "exact"  # the pools over every PP, TP and micro-batch (the default)
    assert json.dumps(api.plan(**DSV3).to_dict()) == json.dumps(d)


def test_pool_capacities_come_from_the_perf_model(dsv3):
    """A prefill replica with DP attention groups prefills one prompt per group at once: capacity = DP / (slowest
    stage + hop) (`fleet.pools.prefill_period_s`); a decode replica B / (cycle · OSL)."""
    c, req = dsv3.disagg.choice, dsv3.disagg.request
    for pp in (c.prefill, c.decode):
        e = estimate_pool(req.model, pp.pool, req.workload, api._catalog(None).perf)
        assert pp.requests_per_s == replica_requests_per_s(req.model, pp.pool, req.workload, e, api._catalog(None).perf)
        # the integer capacity (rounded down) is conservative and within 0.1 % of the float one
        assert pp.pool.capacity / CAP_UNITS_PER_RPS <= pp.requests_per_s * (1 + 1e-9)
        assert pp.pool.capacity / CAP_UNITS_PER_RPS == pytest.approx(pp.requests_per_s, rel=1e-3)
    r = c.decode.pool.row
    assert c.decode.requests_per_s == pytest.approx(r.batch / (c.decode.estimate.decode_cycle_s * 500))


def test_disaggregation_loses_where_prompts_are_short():
    d = api.plan(**SHORT_PROMPTS).to_dict()
    g = d["disaggregation"]
    assert g["chosen"] == "aggregated" and "pools" not in d
    assert g["disaggregated_usd_per_million_output_tokens"] > g["colocated_usd_per_million_output_tokens"]
    assert "dearer than colocated" in g["reason"]
    jsonschema.validate(d, plan_schema())
    # --disagg on takes it anyway; off leaves it out
    on = api.plan(**SHORT_PROMPTS, disagg="on").to_dict()
    assert on["disaggregation"]["chosen"] == "disaggregated" and "(--disagg on)" in on["disaggregation"]["reason"]
    assert on["cost"]["usd_per_million_output_tokens"] == g["disaggregated_usd_per_million_output_tokens"]
    off = api.plan(**SHORT_PROMPTS, disagg="off").to_dict()
    assert "disaggregation" not in off
    assert {k: v for k, v in d.items() if k != "disaggregation"} == off


def test_text_shows_both_pools_and_why():
    r = CliRunner().invoke(main, ["plan", *[f"--{k.replace('_', '-')}={v}" for k, v in DSV3.items()]])
    assert r.exit_code == 0, r.output
    assert "disaggregation     disaggregated" in r.stdout and "cheaper than colocated" in r.stdout
    assert "    prefill  " in r.stdout and "    decode   " in r.stdout and "KV transfer" in r.stdout


def test_bad_mode_is_one_line():
    with pytest.raises(InputError, match="--disagg must be one of auto, on, off"):
        api.plan(**SHORT_PROMPTS, disagg="maybe")
    r = CliRunner().invoke(main, ["plan", "--model", "llama-3.1-8b", "--isl", "10", "--osl", "10",
                                  "--disagg", "maybe"])
    assert r.exit_code == 2 and "Traceback" not in r.output



def test_estimate_each_pool_of_a_pair(dsv3):
    """`estimate --role`: each pool of the plan, estimated alone, gives the plan's per-replica figures."""
    d = dsv3.to_dict()
    sides = {}
    for role, p in d["pools"].items():
        e = api.estimate("deepseek-v3", p["gpu"], tp=p["tp"], dp=p["dp"], pp=p["pp"], ep=p["ep"], batch=p["batch"],
                         isl=4000, osl=500, weights=p["weights"], kv=p["kv"],
                         layers_per_stage=tuple(p["layers_per_stage"]))
        m = api.pool_estimate(e, role)
        assert m["requests_per_s"] == pytest.approx(p["requests_per_s_per_replica"], rel=1e-5)
        sides[role] = m["kv_transfer_s"]
        if role == "decode":  # B / (cycle · OSL), and the cycle is the plan's TPOT
            assert m["tpot_s"] == pytest.approx(d["metrics"]["tpot_s"], rel=1e-5)
            assert m["requests_per_s"] == pytest.approx(p["batch"] / (e.decode_cycle_s * 500), rel=1e-5)
            assert m["usd_per_million_output_tokens"] == pytest.approx(
                e.usd_per_hour / 3600 / (m["requests_per_s"] * 500) * 1e6, rel=1e-4)
        else:
            assert m["latency_s"] == pytest.approx(p["latency_s"], rel=1e-5)
    # each pool's busiest GPU moves its share over its own NIC: the pair's transfer is the slower side's
    assert max(sides.values()) == pytest.approx(d["kv_transfer_s"], rel=1e-5)
    r = CliRunner().invoke(main, ["estimate", "--model", "deepseek-v3", "--gpu", "h200", "--tp", "4", "--dp", "2",
                                  "--ep", "8", "--batch", "128", "--isl", "4000", "--osl", "500", "--weights", "fp8",
                                  "--kv", "fp8", "--role", "prefill"])
    assert r.exit_code == 2 and "--batch must be pp x dp = 2" in r.stderr and "Traceback" not in r.output


def test_with_a_demand_the_pair_is_confirmed_by_simulation():
    d = api.plan("llama-3.1-70b", isl=1000, osl=100, gpus="h100-sxm", rate_rps=20, ttft_ms=1000, tpot_ms=30,
                 slo_percentile=90).to_dict()
    g = d["disaggregation"]
    assert g["chosen"] == "disaggregated" and g["basis"] == "demand"
    sim = g["simulation"]
    assert sim["rate_rps"] == 20 and sim["percentile"] == 90
    assert sim["ttft_s"] <= 1.0 and sim["tpot_s"] <= 0.03
    assert sim["replicas"] == {r: d["pools"][r]["replicas"] for r in ("prefill", "decode")}
    jsonschema.validate(d, plan_schema())
    # the replay `planner simulate` gives is the same simulation
    again = api.simulate(d, rate_rps=20, requests=sim["requests"], seed=sim["seed"])
    assert again["ttft_s"]["p90"] == sim["ttft_s"] and again["tpot_s"]["p90"] == sim["tpot_s"]


def test_a_pair_that_misses_and_cannot_grow_is_not_chosen(dsv3):
    from dataclasses import replace

    from planner.disagg import confirm

    c, req = dsv3.disagg.choice, dsv3.disagg.request
    # 1.5x what the pair serves overloads its slower pool (since #14's grouped-GEMM fix that is the prefill pool,
    # ~18.6 requests/s, so the p50 TTFT misses); 16 GPUs leave no room to grow it
    busy = replace(req, workload=Workload(4000, 500, rate_rps=1.5 * c.requests_per_s))
    out, sim, why = confirm(busy, c, 50.0, None)
    assert out is None and "GPU limits leave no room" in why
    assert sim["ttft_s"] > 2.0 or sim["tpot_s"] > 0.05


def test_only_the_disaggregated_plan_is_feasible(dsv3):
    from planner.disagg import decide
    from planner.errors import InfeasibleError
    from planner.plan import Plan

    req = dsv3.disagg.request
    perf = api._catalog(None).perf

    def no_colocated(skip=None):
        raise InfeasibleError(["tpot: colocated replicas stall on prefills"])

    plan, out = decide(req, perf, "auto", no_colocated, 50.0, False)
    assert plan is None and out.chosen and out.reason.startswith("no colocated plan is feasible")
    d = Plan(None, slo_percentile=50.0, disagg=out).to_dict()
    jsonschema.validate(d, plan_schema())
    assert d["disaggregation"]["colocated_usd_per_million_output_tokens"] is None
    # no pools either: the colocated reasons, and with --disagg on the disaggregated one too
    # (a 4000-token DeepSeek-V3 prefill takes 88 ms on TP8 H200 since MLA's prefill is counted in its multi-head
    # form: 50 ms leaves no pool)
    tight = replace(req, slo=SLO(ttft_s=0.05, tpot_s=0.05))
    with pytest.raises(InfeasibleError) as e:
        decide(tight, perf, "auto", no_colocated, 50.0, False)
    assert e.value.reasons == ["tpot: colocated replicas stall on prefills"]
    with pytest.raises(InfeasibleError) as e:
        decide(tight, perf, "on", no_colocated, 50.0, False)
    assert e.value.reasons[-1].startswith("disaggregated: no prefill pool")


# ---- --pool-space: the disaggregated pools over every PP and TP (default, disagg.exact_space_pools) or the grid -----
def _twelve_heads(mib: int) -> Request:
    """A reduced 8-layer dense model with 12 heads on an H100 cut to `mib` MiB: TP 3 and 6 divide the heads but are
    not on the grid's powers of two (and TP 8 does not divide them), so the grid's pools miss them."""
    from planner.catalog import load_catalog
    from planner.specs.model import LayerKind, ModelSpec

    cat = load_catalog()
    m = ModelSpec(name="twelve-heads", num_layers=8, hidden_size=12 * 128, vocab_size=8000, num_heads=12,
                  num_kv_heads=12, head_dim=128, max_context=8192, mlp_gated=True,
                  dense_intermediate_size=12 * 128 * 4, num_dense_layers=8,
                  layer_kinds=tuple(LayerKind("dense", "full", 0) for _ in range(8)))
    g = replace(cat.gpu("h100-sxm"), id="h100-small", memory_bytes=mib * 2**20)
    return Request(model=m, workload=Workload(2000, 200), slo=SLO(ttft_s=5.0, tpot_s=0.05), gpus=(g,),
                   weights=("bf16",), kv=("bf16",), max_gpus_per_type={g.id: 64})


def test_exact_pool_space_finds_an_off_grid_pool_the_grid_misses(catalog):
    """With 900 MiB per GPU the cheapest pair's decode pool runs TP 6 (off the grid): only --pool-space exact finds
    it, and its pair is the best pair over the unpruned exact pools (every PP, TP and micro-batch,
    tests/fleet/test_pool_space.py checks those against an exhaustive oracle)."""
    from planner.disagg import exact_space_pools, search_disagg
    from planner.fleet.pool_space import exact_pools, pool_request
    from planner.search.space import DEFAULT_PP, GRID_TP, pools_space

    p = catalog.perf
    req = replace(_twelve_heads(900), pool_space="grid")
    grid, _ = search_disagg(req, p)
    exact, _ = search_disagg(replace(req, pool_space="exact"), p)
    assert pools_space(req) == "grid" and pools_space(replace(req, pool_space="exact")) == "exact"
    assert grid is not None and exact is not None and exact.objective < grid.objective
    assert all(x.pool.row.tp in GRID_TP and x.pool.row.pp in DEFAULT_PP for x in (grid.prefill, grid.decode))
    assert any(x.pool.row.tp not in GRID_TP for x in (exact.prefill, exact.decode))
    unpruned = exact_pools(0, pool_request(req.model, req.workload, req.slo, req.gpus, weights=req.weights,
                                           kv=req.kv, max_gpus_per_type=req.max_gpus_per_type), p,
                           ("prefill", "decode"))
    ref = best_pair(req, unpruned, p.max_batch)[0]
    assert ref[4] == exact.objective and (ref[0].row, ref[1].row) == (exact.prefill.pool.row, exact.decode.pool.row)
    # the pair-bound pruning drops pools, never adds any
    assert len(exact_space_pools(replace(req, pool_space="exact"), p)) <= len(unpruned)


def test_exact_pool_space_keeps_pinned_tp_and_pp(catalog):
    """Pinned TP or PP degrees hold in the exact pools (solver.space "pinned"); pinned batches keep the grid's
    pools (exact_pools takes no batch pins), so the option changes nothing there."""
    from planner.disagg import candidate_pools, exact_space_pools, search_disagg
    from planner.search.space import pools_space

    p = catalog.perf
    req = replace(_twelve_heads(900), pool_space="exact")
    pinned = replace(req, tp=(2, 3))
    pools = exact_space_pools(pinned, p)
    assert pools and {x.row.tp for x in pools} <= {2, 3} and 3 in {x.row.tp for x in pools}
    assert pools_space(pinned) == "pinned" and pools_space(replace(req, pp=(1,))) == "pinned"
    assert {x.row.pp for x in exact_space_pools(replace(req, pp=(1, 3)), p)} <= {1, 3}
    batch = replace(req, batches=(1, 32))
    assert pools_space(batch) == "grid"
    got, want = search_disagg(batch, p)[0], search_disagg(replace(batch, pool_space="grid"), p)[0]
    assert got.objective == want.objective and got.pools == want.pools == len(candidate_pools(batch, p))


def test_exact_pool_space_gives_the_grid_s_plan_where_the_grid_s_is_exact():
    """SHORT_PROMPTS (8B, H100s, disaggregation forced): the grid's pair is already the exact space's best, so the
    plan is the same but says space "exact"; the JSON repeats byte for byte and matches the schema."""
    grid = api.plan(**SHORT_PROMPTS, disagg="on", pool_space="grid").to_dict()
    exact = api.plan(**SHORT_PROMPTS, disagg="on").to_dict()  # the default
    assert grid["solver"]["space"] == "grid" and exact["solver"]["space"] == "exact"
    assert exact["cost"] == grid["cost"] and exact["pools"] == grid["pools"]
    assert exact["solver"]["objective"] == grid["solver"]["objective"]
    jsonschema.validate(exact, plan_schema())
    again = api.plan({**SHORT_PROMPTS, "disagg": "on", "pool_space": "exact"}).to_dict()  # the request key
    assert json.dumps(again) == json.dumps(exact)
    pinned = api.plan(**SHORT_PROMPTS, disagg="on", pool_space="exact", tp=[1]).to_dict()
    assert pinned["solver"]["space"] == "pinned" and pinned["pools"]["decode"]["tp"] == 1


def test_bad_pool_space_is_one_line(tmp_path):
    with pytest.raises(InputError, match="--pool-space must be one of grid, exact, got 'all'"):
        api.plan(**SHORT_PROMPTS, pool_space="all")
    base = ["plan", "--model", "llama-3.1-8b", "--isl", "10", "--osl", "10"]
    r = CliRunner().invoke(main, [*base, "--pool-space", "all"])
    assert r.exit_code == 2 and "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1
    f = tmp_path / "r.toml"
    f.write_text('model = "llama-3.1-8b"\nisl = 10\nosl = 10\npool_space = "every"\n')
    r = CliRunner().invoke(main, ["plan", str(f)])
    assert r.exit_code == 2 and "--pool-space must be one of grid, exact" in r.output
    assert len(r.output.strip().splitlines()) == 1
