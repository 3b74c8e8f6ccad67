"""The typed result of a fleet search (`FleetResult`, its pools and per-class costs, its JSON) and its text."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..engines import serving_engine
from ..numbers import round6
from ..perf.cost import usd_per_million
from ..perf.params import PerfParams
from ..search.table import PRICE_UNITS_PER_USD
from ..specs.layout import ReplicaLayout
from ..units import HOURS_PER_MONTH, SECONDS_PER_HOUR
from .pools import capacity_by_role, estimate_pool, replica_requests_per_s, served
from .request import FleetRequest, pool_space_of
from .search import Fleet, FleetSearch, search
from .verify import hourly_usd, pool_usd, usd_per_month, verify

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class PoolPlan(ReplicaLayout):
    """One replica pool of the fleet: its layout (the shared fields in specs/layout.py), class, role and GPU, what
    one replica serves, and its replicas per hour."""

    cls: str
    role: str  # aggregated | prefill | decode
    gpu: str
    gpus_per_replica: int
    requests_per_s_per_replica: float
    tokens_per_s_per_user: float | None  # aggregated and decode
    ttft_s: float | None  # aggregated: TTFT; prefill: prefill latency (before the KV transfer)
    reserved: int
    replicas: tuple[int, ...]  # per hour, reserved included
    utilization: tuple[float, ...]  # per hour: busy share of the replicas
    engine: str = ""  # the serving engine that runs the pool (planner/engines.py: the request's, else preferred)

    def to_dict(self) -> dict[str, Any]:
        return {
            "class": self.cls, "role": self.role, "gpu": self.gpu, "tp": self.tp, "pp": self.pp, "ep": self.ep,
            "batch": self.batch, "weights": self.weights, "kv": self.kv,
            "layers_per_stage": list(self.layers_per_stage), "gpus_per_replica": self.gpus_per_replica,
            "requests_per_s_per_replica": round6(self.requests_per_s_per_replica),
            "tokens_per_s_per_user": None if self.tokens_per_s_per_user is None else round6(self.tokens_per_s_per_user),
            "ttft_s": None if self.ttft_s is None else round6(self.ttft_s),
            "reserved_replicas": self.reserved, "replicas_per_hour": list(self.replicas),
            "utilization_per_hour": [round6(u) for u in self.utilization],
            **({"engine": self.engine} if self.engine else {}),
        }


@dataclass(frozen=True)
class ClassCost:
    name: str
    isl: int
    osl: int
    ttft_s: float | None
    tpot_s: float | None
    rate_rps: tuple[float, ...]
    usd_per_hour: tuple[float, ...]
    usd_per_million_output_tokens: float | None
    usd_per_million_tokens: float | None
    disaggregated_share: float  # of the requests served over the period

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "isl": self.isl, "osl": self.osl, "ttft_s": self.ttft_s, "tpot_s": self.tpot_s,
            "rate_rps_per_hour": [round6(x) for x in self.rate_rps],
            "usd_per_hour": [round6(x) for x in self.usd_per_hour],
            "usd_per_million_output_tokens": None if self.usd_per_million_output_tokens is None
            else round6(self.usd_per_million_output_tokens),
            "usd_per_million_tokens": None if self.usd_per_million_tokens is None else round6(self.usd_per_million_tokens),
            "disaggregated_share": round6(self.disaggregated_share),
        }


@dataclass(frozen=True)
class FleetResult:
    model: str
    hours: int
    pools: tuple[PoolPlan, ...]
    classes: tuple[ClassCost, ...]
    gpus_per_hour: dict[str, tuple[int, ...]]  # per GPU type
    reserved_gpus: dict[str, int]
    idle_gpus_per_hour: dict[str, tuple[float, ...]]  # GPU-equivalents free for other work, per type
    utilization: tuple[float, ...]  # busy GPUs / GPUs, per hour
    usd_per_hour: tuple[float, ...]
    prices: dict[str, dict[str, Any]]
    comparison: dict[str, Any]
    solver: dict[str, Any]
    budget: dict[str, float | None]
    timings: bool = field(default=False, compare=False)

    @property
    def usd_per_hour_mean(self) -> float:
        return sum(self.usd_per_hour) / self.hours

    @property
    def usd_per_month(self) -> float:
        return usd_per_month(self.usd_per_hour)

    def to_dict(self) -> dict[str, Any]:
        solver = dict(self.solver)
        if not self.timings:
            solver = {k: v for k, v in solver.items() if not k.endswith("wall_s")}
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "fleet",
            "model": self.model,
            "hours": self.hours,
            "cost": {
                "usd_per_hour_mean": round6(self.usd_per_hour_mean),
                "usd_per_month": round6(self.usd_per_month),
                "usd_per_hour": [round6(x) for x in self.usd_per_hour],
                "hours_per_month": HOURS_PER_MONTH,
            },
            "gpus": {
                "per_hour": {t: list(v) for t, v in self.gpus_per_hour.items()},
                "peak": {t: max(v) for t, v in self.gpus_per_hour.items()},
                "reserved": dict(self.reserved_gpus),
                "idle_per_hour": {t: [round6(x) for x in v] for t, v in self.idle_gpus_per_hour.items()},
            },
            "utilization_per_hour": [round6(u) for u in self.utilization],
            "classes": [c.to_dict() for c in self.classes],
            "pools": [p.to_dict() for p in self.pools],
            "prices": self.prices,
            "budget": self.budget,
            "comparison": self.comparison,
            "solver": solver,
        }


def _split(req: FleetRequest, fleet: Fleet, cap: dict[int, float], h: int, c: int) -> dict[str, float]:
    """Busy share of each role's capacity for class c in hour h: demand spread in proportion to capacity
    (aggregated, and disaggregated at the pace of its slower half)."""
    ft, sol = fleet.table, fleet.solution
    by = capacity_by_role(((ft.pools[k], cap[k], sol.counts[k][h]) for k in cap), c)
    eff = served(by)
    f = 0.0 if eff <= 0 else min(1.0, req.classes[c].rate_rps[h] / eff)
    y = f * min(by["prefill"], by["decode"])
    return {"aggregated": f, "prefill": 0.0 if by["prefill"] <= 0 else y / by["prefill"],
            "decode": 0.0 if by["decode"] <= 0 else y / by["decode"], "disaggregated_rps": y}


def _fleet_usd_per_month(req: FleetRequest, fleet: Fleet | None) -> float | None:
    return None if fleet is None else usd_per_month(hourly_usd(req, fleet))


def result(s: FleetSearch, p: PerfParams, timings: bool = False) -> FleetResult:
    """The typed result of a search, after verifying the chosen fleet in floating point."""
    req, fleet = s.request, s.best
    problems = verify(req, fleet, p)
    if problems:  # the integer model rounds conservatively, so this is a bug, never a user error
        raise RuntimeError("chosen fleet failed verification: " + "; ".join(problems[:5]))
    ft, sol, H = fleet.table, fleet.solution, fleet.table.hours
    used = [k for k in range(len(ft.pools)) if any(sol.counts[k])]
    cap: dict[int, float] = {}
    est = {}
    for k in used:
        pool = ft.pools[k]
        wl = req.classes[pool.cls].workload
        e = estimate_pool(req.model, pool, wl, p)
        est[k] = e
        cap[k] = replica_requests_per_s(req.model, pool, wl, e, p)
    share = {(h, c): _split(req, fleet, cap, h, c) for h in range(H) for c in range(len(req.classes))}
    pools = []
    for k in used:
        pool, e = ft.pools[k], est[k]
        util = tuple(share[h, pool.cls][pool.role] if sol.counts[k][h] else 0.0 for h in range(H))
        pools.append(PoolPlan(
            tp=pool.row.tp, pp=pool.row.pp, ep=pool.row.ep, dp=pool.row.dp,
            batch=pool.row.pp if pool.role == "prefill" else pool.row.batch, weights=pool.row.weights,
            kv=pool.row.kv, layers_per_stage=pool.layers, cls=req.classes[pool.cls].name, role=pool.role,
            gpu=pool.gpu, gpus_per_replica=pool.gpus, requests_per_s_per_replica=cap[k],
            tokens_per_s_per_user=None if pool.role == "prefill" else 1.0 / (
                e.tpot_s if pool.role == "aggregated" else e.decode_cycle_s),
            ttft_s=None if pool.role == "decode" else e.ttft_s, reserved=sol.reserved[k], replicas=sol.counts[k],
            utilization=util, engine=serving_engine(req.engine, pool.gpu, pool.row.weights, pool.row.kv, pool.row.tp,
                                                    pool.row.pp, pool.row.ep, pool.row.dp)["id"]))
    types = sorted({ft.pools[k].gpu for k in used})
    gpus = {t: tuple(sum(ft.pools[k].gpus * sol.counts[k][h] for k in used if ft.pools[k].gpu == t) for h in range(H))
            for t in types}
    reserved = {t: sum(ft.pools[k].gpus * sol.reserved[k] for k in used if ft.pools[k].gpu == t) for t in types}
    idle = {t: tuple(sum(ft.pools[k].gpus * sol.counts[k][h] * (1 - share[h, ft.pools[k].cls][ft.pools[k].role])
                         for k in used if ft.pools[k].gpu == t) for h in range(H)) for t in types}
    total = [sum(gpus[t][h] for t in types) for h in range(H)]
    util = tuple(0.0 if total[h] == 0 else 1 - sum(idle[t][h] for t in types) / total[h] for h in range(H))
    usd_h = hourly_usd(req, fleet)

    classes = []
    for c, cl in enumerate(req.classes):
        usd = tuple(sum(pool_usd(req, fleet, k, h) for k in used if ft.pools[k].cls == c) for h in range(H))
        reqs = sum(cl.rate_rps) * SECONDS_PER_HOUR
        out = reqs * cl.workload.osl
        dis = sum(share[h, c]["disaggregated_rps"] for h in range(H)) * SECONDS_PER_HOUR
        classes.append(ClassCost(
            cl.name, cl.workload.isl, cl.workload.osl, cl.slo.ttft_s, cl.slo.tpot_s, cl.rate_rps, usd,
            None if out == 0 else usd_per_million(sum(usd), out),
            None if out == 0 else usd_per_million(sum(usd), reqs * (cl.workload.isl + cl.workload.osl)),
            0.0 if reqs == 0 else min(1.0, dis / reqs)))
    prices = {o.gpu.id: {"on_demand_usd_per_hour": o.on_demand_usd_per_hour, "on_demand_tier": o.on_demand_tier,
                         "reserved_usd_per_hour": o.reserved_usd_per_hour, "reserved_tier": o.reserved_tier,
                         "available": o.available} for o in req.offers}
    month = usd_per_month(usd_h)
    comparison: dict[str, Any] = {}
    if req.compare:
        singles = {t: _fleet_usd_per_month(req, f) for t, f in s.single_type.items()}
        feasible = {t: v for t, v in singles.items() if v is not None}
        best_t = min(feasible, key=lambda t: (feasible[t], t)) if feasible else None
        comparison = {
            "single_type_usd_per_month": {t: None if v is None else round6(v) for t, v in singles.items()},
            "best_single_type": best_t,
            "best_single_type_usd_per_month": None if best_t is None else round6(feasible[best_t]),
            "mixed_saving_usd_per_month": None if best_t is None else round6(feasible[best_t] - month),
            "mixed_saving_fraction": None if best_t is None or feasible[best_t] == 0
            else round6((feasible[best_t] - month) / feasible[best_t]),
        }
        if req.disaggregation == "auto":
            agg = _fleet_usd_per_month(req, s.aggregated_only)
            comparison.update({
                "aggregated_only_usd_per_month": None if agg is None else round6(agg),
                "disaggregation_saving_usd_per_month": None if agg is None else round6(agg - month),
            })
    bound = fleet.lower_bound / PRICE_UNITS_PER_USD / H * HOURS_PER_MONTH
    solver = {
        "engine": "ortools-cp-sat (+ GLOP LP bound and warm start)",
        "status": sol.status, "source": sol.source,
        "gap": round6((sol.objective - fleet.lower_bound) / sol.objective) if sol.objective else 0.0,
        "objective": sol.objective, "objective_unit": f"{1 / PRICE_UNITS_PER_USD:g} USD over the profile's hours",
        "lower_bound_usd_per_month": round6(bound),
        # the pools are rows of the request's PP list and TP list (the grid's by default), each with every
        # micro-batch memory allows (fleet/pool_space.py): the fleet is proven optimal over those pools; with
        # pool_space "exact" every PP and TP the request leaves open (request.pool_space_of)
        "space": pool_space_of(req),
        "candidate_pools": s.candidates, "pools_in_model": len(ft.pools), "pools_pruned": ft.pruned,
        "hours": H, "distinct_hours": len(ft.hour_groups()),
        "time_limit_s": req.time_limit_s, "workers": req.workers, "seed": 0,
        "wall_s": round(s.wall_s, 4), "pools_wall_s": round(s.pools_s, 4), "mixed_wall_s": round(sol.wall_s, 4),
    }
    return FleetResult(req.model.name, H, tuple(pools), tuple(classes), gpus, reserved, idle, util, tuple(usd_h),
                       prices, comparison, solver,
                       {"usd_per_hour": req.budget_usd_per_hour, "usd_per_month": req.budget_usd_per_month}, timings)


def plan_fleet(req: FleetRequest, p: PerfParams, timings: bool = False) -> FleetResult:
    return result(search(req, p), p, timings)


def fleet_text(d: Mapping[str, Any]) -> str:
    """A human-readable summary of a fleet result's JSON."""
    c, g, s = d["cost"], d["gpus"], d["solver"]
    lines = [f"fleet  {d['model']}  over {d['hours']} hour(s): ${c['usd_per_hour_mean']:,.2f}/hour on average, "
             f"${c['usd_per_month']:,.0f}/month",
             "  GPUs (peak / reserved):  " + ",  ".join(f"{t} {g['peak'][t]} / {g['reserved'].get(t, 0)}"
                                                        for t in g["peak"])]
    lines.append("  pools:")
    for p in d["pools"]:
        reps = p["replicas_per_hour"]
        rng = f"{min(reps)}-{max(reps)}" if min(reps) != max(reps) else f"{reps[0]}"
        speed = "" if p["tokens_per_s_per_user"] is None else f"  {p['tokens_per_s_per_user']:.0f} tok/s/user"
        lines.append(f"    {p['class']:<14} {p['role']:<10} {p['gpu']:<10} TP{p['tp']} PP{p['pp']} batch {p['batch']:<5} "
                     f"{p['weights']}/{p['kv']}  x{rng} (reserved {p['reserved_replicas']})  "
                     f"{p['requests_per_s_per_replica']:.3g} req/s per replica{speed}"
                     + (f"  {p['engine']}" if p.get("engine") else ""))
    lines.append("  classes:")
    for cl in d["classes"]:
        m = cl["usd_per_million_output_tokens"]
        lines.append(f"    {cl['name']:<14} ISL {cl['isl']} OSL {cl['osl']}  peak {max(cl['rate_rps_per_hour']):.4g} req/s  "
                     + ("" if m is None else f"${m:.3f}/M output tokens  ${cl['usd_per_million_tokens']:.3f}/M tokens")
                     + (f"  ({cl['disaggregated_share']:.0%} disaggregated)" if cl["disaggregated_share"] else ""))
    u = d["utilization_per_hour"]
    lines.append(f"  utilization        mean {sum(u) / len(u):.0%}, min {min(u):.0%}, max {max(u):.0%} "
                 f"(idle GPU capacity is in gpus.idle_per_hour of --json)")
    cmp = d["comparison"]
    if cmp.get("best_single_type"):
        lines.append(f"  vs single type     best is {cmp['best_single_type']} at ${cmp['best_single_type_usd_per_month']:,.0f}"
                     f"/month: the mixed fleet saves ${cmp['mixed_saving_usd_per_month']:,.0f}/month "
                     f"({cmp['mixed_saving_fraction']:.1%})")
    if cmp.get("aggregated_only_usd_per_month") is not None:
        lines.append(f"  vs aggregated only ${cmp['aggregated_only_usd_per_month']:,.0f}/month: disaggregation saves "
                     f"${cmp['disaggregation_saving_usd_per_month']:,.0f}/month")
    gap = f", gap {s['gap']:.2%} to the bound" if s["gap"] else ""
    lines.append(f"  solver             {s['status']} ({s['source']}{gap}); {s['candidate_pools']} candidate pools, "
                 f"{s['pools_in_model']} in the model, {s['distinct_hours']} distinct hours"
                 + (f"; {s['wall_s']:.2f} s" if "wall_s" in s else ""))
    return "\n".join(lines)
