"""planner/sim/disagg.py: a disaggregated plan replays prefill pool → KV transfer → decode pool; single requests
match a hand composition of the step tables, queues form where a pool is short, and the replay is deterministic."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from planner import api
from planner.catalog import load_catalog
from planner.cli import main
from planner.errors import InputError
from planner.export.disagg import pool_plan
from planner.sim.disagg import decode_pass, prefill_pass
from planner.sim.plan_input import plan_from_dict
from planner.sim.requests import Requests
from planner.sim.simulate import plan_tables

DSV3 = dict(model="deepseek-v3", gpus="h200", max_gpus=16, isl=4000, osl=500, ttft_ms=2000, tpot_ms=50,
            slo_percentile=50)


@pytest.fixture(scope="module")
def plan():
    d = api.plan(**DSV3).to_dict()
    assert "pools" in d
    return d


@pytest.fixture(scope="module")
def tables(plan):
    cat = load_catalog()
    return {r: plan_tables(plan_from_dict(pool_plan(plan, r)), cat, 4500) for r in ("prefill", "decode")}


def test_one_request_is_the_hand_composition_of_the_tables(plan, tables):
    isl, osl = 4000, 500
    one = Requests(np.array([0.0]), np.array([isl]), np.array([osl]))
    d = api.simulate(plan, trace=one)
    pre, dec = tables["prefill"], tables["decode"]
    ttft = float(np.interp(isl, pre.ctx_grid, pre.prefill_latency_s)) + plan["kv_transfer_s"]
    assert d["ttft_s"]["p50"] == pytest.approx(ttft, rel=1e-5)  # JSON keeps 6 significant digits
    # alone on a decode replica: osl - 1 steps of batch 1, the context growing from isl + 1
    steps = sum(dec.decode_step_s(1, isl + k) for k in range(1, osl))
    assert d["tpot_s"]["p50"] == pytest.approx(steps / (osl - 1), rel=1e-5)
    assert d["requests"]["simulated"] == 1 and d["mode"] == "disaggregated"


def test_prefill_lanes_queue_first_come_first_served(tables):
    pre = tables["prefill"]
    busy = float(np.interp(4000, pre.ctx_grid, pre.prefill_busy_s))
    lat = float(np.interp(4000, pre.ctx_grid, pre.prefill_latency_s))
    first, total = prefill_pass(np.zeros(3), np.full(3, 4000), 2, pre)
    # two lanes: two prompts start at once, the third when the first lane frees
    assert first.tolist() == pytest.approx([lat, lat, busy + lat])
    assert total == pytest.approx(3 * busy)


def test_decode_admits_up_to_the_batch(tables):
    dec = tables["decode"]
    n = dec.max_running + 1
    finish, _ = decode_pass(np.zeros(n), np.full(n, 100), np.full(n, 3), 1, dec)
    # the first `batch` requests run two steps together; the last waits for them, then runs two alone
    full = dec.decode_step_s(dec.max_running, 101.0) + dec.decode_step_s(dec.max_running, 102.0)
    assert finish[:-1] == pytest.approx(np.full(n - 1, full))
    assert finish[-1] == pytest.approx(full + dec.decode_step_s(1, 101.0) + dec.decode_step_s(1, 102.0))


def test_an_undersized_prefill_pool_queues(plan):
    cap = plan["pools"]["prefill"]["requests_per_s_per_replica"] * plan["pools"]["prefill"]["replicas"]
    light = api.simulate(plan, rate_rps=0.2 * cap, requests=200)
    heavy = api.simulate(plan, rate_rps=3 * cap, requests=200)
    assert light["ttft_s"]["p50"] == pytest.approx(light["estimate"]["ttft_s"], rel=0.02)
    assert heavy["ttft_s"]["p99"] > 3 * heavy["estimate"]["ttft_s"]
    assert api.simulate(plan, rate_rps=0.2 * cap, requests=200) == light  # deterministic for a seed


def test_cli_replays_a_disaggregated_plan(plan, tmp_path):
    p = tmp_path / "plan.json"
    p.write_text(json.dumps(plan))
    r = CliRunner().invoke(main, ["simulate", str(p), "--rate-rps", "2", "--requests", "50"])
    assert r.exit_code == 0, r.output
    assert "disaggregated: prefill" in r.stdout and "KV transfer" in r.stdout
    r = CliRunner().invoke(main, ["simulate", str(p), "--rate-rps", "2", "--batching", "static"])
    assert r.exit_code == 2 and "Traceback" not in r.output and len(r.stderr.strip().splitlines()) == 1
    with pytest.raises(InputError, match="replays with continuous batching"):
        api.simulate(plan, rate_rps=1, replicas=3)


def _decode_pass_per_sequence(ready_s, input_tokens, output_tokens, replicas, tables):
    """decode_pass as first written (#13): every running sequence a [request, tokens left, context] entry, walked
    each step. The incremental decode_pass (#16) must give the same finish times and busy time, bit for bit."""
    import heapq
    from collections import deque
    finish = np.full(len(ready_s), np.nan)
    queue = [deque() for _ in range(replicas)]
    running = [[] for _ in range(replicas)]
    kv_used, stepping, busy, events, order = [0] * replicas, [False] * replicas, 0.0, [], 0
    for i in np.argsort(ready_s, kind="stable"):
        if output_tokens[i] <= 1:
            finish[i] = ready_s[i]
            continue
        events.append((float(ready_s[i]), 1, order, int(i)))
        order += 1
    heapq.heapify(events)

    def start_step(r, now):
        nonlocal busy, order
        while queue[r] and len(running[r]) < tables.max_running:
            j = queue[r][0]
            need = int(input_tokens[j] + output_tokens[j])
            if kv_used[r] + need > tables.kv_capacity_tokens and running[r]:
                break
            queue[r].popleft()
            kv_used[r] += need
            running[r].append([j, int(output_tokens[j]) - 1, float(input_tokens[j]) + 1.0])
        if not running[r]:
            stepping[r] = False
            return
        dt = tables.decode_step_s(len(running[r]), sum(x[2] for x in running[r]) / len(running[r]))
        busy += dt
        stepping[r] = True
        heapq.heappush(events, (now + dt, 0, order, r))
        order += 1

    while events:
        now, kind, _, x = heapq.heappop(events)
        if kind == 1:
            r = min(range(replicas), key=lambda k: (len(running[k]) + len(queue[k]), k))
            queue[r].append(x)
            if not stepping[r]:
                stepping[r] = True
                heapq.heappush(events, (now, 2, order, r))
                order += 1
        elif kind == 2:
            start_step(x, now)
        else:
            keep = []
            for item in running[x]:
                item[1] -= 1
                item[2] += 1.0
                if item[1] <= 0:
                    finish[item[0]] = now
                    kv_used[x] -= int(input_tokens[item[0]] + output_tokens[item[0]])
                else:
                    keep.append(item)
            running[x] = keep
            start_step(x, now)
    return finish, busy


class _ContextTables:
    """Decode step time that depends on the batch and, non-linearly, on the mean context (so a wrong context sum
    shows), with a small batch and KV capacity so that admission limits bind."""

    def __init__(self, max_running, kv_capacity_tokens):
        self.max_running, self.kv_capacity_tokens = max_running, kv_capacity_tokens

    def decode_step_s(self, running, mean_ctx):
        return 1e-3 + 1e-5 * running + 3.7e-9 * running * mean_ctx + 1e-7 * mean_ctx ** 0.5


def test_decode_pass_equals_the_per_sequence_replay_bit_for_bit():
    rng = np.random.default_rng(16)
    for case in range(60):
        n, replicas = int(rng.integers(1, 300)), int(rng.integers(1, 5))
        ready = rng.uniform(0.0, 3.0, n)
        if case % 3 == 0:
            ready = np.round(ready, 1)  # simultaneous arrivals
        inp, out = rng.integers(1, 4000, n), rng.integers(1, 200, n)
        tables = _ContextTables(int(rng.integers(1, 48)), int(rng.integers(4000, 80000)))
        got, want = decode_pass(ready, inp, out, replicas, tables), _decode_pass_per_sequence(ready, inp, out,
                                                                                              replicas, tables)
        assert np.array_equal(got[0], want[0], equal_nan=True) and got[1] == want[1], case
