"""disagg.decide with a demand: the pair is searched and confirmed first, and the colocated plan's confirming
simulation is skipped where the confirmed pair is strictly cheaper than the colocated plan's first round
(search/percentile.plan_at_percentile's `skip`): one replay fewer, the same plan JSON."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from planner import api

DENSE = dict(model="llama-3.1-70b", isl=1000, osl=100, gpus="h100-sxm", rate_rps=20, ttft_ms=1000, tpot_ms=30,
             slo_percentile=90)
MOE = dict(model="mixtral-8x22b", isl=8000, osl=2000, min_tokens_per_s_user=20, max_gpus=1024, rate_rps=50)
# tiny prompts, long outputs: the colocated plan wins (tests/test_disagg.py's SHORT_PROMPTS, with a demand)
COLOCATED = dict(model="llama-3.1-8b", gpus="h100-sxm", isl=64, osl=2000, tpot_ms=30, rate_rps=5)


def _json(p) -> str:
    """The plan's JSON without --timings."""
    return json.dumps(replace(p, timings=False, disagg=replace(p.disagg, timings=False)).to_dict())


def _unskipped(monkeypatch):
    """`api._colocated` with the skip disabled: every colocated plan is confirmed, as before the skip."""
    orig = api._colocated
    monkeypatch.setattr(api, "_colocated", lambda *a: orig(*a[:6]))


@pytest.mark.parametrize("case", [DENSE, MOE], ids=["dense", "moe"])
def test_a_cheaper_pair_skips_the_colocated_confirmation(case, monkeypatch):
    p = api.plan(**case, timings=True)
    d = p.to_dict()
    g = d["disaggregation"]
    assert g["chosen"] == "disaggregated" and g["basis"] == "demand"
    # the colocated plan is round 1's, unconfirmed; only the pair was replayed
    assert p.simulation is None and p.replays == 0 and p.simulation_s == 0.0
    assert p.disagg.choice.objective < p.best.objective
    assert d["solver"]["simulation"]["replays"] == p.disagg.replays == g["simulation"]["rounds"] + 1
    # the same JSON (without --timings) as with every colocated plan confirmed
    plain = _json(p)
    assert plain == json.dumps(api.plan(**case).to_dict())  # as planned without --timings
    _unskipped(monkeypatch)
    full = api.plan(**case, timings=True)
    assert full.simulation is not None and full.replays >= 1  # the skip was what saved the replay
    assert full.to_dict()["solver"]["simulation"]["replays"] == full.replays + p.disagg.replays
    assert _json(full) == plain


def test_a_cheaper_colocated_plan_is_still_confirmed():
    p = api.plan(**COLOCATED, timings=True)
    d = p.to_dict()
    assert d["disaggregation"]["chosen"] == "aggregated"
    assert p.simulation is not None and p.replays >= 1 and d["simulation"]["rounds"] == p.replays
    assert d["solver"]["simulation"]["replays"] == p.replays + p.disagg.replays
