"""Percentile SLOs: the optimizer plans on steady averages; a tail target (p99 TTFT or TPOT) is confirmed by
simulating the chosen plan at its planned load (planner.sim) and backing off with more replicas until the
simulated percentile meets the target."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from ..errors import InfeasibleError, InputError
from .solve import SearchResult

CONFIRM_REQUESTS = 4000  # simulated requests per check: p99 rests on ~40 tail samples
CONFIRM_SEED = 0
MAX_BACKOFF_FACTOR = 8  # give up past 8x the planned replicas


@dataclass(frozen=True)
class PercentileTarget:
    ttft_p99_s: float | None = None
    tpot_p99_s: float | None = None

    @property
    def any(self) -> bool:
        return self.ttft_p99_s is not None or self.tpot_p99_s is not None


def _misses(sim: dict[str, Any], target: PercentileTarget) -> list[str]:
    out = []
    for name, want in (("ttft_s", target.ttft_p99_s), ("tpot_s", target.tpot_p99_s)):
        got = sim[name]["p99"]
        if want is not None and (got is None or got > want):
            out.append(f"{name[:4]} p99 {got if got is None else round(got * 1000, 1)} ms > {want * 1000:g} ms")
    return out


def confirm(result: SearchResult, plan_dict: dict[str, Any], target: PercentileTarget, catalog,
            requests: int = CONFIRM_REQUESTS, seed: int = CONFIRM_SEED) -> tuple[SearchResult, dict[str, Any]]:
    """Simulate at the plan's demand; add replicas (geometrically, then back down to the fewest that pass) until
    the p99 targets hold. Returns the (possibly) re-sized result and the record of the simulation."""
    from ..sim import simulate_plan

    req = result.request
    demand = req.workload.demand_output_tokens_per_s
    if demand is None:
        raise InputError("percentile SLOs (--ttft-p99-ms, --tpot-p99-ms) need a demand to simulate against: "
                         "give --rate-rps or --output-tokens-per-s")
    rate = demand / req.workload.osl
    base = result.best.replicas
    limit = req.gpu_limit(result.best.row.gpu)
    cap = base * MAX_BACKOFF_FACTOR
    if limit is not None:
        cap = min(cap, limit // result.best.row.gpus)

    def run(replicas: int) -> dict[str, Any]:
        return simulate_plan(plan_dict, rate_rps=rate, requests=requests, seed=seed, replicas=replicas,
                             ttft_slo_s=target.ttft_p99_s, tpot_slo_s=target.tpot_p99_s, catalog=catalog)

    tried: dict[int, dict[str, Any]] = {}
    r = base
    while True:
        tried[r] = run(r)
        if not _misses(tried[r], target):
            break
        if r >= cap:
            raise InfeasibleError([f"percentile SLO: simulated at {rate:.3g} req/s, {result.best.row.gpu.id} "
                                   f"with {r} replicas still misses: " + "; ".join(_misses(tried[r], target))
                                   + (f" (limit {limit} GPUs)" if limit is not None else "")])
        r = min(cap, max(r + 1, math.ceil(r * 1.25)))
    # the geometric step may overshoot: walk back to the fewest replicas that pass
    lo = max((k for k in tried if _misses(tried[k], target)), default=base - 1)
    for k in range(lo + 1, r):
        tried[k] = tried.get(k) or run(k)
        if not _misses(tried[k], target):
            r = k
            break
    sim = tried[r]
    best = replace(result.best, replicas=r)
    record = {
        "requests": requests, "seed": seed, "rate_rps": round(rate, 6), "replicas_planned": base, "replicas": r,
        "target": {"ttft_p99_s": target.ttft_p99_s, "tpot_p99_s": target.tpot_p99_s},
        "ttft_s": sim["ttft_s"], "tpot_s": sim["tpot_s"], "slo_attainment": sim["slo_attainment"],
    }
    return replace(result, best=best), record
