"""Percentile SLOs: a plan with a demand holds its TTFT and TPOT targets at a percentile (default the p99) when
`planner simulate` replays it at that demand (Poisson arrivals, the request's lengths, its seed).

1. The optimizer solves with the queueing bound (search/queueing.py: replicas per row meeting the TTFT
   percentile under an M/M/c-style wait).
2. The plan's engine concurrency is raised to the largest batch whose steady-state TPOT still meets the target
   on the same layout (`max_concurrency`): more slots shorten the queue at no cost.
3. The plan is simulated. One replica: exactly as `planner simulate PLAN.json` would (same requests, seed,
   lengths). Several replicas: ONE replica at its share of the demand, in steady state — CONFIRM_REQUESTS measured
   requests after a warm-up of WARMUP_FACTOR × the sequences it holds on average (Little's law, `mean_batch`) —
   rather than the whole fleet from empty. Under random routing a Poisson demand splits into independent Poisson
   streams of rate λ/R, so that replica is every replica; `planner simulate` balances least-loaded (which only
   shortens queues) and starts the fleet empty with its 2000 requests spread over R replicas (most of them in
   the warm-up), so it is no harder — tests/test_percentile_slo.py replays multi-replica plans that way. The cost
   no longer grows with the replica count (a 130-replica fleet with 2000-token outputs took minutes).
   If a percentile misses, the bound is tightened — a TTFT miss demands more replicas of that row, a TPOT miss a
   stricter TPOT for the optimizer and the concurrency — and the request is solved again, up to MAX_ROUNDS.
   A plan whose simulated percentile misses is never returned."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any

from ..errors import InfeasibleError
from ..numbers import covers
from ..perf.estimate import Config, Estimate, estimate
from ..perf.params import PerfParams
from ..specs.workload import SLO
from .queueing import QueueTarget, row_key
from .solve import Choice, SearchResult, search, verify

DEFAULT_SLO_PERCENTILE = 99.0
CONFIRM_SEED = 0  # `planner simulate`'s default seed, so that it reproduces the confirmation
MAX_ROUNDS = 6  # solve-simulate rounds before giving up
REPLICA_STEP = 1.25  # a TTFT miss asks the row for at least this factor more replicas (and at least one more)
TPOT_STEP = 0.95  # a TPOT miss tightens the optimizer's TPOT target by this factor
MEAN_BATCH_ITERATIONS = 20
CONFIRM_REQUESTS = 2000  # measured requests of a several-replica confirmation (simulate's default count)
WARMUP_FACTOR = 2  # warm-up arrivals per sequence the replica holds on average: about two request lifetimes
MAX_WARMUP_REQUESTS = 20_000
# The engine concurrency is raised at most to this many sequences per replica (never below the optimizer's batch):
# serving engines default far lower (vLLM's max_num_seqs 256–1024), and past it the simulator's per-concurrency
# tables grow without changing the answer (the demand keeps far fewer in flight).
MAX_CONCURRENCY = 2048


def check_percentile(p: Any) -> float:
    from ..errors import InputError

    if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) or not 50 <= p < 100:
        raise InputError(f"--slo-percentile must be a number from 50 to below 100, got {p!r}")
    return float(p)


def _workload(c: Choice) -> Any:
    return c.estimate.workload


def _estimate_at(model, c: Choice, batch: int, p: PerfParams) -> Estimate:
    r = c.row
    cfg = Config(gpu=r.gpu, tp=r.tp, pp=r.pp, ep=r.ep, batch=batch, weights=r.weights, kv=r.kv,
                 layers_per_stage=c.layers, dp=r.dp, spec=c.estimate.config.spec)
    return estimate(model, cfg, _workload(c), p)


def max_concurrency(model, c: Choice, tpot_s: float | None, p: PerfParams,
                    demand_tokens_per_s: float | None = None) -> Choice:
    """The same row and layers with the largest batch (a multiple of pp and of the attention-DP degree, within
    memory and MAX_CONCURRENCY) whose TPOT meets `tpot_s` and whose replicas still serve `demand_tokens_per_s`: the
    engine's maximum concurrent sequences. TPOT grows with the batch, so bisect (from the optimizer's batch, which
    meets both: the batch returned always does). Throughput need not grow with the batch (prefill stalls can grow
    faster: a MoE plan of the exact space whose replicas just cover the demand served less at a larger batch)."""
    pp, dp = c.row.pp, c.row.dp
    step = dp // math.gcd(pp, dp)  # micro-batches per unit: pp·k must be a multiple of dp
    lo = c.row.micro_batch // step  # meets the target (the optimizer chose it), in units of `step` micro-batches
    hi = max(lo, min(c.estimate.max_batch, MAX_CONCURRENCY) // (pp * step))

    def ok(j: int) -> bool:
        e = _estimate_at(model, c, pp * step * j, p)
        return (e.fits and (tpot_s is None or e.tpot_s <= tpot_s)
                and (demand_tokens_per_s is None or covers(c.replicas * e.output_tokens_per_s, demand_tokens_per_s)))

    if c.row.micro_batch % step or lo < 1:
        return c  # not on the lattice (cannot happen for a valid row): keep the optimizer's batch
    if ok(hi):
        lo = hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    if lo * step == c.row.micro_batch:
        return c
    est = _estimate_at(model, c, pp * step * lo, p)
    return replace(c, row=replace(c.row, micro_batch=step * lo), estimate=est)


def mean_batch(model, c: Choice, rate_rps: float, p: PerfParams) -> float:
    """Expected sequences in flight per replica at the demand (Little's law): N = λ/r · (TTFT + (OSL − 1)·TPOT(N)),
    iterated from the full batch (TPOT grows with N, so the iteration descends to the fixed point)."""
    lam = rate_rps / c.replicas
    osl = _workload(c).osl
    n = float(c.row.batch)
    for _ in range(MEAN_BATCH_ITERATIONS):
        unit = math.lcm(c.row.pp, c.row.dp)  # valid batches are multiples of pp and of the attention-DP degree
        e = _estimate_at(model, c, min(c.row.batch, unit * max(1, math.ceil(n / unit))), p)
        new = min(float(c.row.batch), lam * (e.ttft_s + (osl - 1) * e.tpot_s))
        if abs(new - n) < 1e-3:
            break
        n = new
    return n


def _misses(sim: dict[str, Any], slo: SLO, percentile: float) -> dict[str, str]:
    key = f"p{percentile:g}"
    out = {}
    for name, want in (("ttft", slo.ttft_s), ("tpot", slo.tpot_s)):
        got = sim[f"{name}_s"][key]
        if want is not None and (got is None or got > want):
            out[name] = (f"{name.upper()} {key} {'n/a' if got is None else f'{got * 1000:.1f} ms'} > "
                         f"{want * 1000:g} ms")
    return out


def confirmation(model, c: Choice, rate_rps: float, p: PerfParams, mean: float | None = None) -> dict[str, Any]:
    """What the confirming simulation of `c` at `rate_rps` runs (module docstring, step 3): the whole plan as
    `planner simulate` does when it has one replica, else one replica at its share after a warm-up (`mean`: the
    plan's `mean_batch` when the caller has it)."""
    from ..sim.simulate import DEFAULT_REQUESTS

    if c.replicas == 1:
        return {"simulated_replicas": 1, "rate_rps_per_replica": rate_rps, "requests": DEFAULT_REQUESTS,
                "warmup_requests": 0}
    mean = mean_batch(model, c, rate_rps, p) if mean is None else mean
    warmup = min(MAX_WARMUP_REQUESTS, WARMUP_FACTOR * math.ceil(mean))
    return {"simulated_replicas": 1, "rate_rps_per_replica": rate_rps / c.replicas, "requests": CONFIRM_REQUESTS,
            "warmup_requests": warmup}


@dataclass(frozen=True)
class Confirmed:
    # its stats' timing fields (wall, CP-SAT, table, bound, solves, rows examined) summed over every round's search
    result: SearchResult
    mean_batch: float
    simulation: dict[str, Any] | None  # None: not confirmed (plan_at_percentile's `skip`)
    simulation_s: float = 0.0  # the confirming simulations of every round (time.perf_counter around each)
    replays: int = 0  # simulations run (one per round)


def plan_at_percentile(req, perf: PerfParams, percentile: float, plan_dict, catalog,
                       seed: int = CONFIRM_SEED, skip=None) -> Confirmed:
    """Solve `req` (which has a demand) so that its SLOs hold at `percentile` in simulation. `plan_dict(result)`
    turns a search result into the plan JSON the simulator reads. `skip(objective)` (disagg.decide: a rival is
    strictly cheaper): when true for round 1's objective, round 1's plan is returned unconfirmed (`simulation`
    None, no replay) — confirming only tightens the search, so that objective is a lower bound on the confirmed
    plan's and the rival wins whatever the simulation would say."""
    from ..sim import simulate_plan

    w = req.workload
    rate = w.demand_output_tokens_per_s / w.osl
    extra: dict = {}  # queueing.row_key(row) -> at least this many replicas
    tpot_scale = 1.0
    history = []
    spent = {"wall_s": 0.0, "cp_sat_s": 0.0, "table_s": 0.0, "bound_s": 0.0, "solves": 0, "examined": 0}
    sim_s = 0.0
    for round_ in range(1, MAX_ROUNDS + 1):
        tpot = None if req.slo.tpot_s is None else req.slo.tpot_s * tpot_scale
        sub = replace(req, slo=SLO(ttft_s=req.slo.ttft_s, tpot_s=tpot))
        queue = None if req.slo.ttft_s is None else QueueTarget(percentile, req.slo.ttft_s, rate, dict(extra))
        res = search(sub, perf, queue=queue)
        for k in spent:  # what every round's search did (--timings): the last round's stats alone undercount it
            spent[k] += getattr(res.stats, k)
        best = max_concurrency(req.model, res.best, tpot, perf, w.demand_output_tokens_per_s)
        problems = verify(req, best)
        if problems:  # the concurrency search keeps every constraint, so this is a bug
            raise RuntimeError("plan at its maximum concurrency failed verification: " + "; ".join(problems))
        res = replace(res, request=req, best=best,
                      alternatives=tuple(best if a is res.best else a for a in res.alternatives))
        # the plan's mean batch: the warm-up of a several-replica confirmation, and the plan's `mean_batch` field
        # (one fixed-point iteration of estimates, computed once per round)
        mean = mean_batch(req.model, best, rate, perf) if best.replicas > 1 else None
        if round_ == 1 and skip is not None and skip(best.objective):
            res = replace(res, stats=replace(res.stats, **spent))
            return Confirmed(res, mean_batch(req.model, best, rate, perf) if mean is None else mean, None)
        how = confirmation(req.model, best, rate, perf, mean)
        began = time.perf_counter()
        sim = simulate_plan(plan_dict(res), rate_rps=how["rate_rps_per_replica"], replicas=1,
                            requests=how["requests"] + how["warmup_requests"],
                            warmup_requests=how["warmup_requests"], seed=seed, catalog=catalog)
        sim_s += time.perf_counter() - began
        misses = _misses(sim, req.slo, percentile)
        history.append({"round": round_, "gpu": best.row.gpu.id, "tp": best.row.tp, "pp": best.row.pp,
                        "batch": best.row.batch, "replicas": best.replicas,
                        "ttft_s": sim["ttft_s"], "tpot_s": sim["tpot_s"], "misses": sorted(misses.values())})
        if not misses:
            record = {
                "percentile": percentile, "seed": seed, "requests": how["requests"], "rate_rps": round(rate, 6),
                "arrivals": "poisson", "lengths": "fixed", "replicas": best.replicas, "batch": best.row.batch,
                "simulated_replicas": how["simulated_replicas"], "warmup_requests": how["warmup_requests"],
                "ttft_s": sim["ttft_s"], "tpot_s": sim["tpot_s"], "slo_attainment": sim["slo_attainment"],
                "rounds": round_,
            }
            res = replace(res, stats=replace(res.stats, **spent))
            return Confirmed(res, mean_batch(req.model, best, rate, perf) if mean is None else mean, record, sim_s,
                             round_)
        if "ttft" in misses:
            row = row_key(res.table.rows[res.index])  # the optimizer's row (max_concurrency raised best's batch)
            extra[row] = max(extra.get(row, 0), best.replicas + 1, math.ceil(best.replicas * REPLICA_STEP))
        if "tpot" in misses:
            tpot_scale *= TPOT_STEP
    last = history[-1]
    raise InfeasibleError([
        f"percentile SLO: after {MAX_ROUNDS} rounds of tightening, the best plan found ({last['gpu']} TP{last['tp']} "
        f"PP{last['pp']} batch {last['batch']} x{last['replicas']}) still misses at {rate:.3g} req/s in "
        f"simulation: " + "; ".join(last["misses"])])
