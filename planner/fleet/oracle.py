"""The exhaustive oracle of the fleet model: the cheapest fleet by enumeration over the same integer table (for
tests on small tables)."""
from __future__ import annotations

import itertools
import math
from typing import Iterator, Sequence

from .table import FleetTable


def _box(bounds: Sequence[int]) -> Iterator[tuple[int, ...]]:
    return itertools.product(*(range(b + 1) for b in bounds))


def exhaustive(ft: FleetTable, max_states: int = 2_000_000) -> tuple[int, tuple[int, ...], tuple[tuple[int, ...], ...]] | None:
    """The cheapest fleet by enumeration: every set of pairable disaggregated pools, every reserved vector, and in
    each hour every replica vector (exponential; for tests on small tables). Hours are independent once the
    reserved replicas and the usable pools are fixed, so each is minimized on its own."""
    K, H = len(ft.pools), ft.hours
    states = math.prod(b + 1 for b in ft.max_replicas) ** 2 * H
    if states > max_states:
        raise ValueError(f"oracle space has ~{states} states (> {max_states})")
    disagg = [k for k, p in enumerate(ft.pools) if p.role != "aggregated"]
    bad = set(ft.incompatible)
    best = None
    for mask in range(1 << len(disagg)):
        allowed = {k for k in range(K) if ft.pools[k].role == "aggregated"}
        allowed |= {k for b, k in enumerate(disagg) if mask >> b & 1}
        if any((i, j) in bad for i in allowed for j in allowed):
            continue
        top = [ft.max_replicas[k] if k in allowed else 0 for k in range(K)]
        res_top = [top[k] if ft.reserved_1e4_usd_per_gpu_h[ft.pool_type[k]] is not None else 0 for k in range(K)]
        vectors = list(_box(top))
        for reserved in _box(res_top):
            counts, total = [], 0
            for h in range(H):
                hour_best = None
                for v in vectors:
                    if any(v[k] < reserved[k] for k in range(K)):
                        continue
                    cost = ft.hour_cost_1e4_usd(reserved, v)
                    if hour_best is not None and cost >= hour_best[0]:
                        continue
                    if _hour_ok(ft, v, h) and (ft.budget_1e4_usd_per_h is None or cost <= ft.budget_1e4_usd_per_h):
                        hour_best = (cost, v)
                if hour_best is None:
                    break
                total += hour_best[0]
                counts.append(hour_best[1])
            else:
                if ft.budget_1e4_usd is not None and total > ft.budget_1e4_usd:
                    continue
                if best is None or total < best[0]:
                    best = (total, tuple(reserved), tuple(tuple(counts[h][k] for h in range(H)) for k in range(K)))
    return best


def _hour_ok(ft: FleetTable, v: Sequence[int], h: int) -> bool:
    return (all(ft.serves(v, c, h) for c in range(ft.classes))
            and all(ft.within_availability(v, t) for t in range(len(ft.types))))
