"""Fleet and procurement planning: a request file (or dict) in, a typed `FleetResult` and its JSON out.

The request names a model, request classes (token lengths, SLOs, hourly demand), the GPU types with their
availability and prices (catalog tiers or the request's own), and optionally a budget. The search picks replica
pools — aggregated, or prefill/decode disaggregated, on any GPU type — and their counts per hour, reserved for the
whole period or bought per hour, at the lowest cost. Every chosen pool and every hour is re-checked in floating
point (`verify`) before a result is returned.

One module per job, each importing only those above it:

    request.py  the typed request and its parsing (TOML file or dict)
    pools.py    candidate replica pools of each class (from the optimizer's integer table) and their
                floating-point re-estimates
    pool_space.py  the pools over every micro-batch memory allows (the exact space), searched by dominance
    table.py    the fleet's integer table, exact pruning, a solution and its integer semantics (`check`)
    model.py    the CP-SAT model and its solve
    lp.py       the LP relaxation (lower bound) and the warm start built from it
    oracle.py   the exhaustive oracle over the same table (tests)
    search.py   the search end to end, and why no fleet exists
    verify.py   the floating-point check of a chosen fleet
    result.py   the typed result (pools extend specs.layout.ReplicaLayout), its JSON and its text

The fleet model: which replica pools (any GPU type; aggregated, or prefill and decode disaggregated) and how many
replicas of each — reserved for the whole period or bought hour by hour — so that every request class's hourly
demand is served within its SLOs at the lowest total cost, within per-type availability and an optional budget.

Integer model (`model.py`; all quantities from `pools.py` via `table.py`, scaled and rounded conservatively; prices up, budgets down):

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
`table.check()` is the reference semantics of one solution; `oracle.exhaustive()` the test oracle over the same
table. `search.search()` runs it end to end: candidate pools, an LP bound and warm start (`lp.py`), CP-SAT on the
full model up to FULL_MODEL_MAX_VARIABLES, the comparison fleets, and the cheapest answer."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_package

# Loaded on first use (issue #16): the plan search imports fleet.pools for disaggregated pools, and should not pay
# for the fleet's CP-SAT and LP modules (OR-Tools, pandas) it never runs. `search`, `result` and `verify` stay the
# functions when their namesake submodules are imported.
_EXPORTS = {".request": ("DISAGGREGATION", "MAX_HOURS", "FleetClass", "FleetRequest", "GpuOffer", "load_request",
                         "request_from_dict"),
            ".result": ("SCHEMA_VERSION", "ClassCost", "FleetResult", "PoolPlan", "fleet_text", "plan_fleet", "result"),
            ".search": ("Fleet", "FleetSearch", "search"),
            ".verify": ("hourly_usd", "verify")}
lazy_package(__name__, {name: module for module, names in _EXPORTS.items() for name in names})
if TYPE_CHECKING:
    from .request import DISAGGREGATION, MAX_HOURS, FleetClass, FleetRequest, GpuOffer, load_request, request_from_dict
    from .result import SCHEMA_VERSION, ClassCost, FleetResult, PoolPlan, fleet_text, plan_fleet, result
    from .search import Fleet, FleetSearch, search
    from .verify import hourly_usd, verify

__all__ = ["FleetResult", "PoolPlan", "ClassCost", "request_from_dict", "load_request", "plan_fleet", "verify",
           "fleet_text", "SCHEMA_VERSION", "FleetRequest", "FleetClass", "GpuOffer", "DISAGGREGATION", "MAX_HOURS",
           "Fleet", "FleetSearch", "search", "result", "hourly_usd"]
