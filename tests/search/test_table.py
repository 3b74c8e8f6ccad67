"""planner/search/table.py: the per-row lower bounds are valid for every placement (so pruning rows on them, and
CP-SAT's redundant bound constraints, never cut off the optimum), and the integer evaluation is conservative
against the floating-point `perf.estimate` it is scaled from."""
from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import numpy as np

from planner.perf.estimate import Config, estimate
from planner.search.oracle import compositions, count_placements
from planner.search.table import (_NOT_DECODE, NS_PER_S, OBJECTIVE_UNIT_PER_HOUR, OBJECTIVE_UNIT_PER_TOKEN,
                                   ShapeTerms, Table, decode_cycle_ns, evaluate, lower_bounds, table_of)
from planner.specs.cluster import pipeline_link_bytes_per_s

from .instances import CATALOG, INSTANCES, requests, tabulate, tabulate_grid

PROPERTY = settings(INSTANCES, max_examples=60)


def _random_placement(data, L: int, pp: int) -> tuple[int, ...]:
    cuts = sorted(data.draw(st.lists(st.integers(1, L - 1), min_size=pp - 1, max_size=pp - 1, unique=True)))
    return tuple(b - a for a, b in zip([0] + cuts, cuts + [L]))


@PROPERTY
@given(req=requests(), data=st.data())
def test_lower_bounds_hold_for_every_placement(req, data):
    _check_lower_bounds(req, data)


@PROPERTY
@given(req=requests(multi_kind=True), data=st.data())
def test_lower_bounds_hold_for_every_placement_with_several_layer_kinds(req, data):
    """The per-kind bounds (the kinds' total over the stages, the cheapest kind for the one-layer stage)."""
    _check_lower_bounds(req, data)


def _check_lower_bounds(req, data):
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


@settings(INSTANCES, max_examples=40)
@given(req=requests(demand=False), data=st.data())
def test_integer_evaluation_is_conservative(req, data):
    """Times round up (ns), memory needs up and capacity down (KiB): what the integer model accepts, the
    floating-point estimate accepts too, and its TPOT is never above the integer one."""
    _check_conservative(req, data)


@settings(INSTANCES, max_examples=40)
@given(req=requests(demand=False, multi_kind=True), data=st.data())
def test_integer_evaluation_is_conservative_with_several_layer_kinds(req, data):
    """`perf.estimate` at a given placement reads the same per-kind terms as the table: conservative, and (the
    integer terms rounding each kind's per-layer time up by < 1 ns) within a few ns per layer of it."""
    e, ev, _ = _check_conservative(req, data)
    assert ev.ttft_ns - e.ttft_s * NS_PER_S <= 2 * (req.model.num_layers + 8)


@settings(INSTANCES, max_examples=40)
@given(req=requests(demand=False), data=st.data())
def test_a_pipelined_rows_stalls_are_the_float_models(req, data):
    """A pipelined row (PP > 1, chunked prefill) with at most one stalling chunk per decode cycle is charged the
    stalls estimate reports at its placement (table.stalled_ns), not the bound PP x chunks x the slowest stage's
    increment: the integer TPOT is at least the float one and above it by no more than the rounding of its terms,
    each stage's time rounded up by < its layers + 1 ns (T on the cycle, the chunk's micro-batch X taking pp + 1
    such stage sums, scaled by n / OSL stalling chunks per token)."""
    tl = tabulate(req)
    assume(tl is not None)
    t, lim = tl
    piped = (np.flatnonzero(t.piped & ((t.batch - 1) * (t.stall_coef // t.pp) <= t.osl)) if t.piped is not None
             else np.zeros(0, np.int64))
    assume(len(piped) > 0)
    e, ev, i = _check_conservative(req, data, int(piped[data.draw(st.integers(0, len(piped) - 1))]))
    n = (int(t.batch[i]) - 1) * int(t.stall_coef[i]) // int(t.pp[i])
    slack = (int(t.pp[i]) + 1) * (t.num_layers + 3) * (1 + n / t.osl) + 2
    assert ev.tpot_ns - e.tpot_s * NS_PER_S <= slack + 1e-9 * ev.tpot_ns


def _check_conservative(req, data, i=None):
    tl = tabulate(req)
    assume(tl is not None)
    t, lim = tl
    i = data.draw(st.integers(0, len(t) - 1)) if i is None else i
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
    return e, ev, i


@settings(INSTANCES, max_examples=40)
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


@settings(INSTANCES, max_examples=25)
@given(req=requests())
def test_each_shapes_pipeline_link_is_its_own(req):
    """ShapeTerms.of groups the shapes by (GPU, TP·DP, PP) with numpy: each shape's link is still the one
    `pipeline_link_bytes_per_s` gives for that shape."""
    tl = tabulate_grid(req)
    assume(tl is not None)
    terms = ShapeTerms.of(req, tl[0].rows.shapes, CATALOG.perf)
    want = [pipeline_link_bytes_per_s(r.gpu, r.tp * r.dp, r.pp) for r in terms.shapes]
    assert terms.link.tolist() == want


@settings(INSTANCES, max_examples=10)
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


def _two_kind_table(order, dec_ns, mem_kib, cap_kib, pp, dec_extra=(0, 0, 0), fixed_kib=(0, 0, 0), long_kib=None):
    """A one-row table of a model whose layers have the kinds `order` (0, 1), per-layer decode time and memory per
    kind, extras as (first, middle, last) stage; the prefill and chunk terms zero."""
    from planner.search.table import Table
    K, L = 2, len(order)
    one = lambda v: np.array([v], np.int64)  # noqa: E731
    three = lambda v: np.array([v], np.int64).reshape(1, 3)  # noqa: E731
    kinds = lambda v: np.array([v], np.int64).reshape(1, K)  # noqa: E731
    hot = np.array([[int(k == j) for k in order] for j in range(K)], np.int64)
    prefix = np.concatenate([np.zeros((K, 1), np.int64), np.cumsum(hot, axis=1)], axis=1)
    return Table(rows=[None], num_layers=L, osl=1, kind_prefix=prefix, dec_ns_per_kind=kinds(dec_ns),
                 dec_extra_ns=three(dec_extra), dec_extra_single_ns=one(dec_extra[0] + dec_extra[2]),
                 dec_hop_ns=one(0), pf_ns_per_kind=kinds((0, 0)), pf_extra_ns=three((0, 0, 0)),
                 pf_extra_single_ns=one(0), pf_hop_ns=one(0), ttft_ns=one(0), chunk_ns_per_kind=kinds((0, 0)),
                 chunk_extra_ns=three((0, 0, 0)), chunk_extra_single_ns=one(0), chunk_hop_ns=one(0),
                 stall_coef=one(0), mem_kib_per_kind=kinds(mem_kib), fixed_mem_kib=three(fixed_kib),
                 fixed_mem_single_kib=one(fixed_kib[0] + fixed_kib[2]), cap_kib=one(cap_kib),
                 price_1e4_usd_per_h=one(1), batch=one(1), pp=one(pp), gpus=one(pp), gpu_limit=one(-1),
                 long_kib_per_kind=None if long_kib is None else kinds(long_kib))


def test_stage_time_and_memory_by_layer_kind_by_hand():
    """DeepSeek-like: 3 dense layers (200 ns, 1,000 KiB each) then 9 MoE layers (500 ns, 8,000 KiB each), two
    stages (first stage +70 ns embedding, last +90 ns head, 5,000 KiB of fixed memory on each end). Placement
    (5, 7): stage 0 holds 3 dense + 2 MoE: 3·200 + 2·500 + 70 = 1,670 ns, 3·1,000 + 2·8,000 + 5,000 = 24,000 KiB;
    stage 1 holds 7 MoE: 7·500 + 90 = 3,590 ns, 56,000 + 5,000 = 61,000 KiB."""
    from planner.search.table import Limits
    t = _two_kind_table([0] * 3 + [1] * 9, (200, 500), (1000, 8000), 60_000, 2, dec_extra=(70, 0, 90),
                        fixed_kib=(5000, 0, 5000))
    assert t.stage_kinds((5, 7)) == [[3, 2], [0, 7]]
    assert t.stage_layers(0, (5, 7), "dec") == [1600, 3500]
    assert t.stage_layers(0, (5, 7), "mem") == [19_000, 56_000]
    lim = Limits(tpot_ns=10**9, ttft_ns=None, demand_tokens_per_s=None, max_replicas=1, max_objective=2**40)
    ev = evaluate(t, 0, (5, 7), lim)
    assert ev.dec_stage_ns == 3590 and ev.violated == ("memory",)  # 61,000 KiB > 60,000
    ev = evaluate(t, 0, (6, 6), lim)  # 3·200 + 3·500 + 70 = 2,170 ns, 32,000 KiB; 6·500 + 90 = 3,090, 53,000 KiB
    assert ev.feasible and ev.dec_stage_ns == 3090
    # lower bounds: the balanced share of 3·200 + 9·500 + 70 + 90 = 5,260 over 2 stages, 2,630 ns; memory needs
    # 3·1,000 + 9·8,000 + 10,000 = 85,000 KiB ≤ 2 · 60,000, and one dense layer beside 5,000 KiB
    b = lower_bounds(t, lim)
    assert int(b.dec_stage_ns[0]) == 2630 and bool(b.memory_ok[0])


def test_the_average_layer_is_wrong_both_ways_on_memory():
    """Two dense layers of 10 KiB then two MoE layers of 100 KiB, 150 KiB per device, two stages. The average layer
    (55 KiB) deems (2, 2) feasible (110 KiB a stage) though its MoE stage needs 200 KiB, and (3, 1) infeasible
    (165 KiB) though it needs 120 and 100 KiB. By kind, evaluate and the greedy placement get both right."""
    from planner.search.placement import greedy_placement
    from planner.search.table import Limits
    t = _two_kind_table([0, 0, 1, 1], (1, 1), (10, 100), 150, 2)
    lim = Limits(tpot_ns=10**9, ttft_ns=None, demand_tokens_per_s=None, max_replicas=1, max_objective=2**40)
    average = (2 * 10 + 2 * 100) / 4
    assert 2 * average <= 150 and 3 * average > 150
    assert evaluate(t, 0, (2, 2), lim).violated == ("memory",)
    assert evaluate(t, 0, (3, 1), lim).feasible
    assert greedy_placement(t, 0) == (3, 1)
    from planner.search import cpsat
    assert cpsat.solve(t, [0], lim, None).layers == (3, 1)


def test_a_stage_holds_the_batch_and_one_longest_sequence_apart():
    """Sliding-window layers (kind 0) whose KV is set by the batch (their window caps one long sequence) and full
    layers (kind 1) whose KV one maximum-length sequence sets: per layer, with the batch 100 / 20 KiB and with the
    long sequence 30 / 90 KiB. Two such layers hold 120 KiB with the batch, 120 with the long sequence: both fit
    130 KiB, though the per-layer larger of the two (100 + 90 = 190 KiB) would not."""
    from planner.search.table import Limits
    t = _two_kind_table([0, 1], (1, 1), (100, 20), 130, 1, long_kib=(30, 90))
    lim = Limits(tpot_ns=10**9, ttft_ns=None, demand_tokens_per_s=None, max_replicas=1, max_objective=2**40)
    assert evaluate(t, 0, (2,), lim).feasible and bool(lower_bounds(t, lim).memory_ok[0])
    t = _two_kind_table([0, 1], (1, 1), (100, 20), 119, 1, long_kib=(30, 90))
    assert evaluate(t, 0, (2,), lim).violated == ("memory",) and not lower_bounds(t, lim).memory_ok[0]


def _check_decode_only(req):
    tl = tabulate_grid(req)
    assume(tl is not None)
    rows = tl[0].rows
    p = CATALOG.perf
    terms = ShapeTerms.of(req, rows.shapes, p)
    full = table_of(req, terms, rows.shape_index, rows.micro_batch, p)
    dec = table_of(req, terms, rows.shape_index, rows.micro_batch, p, decode_only=True)
    for f in ("dec_ns_per_kind", "dec_extra_ns", "dec_extra_single_ns", "dec_hop_ns", "kind_prefix", "batch", "pp",
              "gpus", "price_1e4_usd_per_h", "gpu_limit"):
        a, b = getattr(full, f), getattr(dec, f)
        assert a.dtype == b.dtype and np.array_equal(a, b), f
    for f in _NOT_DECODE:  # left out, so that a read of them fails instead of seeing a wrong number
        assert getattr(dec, f) is None and getattr(full, f) is not None, f
    if req.spec is None:  # a full table of some rows, their decode terms taken from the decode-only table
        keep = np.flatnonzero(np.arange(len(rows)) % 3 != 1)
        terms4 = ("dec_ns_per_kind", "dec_extra_ns", "dec_extra_single_ns", "dec_hop_ns")
        part = table_of(req, terms, rows.shape_index[keep], rows.micro_batch[keep], p,
                        decode_terms=tuple(getattr(dec, f)[keep] for f in terms4))
        ref = table_of(req, terms, rows.shape_index[keep], rows.micro_batch[keep], p)
        for f in Table.__dataclass_fields__:
            a, b = getattr(ref, f), getattr(part, f)
            if isinstance(a, np.ndarray):
                assert a.dtype == b.dtype and np.array_equal(a, b), f
                if f in terms4:
                    assert np.array_equal(a, getattr(full, f)[keep]), f


@settings(INSTANCES, max_examples=25)
@given(req=requests())
def test_a_decode_only_table_has_the_full_tables_decode_terms(req):
    """table_of(decode_only=True) (the decode-cycle bounds' tables, bounds.cycle_floor and pool_rows) skips the
    prefill and chunk steps and the memory terms; its decode terms equal the full table's bit for bit, so the
    bounds read the same integers either way."""
    _check_decode_only(req)


@settings(INSTANCES, max_examples=15)
@given(req=requests(multi_kind=True))
def test_a_decode_only_table_has_the_full_tables_decode_terms_with_several_layer_kinds(req):
    _check_decode_only(req)


def _check_cycle_fails(req):
    tl = tabulate_grid(req)
    assume(tl is not None)
    t, lim = tl
    b = lower_bounds(t, lim)
    cycle = decode_cycle_ns(t)
    assert (cycle == t.pp * (b.dec_stage_ns + t.dec_hop_ns)).all()
    over = cycle > lim.tpot_ns
    # the TPOT bound is the cycle plus the prompts' stalls (>= 0): a row whose cycle alone misses the target fails
    assert (b.tpot_ns[over] >= cycle[over]).all()
    assert not b.tpot_ok[over].any() and not b.feasible[over].any()


@settings(INSTANCES, max_examples=30)
@given(req=requests())
def test_a_row_whose_decode_cycle_misses_tpot_fails(req):
    """bounds.search_space's examine tabulates such rows for their decode terms only and counts them failed."""
    _check_cycle_fails(req)


@settings(INSTANCES, max_examples=15)
@given(req=requests(multi_kind=True))
def test_a_row_whose_decode_cycle_misses_tpot_fails_with_several_layer_kinds(req):
    _check_cycle_fails(req)


def test_table_of_reads_time_only_steps_bit_for_bit(monkeypatch):
    """table_of asks step_terms for time-only steps (time_only=True): every term of its tables, full and decode-only,
    MoE and dense, is the same as from the steps with their bookkeeping."""
    import planner.search.table as table_mod
    from planner.api import make_request
    from planner.search.bounds import build_space

    real = table_mod.step_terms
    for model, gpus in (("mixtral-8x22b", "h100-sxm,mi300x"), ("llama-3.1-70b", "h100-sxm,l40s")):
        req, cat = make_request(model, isl=2000, osl=500, min_tokens_per_s_user=20, gpus=gpus, weights="bf16,fp8")
        sp = build_space(req, cat.perf)
        s = np.flatnonzero(sp.top > 0)
        s = np.repeat(s, 2)[:600]
        assert len(s) == 600
        pos = np.minimum(np.tile([0, 37], len(s) // 2), sp.top[s] - 1)
        got = []
        for time_only in (True, False):
            monkeypatch.setattr(table_mod, "step_terms",
                                lambda *a, _real=real, _keep=time_only, **k: _real(*a, **{**k, "time_only": _keep}))
            got.append([table_mod.table_of(req, sp.terms, s, sp.micro_batch(s, pos), cat.perf, decode_only=d)
                        for d in (False, True)])
        for a, b in zip(*got):
            for name, v in vars(a).items():
                if isinstance(v, np.ndarray):
                    assert np.array_equal(v, getattr(b, name)), (model, name)


def test_an_overflowing_round_is_charged_as_estimate_charges_it():
    """ISL 16, OSL 1 at micro-batch 1024 on one H100: 16,384 prompt tokens arrive per step and 8192 − 1024 fit, so
    each chunk also carries a share of the repeated decode steps (perf.estimate.packed_chunk); the integer round
    is the float one rounded up (each prompt's stall by up to a few ns per layer, 1024 prompts per round: within
    1e-4 with one stage) and never below it with two."""
    from planner.catalog import load_model
    from planner.specs.workload import SLO, Workload
    from planner.search.space import Request
    req = Request(model=load_model("llama-3.1-8b"), workload=Workload(isl=16, osl=1), slo=SLO(ttft_s=None, tpot_s=None),
                  gpus=(CATALOG.gpu("h100-sxm"),), weights=("bf16",), kv=("bf16",), pp=(1, 2),
                  micro_batches=(1024,), tp=(1,), max_gpus=None, max_gpus_per_type={}, time_limit_s=30.0)
    t, lim = tabulate_grid(req)
    assert len(t) == 2
    for i in range(len(t)):
        r = t.rows[i]
        lay = (32,) if r.pp == 1 else (16, 16)
        ev = evaluate(t, i, lay, lim)
        cfg = Config(gpu=r.gpu, tp=r.tp, pp=r.pp, ep=r.ep, batch=r.batch, weights=r.weights, kv=r.kv, dp=r.dp,
                     layers_per_stage=lay)
        e = estimate(req.model, cfg, req.workload, CATALOG.perf)
        round_ns = r.batch / e.output_tokens_per_s * NS_PER_S
        assert e.tpot_s * NS_PER_S <= ev.tpot_ns and round_ns <= ev.round_ns
        if r.pp == 1:
            assert ev.round_ns == pytest.approx(round_ns, rel=1e-4)
            # the packed round: 16384 / 7168 mixed steps, above 2 decode steps
            assert ev.round_ns > 2 * ev.dec_stage_ns
