"""`planner fleet --pool-space` / request key `pool_space`: the fleet's pools over the grid's PP and TP (default)
or over every PP and TP the request leaves open (fleet.pool_space.candidate_pools), and what the JSON says."""
from __future__ import annotations

import json
from dataclasses import replace

from click.testing import CliRunner

from planner import api
from planner.catalog import load_catalog
from planner.cli import main
from planner.fleet import request_from_dict
from planner.fleet.pool_space import candidate_pools
from planner.search.space import DEFAULT_PP, GRID_TP

from .conftest import CHAT, small_request


def _doc(**top) -> dict:
    doc = small_request([{**CHAT, "rate_rps": [2] * 12 + [6] * 12}], gpus=("h100-sxm",), disaggregation="only",
                        compare=False)
    doc.pop("pp")  # no PP list: the grid's, or every depth
    return {**doc, **top}


def test_exact_pools_cover_every_pp_and_tp_and_say_so():
    cat = load_catalog()
    grid_req, _ = request_from_dict(_doc())
    exact_req, _ = request_from_dict(_doc(pool_space="exact"))
    assert grid_req.pp is None and exact_req.pool_space == "exact"
    grid_pools, exact_pools = candidate_pools(grid_req, cat.perf), candidate_pools(exact_req, cat.perf)
    assert all(x.row.pp in DEFAULT_PP and x.row.tp in GRID_TP for x in grid_pools)
    # the exact space holds the grid's rows: its best pool per role costs at most the grid's per capacity unit
    for role in ("prefill", "decode"):
        best = lambda pools: min(x.gpus * x.row.gpu.usd_per_hour / x.capacity for x in pools if x.role == role)  # noqa: E731
        assert best(exact_pools) <= best(grid_pools) * (1 + 1e-12)
    grid = api.fleet(_doc()).to_dict()
    exact = api.fleet(_doc(pool_space="exact")).to_dict()
    assert grid["solver"]["space"] == "grid" and exact["solver"]["space"] == "exact"
    assert exact["solver"]["objective"] <= grid["solver"]["objective"]
    assert json.dumps(api.fleet(_doc(), pool_space="exact").to_dict()) == json.dumps(exact)  # the option = the key


def test_pins_hold_in_the_exact_pools():
    cat = load_catalog()
    req, _ = request_from_dict(_doc(pool_space="exact", pp=[2, 3], tp=[1, 2]))
    pools = candidate_pools(req, cat.perf)
    assert pools and {x.row.pp for x in pools} <= {2, 3} and {x.row.tp for x in pools} <= {1, 2}
    unpinned, _ = request_from_dict(_doc(pool_space="exact"))
    assert {x.row.pp for x in candidate_pools(unpinned, cat.perf)} - {2, 3}  # the pins bite
    assert api.fleet(_doc(pool_space="exact", pp=[2, 3])).to_dict()["solver"]["space"] == "pinned"
    # pinned micro-batches take the grid's sweep (fleet.pools.candidate_pools): the space stays the grid's
    from planner.fleet.request import pool_space_of
    assert pool_space_of(replace(req, micro_batches=(1, 8))) == "grid"


def test_bad_pool_space_is_one_line(tmp_path):
    f = tmp_path / "fleet.toml"
    f.write_text('model = "llama-3.1-8b"\ngpus = ["h100-sxm"]\n[[class]]\nname = "chat"\nisl = 1000\nosl = 300\n'
                 'rate_rps = 1\nttft_ms = 500\n')
    r = CliRunner().invoke(main, ["fleet", str(f), "--pool-space", "every"])
    assert r.exit_code == 2 and "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1
    f.write_text(f.read_text().replace('[[class]]', 'pool_space = "every"\n[[class]]'))
    r = CliRunner().invoke(main, ["fleet", str(f)])
    assert r.exit_code == 2 and "pool_space must be one of grid, exact" in r.output
    assert len(r.output.strip().splitlines()) == 1
