"""The fleet model: which replica pools (any GPU type; aggregated, or prefill and decode disaggregated) and how many
replicas of each — reserved for the whole period or bought hour by hour — so that every request class's hourly
demand is served within its SLOs at the lowest total cost, within per-type availability and an optional budget.

Integer model (all quantities from `pools.py`, scaled and rounded conservatively; prices up, budgets down):

    variables   r_k ∈ [0, M_k]        reserved replicas of pool k, held every hour (types with a reserved price)
                o_kh ∈ [0, M_k − r_k] replicas of pool k bought on demand in hour h; n_kh = r_k + o_kh
                y_ch ∈ [0, D_ch]      requests/s of class c served disaggregated in hour h
                u_k ∈ {0, 1}          disaggregated pool k is used at all
    demand      Σ_agg cap_k n_kh + y_ch ≥ D_ch,  Σ_prefill cap_k n_kh ≥ y_ch,  Σ_decode cap_k n_kh ≥ y_ch
    pairing     n_kh ≤ M_k u_k;  u_p + u_d ≤ 1 for a prefill and a decode pool that cannot hand over (KV precision,
                or prefill latency + KV transfer over TTFT): any prefill replica may hand a prompt to any decode one
    availability Σ_{k of type τ} g_k n_kh ≤ A_τ                                   every hour
    budget      Σ_k g_k (ρ_k r_k + π_k o_kh) ≤ B_hour                            every hour
                objective ≤ B_total
    objective   min Σ_k g_k (H ρ_k r_k + π_k Σ_h o_kh)     (ρ reserved, π on-demand price per GPU-hour)

M_k = min(⌈max_h D_ch / cap_k⌉, ⌊A_τ / g_k⌋) is a valid bound: a replica beyond it can be dropped at no loss.
Hours with equal demand share their variables (their subproblems are identical given r).
`check()` is the reference semantics of one solution; `exhaustive()` the test oracle over the same table.
`search()` runs it end to end: candidate pools, an LP bound and warm start (`fleet_lp.py`), CP-SAT on the full
model up to FULL_MODEL_MAX_VARIABLES, the comparison fleets, and the cheapest answer."""
from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from ortools.sat.python import cp_model

from ..errors import InputError
from ..perf.params import PerfParams
from ..specs.accelerator import Accelerator
from ..specs.model import ModelSpec
from ..specs.workload import SLO, Workload
from ..units import HOURS_PER_MONTH
from .cpsat import SolverSettings
from .pools import CAP_UNITS_PER_RPS, ROLES, Pool, class_pools, compatible
from .space import DEFAULT_KV, DEFAULT_MICRO_BATCHES, DEFAULT_PP, DEFAULT_WEIGHTS
from .table import NS_PER_S, PRICE_UNITS_PER_USD

MAX_HOURS = 168  # a week of hourly demand
DISAGGREGATION = ("auto", "off", "only")


# ---- the request ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FleetClass:
    """One request class: token lengths, latency targets, and its demand in requests/s for each hour."""

    name: str
    workload: Workload
    slo: SLO
    rate_rps: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.rate_rps or len(self.rate_rps) > MAX_HOURS:
            raise InputError(f"class {self.name!r}: give 1 to {MAX_HOURS} hourly rates, got {len(self.rate_rps)}")
        for r in self.rate_rps:
            if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r) or not 0 <= r <= 1e7:
                raise InputError(f"class {self.name!r}: rate_rps values must be numbers in [0, 1e7], got {r!r}")


@dataclass(frozen=True)
class GpuOffer:
    """How a GPU type can be bought: per hour (on demand or spot) and optionally reserved for the whole period."""

    gpu: Accelerator
    on_demand_usd_per_hour: float
    reserved_usd_per_hour: float | None = None
    available: int | None = None  # most GPUs of this type in any hour (None: no limit)
    on_demand_tier: str = ""  # where the prices came from, for the report
    reserved_tier: str | None = None

    def __post_init__(self) -> None:
        for name, v in (("on-demand", self.on_demand_usd_per_hour), ("reserved", self.reserved_usd_per_hour)):
            if v is not None and (not math.isfinite(v) or v <= 0):
                raise InputError(f"{self.gpu.id}: {name} price must be > 0 $/GPU-hour, got {v!r}")
        if self.available is not None and self.available < 0:
            raise InputError(f"available.{self.gpu.id} must be >= 0, got {self.available}")


@dataclass(frozen=True)
class FleetRequest:
    model: ModelSpec
    classes: tuple[FleetClass, ...]
    offers: tuple[GpuOffer, ...]
    weights: tuple[str, ...] = DEFAULT_WEIGHTS
    kv: tuple[str, ...] = DEFAULT_KV
    pp: tuple[int, ...] = DEFAULT_PP
    micro_batches: tuple[int, ...] = DEFAULT_MICRO_BATCHES
    tp: tuple[int, ...] | None = None
    disaggregation: str = "auto"  # auto: choose against aggregated by cost; off; only
    budget_usd_per_hour: float | None = None  # in every hour
    budget_usd_per_month: float | None = None  # on average (730 h per month)
    time_limit_s: float = 5.0  # deterministic CP-SAT budget of the fleet (a quarter of it per comparison fleet)
    workers: int = 1  # one worker: the same request gives the same fleet
    compare: bool = True  # also solve the best single-type fleets and the aggregated-only fleet

    def __post_init__(self) -> None:
        if not self.classes:
            raise InputError("a fleet request needs at least one [[class]]")
        if not self.offers:
            raise InputError("no GPU types to choose from")
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names):
            raise InputError(f"class names must be unique, got {names}")
        lengths = {len(c.rate_rps) for c in self.classes}
        if len(lengths) != 1:
            raise InputError(f"every class needs the same number of hourly rates, got {sorted(lengths)}")
        if self.disaggregation not in DISAGGREGATION:
            raise InputError(f"disaggregation must be one of {', '.join(DISAGGREGATION)}, got {self.disaggregation!r}")
        for name, v in (("budget_usd_per_hour", self.budget_usd_per_hour),
                        ("budget_usd_per_month", self.budget_usd_per_month)):
            if v is not None and (not math.isfinite(v) or v <= 0):
                raise InputError(f"{name} must be > 0, got {v!r}")
        if not self.time_limit_s > 0:
            raise InputError(f"time_limit_s must be > 0, got {self.time_limit_s}")
        if self.workers < 1:
            raise InputError(f"workers must be >= 1, got {self.workers}")

    @property
    def hours(self) -> int:
        return len(self.classes[0].rate_rps)

    def offer(self, gpu_id: str) -> GpuOffer:
        return next(o for o in self.offers if o.gpu.id == gpu_id)


def roles_of(disaggregation: str) -> tuple[str, ...]:
    return {"auto": ROLES, "off": ("aggregated",), "only": ("prefill", "decode")}[disaggregation]


def candidate_pools(req: FleetRequest, p: PerfParams) -> list[Pool]:
    """Every class's non-dominated pools (dominance within a GPU type only, so any subset of types stays exact)."""
    gpus = [o.gpu for o in req.offers]
    limits = {o.gpu.id: o.available for o in req.offers if o.available is not None}
    out: list[Pool] = []
    for c, cl in enumerate(req.classes):
        out += class_pools(c, req.model, cl.workload, cl.slo, gpus, p, roles=roles_of(req.disaggregation),
                           weights=req.weights, kv=req.kv, pp=req.pp, micro_batches=req.micro_batches, tp=req.tp,
                           max_gpus_per_type=limits)
    return out


# ---- the integer table -------------------------------------------------------------------------------------------
@dataclass
class FleetTable:
    pools: list[Pool]
    hours: int
    demand: list[tuple[int, ...]]  # [class][hour] requests/s × CAP_UNITS_PER_RPS, rounded up
    ttft_ns: list[int | None]  # per class
    types: list[str]
    pool_type: list[int]  # index into types
    on_demand_price: list[int]  # per type, PRICE_UNITS_PER_USD per GPU-hour, rounded up
    reserved_price: list[int | None]
    available: list[int | None]
    budget_hour: int | None  # price units per hour, rounded down
    budget_total: int | None  # price units over the profile's hours, rounded down
    max_replicas: list[int]
    incompatible: list[tuple[int, int]] = field(default_factory=list)
    pruned: int = 0  # pools dropped as dominated

    @property
    def classes(self) -> int:
        return len(self.demand)

    def gpus(self, k: int) -> int:
        return self.pools[k].gpus

    def hour_groups(self) -> list[tuple[tuple[int, ...], list[int]]]:
        """Hours with equal demand vectors, in first-seen order: [(demand per class, hours)]."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for h in range(self.hours):
            groups.setdefault(tuple(d[h] for d in self.demand), []).append(h)
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
        pools=sel, hours=H, demand=demand, ttft_ns=ttft, types=type_ids,
        pool_type=[type_ids.index(p.gpu) for p in sel], on_demand_price=[od[t] for t in type_ids],
        reserved_price=[res[t] for t in type_ids], available=[avail[t] for t in type_ids], budget_hour=bh,
        budget_total=bt, max_replicas=[bound(p) for p in sel], incompatible=incompatible, pruned=before - len(sel))


# ---- reference semantics -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    feasible: bool
    objective: int  # price units over the profile's hours
    hourly_cost: tuple[int, ...]
    violated: tuple[str, ...] = ()


def check(ft: FleetTable, reserved: Sequence[int], counts: Sequence[Sequence[int]]) -> Check:
    """Integer evaluation of one fleet: `reserved[k]` replicas held all period, `counts[k][h]` replicas in hour h."""
    K, H = len(ft.pools), ft.hours
    violated: list[str] = []
    for k in range(K):
        t = ft.pool_type[k]
        if reserved[k] and ft.reserved_price[t] is None:
            violated.append(f"pool {k}: reserved without a reserved price")
        if reserved[k] < 0 or any(counts[k][h] < reserved[k] for h in range(H)):
            violated.append(f"pool {k}: fewer replicas than reserved")
    used = [any(counts[k][h] > 0 for h in range(H)) for k in range(K)]
    for i, j in ft.incompatible:
        if used[i] and used[j]:
            violated.append(f"pools {i} and {j} cannot pair")
    hourly = []
    for h in range(H):
        for c in range(ft.classes):
            cap = {r: sum(p.capacity * counts[k][h] for k, p in enumerate(ft.pools) if p.cls == c and p.role == r)
                   for r in ROLES}
            if cap["aggregated"] + min(cap["prefill"], cap["decode"]) < ft.demand[c][h]:
                violated.append(f"hour {h}: class {c} demand")
        for t in range(len(ft.types)):
            a = ft.available[t]
            if a is not None and sum(ft.gpus(k) * counts[k][h] for k in range(K) if ft.pool_type[k] == t) > a:
                violated.append(f"hour {h}: {ft.types[t]} availability")
        cost = 0
        for k in range(K):
            t = ft.pool_type[k]
            cost += ft.gpus(k) * ((ft.reserved_price[t] or 0) * reserved[k] + ft.on_demand_price[t] * (counts[k][h] - reserved[k]))
        if ft.budget_hour is not None and cost > ft.budget_hour:
            violated.append(f"hour {h}: budget")
        hourly.append(cost)
    total = sum(hourly)
    if ft.budget_total is not None and total > ft.budget_total:
        violated.append("total budget")
    return Check(not violated, total, tuple(hourly), tuple(violated))


# ---- CP-SAT --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FleetSolution:
    reserved: tuple[int, ...]  # per pool
    counts: tuple[tuple[int, ...], ...]  # [pool][hour], reserved included
    objective: int  # price units over the profile's hours
    status: str  # OPTIMAL | FEASIBLE
    bound: float  # best proven lower bound on the objective
    wall_s: float
    source: str = "cp-sat"  # cp-sat | warm start (when CP-SAT found nothing better in its time)

    @property
    def gap(self) -> float:
        return 0.0 if self.objective == 0 else max(0.0, (self.objective - self.bound) / self.objective)


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
        r = [m.NewIntVar(0, ft.max_replicas[k] if ok[k] and ft.reserved_price[ft.pool_type[k]] is not None else 0,
                         f"r{k}") for k in range(K)]
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
    if ft.budget_total is not None and whole:
        m.Add(objective <= ft.budget_total)
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
    for t, a in enumerate(ft.available):
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
    reserved = sum(ft.gpus(k) * (ft.reserved_price[ft.pool_type[k]] or 0) * r[k] for k in range(K))
    out = []
    for g in range(len(groups)):
        cost = reserved + sum(ft.gpus(k) * ft.on_demand_price[ft.pool_type[k]] * o[k][g] for k in range(K))
        if ft.budget_hour is not None:
            m.Add(cost <= ft.budget_hour)
        out.append(cost)
    return out


def _solver(settings: SolverSettings, deterministic_s: float) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    # The budget is CP-SAT's deterministic time (about a second of work per unit on a modern core), so a search
    # stopped by its budget stops at the same point, with the same fleet, on every machine; the wall-clock limit
    # is only a backstop for slow or loaded machines.
    solver.parameters.max_deterministic_time = deterministic_s
    solver.parameters.max_time_in_seconds = 3 * deterministic_s + 1
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


# ---- exhaustive oracle ---------------------------------------------------------------------------------------------
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
        res_top = [top[k] if ft.reserved_price[ft.pool_type[k]] is not None else 0 for k in range(K)]
        vectors = list(_box(top))
        for reserved in _box(res_top):
            counts, total = [], 0
            for h in range(H):
                hour_best = None
                for v in vectors:
                    if any(v[k] < reserved[k] for k in range(K)):
                        continue
                    cost = _hour_cost(ft, reserved, v, h)
                    if hour_best is not None and cost >= hour_best[0]:
                        continue
                    if _hour_ok(ft, v, h) and (ft.budget_hour is None or cost <= ft.budget_hour):
                        hour_best = (cost, v)
                if hour_best is None:
                    break
                total += hour_best[0]
                counts.append(hour_best[1])
            else:
                if ft.budget_total is not None and total > ft.budget_total:
                    continue
                if best is None or total < best[0]:
                    best = (total, tuple(reserved), tuple(tuple(counts[h][k] for h in range(H)) for k in range(K)))
    return best


def _hour_cost(ft: FleetTable, reserved: Sequence[int], v: Sequence[int], h: int) -> int:
    cost = 0
    for k in range(len(ft.pools)):
        t = ft.pool_type[k]
        cost += ft.gpus(k) * ((ft.reserved_price[t] or 0) * reserved[k] + ft.on_demand_price[t] * (v[k] - reserved[k]))
    return cost


def _hour_ok(ft: FleetTable, v: Sequence[int], h: int) -> bool:
    for c in range(ft.classes):
        cap = dict.fromkeys(ROLES, 0)
        for k, p in enumerate(ft.pools):
            if p.cls == c:
                cap[p.role] += p.capacity * v[k]
        if cap["aggregated"] + min(cap["prefill"], cap["decode"]) < ft.demand[c][h]:
            return False
    for t, a in enumerate(ft.available):
        if a is not None and sum(ft.gpus(k) * v[k] for k in range(len(ft.pools)) if ft.pool_type[k] == t) > a:
            return False
    return True


# ---- the search, end to end ------------------------------------------------------------------------------------------
# CP-SAT gets the full model up to this many integer variables (pools × distinct hours); beyond it the answer is
# the warm start (LP rounding + hour-by-hour CP-SAT), with its gap to the LP bound reported.
FULL_MODEL_MAX_VARIABLES = 6_000
WARM_START_SHARE = 0.4  # of the time limit, spent re-solving hours in the warm start
COMPARISON_SHARE = 0.25  # of the time limit, for each comparison fleet (single type, aggregated only)


@dataclass(frozen=True)
class Fleet:
    """One solved fleet: its integer table and solution."""

    table: FleetTable
    solution: FleetSolution
    lower_bound: float  # LP or CP-SAT bound (price units)


@dataclass(frozen=True)
class FleetSearch:
    request: FleetRequest
    best: Fleet
    mixed: Fleet | None  # the fleet over every type and role (None if infeasible)
    single_type: dict[str, Fleet | None]  # best fleet on each GPU type alone (compare)
    aggregated_only: Fleet | None  # without disaggregation (compare, when it is allowed)
    candidates: int  # pools after per-type pruning, before cross-type pruning
    wall_s: float
    pools_s: float


def optimize(req: FleetRequest, pools: Sequence[Pool], types: Sequence[str] | None = None,
             roles: Sequence[str] | None = None, time_limit_s: float | None = None) -> Fleet | None:
    """The cheapest fleet over `pools` restricted to `types` and `roles`; None when there is none."""
    from .fleet_lp import warm_start

    limit = req.time_limit_s if time_limit_s is None else time_limit_s
    ft = fleet_table(req, pools, types, roles)
    if not ft.pools or any(max(d) > 0 and not any(p.cls == c for p in ft.pools) for c, d in enumerate(ft.demand)):
        return None
    lower, warm = warm_start(ft, _settings(limit, req.workers), WARM_START_SHARE * limit)
    if lower is None:
        return None
    size = len(ft.pools) * len(ft.hour_groups())
    if warm is None or size <= FULL_MODEL_MAX_VARIABLES:
        sol = solve(ft, _settings((1 - WARM_START_SHARE) * limit, req.workers), warm=warm, lower_bound=lower)
    else:
        sol = warm
    if sol is None:
        return None
    return Fleet(ft, sol, max(lower, sol.bound))


def search(req: FleetRequest, p: PerfParams) -> FleetSearch:
    """Candidate pools, the mixed fleet, and (with `compare`) the best single-type and aggregated-only fleets.
    The answer is the cheapest of them, so it is never dearer than a single-type fleet, even when a large mixed
    model stops at its time limit."""
    from ..errors import InfeasibleError

    start = time.perf_counter()
    pools = candidate_pools(req, p)
    pools_s = time.perf_counter() - start
    mixed = optimize(req, pools)
    single: dict[str, Fleet | None] = {}
    agg = None
    if req.compare:
        types = [o.gpu.id for o in req.offers]
        share = COMPARISON_SHARE * req.time_limit_s
        if len(types) > 1:
            single = {t: optimize(req, pools, types=[t], time_limit_s=share) for t in types}
        if req.disaggregation == "auto":
            agg = optimize(req, pools, roles=("aggregated",), time_limit_s=share)
    found = [f for f in [mixed, *single.values()] if f is not None]
    if not found:
        raise InfeasibleError(infeasibility_reasons(req, pools))
    best = min(found, key=lambda f: f.solution.objective)
    return FleetSearch(req, best, mixed, single, agg, len(pools), time.perf_counter() - start, pools_s)


def infeasibility_reasons(req: FleetRequest, pools: Sequence[Pool]) -> list[str]:
    """One line per reason no fleet exists: a class no configuration serves, a class whose peak alone exceeds the
    available GPUs, the budget, or the classes together."""
    from dataclasses import replace

    from .fleet_lp import relax

    reasons = []
    types = ", ".join(o.gpu.id for o in req.offers)
    for c, cl in enumerate(req.classes):
        if max(cl.rate_rps) > 0 and not any(p.cls == c for p in pools):
            slo = []
            if cl.slo.ttft_s is not None:
                slo.append(f"TTFT {cl.slo.ttft_s * 1000:.0f} ms")
            if cl.slo.tpot_s is not None:
                slo.append(f"{1 / cl.slo.tpot_s:.1f} tok/s/user")
            reasons.append(f"class {cl.name!r}: no configuration on {types} fits {req.model.name} with "
                           f"{cl.workload.isl}+{cl.workload.osl} tokens and meets {' and '.join(slo) or 'memory'}")
    if reasons:
        return reasons
    alone_ok = True
    for c, cl in enumerate(req.classes):
        others = tuple(replace(o, rate_rps=tuple(0.0 for _ in o.rate_rps)) if i != c else o
                       for i, o in enumerate(req.classes))
        sub = replace(req, classes=others, budget_usd_per_hour=None, budget_usd_per_month=None)
        if relax(fleet_table(sub, pools)) is None:
            alone_ok = False
            h = max(range(req.hours), key=lambda h: cl.rate_rps[h])
            reasons.append(f"availability: class {cl.name!r} alone, at its peak of {cl.rate_rps[h]:.4g} requests/s "
                           f"(hour {h}), needs more GPUs than are available ({_availability_text(req)})")
    if alone_ok:
        free = replace(req, budget_usd_per_hour=None, budget_usd_per_month=None)
        lp = relax(fleet_table(free, pools))
        if lp is None:
            reasons.append(f"availability: together the classes need more GPUs than are available in some hour "
                           f"({_availability_text(req)})")
        else:
            mean = lp.value / PRICE_UNITS_PER_USD / req.hours
            reasons.append(f"budget: the cheapest fleet costs at least ${mean:,.2f}/hour on average "
                           f"(${mean * HOURS_PER_MONTH:,.0f}/month) or more in its peak hour; budget is "
                           + ", ".join(x for x in (
                               None if req.budget_usd_per_hour is None else f"${req.budget_usd_per_hour:,.2f}/hour",
                               None if req.budget_usd_per_month is None else f"${req.budget_usd_per_month:,.0f}/month")
                               if x))
    return reasons


def _availability_text(req: FleetRequest) -> str:
    limited = [f"{o.gpu.id} {o.available}" for o in req.offers if o.available is not None]
    return ", ".join(limited) if limited else "no limits"
