"""Replicas behind a load balancer: hand each arrival to one replica and run them all to completion.

`round-robin` sends request i to replica i mod R (each replica then runs on its own arrivals only).
`least-loaded` first brings every replica up to the arrival time and picks the one holding the fewest requests
(queued + running); ties go round-robin so that equal replicas share the load. Bringing every replica up to every
arrival costs O(replicas) work per request, so least-loaded simulations of large fleets are slower than
round-robin ones (benchmarks/sim_speed/RESULTS.md)."""
from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from ..numbers import is_whole
from .replica import Book, ContinuousReplica, StaticReplica
from .requests import Requests
from .tables import StepTables

BALANCERS = ("least-loaded", "round-robin")
BATCHING = ("continuous", "static")


def run_fleet(requests: Requests, tables: StepTables, *, replicas: int, batching: str = "continuous",
              balancer: str = "least-loaded", seed: int = 0, static_timeout_s: float = 0.1
              ) -> tuple[Book, list, np.ndarray]:
    """Simulate; returns the per-request book, the replicas, and the mask of requests rejected at the door (a
    prompt + output longer than a replica's whole KV cache can never be served)."""
    if balancer not in BALANCERS:
        raise InputError(f"--balancer must be one of {', '.join(BALANCERS)}, got {balancer!r}")
    if batching not in BATCHING:
        raise InputError(f"--batching must be one of {', '.join(BATCHING)}, got {batching!r}")
    if not is_whole(replicas) or replicas < 1:
        raise InputError(f"replicas must be a positive integer, got {replicas!r}")
    book = Book(requests.arrival_s, requests.input_tokens, requests.output_tokens)
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence([seed, 1]).spawn(replicas)]
    if batching == "continuous":
        reps = [ContinuousReplica(tables, book, g) for g in rngs]
    else:
        reps = [StaticReplica(tables, book, g, static_timeout_s) for g in rngs]
    rejected = requests.input_tokens + requests.output_tokens > tables.kv_capacity_tokens
    arrivals = requests.arrival_s.tolist()
    target = book.replica
    turn = 0
    for i in np.flatnonzero(~rejected).tolist():
        a = arrivals[i]
        if balancer == "round-robin" or replicas == 1:
            j = turn % replicas
            reps[j].advance_until(a)
        else:
            for r in reps:
                r.advance_until(a)
            loads = [r.load() for r in reps]
            least = min(loads)
            j = next(k % replicas for k in range(turn, turn + replicas) if loads[k % replicas] == least)
        turn += 1
        target[i] = j
        reps[j].enqueue(i, a)
    for r in reps:
        r.advance_until(math.inf)
    return book, reps, rejected
