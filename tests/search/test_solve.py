"""planner/search/solve.py end to end: a loaded head stage gets fewer layers, an impossible request says why
(memory for a dense 1T model on one 8-GPU node), and the frontier is Pareto with every point sound."""
from __future__ import annotations

from dataclasses import replace

import pytest

from planner.api import make_request
from planner.errors import InfeasibleError
from planner.search.solve import frontier, greedy_placement, search, verify
from planner.search.table import evaluate
from planner.specs.workload import SLO

from .instances import CATALOG

# Long answers (4000 tokens) keep the decode cycle, not the prefill-chunk stalls (which want the layers evenly
# split whatever the head stage costs), the larger part of TPOT.
HEAD = dict(isl=1000, osl=4000, gpus="h100-sxm", tp=[8], pp=[4], weights="fp8", kv="fp8", min_tokens_per_s_user=20)


def _placement(overhead_s: float):
    cat = replace(CATALOG, perf=replace(CATALOG.perf, head_stage_overhead_s=overhead_s))
    req, _ = make_request("llama-3.1-70b", catalog=cat, **HEAD)
    res = search(req, cat.perf, alternatives=False)
    assert verify(req, res.best) == []
    return res


def test_balanced_without_head_stage_overhead():
    res = _placement(0.0)
    first, *middle, last = res.best.layers
    assert sum(res.best.layers) == 80 and len(middle) == 2
    assert max([first, *middle]) - min([first, *middle]) <= 1  # the embedding lookup costs next to nothing


def test_head_stage_overhead_moves_layers_off_the_first_stage():
    base = _placement(0.0)
    layer_s = int(base.table.dec_ns_per_kind[base.index, 0]) / 1e9  # one layer's decode step on the chosen row
    res = _placement(2 * layer_s)
    first, *middle, last = res.best.layers
    assert sum(res.best.layers) == 80
    assert first < min(middle)
    # and it is at least as fast as the exact min-max decode placement (perf.pipeline.balance_layers)
    t, i, lim = res.table, res.index, res.limits
    greedy = greedy_placement(t, i)
    assert greedy[0] < min(greedy[1:-1])
    assert evaluate(t, i, res.best.layers, lim).tpot_ns <= evaluate(t, i, greedy, lim).tpot_ns


def test_dense_1t_on_one_node_is_infeasible_for_memory(dense_1t_path):
    req, cat = make_request(str(dense_1t_path), isl=1000, osl=300, gpus="h100-sxm", max_gpus=8,
                            min_tokens_per_s_user=33)
    with pytest.raises(InfeasibleError) as err:
        search(req, cat.perf)
    reasons = err.value.reasons
    assert reasons and reasons[0].startswith("memory")
    assert "dense-1t" in reasons[0]


def test_gpt3_175b_fits_one_node():
    req, cat = make_request("gpt3-175b", isl=1000, osl=300, gpus="h100-sxm", max_gpus=8, min_tokens_per_s_user=33)
    res = search(req, cat.perf)
    assert res.best.row.gpus * res.best.replicas <= 8
    assert res.best.estimate.tokens_per_s_per_user >= 33
    assert verify(req, res.best) == []


SPEEDS = [5.0, 10.0, 20.0, 40.0, 80.0, 160.0]


def test_frontier_is_pareto_and_every_point_verifies():
    req, cat = make_request("llama-3.1-8b", isl=1000, osl=300, gpus="h100-sxm,l40s,a100-80gb", ttft_ms=2000)
    pts = frontier(req, cat.perf, SPEEDS)
    assert len(pts) >= 2
    speeds = [c.estimate.tokens_per_s_per_user for c in pts]
    costs = [c.estimate.usd_per_million_output_tokens for c in pts]
    assert speeds == sorted(speeds)
    assert all(a <= b * (1 + 1e-12) for a, b in zip(costs, costs[1:]))  # faster never cheaper
    for c in pts:
        target = max(s for s in SPEEDS if s <= c.estimate.tokens_per_s_per_user * (1 + 1e-9))
        sub = replace(req, slo=SLO(ttft_s=req.slo.ttft_s, tpot_s=1.0 / target))
        assert verify(sub, c) == []
        # each point is the optimum for the target it meets
        assert search(sub, cat.perf, alternatives=False).best.objective == c.objective


def test_a_gpu_type_out_of_time_leaves_the_plan_feasible_with_its_gap(monkeypatch):
    """Each GPU type is solved on its own share of --time-limit-s; a type whose solve finds nothing in it may hold
    a cheaper plan, so the plan of another type is not proven optimal over the space: FEASIBLE, with the gap to the
    skipped type's lowest candidate bound (it was labelled OPTIMAL)."""
    import planner.search.solve as solve_mod
    from planner.errors import SolverLimitError
    req, cat = make_request("llama-3.1-70b", isl=1000, osl=300, gpus="h100-sxm,a100-80gb", weights="fp8,bf16",
                            kv="bf16")
    honest = search(req, cat.perf)
    cheapest = honest.best.row.gpu.id
    assert honest.best.solution.status == "OPTIMAL" and len(honest.alternatives) == 2

    def skipped(real):
        def f(t, b, lim, subset, *args):
            if t.rows[int(subset[0])].gpu.id == cheapest:
                raise SolverLimitError("time limit: test")
            return real(t, b, lim, subset, *args)
        return f

    monkeypatch.setattr(solve_mod, "_search_rows", skipped(solve_mod._search_rows))
    monkeypatch.setattr(solve_mod, "_best_single_stage", skipped(solve_mod._best_single_stage))
    res = search(req, cat.perf)
    assert res.best.row.gpu.id != cheapest
    sol = res.best.solution
    assert sol.status == "FEASIBLE"
    assert sol.bound <= honest.best.objective < res.best.objective  # the skipped type's bound is below its optimum
    assert sol.gap == pytest.approx((res.best.objective - sol.bound) / res.best.objective)
