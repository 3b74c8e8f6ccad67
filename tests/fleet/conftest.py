"""Helpers for the fleet tests: synthetic integer fleet tables (small enough for the exhaustive oracle) and small
real requests (Llama-3.1-8B, one or two GPU types, one precision) that build in a fraction of a second."""
from __future__ import annotations

from functools import lru_cache

from planner.catalog import load_catalog
from planner.fleet.table import FleetTable
from planner.fleet.pools import Pool
from planner.search.space import Row

TYPES = ("h100-sxm", "a100-80gb")


@lru_cache(maxsize=None)
def _gpu(name: str):
    return load_catalog().gpu(name)


def pool(cls: int, role: str, gpu: str, gpus: int, capacity: int, kv: str = "fp8", latency_ns: int = 0,
         kv_ns: int = 0) -> Pool:
    """A synthetic pool: only its class, role, type, GPU count, capacity (and pairing times) matter to the model."""
    return Pool(cls, role, Row(_gpu(gpu), "fp8", kv, gpus, 1, 1, 1), (80,), capacity, latency_ns, 0, kv_ns)


def table(pools: list[Pool], demand: list[list[int]], od: dict[str, int], res: dict[str, int | None] | None = None,
          avail: dict[str, int | None] | None = None, budget_hour: int | None = None, budget_total: int | None = None,
          incompatible: list[tuple[int, int]] | None = None) -> FleetTable:
    """A FleetTable over synthetic pools, with the same replica bounds `fleet_table` derives."""
    types = sorted(od)
    res = res or {}
    avail = avail or {}
    bound = []
    for p in pools:
        m = -(-max(demand[p.cls]) // p.capacity)
        a = avail.get(p.gpu)
        bound.append(m if a is None else min(m, a // p.gpus))
    return FleetTable(pools=pools, hours=len(demand[0]), demand_1e6_rps=[tuple(d) for d in demand],
                      ttft_ns=[None] * len(demand), types=types, pool_type=[types.index(p.gpu) for p in pools],
                      on_demand_1e4_usd_per_gpu_h=[od[t] for t in types],
                      reserved_1e4_usd_per_gpu_h=[res.get(t) for t in types],
                      available_gpus=[avail.get(t) for t in types], budget_1e4_usd_per_h=budget_hour,
                      budget_1e4_usd=budget_total,
                      max_replicas=bound, incompatible=incompatible or [])


def small_request(classes: list[dict], gpus=("h100-sxm", "a100-80gb"), **top) -> dict:
    """A fleet request dict for Llama-3.1-8B at one precision (fast to tabulate)."""
    return {"model": "llama-3.1-8b", "gpus": None if gpus is None else list(gpus), "weights": ["fp8", "int8"], "kv": ["fp8"],
            "pp": [1, 2], "time_limit_s": 5, **top, "class": classes}


CHAT = {"name": "chat", "isl": 1000, "osl": 300, "ttft_ms": 500, "min_tokens_per_s_user": 50}
LONG = {"name": "long", "isl": 16000, "osl": 500, "ttft_ms": 5000, "min_tokens_per_s_user": 20}
