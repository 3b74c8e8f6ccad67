"""The layout search: tabulate every layout (numpy, through `step.step_terms`), keep the rows that fit in memory
and are not dominated, and let CP-SAT choose one row.

Decision space per GPU type: t ∈ powers of two up to the scale-up domain that divide the heads; p ∈ divisors of L
and powers of two up to L; b ∈ {1, 2, 4, 8} dividing the batch B; d ∈ divisors of B / b; e ∈ divisors of the
expert count that divide d; c ∈ {1} (and powers of two up to 16 from 16k-token sequences); ZeRO 0-3; recompute
none / selective / full. GPUs = t·p·d·c.

CP-SAT model (the samples' order: variables, constraints, objective, solve, read):
    chosen_row[i] ∈ {0, 1}, exactly one chosen;
    Σ days_s[i]·chosen_row[i] ≤ deadline_s;  Σ cost_cents[i]·chosen_row[i] ≤ budget_cents;
    Σ gpus[i]·chosen_row[i] ≤ max_gpus (or = num_gpus);
    Σ (memory_kib[i] − capacity_kib[i])·chosen_row[i] ≤ 0;
    minimize cost (deadline / GPU count given) or time (budget only); among rows within TIE_FRACTION (0.5 %) of
    that proven optimum, the fewest GPUs, then the objective again, then the other measure, then the row's
    preference rank (lowest ZeRO stage, least recomputation) so that the answer is unique.
Integer units round conservatively: times and costs up, limits and capacities down; the chosen row is then
re-estimated in floating point (`verify`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from ortools.sat.python import cp_model

from ..errors import InfeasibleError
from ..perf.params import PerfParams
from .request import TrainRequest
from .step import SECONDS_PER_DAY, Layout, Link, run_metrics, step_terms

CENTS_PER_USD = 100  # cost unit of the CP-SAT model
KIB = 1024.0  # memory unit of the CP-SAT model
MICRO_BATCHES = (1, 2, 4, 8)
ZERO_STAGES = (0, 1, 2, 3)
RECOMPUTE = ("none", "selective", "full")
CP_FROM_SEQ_LEN = 16_384  # context parallelism considered from this sequence length (Llama 3 used CP from 128k;
#   Megatron-Core recommends it for long sequences where activations dominate)
MAX_TP = 64
# Plans whose objective (cost or time) is within this fraction of the proven optimum count as equally good, and
# among them the one with the fewest GPUs is chosen: the model cannot tell such plans apart (held-out runs differ
# from it by up to ~20 %, README), and fewer GPUs are easier to obtain. The run's cost barely depends on the GPU
# count once the batch keeps every GPU busy, so without it the choice between 9,000 and 15,000 GPUs would rest on
# differences of a few dollars in millions.
TIE_FRACTION = 0.005


@dataclass(frozen=True)
class SolverSettings:
    time_limit_s: float = 30.0
    workers: int = 1  # one worker, fixed seed: the same request gives the same layout
    seed: int = 0


def _divisors(n: int) -> list[int]:
    out = set()
    for k in range(1, math.isqrt(n) + 1):
        if n % k == 0:
            out.update((k, n // k))
    return sorted(out)


def link_of(perf: PerfParams) -> Link:
    return Link(perf.link_efficiency, perf.allreduce_latency_s, perf.p2p_latency_s)


@dataclass
class Table:
    """One row per layout; columns are numpy arrays. `terms` and `metrics` hold step_terms / run_metrics."""
    gpu: np.ndarray  # index into request.gpus
    tp: np.ndarray
    pp: np.ndarray
    dp: np.ndarray
    ep: np.ndarray
    cp: np.ndarray
    zero: np.ndarray
    recompute: np.ndarray
    micro_batch: np.ndarray
    capacity: np.ndarray  # usable bytes per GPU
    terms: dict
    metrics: dict

    def __len__(self) -> int:
        return len(self.tp)

    def take(self, idx: np.ndarray) -> "Table":
        pick = lambda d: {k: np.asarray(v)[idx] for k, v in d.items()}  # noqa: E731
        cols = {k: getattr(self, k)[idx] for k in ("gpu", "tp", "pp", "dp", "ep", "cp", "zero", "recompute",
                                                     "micro_batch", "capacity")}
        return Table(**cols, terms=pick(self.terms), metrics=pick(self.metrics))

    def layout(self, req: TrainRequest, i: int) -> Layout:
        return Layout(gpu=req.gpus[int(self.gpu[i])], tp=int(self.tp[i]), pp=int(self.pp[i]), dp=int(self.dp[i]),
                      ep=int(self.ep[i]), cp=int(self.cp[i]), zero=int(self.zero[i]),
                      recompute=str(self.recompute[i]), micro_batch=int(self.micro_batch[i]))


def _space(req: TrainRequest, gi: int) -> dict[str, np.ndarray]:
    """Every layout of GPU type `gi` within the request's GPU limits, as columns."""
    g, m = req.gpus[gi], req.model
    B, L = req.global_batch_seqs, m.num_layers
    cap_gpus = req.num_gpus or req.max_gpus or None
    tps = [t for t in (2 ** k for k in range(7)) if t <= min(g.scale_up_domain, MAX_TP) and m.num_heads % t == 0]
    pps = sorted({p for p in _divisors(L)} | {2 ** k for k in range(12) if 2 ** k <= L})
    cps = [1] + ([c for c in (2, 4, 8, 16) if req.seq_len % c == 0] if req.seq_len >= CP_FROM_SEQ_LEN else [])
    eps_all = _divisors(m.num_experts) if m.is_moe else [1]
    rows: list[tuple[int, ...]] = []
    for b in MICRO_BATCHES:
        if B % b:
            continue
        for d in _divisors(B // b):
            eps = [e for e in eps_all if d % e == 0]
            for t in tps:
                for p in pps:
                    for c in cps:
                        n = t * p * d * c
                        if (req.num_gpus is not None and n != req.num_gpus) or (cap_gpus and n > cap_gpus):
                            continue
                        for e in eps:
                            rows.append((t, p, d, e, c, b))
    if not rows:
        return {}
    base = np.array(rows, dtype=np.int64)
    k = len(ZERO_STAGES) * len(RECOMPUTE)
    cols = {name: np.repeat(base[:, j], k) for j, name in enumerate(("tp", "pp", "dp", "ep", "cp", "micro_batch"))}
    cols["zero"] = np.tile(np.repeat(np.array(ZERO_STAGES), len(RECOMPUTE)), len(base))
    cols["recompute"] = np.tile(np.array(RECOMPUTE * len(ZERO_STAGES)), len(base))
    return cols


def evaluate(req: TrainRequest, gi: int, cols: dict, perf: PerfParams) -> Table:
    """step_terms and run_metrics for layouts of GPU type `gi` (the same functions `estimate` uses)."""
    g, p = req.gpus[gi], req.params
    terms = step_terms(req.model, req.seq_len, req.global_batch_seqs, tp=cols["tp"], pp=cols["pp"],
                       dp=cols["dp"], ep=cols["ep"], cp=cols["cp"], zero=cols["zero"],
                       recompute=cols["recompute"], micro_batch=cols["micro_batch"],
                       peak_flops_per_s=g.flops_per_s["bf16"], flops_efficiency=p.flops_efficiency(g.id),
                       domain=g.scale_up_domain, scale_up_bytes_per_s=g.scale_up_bytes_per_s,
                       scale_out_bytes_per_s=g.scale_out_bytes_per_s, link=link_of(perf))
    metrics = run_metrics(req.model, req.seq_len, req.global_batch_tokens, req.tokens, terms["step_s"],
                          terms["gpus"], g.flops_per_s["bf16"], g.usd_per_hour, p.goodput, cols["recompute"])
    n = len(cols["tp"])
    return Table(gpu=np.full(n, gi), capacity=np.full(n, g.memory_bytes * (1.0 - p.memory_reserve_fraction)),
                 terms=terms, metrics=metrics, **cols)


def _concat(tables: Sequence[Table]) -> Table:
    cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0)  # noqa: E731
    cols = {k: cat([getattr(t, k) for t in tables]) for k in ("gpu", "tp", "pp", "dp", "ep", "cp", "zero",
                                                              "recompute", "micro_batch", "capacity")}
    keys_t = tables[0].terms.keys() if tables else []
    keys_m = tables[0].metrics.keys() if tables else []
    return Table(**cols, terms={k: cat([np.broadcast_to(t.terms[k], len(t)) for t in tables]) for k in keys_t},
                 metrics={k: cat([np.broadcast_to(t.metrics[k], len(t)) for t in tables]) for k in keys_m})


# ---- checks of one row, shared by the search, its explanation and the oracle ----------------------------------
def checks(req: TrainRequest, t: Table) -> dict[str, np.ndarray]:
    """Per row, whether each constraint holds (floating point)."""
    n = len(t)
    ok = {"memory": t.terms["memory_bytes"] <= t.capacity}
    ok["deadline"] = (t.metrics["days"] <= req.deadline_days if req.deadline_days is not None
                      else np.ones(n, bool))
    ok["budget"] = (t.metrics["usd_total"] <= req.budget_usd if req.budget_usd is not None else np.ones(n, bool))
    return ok


def objective_value(req: TrainRequest, t: Table) -> np.ndarray:
    return t.metrics["days"] if req.objective == "time" else t.metrics["usd_total"]


def preference_rank(t: Table) -> np.ndarray:
    """Tie-break among equally cheap and fast rows: fewer GPUs, then lower ZeRO stage, less recomputation,
    smaller TP, PP, EP, CP, larger micro-batch. Returns each row's rank (0 = preferred)."""
    rc = np.where(t.recompute == "none", 0, np.where(t.recompute == "selective", 1, 2))
    order = np.lexsort((-t.micro_batch, t.cp, t.ep, t.pp, t.tp, rc, t.zero, t.terms["gpus"], t.gpu))
    rank = np.empty(len(t), dtype=np.int64)
    rank[order] = np.arange(len(t))
    return rank


def pareto(t: Table) -> np.ndarray:
    """Rows not dominated in (cost, time) by another row of the same GPU type and GPU count (the constraints and
    objectives depend on a row only through these, and memory, which the caller has already checked)."""
    cost, days = t.metrics["usd_total"], t.metrics["days"]
    keep = []
    key = t.gpu * (10 ** 8) + t.terms["gpus"].astype(np.int64)
    order = np.lexsort((preference_rank(t), days, cost, key))
    best_days, last = math.inf, None
    for i in order:
        if key[i] != last:
            best_days, last = math.inf, key[i]
        if days[i] < best_days:
            keep.append(i)
            best_days = days[i]
    return np.array(sorted(keep), dtype=np.int64)


@dataclass(frozen=True)
class Solution:
    row: int
    status: str  # OPTIMAL | FEASIBLE
    objective: int
    bound: float
    gap: float
    wall_s: float


def solve(req: TrainRequest, t: Table, settings: SolverSettings) -> Solution | None:
    """CP-SAT over the rows of `t` (see the module docstring). None when no row meets the constraints."""
    start = time.perf_counter()
    n = len(t)
    if n == 0:
        return None
    days_s = np.ceil(t.metrics["days"] * SECONDS_PER_DAY).astype(np.int64)
    cost_c = np.ceil(t.metrics["usd_total"] * CENTS_PER_USD).astype(np.int64)
    mem_kib = np.ceil(t.terms["memory_bytes"] / KIB).astype(np.int64)
    cap_kib = np.floor(t.capacity / KIB).astype(np.int64)
    gpus = t.terms["gpus"].astype(np.int64)
    rank = preference_rank(t)
    m = cp_model.CpModel()
    # ---- variables: chosen_row[i] = 1 when layout i is the plan
    chosen_row = [m.NewBoolVar(f"chosen_row[{i}]") for i in range(n)]
    # ---- constraints
    m.AddExactlyOne(chosen_row)
    # memory: the chosen layout's bytes per GPU fit its usable capacity
    m.Add(sum(int(mem_kib[i] - cap_kib[i]) * chosen_row[i] for i in range(n)) <= 0)
    if req.deadline_days is not None:  # the run (at the goodput) ends by the deadline
        m.Add(sum(int(days_s[i]) * chosen_row[i] for i in range(n)) <= math.floor(req.deadline_days * SECONDS_PER_DAY))
    if req.budget_usd is not None:  # the run costs at most the budget
        m.Add(sum(int(cost_c[i]) * chosen_row[i] for i in range(n)) <= math.floor(req.budget_usd * CENTS_PER_USD))
    if req.max_gpus is not None:
        m.Add(sum(int(gpus[i]) * chosen_row[i] for i in range(n)) <= req.max_gpus)
    if req.num_gpus is not None:
        m.Add(sum(int(gpus[i]) * chosen_row[i] for i in range(n)) == req.num_gpus)
    # ---- objective: lexicographic, one stage at a time
    first, second = (days_s, cost_c) if req.objective == "time" else (cost_c, days_s)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = settings.workers
    solver.parameters.random_seed = settings.seed
    solver.parameters.max_time_in_seconds = settings.time_limit_s
    status, bound = None, 0.0
    # stages: the objective (optimum proven, then widened by TIE_FRACTION), the fewest GPUs within it, the objective
    # again among those, the other measure, the preference rank
    stages = ((first, TIE_FRACTION), (gpus, 0.0), (first, 0.0), (second, 0.0), (rank, 0.0))
    for stage, (coef, slack) in enumerate(stages):
        expr = sum(int(coef[i]) * chosen_row[i] for i in range(n))
        m.Minimize(expr)
        solver.parameters.max_time_in_seconds = max(settings.time_limit_s - (time.perf_counter() - start), 0.1)
        st = solver.Solve(m)
        if st == cp_model.MODEL_INVALID:
            raise RuntimeError(f"CP-SAT rejected the training model: {m.Validate()}")
        if st not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            if stage == 0:
                return None
            raise RuntimeError("CP-SAT lost the optimal layout in a tie-break stage")
        if stage == 0:
            status = "OPTIMAL" if st == cp_model.OPTIMAL else "FEASIBLE"
            bound = float(solver.BestObjectiveBound())
        if st != cp_model.OPTIMAL:
            break
        m.Add(expr <= math.floor(int(solver.Value(expr)) * (1.0 + slack)))
    # ---- read
    row = next(i for i in range(n) if solver.BooleanValue(chosen_row[i]))
    value = int(first[row])
    gap = 0.0 if value == 0 else max(0.0, (value - bound) / value)
    return Solution(row, status, value, bound, gap, time.perf_counter() - start)


@dataclass(frozen=True)
class SearchResult:
    request: TrainRequest
    table: Table  # the rows CP-SAT saw (memory-feasible, undominated)
    solution: Solution
    best: int  # row in `table`
    alternatives: tuple[int, ...]  # best row per other GPU type, rows in `table`
    fewest_gpus: tuple[int, ...]  # per GPU type, the row with the fewest GPUs meeting every constraint (then cheapest)
    relaxed: dict  # constraint -> objective value the best row would reach without it (None: no better row)
    rows: int  # layouts tabulated
    objective_unit: str


def search(req: TrainRequest, perf: PerfParams) -> SearchResult:
    tables, relax_best, full_ok_any = [], {}, False
    totals = 0
    all_rows = []
    for gi in range(len(req.gpus)):
        cols = _space(req, gi)
        if not cols:
            continue
        t = evaluate(req, gi, cols, perf)
        totals += len(t)
        ok = checks(req, t)
        every = ok["memory"] & ok["deadline"] & ok["budget"]
        full_ok_any |= bool(every.any())
        obj = objective_value(req, t)
        for name in ok:  # the best objective with one constraint lifted (explains which constraints bind)
            others = np.ones(len(t), bool)
            for other, v in ok.items():
                if other != name:
                    others &= v
            if others.any():
                relax_best[name] = min(relax_best.get(name, math.inf), float(obj[others].min()))
        fits = t.take(np.flatnonzero(ok["memory"]))
        tables.append(fits.take(pareto(fits)) if len(fits) else fits)  # per GPU type: groups never span types
        all_rows.append(_summary_for_infeasible(req, t, ok))
    if totals == 0:
        raise InfeasibleError([_no_layout_reason(req)])
    if not full_ok_any:
        raise InfeasibleError(_infeasibility(req, all_rows))
    table = _concat(tables)
    settings = SolverSettings(time_limit_s=req.time_limit_s)
    sol = solve(req, table, settings)
    if sol is None:
        raise InfeasibleError(["the solver found no layout within --time-limit-s; raise it"])
    best_gpu = int(table.gpu[sol.row])
    alts = []
    for gi in range(len(req.gpus)):
        if gi == best_gpu:
            continue
        sub = np.flatnonzero(table.gpu == gi)
        s = solve(req, table.take(sub), settings) if len(sub) else None
        if s is not None:
            alts.append(int(sub[s.row]))
    ok = checks(req, table)
    feasible = ok["memory"] & ok["deadline"] & ok["budget"]
    fewest = []
    for gi in range(len(req.gpus)):
        idx = np.flatnonzero(feasible & (table.gpu == gi))
        if len(idx):
            fewest.append(int(idx[np.lexsort((table.metrics["usd_total"][idx], table.terms["gpus"][idx]))[0]]))
    best_obj = float(objective_value(req, table)[sol.row])
    relaxed = {k: (v if v < best_obj * (1 - 1e-9) else None) for k, v in relax_best.items()}
    unit = "seconds of wall-clock time" if req.objective == "time" else f"{1 / CENTS_PER_USD:g} USD"
    return SearchResult(req, table, sol, sol.row, tuple(alts), tuple(fewest), relaxed, totals, unit)


# ---- infeasibility ----------------------------------------------------------------------------------------------
def _summary_for_infeasible(req: TrainRequest, t: Table, ok: dict) -> dict:
    """Per GPU type: the closest row to fitting, the fastest and cheapest rows that fit."""
    need = t.terms["memory_bytes"] / t.capacity
    out = {"gpu": req.gpus[int(t.gpu[0])].id, "min_need": float(need.min()), "fits": bool(ok["memory"].any())}
    fit = ok["memory"]
    if fit.any():
        out["min_days"] = float(t.metrics["days"][fit].min())
        fb = fit & ok["budget"]
        out["min_days_in_budget"] = float(t.metrics["days"][fb].min()) if fb.any() else None
        fd = fit & ok["deadline"]
        out["min_cost_in_deadline"] = float(t.metrics["usd_total"][fd].min()) if fd.any() else None
        out["min_cost"] = float(t.metrics["usd_total"][fit].min())
    return out


def _no_layout_reason(req: TrainRequest) -> str:
    if req.num_gpus is not None:
        return (f"gpu count: no layout uses exactly {req.num_gpus} GPUs (t·p·d·c with d·b dividing the "
                f"{req.global_batch_seqs} sequences of a batch); try a count such as a multiple of 8")
    return "no layout within the GPU limit (t·p·d·c GPUs, d·b dividing the batch's sequences)"


def _infeasibility(req: TrainRequest, per_gpu: list[dict]) -> list[str]:
    reasons = []
    fits = [r for r in per_gpu if r["fits"]]
    if not fits:
        r = min(per_gpu, key=lambda r: r["min_need"])
        limit = (f" at {req.num_gpus} GPUs" if req.num_gpus else f" within {req.max_gpus} GPUs" if req.max_gpus
                 else "")
        reasons.append(f"memory: no layout of {req.model.name} fits{limit}; the closest, on {r['gpu']}, needs "
                       f"{r['min_need']:.2f}x the usable memory per GPU")
        return reasons
    if req.deadline_days is not None:
        ok = [r for r in fits if (r["min_days_in_budget"] if req.budget_usd is not None else r["min_days"])
              is not None]
        best = min((r["min_days_in_budget"] if req.budget_usd is not None else r["min_days"]) for r in ok) \
            if ok else None
        if best is not None and best > req.deadline_days:
            reasons.append(f"deadline: the fastest layout{' within the budget' if req.budget_usd else ''} takes "
                           f"{best:.1f} days ({best / req.deadline_days:.2f}x the {req.deadline_days:g}-day "
                           f"deadline); allow more GPUs or a larger --global-batch-tokens")
    if req.budget_usd is not None:
        vals = [r["min_cost_in_deadline"] for r in fits if r.get("min_cost_in_deadline") is not None]
        if vals and min(vals) > req.budget_usd:
            reasons.append(f"budget: the cheapest layout{' meeting the deadline' if req.deadline_days else ''} "
                           f"costs ${min(vals):,.0f} ({min(vals) / req.budget_usd:.2f}x the "
                           f"${req.budget_usd:,.0f} budget)")
    if not reasons:
        reasons.append("deadline and budget conflict: no layout meets both; loosen one")
    return reasons
