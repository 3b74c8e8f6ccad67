"""Independent floating-point check of a chosen fleet (`verify`) and its hourly cost at the request's prices."""
from __future__ import annotations

from typing import Sequence

from ..numbers import covers, within
from ..perf.params import PerfParams
from ..units import HOURS_PER_MONTH
from .pools import (CAP_UNITS_PER_RPS, capacity_by_role, estimate_pool, pair_kv_transfer_s, replica_cost,
                    replica_requests_per_s, served)
from .request import FleetRequest
from .search import Fleet


def verify(req: FleetRequest, fleet: Fleet, p: PerfParams) -> list[str]:
    """Independent floating-point check of a chosen fleet; returns the violations (empty when sound)."""
    ft, sol = fleet.table, fleet.solution
    problems: list[str] = []
    used = [k for k in range(len(ft.pools)) if any(sol.counts[k])]
    cap: dict[int, float] = {}
    for k in used:
        pool = ft.pools[k]
        cl = req.classes[pool.cls]
        e = estimate_pool(req.model, pool, cl.workload, p)
        name = f"{cl.name}/{pool.role} {pool.gpu} TP{pool.row.tp} PP{pool.row.pp}"
        if not e.fits:
            problems.append(f"{name}: does not fit in memory")
        cap[k] = replica_requests_per_s(req.model, pool, cl.workload, e, p)
        if pool.role == "aggregated":
            if cl.slo.tpot_s is not None and not within(e.tpot_s, cl.slo.tpot_s):
                problems.append(f"{name}: TPOT {e.tpot_s:.6g} s > {cl.slo.tpot_s:.6g} s")
            if cl.slo.ttft_s is not None and not within(e.ttft_s, cl.slo.ttft_s):
                problems.append(f"{name}: TTFT {e.ttft_s:.6g} s > {cl.slo.ttft_s:.6g} s")
        elif pool.role == "decode":
            if cl.slo.tpot_s is not None and not within(e.decode_cycle_s, cl.slo.tpot_s):
                problems.append(f"{name}: decode cycle {e.decode_cycle_s:.6g} s > TPOT {cl.slo.tpot_s:.6g} s")
        else:
            if cl.slo.ttft_s is not None:
                for d in used:
                    dp = ft.pools[d]
                    if dp.cls != pool.cls or dp.role != "decode":
                        continue
                    ttft = e.ttft_s + pair_kv_transfer_s(req.model, pool, dp, cl.workload.isl, p)
                    if pool.kv != dp.kv or not within(ttft, cl.slo.ttft_s):
                        problems.append(f"{name} -> {dp.gpu} decode: TTFT with KV transfer {ttft:.6g} s > "
                                        f"{cl.slo.ttft_s:.6g} s or KV precision differs")
        if not covers(cap[k] * CAP_UNITS_PER_RPS, pool.capacity):
            problems.append(f"{name}: capacity {cap[k]:.6g} req/s < the table's {pool.capacity / CAP_UNITS_PER_RPS:.6g}")
    for h in range(ft.hours):
        for c, cl in enumerate(req.classes):
            rps = served(capacity_by_role(((ft.pools[k], cap[k], sol.counts[k][h]) for k in used), c))
            if not covers(rps, cl.rate_rps[h]):
                problems.append(f"hour {h}: class {cl.name!r} served {rps:.6g} < demand {cl.rate_rps[h]:.6g} req/s")
        for o in req.offers:
            n = sum(ft.pools[k].gpus * sol.counts[k][h] for k in used if ft.pools[k].gpu == o.gpu.id)
            if o.available is not None and n > o.available:
                problems.append(f"hour {h}: {n} {o.gpu.id} > {o.available} available")
        if req.budget_usd_per_hour is not None and not within(hourly_usd(req, fleet)[h], req.budget_usd_per_hour):
            problems.append(f"hour {h}: over the hourly budget")
    if req.budget_usd_per_month is not None:
        month = usd_per_month(hourly_usd(req, fleet))
        if not within(month, req.budget_usd_per_month):
            problems.append(f"${month:,.2f}/month > budget ${req.budget_usd_per_month:,.2f}")
    return problems


def hourly_usd(req: FleetRequest, fleet: Fleet) -> list[float]:
    """$ per hour of the fleet, at the request's prices (reserved replicas paid every hour)."""
    ft, sol = fleet.table, fleet.solution
    out = []
    for h in range(ft.hours):
        usd = 0.0
        for k in range(len(ft.pools)):
            usd += pool_usd(req, fleet, k, h)
        out.append(usd)
    return out


def pool_usd(req: FleetRequest, fleet: Fleet, k: int, h: int) -> float:
    """$ of pool k of the fleet in hour h, at the request's prices."""
    pool, sol = fleet.table.pools[k], fleet.solution
    o = req.offer(pool.gpu)
    return replica_cost(pool.gpus, o.reserved_usd_per_hour, o.on_demand_usd_per_hour, sol.reserved[k], sol.counts[k][h])


def usd_per_month(hourly: Sequence[float]) -> float:
    """The mean of an hourly cost profile over a month of HOURS_PER_MONTH hours."""
    return sum(hourly) / len(hourly) * HOURS_PER_MONTH
