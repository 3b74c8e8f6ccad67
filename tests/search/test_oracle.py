"""CP-SAT against the exhaustive oracle (planner/search/oracle.py) on random small instances.

The oracle evaluates every row and every placement with `table.evaluate`, the integer semantics CP-SAT encodes, so
the optimal objectives must be equal exactly, and both must agree on infeasibility. Checked twice: `cpsat.solve`
on every row (no pruning, no upper bound) and the full pipeline `solve.search` (lower-bound pruning, greedy upper
bound and hint, then CP-SAT), including the per-GPU-type alternatives."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

import numpy as np

import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from planner.errors import InfeasibleError
from planner.search import cpsat, oracle
from planner.search.oracle import compositions, exact_space_table
from planner.search.queueing import QueueTarget, min_replicas, row_key
from planner.search.solve import search, verify
from planner.search.table import evaluate, lower_bounds

from .instances import CATALOG, INSTANCES, MAX_ROWS, exact_requests, requests, tabulate

PROPERTY = settings(INSTANCES, max_examples=40)


def _small(req):
    tl = tabulate(req)
    assume(tl is not None and len(tl[0]) <= MAX_ROWS)
    event("moe" if req.model.is_moe else "dense")
    event("demand" if req.workload.demand_output_tokens_per_s else "no demand")
    return tl


def _best_per_gpu(t, lim) -> dict[str, int]:
    """Oracle restricted to each GPU type: the cheapest feasible objective among that type's rows."""
    best: dict[str, int] = defaultdict(lambda: None)  # type: ignore[arg-type]
    for i, r in enumerate(t.rows):
        for lay in compositions(t.num_layers, int(t.pp[i])):
            ev = evaluate(t, i, lay, lim)
            if ev.feasible and (best[r.gpu.id] is None or ev.objective < best[r.gpu.id]):
                best[r.gpu.id] = ev.objective
    return {k: v for k, v in best.items() if v is not None}


@settings(INSTANCES, max_examples=60)
@given(req=requests(demand=False))
def test_cpsat_on_every_row_equals_oracle(req):
    _check_every_row(req)


@settings(INSTANCES, max_examples=60)
@given(req=requests(demand=True))
def test_cpsat_on_every_row_equals_oracle_with_demand(req):
    _check_every_row(req)


@settings(INSTANCES, max_examples=40)
@given(req=requests(multi_kind=True))
def test_cpsat_on_every_row_equals_oracle_with_several_layer_kinds(req):
    """Dense-first or interleaved dense/MoE layers and sliding-window layers: the stages' per-kind terms (CP-SAT's
    boundary variables and element constraints on the prefix counts) agree with `evaluate` on every placement."""
    assert len(req.model.layer_kind_counts()) > 1
    event("interleaved" if req.model.layer_kinds[0].mlp == "moe" and req.model.num_dense_layers else "in order")
    _check_every_row(req)


@settings(INSTANCES, max_examples=20)
@given(req=requests(multi_kind=True))
def test_search_pipeline_equals_oracle_with_several_layer_kinds(req):
    """The whole pipeline (bounds, per-kind greedy placement, CP-SAT) on models of several layer kinds, and the
    floating-point check (`verify`, through `perf.estimate` at the chosen placement) agreeing with it."""
    _check_best_plan(req)


def _check_best_plan(req):
    """The search's best plan (no alternatives) has the oracle's objective and passes the floating-point check;
    the search refuses where the oracle finds nothing."""
    t, lim = _small(req)
    ref = oracle.exhaustive(t, lim)
    if ref is None:
        with pytest.raises(InfeasibleError):
            search(req, CATALOG.perf, alternatives=False)
        return
    res = search(req, CATALOG.perf, alternatives=False)
    assert res.best.objective == ref[2].objective
    assert verify(req, res.best) == []


def _check_every_row(req):
    t, lim = _small(req)
    ref = oracle.exhaustive(t, lim)
    event("infeasible" if ref is None else "feasible")
    sol = cpsat.solve(t, range(len(t)), lim, None, cpsat.SolverSettings(time_limit_s=30))
    if ref is None:
        assert sol is None
        return
    assert sol is not None and sol.status == "OPTIMAL"
    assert sol.objective == ref[2].objective
    ev = evaluate(t, sol.row, sol.layers, lim)  # CP-SAT's answer is feasible in the reference semantics
    assert ev.feasible and ev.objective == sol.objective


@PROPERTY
@given(req=requests())
def test_search_pipeline_equals_oracle(req):
    t, lim = _small(req)
    ref = oracle.exhaustive(t, lim)
    if ref is None:
        with pytest.raises(InfeasibleError) as err:
            search(req, CATALOG.perf)
        assert err.value.reasons and all(isinstance(r, str) and r for r in err.value.reasons)
        return
    res = search(req, CATALOG.perf)
    assert res.best.objective == ref[2].objective
    assert res.best.solution is not None and res.best.solution.status == "OPTIMAL"
    assert verify(req, res.best) == []
    # alternatives: the optimum of each GPU type, each one sound in floating point
    per_gpu = _best_per_gpu(t, lim)
    got = {c.row.gpu.id: c.objective for c in res.alternatives}
    assert set(got) <= set(per_gpu)
    for gid, obj in got.items():
        assert obj == per_gpu[gid]
    assert res.alternatives[0].objective == res.best.objective
    assert all(verify(req, c) == [] for c in res.alternatives)


@settings(INSTANCES, max_examples=15)
@given(req=requests(demand=True))
def test_search_pipeline_equals_oracle_with_demand(req):
    """The demand objective (fleet $/hour, whole replicas) separately, so that it gets its share of examples."""
    _check_best_plan(req)


def test_same_input_same_plan():
    """One worker and a fixed seed: the same request gives the same row and placement."""
    from planner.api import make_request

    req, cat = make_request("llama-3.1-8b", isl=512, osl=128, gpus="h100-sxm,a100-80gb,l40s", pp=[1, 2, 3])
    a, b = search(req, cat.perf), search(req, cat.perf)
    assert (a.best.row, a.best.layers, a.best.replicas) == (b.best.row, b.best.layers, b.best.replicas)
    assert [(c.row, c.layers) for c in a.alternatives] == [(c.row, c.layers) for c in b.alternatives]


@settings(INSTANCES, max_examples=30)
@given(req=exact_requests())
def test_exact_space_search_equals_oracle(req):
    """TP, PP and the micro-batch left free (every divisor, every depth, every micro-batch in range): the lazy
    search (search/bounds.py) plus CP-SAT agrees with the oracle over every row of the space, the plan and each
    GPU type's best alike."""
    t, lim = _small(req)
    assert req.pp is None and req.micro_batches is None and req.tp is None
    ref = oracle.exhaustive(t, lim)
    if ref is None:
        with pytest.raises(InfeasibleError):
            search(req, CATALOG.perf)
        return
    res = search(req, CATALOG.perf)
    assert res.best.objective == ref[2].objective
    assert res.stats.space == "exact"
    assert verify(req, res.best) == []
    per_gpu = _best_per_gpu(t, lim)
    got = {c.row.gpu.id: c.objective for c in res.alternatives}
    assert got == per_gpu


@settings(INSTANCES, max_examples=30)
@given(req=exact_requests(demand=True), rate=st.floats(-1.5, 1.5).map(lambda e: 10.0 ** e),
       ttft=st.floats(-2.5, 0.5).map(lambda e: 10.0 ** e), percentile=st.sampled_from([50.0, 90.0, 99.0]),
       extra=st.integers(0, 3))
def test_exact_space_with_queue_equals_oracle(req, rate, ttft, percentile, extra):
    """A demand and a TTFT percentile (the queueing bound) over the exact space: the oracle's table is every row of
    the space with `queueing.min_replicas` (each structure's concurrency row the largest batch meeting TPOT and
    memory, as `Request.grid` searches get it), and the lazy search (bounds.QueueBound: per shape, at its range's
    end) plus CP-SAT agrees with it, the plan and each GPU type's best alike, also after a tightening round has
    asked one row for more replicas."""
    # request rates of 0.03-30/s: few replicas for capacity, so that the queue (few slots in small memories)
    # often sets the replica count
    req = replace(req, slo=replace(req.slo, ttft_s=ttft),
                  workload=replace(req.workload, rate_rps=rate, output_tokens_per_s=None))
    tl = exact_space_table(req, CATALOG.perf)
    assume(tl is not None and len(tl[0]) <= MAX_ROWS)
    t, lim = tl
    event("moe" if req.model.is_moe else "dense")
    event("attention dp" if (t.gpus // t.pp > np.array([r.tp for r in t.rows])).any() else "no dp")
    target = QueueTarget(percentile, ttft, rate, {})
    if extra:  # a tightening round (search/percentile.py) asked one row for more replicas
        target = QueueTarget(percentile, ttft, rate, {row_key(t.rows[len(t) // 2]): extra * 4})
    capacity = lower_bounds(t, lim).replicas
    t.min_replicas = min_replicas(t, lower_bounds(t, lim), target, lim.max_replicas)
    event("queue binds" if (t.min_replicas > capacity).any() else "queue does not bind")
    ref = oracle.exhaustive(t, lim)
    if ref is not None:
        event("queue binds on the plan" if ref[2].replicas > capacity[ref[0]] else "plan at capacity")
    event("infeasible" if ref is None else "feasible")
    if ref is None:
        with pytest.raises(InfeasibleError):
            search(req, CATALOG.perf, queue=target)
        return
    res = search(req, CATALOG.perf, queue=target)
    assert res.stats.space == "exact"
    assert res.best.objective == ref[2].objective
    assert verify(req, res.best) == []
    assert {c.row.gpu.id: c.objective for c in res.alternatives} == _best_per_gpu(t, lim)
