"""Exhaustive search over the same layouts as planner/train/search.py, one layout at a time through the scalar
`estimate`, with plain Python loops: the test oracle for the CP-SAT choice (small instances only)."""
from __future__ import annotations

import math

from ..perf.params import PerfParams
from .request import TrainRequest
from .result import TrainEstimate, estimate, verify
from .search import CP_FROM_SEQ_LEN, MAX_TP, MICRO_BATCHES, RECOMPUTE, ZERO_STAGES
from .step import Layout


def layouts(req: TrainRequest):
    m, B, L = req.model, req.global_batch_seqs, req.model.num_layers
    for g in req.gpus:
        for b in MICRO_BATCHES:
            for d in range(1, B + 1):
                if B % (b * d):
                    continue
                for t in (1, 2, 4, 8, 16, 32, 64):
                    if t > min(g.scale_up_domain, MAX_TP) or m.num_heads % t:
                        continue
                    for p in range(1, L + 1):
                        if L % p and p & (p - 1):
                            continue
                        for c in ((1, 2, 4, 8, 16) if req.seq_len >= CP_FROM_SEQ_LEN else (1,)):
                            if req.seq_len % c:
                                continue
                            n = t * p * d * c
                            if req.num_gpus is not None and n != req.num_gpus:
                                continue
                            if (req.num_gpus or req.max_gpus) and n > (req.num_gpus or req.max_gpus):
                                continue
                            for e in range(1, max(m.num_experts, 1) + 1):
                                if (m.num_experts and m.num_experts % e) or d % e or (not m.num_experts and e > 1):
                                    continue
                                for z in ZERO_STAGES:
                                    for rc in RECOMPUTE:
                                        yield Layout(g, t, p, d, e, c, z, rc, b)


def best(req: TrainRequest, perf: PerfParams) -> TrainEstimate | None:
    """The layout meeting every constraint with the least cost (or time, for a budget-only request), then the least
    of the other; None when none does."""
    found, key = None, (math.inf, math.inf)
    for lay in layouts(req):
        e = estimate(req, lay, perf)
        if verify(req, e):
            continue
        k = ((e.metrics["days"], e.metrics["usd_total"]) if req.objective == "time"
             else (e.metrics["usd_total"], e.metrics["days"]))
        if k < key:
            found, key = e, k
    return found
