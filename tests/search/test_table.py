"""planner/search/table.py: the per-row lower bounds are valid for every placement (so pruning rows on them, and
CP-SAT's redundant bound constraints, never cut off the optimum), and the integer evaluation is conservative
against the floating-point `perf.estimate` it is scaled from."""
from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import numpy as np

from planner.perf.estimate import Config, estimate
from planner.search.oracle import compositions, count_placements
from planner.search.table import (NS_PER_S, OBJECTIVE_UNIT_PER_HOUR, OBJECTIVE_UNIT_PER_TOKEN, ShapeTerms,
                                   evaluate, lower_bounds)
from planner.specs.cluster import pipeline_link_bytes_per_s

from .instances import CATALOG, requests, tabulate, tabulate_grid

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _random_placement(data, L: int, pp: int) -> tuple[int, ...]:
    cuts = sorted(data.draw(st.lists(st.integers(1, L - 1), min_size=pp - 1, max_size=pp - 1, unique=True)))
    return tuple(b - a for a, b in zip([0] + cuts, cuts + [L]))


@PROPERTY
@given(req=requests(), data=st.data())
def test_lower_bounds_hold_for_every_placement(req, data):
    tl = tabulate(req)
    assume(tl is not None)
    t, lim = tl
    b = lower_bounds(t, lim)
    for i in data.draw(st.lists(st.integers(0, len(t) - 1), min_size=1, max_size=8, unique=True)):
        pp = int(t.pp[i])
        # every placement when there are few, else a random sample of them
        if count_placements(t.num_layers, pp) <= 200:
            placements = list(compositions(t.num_layers, pp))
        else:
            placements = [_random_placement(data, t.num_layers, pp) for _ in range(20)]
        for lay in placements:
            ev = evaluate(t, i, lay, lim)
            assert ev.objective >= b.objective[i]
            assert ev.tpot_ns >= b.tpot_ns[i]
            assert ev.dec_stage_ns >= b.dec_stage_ns[i] and ev.pf_stage_ns >= b.pf_stage_ns[i]
            assert ev.replicas >= b.replicas[i]
            if "memory" not in ev.violated:  # the memory bound is a necessary condition
                assert b.memory_ok[i]
            if ev.feasible:
                assert b.feasible[i]


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(req=requests(demand=False), data=st.data())
def test_integer_evaluation_is_conservative(req, data):
    """Times round up (ns), memory needs up and capacity down (KiB): what the integer model accepts, the
    floating-point estimate accepts too, and its TPOT is never above the integer one."""
    tl = tabulate(req)
    assume(tl is not None)
    t, lim = tl
    i = data.draw(st.integers(0, len(t) - 1))
    r = t.rows[i]
    lay = _random_placement(data, t.num_layers, r.pp)
    ev = evaluate(t, i, lay, lim)
    cfg = Config(gpu=r.gpu, tp=r.tp, pp=r.pp, ep=r.ep, batch=r.batch, weights=r.weights, kv=r.kv, dp=r.dp,
                 layers_per_stage=lay)
    e = estimate(req.model, cfg, replace(req.workload, rate_rps=None, output_tokens_per_s=None), CATALOG.perf)
    assert e.tpot_s * NS_PER_S <= ev.tpot_ns * (1 + 1e-12)
    assert e.ttft_s * NS_PER_S <= ev.ttft_ns * (1 + 1e-12)
    if "memory" not in ev.violated:
        assert e.fits


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(req=requests(), data=st.data())
def test_objective_is_in_the_unit_its_mode_names(req, data):
    """Without a demand the objective is µUSD per million output tokens at the replica's throughput, with one it is
    the replicas' price in 1e-4 USD per hour; `objective_unit` says which, and the table's price column is the
    catalog's USD per GPU-hour in 1e-4 USD, rounded up."""
    tl = tabulate(req)
    assume(tl is not None)
    t, lim = tl
    i = data.draw(st.integers(0, len(t) - 1))
    r = t.rows[i]
    ev = evaluate(t, i, _random_placement(data, t.num_layers, r.pp), lim)
    price = int(t.price_1e4_usd_per_h[i])
    usd_1e4 = r.gpu.usd_per_hour * 1e4
    assert usd_1e4 * (1 - 1e-12) <= price < usd_1e4 + 1
    gpus = r.tp * r.dp * r.pp
    if req.workload.demand_output_tokens_per_s is None:
        assert lim.objective_unit == ev.objective_unit == OBJECTIVE_UNIT_PER_TOKEN
        tokens_per_s = int(t.batch[i]) / (ev.round_ns / NS_PER_S)  # one replica's output tokens/s
        micro_usd_per_m = price / 1e4 * gpus / 3600 / tokens_per_s * 1e6 * 1e6
        assert micro_usd_per_m * (1 - 1e-12) <= ev.objective < micro_usd_per_m * (1 + 1e-12) + 1
    else:
        assert lim.objective_unit == ev.objective_unit == OBJECTIVE_UNIT_PER_HOUR
        assert ev.objective == ev.replicas * gpus * price


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(req=requests())
def test_each_shapes_pipeline_link_is_its_own(req):
    """ShapeTerms.of groups the shapes by (GPU, TP·DP, PP) with numpy: each shape's link is still the one
    `pipeline_link_bytes_per_s` gives for that shape."""
    tl = tabulate_grid(req)
    assume(tl is not None)
    terms = ShapeTerms.of(req, tl[0].rows.shapes, CATALOG.perf)
    want = [pipeline_link_bytes_per_s(r.gpu, r.tp * r.dp, r.pp) for r in terms.shapes]
    assert terms.link.tolist() == want


@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(req=requests(demand=True))
def test_lower_bounds_are_computed_once_per_table_and_limits(req):
    """The bounds are kept on the table for the last limits asked (the colocated search and the disaggregated
    pools share a table): the same object again, read-only, and recomputed when the limits or the table's
    queueing replicas change."""
    tl = tabulate_grid(req)
    assume(tl is not None)
    t, lim = tl
    b = lower_bounds(t, lim)
    assert lower_bounds(t, lim) is b
    assert not b.objective.flags.writeable
    tighter = replace(lim, tpot_ns=max(1, lim.tpot_ns // 2))
    b2 = lower_bounds(t, tighter)
    assert b2 is not b and (b2.tpot_ok <= b.tpot_ok).all()
    t.min_replicas = np.full(len(t), lim.max_replicas, np.int64)  # as solve.py sets them after the table is built
    b3 = lower_bounds(t, tighter)
    assert b3 is not b2 and (b3.replicas == np.maximum(b2.replicas, lim.max_replicas)).all()
