"""Fleet and procurement planning: a request file (or dict) in, a typed `FleetResult` and its JSON out.

The request names a model, request classes (token lengths, SLOs, hourly demand), the GPU types with their
availability and prices (catalog tiers or the request's own), and optionally a budget. The search
(`planner.search.fleet.search`) picks replica pools — aggregated, or prefill/decode disaggregated, on any GPU
type — and their counts per hour, reserved for the whole period or bought per hour, at the lowest cost.
Every chosen pool and every hour is re-checked in floating point (`verify`) before a result is returned."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .catalog import Catalog, load_catalog, load_model, read_toml
from .errors import InputError
from .perf.estimate import _r
from .perf.params import PerfParams
from .search.fleet import (DISAGGREGATION, MAX_HOURS, Fleet, FleetClass, FleetRequest, FleetSearch, GpuOffer,
                           search)
from .search.pools import CAP_UNITS_PER_RPS, estimate_pool, kv_transfer_s, prefill_period_s
from .search.space import DEFAULT_KV, DEFAULT_PP, DEFAULT_WEIGHTS
from .search.table import PRICE_UNITS_PER_USD
from .specs.accelerator import PRICE_TIERS
from .specs.model import ModelSpec
from .specs.workload import SLO, Workload
from .units import HOURS_PER_MONTH, SECONDS_PER_HOUR

SCHEMA_VERSION = 1
TOP_KEYS = {"description", "model", "gpus", "weights", "kv", "tp", "pp", "catalog", "price_tier", "on_demand_tier",
            "reserved_tier", "disaggregation", "budget_usd_per_hour", "budget_usd_per_month", "time_limit_s",
            "compare", "profile", "available", "prices", "class"}
CLASS_KEYS = {"name", "isl", "osl", "ttft_ms", "tpot_ms", "min_tokens_per_s_user", "rate_rps", "output_tokens_per_s",
              "profile", "offline", "description"}
PRICE_KEYS = {"on_demand", "reserved"}


# ---- parsing -------------------------------------------------------------------------------------------------------
def _hourly(value: Any, where: str) -> list[float]:
    if isinstance(value, (list, tuple)):
        vals = list(value)
        if len(vals) not in (24, MAX_HOURS):
            raise InputError(f"{where}: give one value, or 24 (a day) or 168 (a week) hourly values; got {len(vals)}")
    else:
        vals = [value]
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise InputError(f"{where}: values must be numbers >= 0, got {v!r}")
    return [float(v) for v in vals]


def _tile(vals: list[float], hours: int, where: str) -> tuple[float, ...]:
    """A constant, or a day repeated over a week."""
    if len(vals) == hours:
        return tuple(vals)
    if len(vals) == 1 or (len(vals) == 24 and hours == MAX_HOURS):
        return tuple(vals * (hours // len(vals)))
    raise InputError(f"{where}: {len(vals)} hourly values do not match the other profiles' {hours}")


def _list(v: Any, where: str) -> list:
    if isinstance(v, str):
        return [x.strip() for x in v.split(",") if x.strip()]
    if isinstance(v, (list, tuple)):
        return list(v)
    raise InputError(f"{where}: expected a list or a comma-separated string, got {v!r}")


def _number(doc: Mapping[str, Any], key: str, where: str, positive: bool = True) -> float | None:
    v = doc.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or (v <= 0 if positive else v < 0):
        raise InputError(f"{where}: {key} must be a number {'> 0' if positive else '>= 0'}, got {v!r}")
    return float(v)


def request_from_dict(doc: Mapping[str, Any], catalog: Catalog | str | Path | None = None,
                      base_dir: Path | None = None, where: str = "fleet request") -> tuple[FleetRequest, Catalog]:
    """Validate a fleet request (the TOML file's content) and build the search's `FleetRequest`."""
    unknown = set(doc) - TOP_KEYS
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(TOP_KEYS))})")
    base_dir = base_dir or Path(".")
    if isinstance(catalog, Catalog):
        cat = catalog
    else:
        cfile = catalog if catalog is not None else doc.get("catalog")
        if cfile is not None and catalog is None and not Path(cfile).is_absolute():
            cfile = base_dir / cfile
        tier = doc.get("price_tier")
        cat = load_catalog(cfile, price_tier=tier)
    m = doc.get("model")
    if m is None:
        raise InputError(f"{where}: missing key 'model'")
    if isinstance(m, str) and (m.endswith(".json") or "/" in m) and not Path(m).is_absolute():
        m = str(base_dir / m)
    model = m if isinstance(m, ModelSpec) else load_model(m)

    # GPU types: `gpus`, else the types in [available], else the whole catalog
    available_doc = doc.get("available", {})
    if not isinstance(available_doc, Mapping):
        raise InputError(f"{where}: [available] must be a table of GPU type = count")
    available: dict[str, int] = {}
    for name, n in available_doc.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InputError(f"{where}: available.{name} must be an integer >= 0, got {n!r}")
        available[cat.gpu(name).id] = n
    if doc.get("gpus") is not None:
        gpus = cat.gpus(_list(doc["gpus"], f"{where}: gpus"))
    elif available:
        gpus = cat.gpus(sorted(available))
    else:
        gpus = cat.gpus(None)
    ids = {g.id for g in gpus}
    extra = set(available) - ids
    if extra:
        raise InputError(f"{where}: available lists {', '.join(sorted(extra))}, which gpus leaves out")

    # prices
    on_tier = doc.get("on_demand_tier", cat.price_tier)
    res_tier = doc.get("reserved_tier", "reserved")
    for key, t in (("on_demand_tier", on_tier), ("reserved_tier", res_tier)):
        if t not in PRICE_TIERS and not (key == "reserved_tier" and t == "none"):
            raise InputError(f"{where}: {key} must be one of {', '.join(PRICE_TIERS)}"
                             f"{' or none' if key == 'reserved_tier' else ''}, got {t!r}")
    prices_doc = doc.get("prices", {})
    if not isinstance(prices_doc, Mapping):
        raise InputError(f"{where}: [prices.TYPE] tables expected")
    overrides: dict[str, Mapping[str, Any]] = {}
    for name, entry in prices_doc.items():
        if not isinstance(entry, Mapping) or set(entry) - PRICE_KEYS:
            raise InputError(f"{where}: prices.{name} takes on_demand and reserved ($/GPU-hour)")
        gid = cat.gpu(name).id
        if gid not in ids:
            raise InputError(f"{where}: prices.{name}: {gid} is not among the GPU types considered")
        overrides[gid] = entry
    offers = []
    for g in gpus:
        o = overrides.get(g.id, {})
        od = _number(o, "on_demand", f"{where}: prices.{g.id}")
        od_tier = "request"
        if od is None:
            price = g.prices.get(on_tier) or g.price  # the catalog's fallback tier when this part lacks one
            od, od_tier = price.usd_per_hour, price.tier
        rs = _number(o, "reserved", f"{where}: prices.{g.id}")
        rs_tier: str | None = "request"
        if rs is None:
            p = None if res_tier == "none" else g.prices.get(res_tier)
            rs, rs_tier = (None, None) if p is None else (p.usd_per_hour, p.tier)
        offers.append(GpuOffer(g, od, rs, available.get(g.id), od_tier, rs_tier))

    # classes and their hourly demand
    raw = doc.get("class")
    if not isinstance(raw, list) or not raw:
        raise InputError(f"{where}: add at least one [[class]] (name, isl, osl, rate_rps, SLOs)")
    top_profile = None if doc.get("profile") is None else _hourly(doc["profile"], f"{where}: profile")
    parsed = []
    for i, c in enumerate(raw):
        cw = f"{where}: class {i + 1}"
        if not isinstance(c, Mapping):
            raise InputError(f"{cw}: each [[class]] must be a table")
        bad = set(c) - CLASS_KEYS
        if bad:
            raise InputError(f"{cw}: unknown key(s) {', '.join(sorted(bad))} (allowed: {', '.join(sorted(CLASS_KEYS))})")
        name = str(c.get("name", f"class{i + 1}"))
        cw = f"{where}: class {name!r}"
        for k in ("isl", "osl"):
            if k not in c:
                raise InputError(f"{cw}: missing {k}")
        workload = Workload(isl=c["isl"], osl=c["osl"])
        if c.get("offline"):
            if any(k in c for k in ("ttft_ms", "tpot_ms", "min_tokens_per_s_user")):
                raise InputError(f"{cw}: an offline class has no latency SLOs (drop ttft_ms / tpot_ms / "
                                 "min_tokens_per_s_user)")
            slo = SLO(ttft_s=None, tpot_s=None)
        else:
            slo = SLO.from_flags(ttft_ms=c.get("ttft_ms"), tpot_ms=c.get("tpot_ms"),
                                 min_tokens_per_s_user=c.get("min_tokens_per_s_user"))
        if ("rate_rps" in c) == ("output_tokens_per_s" in c):
            raise InputError(f"{cw}: give rate_rps or output_tokens_per_s (a number or 24/168 hourly values)")
        key = "rate_rps" if "rate_rps" in c else "output_tokens_per_s"
        rate = _hourly(c[key], f"{cw}: {key}")
        if key == "output_tokens_per_s":
            rate = [x / workload.osl for x in rate]
        prof = c.get("profile")
        prof = top_profile if prof is None else _hourly(prof, f"{cw}: profile")
        parsed.append((name, workload, slo, rate, prof, cw))
    hours = max([len(rate) for _, _, _, rate, _, _ in parsed] + [len(prof) for *_, prof, _ in parsed if prof is not None])
    classes = []
    for name, workload, slo, rate, prof, cw in parsed:
        if prof is not None and len(rate) != 1:
            raise InputError(f"{cw}: a profile multiplies a single rate; give hourly rates or a profile, not both")
        values = _tile(rate, hours, cw)
        if prof is not None:
            mult = _tile(prof, hours, f"{cw}: profile")
            values = tuple(v * f for v, f in zip(values, mult))
        classes.append(FleetClass(name, workload, slo, values))

    dis = doc.get("disaggregation", "auto")
    if dis not in DISAGGREGATION:
        raise InputError(f"{where}: disaggregation must be one of {', '.join(DISAGGREGATION)}, got {dis!r}")
    split = lambda v, d: tuple(d) if v is None else tuple(str(x).strip() for x in _list(v, where))  # noqa: E731
    ints = lambda v: None if v is None else tuple(int(x) for x in _list(v, where))  # noqa: E731
    compare = doc.get("compare", True)
    if not isinstance(compare, bool):
        raise InputError(f"{where}: compare must be true or false, got {compare!r}")
    limit = _number(doc, "time_limit_s", where)
    req = FleetRequest(
        model=model, classes=tuple(classes), offers=tuple(offers), weights=split(doc.get("weights"), DEFAULT_WEIGHTS),
        kv=split(doc.get("kv"), DEFAULT_KV), pp=ints(doc.get("pp")) or DEFAULT_PP, tp=ints(doc.get("tp")),
        disaggregation=dis, budget_usd_per_hour=_number(doc, "budget_usd_per_hour", where),
        budget_usd_per_month=_number(doc, "budget_usd_per_month", where),
        time_limit_s=5.0 if limit is None else limit, compare=compare)
    return req, cat


def load_request(path: str | Path, catalog: Catalog | str | Path | None = None) -> tuple[FleetRequest, Catalog]:
    path = Path(path)
    return request_from_dict(read_toml(path), catalog, base_dir=path.parent, where=str(path))


# ---- verification --------------------------------------------------------------------------------------------------
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


# ---- the result ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PoolPlan:
    """One replica pool of the fleet: its configuration, what one replica serves, and its replicas per hour."""

    cls: str
    role: str  # aggregated | prefill | decode
    gpu: str
    tp: int
    pp: int
    ep: int
    batch: int
    weights: str
    kv: str
    layers_per_stage: tuple[int, ...]
    gpus_per_replica: int
    requests_per_s_per_replica: float
    tokens_per_s_per_user: float | None  # aggregated and decode
    ttft_s: float | None  # aggregated: TTFT; prefill: prefill latency (before the KV transfer)
    reserved: int
    replicas: tuple[int, ...]  # per hour, reserved included
    utilization: tuple[float, ...]  # per hour: busy share of the replicas

    def to_dict(self) -> dict[str, Any]:
        return {
            "class": self.cls, "role": self.role, "gpu": self.gpu, "tp": self.tp, "pp": self.pp, "ep": self.ep,
            "batch": self.batch, "weights": self.weights, "kv": self.kv,
            "layers_per_stage": list(self.layers_per_stage), "gpus_per_replica": self.gpus_per_replica,
            "requests_per_s_per_replica": _r(self.requests_per_s_per_replica),
            "tokens_per_s_per_user": None if self.tokens_per_s_per_user is None else _r(self.tokens_per_s_per_user),
            "ttft_s": None if self.ttft_s is None else _r(self.ttft_s),
            "reserved_replicas": self.reserved, "replicas_per_hour": list(self.replicas),
            "utilization_per_hour": [_r(u) for u in self.utilization],
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
            "rate_rps_per_hour": [_r(x) for x in self.rate_rps],
            "usd_per_hour": [_r(x) for x in self.usd_per_hour],
            "usd_per_million_output_tokens": None if self.usd_per_million_output_tokens is None
            else _r(self.usd_per_million_output_tokens),
            "usd_per_million_tokens": None if self.usd_per_million_tokens is None else _r(self.usd_per_million_tokens),
            "disaggregated_share": _r(self.disaggregated_share),
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
        return self.usd_per_hour_mean * HOURS_PER_MONTH

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
                "usd_per_hour_mean": _r(self.usd_per_hour_mean),
                "usd_per_month": _r(self.usd_per_month),
                "usd_per_hour": [_r(x) for x in self.usd_per_hour],
                "hours_per_month": HOURS_PER_MONTH,
            },
            "gpus": {
                "per_hour": {t: list(v) for t, v in self.gpus_per_hour.items()},
                "peak": {t: max(v) for t, v in self.gpus_per_hour.items()},
                "reserved": dict(self.reserved_gpus),
                "idle_per_hour": {t: [_r(x) for x in v] for t, v in self.idle_gpus_per_hour.items()},
            },
            "utilization_per_hour": [_r(u) for u in self.utilization],
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
    by = {r: sum(cap[k] * sol.counts[k][h] for k in cap if ft.pools[k].cls == c and ft.pools[k].role == r)
          for r in ("aggregated", "prefill", "decode")}
    eff = by["aggregated"] + min(by["prefill"], by["decode"])
    f = 0.0 if eff <= 0 else min(1.0, req.classes[c].rate_rps[h] / eff)
    y = f * min(by["prefill"], by["decode"])
    return {"aggregated": f, "prefill": 0.0 if by["prefill"] <= 0 else y / by["prefill"],
            "decode": 0.0 if by["decode"] <= 0 else y / by["decode"], "disaggregated_rps": y}


def _fleet_usd_per_month(req: FleetRequest, fleet: Fleet | None) -> float | None:
    return None if fleet is None else sum(hourly_usd(req, fleet)) / fleet.table.hours * HOURS_PER_MONTH


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
        cap[k] = (e.output_tokens_per_s / wl.osl if pool.role == "aggregated"
                  else pool.row.batch / (e.decode_cycle_s * wl.osl) if pool.role == "decode"
                  else 1.0 / prefill_period_s(req.model, pool, wl, p))
    share = {(h, c): _split(req, fleet, cap, h, c) for h in range(H) for c in range(len(req.classes))}
    pools = []
    for k in used:
        pool, e = ft.pools[k], est[k]
        util = tuple(share[h, pool.cls][pool.role] if sol.counts[k][h] else 0.0 for h in range(H))
        pools.append(PoolPlan(
            req.classes[pool.cls].name, pool.role, pool.gpu, pool.row.tp, pool.row.pp, pool.row.ep,
            pool.row.pp if pool.role == "prefill" else pool.row.batch, pool.row.weights, pool.row.kv, pool.layers,
            pool.gpus, cap[k],
            None if pool.role == "prefill" else 1.0 / (e.tpot_s if pool.role == "aggregated" else e.decode_cycle_s),
            None if pool.role == "decode" else e.ttft_s, sol.reserved[k], sol.counts[k], util))
    types = sorted({ft.pools[k].gpu for k in used})
    gpus = {t: tuple(sum(ft.pools[k].gpus * sol.counts[k][h] for k in used if ft.pools[k].gpu == t) for h in range(H))
            for t in types}
    reserved = {t: sum(ft.pools[k].gpus * sol.reserved[k] for k in used if ft.pools[k].gpu == t) for t in types}
    idle = {t: tuple(sum(ft.pools[k].gpus * sol.counts[k][h] * (1 - share[h, ft.pools[k].cls][ft.pools[k].role])
                         for k in used if ft.pools[k].gpu == t) for h in range(H)) for t in types}
    total = [sum(gpus[t][h] for t in types) for h in range(H)]
    util = tuple(0.0 if total[h] == 0 else 1 - sum(idle[t][h] for t in types) / total[h] for h in range(H))
    usd_h = hourly_usd(req, fleet)

    def pool_usd(k: int, h: int) -> float:
        pool, o = ft.pools[k], req.offer(ft.pools[k].gpu)
        r = sol.reserved[k]
        return pool.gpus * ((o.reserved_usd_per_hour or 0.0) * r + o.on_demand_usd_per_hour * (sol.counts[k][h] - r))

    classes = []
    for c, cl in enumerate(req.classes):
        usd = tuple(sum(pool_usd(k, h) for k in used if ft.pools[k].cls == c) for h in range(H))
        reqs = sum(cl.rate_rps) * SECONDS_PER_HOUR
        out = reqs * cl.workload.osl
        dis = sum(share[h, c]["disaggregated_rps"] for h in range(H)) * SECONDS_PER_HOUR
        classes.append(ClassCost(
            cl.name, cl.workload.isl, cl.workload.osl, cl.slo.ttft_s, cl.slo.tpot_s, cl.rate_rps, usd,
            None if out == 0 else sum(usd) / out * 1e6,
            None if out == 0 else sum(usd) / (reqs * (cl.workload.isl + cl.workload.osl)) * 1e6,
            0.0 if reqs == 0 else min(1.0, dis / reqs)))
    prices = {o.gpu.id: {"on_demand_usd_per_hour": o.on_demand_usd_per_hour, "on_demand_tier": o.on_demand_tier,
                         "reserved_usd_per_hour": o.reserved_usd_per_hour, "reserved_tier": o.reserved_tier,
                         "available": o.available} for o in req.offers}
    month = sum(usd_h) / H * HOURS_PER_MONTH
    comparison: dict[str, Any] = {}
    if req.compare:
        singles = {t: _fleet_usd_per_month(req, f) for t, f in s.single_type.items()}
        feasible = {t: v for t, v in singles.items() if v is not None}
        best_t = min(feasible, key=lambda t: (feasible[t], t)) if feasible else None
        comparison = {
            "single_type_usd_per_month": {t: None if v is None else _r(v) for t, v in singles.items()},
            "best_single_type": best_t,
            "best_single_type_usd_per_month": None if best_t is None else _r(feasible[best_t]),
            "mixed_saving_usd_per_month": None if best_t is None else _r(feasible[best_t] - month),
            "mixed_saving_fraction": None if best_t is None or feasible[best_t] == 0
            else _r((feasible[best_t] - month) / feasible[best_t]),
        }
        if req.disaggregation == "auto":
            agg = _fleet_usd_per_month(req, s.aggregated_only)
            comparison.update({
                "aggregated_only_usd_per_month": None if agg is None else _r(agg),
                "disaggregation_saving_usd_per_month": None if agg is None else _r(agg - month),
            })
    bound = fleet.lower_bound / PRICE_UNITS_PER_USD / H * HOURS_PER_MONTH
    solver = {
        "engine": "ortools-cp-sat (+ GLOP LP bound and warm start)",
        "status": sol.status, "source": sol.source,
        "gap": _r((sol.objective - fleet.lower_bound) / sol.objective) if sol.objective else 0.0,
        "objective": sol.objective, "objective_unit": f"{1 / PRICE_UNITS_PER_USD:g} USD over the profile's hours",
        "lower_bound_usd_per_month": _r(bound),
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


# ---- text ----------------------------------------------------------------------------------------------------------
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
                     f"{p['requests_per_s_per_replica']:.3g} req/s per replica{speed}")
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


__all__ = ["FleetResult", "PoolPlan", "ClassCost", "request_from_dict", "load_request", "plan_fleet", "verify",
           "fleet_text", "SCHEMA_VERSION"]
