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
