"""The deployment search, end to end: enumerate rows, tabulate them (numpy), bound, find a first plan, prove the
optimum with CP-SAT, and re-verify the chosen plan in floating point with `perf.estimate`."""
from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import InfeasibleError, SolverLimitError
from ..numbers import covers, within
from ..perf.cost import usd_per_million_at
from ..perf.estimate import Config, Estimate, estimate
from ..perf.params import PerfParams
from .cpsat import Solution, SolverSettings, solve
from .placement import greedy_placement
from .queueing import QueueTarget
from .bounds import Space, build_space, demand_batch_cap, queue_bound, search_space
from .space import Request, Row, count_shapes, enumerate_rows
from .table import Bounds, Limits, Table, build_table, evaluate, lower_bounds

HEURISTIC_ROWS = 48  # rows (cheapest lower bounds first) given a greedy placement to seed the upper bound
# --time-limit-s bounds all solver calls of one command together (the best plan first, then the other GPU types'
# alternatives or the frontier's points share what is left); no call gets less than this.
MIN_SOLVER_SLICE_S = 0.01


@dataclass(frozen=True)
class SearchStats:
    rows: int  # structural choices (GPU, precision, TP, DP, PP, EP, micro-batch)
    placements: int  # rows × layer placements: the full discrete space
    rows_after_bounds: int  # rows CP-SAT receives after valid lower-bound pruning
    table_s: float
    wall_s: float
    solves: int = 0  # CP-SAT Solve calls of the search: every stage, the best plan and every alternative
    cp_sat_s: float = 0.0  # time in those calls (model building included), all together
    bound_s: float = 0.0  # the lazy search of the exact space (search/bounds.py): its tables and bounds
    examined: int = 0  # rows it tabulated
    space: str = "exact"  # exact (every integer) or pinned (the request's lists)


@dataclass(frozen=True)
class Choice:
    row: Row
    layers: tuple[int, ...]
    replicas: int
    objective: int
    estimate: Estimate
    solution: Solution | None

    @property
    def usd_per_hour(self) -> float:
        return self.replicas * self.estimate.usd_per_hour

    def usd_per_million_output_tokens(self, demand_tokens_per_s: float | None) -> float:
        """What a served token costs: the fleet's $/hour over the demand it serves (all it can serve when no
        demand is given; then this is one replica's figure at full load)."""
        served = demand_tokens_per_s or self.estimate.output_tokens_per_s * self.replicas
        return usd_per_million_at(self.usd_per_hour, served)


@dataclass(frozen=True)
class SearchResult:
    request: Request
    best: Choice
    alternatives: tuple[Choice, ...]
    stats: SearchStats
    table: Table = field(repr=False)
    bounds: Bounds = field(repr=False)
    index: int = 0
    limits: Limits | None = None


def _upper_bound(t: Table, idx: np.ndarray, lim: Limits) -> tuple[int, tuple[int, ...], int] | None:
    best = None
    for i in idx[:HEURISTIC_ROWS]:
        lay = greedy_placement(t, int(i))
        if lay is None:
            continue
        ev = evaluate(t, int(i), lay, lim)
        if ev.feasible and (best is None or ev.objective < best[2]):
            best = (int(i), lay, ev.objective)
    return best


def _search_rows(t: Table, b: Bounds, lim: Limits, subset: np.ndarray, settings: SolverSettings) -> tuple[Solution | None, int]:
    """The best plan among `subset`'s rows, or None when none is feasible. Raises SolverLimitError when the time
    limit ran out before any plan was found (and none was proven impossible)."""
    cand = subset[b.feasible[subset]]
    if len(cand) == 0:
        return None, 0
    order = cand[np.lexsort((cand, b.objective[cand]))]
    ub = _upper_bound(t, order, lim)
    if ub is not None:
        order = order[b.objective[order] <= ub[2]]
    started = time.perf_counter()
    sol = solve(t, sorted(order.tolist()), lim, None if ub is None else ub[2], settings,
                hint=None if ub is None else (ub[0], ub[1]), bounds=b)
    wall = time.perf_counter() - started
    if sol is None and ub is not None:
        # CP-SAT stopped at its time limit before it found a plan; the greedy plan is feasible (evaluate() checked
        # it; verify() re-checks it in floating point). Its gap is measured against the kept rows' valid lower
        # bounds (rows pruned above have bounds over this plan's objective, so cannot hold the optimum).
        bound = float(b.objective[order].min())
        gap = 0.0 if ub[2] == 0 else max(0.0, (ub[2] - bound) / ub[2])
        sol = Solution(ub[0], ub[1], ub[2], "FEASIBLE", gap, wall, bound)
    elif sol is None and wall >= settings.time_limit_s:
        raise SolverLimitError(f"time limit: CP-SAT found no plan within --time-limit-s {settings.time_limit_s:g} "
                               f"among {len(order)} candidate rows, and none is proven impossible; "
                               "raise --time-limit-s")
    return sol, len(order)


def _best_single_stage(t: Table, b: Bounds, lim: Limits, subset: np.ndarray) -> tuple[Solution | None, int]:
    """The best plan among single-stage rows without CP-SAT: each has one placement (all layers on its one
    stage), so `evaluate` gives its exact objective. As CP-SAT ranks plans: the cost, then the TPOT (then the row
    order, for determinism). Returns (solution, rows considered); a Solution with solves = 0."""
    started = time.perf_counter()
    cand = subset[b.feasible[subset]]
    best = None
    for i in cand.tolist():
        ev = evaluate(t, i, (t.num_layers,), lim)
        if ev.feasible and (best is None or (ev.objective, ev.tpot_ns, i) < best[:3]):
            best = (ev.objective, ev.tpot_ns, i)
    if best is None:
        return None, len(cand)
    return Solution(best[2], (t.num_layers,), best[0], "OPTIMAL", 0.0, time.perf_counter() - started,
                    float(best[0]), solves=0), len(cand)


def _slice(deadline: float, calls_left: int) -> SolverSettings:
    """A fair share of the time left until `deadline` for the next of `calls_left` solver calls (at least
    MIN_SOLVER_SLICE_S, so that every call can still return the greedy plan)."""
    left = deadline - time.perf_counter()
    return SolverSettings(time_limit_s=max(MIN_SOLVER_SLICE_S, left / max(1, calls_left)))


def _choice(req: Request, t: Table, i: int, layers: tuple[int, ...], lim: Limits, p: PerfParams,
            sol: Solution | None) -> Choice:
    r = t.rows[i]
    ev = evaluate(t, i, layers, lim)
    cfg = Config(gpu=r.gpu, tp=r.tp, pp=r.pp, ep=r.ep, batch=r.batch, weights=r.weights, kv=r.kv,
                 layers_per_stage=layers, dp=r.dp, spec=req.spec)
    est = estimate(req.model, cfg, replace(req.workload, rate_rps=None, output_tokens_per_s=None), p)
    return Choice(r, layers, ev.replicas, ev.objective, est, sol)


def verify(req: Request, c: Choice) -> list[str]:
    """Independent floating-point check of a chosen plan; returns the violations (empty when sound)."""
    e, problems = c.estimate, []
    if not e.fits:
        problems.append("memory: " + "; ".join(e.messages))
    if req.slo.tpot_s is not None and not within(e.tpot_s, req.slo.tpot_s):
        problems.append(f"tpot {e.tpot_s:.6g} s > {req.slo.tpot_s:.6g} s")
    if req.slo.ttft_s is not None and not within(e.ttft_s, req.slo.ttft_s):
        problems.append(f"ttft {e.ttft_s:.6g} s > {req.slo.ttft_s:.6g} s")
    demand = req.workload.demand_output_tokens_per_s
    if demand is not None and not covers(c.replicas * e.output_tokens_per_s, demand):
        problems.append(f"throughput {c.replicas * e.output_tokens_per_s:.6g} < demand {demand:.6g} tok/s")
    limit = req.gpu_limit(c.row.gpu)
    if limit is not None and c.replicas * c.row.gpus > limit:
        problems.append(f"{c.replicas * c.row.gpus} GPUs > limit {limit}")
    if sum(c.layers) != req.model.num_layers:
        problems.append("layers do not sum to the model's")
    if c.row.gpu.intra_node_link(c.row.tp) is None:
        problems.append("TP exceeds the scale-up domain / PCIe host")
    return problems


def search(req: Request, p: PerfParams, alternatives: bool = True, queue: "QueueTarget | None" = None) -> SearchResult:
    """The cheapest plan for `req` over the exact space (search/bounds.py), or over the request's pinned lists.
    With `queue` (and a demand), each row's replicas also meet the TTFT percentile's queueing bound
    (search/queueing.py; each shape's, bounds.QueueBound)."""
    if queue is not None and req.workload.demand_output_tokens_per_s is None:
        queue = None
    return _search_exact(req, p, alternatives, queue=queue)


# The frontier searches one space for every speed (shared shapes and memory ranges, not pruned per speed): for MoE
# spaces over this many shapes that took 6-9x the grid's time for 15 speeds (Mixtral-8x22B over the catalog: 7.8 s
# against 1.4 s CPU, loaded machine), so those frontiers stay on the grid of search/space.py.
MAX_EXACT_FRONTIER_MOE_SHAPES = 40_000


def _frontier_exact_affordable(req: Request) -> bool:
    """Whether `frontier` searches the exact space: dense models yes; MoE models when their attention-DP × EP × PP
    × TP shapes are few (small GPU budgets, or pinned TP/PP)."""
    return not req.model.is_moe or count_shapes(req) <= MAX_EXACT_FRONTIER_MOE_SHAPES


def _search_exact(req: Request, p: PerfParams, alternatives: bool, sp: Space | None = None,
                  queue: "QueueTarget | None" = None) -> SearchResult:
    # The lazy search allocates ~10^5 short-lived objects (shapes, rows); Python's cyclic collector re-scans them
    # over and over (0.15 s of 0.47 s building a 23k-shape space, measured) and they form no cycles.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _search_exact_body(req, p, alternatives, sp, queue)
    finally:
        if enabled:
            gc.enable()


def _search_exact_body(req: Request, p: PerfParams, alternatives: bool, sp: Space | None,
                       queue: "QueueTarget | None") -> SearchResult:
    from ..explain import infeasibility_reasons

    start = time.perf_counter()
    pruned = sp is None  # groups that miss the latency targets left out (bounds.latency_groups)
    if sp is None:
        sp = build_space(req, p, demand_batch_cap(Limits.of(req, 1)), Limits.of(req, 1))
    if pruned and (len(sp) == 0 or sp.rows == 0):  # nothing left: explain over the whole space
        return _search_exact_body(req, p, alternatives, build_space(req, p, demand_batch_cap(Limits.of(req, 1))),
                                  queue)
    if len(sp) == 0:
        raise InfeasibleError(["no configuration is possible: check --gpus, --weights, --tp/--pp/--ep/--batch and "
                               f"the GPU limits (TP must divide the model's {req.model.num_heads} heads and fit the "
                               "scale-up domain)"])
    lim = Limits.of(req, sp.max_batch)
    sp.queue = None if queue is None else queue_bound(sp, lim, p, queue)
    ex = search_space(sp, lim, p, per_type=alternatives)
    bound_s = time.perf_counter() - start
    t = ex.table
    b = lower_bounds(t, lim)
    deadline = time.perf_counter() + req.time_limit_s
    clock = [0, 0.0]

    def timed(subset, settings):
        if (t.pp[subset] == 1).all():  # one stage: no placement to choose, the table's objective is the plan's
            return _best_single_stage(t, b, lim, subset)
        t0 = time.perf_counter()
        try:
            s_, kept_ = _search_rows(t, b, lim, subset, settings)
        finally:
            clock[1] += time.perf_counter() - t0
        clock[0] += s_.solves if s_ is not None else 1
        return s_, kept_

    if len(ex.candidates) == 0:
        if pruned:  # the explanation reads every shape at its smallest micro-batch, the left-out groups' too
            return _search_exact_body(req, p, alternatives, build_space(req, p, demand_batch_cap(Limits.of(req, 1))),
                                      queue)
        full = ex.all_table
        if full is None:
            raise InfeasibleError(["no configuration is possible: check --gpus, --weights and the GPU limits"])
        raise InfeasibleError(infeasibility_reasons(req, full, lower_bounds(full, lim), lim, p))
    cand = ex.candidates
    if not alternatives:
        sol, kept = timed(cand, SolverSettings(time_limit_s=req.time_limit_s))
        sols = [] if sol is None else [sol]
    else:
        # each GPU type's best plan among its own candidates (the search bounded each type by its own best), the
        # cheapest of them the plan, the others its alternatives
        gpu_of = sp.gpu_type[t.rows.shape_index[cand]]
        types = sorted(set(gpu_of.tolist()), key=lambda g: req.gpus[g].id)
        sols, kept, out_of_time, type_bounds = [], 0, None, []
        for k, g in enumerate(types):
            mine = cand[gpu_of == g]
            try:
                s_, kept_ = timed(mine, _slice(deadline, len(types) - k))
            except SolverLimitError as e:
                out_of_time = e  # no plan of this type within its share of the time: none listed for it, and
                # what it could hold is bounded only by its candidates' lower bounds
                type_bounds.append(float(b.objective[mine[b.feasible[mine]]].min()))
                continue
            kept += kept_
            if s_ is not None:
                sols.append(s_)
                type_bounds.append(s_.bound)
        if not sols and out_of_time is not None:
            raise out_of_time
    if not sols:
        raise InfeasibleError(infeasibility_reasons(req, t, b, lim, p))
    choices = []
    for s_ in sols:
        c = _choice(req, t, s_.row, s_.layers, lim, p, s_)
        problems = verify(req, c)
        if problems:  # the integer model rounds conservatively, so this is a bug, never a user error
            raise RuntimeError("chosen plan failed verification: " + "; ".join(problems))
        ev = evaluate(t, s_.row, s_.layers, lim)
        choices.append((c.objective, ev.tpot_ns, c.row.gpu.id, s_.row, c))
    choices.sort(key=lambda x: x[:4])
    best, index = choices[0][4], choices[0][3]
    if alternatives:
        best = _proven_over_types(best, type_bounds)
        choices[0] = choices[0][:4] + (best,)
    alts = tuple(sorted((x[4] for x in choices), key=lambda c: (c.objective, c.row.gpu.id))) if alternatives else ()
    stats = SearchStats(sp.rows, sp.placements(), kept, ex.table_s, time.perf_counter() - start, clock[0], clock[1],
                        bound_s=bound_s, examined=ex.examined, space="exact" if _is_exact(req) else "pinned")
    return SearchResult(req, best, alts, stats, t, b, index, lim)


def _proven_over_types(best: Choice, type_bounds: list[float]) -> Choice:
    """The plan is the cheapest of the per-GPU-type optima; it is proven optimal over the whole space only if no
    GPU type's lower bound is below its cost. A type whose solve ran out of its share of the time (no plan, or a
    FEASIBLE one) leaves a lower bound under it: the plan is then FEASIBLE, with the gap to the lowest bound."""
    bound = min(type_bounds, default=float(best.objective))
    if best.solution is None or bound >= best.objective:
        return best
    gap = 0.0 if best.objective == 0 else max(0.0, (best.objective - bound) / best.objective)
    return replace(best, solution=replace(best.solution, status="FEASIBLE", gap=max(gap, best.solution.gap),
                                          bound=min(bound, best.solution.bound)))


def _is_exact(req: Request) -> bool:
    return req.pp is None and req.micro_batches is None and req.tp is None and req.batches is None and req.ep is None


def _frontier_grid(req: Request, p: PerfParams, speeds: list[float], progress=None) -> tuple[list[Choice], list[float]]:
    """The frontier's points over the request's grid (tabulated once): the plans and the speeds that ran out of
    time."""
    rows = enumerate_rows(req, p.max_batch)
    if not rows:
        return [], []
    t = build_table(req, rows, p)

    def point(sub: Request, settings: SolverSettings) -> Choice | None:
        lim = Limits.of(sub, p.max_batch)
        sol, _ = _search_rows(t, lower_bounds(t, lim), lim, np.arange(len(t)), settings)
        if sol is None:
            return None
        c = _choice(sub, t, sol.row, sol.layers, lim, p, sol)
        problems = verify(sub, c)
        if problems:  # as in search(): the integer model is conservative, so this is a bug, not a user error
            raise RuntimeError(f"frontier point at {1.0 / sub.slo.tpot_s:g} tok/s/user failed verification: "
                               + "; ".join(problems))
        return c

    return _sweep(req, speeds, progress, point)


def _sweep(req: Request, speeds: list[float], progress, point) -> tuple[list[Choice], list[float]]:
    """The frontier's loop: `point(request at one speed, its share of --time-limit-s)` for each speed, slowest
    first; returns the plans found and the speeds whose solve ran out of time (None: no plan at that speed)."""
    from ..specs.workload import SLO

    deadline = time.perf_counter() + req.time_limit_s
    points: list[Choice] = []
    timed_out: list[float] = []
    for k, speed in enumerate(sorted(speeds)):
        if progress is not None:
            progress(k, len(speeds), speed)
        sub = replace(req, slo=SLO(ttft_s=req.slo.ttft_s, tpot_s=1.0 / speed))
        try:
            c = point(sub, _slice(deadline, len(speeds) - k))
        except SolverLimitError:
            timed_out.append(speed)
            continue
        if c is not None:
            points.append(c)
    return points, timed_out


def frontier(req: Request, p: PerfParams, speeds: list[float], progress=None) -> list[Choice]:
    """Optimal plans for a sweep of per-user speed targets (tok/s/user), each over the exact space, sharing its
    shapes and memory ranges; the result is filtered to the Pareto frontier of ($ per token, tokens/s/user),
    sorted by speed."""
    if not _frontier_exact_affordable(req):
        points, timed_out = _frontier_grid(req.grid(), p, speeds, progress)
        return _pareto(req, speeds, points, timed_out)
    sp = build_space(req, p, demand_batch_cap(Limits.of(req, 1)))
    if len(sp) == 0 or sp.rows == 0:
        return []

    def point(sub: Request, settings: SolverSettings) -> Choice | None:
        sub = replace(sub, time_limit_s=settings.time_limit_s)
        sp.req = sub
        try:
            return _search_exact(sub, p, False, sp).best
        except InfeasibleError:
            return None

    points, timed_out = _sweep(req, speeds, progress, point)
    return _pareto(req, speeds, points, timed_out)


def _pareto(req: Request, speeds: list[float], points: list[Choice], timed_out: list[float]) -> list[Choice]:
    if not points and timed_out:
        raise SolverLimitError(f"time limit: CP-SAT found no plan for {len(timed_out)} of the {len(speeds)} speed "
                               f"targets within --time-limit-s {req.time_limit_s:g} (none is proven impossible); "
                               "raise --time-limit-s")
    return pareto(points, req.workload.demand_output_tokens_per_s)


def pareto(points: list[Choice], demand: float | None) -> list[Choice]:
    """Pareto filter: keep a point unless another is at least as fast and strictly cheaper (or equal cost, faster);
    sorted by speed."""
    def cost(c: Choice) -> float:
        return c.usd_per_million_output_tokens(demand)

    kept = []
    for c in points:
        dominated = any((cost(o) < cost(c) and o.estimate.tokens_per_s_per_user >= c.estimate.tokens_per_s_per_user)
                        or (cost(o) <= cost(c) and o.estimate.tokens_per_s_per_user > c.estimate.tokens_per_s_per_user)
                        for o in points)
        if not dominated and not any(_same(c, q) for q in kept):
            kept.append(c)
    return sorted(kept, key=lambda c: c.estimate.tokens_per_s_per_user)


def _same(a: Choice, b: Choice) -> bool:
    return a.row == b.row and a.layers == b.layers and a.estimate.config.spec == b.estimate.config.spec
