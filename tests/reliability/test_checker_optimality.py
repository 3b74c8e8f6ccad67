"""The checker's optimality rule, on the example Hypothesis found (Session 14): without a demand the search's
objective charges a pipelined prompt's prefill stall at its bound PP x chunks x (slowest stage's chunk increment +
hop) where more than one chunk stalls per decode cycle (planner/search/table.py `stalled_ns`; at ISL 16 / OSL 1 every
batch above one does), so a pipelined alternative may list a lower $/token than the plan proven optimal;
the checker compares the search's objective, restated in checker._search_usd_per_million. Since the round packs
the prompts arriving per step (perf.estimate.packed_chunk, 2026-11-28) the A100 rows at ISL 16 / OSL 1 cost more
and the random GPU at $1/h won outright: at $1.5/h it lists 1.650 $/M (the search charges it 3.19) beside the A100
plan's 2.406, the same situation as found."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from planner import api

from .checker import _estimate, _search_usd_per_million, check_plan
from .properties import _folder
from .strategies import Scenario

RAND_GPU = {'id': 'rand-gpu-0', 'name': 'Random GPU 0', 'memory_gib': 102.0, 'hbm_tb_s': 3.0,
            'tflops': {'bf16': 552.0, 'fp16': 552.0}, 'scale_up': {'domain_size': 1, 'gb_s': 16.0},
            'scale_out': {'gbit_s': 25.0}, 'prices': {'market': {'usd_per_hour': 1.5}}}
FOUND = Scenario(model='qwen3-235b-a22b', gpus_new=[RAND_GPU], gpus_shipped=['a100-80gb'], isl=16, osl=1,
                 min_tokens_per_s_user=2.0, weights=('bf16',), kv=('bf16',))


def _planned(s: Scenario):
    with _folder() as d:
        kw = s.write(Path(d))
        ask, cat = s.ask(kw)
        return json.loads(json.dumps(api.plan(**kw, disagg="off").to_dict())), ask, cat


@pytest.fixture(scope="module")
def found():
    return _planned(FOUND)


def test_a_pipelined_alternative_listing_a_lower_cost_passes(found):
    d, ask, cat = found
    assert d["solver"]["status"] == "OPTIMAL" and d["parallelism"]["pp"] == 1
    piped = [a for a in d["alternatives"] if a["pp"] > 1]
    # the case itself: an alternative lists less per token than the plan proven optimal (1.650 < 2.406 $/M)
    assert piped and piped[0]["usd_per_million_output_tokens"] < d["cost"]["usd_per_million_output_tokens"]
    assert check_plan(d, ask, cat) == []


def test_the_rule_still_catches_a_cheaper_alternative(found):
    d, ask, cat = found
    g = cat.accelerators[d["gpu"]]  # the plan's GPU at twice its price, to the checker only
    doubled = replace(g, price=replace(g.price, usd_per_hour=2 * g.usd_per_hour))
    dear = replace(cat, accelerators={**cat.accelerators, g.id: doubled})
    assert any("cheaper than the plan proven optimal" in x for x in check_plan(d, ask, dear))


def test_the_restated_objective_is_the_search_objective_of_a_pipelined_plan():
    d, ask, cat = _planned(replace(FOUND, gpus_shipped=[]))  # the random GPU alone: a 5-stage plan
    par = d["parallelism"]
    assert par["pp"] == 5 and d["solver"]["objective_unit"] == "1e-6 USD per million output tokens"
    e = _estimate(ask, cat, d["gpu"], par["tp"], par["pp"], par["ep"], d["batch"], d["precision"]["weights"],
                  d["precision"]["kv"], d["placement"]["layers_per_stage"], par["dp"])
    # the integer objective rounds prices and times up: equal to 1e-4 relative, and 1.64x the listed $/token
    assert _search_usd_per_million(e, cat) == pytest.approx(d["solver"]["objective"] * 1e-6, rel=1e-4)
    assert d["solver"]["objective"] * 1e-6 > 1.5 * d["cost"]["usd_per_million_output_tokens"]
