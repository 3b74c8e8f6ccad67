"""planner/fleet/search.py: why no fleet exists, one line per reason (no configuration meets a class's SLOs, a
class's peak alone needs more GPUs than are available, or the budget), and that a feasible search returns the
fleet the result reports."""
from __future__ import annotations

import pytest

from planner import api
from planner.errors import InfeasibleError
from planner.fleet import request_from_dict
from planner.fleet.search import search

from .conftest import CHAT, small_request


def _reasons(doc: dict) -> list[str]:
    with pytest.raises(InfeasibleError) as e:
        api.fleet(doc)
    return e.value.reasons


def test_a_class_no_configuration_serves_is_named_with_its_targets():
    r = _reasons(small_request([{**CHAT, "rate_rps": 1, "ttft_ms": 1}], gpus=["h100-sxm"]))
    assert r == ["class 'chat': no configuration on h100-sxm fits llama-3.1-8b with 1000+300 tokens and meets "
                 "TTFT 1 ms and 50.0 tok/s/user"]


def test_a_peak_beyond_the_available_gpus_names_the_class_its_peak_hour_and_the_limit():
    r = _reasons(small_request([{**CHAT, "rate_rps": 500, "profile": [0.1] * 20 + [1] + [0.1] * 3}],
                               gpus=["h100-sxm"], available={"h100-sxm": 1}))
    assert r == ["availability: class 'chat' alone, at its peak of 500 requests/s (hour 20), needs more GPUs than "
                 "are available (h100-sxm 1)"]


def test_a_budget_below_the_cheapest_fleet_says_what_the_cheapest_costs():
    (r,) = _reasons(small_request([{**CHAT, "rate_rps": 4}], gpus=["h100-sxm"], budget_usd_per_hour=0.01))
    assert r.startswith("budget: the cheapest fleet costs at least $") and r.endswith("budget is $0.01/hour")


def test_the_search_best_fleet_is_the_one_the_result_reports():
    doc = small_request([{**CHAT, "rate_rps": 4}], gpus=["h100-sxm"])
    req, cat = request_from_dict(doc)
    s = search(req, cat.perf)
    d = api.fleet(doc).to_dict()
    assert s.best is not None and s.best.solution.status in ("OPTIMAL", "FEASIBLE")
    used = [k for k, row in enumerate(s.best.solution.counts) if any(row)]
    assert sorted(p["replicas_per_hour"] for p in d["pools"]) == sorted(list(s.best.solution.counts[k]) for k in used)
