"""planner/search/cpsat.py: regressions found by the oracle tests, and the size of the space CP-SAT avoids
enumerating (a count in the default suite; the wall-time comparison is marked slow)."""
from __future__ import annotations

import time
from dataclasses import replace

import pytest

from planner.api import make_request
from planner.catalog import load_model
from planner.search import cpsat, oracle
from planner.search.solve import search
from planner.search.space import Request, enumerate_rows
from planner.search.table import Limits, build_table, evaluate
from planner.specs.model import ModelSpec
from planner.specs.workload import SLO, Workload

from .instances import CATALOG


def _table(req: Request):
    p = CATALOG.perf
    rows = enumerate_rows(req, p.max_batch)
    return build_table(req, rows, p), Limits.of(req, p.max_batch)


def test_two_row_demand_model_is_not_declared_infeasible():
    """Two rows (PP1 and PP2 of one GPU) under a demand: each alone solves, together CP-SAT 9.15 answered
    INFEASIBLE (its "greater than at least one of" detection over the row literals). The oracle's optimum must
    come back."""
    m = ModelSpec(name="tiny", num_layers=4, hidden_size=128, vocab_size=8000, num_heads=4, num_kv_heads=1,
                  head_dim=32, max_context=8192, mlp_gated=False, dense_intermediate_size=256, num_dense_layers=4)
    req = Request(model=m, workload=Workload(isl=4075, osl=1, output_tokens_per_s=23754.0), slo=SLO(tpot_s=None),
                  gpus=(CATALOG.gpu("a100-40gb"),), weights=("bf16",), kv=("bf16",), pp=(1, 2),
                  micro_batches=(256,), tp=(1,))
    t, lim = _table(req)
    assert len(t) == 2
    ref = oracle.exhaustive(t, lim)
    assert ref is not None
    for rows in ([0], [1], [0, 1]):
        sol = cpsat.solve(t, rows, lim, None)
        assert sol is not None and sol.status == "OPTIMAL"
        assert evaluate(t, sol.row, sol.layers, lim).objective == sol.objective
    assert cpsat.solve(t, [0, 1], lim, None).objective == ref[2].objective
    assert search(req, CATALOG.perf).best.objective == ref[2].objective


def test_oracle_space_dwarfs_what_cpsat_gets():
    """A 70B model on one GPU type over the exact space: the oracle would evaluate every composition of 80 layers
    into up to 80 stages for every row (it refuses: too many); CP-SAT gets the rows the lazy search leaves, each
    with pp layer variables, and proves the optimum."""
    req, cat = make_request("llama-3.1-70b", isl=1000, osl=300, gpus="h100-sxm")
    res = search(req, cat.perf, alternatives=False)
    s = res.stats
    assert s.placements > sum(oracle.count_placements(80, int(p)) for p in res.table.pp)
    assert s.placements > 10**9 * s.rows  # evaluations the oracle needs, per structural row
    assert s.rows_after_bounds < s.rows
    assert res.best.solution.status == "OPTIMAL"
    assert s.placements > 5_000_000  # oracle.exhaustive's limit


def _medium_request():
    m = replace(load_model("llama-3.1-8b"), num_layers=16, num_dense_layers=16, layer_kinds=())
    req, cat = make_request(m, isl=1000, osl=300, gpus="h100-sxm,a100-80gb", pp=[1, 2, 4, 6],
                            min_tokens_per_s_user=30)
    return replace(req, micro_batches=(1, 8, 64, 256), weights=("bf16", "fp8")), cat


@pytest.mark.slow
def test_cpsat_is_faster_than_the_oracle():
    """~380 rows and ~330k placements: the oracle takes seconds, CP-SAT on every row (no pruning) well under
    that, and the full pipeline (bounds, greedy, CP-SAT) a small fraction of it; all three agree."""
    req, cat = _medium_request()
    t, lim = _table(req)
    start = time.perf_counter()
    ref = oracle.exhaustive(t, lim)
    oracle_s = time.perf_counter() - start
    start = time.perf_counter()
    sol = cpsat.solve(t, range(len(t)), lim, None)
    cpsat_s = time.perf_counter() - start
    start = time.perf_counter()
    res = search(req, cat.perf, alternatives=False)
    search_s = time.perf_counter() - start
    assert ref is not None and sol.objective == res.best.objective == ref[2].objective
    assert cpsat_s < oracle_s / 2
    assert search_s < oracle_s / 20


def test_a_tie_break_that_runs_out_of_time_keeps_the_optimal_plan(monkeypatch):
    """On a loaded machine a tie-break stage can get its 0.1 s floor and find nothing (status UNKNOWN): the plan of
    optimal cost in hand is returned (it used to raise "CP-SAT lost the optimal plan")."""
    from ortools.sat.python import cp_model
    m = ModelSpec(name="tiny", num_layers=6, hidden_size=128, vocab_size=8000, num_heads=4, num_kv_heads=1,
                  head_dim=32, max_context=8192, mlp_gated=False, dense_intermediate_size=256, num_dense_layers=6)
    req = Request(model=m, workload=Workload(isl=512, osl=64, output_tokens_per_s=500.0), slo=SLO(tpot_s=None),
                  gpus=(CATALOG.gpu("a100-40gb"),), weights=("bf16",), kv=("bf16",), pp=(1, 2, 3),
                  micro_batches=(8, 64), tp=(1,))
    t, lim = _table(req)
    rows = list(range(len(t)))
    honest = cpsat.solve(t, rows, lim, None)
    assert honest is not None and honest.status == "OPTIMAL" and honest.solves >= 2
    real = cp_model.CpSolver.Solve
    calls = []

    def first_only(self, model, *args, **kwargs):  # the first solve as usual, every tie-break finds nothing
        calls.append(1)
        return real(self, model, *args, **kwargs) if len(calls) == 1 else cp_model.UNKNOWN

    monkeypatch.setattr(cp_model.CpSolver, "Solve", first_only)
    kept = cpsat.solve(t, rows, lim, None)
    assert len(calls) == 2  # the first solve, then the tpot tie-break that found nothing
    assert kept is not None and kept.status == "OPTIMAL" and kept.objective == honest.objective
    assert evaluate(t, kept.row, kept.layers, lim).objective == kept.objective
    assert sum(kept.layers) == 6
