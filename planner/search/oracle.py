"""Exhaustive oracle: every row × every placement (composition of the layers into pp positive parts), evaluated
with `table.evaluate`. Exponential in pp; used by tests and benchmarks on small spaces to check CP-SAT."""
from __future__ import annotations

import itertools
from typing import Iterator

from .table import Evaluation, Limits, Table, evaluate


def compositions(n: int, k: int) -> Iterator[tuple[int, ...]]:
    """All ways to write n as an ordered sum of k positive integers (stars and bars)."""
    for cuts in itertools.combinations(range(1, n), k - 1):
        yield tuple(b - a for a, b in zip((0,) + cuts, cuts + (n,)))


def count_placements(n: int, k: int) -> int:
    from math import comb

    return comb(n - 1, k - 1) if 1 <= k <= n else 0


def exhaustive(t: Table, lim: Limits, max_evaluations: int = 5_000_000) -> tuple[int, tuple[int, ...], Evaluation] | None:
    """The cheapest feasible (row, placement); ties broken by row order, then placement order."""
    total = sum(count_placements(t.num_layers, int(p)) for p in t.pp)
    if total > max_evaluations:
        raise ValueError(f"oracle space has {total} placements (> {max_evaluations})")
    best = None
    for i in range(len(t)):
        for lay in compositions(t.num_layers, int(t.pp[i])):
            ev = evaluate(t, i, lay, lim)
            if ev.feasible and (best is None or ev.objective < best[2].objective):
                best = (i, lay, ev)
    return best


def exact_space_table(req, p):
    """(table of every row of the request's exact space, its limits), or None when it has no row: each shape
    (space.enumerate_shapes) at every micro-batch position of its range (bounds.range_ends). Small instances
    only: it tabulates every row."""
    import numpy as np

    from .bounds import build_space, demand_batch_cap, range_ends

    sp = build_space(req, p, demand_batch_cap(Limits.of(req, 1)))
    lim = Limits.of(req, sp.max_batch)
    ends = range_ends(sp, lim, p)
    s = np.repeat(np.arange(len(sp)), ends)
    pos = np.concatenate([np.arange(e) for e in ends]) if ends.sum() else np.zeros(0, np.int64)
    if len(s) == 0:
        return None
    return sp.table(s, pos.astype(np.int64), p), lim
