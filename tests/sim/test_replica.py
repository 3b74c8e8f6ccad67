"""planner/sim/replica.py on hand-built step tables (constant step times, so every time is a hand computation):
static batching's lock-step batch and continuous batching's prefill-then-decode of one request."""
from __future__ import annotations

import numpy as np
import pytest

from planner.sim.replica import Book, ContinuousReplica, StaticReplica
from planner.sim.tables import StepTables

PREFILL_S = 0.1  # one prompt's prefill, any length
DECODE_S = 0.01  # one decode step of n running sequences costs n × DECODE_S


def tables(max_running: int = 4, kv: int = 100_000, budget: int = 8192) -> StepTables:
    grid = np.array([1.0, 1e6])
    decode = np.array([[n * DECODE_S] * 2 for n in range(max_running + 1)])
    return StepTables(ctx_grid=grid, decode_s=decode, prefill_busy_s=np.full(2, PREFILL_S),
                      prefill_latency_s=np.full(2, PREFILL_S), kv_capacity_tokens=kv, max_running=max_running,
                      max_batched_tokens=budget, draft_length=0, acceptance=0.0, estimate=None,
                      chunk_cost=lambda running, chunk, attended, kv_read, done: PREFILL_S)


def book(arrivals, inputs, outputs) -> Book:
    return Book(np.asarray(arrivals, float), np.asarray(inputs, np.int64), np.asarray(outputs, np.int64))


def test_static_batch_prefills_all_then_decodes_in_lock_step():
    b = book([0.0, 0.0], [100, 200], [3, 5])
    r = StaticReplica(tables(max_running=2), b, np.random.default_rng(0), timeout_s=1.0)
    for i in range(2):
        r.enqueue(i, 0.0)
    r.advance_until(10.0)
    # both prompts prefill back to back (0.2 s), then decode steps of 2 sequences (0.02 s each):
    # 2 more tokens for the first request, 4 for the second
    assert b.first_token_s == pytest.approx([0.2, 0.2])
    assert b.finish_s == pytest.approx([0.2 + 2 * 0.02, 0.2 + 4 * 0.02])
    assert r.busy_s == pytest.approx(0.2 + 4 * 0.02)


def test_static_batch_waits_for_its_timeout_when_not_full():
    b = book([0.0], [100], [2])
    r = StaticReplica(tables(max_running=2), b, np.random.default_rng(0), timeout_s=0.5)
    r.enqueue(0, 0.0)
    r.advance_until(0.4)
    assert np.isnan(b.first_token_s[0])  # still waiting for a second request
    r.advance_until(10.0)
    assert b.first_token_s[0] == pytest.approx(0.5 + PREFILL_S)
    assert b.finish_s[0] == pytest.approx(0.5 + PREFILL_S + DECODE_S)


def test_one_request_on_a_continuous_replica():
    b = book([0.0], [100], [4])
    r = ContinuousReplica(tables(), b, np.random.default_rng(0))
    r.enqueue(0, 0.0)
    r.advance_until(10.0)
    # its prompt in one step (0.1 s) gives the first token; 3 decode steps of one sequence give the rest
    assert b.first_token_s[0] == pytest.approx(PREFILL_S)
    assert b.finish_s[0] == pytest.approx(PREFILL_S + 3 * DECODE_S)


def test_continuous_replica_admits_no_more_than_max_running():
    b = book([0.0] * 3, [10] * 3, [50] * 3)
    r = ContinuousReplica(tables(max_running=2), b, np.random.default_rng(0))
    for i in range(3):
        r.enqueue(i, 0.0)
    r.advance_until(100.0)
    # two prompts in one step (0.1 s), then 49 decode steps of 2 sequences (0.02 s each): both done at 1.08 s;
    # the third waits for a free slot, then runs alone: 0.1 s prefill + 49 steps of 0.01 s
    assert b.admitted_s[:2] == pytest.approx([0.0, 0.0])
    assert b.finish_s[:2] == pytest.approx([1.08, 1.08])
    assert b.admitted_s[2] == pytest.approx(1.08)
    assert b.finish_s[2] == pytest.approx(1.08 + 0.1 + 0.49)


def test_one_acceptance_draw_matches_the_speculative_model():
    """Every speculative round in the simulator draws from `accepted_draft_tokens`: its mean tokens per round is
    perf/specdec's (1 − α^(γ+1)) / (1 − α), and it never accepts more than γ."""
    from planner.perf.specdec import expected_tokens_per_step
    from planner.sim.replica import accepted_draft_tokens

    tb = StepTables(ctx_grid=np.array([1.0, 2.0]), decode_s=np.zeros((2, 2)), prefill_busy_s=np.zeros(2),
                    prefill_latency_s=np.zeros(2), kv_capacity_tokens=1, max_running=1, max_batched_tokens=1,
                    draft_length=4, acceptance=0.7, estimate=None)
    acc = accepted_draft_tokens(np.random.default_rng(0), tb, (400, 500))
    assert acc.shape == (400, 500) and acc.min() == 0 and acc.max() == 4
    # (1 − 0.7^5) / 0.3 = 2.7731 tokens per round; 200,000 draws: standard error ~0.003
    assert (acc + 1).mean() == pytest.approx(float(expected_tokens_per_step(0.7, 4)), abs=0.015)


@pytest.mark.parametrize("model,kw", [("llama-3.1-70b", dict(tp=4, pp=2, batch=32)),
                                      ("mixtral-8x7b", dict(tp=2, ep=2, batch=64))])
def test_event_loop_with_tabulated_chunk_costs_equals_the_direct_perf_model(catalog, preset, model, kw):
    """The same simulation stepped with the direct perf-model composition of every mixed step
    (`ChunkCost.reference`, no tables, no memo): identical request times up to float rounding."""
    from dataclasses import replace

    from planner.perf.estimate import Config
    from planner.sim.fleet import run_fleet
    from planner.sim.requests import synthetic_requests
    from planner.sim.tables import build_tables
    from planner.specs.workload import Workload

    cfg = Config(gpu=catalog.gpu("h100-sxm"), **kw)
    w = Workload(isl=1024, osl=256)
    tb = build_tables(preset(model), cfg, w, catalog.perf, max_ctx=16_384)
    rate = 0.8 * tb.estimate.output_tokens_per_s / w.osl
    reqs = synthetic_requests(np.random.default_rng(4), rate_rps=rate, isl=1024, osl=256, count=120,
                              lengths="exponential")
    reqs = type(reqs)(reqs.arrival_s, np.minimum(reqs.input_tokens, 12_000), np.minimum(reqs.output_tokens, 4000))
    fast, _, _ = run_fleet(reqs, tb, replicas=2, seed=1)
    ref, _, _ = run_fleet(reqs, replace(tb, chunk_cost=tb.chunk_cost.reference), replicas=2, seed=1)
    assert np.isfinite(fast.finish_s).all()
    np.testing.assert_allclose(fast.first_token_s, ref.first_token_s, rtol=1e-12)
    np.testing.assert_allclose(fast.finish_s, ref.finish_s, rtol=1e-12)
