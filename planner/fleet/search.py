"""The fleet search end to end: candidate pools, the mixed fleet (LP bound and warm start, then CP-SAT), the
comparison fleets (each GPU type alone, aggregated only), the cheapest answer, or why there is none."""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Sequence

from ..errors import InfeasibleError
from ..perf.params import PerfParams
from ..search.table import PRICE_UNITS_PER_USD
from ..units import HOURS_PER_MONTH
from .lp import relax, warm_start
from .model import _settings, solve
from .pool_space import candidate_pools
from .pools import Pool
from .request import FleetRequest
from .table import FleetSolution, FleetTable, fleet_table

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
    limit = req.time_limit_s if time_limit_s is None else time_limit_s
    ft = fleet_table(req, pools, types, roles)
    if not ft.pools or any(max(d) > 0 and not any(p.cls == c for p in ft.pools)
                           for c, d in enumerate(ft.demand_1e6_rps)):
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
