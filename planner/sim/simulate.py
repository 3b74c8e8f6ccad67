"""`simulate_plan()`: a plan in, simulated latency / throughput / queue / KV / SLO figures out."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..catalog import Catalog, load_catalog, load_model
from ..errors import InputError
from ..numbers import is_number, is_whole
from ..perf.estimate import Config, SpecDecode
from ..specs.model import ModelSpec
from ..specs.workload import Workload
from .fleet import run_fleet
from .metrics import r6, summarize
from .plan_input import PlanSpec, plan_from_dict
from .requests import Requests, load_trace, synthetic_requests
from .tables import StepTables, build_tables

DEFAULT_REQUESTS = 2000
# Static batching: how long the oldest queued request waits for a batch to fill before a partial batch starts.
# An assumption; under saturating load batches fill first, so the continuous-vs-static throughput comparison does
# not depend on it.
DEFAULT_STATIC_TIMEOUT_S = 0.1


def _resolve_model(name: str, base_dir: str | None) -> ModelSpec:
    if base_dir is not None and not Path(name).exists() and (Path(base_dir) / name).exists():
        return load_model(Path(base_dir) / name)
    return load_model(name)


def plan_tables(plan: PlanSpec, catalog: Catalog, max_ctx: int) -> StepTables:
    model = _resolve_model(plan.model, plan.base_dir)
    spec = None
    if plan.speculative is not None:
        s = plan.speculative
        spec = SpecDecode(_resolve_model(s.draft, plan.base_dir), s.gamma, s.alpha)
    cfg = Config(gpu=catalog.gpu(plan.gpu), tp=plan.tp, pp=plan.pp, ep=plan.ep, batch=plan.batch,
                 weights=plan.weights, kv=plan.kv, layers_per_stage=plan.layers_per_stage, spec=spec, dp=plan.dp)
    return build_tables(model, cfg, Workload(isl=plan.isl, osl=plan.osl), catalog.perf, max_ctx)


@dataclass(frozen=True)
class SimulationSettings:
    """How a plan is simulated (the `planner simulate` flags).

    Arrivals: a `trace` (file path or Requests), or a gamma process at `rate_rps` (default: the plan's
    workload.rate_rps; `burstiness` is its shape, 1 = Poisson) for `duration_s` seconds or `requests` requests
    (default 2000), with token lengths drawn around the plan's isl/osl (`lengths`: fixed | uniform | exponential),
    from `seed`. Serving: `batching` (continuous | static, a static batch starting after `static_timeout_s` when not
    full), `balancer` (least-loaded | round-robin), `replicas` (default: the plan's). Targets: `ttft_slo_s`,
    `tpot_slo_s` (default: the plan's). `series_points`: samples of the queue and KV series. `warmup_requests`: the
    first arrivals left out of the latency percentiles and SLO attainment (planner/sim/metrics.py)."""

    rate_rps: float | None = None
    duration_s: float | None = None
    requests: int | None = None
    trace: str | Path | Requests | None = None
    seed: int = 0
    lengths: str = "fixed"
    burstiness: float = 1.0
    batching: str = "continuous"
    balancer: str = "least-loaded"
    replicas: int | None = None
    ttft_slo_s: float | None = None
    tpot_slo_s: float | None = None
    static_timeout_s: float = DEFAULT_STATIC_TIMEOUT_S
    series_points: int = 60
    warmup_requests: int = 0

    def __post_init__(self) -> None:
        # the latency targets, given as `planner simulate --ttft-ms / --tpot-ms` (ms) or in s here: 0 or less is a typo
        for flag, v in (("--ttft-ms", self.ttft_slo_s), ("--tpot-ms", self.tpot_slo_s)):
            if v is not None and not (is_number(v) and v > 0):
                raise InputError(f"{flag} must be > 0, got {v * 1000:g}" if is_number(v) else
                                 f"{flag} must be a number > 0, got {v!r}")


def simulate_plan(plan: Mapping[str, Any] | PlanSpec, settings: SimulationSettings | None = None, *,
                  catalog: Catalog | str | Path | None = None, **options: Any) -> dict[str, Any]:
    """Simulate `plan` (a plan/estimate dict as `planner plan --json` / `planner estimate --json` emit, or a
    PlanSpec) under stochastic load with `settings`, any of whose fields `options` override by name
    (`simulate_plan(plan, seed=3, requests=500)`). Deterministic for a seed. Returns the JSON-ready summary
    described in planner/sim/metrics.py."""
    s = replace(settings or SimulationSettings(), **options)
    rate_rps, duration_s, requests, trace, seed = s.rate_rps, s.duration_s, s.requests, s.trace, s.seed
    lengths, burstiness, batching, balancer, replicas = s.lengths, s.burstiness, s.batching, s.balancer, s.replicas
    ttft_slo_s, tpot_slo_s, static_timeout_s, series_points = s.ttft_slo_s, s.tpot_slo_s, s.static_timeout_s, \
        s.series_points
    spec = plan if isinstance(plan, PlanSpec) else plan_from_dict(plan)
    cat = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
    if not is_whole(seed) or seed < 0:
        raise InputError(f"--seed must be a non-negative integer, got {seed!r}")
    if duration_s is not None and requests is not None:
        raise InputError("give either --duration-s or --requests, not both")
    if duration_s is not None and not duration_s > 0:
        raise InputError(f"--duration-s must be > 0, got {duration_s!r}")
    if requests is not None and (not is_whole(requests) or requests < 1):
        raise InputError(f"--requests must be a positive integer, got {requests!r}")
    warmup = s.warmup_requests
    if not is_whole(warmup) or warmup < 0:
        raise InputError(f"--warmup-requests must be a non-negative integer, got {warmup!r}")
    rng = np.random.default_rng(seed)
    if trace is not None:
        if rate_rps is not None:
            raise InputError("--rate-rps and --trace are exclusive: the trace gives the arrival times")
        reqs = trace if isinstance(trace, Requests) else load_trace(trace)
        keep = np.ones(len(reqs), bool)
        if duration_s is not None:
            keep &= reqs.arrival_s < duration_s
        if requests is not None:
            keep &= np.arange(len(reqs)) < requests
        reqs = Requests(reqs.arrival_s[keep], reqs.input_tokens[keep], reqs.output_tokens[keep])
        if not len(reqs):
            raise InputError("no trace request falls within --duration-s / --requests")
        source = {"trace": str(trace) if not isinstance(trace, Requests) else "<requests>"}
    else:
        rate = rate_rps if rate_rps is not None else spec.rate_rps
        if rate is None:
            raise InputError("no arrival rate: give --rate-rps (the plan's workload.rate_rps is null) or --trace")
        count = None if duration_s is not None else (requests or DEFAULT_REQUESTS)
        reqs = synthetic_requests(rng, rate_rps=float(rate), isl=spec.isl, osl=spec.osl, count=count,
                                  duration_s=duration_s, burstiness=burstiness, lengths=lengths)
        if not len(reqs):
            raise InputError(f"no request arrives within --duration-s {duration_s:g} at {rate:g} requests/s")
        source = {"rate_rps": float(rate), "burstiness": burstiness, "lengths": lengths}
    if warmup >= len(reqs):
        raise InputError(f"--warmup-requests {warmup} leaves none of the {len(reqs)} requests to measure")
    n_replicas = spec.replicas if replicas is None else replicas
    max_ctx = int((reqs.input_tokens + reqs.output_tokens).max())
    tables = plan_tables(spec, cat, max(max_ctx, spec.isl + spec.osl))
    too_long = reqs.input_tokens + reqs.output_tokens > tables.kv_capacity_tokens
    if too_long.all():
        where = source.get("trace", "every drawn request")
        raise InputError(f"{where}: all {len(reqs)} requests are longer than the plan's KV cache "
                         f"({tables.kv_capacity_tokens} tokens per replica): nothing to simulate")
    book, reps, rejected = run_fleet(reqs, tables, replicas=n_replicas, batching=batching, balancer=balancer,
                                     seed=seed, static_timeout_s=static_timeout_s)
    ttft_slo = ttft_slo_s if ttft_slo_s is not None else spec.ttft_slo_s
    tpot_slo = tpot_slo_s if tpot_slo_s is not None else spec.tpot_slo_s
    out = summarize(book, reps, rejected, kv_capacity_tokens=tables.kv_capacity_tokens, ttft_slo_s=ttft_slo,
                    tpot_slo_s=tpot_slo, series_points=series_points, slo_percentile=spec.slo_percentile,
                    warmup_requests=int(warmup))
    est = tables.estimate
    result = {
        "plan": {**spec.to_dict(), "replicas": n_replicas},
        "seed": seed,
        "batching": batching,
        "balancer": balancer,
        "arrivals": {**source, "requests": len(reqs),
                     "mean_input_tokens": r6(reqs.input_tokens.mean()),
                     "mean_output_tokens": r6(reqs.output_tokens.mean()),
                     "last_arrival_s": r6(reqs.arrival_s[-1])},
        **out,
        "estimate": {"ttft_s": r6(est.ttft_s), "tpot_s": r6(est.tpot_s), "decode_cycle_s": r6(est.decode_cycle_s),
                     "output_tokens_per_s_per_replica": r6(est.output_tokens_per_s), "max_batch": est.max_batch},
    }
    return result
