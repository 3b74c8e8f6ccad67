"""`Accelerator`: one GPU/TPU type with its price, built from a catalog entry (catalog/accelerators.toml)."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import InputError, did_you_mean
from ..numbers import is_number
from ..text import check_text
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
class PcieLink:
    """GPU-to-GPU traffic over PCIe inside one host, for parts without a scale-up fabric (or beyond it)."""

    gpus_per_node: int  # GPUs one host holds on PCIe
    allreduce_bytes_per_s: float  # measured NCCL all-reduce bus bandwidth across the host's GPUs, per GPU
    latency_s: float  # one small all-reduce over PCIe


@dataclass(frozen=True)
class Link:
    """The link a collective over some GPUs uses. `efficiency` None: PerfParams.link_efficiency applies (a peak
    rate); 1.0: `bytes_per_s` is already a measured collective bandwidth. `latency_s` None: the perf default."""

    kind: str  # "single" (one GPU), "scale_up" (NVLink/ICI/Infinity Fabric), "pcie"
    bytes_per_s: float
    efficiency: float | None = None
    latency_s: float | None = None


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
    pcie: PcieLink | None = None
    family: str = ""  # architecture family naming its perf profile (ampere, hopper, blackwell, cdna3, tpu, ...)
    sm_count: int = 0  # streaming multiprocessors (CUs on CDNA, MXUs on TPU): wave quantization; 0 unknown

    @property
    def usd_per_hour(self) -> float:
        return self.price.usd_per_hour

    @property
    def node_gpus(self) -> int:
        """GPUs that reach each other without the scale-out NIC: the scale-up domain, or a PCIe host when that
        is larger. TP cannot span more; an all-to-all over more crosses the NIC."""
        return max(self.scale_up_domain, self.pcie.gpus_per_node if self.pcie else 1)

    def intra_node_link(self, gpus: int) -> Link | None:
        """The link collectives over `gpus` GPUs of one replica use: the scale-up fabric when they fit its
        domain, else PCIe inside one host (where the catalog gives one), else None (they would need the NIC)."""
        if gpus <= 1:
            return Link("single", self.scale_up_bytes_per_s)
        if gpus <= self.scale_up_domain:
            return Link("scale_up", self.scale_up_bytes_per_s)
        if self.pcie is not None and gpus <= self.pcie.gpus_per_node:
            return Link("pcie", self.pcie.allreduce_bytes_per_s, 1.0, self.pcie.latency_s)
        return None

    def supports_weights(self, precision: str) -> bool:
        return COMPUTE_DTYPE[precision] in self.flops_per_s

    def peak_flops(self, weight_precision: str) -> float:
        return self.flops_per_s[COMPUTE_DTYPE[weight_precision]]


# Plausible range of each catalog number, in the file's units. Outside it a value is a typo or a unit slip (GB/s
# typed as TB/s), and far outside it the search's integer scales (ns, KiB, 1e-4 USD; planner/search/table.py)
# would overflow. The bounds sit orders of magnitude beyond every real part in catalog/accelerators.toml.
FIELD_RANGES: dict[str, tuple[float, float]] = {
    "memory_gib": (0.01, 100_000.0),
    "hbm_tb_s": (0.01, 1_000.0),
    "tflops": (1.0, 1_000_000.0),  # L4 is 121 TFLOP/s bf16; a CPU socket a few
    "domain_size": (1, 100_000),  # TPU v5p pods: 8960
    "gb_s": (0.01, 1_000_000.0),
    "gbit_s": (0.01, 10_000_000.0),
    "latency_us": (0.01, 100_000.0),
    # 1e-4 USD is the search's price unit; $100 is ~7x the dearest part listed (and keeps price x GPUs x TPOT in
    # the CP-SAT objective inside int64)
    "usd_per_hour": (1e-4, 100.0),
    "sm_count": (1, 100_000),
}
FAMILIES = ("ampere", "ada", "hopper", "blackwell", "cdna3", "tpu")
TOPOLOGIES = ("switch", "mesh", "torus", "pcie")


def _num(entry: Mapping[str, Any], key: str, where: str, positive: bool = True, kind: str | None = None) -> float:
    value = entry.get(key)
    if value is None:
        raise InputError(f"{where}: missing field {key!r}")
    if not is_number(value):
        raise InputError(f"{where}: field {key!r} must be a number, got {value!r}")
    if not math.isfinite(value) or (positive and value <= 0) or value < 0:
        raise InputError(f"{where}: field {key!r} must be a finite number {'> 0' if positive else '>= 0'}, "
                         f"got {value!r}")
    lo, hi = FIELD_RANGES.get(kind or key, (0.0, 1e12))
    if not lo <= value <= hi:
        raise InputError(f"{where}: field {key!r} = {value!r} is outside the plausible range {lo:g} to {hi:g}")
    return float(value)


def _text(entry: Mapping[str, Any], key: str, where: str, default: str) -> str:
    value = entry.get(key, default)
    if not isinstance(value, str):
        raise InputError(f"{where}: field {key!r} must be a string, got {value!r}")
    return check_text(value, f"{where}: field {key!r}")


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
    if aid is None or (isinstance(aid, str) and not aid.strip()):
        raise InputError(f"{where}: missing field 'id'")
    if not isinstance(aid, str):
        raise InputError(f"{where}: field 'id' must be a string, got {aid!r}")
    if base is None and not re.fullmatch(r"[a-z0-9][a-z0-9.-]*", aid.strip().lower()):
        raise InputError(f"{where}: id {aid!r} must be lowercase letters, digits, '.' and '-' (e.g. 'my-gpu-80gb')")
    where = f"{where} [{aid}]"

    def field_or_base(key: str, convert, base_value):
        if key in entry or base is None:
            return convert(_num(entry, key, where))
        return base_value

    memory = field_or_base("memory_gib", lambda v: v * GiB, base.memory_bytes if base else None)
    hbm = field_or_base("hbm_tb_s", lambda v: v * TB, base.hbm_bytes_per_s if base else None)
    if "tflops" in entry or base is None:
        tf = _table(entry, "tflops", where)
        dtypes = sorted(set(COMPUTE_DTYPE.values()))
        for k in tf:
            if k not in dtypes:
                raise InputError(f"{where} tflops: unknown dtype {k!r}{did_you_mean(k, dtypes)} "
                                 f"(known: {', '.join(dtypes)})")
        flops = {str(k): _num(tf, k, f"{where} tflops", kind="tflops") * TFLOP for k in tf}
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
        topo = _text(su, "topology", f"{where} scale_up", "switch")
        if topo not in TOPOLOGIES:
            raise InputError(f"{where} scale_up: field 'topology' must be one of {', '.join(TOPOLOGIES)}, "
                             f"got {topo!r}")
    else:
        domain, up_bw, topo = base.scale_up_domain, base.scale_up_bytes_per_s, base.scale_up_topology
    if "scale_out" in entry or base is None:
        so = _table(entry, "scale_out", where)
        out_bw = _num(so, "gbit_s", f"{where} scale_out") * Gbit
    else:
        out_bw = base.scale_out_bytes_per_s

    pcie = base.pcie if base else None
    if "pcie" in entry:
        pc = _table(entry, "pcie", where)
        per_node = _num(pc, "gpus_per_node", f"{where} pcie", kind="domain_size")
        if per_node != int(per_node):
            raise InputError(f"{where} pcie: field 'gpus_per_node' must be an integer, got {per_node!r}")
        pcie = PcieLink(int(per_node), _num(pc, "allreduce_gb_s", f"{where} pcie", kind="gb_s") * GB,
                        _num(pc, "latency_us", f"{where} pcie", kind="latency_us") * 1e-6)

    prices: dict[str, Price] = dict(base.prices) if base else {}
    raw_prices = entry.get("prices", {})
    if not isinstance(raw_prices, Mapping):
        raise InputError(f"{where}: [prices] must be a table of tiers")
    for t, p in raw_prices.items():
        if t not in PRICE_TIERS:
            raise InputError(f"{where}: unknown price tier {t!r} (tiers: {', '.join(PRICE_TIERS)})")
        if not isinstance(p, Mapping):
            raise InputError(f"{where}: prices.{t} must be a table with usd_per_hour")
        prices[t] = Price(_num(p, "usd_per_hour", f"{where} prices.{t}"), t, _text(p, "source", where, ""),
                          str(p.get("date", "")), _text(p, "provider", where, ""))
    if "usd_per_hour" in entry:  # shorthand for a user override: one price, any tier
        prices = {**prices, tier: Price(_num(entry, "usd_per_hour", where), tier, "user catalog", "")}
    if not prices:
        raise InputError(f"{where}: no price (add [accelerator.prices.{tier}] usd_per_hour)")
    # The requested tier if this part has one; otherwise the first tier it has, in PRICE_TIERS order.
    price = prices.get(tier) or next(prices[t] for t in PRICE_TIERS if t in prices)
    raw_aliases = entry.get("aliases", list(base.aliases) if base else [])
    if not isinstance(raw_aliases, list) or not all(isinstance(a, str) for a in raw_aliases):
        raise InputError(f"{where}: field 'aliases' must be a list of strings, got {raw_aliases!r}")
    aliases = tuple(check_text(a, f"{where}: field 'aliases'").lower() for a in raw_aliases)
    family = _text(entry, "family", where, base.family if base else "")
    if family and family not in FAMILIES:
        raise InputError(f"{where}: field 'family' must be one of {', '.join(FAMILIES)}, got {family!r}"
                         f"{did_you_mean(family, FAMILIES)}")
    if "sm_count" in entry:
        sm = _num(entry, "sm_count", where)
        if sm != int(sm):
            raise InputError(f"{where}: field 'sm_count' must be an integer, got {sm!r}")
        sm_count = int(sm)
    else:
        sm_count = base.sm_count if base else 0
    return Accelerator(
        id=aid.strip().lower(), name=_text(entry, "name", where, base.name if base else aid), memory_bytes=memory,
        hbm_bytes_per_s=hbm, flops_per_s=flops, scale_up_domain=int(domain), scale_up_bytes_per_s=up_bw,
        scale_out_bytes_per_s=out_bw, price=price, prices=prices, scale_up_topology=topo,
        vendor=_text(entry, "vendor", where, base.vendor if base else ""), aliases=aliases, pcie=pcie,
        family=family, sm_count=sm_count,
    )
