"""The facts the lazy search of the exact space rests on (planner/search/bounds.py), checked on the perf model:
the decode and memory terms never fall as the micro-batch grows, the gap bound is below every row in the gap, and
memory's end of each shape's range is where the table's memory condition ends. Also the 1T dense int4 case of
issue #12 and pinned TP/PP/EP/batch lists."""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from planner.api import make_request
from planner.cli import main
from planner.search import bounds
from planner.search.solve import search
from planner.search.space import DEFAULT_MICRO_BATCHES, group_key
from planner.search.table import Limits, evaluate, lower_bounds

# (model, isl, osl, GPUs): the whole catalog for one dense model; MoE spaces (DP × EP) are larger, so the default
# suite checks them on two GPU types and the slow suite on the whole catalog
CASES = [("llama-3.1-70b", 2000, 500, None), ("mixtral-8x22b", 1000, 300, "h100-sxm,mi300x"),
         pytest.param("deepseek-v3", 8000, 2000, None, marks=pytest.mark.slow),
         pytest.param("mixtral-8x22b", 1000, 300, None, marks=pytest.mark.slow)]


def _space(model, isl, osl, gpus, **kw):
    req, cat = make_request(model, isl=isl, osl=osl, min_tokens_per_s_user=20, weights="bf16,fp8,int4", gpus=gpus,
                            **kw)
    sp = bounds.build_space(req, cat.perf)
    return sp, Limits.of(req, sp.max_batch), cat.perf


def _sample(sp, k=25, seed=0):
    live = np.flatnonzero(sp.top > 1)
    return np.random.default_rng(seed).choice(live, size=min(k, len(live)), replace=False)


@pytest.mark.parametrize("model,isl,osl,gpus", CASES)
def test_decode_and_memory_terms_never_fall_as_the_micro_batch_grows(model, isl, osl, gpus):
    sp, lim, p = _space(model, isl, osl, gpus)
    for s in _sample(sp):
        n = min(int(sp.top[s]), 400)
        t = sp.table(np.full(n, s), np.arange(n), p)
        b = lower_bounds(t, lim)
        for name in ("dec_ns_per_kind", "dec_extra_ns", "dec_extra_single_ns", "dec_hop_ns", "mem_kib_per_kind",
                     "fixed_mem_kib", "fixed_mem_single_kib"):
            assert (np.diff(getattr(t, name), axis=0) >= 0).all(), (name, sp.shapes[s])
        # a prompt's stall on the decoders is a time: >= 0 at every micro-batch (it need not grow)
        for name in ("chunk_ns_per_kind", "chunk_extra_ns", "chunk_extra_single_ns", "chunk_hop_ns"):
            assert (getattr(t, name) >= 0).all(), (name, sp.shapes[s])
        for name, v in (("stall range", t.batch * t.stall_coef),
                        ("decode stage bound", b.dec_stage_ns), ("cycle", t.pp * (b.dec_stage_ns + t.dec_hop_ns))):
            assert (np.diff(v, axis=0) >= 0).all(), (name, sp.shapes[s])
        assert (t.ttft_ns == t.ttft_ns[0]).all()  # TTFT does not depend on the micro-batch


@pytest.mark.parametrize("model,isl,osl,gpus", CASES[:2])
@pytest.mark.parametrize("demand", [None, 5000.0])
def test_gap_bound_is_below_every_row_in_the_gap(model, isl, osl, gpus, demand):
    sp, lim, p = _space(model, isl, osl, gpus, output_tokens_per_s=demand)
    rng = np.random.default_rng(1)
    for s in _sample(sp, 15):
        n = min(int(sp.top[s]), 300)
        t = sp.table(np.full(n, s), np.arange(n), p)
        b = lower_bounds(t, lim)
        cycle = t.pp * (b.dec_stage_ns + t.dec_hop_ns)
        for _ in range(10):
            lo, hi = sorted(rng.choice(n, size=2, replace=False))
            if hi - lo < 2:
                continue
            bound = bounds._gap_bound(sp, lim, np.array([s]), np.array([hi - 1]), cycle[lo:lo + 1])[0]
            assert bound <= b.objective[lo + 1:hi].min()


@pytest.mark.parametrize("model,isl,osl,gpus", CASES[:2])
def test_memory_end_of_the_range_is_where_memory_ends(model, isl, osl, gpus):
    sp, lim, p = _space(model, isl, osl, gpus)
    for s in _sample(sp, 40):
        top = int(sp.top[s])
        if top >= sp.count[s]:
            continue
        t = sp.table(np.array([s, s]), np.array([top - 1, top]), p)
        assert list(lower_bounds(t, lim).memory_ok) == [True, False]


@pytest.mark.parametrize("model,isl,osl,gpus", CASES[:2])
def test_memory_top_from_the_excess_slopes_equals_the_bisection(model, isl, osl, gpus):
    """bounds._memory_top (a guess from each memory condition's excess at the range's ends, checked, bisected where
    the check fails) counts what the plain bisection over `memory_fits` counts, for every shape; also where a
    demand caps the range and where every position fits."""
    from planner.search.table import memory_excess_kib, memory_fits

    sp, lim, p = _space(model, isl, osl, gpus)
    for count in (sp.count, np.minimum(sp.count, 3), np.minimum(sp.count, 40)):
        plain = bounds._last_true(lambda s, pos: memory_fits(sp.req, sp.terms, s, sp.micro_batch(s, pos)), count)
        assert (bounds._memory_top(sp, count) == plain).all()
        assert 0 < plain.sum() and (plain < count).any() and (plain == count).any()
    s = np.arange(len(sp))
    e = memory_excess_kib(sp.req, sp.terms, s, sp.micro_batch(s, np.zeros(len(sp), np.int64)))
    assert ((e <= 0).all(axis=1) == memory_fits(sp.req, sp.terms, s, sp.terms.dp)).all()


def test_dense_1t_int4_on_8_h100_takes_the_cheapest_batch(dense_1t_path):
    """Issue #12: a 1T dense model (128 layers, hidden 25600) in int4 on 8 H100. On the grid the batch stops at a
    grid point (24 of {16, 24, 32}); the exact space takes the cheapest batch, checked against every (TP, batch)
    on one stage (placement-free: the table's objective is the plan's) and every PP up to 8 by the bounds. (At the
    issue's 20 tok/s/user no layout reaches the speed under today's calibrated perf model: 8 tok/s/user here.)"""
    req, cat = make_request(str(dense_1t_path), isl=2000, osl=500, gpus="h100-sxm", max_gpus=8, weights="int4",
                            min_tokens_per_s_user=8)
    res = search(req, cat.perf, alternatives=False)
    grid = search(req.grid(), cat.perf, alternatives=False)
    assert res.best.objective < grid.best.objective
    assert res.best.row.batch not in DEFAULT_MICRO_BATCHES
    # every row of the space on one stage, tabulated: none feasible is cheaper
    sp = bounds.build_space(req, cat.perf)
    lim = Limits.of(req, sp.max_batch)
    one = np.flatnonzero((sp.terms.pp == 1) & (sp.top > 0))
    s = np.repeat(one, sp.top[one])
    pos = np.concatenate([np.arange(sp.top[i]) for i in one])
    t = sp.table(s, pos, cat.perf)
    objs = [evaluate(t, i, (t.num_layers,), lim) for i in range(len(t))]
    assert min(e.objective for e in objs if e.feasible) >= res.best.objective
    # and no deeper pipeline's bound beats it
    deeper = np.flatnonzero((sp.terms.pp > 1) & (sp.top > 0))
    s = np.repeat(deeper, sp.top[deeper])
    pos = np.concatenate([np.arange(sp.top[i]) for i in deeper])
    t = sp.table(s, pos, cat.perf)
    b = lower_bounds(t, lim)
    assert not (b.feasible & (b.objective < res.best.objective)).any()


def test_pinned_lists_reach_depths_and_batches_off_the_grid():
    """PP 7 and batch 91 are on no grid: pinning them gives a plan there, and the free search is never dearer
    (its space holds the pinned one)."""
    req, cat = make_request("llama-3.1-8b", isl=1000, osl=200, gpus="h100-sxm", min_tokens_per_s_user=20,
                            pp=[7], batch=[7 * 13])
    res = search(req, cat.perf, alternatives=False)
    assert (res.best.row.pp, res.best.row.batch) == (7, 91) and res.stats.space == "pinned"
    free, _ = make_request("llama-3.1-8b", isl=1000, osl=200, gpus="h100-sxm", min_tokens_per_s_user=20)
    got = search(free, cat.perf, alternatives=False)
    assert got.best.objective <= res.best.objective and got.stats.space == "exact"


def test_cli_pins_tp_pp_ep_batch_lists():
    r = CliRunner().invoke(main, ["plan", "--model", "llama-3.1-8b", "--isl", "1000", "--osl", "200", "--gpus",
                                  "h100-sxm", "--tp", "2,4", "--pp", "1", "--batch", "8,16", "--disagg", "off",
                                  "--json"])
    assert r.exit_code == 0, r.output
    import json

    d = json.loads(r.output)
    assert d["parallelism"]["tp"] in (2, 4) and d["parallelism"]["pp"] == 1 and d["batch"] in (8, 16)
    bad = CliRunner().invoke(main, ["plan", "--model", "llama-3.1-8b", "--isl", "1000", "--osl", "200", "--tp",
                                    "2,x"])
    assert bad.exit_code == 2 and "comma-separated integers" in bad.output


# (model, isl, osl, GPUs, tok/s/user, TTFT s): latency_depths' claim on dense and MoE spaces, with and without TTFT
DEPTH_CASES = [("llama-3.1-70b", 2000, 500, None, 20, None), ("llama-3.1-70b", 8000, 500, "h100-sxm,l40s", 30, 1.5),
               ("mixtral-8x22b", 1000, 300, "h100-sxm,mi300x", 20, None),
               ("gpt4-moe-rumored", 2000, 500, "h100-sxm,b200", 8, 5.0)]


@pytest.mark.parametrize("model,isl,osl,gpus,speed,ttft", DEPTH_CASES)
def test_latency_depths_keep_every_shape_whose_smallest_micro_batch_is_in_the_range(model, isl, osl, gpus, speed,
                                                                                      ttft):
    """bounds.latency_depths' claim as the search uses it: every shape whose smallest micro-batch passes the range
    conditions (so that it has a range) is listed by the pruned space (its group kept, its depth within the
    group's deepest); the hops the proof takes as >= 0 are. And it leaves out most of what cannot pass."""
    req, cat = make_request(model, isl=isl, osl=osl, min_tokens_per_s_user=speed, gpus=gpus, max_gpus=1024,
                            ttft_ms=None if ttft is None else ttft * 1000)
    p = cat.perf
    full = bounds.build_space(req, p)
    lim = Limits.of(req, full.max_batch)
    live = np.flatnonzero(full.top > 0)
    t = full.table(live, np.zeros(len(live), np.int64), p)
    ok = bounds.passes(t, lower_bounds(t, lim), lim)
    assert (t.dec_hop_ns >= 0).all() and (t.chunk_hop_ns >= 0).all() and (t.pf_hop_ns >= 0).all()
    depths = bounds.latency_depths(req, p, Limits.of(req, 1))
    for s in live[ok].tolist():
        r = full.shapes[s]
        assert r.pp <= depths.get(group_key(r), 0), r
    pruned = bounds.build_space(req, p, lim=Limits.of(req, 1))
    kept = {(group_key(r), r.pp) for r in pruned.shapes}
    assert {(group_key(full.shapes[s]), full.shapes[s].pp) for s in live[ok].tolist()} <= kept
    assert [r for r in full.shapes if (group_key(r), r.pp) in kept] == pruned.shapes  # same order, same shapes
    failing, still_listed = len(live) - int(ok.sum()), int((pruned.top > 0).sum()) - int(ok.sum())
    assert still_listed <= 0.5 * failing


def test_search_over_the_latency_pruned_space_finds_the_same_plans():
    """Pruning by latency_depths changes no plan: the same best row, placement and per-GPU-type alternatives as the
    search over every shape (it only leaves out shapes with no row in the space), with fewer rows examined."""
    from planner.search.solve import _search_exact

    req, cat = make_request("mixtral-8x22b", isl=2000, osl=500, gpus="h100-sxm,b200", min_tokens_per_s_user=20,
                            max_gpus=256)
    got = search(req, cat.perf)
    ref = _search_exact(req, cat.perf, True, bounds.build_space(req, cat.perf))
    assert (got.best.row, got.best.layers, got.best.objective) == (ref.best.row, ref.best.layers, ref.best.objective)
    assert [(c.row, c.objective) for c in got.alternatives] == [(c.row, c.objective) for c in ref.alternatives]
    assert got.stats.examined < ref.stats.examined and got.stats.rows < ref.stats.rows


@pytest.mark.parametrize("model,isl,osl,gpus,speed,ttft", DEPTH_CASES)
def test_cycle_floor_is_where_every_micro_batch_fails(model, isl, osl, gpus, speed, ttft):
    """bounds.cycle_floor's claim: from a shape's floor on, every micro-batch fails the range conditions (checked
    on every position from the floor to memory's end, for a sample of the shapes that have a floor below it)."""
    req, cat = make_request(model, isl=isl, osl=osl, min_tokens_per_s_user=speed, gpus=gpus, max_gpus=1024,
                            ttft_ms=None if ttft is None else ttft * 1000)
    p = cat.perf
    sp = bounds.build_space(req, p, lim=Limits.of(req, 1))
    lim = Limits.of(req, sp.max_batch)
    floor = bounds.cycle_floor(sp, p, lim.tpot_ns)
    mb_top = sp.terms.dp * sp.top
    has = np.flatnonzero((sp.top > 0) & (floor <= mb_top))
    assert len(has) > 0  # the floor is below memory's end somewhere: the test checks something
    for s in np.random.default_rng(2).choice(has, size=min(30, len(has)), replace=False).tolist():
        first = int(floor[s]) // int(sp.terms.dp[s]) - 1  # the position of the floor's micro-batch
        pos = np.arange(first, int(sp.top[s]))[:300]
        t = sp.table(np.full(len(pos), s), pos, p)
        assert not bounds.passes(t, lower_bounds(t, lim), lim).any(), sp.shapes[s]


@pytest.mark.parametrize("model,isl,osl,gpus,speed,ttft", DEPTH_CASES)
def test_cycle_floor_per_group_equals_the_bound_at_every_shape(model, isl, osl, gpus, speed, ttft):
    """bounds.cycle_floor decides each (group, grid point) for every depth at once; it gives what the bound
    evaluated at every (shape, grid point) gives (`_cycle_floor_per_shape`, the plain form), at targets that
    leave every shape, some or none with a floor."""
    from dataclasses import replace

    from planner.search.space import shape_group_index
    from planner.search.table import ShapeTerms, table_of

    req, cat = make_request(model, isl=isl, osl=osl, min_tokens_per_s_user=speed, gpus=gpus, max_gpus=1024,
                            ttft_ms=None if ttft is None else ttft * 1000)
    p = cat.perf
    sp = bounds.build_space(req, p, lim=Limits.of(req, 1))
    g = shape_group_index(sp.shapes)
    assert (g == shape_group_index(list(sp.shapes))).all()  # enumerate_shapes' groups, as keyed one by one
    first = np.unique(g, return_index=True)[1]
    terms = ShapeTerms.of(req, [replace(sp.shapes[i], pp=1) for i in first.tolist()], p)
    largest = np.zeros(len(first), np.int64)
    np.maximum.at(largest, g, sp.top)
    per = np.searchsorted(bounds.CYCLE_GRID, largest, side="right")
    gi = np.repeat(np.arange(len(first)), per)
    mb = terms.dp[gi] * bounds.CYCLE_GRID[np.arange(len(gi)) - np.repeat(np.cumsum(per) - per, per)]
    t = table_of(req, terms, gi, mb, p)
    tpot = Limits.of(req, sp.max_batch).tpot_ns
    seen = set()
    for target in [1, 10**15] + [int(tpot * 2.0**k) for k in range(-6, 24, 2)]:
        got = bounds.cycle_floor(sp, p, target)
        assert (got == bounds._cycle_floor_per_shape(sp, g, per, gi, mb, t, target)).all()
        seen.add(int((got < np.iinfo(np.int64).max).sum()))
    assert 0 in seen and max(seen) > 0  # targets where no shape, and where shapes have a floor


def _equal_terms(a, b) -> None:
    """Two ShapeTerms hold the same terms: same rows, arrays equal in value and dtype, profile fields alike (one
    number, of the same Python type, or arrays)."""
    from dataclasses import fields

    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name in ("hw", "params"):
            for h in fields(x):
                u, v = getattr(x, h.name), getattr(y, h.name)
                assert type(u) is type(v), (f.name, h.name)
                if isinstance(u, np.ndarray):
                    assert u.dtype == v.dtype and np.array_equal(u, v), (f.name, h.name)
                else:
                    assert u == v, (f.name, h.name)
        elif isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y), f.name
        else:
            assert x == y, f.name


@pytest.mark.parametrize("model,isl,osl,gpus,speed,ttft", DEPTH_CASES)
def test_cycle_floor_takes_the_stand_ins_terms_latency_depths_computed(model, isl, osl, gpus, speed, ttft):
    """The groups' terms `cycle_floor` takes from the space's stand-ins (ShapeTerms.take of latency_depths'
    terms) are those ShapeTerms.of computes for the groups' first shapes at PP 1, field by field, and so is its
    floor; also where the space's groups leave fewer GPU families than the stand-ins (profile fields that no
    longer differ are one number again)."""
    from dataclasses import replace

    from planner.search.space import shape_group_index
    from planner.search.table import ShapeTerms

    req, cat = make_request(model, isl=isl, osl=osl, min_tokens_per_s_user=speed, gpus=gpus, max_gpus=1024,
                            ttft_ms=None if ttft is None else ttft * 1000)
    p = cat.perf
    sp = bounds.build_space(req, p, lim=Limits.of(req, 1))
    assert sp.stand_ins is not None and len(sp.stand_ins[0]) >= len(sp.shapes.reps)
    g = shape_group_index(sp.shapes)
    first = np.unique(g, return_index=True)[1]
    reps = [replace(sp.shapes[i], pp=1) for i in first.tolist()]
    _equal_terms(bounds._group_terms(sp, g, p), ShapeTerms.of(req, reps, p))
    tpot = Limits.of(req, sp.max_batch).tpot_ns
    got = bounds.cycle_floor(sp, p, tpot)
    sp.stand_ins = None
    assert (got == bounds.cycle_floor(sp, p, tpot)).all()
    # one GPU type's groups alone: the stand-ins' per-family arrays become one number again
    all_reps, all_terms = bounds._latency_depths(req, p, Limits.of(req, 1))[1]
    one = [k for k, r in enumerate(all_reps) if r.gpu.id == all_reps[-1].gpu.id]
    _equal_terms(all_terms.take(one), ShapeTerms.of(req, [all_reps[k] for k in one], p))
    _equal_terms(all_terms.take(np.arange(len(all_reps))), all_terms)


# Pools (fleet/pools.class_pools): the rows left out before tabulating (bounds.pool_rows) are rows no role's
# candidate filter passes, on the perf model; and the pools are the same as over the whole grid table.
POOL_CASES = [("llama-3.1-70b", 2000, 500, None, 20), ("mixtral-8x22b", 1000, 300, "h100-sxm,mi300x", 30),
              ("gpt-oss-120b", 4000, 400, "h100-sxm,l40s", 60),
              pytest.param("deepseek-v3", 8000, 2000, None, 20, marks=pytest.mark.slow)]


@pytest.mark.parametrize("model,isl,osl,gpus,speed", POOL_CASES)
def test_pool_rows_leave_out_only_rows_no_role_may_choose(model, isl, osl, gpus, speed):
    from planner.fleet.pools import class_pools
    from planner.search.space import enumerate_rows
    from planner.search.table import ShapeTerms, build_table

    req, cat = make_request(model, isl=isl, osl=osl, min_tokens_per_s_user=speed, ttft_ms=3000, gpus=gpus)
    p = cat.perf
    g = req.grid()
    preq = g  # class_pools' own request: the grid's lists
    rows = enumerate_rows(preq, p.max_batch)
    lim = Limits.of(preq, p.max_batch)
    terms = ShapeTerms.of(preq, rows.shapes, p)
    for prefill in (True, False):
        keep = bounds.pool_rows(preq, terms, rows.shape_index, rows.micro_batch, p, lim, prefill)
        assert 0 < keep.sum() < len(keep)  # the cases leave something out, and keep something
        t = build_table(preq, rows, p)
        b = lower_bounds(t, lim)
        cycle = t.pp * (b.dec_stage_ns + t.dec_hop_ns)
        dp = terms.dp[rows.shape_index]
        may = b.memory_ok & ((cycle <= lim.tpot_ns) | (prefill & (rows.micro_batch == dp)))
        assert not (may & ~keep).any()  # every row a role may choose is kept
        assert not (keep & ~b.memory_ok).any()  # memory_fits is lower_bounds' memory condition
    args = dict(weights=req.weights, kv=req.kv, pp=g.pp, micro_batches=g.micro_batches, tp=req.tp)
    for roles in (("prefill", "decode"), ("aggregated",), ("aggregated", "prefill", "decode")):
        pruned = class_pools(0, req.model, req.workload, req.slo, req.gpus, p, roles=roles, **args)
        full = class_pools(0, req.model, req.workload, req.slo, req.gpus, p, roles=roles,
                           table=build_table(preq, rows, p), **args)
        assert pruned and pruned == full


@pytest.mark.parametrize("model,isl,osl,gpus,extra", [
    ("llama-3.1-70b", 2000, 500, None, {}), ("mixtral-8x22b", 8000, 2000, None, {"weights": "bf16,fp8,int4"}),
    ("deepseek-v3", 2000, 500, None, {}), ("gpt4-moe-rumored", 2000, 500, None, {}),
    ("llama-3.1-8b", 1000, 200, "h100-sxm,l4", {"batch": (64, 8, 512, 24)})])
def test_memory_prefix_is_memory_fits_of_every_row(model, isl, osl, gpus, extra):
    """pool_rows' memory condition bisected per shape (`_memory_prefix`) is `memory_fits` of every row, on the
    pools' grid rows (runs of one shape, rising micro-batches) and on rows in another order (every row tested)."""
    from planner.search.space import enumerate_rows
    from planner.search.table import ShapeTerms, memory_fits

    req, cat = make_request(model, isl=isl, osl=osl, min_tokens_per_s_user=20, gpus=gpus, max_gpus=1024, **extra)
    g = req.grid()
    rows = enumerate_rows(g, cat.perf.max_batch)
    terms = ShapeTerms.of(g, rows.shapes, cat.perf)
    idx, mb = rows.shape_index, rows.micro_batch
    every = memory_fits(g, terms, idx, mb)
    assert 0 < every.sum() < len(every)  # some rows fit and some do not
    assert (bounds._memory_prefix(g, terms, idx, mb) == every).all()
    back = np.arange(len(idx))[::-1]
    assert (bounds._memory_prefix(g, terms, idx[back], mb[back]) == every[back]).all()


# (model, isl, osl, GPUs, tokens/s/user, output tokens/s demand, TTFT s): without and with a demand (and with it
# the TTFT percentile's queueing bound)
SETTLED_CASES = [("llama-3.1-70b", 2000, 500, None, 20, None, None),
                 ("mixtral-8x22b", 1000, 300, "h100-sxm,mi300x", 20, None, None),
                 ("gpt4-moe-rumored", 2000, 500, "h100-sxm,b200", 8, None, None),
                 ("mixtral-8x22b", 2000, 500, "h100-sxm,mi300x", 20, 5000.0, 2.0)]


def _search_with_and_without(monkeypatch, cut, case, per_type=True, always_off=(), cut_off=None):
    """The lazy search's result (rows examined, rounds, candidates, their table's rows, the upper bounds) and the
    rows it tabulates in full, with the bound `bounds.<cut>` and then with it switched off (it marks no row, or
    `cut_off` stands in for it); the bounds named in `always_off` are off in both runs."""
    from planner.search.queueing import QueueTarget

    model, isl, osl, gpus, speed, demand, ttft = case
    req, cat = make_request(model, isl=isl, osl=osl, min_tokens_per_s_user=speed, gpus=gpus, max_gpus=1024,
                            output_tokens_per_s=demand, ttft_ms=None if ttft is None else ttft * 1000)
    p = cat.perf
    full_rows = []
    table = bounds.Space.table

    def counted(self, s, pos, p_, decode_terms=None, fits=False):
        if decode_terms is not None:  # examine's full tables of the rows whose decode cycle meets TPOT
            full_rows.append(len(s))
        return table(self, s, pos, p_, decode_terms=decode_terms, fits=fits)

    def off(sp, lim, s, *a, **k):
        return np.zeros(len(s), bool)

    monkeypatch.setattr(bounds.Space, "table", counted)
    for name in always_off:
        monkeypatch.setattr(bounds, name, off)
    got = []
    for use in (True, False):
        if not use:
            monkeypatch.setattr(bounds, cut, off if cut_off is None else cut_off)
        full_rows.clear()
        sp = bounds.build_space(req, p, bounds.demand_batch_cap(Limits.of(req, 1)), Limits.of(req, 1))
        lim = Limits.of(req, sp.max_batch)
        if demand is not None:
            sp.queue = bounds.queue_bound(sp, lim, p, QueueTarget(99.0, ttft, demand / osl))
        ex = bounds.search_space(sp, lim, p, per_type=per_type)
        rows = list(zip(ex.table.rows.shape_index.tolist(), ex.table.rows.micro_batch.tolist()))
        got.append(((ex.examined, ex.rounds, ex.candidates.tolist(), rows, ex.upper), sum(full_rows)))
    return got


@pytest.mark.parametrize("model,isl,osl,gpus,speed,demand,ttft", SETTLED_CASES)
@pytest.mark.parametrize("per_type", [True, False])
def test_settled_probes_change_nothing_the_search_keeps(monkeypatch, model, isl, osl, gpus, speed, demand, ttft,
                                                        per_type):
    """bounds._settled's claim: the probes it settles (no full table) change nothing the lazy search returns —
    the same rows examined, rounds, candidates, their table and the per-type upper bounds as the search that
    tabulates every probe in full — and it settles some, so fewer rows are tabulated in full."""
    # settling alone (the rows failing on their chunk sends, which it would settle too, tabulated as before)
    (settled, n_settled), (plain, n_plain) = _search_with_and_without(
        monkeypatch, "_settled", (model, isl, osl, gpus, speed, demand, ttft), per_type=per_type,
        always_off=("_hop_stall_fails",))
    assert settled == plain
    assert len(plain[2]) > 0 and n_settled < n_plain


@pytest.mark.parametrize("model,isl,osl,gpus", CASES[:2])
def test_tables_without_memory_terms_give_the_same_bounds(model, isl, osl, gpus):
    """table_of `fits` (the lazy search's rows, below Space.top): lower_bounds is the same as over the table with
    its memory terms, memory_ok true included; with_memory gives the same rows with those terms."""
    from dataclasses import fields

    from planner.search.table import with_memory

    sp, lim, p = _space(model, isl, osl, gpus)
    rng = np.random.default_rng(3)
    s = np.repeat(_sample(sp, 40), 3)
    pos = np.minimum(rng.integers(0, 1 << 12, len(s)), sp.top[s] - 1)
    full, fit = sp.table(s, pos, p), sp.table(s, pos, p, fits=True)
    assert fit.mem_kib_per_kind is None and fit.cap_kib is None
    a, b = lower_bounds(full, lim), lower_bounds(fit, lim)
    assert a.memory_ok.all()
    for f in fields(a):
        assert (getattr(a, f.name) == getattr(b, f.name)).all(), f.name
    idx = rng.choice(len(s), size=20, replace=False)
    got, want = with_memory(sp.req, sp.terms, fit, idx), full.take(idx)
    assert list(got.rows) == list(want.rows) == [full.rows[i] for i in idx.tolist()]
    for f in fields(want):
        x, y = getattr(got, f.name), getattr(want, f.name)
        assert (x is None and y is None) or (np.asarray(x) == np.asarray(y)).all(), f.name


def test_tables_without_memory_terms_need_no_draft():
    from dataclasses import replace

    from planner.catalog import load_model
    from planner.perf.estimate import SpecDecode

    req, cat = make_request("llama-3.1-70b", isl=1000, osl=200, min_tokens_per_s_user=20, gpus="h100-sxm", tp=[4],
                            pp=[1], weights="fp8", kv="fp8")
    sp = bounds.build_space(replace(req, spec=SpecDecode(load_model("llama-3.1-8b"), 4, 0.8)), cat.perf)
    with pytest.raises(ValueError, match="fits without a draft"):
        sp.table(np.array([0]), np.array([0]), cat.perf, fits=True)


@pytest.mark.parametrize("model,isl,osl,gpus,speed,demand,ttft", [SETTLED_CASES[i] for i in (0, 1, 3)])
def test_search_over_tables_without_memory_terms_keeps_the_same_rows(monkeypatch, model, isl, osl, gpus, speed,
                                                                     demand, ttft):
    """The lazy search tabulates its rows without memory terms (table_of `fits`, the greedy placements' rows given
    theirs by with_memory): the same rows examined, candidates, their table and upper bounds as with them."""
    from planner.search.queueing import QueueTarget

    req, cat = make_request(model, isl=isl, osl=osl, min_tokens_per_s_user=speed, gpus=gpus, max_gpus=1024,
                            output_tokens_per_s=demand, ttft_ms=None if ttft is None else ttft * 1000)
    p = cat.perf
    table = bounds.Space.table
    got = []
    for fits in (True, False):
        if not fits:
            monkeypatch.setattr(bounds.Space, "table",
                                lambda self, s, pos, p_, decode_terms=None, fits=False: table(self, s, pos, p_,
                                                                                              decode_terms))
        sp = bounds.build_space(req, p, bounds.demand_batch_cap(Limits.of(req, 1)), Limits.of(req, 1))
        lim = Limits.of(req, sp.max_batch)
        if demand is not None:
            sp.queue = bounds.queue_bound(sp, lim, p, QueueTarget(99.0, ttft, demand / osl))
        ex = bounds.search_space(sp, lim, p)
        rows = list(zip(ex.table.rows.shape_index.tolist(), ex.table.rows.micro_batch.tolist()))
        got.append((ex.examined, ex.rounds, ex.candidates.tolist(), rows, ex.upper))
    assert got[0] == got[1] and len(got[0][2]) > 0 and got[0][4]


def test_greedy_placements_over_a_table_without_memory_terms_try_the_same_rows(monkeypatch):
    """bounds._improve over a table without memory terms (table_of `fits`) gives the rows it may try their memory
    terms (with_memory) and tries the same rows, in the same order, with the same results, as over the full
    table: with rows tried before (`done`, not counted) and placements that fail (each type's whole quota tried)."""
    from planner.search import placement

    req, cat = make_request("llama-3.1-405b", isl=2000, osl=500, min_tokens_per_s_user=10, gpus="h100-sxm,mi300x",
                            pp=[4, 5, 7], weights="fp8", kv="fp8")
    p = cat.perf
    sp = bounds.build_space(req, p)
    lim = Limits.of(req, sp.max_batch)
    live = np.flatnonzero(sp.top > 0)
    s = np.repeat(live, np.minimum(sp.top[live], 40))
    pos = np.concatenate([np.arange(min(int(sp.top[k]), 40)) for k in live.tolist()])
    real = placement.greedy_placement
    got = []
    for fits in (False, True):
        t = sp.table(s, pos, p, fits=fits)
        b = lower_bounds(t, lim)
        order = np.lexsort((np.arange(len(s)), b.objective, sp.gpu_type[s]))
        done = {(int(s[i]), int(pos[i])) for i in order[b.feasible[order]][:3].tolist()}
        calls = []

        def greedy(t_, i):
            calls.append(t_.rows[i])
            return None if len(calls) <= 10 else real(t_, i)

        monkeypatch.setattr(placement, "greedy_placement", greedy)
        inc = np.full(len(req.gpus), np.iinfo(np.int64).max, np.int64)
        upper = {}
        bounds._improve(sp, t, b, s, pos, lim, inc, upper, done)
        got.append((calls, inc.tolist(), upper, sorted(done)))
    assert got[0] == got[1]
    assert len(got[0][0]) > 2 * bounds.GREEDY_ROWS_PER_TYPE - 6 and got[0][2]  # quotas reached, a plan found


# (model, isl, osl, GPUs, tokens/s/user): spaces with pipelined shapes whose prompts' chunk sends matter
HOP_CASES = [("llama-3.1-70b", 2000, 500, "h100-sxm,l40s", 20), ("mixtral-8x22b", 8000, 500, "h100-sxm,mi300x", 20),
             ("gpt4-moe-rumored", 2000, 500, "h100-sxm,b200", 8)]


@pytest.mark.parametrize("prefill_first", [False, True])
@pytest.mark.parametrize("model,isl,osl,gpus,speed", HOP_CASES)
def test_chunk_hop_floor_is_below_the_tables_hop(model, isl, osl, gpus, speed, prefill_first):
    """bounds.chunk_hop_floor_ns' claim on the perf model: its stall coefficient is the table's and its hop at most
    the table's `chunk_hop_ns` (positive on pipelined rows, some within a few ns of it), at every position of
    a sample of shapes; and the rows `_hop_stall_fails` marks fail `passes` on their full table (some do)."""
    from dataclasses import replace

    req, cat = make_request(model, isl=isl, osl=osl, min_tokens_per_s_user=speed, gpus=gpus, max_gpus=1024)
    p = replace(cat.perf, prefill_first=prefill_first)
    sp = bounds.build_space(req, p)
    lim = Limits.of(req, sp.max_batch)
    live = np.flatnonzero(sp.top > 0)
    shapes = np.random.default_rng(3).choice(live, size=min(60, len(live)), replace=False)
    at = [np.unique(np.linspace(0, sp.top[k] - 1, 40).astype(np.int64)) for k in shapes]  # positions per shape
    s, pos = np.repeat(shapes, [len(a) for a in at]), np.concatenate(at)
    t = sp.table(s, pos, p)
    coef, hop = bounds.chunk_hop_floor_ns(sp, s, pos)
    assert (coef == t.stall_coef).all()
    assert (hop <= t.chunk_hop_ns).all() and (hop >= 0).all()
    multi = t.pp > 1
    assert multi.any()
    if prefill_first:
        assert (hop == 0).all()
    else:
        # within a few ns of it where no share of extra decode steps is added (packed_chunk's overflow)
        assert (hop[multi] > 0).all() and (t.chunk_hop_ns[multi] - hop[multi] <= 3).any()
    cycle = bounds.decode_cycle_ns(t)
    fails = bounds._hop_stall_fails(sp, lim, s, pos, cycle)
    assert not bounds.passes(t, lower_bounds(t, lim), lim)[fails].any()
    if not prefill_first:
        assert (fails & (cycle <= lim.tpot_ns)).any()  # rows the decode cycle alone does not rule out


@pytest.mark.parametrize("model,isl,osl,gpus,speed,demand,ttft", SETTLED_CASES)
def test_rows_failing_on_their_chunk_sends_change_nothing_the_search_keeps(monkeypatch, model, isl, osl, gpus,
                                                                          speed, demand, ttft):
    """The rows `_hop_stall_fails` keeps from a full table change nothing the lazy search returns (the same rows
    examined, rounds, candidates, their table and upper bounds as without it), and fewer rows are tabulated in
    full where pipelined shapes are probed."""
    (with_floor, n_floor), (plain, n_plain) = _search_with_and_without(
        monkeypatch, "_hop_stall_fails", (model, isl, osl, gpus, speed, demand, ttft))
    assert with_floor == plain
    assert len(plain[2]) > 0 and n_floor <= n_plain
    if model == "gpt4-moe-rumored":
        assert n_floor < n_plain


# (model, isl, osl, GPUs, tok/s/user, perf profile changes): dense and MoE, DP attention groups (DeepSeek-V3), an
# engine that prefills first and two-batch overlap (where the floor is 0 on MoE kinds with EP > 1)
CHUNK_FLOOR_CASES = [("llama-3.1-70b", 2000, 500, "h100-sxm,l40s", 20, {}),
                     ("mixtral-8x22b", 8000, 500, "h100-sxm,mi300x", 20, {}),
                     ("deepseek-v3", 8000, 2000, "h200", 20, {}),
                     ("deepseek-v3", 2000, 500, "h200", 20, {"two_batch_overlap": True}),
                     ("mixtral-8x22b", 2000, 500, "h100-sxm", 20, {"prefill_first": True})]


@pytest.mark.parametrize("model,isl,osl,gpus,speed,changes", CHUNK_FLOOR_CASES)
def test_chunk_layer_floor_is_below_the_tables_chunk_terms(model, isl, osl, gpus, speed, changes):
    """bounds.chunk_layer_floor_ns' claim on the perf model: at every position of a sample of shapes, each kind's
    floor is at most the table's `chunk_ns_per_kind` (the chunk's attention is a part of the mixed step's
    increment), positive where the claim applies and 0 where it does not (prefill first; MoE kinds under two-batch
    overlap with EP > 1); and the rows `_hop_stall_fails` marks fail `passes` on their full table."""
    from dataclasses import replace

    from planner.perf.step import kind_models

    req, cat = make_request(model, isl=isl, osl=osl, min_tokens_per_s_user=speed, gpus=gpus, max_gpus=1024)
    p = replace(cat.perf, **changes)
    sp = bounds.build_space(req, p)
    lim = Limits.of(req, sp.max_batch)
    live = np.flatnonzero(sp.top > 0)
    shapes = np.random.default_rng(5).choice(live, size=min(60, len(live)), replace=False)
    at = [np.unique(np.linspace(0, sp.top[k] - 1, 30).astype(np.int64)) for k in shapes]
    s, pos = np.repeat(shapes, [len(a) for a in at]), np.concatenate(at)
    t = sp.table(s, pos, p)
    floor = bounds.chunk_layer_floor_ns(sp, s, pos)
    assert floor.shape == t.chunk_ns_per_kind.shape
    assert (floor >= 0).all() and (floor <= t.chunk_ns_per_kind).all()
    moe = np.array([km.is_moe for _, _, km in kind_models(req.model)])
    if changes.get("prefill_first"):
        assert (floor == 0).all()
    elif changes.get("two_batch_overlap"):
        ep = sp.terms.ep[s] > 1
        assert ep.any() and (floor[ep][:, moe] == 0).all() and (floor[:, ~moe] > 0).all()
    else:
        assert (floor > 0).all()
        if model == "deepseek-v3":  # rows with DP attention groups among them
            assert (sp.terms.dp[s] > 1).any()
    cycle = bounds.decode_cycle_ns(t)
    fails = bounds._hop_stall_fails(sp, lim, s, pos, cycle)
    assert not bounds.passes(t, lower_bounds(t, lim), lim)[fails].any()


@pytest.mark.parametrize("model,isl,osl,gpus,speed,demand,ttft", SETTLED_CASES)
def test_rows_failing_on_their_chunks_attention_change_nothing_the_search_keeps(monkeypatch, model, isl, osl, gpus,
                                                                                speed, demand, ttft):
    """`_hop_stall_fails` with the chunk's per-layer floor (`chunk_layer_floor_ns`) returns what it returns with
    that floor at 0 (the chunk sends alone): the same rows examined, rounds, candidates, their table and upper
    bounds, and fewer rows tabulated in full."""
    floor = bounds.chunk_layer_floor_ns
    (with_floor, n_floor), (plain, n_plain) = _search_with_and_without(
        monkeypatch, "chunk_layer_floor_ns", (model, isl, osl, gpus, speed, demand, ttft),
        cut_off=lambda sp, s, pos: 0 * floor(sp, s, pos))
    assert with_floor == plain
    assert len(plain[2]) > 0 and n_floor < n_plain


@pytest.mark.parametrize("pruned", [False, True])
@pytest.mark.parametrize("model,isl,osl,gpus,speed,max_gpus", [("llama-3.1-70b", 2000, 500, "h100-sxm,l40s", 20, 8),
                                                               ("mixtral-8x22b", 8000, 500, "h100-sxm", 20, 8)])
def test_range_ends_by_bisection_are_the_exhaustive_ones(monkeypatch, model, isl, osl, gpus, speed, max_gpus,
                                                          pruned):
    """bounds._range_ends (the queueing bound's range ends, bisection over all shapes at once; positions past
    `cycle_floor` not tabulated in a space listed for the targets, rows that fail on their decode cycle or chunk
    sends left without a full table) gives `range_ends`' answer, which tabulates every position, and the answer
    of the bisection that tabulates every probe in full; and it leaves some rows without a full table."""
    req, cat = make_request(model, isl=isl, osl=osl, min_tokens_per_s_user=speed, gpus=gpus, max_gpus=max_gpus)
    p = cat.perf
    sp = bounds.build_space(req, p, lim=Limits.of(req, 1) if pruned else None)
    lim = Limits.of(req, sp.max_batch)
    full = []
    table_of = bounds.table_of

    def counted(req_, s, idx, mb, p_, *a, decode_only=False, **k):
        if not decode_only:
            full.append(len(idx))
        return table_of(req_, s, idx, mb, p_, *a, decode_only=decode_only, **k)

    monkeypatch.setattr(bounds, "table_of", counted)
    got = bounds._range_ends(sp, lim, p)
    n_full = sum(full)
    assert (sp.floor is not None) == pruned
    monkeypatch.setattr(bounds, "_hop_stall_fails", lambda sp_, lim_, s, *a: np.zeros(len(s), bool))
    monkeypatch.setattr(bounds, "decode_cycle_ns", lambda t: np.zeros(len(t), np.int64))
    monkeypatch.setattr(bounds, "_known_floor", lambda sp_, p_, tpot: np.full(len(sp_), np.iinfo(np.int64).max))
    full.clear()
    assert (got == bounds._range_ends(sp, lim, p)).all()  # every probe tabulated in full
    assert n_full < sum(full)
    assert (got == bounds.range_ends(sp, lim, p)).all() and (got > 0).any() and (got < sp.top).any()
