"""`solver` with --timings says what the planning call spent (#16 item 3): the total, the colocated search, the
disaggregated pools and the confirming simulations, each measured where it ran; nothing of it without --timings."""
from __future__ import annotations

import jsonschema
import pytest
from click.testing import CliRunner

from planner import api
from planner.cli import main
from planner.plan import plan_schema

# chooses the disaggregated pair (tests/test_disagg.py) and confirms both plans by simulation at the demand
DEMAND = dict(isl=1000, osl=100, gpus="h100-sxm", rate_rps=20, ttft_ms=1000, tpot_ms=30, slo_percentile=90)
SEARCH_KEYS = {"wall_s", "cp_sat_wall_s", "cp_sat_solves", "table_s", "bound_s", "rows_examined"}
PHASE_KEYS = {"total_s", "colocated", "pools", "simulation"}
ROUNDING = 5e-4  # each figure is rounded to 0.1 ms


@pytest.fixture(scope="module")
def disagg_timed():
    return api.plan("llama-3.1-70b", timings=True, **DEMAND).to_dict()


def _search_ok(s: dict, total: float) -> None:
    assert SEARCH_KEYS <= set(s)
    assert s["cp_sat_solves"] >= 0 and s["rows_examined"] >= 0
    for k in ("cp_sat_wall_s", "table_s", "bound_s"):
        assert 0 <= s[k] <= s["wall_s"] + ROUNDING, k
    assert s["wall_s"] <= total + ROUNDING


def test_a_disaggregated_plan_reports_its_colocated_search_pools_and_simulations(disagg_timed):
    d = disagg_timed
    jsonschema.validate(d, plan_schema())
    s = d["solver"]
    assert d["disaggregation"]["chosen"] == "disaggregated" and s["engine"] == "enumeration"
    total = s["total_s"]
    _search_ok(s["colocated"], total)  # the colocated search, the pair's rival
    assert s["colocated"]["rows_examined"] > 0
    pools = s["pools"]
    assert pools["pools"] == s["candidates"]["rows"] and pools["pairs"] == s["candidates"]["placements"]
    # search_disagg's own clock lies inside decide's measurement of the pools' phase
    assert s["wall_s"] <= pools["wall_s"] + ROUNDING
    # the pair was confirmed at the demand; the colocated plan was not (the confirmed pair is cheaper than its
    # first round: disagg.decide skips its simulation), so the replays are the pair's rounds
    sim = s["simulation"]
    assert sim["replays"] >= 1 and sim["wall_s"] > 0
    assert sim["replays"] == d["disaggregation"]["simulation"]["rounds"] + 1
    # the phases ran one after another inside the call
    assert s["colocated"]["wall_s"] + pools["wall_s"] + sim["wall_s"] <= total + 4 * ROUNDING


def test_a_colocated_plan_with_a_demand_reports_its_simulation():
    d = api.plan("llama-3.1-70b", timings=True, disagg="off", **DEMAND).to_dict()
    jsonschema.validate(d, plan_schema())
    s = d["solver"]
    assert s["engine"] == "ortools-cp-sat" and "colocated" not in s and "pools" not in s
    _search_ok(s, s["total_s"])
    assert s["simulation"]["replays"] == d["simulation"]["rounds"]  # one replay per confirmation round
    assert s["wall_s"] + s["simulation"]["wall_s"] <= s["total_s"] + 2 * ROUNDING


def test_without_a_demand_no_simulation_is_reported():
    d = api.plan("llama-3.1-8b", isl=500, osl=200, gpus="l40s", timings=True).to_dict()
    jsonschema.validate(d, plan_schema())
    s = d["solver"]
    assert "simulation" not in s and "simulation" not in d
    assert s["pools"]["wall_s"] <= s["total_s"]  # disaggregation was considered (auto) whichever plan won
    if d["disaggregation"]["chosen"] == "aggregated":
        _search_ok(s, s["total_s"])
        assert s["wall_s"] + s["pools"]["wall_s"] <= s["total_s"] + 2 * ROUNDING
    else:
        _search_ok(s["colocated"], s["total_s"])


def test_without_timings_the_json_has_no_phases():
    d = api.plan("llama-3.1-70b", **DEMAND).to_dict()
    assert not (PHASE_KEYS | SEARCH_KEYS) & set(d["solver"])


def test_bad_input_with_timings_is_one_line():
    r = CliRunner().invoke(main, ["plan", "--model", "no-such-model", "--isl", "100", "--osl", "10", "--json",
                                  "--timings"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert len(r.stderr.strip().splitlines()) == 1
    r = CliRunner().invoke(main, ["plan", "--model", "llama-3.1-8b", "--isl", "100", "--osl", "10", "--json",
                                  "--timings", "--pool-space", "nope"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_confirmation_of_several_rounds_sums_every_rounds_search(monkeypatch):
    """The first simulation is made to miss the TPOT target, so the confirmation tightens it and searches again:
    the plan's search figures are both rounds' together, one replay per round."""
    import planner.search.percentile as percentile
    import planner.sim as sim

    real_sim, real_search = sim.simulate_plan, percentile.search
    stats, replays = [], []

    def search(*args, **kwargs):
        res = real_search(*args, **kwargs)
        stats.append(res.stats)
        return res

    def simulate_plan(*args, **kwargs):
        out = real_sim(*args, **kwargs)
        replays.append(1)
        if len(replays) == 1:  # a miss at every percentile: TPOT far above any target
            out = {**out, "tpot_s": {k: 1e3 for k in out["tpot_s"]}}
        return out

    monkeypatch.setattr(percentile, "search", search)
    monkeypatch.setattr(sim, "simulate_plan", simulate_plan)
    d = api.plan("llama-3.1-70b", timings=True, disagg="off", **DEMAND).to_dict()
    s = d["solver"]
    assert d["simulation"]["rounds"] == 2 == len(stats) == s["simulation"]["replays"] == len(replays)
    assert s["rows_examined"] == sum(x.examined for x in stats) > stats[-1].examined
    assert s["cp_sat_solves"] == sum(x.solves for x in stats)
    assert s["wall_s"] == pytest.approx(sum(x.wall_s for x in stats), abs=ROUNDING)
    assert s["wall_s"] + s["simulation"]["wall_s"] <= s["total_s"] + 2 * ROUNDING


def test_where_no_colocated_plan_was_feasible_the_phase_says_so():
    """The disaggregated pair chosen alone (the colocated search raised): `colocated` holds the phase's seconds
    as decide measured them and feasible false; the pools' and the pair's confirmation's figures as measured."""
    from types import SimpleNamespace

    from planner.plan import Plan

    outcome = SimpleNamespace(chosen=True, colocated_s=0.25, pools_s=0.5, simulation_s=0.125, replays=2,
                              choice=SimpleNamespace(pools=7, pairs=11))
    solver: dict = {}
    Plan(None, timings=True, disagg=outcome, total_s=1.0)._phases(solver)
    assert solver == {"colocated": {"wall_s": 0.25, "feasible": False},
                      "pools": {"wall_s": 0.5, "pools": 7, "pairs": 11},
                      "simulation": {"wall_s": 0.125, "replays": 2}, "total_s": 1.0}
    # no pair found: the pools' seconds alone, and no simulation ran
    solver = {}
    Plan(None, timings=True, disagg=SimpleNamespace(**{**vars(outcome), "choice": None, "replays": 0}),
         total_s=1.0)._phases(solver)
    assert solver["pools"] == {"wall_s": 0.5} and "simulation" not in solver
