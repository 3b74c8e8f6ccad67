"""`Accelerator`: one GPU/TPU type with its price, built from a catalog entry (catalog/accelerators.toml)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import InputError
from ..units import COMPUTE_DTYPE, GiB, Gbit, GB, TB, TFLOP

PRICE_TIERS = ("market", "list", "reserved", "spot")


@dataclass(frozen=True)
class Price:
    usd_per_hour: float
    tier: str
    source: str = ""
    date: str = ""
    provider: str = ""


@dataclass(frozen=True)
class Accelerator:
    id: str
    name: str
    memory_bytes: float
    hbm_bytes_per_s: float
    flops_per_s: Mapping[str, float]  # dense peak per dtype
    scale_up_domain: int  # GPUs in one NVLink/ICI/Infinity-Fabric domain
    scale_up_bytes_per_s: float  # per GPU, per direction
    scale_out_bytes_per_s: float  # per GPU, per direction
    price: Price
    prices: Mapping[str, Price] = field(default_factory=dict)
    scale_up_topology: str = "switch"
    vendor: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def usd_per_hour(self) -> float:
        return self.price.usd_per_hour

    def supports_weights(self, precision: str) -> bool:
        return COMPUTE_DTYPE[precision] in self.flops_per_s

    def peak_flops(self, weight_precision: str) -> float:
        return self.flops_per_s[COMPUTE_DTYPE[weight_precision]]


def _num(entry: Mapping[str, Any], key: str, where: str, positive: bool = True) -> float:
    value = entry.get(key)
    if value is None:
        raise InputError(f"{where}: missing field {key!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{where}: field {key!r} must be a number, got {value!r}")
    if not math.isfinite(value) or (positive and value <= 0) or value < 0:
        raise InputError(f"{where}: field {key!r} must be {'> 0' if positive else '>= 0'}, got {value!r}")
    if value > 1e12:
        raise InputError(f"{where}: field {key!r} is implausibly large ({value!r})")
    return float(value)


def _table(entry: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = entry.get(key)
    if not isinstance(value, Mapping):
        raise InputError(f"{where}: missing table [{key}]")
    return value


def accelerator_from_entry(entry: Mapping[str, Any], where: str, tier: str,
                           base: "Accelerator | None" = None) -> Accelerator:
    """Build one accelerator. With `base`, fields absent from `entry` are taken from it (user overrides)."""
    if not isinstance(entry, Mapping):
        raise InputError(f"{where}: each [[accelerator]] must be a table")
    aid = entry.get("id")
    if not isinstance(aid, str) or not aid.strip():
        raise InputError(f"{where}: missing field 'id'")
    where = f"{where} [{aid}]"

    def field_or_base(key: str, convert, base_value):
        if key in entry or base is None:
            return convert(_num(entry, key, where))
        return base_value

    memory = field_or_base("memory_gib", lambda v: v * GiB, base.memory_bytes if base else None)
    hbm = field_or_base("hbm_tb_s", lambda v: v * TB, base.hbm_bytes_per_s if base else None)
    if "tflops" in entry or base is None:
        tf = _table(entry, "tflops", where)
        flops = {str(k): _num(tf, k, f"{where} tflops") * TFLOP for k in tf}
        if not flops:
            raise InputError(f"{where}: [tflops] is empty")
    else:
        flops = dict(base.flops_per_s)
    if "scale_up" in entry or base is None:
        su = _table(entry, "scale_up", where)
        domain = _num(su, "domain_size", f"{where} scale_up")
        if domain != int(domain):
            raise InputError(f"{where} scale_up: field 'domain_size' must be an integer, got {domain!r}")
        up_bw = _num(su, "gb_s", f"{where} scale_up") * GB
        topo = str(su.get("topology", "switch"))
    else:
        domain, up_bw, topo = base.scale_up_domain, base.scale_up_bytes_per_s, base.scale_up_topology
    if "scale_out" in entry or base is None:
        so = _table(entry, "scale_out", where)
        out_bw = _num(so, "gbit_s", f"{where} scale_out") * Gbit
    else:
        out_bw = base.scale_out_bytes_per_s

    prices: dict[str, Price] = dict(base.prices) if base else {}
    raw_prices = entry.get("prices", {})
    if not isinstance(raw_prices, Mapping):
        raise InputError(f"{where}: [prices] must be a table of tiers")
    for t, p in raw_prices.items():
        if t not in PRICE_TIERS:
            raise InputError(f"{where}: unknown price tier {t!r} (tiers: {', '.join(PRICE_TIERS)})")
        if not isinstance(p, Mapping):
            raise InputError(f"{where}: prices.{t} must be a table with usd_per_hour")
        prices[t] = Price(_num(p, "usd_per_hour", f"{where} prices.{t}"), t, str(p.get("source", "")),
                          str(p.get("date", "")), str(p.get("provider", "")))
    if "usd_per_hour" in entry:  # shorthand for a user override: one price, any tier
        prices = {**prices, tier: Price(_num(entry, "usd_per_hour", where), tier, "user catalog", "")}
    if not prices:
        raise InputError(f"{where}: no price (add [accelerator.prices.{tier}] usd_per_hour)")
    # The requested tier if this part has one; otherwise the first tier it has, in PRICE_TIERS order.
    price = prices.get(tier) or next(prices[t] for t in PRICE_TIERS if t in prices)
    aliases = tuple(str(a).lower() for a in entry.get("aliases", base.aliases if base else ()))
    return Accelerator(
        id=aid.strip().lower(), name=str(entry.get("name", base.name if base else aid)), memory_bytes=memory,
        hbm_bytes_per_s=hbm, flops_per_s=flops, scale_up_domain=int(domain), scale_up_bytes_per_s=up_bw,
        scale_out_bytes_per_s=out_bw, price=price, prices=prices, scale_up_topology=topo,
        vendor=str(entry.get("vendor", base.vendor if base else "")), aliases=aliases,
    )
