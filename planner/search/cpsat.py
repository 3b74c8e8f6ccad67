"""The CP-SAT deployment model: choose one row (GPU, precision, TP, PP, EP, micro-batch), the layers on each
pipeline stage, and (with demand) the replica count, minimizing $ per token (or fleet $/hour for a demand).

Built in the CP-SAT samples' order: `build` (variables, constraints, objective, search strategy), `_solver`
(parameters), solve, `tie_breaks` (the fastest plan at the optimal cost, then the most even layer split), `read`.
The inequalities are those of `table.evaluate()` (the oracle's semantics), with the row choice as enforcement
literals."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from .table import INT_LIMIT, MAX_ROUND_NS, NS_PER_S, OBJ_DIVISOR, Bounds, Limits, Table, lower_bounds

if TYPE_CHECKING:  # imported where a model is built or read: OR-Tools' cp_model imports pandas (~0.2 s, issue #16)
    from ortools.sat.python import cp_model


@dataclass(frozen=True)
class Solution:
    row: int
    layers: tuple[int, ...]
    objective: int
    status: str  # OPTIMAL | FEASIBLE
    gap: float  # (objective − bound) / objective
    wall_s: float
    bound: float
    solves: int = 1  # CpSolver.Solve calls: the cost, then the tie-break stages that ran


@dataclass(frozen=True)
class SolverSettings:
    time_limit_s: float = 30.0
    workers: int = 1  # one worker: the same input gives the same plan (determinism)
    seed: int = 0


@dataclass
class _Model:
    """A built deployment model and the variables the stages and the reader need."""

    model: cp_model.CpModel
    rows: list[int]
    chosen_row: dict[int, cp_model.IntVar]  # chosen_row[i]: row i is the plan's
    layers_on_stage: dict[int, list[cp_model.IntVar]]  # per PP degree, the layers of each stage
    tpot: cp_model.IntVar
    objective: cp_model.IntVar
    # per PP degree, with several layer kinds: stage_start[p][s] (s = 1 … p − 1), the first layer of stage s, and
    # kind_before[p][k][s], the layers of kind k before it (table.kind_prefix[k] at stage_start; K − 1 kinds, the
    # last kind's count is the stage's layers less the others')
    stage_start: dict[int, list[cp_model.IntVar]]
    kind_before: dict[int, list[list[cp_model.IntVar]]]


def solve(t: Table, rows: Sequence[int], lim: Limits, objective_ub: int | None,
          settings: SolverSettings = SolverSettings(), hint: tuple[int, Sequence[int]] | None = None,
          bounds: Bounds | None = None) -> Solution | None:
    """Optimize over the given row indices of `t`. `objective_ub` (from a known feasible plan) tightens domains.
    Returns None when CP-SAT proves infeasibility or finds nothing within the time limit. `bounds` are
    `lower_bounds(t, lim)` when the caller has them (computed here otherwise)."""
    from ortools.sat.python import cp_model
    start = time.perf_counter()
    md = build(t, rows, lim, objective_ub, hint, bounds)
    if md is None:
        return None
    solver = _solver(settings)
    status = solver.Solve(md.model)
    if status == cp_model.MODEL_INVALID:  # a bug (e.g. an integer range overflow), not an infeasible request
        raise RuntimeError(f"CP-SAT rejected the deployment model: {md.model.Validate()}")
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    value = int(solver.Value(md.objective))
    bound = float(solver.BestObjectiveBound())
    picked = _picked(t, md, solver)
    solves = 1
    if status == cp_model.OPTIMAL:
        more, picked = tie_breaks(t, md, solver, value, settings, start, picked)
        solves += more
    return read(picked, status, value, bound, solves, time.perf_counter() - start)


def _picked(t: Table, md: _Model, solver: cp_model.CpSolver) -> tuple[int, tuple[int, ...]]:
    """The row and the layers per stage of the solver's last solution."""
    chosen = next(i for i in md.rows if solver.BooleanValue(md.chosen_row[i]))
    return chosen, tuple(int(solver.Value(v)) for v in md.layers_on_stage[int(t.pp[chosen])])


def _hint(md: _Model, t: Table, picked: tuple[int, tuple[int, ...]]) -> None:
    """Start the search from a known plan (its row and layers): the greedy placement for the first solve, the plan
    in hand for each tie-break stage, so a short time limit still finds it."""
    row, lay = picked
    md.model.ClearHints()
    for i in md.rows:
        md.model.AddHint(md.chosen_row[i], int(i == row))
    p = int(t.pp[row])
    for v, n in zip(md.layers_on_stage[p], lay):
        md.model.AddHint(v, n)
    if p in md.stage_start:
        start = 0
        for s, n in enumerate(lay[:-1], start=1):
            start += n
            md.model.AddHint(md.stage_start[p][s - 1], start)
            for k, before in enumerate(md.kind_before[p]):
                md.model.AddHint(before[s - 1], int(t.kind_prefix[k, start]))


def build(t: Table, rows: Sequence[int], lim: Limits, objective_ub: int | None,
          hint: tuple[int, Sequence[int]] | None = None, bounds: Bounds | None = None) -> _Model | None:
    """The model over `rows` (variables, constraints, objective, search strategy), or None when the bounds leave
    no row."""
    from ortools.sat.python import cp_model
    m = cp_model.CpModel()
    L = t.num_layers
    lb = bounds if bounds is not None else lower_bounds(t, lim)
    # rows the bounds rule out get no constraints (their stall coefficients may be out of the int64 range)
    rows = [i for i in rows if bool(lb.tpot_ok[i])]
    if not rows:
        return None
    # ---- variables
    x = {i: m.NewBoolVar(f"x{i}") for i in rows}
    pps = sorted({int(t.pp[i]) for i in rows})
    layers = {p: [m.NewIntVar(1, L - p + 1, f"l{p}_{s}") for s in range(p)] for p in pps}
    K = t.kind_prefix.shape[0]
    # stage_start[p][s − 1]: the first layer of stage s; kind_before[p][k][s − 1]: layers of kind k before it
    start = {p: [m.NewIntVar(s, L - p + s, f"start{p}_{s}") for s in range(1, p)] for p in pps} if K > 1 else {}
    before = {p: [[m.NewIntVar(0, int(t.kind_prefix[k, -1]), f"before{p}_{k}_{s}") for s in range(1, p)]
                  for k in range(K - 1)] for p in start}
    dec_stage_max = max(int(t.dec_ns_per_kind[i].max()) * L + max(t.extras(i, "dec")) for i in rows)
    chunk_stage_max = max(int(t.chunk_ns_per_kind[i].max()) * L + max(t.extras(i, "ch")) for i in rows)
    dec_stage_ns = m.NewIntVar(0, dec_stage_max, "dec_stage_ns")  # slowest stage's decode step
    chunk_stage_ns = m.NewIntVar(0, chunk_stage_max, "chunk_stage_ns")  # slowest stage's prefill-chunk increment
    piped = [i for i in rows if t.piped is not None and bool(t.piped[i])]
    path = {i: _path_ns(t, i) for i in piped}
    # pipelined rows: X = max(max_s(pp·(D_s + hop) + C_s + hop_c), Σ_s (D_s + C_s + hop + hop_c)) of table.stalled_ns
    stall_top = m.NewIntVar(0, max([max(int(t.pp[i]) * (dec_stage_max + int(t.dec_hop_ns[i])) + chunk_stage_max
                                        + int(t.chunk_hop_ns[i]), path[i]) for i in piped], default=0), "stall_top")
    tpot = m.NewIntVar(0, lim.tpot_ns, "tpot")
    round_t = m.NewIntVar(0, MAX_ROUND_NS, "round")  # replica time per token per sequence, prefills included
    obj_max = min(lim.max_objective, objective_ub) if objective_ub is not None else lim.max_objective
    obj = m.NewIntVar(0, obj_max, "objective")
    demand = lim.demand_tokens_per_s
    replicas = m.NewIntVar(1, lim.max_replicas, "replicas") if demand is not None else None
    # ---- constraints
    m.AddExactlyOne(x.values())
    for p in pps:
        m.Add(sum(layers[p]) == L)
    # stage s starts after the layers of stages 0 … s − 1; the layers of kind k before it are the model's prefix
    # count there (an element constraint on the model-level table kind_prefix[k])
    for p in start:
        for s, v in enumerate(start[p], start=1):
            m.Add(v == sum(layers[p][:s]))
            for k in range(K - 1):
                m.AddElement(v, [int(c) for c in t.kind_prefix[k]], before[p][k][s - 1])
    for i in rows:
        p, xi = int(t.pp[i]), x[i]
        cap_kib = int(t.cap_kib[i])
        dec_l, chunk_l, *mem_l = (_stage_layer_terms(t, layers[p], before.get(p), coef[i].tolist())
                                  for coef in (t.dec_ns_per_kind, t.chunk_ns_per_kind,
                                               *(m for _, m in t.memory_per_kind)))
        osl, b, k, hop_ch, hop = t.osl, int(t.batch[i]), int(t.stall_coef[i]), int(t.chunk_hop_ns[i]), int(t.dec_hop_ns[i])
        mine = i in path and (b - 1) * (k // p) <= osl  # a pipelined row whose TPOT stalls are exact
        for s, (e_d, e_c, f) in enumerate(zip(t.extras(i, "dec"), t.extras(i, "ch"), t.extras(i, "mem"))):
            m.Add(dec_stage_ns >= dec_l[s] + e_d).OnlyEnforceIf(xi)  # slowest decode stage
            m.Add(chunk_stage_ns >= chunk_l[s] + e_c).OnlyEnforceIf(xi)  # slowest prefill-chunk increment
            if mine:  # a chunk's micro-batch on this stage: pp·(D_s + hop) + C_s + hop_c
                m.Add(stall_top >= p * (dec_l[s] + e_d + hop) + chunk_l[s] + e_c + hop_ch).OnlyEnforceIf(xi)
            for mem in mem_l:  # stage memory (the batch's KV; with several kinds also one longest sequence's)
                m.Add(mem[s] + f <= cap_kib).OnlyEnforceIf(xi)
        if mine:
            m.Add(stall_top >= path[i]).OnlyEnforceIf(xi)  # the path term: the same for every placement
        cycle = p * osl * dec_stage_ns + p * osl * hop
        for var, prompts in ((tpot, b - 1), (round_t, b)):
            n = prompts * (k // p)
            if mine and n <= osl:
                # table.stalled_ns, at most one chunk per cycle: OSL·var ≥ (OSL − n)·pp·(T + hop) + n·stall_top,
                # every coefficient >= 0 (exact at the optimum)
                m.Add(var * osl >= p * (osl - n) * dec_stage_ns + p * (osl - n) * hop
                      + n * stall_top).OnlyEnforceIf(xi)
            else:
                # OSL·var ≥ pp·OSL·(T_dec + hop) + prompts·k·(T_ch + hop_ch): TPOT the other B − 1 requests'
                # prefill stalls, the round every prefill (throughput basis)
                m.Add(var * osl >= cycle + prompts * k * chunk_stage_ns + prompts * k * hop_ch).OnlyEnforceIf(xi)
        gpus, price, limit = int(t.gpus[i]), int(t.price_1e4_usd_per_h[i]), int(t.gpu_limit[i])
        if demand is None:
            m.Add(obj * (OBJ_DIVISOR * b) >= price * gpus * round_t).OnlyEnforceIf(xi)
            if limit >= 0 and gpus > limit:
                m.Add(xi == 0)
        else:
            m.Add(replicas * (b * NS_PER_S) >= demand * round_t).OnlyEnforceIf(xi)
            if t.min_replicas is not None:  # the TTFT percentile under queueing (search/queueing.py)
                m.Add(replicas >= int(t.min_replicas[i])).OnlyEnforceIf(xi)
            m.Add(obj >= price * gpus * replicas).OnlyEnforceIf(xi)
            if limit >= 0:
                m.Add(replicas * gpus <= limit).OnlyEnforceIf(xi)
    if lim.ttft_ns is not None:  # TTFT does not depend on placement: rows over the limit cannot be chosen
        for i in rows:
            if int(t.ttft_ns[i]) > lim.ttft_ns:
                m.Add(x[i] == 0)
    # Valid per-row lower bounds (table.lower_bounds) as redundant constraints: the enforced inequalities above
    # give the LP relaxation nothing until a row is fixed, so without these the proven bound stays 0.
    for i in rows:
        if int(lb.objective[i]) > obj_max or int(lb.tpot_ns[i]) > lim.tpot_ns:
            m.Add(x[i] == 0)
    obj_lb = {i: min(int(lb.objective[i]), obj_max) for i in rows}
    if sum(obj_lb.values()) < INT_LIMIT:  # CP-SAT rejects linear expressions that could overflow int64
        m.Add(obj >= sum(obj_lb[i] * x[i] for i in rows))
    m.Add(tpot >= sum(min(int(lb.tpot_ns[i]), lim.tpot_ns) * x[i] for i in rows))
    m.Add(round_t >= sum(min(int(lb.round_ns[i]), MAX_ROUND_NS) * x[i] for i in rows))
    # ---- objective
    m.Minimize(obj)
    # ---- search: decide the row first, cheapest lower bound first; once a row is fixed, propagation settles the
    # layers. CP-SAT's default single-worker search branches on the wide time/objective domains instead and could
    # not prove optimality on ~150 rows within seconds.
    by_bound = sorted(rows, key=lambda i: (int(lb.objective[i]), i))
    m.AddDecisionStrategy([x[i] for i in by_bound], cp_model.CHOOSE_FIRST, cp_model.SELECT_MAX_VALUE)
    md = _Model(m, rows, x, layers, tpot, obj, start, before)
    if hint is not None and hint[0] in x:  # start from a known plan (the greedy placement)
        _hint(md, t, (hint[0], tuple(hint[1])))
    return md


def _path_ns(t: Table, i: int) -> int:
    """Σ_s (D_s + C_s + hop + hop_c) of pipelined row i (table.stalled_ns): the same for every placement (each
    layer is on one stage)."""
    c = t.kind_counts
    return (int(t.dec_ns_per_kind[i] @ c) + sum(t.extras(i, "dec")) + int(t.chunk_ns_per_kind[i] @ c)
            + sum(t.extras(i, "ch")) + int(t.pp[i]) * (int(t.dec_hop_ns[i]) + int(t.chunk_hop_ns[i])))


def _stage_layer_terms(t: Table, layers: list, before: list | None, coef: list[int]) -> list:
    """Per stage, Σ_k n_{s,k} · coef_k as a linear expression (table.Table.stage_layers' semantics). One kind:
    coef · layers_on_stage (today's model). Several: n_{s,k} = before_k[s + 1] − before_k[s] (0 before the first
    stage, the model's count after the last) for k < K − 1, and the last kind the stage's remaining layers."""
    if before is None:
        return [coef[0] * l for l in layers]
    K, p = len(coef), len(layers)
    out = []
    for s in range(p):
        expr = coef[K - 1] * layers[s]
        for k in range(K - 1):
            hi = int(t.kind_prefix[k, -1]) if s == p - 1 else before[k][s]
            lo = 0 if s == 0 else before[k][s - 1]
            expr += (coef[k] - coef[K - 1]) * (hi - lo)
        out.append(expr)
    return out


def _solver(settings: SolverSettings) -> cp_model.CpSolver:
    """The solver, its parameters set explicitly (time limit, one worker and a seed for determinism)."""
    from ortools.sat.python import cp_model
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = settings.time_limit_s
    solver.parameters.num_workers = settings.workers
    solver.parameters.random_seed = settings.seed
    solver.parameters.search_branching = cp_model.FIXED_SEARCH
    # CP-SAT (9.15) derives "t >= one of" constraints from the row-enforced inequalities under AddExactlyOne, and
    # that derivation declared feasible models of this shape INFEASIBLE, with or without presolve (found by the
    # oracle tests; a two-row instance is in tests/search/test_cpsat.py). The search above does not need it.
    solver.parameters.auto_detect_greater_than_at_least_one_of = False
    # Presolve probing spent ~80 % of an unpruned 2,800-row solve (5 s of 7) and finds nothing the row-first
    # search does not; without it that solve takes 1.7 s (benchmarks/solve_speed).
    solver.parameters.cp_model_probing_level = 0
    return solver


def tie_breaks(t: Table, md: _Model, solver: cp_model.CpSolver, value: int, settings: SolverSettings,
               start: float, picked: tuple[int, tuple[int, ...]]) -> tuple[int, tuple[int, ...]]:
    """After an optimal cost `value` (plan `picked`): the fastest plan at that cost, then (several stages) the most
    even layer split of the chosen row at that cost and speed. Each stage starts from the plan in hand (hints); a
    stage that finds nothing within what is left of the time limit (a loaded machine: it gets at least 0.1 s) keeps
    that plan, which is still optimal in cost. Returns the Solve calls made and the plan."""
    from ortools.sat.python import cp_model
    m, L, x, layers = md.model, t.num_layers, md.chosen_row, md.layers_on_stage
    tpot, obj = md.tpot, md.objective
    solves = 1
    # Second, lexicographic stage: among plans of optimal cost, the fastest per user (ties between batch
    # sizes are common once a demand is met by whole replicas), so the answer is stable and has most slack.
    m.Add(obj <= value)
    m.Minimize(tpot)
    _hint(md, t, picked)
    left = settings.time_limit_s - (time.perf_counter() - start)
    solver.parameters.max_time_in_seconds = max(left, 0.1)
    again = solver.Solve(m)
    if again not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return solves, picked
    picked = _picked(t, md, solver)
    row = picked[0]
    p = int(t.pp[row])
    if again == cp_model.OPTIMAL and p > 1:
        # Third stage, on the chosen row: at that cost and speed, the most even layer split (slack stages
        # would otherwise take arbitrary counts, e.g. (1, 13, 13, 5) where (3, 13, 13, 3) is as good).
        m.Add(tpot <= int(solver.Value(tpot)))
        m.Add(x[row] == 1)
        hi, lo = m.NewIntVar(1, L, "hi"), m.NewIntVar(1, L, "lo")
        for v in layers[p]:
            m.Add(hi >= v)
            m.Add(lo <= v)
        m.Minimize(hi - lo)
        _hint(md, t, picked)
        left = settings.time_limit_s - (time.perf_counter() - start)
        solver.parameters.max_time_in_seconds = max(left, 0.1)
        solves += 1
        if solver.Solve(m) in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            picked = _picked(t, md, solver)
    return solves, picked


def read(picked: tuple[int, tuple[int, ...]], status: int, value: int, bound: float, solves: int,
         wall: float) -> Solution:
    """The chosen row, its layers, the cost, the status and the proven gap."""
    from ortools.sat.python import cp_model
    chosen, lay = picked
    gap = 0.0 if value == 0 else max(0.0, (value - bound) / value)
    return Solution(chosen, lay, value, "OPTIMAL" if status == cp_model.OPTIMAL else "FEASIBLE", gap, wall, bound,
                    solves)