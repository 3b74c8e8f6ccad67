"""A fleet request: the typed request (`FleetRequest`: classes with hourly demand and SLOs, GPU offers with prices
and availability, search options) and its reading from a TOML file or dict (`request_from_dict`, `load_request`)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..catalog import Catalog, load_catalog, load_model, read_toml
from ..errors import InputError
from ..numbers import is_real, is_whole
from ..search.space import DEFAULT_KV, DEFAULT_WEIGHTS, POOL_SPACES
from ..specs.accelerator import PRICE_TIERS, Accelerator
from ..specs.model import ModelSpec
from ..specs.workload import SLO, Workload

ROLES = ("aggregated", "prefill", "decode")
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
            if not is_real(r) or not 0 <= r <= 1e7:
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
    pp: tuple[int, ...] | None = None  # None: DEFAULT_PP on the grid, every depth with pool_space "exact"
    # None: every micro-batch memory allows (fleet/pool_space.py); a tuple: those (the grid's, DEFAULT_MICRO_BATCHES)
    micro_batches: tuple[int, ...] | None = None
    tp: tuple[int, ...] | None = None
    disaggregation: str = "auto"  # auto: choose against aggregated by cost; off; only
    budget_usd_per_hour: float | None = None  # in every hour
    budget_usd_per_month: float | None = None  # on average (730 h per month)
    time_limit_s: float = 5.0  # deterministic CP-SAT budget of the fleet (a quarter of it per comparison fleet)
    workers: int = 1  # one worker: the same request gives the same fleet
    compare: bool = True  # also solve the best single-type fleets and the aggregated-only fleet
    engine: str | None = None  # only pools this serving engine runs (planner/engines.py), its perf profile; None: any
    # the pools' PP and TP: "grid" (the request's lists, else DEFAULT_PP and powers of two) or "exact" (the request's
    # lists, else every depth and degree; fleet.pool_space.candidate_pools)
    pool_space: str = "grid"

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
        if self.pool_space not in POOL_SPACES:
            raise InputError(f"pool_space must be one of {', '.join(POOL_SPACES)}, got {self.pool_space!r}")

    @property
    def hours(self) -> int:
        return len(self.classes[0].rate_rps)

    def offer(self, gpu_id: str) -> GpuOffer:
        return next(o for o in self.offers if o.gpu.id == gpu_id)


def pool_space_of(req: FleetRequest) -> str:
    """The space the fleet's pools are proven optimal over (the fleet JSON's solver.space): "grid" unless the
    request asks for pool_space "exact" and pins no micro-batches, then "exact", or "pinned" where it pins PP or TP
    (the pins hold, every integer elsewhere, as `planner plan`'s)."""
    if req.pool_space != "exact" or req.micro_batches is not None:
        return "grid"
    return "exact" if req.pp is None and req.tp is None else "pinned"


def roles_of(disaggregation: str) -> tuple[str, ...]:
    return {"auto": ROLES, "off": ("aggregated",), "only": ("prefill", "decode")}[disaggregation]


TOP_KEYS = {"description", "model", "gpus", "weights", "kv", "tp", "pp", "catalog", "price_tier", "on_demand_tier",
            "reserved_tier", "disaggregation", "budget_usd_per_hour", "budget_usd_per_month", "time_limit_s",
            "compare", "profile", "available", "prices", "class", "engine", "pool_space"}
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
        if not is_real(v) or v < 0:
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
    if not is_real(v) or (v <= 0 if positive else v < 0):
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
        if not is_whole(n) or n < 0:
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
    space = doc.get("pool_space", "grid")
    if space not in POOL_SPACES:
        raise InputError(f"{where}: pool_space must be one of {', '.join(POOL_SPACES)}, got {space!r}")
    req = FleetRequest(
        model=model, classes=tuple(classes), offers=tuple(offers),
        # a quantized checkpoint is served at its own precision unless the request names others (as in `plan`)
        weights=split(doc.get("weights"), (model.native_weights,) if model.native_weights else DEFAULT_WEIGHTS),
        kv=split(doc.get("kv"), DEFAULT_KV), pp=ints(doc.get("pp")) or None, tp=ints(doc.get("tp")),
        disaggregation=dis, budget_usd_per_hour=_number(doc, "budget_usd_per_hour", where),
        budget_usd_per_month=_number(doc, "budget_usd_per_month", where),
        time_limit_s=5.0 if limit is None else limit, compare=compare, engine=_engine(doc.get("engine"), where),
        pool_space=space)
    return req, cat


def _engine(value: Any, where: str) -> str | None:
    from ..engines import check_engine

    try:
        return check_engine(value)
    except InputError as e:
        raise InputError(f"{where}: engine: {e}") from None


def load_request(path: str | Path, catalog: Catalog | str | Path | None = None) -> tuple[FleetRequest, Catalog]:
    path = Path(path)
    return request_from_dict(read_toml(path), catalog, base_dir=path.parent, where=str(path))
