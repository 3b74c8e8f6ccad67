"""Independent floating-point check of a chosen fleet (`verify`) and its hourly cost at the request's prices."""
from __future__ import annotations

from ..perf.params import PerfParams
from ..units import HOURS_PER_MONTH
from .pools import CAP_UNITS_PER_RPS, estimate_pool, kv_transfer_s, prefill_period_s
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
        if pool.role == "aggregated":
            cap[k] = e.output_tokens_per_s / cl.workload.osl
            if cl.slo.tpot_s is not None and e.tpot_s > cl.slo.tpot_s * (1 + 1e-9):
                problems.append(f"{name}: TPOT {e.tpot_s:.6g} s > {cl.slo.tpot_s:.6g} s")
            if cl.slo.ttft_s is not None and e.ttft_s > cl.slo.ttft_s * (1 + 1e-9):
                problems.append(f"{name}: TTFT {e.ttft_s:.6g} s > {cl.slo.ttft_s:.6g} s")
        elif pool.role == "decode":
            cap[k] = pool.row.batch / (e.decode_cycle_s * cl.workload.osl)
            if cl.slo.tpot_s is not None and e.decode_cycle_s > cl.slo.tpot_s * (1 + 1e-9):
                problems.append(f"{name}: decode cycle {e.decode_cycle_s:.6g} s > TPOT {cl.slo.tpot_s:.6g} s")
        else:
            cap[k] = 1.0 / prefill_period_s(req.model, pool, cl.workload, p)
            if cl.slo.ttft_s is not None:
                for d in used:
                    dp = ft.pools[d]
                    if dp.cls != pool.cls or dp.role != "decode":
                        continue
                    bw = min(pool.row.gpu.scale_out_bytes_per_s, dp.row.gpu.scale_out_bytes_per_s)
                    ttft = e.ttft_s + kv_transfer_s(req.model, pool.kv, bw, cl.workload.isl, p)
                    if pool.kv != dp.kv or ttft > cl.slo.ttft_s * (1 + 1e-9):
                        problems.append(f"{name} -> {dp.gpu} decode: TTFT with KV transfer {ttft:.6g} s > "
                                        f"{cl.slo.ttft_s:.6g} s or KV precision differs")
        if cap[k] * CAP_UNITS_PER_RPS < pool.capacity * (1 - 1e-9):
            problems.append(f"{name}: capacity {cap[k]:.6g} req/s < the table's {pool.capacity / CAP_UNITS_PER_RPS:.6g}")
    for h in range(ft.hours):
        for c, cl in enumerate(req.classes):
            by = {r: sum(cap[k] * sol.counts[k][h] for k in used if ft.pools[k].cls == c and ft.pools[k].role == r)
                  for r in ("aggregated", "prefill", "decode")}
            served = by["aggregated"] + min(by["prefill"], by["decode"])
            if served < cl.rate_rps[h] * (1 - 1e-9):
                problems.append(f"hour {h}: class {cl.name!r} served {served:.6g} < demand {cl.rate_rps[h]:.6g} req/s")
        for o in req.offers:
            n = sum(ft.pools[k].gpus * sol.counts[k][h] for k in used if ft.pools[k].gpu == o.gpu.id)
            if o.available is not None and n > o.available:
                problems.append(f"hour {h}: {n} {o.gpu.id} > {o.available} available")
        if req.budget_usd_per_hour is not None and hourly_usd(req, fleet)[h] > req.budget_usd_per_hour * (1 + 1e-9):
            problems.append(f"hour {h}: over the hourly budget")
    if req.budget_usd_per_month is not None:
        month = sum(hourly_usd(req, fleet)) / ft.hours * HOURS_PER_MONTH
        if month > req.budget_usd_per_month * (1 + 1e-9):
            problems.append(f"${month:,.2f}/month > budget ${req.budget_usd_per_month:,.2f}")
    return problems


def hourly_usd(req: FleetRequest, fleet: Fleet) -> list[float]:
    """$ per hour of the fleet, at the request's prices (reserved replicas paid every hour)."""
    ft, sol = fleet.table, fleet.solution
    out = []
    for h in range(ft.hours):
        usd = 0.0
        for k, pool in enumerate(ft.pools):
            o = req.offer(pool.gpu)
            r = sol.reserved[k]
            usd += pool.gpus * ((o.reserved_usd_per_hour or 0.0) * r + o.on_demand_usd_per_hour * (sol.counts[k][h] - r))
        out.append(usd)
    return out
