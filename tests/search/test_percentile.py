"""Issue 12: latency SLOs hold at a percentile (default p99). With a demand, the returned plan, replayed by
`planner simulate` at that demand (Poisson, the request's lengths, its seed), meets every SLO at that percentile."""
import json
import math
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from planner import api
from planner.cli import main
from planner.errors import InfeasibleError
from planner.plan import plan_schema
from planner.search import percentile as pct
from planner.search import queueing
from planner.sim import load_plan, simulate_plan

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args):
    return CliRunner().invoke(main, list(args))


def test_chat_70b_plan_holds_at_p99_when_simulated(tmp_path):
    """Done-when of issue 12: `planner plan examples/chat-70b.toml --json > p.json && planner simulate p.json`
    meets TTFT <= 1 s and the TPOT target at p99."""
    r = _cli("plan", str(ROOT / "examples/chat-70b.toml"), "--json")
    assert r.exit_code == 0, r.output
    (tmp_path / "p.json").write_text(r.stdout, encoding="utf-8")
    d = json.loads(r.stdout)
    jsonschema.validate(d, plan_schema())
    assert d["slo"]["percentile"] == 99.0
    s = _cli("simulate", str(tmp_path / "p.json"), "--json")
    assert s.exit_code == 0, s.output
    sim = json.loads(s.stdout)
    assert sim["ttft_s"]["p99"] <= 1.0
    assert sim["tpot_s"]["p99"] <= d["slo"]["tpot_s"]
    # the plan's own record is that very simulation
    assert d["simulation"]["ttft_s"] == sim["ttft_s"] and d["simulation"]["tpot_s"] == sim["tpot_s"]
    # the engine runs more sequences than the demand keeps in flight on average
    assert d["mean_batch"] < d["batch"]
    # the simulated percentiles are printed in the text output
    text = _cli("plan", str(ROOT / "examples/chat-70b.toml"))
    assert f"p99 {sim['ttft_s']['p99'] * 1000:.1f} ms" in text.output.replace(" / p99", " p99")


def test_multi_replica_plan_is_confirmed_on_one_replica_at_its_share_and_holds_for_the_whole_fleet():
    """Several replicas: the confirmation simulates one replica at rate / replicas in steady state (warm-up left
    out), which `planner simulate --replicas 1 ...` replays exactly; `planner simulate PLAN.json` of the whole
    fleet (least-loaded, from empty) then meets every SLO at the percentile too."""
    d = api.plan("llama-3.1-8b", isl=500, osl=100, gpus="l4", rate_rps=30, ttft_ms=300, disagg="off").to_dict()
    sim, slo = d["simulation"], d["slo"]
    n = d["parallelism"]["replicas"]
    assert n > 1 and sim["simulated_replicas"] == 1 and sim["replicas"] == n
    # warm-up: two request lifetimes' worth of arrivals (2 × the mean sequences in flight, Little's law)
    assert sim["warmup_requests"] == 2 * math.ceil(d["mean_batch"])
    one = simulate_plan(d, replicas=1, rate_rps=30 / n, requests=sim["warmup_requests"] + sim["requests"],
                        warmup_requests=sim["warmup_requests"])
    assert one["ttft_s"] == sim["ttft_s"] and one["tpot_s"] == sim["tpot_s"]
    assert one["requests"]["warmup"] == sim["warmup_requests"]
    fleet = simulate_plan(d)
    assert fleet["ttft_s"]["p99"] <= slo["ttft_s"] and fleet["tpot_s"]["p99"] <= slo["tpot_s"]
    # least-loaded balancing over the fleet only shortens the queue that one replica at its share sees
    assert fleet["ttft_s"]["p99"] <= sim["ttft_s"]["p99"]
    jsonschema.validate(d, plan_schema())
    text = _cli("plan", "--model", "llama-3.1-8b", "--isl", "500", "--osl", "100", "--gpus", "l4", "--rate-rps", "30",
                "--ttft-ms", "300", "--disagg", "off").output
    assert f"one replica at {30 / n:.4g} req/s, its share ({sim['warmup_requests']} warm-up + 2000" in text


def test_warmup_requests_are_left_out_of_the_percentiles(tmp_path):
    d = api.plan("llama-3.1-8b", isl=500, osl=100, gpus="l4", rate_rps=30, ttft_ms=300, disagg="off").to_dict()
    full = simulate_plan(d, requests=300, seed=2)
    warm = simulate_plan(d, requests=300, seed=2, warmup_requests=100)
    assert warm["requests"]["arrived"] == full["requests"]["arrived"] == 300 and "warmup" not in full["requests"]
    assert warm["throughput"] == full["throughput"]  # the run itself is the same
    assert warm["ttft_s"] != full["ttft_s"]
    (tmp_path / "p.json").write_text(json.dumps(d), encoding="utf-8")
    r = _cli("simulate", str(tmp_path / "p.json"), "--warmup-requests", "-1")
    assert r.exit_code == 2 and "--warmup-requests must be a non-negative integer" in r.output
    with pytest.raises(Exception, match="leaves none"):
        simulate_plan(d, requests=50, warmup_requests=50)


def test_max_concurrency_is_the_largest_batch_meeting_tpot():
    d = api.plan(str(ROOT / "examples/chat-70b.toml")).to_dict()
    tpot = d["slo"]["tpot_s"]
    kw = dict(gpu=d["gpu"], tp=d["parallelism"]["tp"], pp=d["parallelism"]["pp"], isl=1000, osl=300,
              weights=d["precision"]["weights"], kv=d["precision"]["kv"])
    pp = d["parallelism"]["pp"]
    at = api.estimate("llama-3.1-70b", batch=d["batch"], **kw)
    above = api.estimate("llama-3.1-70b", batch=d["batch"] + pp, **kw)
    assert at.tpot_s <= tpot < above.tpot_s or not above.fits
    assert d["metrics"]["tpot_s"] == pytest.approx(at.tpot_s, rel=1e-5)


def test_median_slos_cost_no_more_than_p99():
    base = dict(isl=1000, osl=300, gpus="h100-sxm", rate_rps=6.0, ttft_ms=400, min_tokens_per_s_user=33.3)
    p99 = api.plan("llama-3.1-70b", **base).to_dict()
    p50 = api.plan("llama-3.1-70b", slo_percentile=50, **base).to_dict()
    assert p50["cost"]["usd_per_hour"] <= p99["cost"]["usd_per_hour"]
    assert p50["simulation"]["ttft_s"]["p50"] <= 0.4 and p50["slo"]["percentile"] == 50


def test_other_percentiles_are_reported_and_met():
    d = api.plan("llama-3.1-8b", isl=500, osl=100, gpus="h100-sxm", rate_rps=20, ttft_ms=300,
                 slo_percentile=95).to_dict()
    assert d["simulation"]["ttft_s"]["p95"] <= 0.3
    assert simulate_plan(d)["ttft_s"]["p95"] == d["simulation"]["ttft_s"]["p95"]


def test_without_demand_there_is_nothing_to_simulate():
    d = api.plan("llama-3.1-8b", isl=500, osl=100, gpus="h100-sxm").to_dict()
    assert "simulation" not in d and d["mean_batch"] is None and d["slo"]["percentile"] == 99.0


def test_a_miss_tightens_and_resolves(monkeypatch):
    """With the queueing bound switched off the first plan is the steady-state one, which misses at p99 (the
    issue's 51 % TTFT attainment); the loop asks that row for more replicas and solves again until it holds."""
    monkeypatch.setattr(pct, "max_concurrency", lambda model, c, tpot, p, demand=None: c)  # the optimizer's batch as is
    monkeypatch.setattr(queueing, "min_replicas",
                        lambda t, b, target, cap: __import__("numpy").maximum(
                            1, [target.extra_replicas.get(i, 1) for i in range(len(t))]))
    d = api.plan(str(ROOT / "examples/chat-70b.toml")).to_dict()
    assert d["simulation"]["rounds"] > 1
    assert d["simulation"]["ttft_s"]["p99"] <= 1.0


def test_never_returns_a_plan_whose_percentile_misses(monkeypatch):
    monkeypatch.setattr(pct, "MAX_ROUNDS", 1)
    monkeypatch.setattr(pct, "max_concurrency", lambda model, c, tpot, p, demand=None: c)
    with pytest.raises(InfeasibleError, match="still misses"):  # the colocated search's confirmation
        api.plan(str(ROOT / "examples/chat-70b.toml"), disagg="off")


def test_deterministic_and_old_p99_flags_still_work():
    args = ["plan", str(ROOT / "examples/chat-70b.toml"), "--ttft-p99-ms", "800", "--json"]
    a, b = _cli(*args), _cli(*args)
    assert a.exit_code == 0, a.output
    assert a.output == b.output
    d = json.loads(a.output)
    assert d["slo"]["ttft_s"] == 0.8 and d["simulation"]["ttft_s"]["p99"] <= 0.8


@pytest.mark.parametrize("value", ["49", "100", "abc"])
def test_bad_percentile_is_one_line_exit_2(value):
    r = _cli("plan", str(ROOT / "examples/chat-70b.toml"), "--slo-percentile", value)
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_request_file_keys(tmp_path):
    f = tmp_path / "r.toml"
    f.write_text((ROOT / "examples/chat-70b.toml").read_text() + "slo_percentile = 90\nseed = 3\n")
    d = api.plan(str(f)).to_dict()
    assert d["slo"]["percentile"] == 90 and d["simulation"]["seed"] == 3
    assert load_plan  # the plan file form is what simulate reads (tests/sim/test_plan_input.py)
    f.write_text((ROOT / "examples/chat-70b.toml").read_text() + "slo_percentile = 120\n")
    r = _cli("plan", str(f))
    assert r.exit_code == 2 and "slo_percentile" in r.output


def test_cost_is_labelled_with_its_basis():
    """Issue 12 item 7: $/M output tokens at the planned demand and at full capacity, and the marginal split."""
    d = api.plan(str(ROOT / "examples/chat-70b.toml")).to_dict()
    c = d["cost"]
    assert c["basis"] == "demand" and c["usd_per_million_output_tokens"] == c["usd_per_million_output_tokens_at_demand"]
    served = d["workload"]["output_tokens_per_s"]
    assert c["usd_per_million_output_tokens_at_demand"] == pytest.approx(c["usd_per_hour"] / 3600 / served * 1e6,
                                                                         rel=1e-5)
    capacity = d["metrics"]["output_tokens_per_s"] * d["parallelism"]["replicas"]
    assert c["usd_per_million_output_tokens_at_capacity"] == pytest.approx(c["usd_per_hour"] / 3600 / capacity * 1e6,
                                                                           rel=1e-5)
    assert c["usd_per_million_output_tokens_at_capacity"] < c["usd_per_million_output_tokens_at_demand"]
    isl, osl = d["workload"]["isl"], d["workload"]["osl"]
    assert isl * c["usd_per_million_input_tokens_marginal"] + osl * c["usd_per_million_output_tokens_marginal"] == \
        pytest.approx(osl * c["usd_per_million_output_tokens_at_capacity"], rel=1e-4)
    text = _cli("plan", str(ROOT / "examples/chat-70b.toml")).output
    assert "at the planned demand" in text and "at full capacity" in text and "/M input tokens" in text
    free = api.plan("llama-3.1-8b", isl=500, osl=100, gpus="h100-sxm").to_dict()["cost"]
    assert free["basis"] == "capacity" and free["usd_per_million_output_tokens_at_demand"] is None


def test_max_concurrency_keeps_the_demand_served():
    """A MoE plan of the exact space whose replicas just cover the demand (Mixtral-8x22B, 8000/2000 at 50 req/s:
    5 x B200 DP8 EP8 at batch 936) served less at a larger batch that still met TPOT (the prefill stalls grow
    faster than the batch there): the maximum concurrency stops where the demand is still served, so the plan
    verifies instead of raising an internal error."""
    d = api.plan("mixtral-8x22b", isl=8000, osl=2000, min_tokens_per_s_user=20, max_gpus=1024, rate_rps=50,
                 disagg="off").to_dict()
    assert d["solver"]["space"] == "exact"
    assert d["parallelism"]["replicas"] * d["metrics"]["output_tokens_per_s"] >= 50 * 2000 * (1 - 1e-6)
    assert d["simulation"]["tpot_s"]["p99"] <= 0.05
