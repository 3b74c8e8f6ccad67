"""planner/sim/fleet.py: which replica each request goes to under round-robin and least-loaded balancing (on the
hand-built constant-time step tables of test_replica), requests too long for any KV cache, and bad options."""
from __future__ import annotations

import numpy as np
import pytest

from planner.errors import InputError
from planner.sim.fleet import run_fleet
from planner.sim.requests import Requests

from .test_replica import tables


def requests(arrivals, inputs, outputs) -> Requests:
    return Requests(np.asarray(arrivals, float), np.asarray(inputs, np.int64), np.asarray(outputs, np.int64))


def test_round_robin_sends_request_i_to_replica_i_mod_r():
    book, reps, rejected = run_fleet(requests([0, 0.1, 0.2, 0.3, 0.4], [10] * 5, [2] * 5), tables(), replicas=2,
                                     balancer="round-robin")
    assert book.replica.tolist() == [0, 1, 0, 1, 0] and not rejected.any() and len(reps) == 2
    assert np.isfinite(book.finish_s).all()


def test_least_loaded_skips_the_replica_still_busy():
    # request 0 decodes 100 tokens on replica 0 (0.1 s prefill + 99 steps of 0.01 s: busy until ~1.09 s);
    # request 1 (2 tokens) is done on replica 1 by 0.11 s; at 1.0 s replica 1 holds nothing, replica 0 one request
    reqs = requests([0.0, 0.0, 1.0], [10, 10, 10], [100, 2, 2])
    book, _, _ = run_fleet(reqs, tables(), replicas=2, balancer="least-loaded")
    assert book.replica.tolist() == [0, 1, 1]
    book, _, _ = run_fleet(reqs, tables(), replicas=2, balancer="round-robin")
    assert book.replica.tolist() == [0, 1, 0]  # round-robin does not look


def test_a_request_longer_than_the_kv_cache_is_rejected_at_the_door():
    book, _, rejected = run_fleet(requests([0, 0], [10, 900], [2, 200]), tables(kv=1000), replicas=1)
    assert rejected.tolist() == [False, True]  # 900 + 200 tokens > 1000
    assert book.replica.tolist() == [0, -1] and np.isnan(book.finish_s[1])


@pytest.mark.parametrize("kwargs, message", [
    ({"balancer": "random"}, "--balancer must be one of least-loaded, round-robin"),
    ({"batching": "dynamic"}, "--batching must be one of continuous, static"),
    ({"replicas": 0}, "replicas must be a positive integer"),
])
def test_bad_options_are_one_line(kwargs, message):
    with pytest.raises(InputError, match=message):
        run_fleet(requests([0], [10], [2]), tables(), **{"replicas": 1, **kwargs})
