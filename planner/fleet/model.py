"""The CP-SAT fleet model (see `planner.fleet` for the formulation): `build_model` over the integer table, and
`solve`, optionally from a warm start."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

from ortools.sat.python import cp_model

from ..search.cpsat import SolverSettings
from .table import FleetSolution, FleetTable

# the wall-clock backstop of a solve: WALL_BACKSTOP_FACTOR × its deterministic budget + WALL_BACKSTOP_S
WALL_BACKSTOP_FACTOR = 20
WALL_BACKSTOP_S = 10.0


@dataclass
class _Model:
    model: cp_model.CpModel
    groups: list
    r: list  # reserved replicas per pool (variables, or fixed ints)
    o: list  # [pool][group] on-demand replicas
    objective: object


def build_model(ft: FleetTable, groups=None, reserved: Sequence[int] | None = None,
                allowed: Sequence[bool] | None = None) -> _Model:
    """The fleet model over hour `groups` (default: every distinct hour). With `reserved` fixed and a pairable
    `allowed` set of pools (the others keep their reserved replicas only), it is one hour's on-demand subproblem
    (used by the warm start)."""
    m = cp_model.CpModel()
    K = len(ft.pools)
    whole = groups is None
    groups = ft.hour_groups() if whole else groups
    G = len(groups)
    ok = [True] * K if allowed is None else list(allowed)
    # ---- variables: n_kh = r_k + o_kh, so that every cost coefficient is positive
    if reserved is None:
        reservable = [ok[k] and ft.reserved_1e4_usd_per_gpu_h[ft.pool_type[k]] is not None for k in range(K)]
        r = [m.NewIntVar(0, ft.max_replicas[k] if reservable[k] else 0, f"r{k}") for k in range(K)]
    else:
        r = [int(x) for x in reserved]
    o = [[m.NewIntVar(0, ft.max_replicas[k], f"o{k}_{g}") if ok[k] else 0 for g in range(G)] for k in range(K)]
    split = sorted({p.cls for p in ft.pools if p.role != "aggregated"})
    y = {(c, g): m.NewIntVar(0, groups[g][0][c], f"y{c}_{g}") for c in split for g in range(G)}
    # ---- constraints
    for k in range(K):
        for g in range(G):
            if ok[k]:
                m.Add(r[k] + o[k][g] <= ft.max_replicas[k])
    n = [[r[k] + o[k][g] for g in range(G)] for k in range(K)]
    _demand(m, ft, groups, n, y)
    _availability(m, ft, groups, n)
    if allowed is None:
        _pairing(m, ft, groups, r, o)
    cost = _hourly_cost(m, ft, groups, r, o)
    objective = sum(len(hours) * cost[g] for g, (_, hours) in enumerate(groups))
    if ft.budget_1e4_usd is not None and whole:
        m.Add(objective <= ft.budget_1e4_usd)
    # ---- objective
    m.Minimize(objective)
    return _Model(m, groups, r, o, objective)


def _demand(m, ft: FleetTable, groups, n, y) -> None:
    """Σ_agg cap·n + y ≥ D,  Σ_prefill cap·n ≥ y,  Σ_decode cap·n ≥ y  (per class and hour)."""
    by_role: dict[tuple[int, str], list[int]] = {}
    for k, p in enumerate(ft.pools):
        by_role.setdefault((p.cls, p.role), []).append(k)
    def cap(c: int, role: str, g: int):
        ks = by_role.get((c, role), [])
        return cp_model.LinearExpr.WeightedSum([n[k][g] for k in ks], [ft.pools[k].capacity for k in ks])

    for g, (dem, _) in enumerate(groups):
        for c in range(ft.classes):
            if (c, g) in y:
                m.Add(cap(c, "aggregated", g) + y[c, g] >= dem[c])
                m.Add(cap(c, "prefill", g) >= y[c, g])
                m.Add(cap(c, "decode", g) >= y[c, g])
            else:
                m.Add(cap(c, "aggregated", g) >= dem[c])


def _availability(m, ft: FleetTable, groups, n) -> None:
    """Σ_{pools of type τ} g_k·n_kh ≤ A_τ, where the pools could exceed it at all."""
    for t, a in enumerate(ft.available_gpus):
        ks = [k for k in range(len(ft.pools)) if ft.pool_type[k] == t]
        if a is None or not ks or sum(ft.gpus(k) * ft.max_replicas[k] for k in ks) <= a:
            continue
        for g in range(len(groups)):
            expr = sum(ft.gpus(k) * n[k][g] for k in ks)
            if not isinstance(expr, int):
                m.Add(expr <= a)


def _pairing(m, ft: FleetTable, groups, r, o) -> None:
    """u_k ≥ [pool k used]; u_p + u_d ≤ 1 for each pair that cannot hand over. Only pools in such a pair need u."""
    involved = sorted({k for pair in ft.incompatible for k in pair})
    u = {k: m.NewBoolVar(f"u{k}") for k in involved}
    for k in involved:
        m.Add(r[k] <= ft.max_replicas[k] * u[k])
        for g in range(len(groups)):
            m.Add(o[k][g] <= ft.max_replicas[k] * u[k])
    for i, j in ft.incompatible:
        m.AddBoolOr([u[i].Not(), u[j].Not()])


def _hourly_cost(m, ft: FleetTable, groups, r, o) -> list:
    """Cost of one hour of each group, Σ_k g_k (ρ r_k + π o_kh), bounded by the hourly budget."""
    K = len(ft.pools)
    reserved = sum(ft.gpus(k) * (ft.reserved_1e4_usd_per_gpu_h[ft.pool_type[k]] or 0) * r[k] for k in range(K))
    out = []
    for g in range(len(groups)):
        cost = reserved + sum(ft.gpus(k) * ft.on_demand_1e4_usd_per_gpu_h[ft.pool_type[k]] * o[k][g] for k in range(K))
        if ft.budget_1e4_usd_per_h is not None:
            m.Add(cost <= ft.budget_1e4_usd_per_h)
        out.append(cost)
    return out


def _solver(settings: SolverSettings, deterministic_s: float) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    # The budget is CP-SAT's deterministic time (about a second of work per unit on a modern core), so a search
    # stopped by its budget stops at the same point, with the same fleet, on every machine; the wall-clock limit
    # is only a backstop for a stuck solve. It must not bind on a loaded machine (2 cores shared by several test
    # runs gave a solve a fifth of a core, and 3x + 1 s made the comparison fleets differ between runs).
    solver.parameters.max_deterministic_time = deterministic_s
    solver.parameters.max_time_in_seconds = WALL_BACKSTOP_FACTOR * deterministic_s + WALL_BACKSTOP_S
    solver.parameters.num_workers = settings.workers
    solver.parameters.random_seed = settings.seed
    # The full LP relaxation (level 2) is what proves these covering models: at the default level one worker
    # keeps a weak bound and wanders until the time limit.
    solver.parameters.linearization_level = 2
    return solver


def _hint(mm: _Model, reserved: Sequence[int], counts: Sequence[Sequence[int]]) -> None:
    for k, rk in enumerate(mm.r):
        if not isinstance(rk, int):
            mm.model.AddHint(rk, reserved[k])
        for g, (_, hours) in enumerate(mm.groups):
            mm.model.AddHint(mm.o[k][g], counts[k][hours[0]] - reserved[k])


def _settings(time_limit_s: float, workers: int) -> SolverSettings:
    return SolverSettings(time_limit_s=time_limit_s, workers=workers, seed=0)


def solve(ft: FleetTable, settings: SolverSettings = SolverSettings(time_limit_s=10.0),
          warm: FleetSolution | None = None, lower_bound: float = 0.0) -> FleetSolution | None:
    """Minimize the fleet's cost with CP-SAT, from a warm start if given (it also caps the objective).
    Returns the better of the two, or None when CP-SAT proves the model infeasible or finds nothing in time."""
    start = time.perf_counter()
    mm = build_model(ft)
    if warm is not None:
        _hint(mm, warm.reserved, warm.counts)
        mm.model.Add(mm.objective <= warm.objective)
    solver = _solver(settings, settings.time_limit_s)
    status = solver.Solve(mm.model)
    wall = time.perf_counter() - start
    bound = max(lower_bound, float(solver.BestObjectiveBound()) if status != cp_model.UNKNOWN else 0.0)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        # (with a warm start CP-SAT always has its hint; keep the warm start whatever it reports)
        return None if warm is None else FleetSolution(warm.reserved, warm.counts, warm.objective, "FEASIBLE",
                                                       bound, wall, warm.source)
    value = int(round(solver.ObjectiveValue()))
    group_of = {h: g for g, (_, hours) in enumerate(mm.groups) for h in hours}
    reserved = tuple(int(solver.Value(v)) for v in mm.r)
    counts = tuple(tuple(reserved[k] + int(solver.Value(mm.o[k][group_of[h]])) for h in range(ft.hours))
                   for k in range(len(ft.pools)))
    optimal = status == cp_model.OPTIMAL
    return FleetSolution(reserved, counts, value, "OPTIMAL" if optimal else "FEASIBLE",
                         float(value) if optimal else min(float(value), bound), wall,
                         "cp-sat" if warm is None or value < warm.objective else warm.source)
