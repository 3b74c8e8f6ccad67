"""The fleet model's integer table (`FleetTable`: pools, demand, prices, availability, budget, replica bounds, all
scaled and rounded conservatively), its exact pruning of dominated pools, a fleet solution over it
(`FleetSolution`), and the reference integer semantics of one solution (`check`)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

from ..search.table import NS_PER_S, PRICE_UNITS_PER_USD
from ..units import HOURS_PER_MONTH
from .pools import CAP_UNITS_PER_RPS, ROLES, Pool, capacity_by_role, compatible, replica_cost, served
from .request import FleetRequest


# ---- the integer table -------------------------------------------------------------------------------------------
@dataclass
class FleetTable:
    pools: list[Pool]
    hours: int
    demand_1e6_rps: list[tuple[int, ...]]  # [class][hour] requests/s × 1e6 (CAP_UNITS_PER_RPS), rounded up
    ttft_ns: list[int | None]  # per class
    types: list[str]
    pool_type: list[int]  # index into types
    on_demand_1e4_usd_per_gpu_h: list[int]  # per type, USD per GPU-hour × 1e4 (PRICE_UNITS_PER_USD), rounded up
    reserved_1e4_usd_per_gpu_h: list[int | None]  # per type, as on demand; None: no reserved price
    available_gpus: list[int | None]  # per type; None: no limit
    budget_1e4_usd_per_h: int | None  # USD per hour × 1e4, rounded down
    budget_1e4_usd: int | None  # USD over the profile's hours × 1e4, rounded down
    max_replicas: list[int]
    incompatible: list[tuple[int, int]] = field(default_factory=list)
    pruned: int = 0  # pools dropped as dominated

    @property
    def classes(self) -> int:
        return len(self.demand_1e6_rps)

    def gpus(self, k: int) -> int:
        return self.pools[k].gpus

    def hour_cost_1e4_usd(self, reserved: Sequence[int], replicas: Sequence[int]) -> int:
        """USD × 1e4 of one hour with `replicas[k]` replicas of pool k, `reserved[k]` of them reserved."""
        return sum(replica_cost(self.gpus(k), self.reserved_1e4_usd_per_gpu_h[self.pool_type[k]],
                                self.on_demand_1e4_usd_per_gpu_h[self.pool_type[k]], reserved[k], replicas[k])
                   for k in range(len(self.pools)))

    def serves(self, replicas: Sequence[int], c: int, h: int) -> bool:
        """Do `replicas[k]` replicas of each pool serve class c's demand in hour h?"""
        cap = capacity_by_role(((p, p.capacity, replicas[k]) for k, p in enumerate(self.pools)), c)
        return served(cap) >= self.demand_1e6_rps[c][h]

    def within_availability(self, replicas: Sequence[int], t: int) -> bool:
        """Do `replicas[k]` replicas of each pool use at most the GPUs of type t available?"""
        a = self.available_gpus[t]
        return a is None or sum(self.gpus(k) * replicas[k] for k in range(len(self.pools)) if self.pool_type[k] == t) <= a

    def hour_groups(self) -> list[tuple[tuple[int, ...], list[int]]]:
        """Hours with equal demand vectors, in first-seen order: [(demand per class, hours)]."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for h in range(self.hours):
            groups.setdefault(tuple(d[h] for d in self.demand_1e6_rps), []).append(h)
        return list(groups.items())


def _price_units(usd: float) -> int:
    return int(math.ceil(usd * PRICE_UNITS_PER_USD - 1e-9))


def _dominates(a: Pool, b: Pool, od: dict[str, int], res: dict[str, int | None], avail: dict[str, int | None]) -> bool:
    """Can every replica of b be replaced by copies of a at no higher cost, in GPUs a's type can supply?
    Same type: m = ⌊g_b / g_a⌋ ≥ 1 copies with m·cap_a ≥ cap_b (no more GPUs). Another type, without an
    availability limit: m = ⌈cap_b / cap_a⌉ copies costing no more per hour on demand, nor when held all period
    (a reserved b replaced by a's cheaper of reserved and on demand)."""
    if a.cls != b.cls or a.role != b.role:
        return False
    if a.gpu == b.gpu:
        m = b.gpus // a.gpus
        return m >= 1 and m * a.capacity >= b.capacity
    if avail[a.gpu] is not None:
        return False
    m = -(-b.capacity // a.capacity)
    if m * a.gpus * od[a.gpu] > b.gpus * od[b.gpu]:
        return False
    rb = res[b.gpu]
    if rb is not None:
        ra = od[a.gpu] if res[a.gpu] is None else min(od[a.gpu], res[a.gpu])
        return m * a.gpus * ra <= b.gpus * rb
    return True


def _no_slower(a: Pool, b: Pool) -> bool:
    """a pairs with every pool of its KV precision that b pairs with, when a's TTFT-relevant time is no longer:
    a prefill pool's latency (its own latency + send fits TTFT by construction), a decode pool's KV receive."""
    if a.role == "prefill":
        return a.latency_ns <= b.latency_ns
    return a.role == "aggregated" or a.kv_transfer_ns <= b.kv_transfer_ns


def _knapsack(items: Sequence[tuple[int, int]], gpus: int) -> int:
    """Most capacity from any multiset of (gpus, capacity) items using at most `gpus` GPUs (unbounded knapsack)."""
    best = [0] * (gpus + 1)
    for x in range(1, gpus + 1):
        best[x] = max([best[x - 1]] + [best[x - g] + c for g, c in items if g <= x])
    return best[gpus]


def prune(pools: Sequence[Pool], od: dict[str, int], res: dict[str, int | None],
          avail: dict[str, int | None]) -> list[Pool]:
    """Drop dominated pools, exactly for the fleet model (some optimum never uses them):
    1. b when a multiset of other kept pools of its type, class, role (and KV precision, none slower: `_no_slower`)
       fits in b's GPUs and serves at least b's capacity — replacing b by it keeps every constraint and the cost;
    2. b when copies of a pool of a type without an availability limit serve as much for no more (`_dominates`);
    3. a whole KV precision of a class's disaggregated pools when every pool of it is dominated (2, or copies of
       one same-type pool) by a pool of another precision: swapping all of them at once keeps every pairing."""
    kept = list(pools)

    def same_kind(a: Pool, b: Pool) -> bool:
        return (a is not b and a.cls == b.cls and a.role == b.role and (a.role == "aggregated" or a.kv == b.kv)
                and _no_slower(a, b))

    for b in list(kept):
        items = [(a.gpus, a.capacity) for a in kept if a.gpu == b.gpu and a.gpus <= b.gpus and same_kind(a, b)]
        if items and _knapsack(items, b.gpus) >= b.capacity:
            kept.remove(b)
    for b in list(kept):
        if any(a.gpu != b.gpu and same_kind(a, b) and _dominates(a, b, od, res, avail) for a in kept):
            kept.remove(b)
    for c in sorted({p.cls for p in kept}):
        disagg = [p for p in kept if p.cls == c and p.role != "aggregated"]
        for kv in sorted({p.kv for p in disagg}):
            group = [p for p in disagg if p.kv == kv]
            others = [p for p in disagg if p.kv != kv and p in kept]
            if others and all(any(_dominates(a, b, od, res, avail) and _no_slower(a, b) for a in others)
                              for b in group):
                kept = [p for p in kept if p not in group]
    return kept


def fleet_table(req: FleetRequest, pools: Sequence[Pool], types: Sequence[str] | None = None,
                roles: Sequence[str] | None = None, prune_pools: bool = True) -> FleetTable:
    """Integer table over `pools` restricted to GPU `types` and `roles` (default: all of the request's)."""
    offers = [o for o in req.offers if types is None or o.gpu.id in types]
    type_ids = [o.gpu.id for o in offers]
    od = {o.gpu.id: _price_units(o.on_demand_usd_per_hour) for o in offers}
    res = {o.gpu.id: None if o.reserved_usd_per_hour is None else _price_units(o.reserved_usd_per_hour) for o in offers}
    avail = {o.gpu.id: o.available for o in offers}
    roles = tuple(roles or ROLES)
    sel = [p for p in pools if p.gpu in od and p.role in roles]
    # disaggregated pools only count where the class has both halves
    halves = {(p.cls, p.role) for p in sel}
    sel = [p for p in sel if p.role == "aggregated" or {(p.cls, "prefill"), (p.cls, "decode")} <= halves]
    demand = [tuple(int(math.ceil(r * CAP_UNITS_PER_RPS - 1e-9)) for r in c.rate_rps) for c in req.classes]
    before = len(sel)
    if prune_pools:
        sel = prune(sel, od, res, avail)

    def bound(p: Pool) -> int:
        m = -(-max(demand[p.cls]) // p.capacity)
        a = avail[p.gpu]
        return m if a is None else min(m, a // p.gpus)

    sel = [p for p in sel if bound(p) > 0]
    halves = {(p.cls, p.role) for p in sel}
    sel = [p for p in sel if p.role == "aggregated" or {(p.cls, "prefill"), (p.cls, "decode")} <= halves]
    ttft = [None if c.slo.ttft_s is None else int(math.floor(c.slo.ttft_s * NS_PER_S)) for c in req.classes]
    incompatible = [(i, j) for i, a in enumerate(sel) if a.role == "prefill"
                    for j, b in enumerate(sel) if b.role == "decode" and b.cls == a.cls
                    and not compatible(a, b, ttft[a.cls])]
    H = req.hours
    bh = None if req.budget_usd_per_hour is None else int(math.floor(req.budget_usd_per_hour * PRICE_UNITS_PER_USD + 1e-9))
    bt = (None if req.budget_usd_per_month is None
          else int(math.floor(req.budget_usd_per_month * H / HOURS_PER_MONTH * PRICE_UNITS_PER_USD + 1e-9)))
    return FleetTable(
        pools=sel, hours=H, demand_1e6_rps=demand, ttft_ns=ttft, types=type_ids,
        pool_type=[type_ids.index(p.gpu) for p in sel], on_demand_1e4_usd_per_gpu_h=[od[t] for t in type_ids],
        reserved_1e4_usd_per_gpu_h=[res[t] for t in type_ids], available_gpus=[avail[t] for t in type_ids],
        budget_1e4_usd_per_h=bh,
        budget_1e4_usd=bt, max_replicas=[bound(p) for p in sel], incompatible=incompatible, pruned=before - len(sel))


# ---- reference semantics -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    feasible: bool
    objective: int  # USD over the profile's hours × 1e4
    hourly_cost_1e4_usd: tuple[int, ...]
    violated: tuple[str, ...] = ()


def check(ft: FleetTable, reserved: Sequence[int], counts: Sequence[Sequence[int]]) -> Check:
    """Integer evaluation of one fleet: `reserved[k]` replicas held all period, `counts[k][h]` replicas in hour h."""
    K, H = len(ft.pools), ft.hours
    violated: list[str] = []
    for k in range(K):
        t = ft.pool_type[k]
        if reserved[k] and ft.reserved_1e4_usd_per_gpu_h[t] is None:
            violated.append(f"pool {k}: reserved without a reserved price")
        if reserved[k] < 0 or any(counts[k][h] < reserved[k] for h in range(H)):
            violated.append(f"pool {k}: fewer replicas than reserved")
    used = [any(counts[k][h] > 0 for h in range(H)) for k in range(K)]
    for i, j in ft.incompatible:
        if used[i] and used[j]:
            violated.append(f"pools {i} and {j} cannot pair")
    hourly = []
    for h in range(H):
        replicas = [counts[k][h] for k in range(K)]
        for c in range(ft.classes):
            if not ft.serves(replicas, c, h):
                violated.append(f"hour {h}: class {c} demand")
        for t in range(len(ft.types)):
            if not ft.within_availability(replicas, t):
                violated.append(f"hour {h}: {ft.types[t]} availability")
        cost = ft.hour_cost_1e4_usd(reserved, replicas)
        if ft.budget_1e4_usd_per_h is not None and cost > ft.budget_1e4_usd_per_h:
            violated.append(f"hour {h}: budget")
        hourly.append(cost)
    total = sum(hourly)
    if ft.budget_1e4_usd is not None and total > ft.budget_1e4_usd:
        violated.append("total budget")
    return Check(not violated, total, tuple(hourly), tuple(violated))


@dataclass(frozen=True)
class FleetSolution:
    reserved: tuple[int, ...]  # per pool
    counts: tuple[tuple[int, ...], ...]  # [pool][hour], reserved included
    objective: int  # USD over the profile's hours × 1e4 (PRICE_UNITS_PER_USD)
    status: str  # OPTIMAL | FEASIBLE
    bound: float  # best proven lower bound on the objective
    wall_s: float
    source: str = "cp-sat"  # cp-sat | warm start (when CP-SAT found nothing better in its time)

    @property
    def gap(self) -> float:
        return 0.0 if self.objective == 0 else max(0.0, (self.objective - self.bound) / self.objective)
