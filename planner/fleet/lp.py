"""Lower bound and warm start for the fleet model (planner/fleet/model.py).

CP-SAT alone proves small fleets optimal (tests check it against the exhaustive oracle) but, over 168 hours and
hundreds of candidate pools, it spends its time looking for a first good fleet. So it starts from one:

1. LP relaxation (GLOP) of the fleet model without the pairing constraints: a valid lower bound on the cost,
   and a fractional fleet.
2. LP-guided rounding: reserved r = ⌊r_LP⌋; in each hour n = r + ⌊o_LP⌋, then each class's shortfall is covered
   by its cheapest top-up (one pool, ⌈shortfall / capacity⌉ replicas, as many as availability allows; a prefill
   and a decode top-up for disaggregated serving), then surplus on-demand replicas are dropped, most expensive
   first. Pools of a pair that cannot hand over are not mixed: where the LP uses both pools of such pairs in a
   class, the LP is solved again without that class's conflicting prefill pools and again without its
   conflicting decode pools, and the rounding follows the cheaper of the two (dropping the pool the LP uses less
   can throw away a whole KV precision: a 33 % dearer guide on benchmarks/fleet_speed, where the LP mixed bf16-KV
   prefill pools with fp8-KV decode pools for one class and an all-fp8 pairing costs the same); pools of the
   remaining pairs, which the LP does not both use, are left out by use.
3. Each hour re-solved by CP-SAT with the reserved replicas fixed, over the pools the LP or the rounding uses in
   that hour, the LP's reserved pools and each class and role's cheapest pool per capacity (a small model), under a
   deterministic time budget.
4. Reserved replicas re-chosen for the hourly counts: level j of pool k is reserved when it is in use in more
   than H·ρ/π hours (ρ reserved, π on-demand price), as availability allows; 3 and 4 repeat while they pay.

The warm start is checked with `table.check` and then handed to CP-SAT on the full model as hint and cap."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Sequence

from ortools.linear_solver import pywraplp
from ortools.sat.python import cp_model

from ..search.cpsat import SolverSettings
from .model import _solver, build_model
from .pools import capacity_by_role, served
from .table import FleetSolution, FleetTable, check

EPS = 1e-6  # LP values within EPS of an integer count as that integer
PAIRING_ROUNDS = 8  # classes whose conflicting pools are re-decided by LP (two LP solves each)
IMPROVE_ROUNDS = 3
ROUNDS_MAX_HOURS = 48
CHEAPEST_PER_ROLE = 1


@dataclass(frozen=True)
class Relaxation:
    value: float  # LP optimum: a lower bound on the fleet's cost (price units)
    reserved: tuple[float, ...]  # per pool
    on_demand: tuple[tuple[float, ...], ...]  # [pool][hour group]


def relax(ft: FleetTable, allowed: Sequence[bool] | None = None) -> Relaxation | None:
    """The LP relaxation over the distinct hours (pairing and the per-hour replica bounds r + o ≤ M dropped, so it
    bounds the model from below). With `allowed`, the other pools are held at 0 (a restriction, no longer a bound:
    the warm start's guide once the pools that cannot hand over are left out).
    None when even the relaxation is infeasible: then so is the fleet model."""
    s = pywraplp.Solver.CreateSolver("GLOP")
    inf = s.infinity()
    K, groups = len(ft.pools), ft.hour_groups()
    G, H = len(groups), ft.hours
    res = [ft.reserved_1e4_usd_per_gpu_h[ft.pool_type[k]] for k in range(K)]
    top = [ft.max_replicas[k] if allowed is None or allowed[k] else 0 for k in range(K)]
    r = [s.NumVar(0, top[k] if res[k] is not None else 0, f"r{k}") for k in range(K)]
    o = [[s.NumVar(0, top[k], f"o{k}_{g}") for g in range(G)] for k in range(K)]
    obj = s.Objective()
    total = None if ft.budget_1e4_usd is None else s.Constraint(-inf, ft.budget_1e4_usd)

    def cost(row, k: int, scale: int) -> None:
        """Add the reserved price of pool k, × scale hours, to a row."""
        if res[k] is not None:
            row.SetCoefficient(r[k], row.GetCoefficient(r[k]) + scale * ft.gpus(k) * res[k])

    for k in range(K):
        cost(obj, k, H)
        if total is not None:
            cost(total, k, H)
    by_role: dict[tuple[int, str], list[int]] = {}
    for k, p in enumerate(ft.pools):
        by_role.setdefault((p.cls, p.role), []).append(k)
    for g, (dem, hours) in enumerate(groups):
        for k in range(K):
            od = ft.gpus(k) * ft.on_demand_1e4_usd_per_gpu_h[ft.pool_type[k]]
            obj.SetCoefficient(o[k][g], len(hours) * od)
            if total is not None:
                total.SetCoefficient(o[k][g], len(hours) * od)
        for c in range(ft.classes):
            rows = [(s.Constraint(dem[c], inf), "aggregated")]
            if by_role.get((c, "prefill")):
                y = s.NumVar(0, dem[c], f"y{c}_{g}")
                rows[0][0].SetCoefficient(y, 1)
                for role in ("prefill", "decode"):
                    row = s.Constraint(0, inf)
                    row.SetCoefficient(y, -1)
                    rows.append((row, role))
            for row, role in rows:
                for k in by_role.get((c, role), []):
                    row.SetCoefficient(r[k], ft.pools[k].capacity)
                    row.SetCoefficient(o[k][g], ft.pools[k].capacity)
        for t, a in enumerate(ft.available_gpus):
            if a is None:
                continue
            row = s.Constraint(-inf, a)
            for k in range(K):
                if ft.pool_type[k] == t:
                    row.SetCoefficient(r[k], ft.gpus(k))
                    row.SetCoefficient(o[k][g], ft.gpus(k))
        if ft.budget_1e4_usd_per_h is not None:
            row = s.Constraint(-inf, ft.budget_1e4_usd_per_h)
            for k in range(K):
                cost(row, k, 1)
                row.SetCoefficient(o[k][g], ft.gpus(k) * ft.on_demand_1e4_usd_per_gpu_h[ft.pool_type[k]])
    if s.Solve() != pywraplp.Solver.OPTIMAL:
        return None
    return Relaxation(s.Objective().Value(), tuple(v.solution_value() for v in r),
                      tuple(tuple(v.solution_value() for v in row) for row in o))


# ---- rounding ------------------------------------------------------------------------------------------------------
def _use(lp: Relaxation, k: int) -> float:
    return lp.reserved[k] + sum(lp.on_demand[k])


def pairable_guide(ft: FleetTable, lp: Relaxation) -> tuple[list[bool], Relaxation]:
    """(pools the warm start may use, the LP over them that guides it): no two of those pools form a pair that
    cannot hand over (module docstring, step 2)."""
    allowed, guide = [True] * len(ft.pools), lp
    for _ in range(PAIRING_ROUNDS):
        both = [(i, j) for i, j in ft.incompatible
                if allowed[i] and allowed[j] and _use(guide, i) > EPS and _use(guide, j) > EPS]
        if not both:
            break
        cls = ft.pools[both[0][0]].cls
        best = None
        for side in ("prefill", "decode"):
            trial = list(allowed)
            for pair in both:
                for k in pair:
                    if ft.pools[k].cls == cls and ft.pools[k].role == side:
                        trial[k] = False
            r = relax(ft, trial)
            if r is not None and (best is None or r.value < best[1].value - EPS):
                best = (trial, r)
        if best is None:
            break
        allowed, guide = best
    rest = _pairable(ft, guide)
    return [a and b for a, b in zip(allowed, rest)], guide


def _pairable(ft: FleetTable, lp: Relaxation) -> list[bool]:
    """Leave out, from each pair of pools that cannot hand over, the one the LP uses less (ties: the later)."""
    use = [lp.reserved[k] + sum(lp.on_demand[k]) for k in range(len(ft.pools))]
    allowed = [True] * len(ft.pools)
    for i, j in ft.incompatible:
        if allowed[i] and allowed[j]:
            allowed[j if (use[i], -i) >= (use[j], -j) else i] = False
    return allowed


class _Hour:
    """Replica counts of one hour group under construction, with the GPUs each type has left."""

    def __init__(self, ft: FleetTable, n: list[int], demand: Sequence[int], reserved: Sequence[int],
                 allowed: Sequence[bool]):
        self.ft, self.n, self.demand, self.reserved, self.allowed = ft, n, demand, reserved, allowed
        self.used = [0] * len(ft.types)
        for k, x in enumerate(n):
            self.used[ft.pool_type[k]] += ft.gpus(k) * x

    def room(self, k: int) -> int:
        """Replicas of pool k that can still be added."""
        ft = self.ft
        a = ft.available_gpus[ft.pool_type[k]]
        left = ft.max_replicas[k] - self.n[k]
        return left if a is None else min(left, (a - self.used[ft.pool_type[k]]) // ft.gpus(k))

    def add(self, k: int, x: int) -> None:
        self.n[k] += x
        self.used[self.ft.pool_type[k]] += x * self.ft.gpus(k)

    def capacity(self, c: int) -> dict[str, int]:
        return capacity_by_role(((p, p.capacity, self.n[k]) for k, p in enumerate(self.ft.pools)), c)

    def shortfall(self, c: int) -> int:
        return self.demand[c] - served(self.capacity(c))

    def price(self, k: int) -> int:
        return self.ft.gpus(k) * self.ft.on_demand_1e4_usd_per_gpu_h[self.ft.pool_type[k]]

    def _best(self, c: int, role: str, need: int) -> tuple[int, int, int] | None:
        """(cost, pool, replicas) of the cheapest full top-up of `need`, else the best partial one by cost per
        capacity (cost is then scaled to compare with full ones, which it never beats)."""
        full, part = None, None
        for k, p in enumerate(self.ft.pools):
            if p.cls != c or p.role != role or not self.allowed[k]:
                continue
            x, room = -(-need // p.capacity), self.room(k)
            if room <= 0:
                continue
            if x <= room:
                cand = (x * self.price(k), k, x)
                full = cand if full is None or cand < full else full
            else:
                key = (self.price(k) * need / (room * p.capacity), k, room)
                part = key if part is None or key < part else part
        if full is not None:
            return full
        return None if part is None else (math.inf, part[1], part[2])

    def cover(self, c: int) -> bool:
        for _ in range(64):
            need = self.shortfall(c)
            if need <= 0:
                return True
            options = []
            agg = self._best(c, "aggregated", need)
            if agg is not None:
                options.append((agg[0], [agg[1:]]))
            cap = self.capacity(c)
            base = min(cap["prefill"], cap["decode"])
            pre = self._best(c, "prefill", base + need - cap["prefill"]) if base + need > cap["prefill"] else (0, -1, 0)
            if pre is not None:
                if pre[1] >= 0:  # the decode top-up sees the GPUs the prefill top-up takes
                    self.add(pre[1], pre[2])
                dec = self._best(c, "decode", base + need - cap["decode"]) if base + need > cap["decode"] else (0, -1, 0)
                if pre[1] >= 0:
                    self.add(pre[1], -pre[2])
                if dec is not None and (pre[1] >= 0 or dec[1] >= 0):
                    options.append((pre[0] + dec[0], [pre[1:], dec[1:]]))
            if not options:
                return False
            _, adds = min(options, key=lambda o: o[0])
            for k, x in adds:
                if k >= 0:
                    self.add(k, x)
        return self.shortfall(c) <= 0

    def trim(self) -> None:
        """Drop on-demand replicas that no demand needs, the most expensive replicas first."""
        order = sorted((k for k in range(len(self.n)) if self.n[k] > self.reserved[k]), key=lambda k: (-self.price(k), k))
        for k in order:
            c = self.ft.pools[k].cls
            while self.n[k] > self.reserved[k]:
                self.add(k, -1)
                if self.shortfall(c) > 0:
                    self.add(k, 1)
                    break


def _cost(ft: FleetTable, reserved: Sequence[int], counts: Sequence[Sequence[int]]) -> int:
    return check(ft, reserved, counts).objective


def reserve_levels(ft: FleetTable, counts: Sequence[Sequence[int]]) -> tuple[list[int], list[list[int]]]:
    """Reserved replicas for given hourly counts: pool k reserves level j when H·ρ < π · #{h: n_kh ≥ j}; hours
    below the reserved level then hold idle reserved replicas, as far as availability allows."""
    K, H = len(ft.pools), ft.hours
    counts = [list(row) for row in counts]
    used = [[0] * H for _ in ft.types]
    for k in range(K):
        for h in range(H):
            used[ft.pool_type[k]][h] += ft.gpus(k) * counts[k][h]
    reserved = [0] * K
    for k in range(K):
        t = ft.pool_type[k]
        rho, pi = ft.reserved_1e4_usd_per_gpu_h[t], ft.on_demand_1e4_usd_per_gpu_h[t]
        if rho is None:
            continue
        j = 0
        while H * rho < pi * sum(1 for x in counts[k] if x >= j + 1):
            j += 1
        a = ft.available_gpus[t]
        while j > 0 and a is not None and any(used[t][h] + ft.gpus(k) * max(0, j - counts[k][h]) > a for h in range(H)):
            j -= 1
        for h in range(H):
            used[t][h] += ft.gpus(k) * max(0, j - counts[k][h])
            counts[k][h] = max(counts[k][h], j)
        reserved[k] = j
    return reserved, counts


def round_relaxation(ft: FleetTable, lp: Relaxation,
                     guided: tuple[list[bool], Relaxation] | None = None) -> FleetSolution | None:
    """LP-guided rounding (module docstring, step 2 and 4), following `guided` = `pairable_guide(ft, lp)` (computed
    when not given); `lp` gives the bound. None when it cannot cover some hour."""
    start = time.perf_counter()
    K, groups = len(ft.pools), ft.hour_groups()
    bound = lp.value
    allowed, lp = pairable_guide(ft, lp) if guided is None else guided
    reserved = [int(math.floor(lp.reserved[k] + EPS)) if allowed[k] else 0 for k in range(K)]
    counts = [[0] * ft.hours for _ in range(K)]
    for g, (dem, hours) in enumerate(groups):
        n = [min(ft.max_replicas[k], reserved[k] + (int(math.floor(lp.on_demand[k][g] + EPS)) if allowed[k] else 0))
             for k in range(K)]
        hour = _Hour(ft, n, dem, reserved, allowed)
        if not all(hour.cover(c) for c in range(ft.classes)):
            return None
        hour.trim()
        for h in hours:
            for k in range(K):
                counts[k][h] = hour.n[k]
    return _settle(ft, counts, time.perf_counter() - start, bound)


def _settle(ft: FleetTable, counts, wall_s: float, bound: float) -> FleetSolution | None:
    """Re-choose the reserved replicas for `counts`; keep whichever of before/after is cheaper and feasible."""
    zero = [0] * len(ft.pools)
    options = []
    for reserved, cts in ((zero, counts), reserve_levels(ft, counts)):
        c = check(ft, reserved, cts)
        if c.feasible:
            options.append((c.objective, tuple(reserved), tuple(tuple(x) for x in cts)))
    if not options:
        return None
    value, reserved, cts = min(options)
    return FleetSolution(reserved, cts, value, "FEASIBLE", bound, wall_s, "warm start")


def improve_hours(ft: FleetTable, start_sol: FleetSolution, guided: tuple[list[bool], Relaxation],
                  settings: SolverSettings, deterministic_s: float) -> FleetSolution:
    """Re-solve each hour group by CP-SAT with the reserved replicas fixed, over the pools the guiding LP or the
    current fleet uses (module docstring, step 3), then re-choose the reserved replicas."""
    begin = time.perf_counter()
    K, groups = len(ft.pools), ft.hour_groups()
    allowed, lp = guided
    support = [any(start_sol.counts[k]) or (allowed[k] and lp.reserved[k] + sum(lp.on_demand[k]) > EPS)
               for k in range(K)]
    counts = [list(row) for row in start_sol.counts]
    per_group = max(0.01, deterministic_s / max(1, len(groups)))
    # the cheapest pools per unit of capacity of each class and role (on demand), always worth a look
    cheapest: set[int] = set()
    for key in {(p.cls, p.role) for p in ft.pools}:
        ks = [k for k, p in enumerate(ft.pools) if (p.cls, p.role) == key and allowed[k]]
        ks.sort(key=lambda k: (ft.gpus(k) * ft.on_demand_1e4_usd_per_gpu_h[ft.pool_type[k]] / ft.pools[k].capacity, k))
        cheapest.update(ks[:CHEAPEST_PER_ROLE])
    for g, group in enumerate(groups):
        h0 = group[1][0]
        # this hour's model: the pools the LP uses in it or at all as reserved, those the fleet has in it, and the
        # cheapest per capacity
        here = [(support[k] or k in cheapest)
                and (counts[k][h0] > 0 or lp.on_demand[k][g] > EPS or lp.reserved[k] > EPS or k in cheapest)
                for k in range(K)]
        mm = build_model(ft, [group], reserved=start_sol.reserved, allowed=here)
        for k in range(K):
            if here[k]:
                mm.model.AddHint(mm.o[k][0], counts[k][h0] - start_sol.reserved[k])
        solver = _solver(settings, per_group)
        status = solver.Solve(mm.model)
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            for k in range(K):
                v = start_sol.reserved[k] + (int(solver.Value(mm.o[k][0])) if here[k] else 0)
                for h in group[1]:
                    counts[k][h] = v
    better = _settle(ft, counts, start_sol.wall_s + time.perf_counter() - begin, start_sol.bound)
    return better if better is not None and better.objective < start_sol.objective else start_sol


def warm_start(ft: FleetTable, settings: SolverSettings, deterministic_s: float) -> tuple[float | None, FleetSolution | None]:
    """(LP lower bound or None if the relaxation is infeasible, a feasible fleet or None)."""
    lp = relax(ft)
    if lp is None:
        return None, None
    guided = pairable_guide(ft, lp)
    sol = round_relaxation(ft, lp, guided)
    if sol is None or deterministic_s <= 0:
        return lp.value, sol
    # hours given the reserved replicas, then reserved replicas given the hours, while that pays: up to 3 rounds,
    # one beyond 48 distinct hours (a round re-solves every hour, ~10-30 ms each)
    rounds = IMPROVE_ROUNDS if len(ft.hour_groups()) <= ROUNDS_MAX_HOURS else 1
    for _ in range(rounds):
        better = improve_hours(ft, sol, guided, settings, deterministic_s / rounds)
        if better.objective >= sol.objective:
            break
        sol = better
    return lp.value, sol
