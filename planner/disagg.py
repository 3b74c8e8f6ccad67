"""Prefill/decode disaggregation in `plan`: a prefill pool and a decode pool, each with its own layout (possibly on
different GPU types), the prompt's KV cache sent between them over the scale-out NIC, compared with the best
colocated (aggregated) plan and chosen when cheaper (`--disagg auto|on|off`).

The pools are the fleet model's candidate pools (`fleet.pools.class_pools`, roles prefill and decode: integer
table, greedy placement, conservative rounding), paired when `fleet.pools.compatible` (same KV precision, prefill
latency + KV transfer within the TTFT limit). For a pair (p, d) with per-replica capacities c_p, c_d (requests/s,
rounded down) on g_p, g_d GPUs at π_p, π_d per GPU-hour:

- with a demand of D requests/s: n_p = ⌈D / c_p⌉, n_d = ⌈D / c_d⌉ replicas, cost n_p·g_p·π_p + n_d·g_d·π_d per hour;
- without one (full capacity): the integer pair (n_p, n_d) that minimizes the cost per output token
  (n_p·g_p·π_p + n_d·g_d·π_d) / (min(n_p·c_p, n_d·c_d) · OSL), i.e. the pools balanced so that neither idles
  more than integer replicas force; n_p and n_d each range up to MAX_POOL_REPLICAS (or the GPU limit), and of
  the pairs within NEAR_CHEAPEST_PERCENT of the cheapest the one with the fewest GPUs is the plan (larger pairs
  balance the two pools a fraction of a percent better, and without a demand there is nothing to fill them).

Both are integer objectives in the colocated search's units (`search.table.Limits.objective_unit`: 1e-4 USD per
hour with a demand, µUSD per million output tokens without), so the comparison is exact; the chosen pair is
re-estimated in floating point (`fleet.pools.estimate_pool`, `replica_requests_per_s`, `kv_transfer_s`) and
verified like a colocated plan.
The TTFT of a disaggregated plan = prefill latency + KV transfer (after the whole prefill, each GPU's share of the
prompt's KV over its own NIC, the busier side setting the pace: `fleet.pools.kv_transfer_ns`); its TPOT = the
decode cycle, with no prefill interference."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from .errors import InfeasibleError, InputError
from .fleet.pool_space import exact_pools, pool_request
from .fleet.pools import (CAP_UNITS_PER_RPS, Pool, class_pools, compatible, estimate_pool, pair_kv_transfer_s,
                          pool_kv_transfer_s, price_units, replica_requests_per_s)
from .numbers import covers, round6, within
from .perf.cost import all_tokens_basis, usd_per_million, usd_per_million_at
from .perf.estimate import Estimate
from .perf.params import PerfParams
from .perf.step import placement_dict
from .search.space import Request, pools_space
from .search.table import PRICE_UNITS_PER_USD, Limits
from .units import SECONDS_PER_HOUR

from .plan_request import DISAGG_MODES  # noqa: E402  (auto | on | off)
# Without a demand and without a GPU limit, each pool ranges over 1 … MAX_POOL_REPLICAS replicas when balancing
# the pair: integer rounding then leaves at most 1/64 of the smaller pool idle beyond the exact ratio.
MAX_POOL_REPLICAS = 64
# Without a demand, the disaggregated plan is the fewest-GPU balanced pair whose cost per output token is within
# this many percent of the cheapest pair's (see `best_pair`).
NEAR_CHEAPEST_PERCENT = 5
# objective without demand, µUSD per million output tokens = cost_units · _OBJ_NUM / (_OBJ_DEN · served_units · OSL)
# (cost in 1e-4 USD per hour, served in 1e-6 requests/s: 1e-4/3600 $/s over 1e-6·OSL tok/s, × 1e6 tok × 1e6 µ$)
_OBJ_NUM = 10**12 * CAP_UNITS_PER_RPS // PRICE_UNITS_PER_USD
_OBJ_DEN = SECONDS_PER_HOUR


def check_mode(mode: Any) -> str:
    m = "auto" if mode is None else mode
    if m not in DISAGG_MODES:
        raise InputError(f"--disagg must be one of {', '.join(DISAGG_MODES)}, got {mode!r}")
    return m


def _price_units(pool: Pool) -> int:
    """One GPU-hour of the pool's type in 1e-4 USD, rounded up (`fleet.pools.price_units`)."""
    return price_units(pool.row.gpu.usd_per_hour)


def pair_cost_units(p: Pool, d: Pool, n_p: int, n_d: int) -> int:
    """Price units per hour of n_p prefill and n_d decode replicas."""
    return n_p * p.gpus * _price_units(p) + n_d * d.gpus * _price_units(d)


def served_units(p: Pool, d: Pool, n_p: int, n_d: int) -> int:
    """Requests/s (× CAP_UNITS_PER_RPS) the pair serves: every prompt is prefilled once and decoded once, so the
    slower pool sets the pace (`fleet.pools.served`)."""
    return min(n_p * p.capacity, n_d * d.capacity)


def capacity_objective(p: Pool, d: Pool, n_p: int, n_d: int, osl: int) -> int:
    """µUSD per million output tokens at full capacity, rounded up (the colocated objective's unit)."""
    num = pair_cost_units(p, d, n_p, n_d) * _OBJ_NUM
    den = _OBJ_DEN * served_units(p, d, n_p, n_d) * osl
    return -(-num // den)


def balanced_sizes(p: Pool, d: Pool, max_p: int, max_d: int) -> list[tuple[int, int]]:
    """Candidate (n_p, n_d) for full capacity: for each count of one pool, the two counts of the other around the
    exact ratio c_p·n_p / c_d (more of it only idles; fewer starves the first). Within 1 … max of each."""
    out = set()
    for n_p in range(1, max_p + 1):
        lo = max(1, (n_p * p.capacity) // d.capacity)
        out.update((n_p, n) for n in (lo, lo + 1) if n <= max_d)
    for n_d in range(1, max_d + 1):
        lo = max(1, (n_d * d.capacity) // p.capacity)
        out.update((n, n_d) for n in (lo, lo + 1) if n <= max_p)
    return sorted(out)


def demand_sizes(p: Pool, d: Pool, demand_units: int) -> tuple[int, int]:
    """(⌈D / c_p⌉, ⌈D / c_d⌉): the fewest replicas of each pool serving the demand."""
    return -(-demand_units // p.capacity), -(-demand_units // d.capacity)


@dataclass(frozen=True)
class PoolPlan:
    """One pool of a disaggregated plan: its candidate pool (layout, integer terms), replica count, and the
    floating-point estimate of one replica."""

    pool: Pool
    replicas: int
    estimate: Estimate
    requests_per_s: float  # one replica, floating point (`fleet.pools.replica_requests_per_s`)

    @property
    def role(self) -> str:
        return self.pool.role

    @property
    def gpus(self) -> int:
        return self.replicas * self.pool.gpus

    @property
    def usd_per_hour(self) -> float:
        return self.replicas * self.estimate.usd_per_hour

    def to_dict(self) -> dict[str, Any]:
        r, e = self.pool.row, self.estimate
        return {
            "role": self.role, "gpu": r.gpu.id, "weights": r.weights, "kv": r.kv,
            "tp": r.tp, "dp": r.dp, "pp": r.pp, "ep": r.ep,
            # concurrent sequences per replica: one prompt per DP group per micro-batch (prefill), the decode batch
            "batch": r.pp * r.dp if self.role == "prefill" else r.batch,
            "micro_batch": r.dp if self.role == "prefill" else r.micro_batch,
            "layers_per_stage": list(self.pool.layers), "replicas": self.replicas,
            "gpus_per_replica": r.gpus, "gpus": self.gpus,
            "requests_per_s_per_replica": round6(self.requests_per_s),
            "latency_s": round6(e.ttft_s if self.role == "prefill" else e.decode_cycle_s),
            "usd_per_hour": round6(self.usd_per_hour),
            "memory_per_gpu_bytes": e.to_dict()["memory_per_gpu_bytes"],
        }


@dataclass(frozen=True)
class DisaggChoice:
    prefill: PoolPlan
    decode: PoolPlan
    kv_transfer_s: float  # one prompt's KV cache, the slower side's busiest GPU over its NIC (pair_kv_transfer_s)
    objective: int  # in the colocated search's unit (search.table.Limits.objective_unit)
    osl: int
    isl: int
    pools: int = 0  # candidate prefill and decode pools
    pairs: int = 0  # sized pairs evaluated
    wall_s: float = 0.0

    @property
    def ttft_s(self) -> float:
        return self.prefill.estimate.ttft_s + self.kv_transfer_s

    @property
    def tpot_s(self) -> float:
        return self.decode.estimate.decode_cycle_s

    @property
    def requests_per_s(self) -> float:
        """What the pair serves in floating point: the slower pool's capacity."""
        return min(self.prefill.replicas * self.prefill.requests_per_s,
                   self.decode.replicas * self.decode.requests_per_s)

    @property
    def output_tokens_per_s(self) -> float:
        return self.requests_per_s * self.osl

    @property
    def total_gpus(self) -> int:
        return self.prefill.gpus + self.decode.gpus

    @property
    def usd_per_hour(self) -> float:
        return self.prefill.usd_per_hour + self.decode.usd_per_hour

    def usd_per_million_output_tokens(self, demand_tokens_per_s: float | None) -> float:
        return usd_per_million_at(self.usd_per_hour, demand_tokens_per_s or self.output_tokens_per_s)

    def marginal_usd_per_million(self) -> tuple[float, float]:
        """($/M input tokens, $/M output tokens): the prefill pool's cost per prompt token and the decode pool's
        per output token, each replica at full load."""
        p, d = self.prefill, self.decode
        return (usd_per_million(p.estimate.usd_per_hour / SECONDS_PER_HOUR, p.requests_per_s * self.isl),
                usd_per_million(d.estimate.usd_per_hour / SECONDS_PER_HOUR, d.requests_per_s * self.osl))


def pool_metrics(model: Any, e: Estimate, role: str, p: PerfParams) -> dict[str, Any]:
    """One replica of `e`'s configuration as a pool of a disaggregated plan (`planner estimate --role`): a prefill
    replica's prompts/s (DP / (slowest prefill stage + hop), `fleet.pools.prefill_period_s`), its prompt latency
    and $ per million input tokens; a decode replica's decode cycle (TPOT with no prefill in its steps),
    requests/s = B / (cycle · OSL) and $ per million output tokens; and the prompt's KV transfer over the GPU's NIC.
    For a prefill replica the batch is the prompts in flight, one per DP group per stage: pp × dp."""
    from .search.space import Row

    c, w = e.config, e.workload
    if role not in ("prefill", "decode"):
        raise InputError(f"--role must be prefill or decode, got {role!r}")
    if role == "prefill" and c.batch != c.pp * c.dp:
        raise InputError(f"--role prefill: --batch must be pp x dp = {c.pp * c.dp} (one prompt per attention-DP "
                         f"group in each pipeline stage), got {c.batch}")
    row = Row(c.gpu, c.weights, c.kv, c.tp, c.pp, c.ep, c.batch // c.pp, c.dp)
    pool = Pool(0, role, row, tuple(e.layers_per_stage), 0, 0, 0, 0)
    rps = replica_requests_per_s(model, pool, w, e, p)
    out = {"role": role, "requests_per_s": round6(rps),
           "kv_transfer_s": round6(pool_kv_transfer_s(model, pool, w.isl, p))}
    usd_per_s = e.usd_per_hour / SECONDS_PER_HOUR
    if role == "prefill":
        out.update(latency_s=round6(e.ttft_s), usd_per_million_input_tokens=round6(usd_per_million(usd_per_s,
                                                                                                   rps * w.isl)))
    else:
        out.update(tpot_s=round6(e.decode_cycle_s),
                   usd_per_million_output_tokens=round6(usd_per_million(usd_per_s, rps * w.osl)))
    return out


def candidate_pools(req: Request, p: PerfParams) -> list[Pool]:
    """The non-dominated prefill and decode pools of the request (`fleet.pools.class_pools`)."""
    limits = {g.id: req.gpu_limit(g) for g in req.gpus if req.gpu_limit(g) is not None}
    grid = req.grid()
    if _exact(req):  # every micro-batch memory allows (fleet/pool_space.py), on the grid's PP and TP
        return exact_pools(0, pool_request(req.model, req.workload, req.slo, req.gpus, weights=req.weights,
                                           kv=req.kv, pp=grid.pp, tp=grid.tp, max_gpus_per_type=limits,
                                           engine=req.engine), p, ("prefill", "decode"))
    return class_pools(0, req.model, req.workload, req.slo, req.gpus, p, roles=("prefill", "decode"),
                       weights=req.weights, kv=req.kv, pp=grid.pp, micro_batches=grid.micro_batches, tp=req.tp,
                       max_gpus_per_type=limits, engine=req.engine)


def demand_units_of(req: Request) -> int | None:
    """The request's demand in requests/s × CAP_UNITS_PER_RPS, rounded up (None: none): what `best_pair` sizes
    pairs for."""
    demand = req.workload.demand_output_tokens_per_s
    if demand is None:
        return None
    return -(-round(demand / req.workload.osl * CAP_UNITS_PER_RPS * 10**3) // 10**3)


def pair_unit_cap(req: Request, objective: int) -> float:
    """T for `fleet.pool_space.exact_pools`' `unit_cost_cap`: the largest pair bound u_p + u_d (price units per
    hour over capacity units, as `best_pair` visits pairs) that `best_pair` may still evaluate when some pair
    reaches `objective`: near(objective) over the bound's scale, with a relative margin (1e-6) above best_pair's
    own (1e-9) for the floating point."""
    osl = req.workload.osl
    demand_units = demand_units_of(req)
    scale = _OBJ_NUM / (_OBJ_DEN * osl) if demand_units is None else float(demand_units)
    return _near(objective, demand_units) / scale * (1 + 1e-6)


def exact_space_pools(req: Request, p: PerfParams) -> list[Pool]:
    """The prefill and decode pools over every PP depth and TP degree (`pool_request(pp=None, tp=None)`; pinned TP
    or PP degrees hold), every micro-batch memory allows, pruned by the pair bound (`exact_pools`' cap_from) under
    an incumbent: the best pair of the pools of the few shapes of least bound (`pool_space._Priced.seed`), or,
    where those pair with none, the grid's (the grid's rows are rows of the exact space too); either objective is
    at least the exact optimum's. See benchmarks/plan_matrix/RESULTS.md, Session 16 (pools)."""
    def cap_from(seed: list[Pool]) -> float | None:
        found = best_pair(req, seed, p.max_batch)[0] or best_pair(req, candidate_pools(req, p), p.max_batch)[0]
        return None if found is None else pair_unit_cap(req, found[4])

    limits = {g.id: req.gpu_limit(g) for g in req.gpus if req.gpu_limit(g) is not None}
    return exact_pools(0, pool_request(req.model, req.workload, req.slo, req.gpus, weights=req.weights, kv=req.kv,
                                       pp=req.pp, tp=req.tp, max_gpus_per_type=limits, engine=req.engine), p,
                       ("prefill", "decode"), cap_from=cap_from, demand_units=demand_units_of(req))


def _exact(req: Request) -> bool:
    """Do the pools search every micro-batch (no pinned micro-batches or batches)?"""
    return req.micro_batches is None and req.batches is None


def _max_replicas(limit: int | None, pool: Pool) -> int:
    return MAX_POOL_REPLICAS if limit is None else min(MAX_POOL_REPLICAS, limit // pool.gpus)


def best_pair(req: Request, pools: list[Pool], max_batch: int) -> tuple[tuple[Pool, Pool, int, int, int] | None, int]:
    """The cheapest (prefill pool, decode pool, n_p, n_d, objective), ties to fewer GPUs then the pools' order;
    and how many sized pairs were evaluated.

    Pairs are visited by a lower bound on their objective, the cost of serving one request/s continuously:
    g_p·π_p / c_p + g_d·π_d / c_d (any integer sizes cost at least that per request/s they serve, since
    served ≤ n_p·c_p and served ≤ n_d·c_d), and the visit stops once that bound exceeds the best objective found."""
    lim = Limits.of(req, max_batch)
    osl = req.workload.osl
    demand_units = demand_units_of(req)
    limit_of = {g.id: req.gpu_limit(g) for g in req.gpus}
    pre = [x for x in pools if x.role == "prefill"]
    dec = [x for x in pools if x.role == "decode"]

    def within(a: Pool, d: Pool, n_p: int, n_d: int) -> bool:
        gp, gd = n_p * a.gpus, n_d * d.gpus
        if req.max_gpus is not None and gp + gd > req.max_gpus:
            return False
        if a.gpu == d.gpu:
            return limit_of[a.gpu] is None or gp + gd <= limit_of[a.gpu]
        return ((limit_of[a.gpu] is None or gp <= limit_of[a.gpu])
                and (limit_of[d.gpu] is None or gd <= limit_of[d.gpu]))

    # per request/s: price units per hour over capacity units, and the factor that makes it the objective's unit
    scale = _OBJ_NUM / (_OBJ_DEN * osl) if demand_units is None else float(demand_units)
    visits = sorted((a.gpus * _price_units(a) / a.capacity + d.gpus * _price_units(d) / d.capacity, i, j)
                    for i, a in enumerate(pre) for j, d in enumerate(dec) if compatible(a, d, lim.ttft_ns))
    best, best_key, evaluated = None, None, 0
    small = []  # without a demand: every evaluated pair, for the fewest-GPU pair near the cheapest (below)
    for bound, i, j in visits:
        if best_key is not None and bound * scale > _near(best_key[0], demand_units) * (1 + 1e-9):
            break
        a, d = pre[i], dec[j]
        if demand_units is None:
            sizes = balanced_sizes(a, d, _max_replicas(limit_of[a.gpu], a), _max_replicas(limit_of[d.gpu], d))
        else:
            sizes = [demand_sizes(a, d, demand_units)]
        for n_p, n_d in sizes:
            if not within(a, d, n_p, n_d):
                continue
            evaluated += 1
            obj = (capacity_objective(a, d, n_p, n_d, osl) if demand_units is None
                   else pair_cost_units(a, d, n_p, n_d))
            key = (obj, n_p * a.gpus + n_d * d.gpus, i, j)
            if best_key is None or key < best_key:
                best, best_key = (a, d, n_p, n_d, obj), key
            if demand_units is None:
                small.append((key[1], obj, i, j, (a, d, n_p, n_d, obj)))
    if best_key is not None and demand_units is None:
        # Balancing two pools at full capacity rewards ever larger pairs by small fractions (62 + 25 replicas,
        # 896 GPUs, for the 1.8T MoE, 0.12 % below a 72-GPU pair; 156 B200s for DeepSeek-V3, 0.4 % below 32):
        # without a demand to fill them, the plan is the pair with the fewest GPUs whose cost per token is within
        # NEAR_CHEAPEST_PERCENT of the cheapest.
        cap = _near(best_key[0], None)
        best = min(x for x in small if x[1] <= cap)[4]
    return best, evaluated


def _near(objective: int, demand_units: int | None) -> int:
    """The largest objective counted as near `objective`: NEAR_CHEAPEST above it without a demand (pair sizes at
    full capacity), the objective itself with one (the demand fixes the sizes)."""
    return objective if demand_units is not None else objective + objective * NEAR_CHEAPEST_PERCENT // 100


def verify(req: Request, c: DisaggChoice) -> list[str]:
    """Independent floating-point check of a disaggregated plan (as `search.solve.verify`)."""
    problems = []
    for pp in (c.prefill, c.decode):
        if not pp.estimate.fits:
            problems.append(f"{pp.role} memory: " + "; ".join(pp.estimate.messages))
    if req.slo.tpot_s is not None and not within(c.tpot_s, req.slo.tpot_s):
        problems.append(f"tpot {c.tpot_s:.6g} s > {req.slo.tpot_s:.6g} s")
    if req.slo.ttft_s is not None and not within(c.ttft_s, req.slo.ttft_s):
        problems.append(f"ttft {c.ttft_s:.6g} s > {req.slo.ttft_s:.6g} s")
    demand = req.workload.demand_output_tokens_per_s
    if demand is not None and not covers(c.output_tokens_per_s, demand):
        problems.append(f"throughput {c.output_tokens_per_s:.6g} < demand {demand:.6g} tok/s")
    for pp in (c.prefill, c.decode):
        if sum(pp.pool.layers) != req.model.num_layers:
            problems.append(f"{pp.role} layers do not sum to the model's")
    return problems


def search_disagg(req: Request, p: PerfParams) -> tuple[DisaggChoice | None, str]:
    """The cheapest disaggregated plan, or None and the reason there is none."""
    started = time.perf_counter()
    # --pool-space exact: every PP and TP the pins leave open (pinned batches keep the grid's pools, pools_space)
    pools = exact_space_pools(req, p) if req.pool_space == "exact" and _exact(req) else candidate_pools(req, p)
    if not any(x.role == "prefill" for x in pools):
        return None, ("no prefill pool fits in memory with its prompt's KV transfer inside the TTFT limit"
                      if req.slo.ttft_s is not None else "no prefill pool fits in memory")
    if not any(x.role == "decode" for x in pools):
        return None, "no decode pool meets the TPOT limit in memory"
    found, evaluated = best_pair(req, pools, p.max_batch)
    if found is None:
        return None, "no prefill and decode pools pair within the TTFT and GPU limits"
    a, d, n_p, n_d, obj = found
    w = req.workload
    plans = []
    for pool, n in ((a, n_p), (d, n_d)):
        e = estimate_pool(req.model, pool, w, p)
        plans.append(PoolPlan(pool, n, e, replica_requests_per_s(req.model, pool, w, e, p)))
    kv_s = pair_kv_transfer_s(req.model, a, d, w.isl, p)
    c = DisaggChoice(plans[0], plans[1], kv_s, obj, w.osl, w.isl, len(pools), evaluated,
                     time.perf_counter() - started)
    problems = verify(req, c)
    if problems:  # the pools' integer terms round conservatively, so this is a bug, never a user error
        raise RuntimeError("disaggregated plan failed verification: " + "; ".join(problems))
    return c, ""


@dataclass(frozen=True)
class Outcome:
    """What `plan` decided about disaggregation, and why."""

    mode: str  # auto | on | off
    request: Request
    choice: DisaggChoice | None  # the best disaggregated plan (None: none is feasible)
    chosen: bool
    colocated_objective: int | None  # None: no colocated plan is feasible
    colocated_usd_per_million: float | None
    reason: str
    percentile: float | None = None
    timings: bool = False
    simulation: dict[str, Any] | None = None  # with a demand: the confirming simulation of the pair (`confirm`)
    # seconds of `decide`'s phases (time.perf_counter where each ran; the plan JSON's `solver` with --timings): the
    # colocated plan (its search and confirmation), the pools (search_disagg), the pair's confirmation (`confirm`,
    # `replays` simulations)
    colocated_s: float = 0.0
    pools_s: float = 0.0
    simulation_s: float = 0.0
    replays: int = 0

    def summary(self) -> dict[str, Any]:
        """The plan JSON's `disaggregation` block."""
        c = self.choice
        demand = self.request.workload.demand_output_tokens_per_s
        return {
            "mode": self.mode, "chosen": "disaggregated" if self.chosen else "aggregated",
            "basis": "demand" if demand else "capacity",
            "colocated_usd_per_million_output_tokens": (None if self.colocated_usd_per_million is None
                                                        else round6(self.colocated_usd_per_million)),
            "disaggregated_usd_per_million_output_tokens": (None if c is None
                                                            else round6(c.usd_per_million_output_tokens(demand))),
            "reason": self.reason,
            **({} if self.simulation is None else {"simulation": self.simulation}),
        }


# With a demand, the sized pair is replayed at the demand (sim/disagg.py, as `planner simulate` would) and a pool
# gains a replica while its percentile misses (TTFT: prefill, TPOT: decode), at most this many times.
MAX_CONFIRM_ROUNDS = 8


def confirm(req: Request, c: DisaggChoice, percentile: float, catalog: Any, seed: int | None = None
            ) -> tuple[DisaggChoice | None, dict[str, Any] | None, str]:
    """The pair grown until its simulation at the demand meets the SLOs at `percentile`, the last simulation's
    summary, and why it failed (None, summary, reason) when the GPU limits or MAX_CONFIRM_ROUNDS stop it."""
    from dataclasses import replace

    from .search.percentile import CONFIRM_SEED
    from .sim.disagg import simulate_disaggregated
    from .sim.metrics import percentile_key
    from .sim.simulate import DEFAULT_REQUESTS

    seed = CONFIRM_SEED if seed is None else seed
    rate = req.workload.demand_output_tokens_per_s / req.workload.osl
    key = percentile_key(percentile)
    limit_of = {g.id: req.gpu_limit(g) for g in req.gpus}
    summary = None
    for rounds in range(MAX_CONFIRM_ROUNDS + 1):
        d = plan_dict(Outcome("on", req, c, True, None, None, "", percentile), 1)
        sim = simulate_disaggregated(d, rate_rps=rate, requests=DEFAULT_REQUESTS, seed=seed, catalog=catalog)
        ttft, tpot = sim["ttft_s"][key], sim["tpot_s"][key]
        summary = {"percentile": percentile, "seed": seed, "requests": DEFAULT_REQUESTS, "rate_rps": round6(rate),
                   "ttft_s": ttft, "tpot_s": tpot, "rounds": rounds,
                   "replicas": {"prefill": c.prefill.replicas, "decode": c.decode.replicas}}
        miss_ttft = req.slo.ttft_s is not None and ttft is not None and not within(ttft, req.slo.ttft_s)
        miss_tpot = req.slo.tpot_s is not None and tpot is not None and not within(tpot, req.slo.tpot_s)
        if not (miss_ttft or miss_tpot):
            return c, summary, ""
        if rounds == MAX_CONFIRM_ROUNDS:
            break
        grow = {"prefill": c.prefill.replicas + miss_ttft, "decode": c.decode.replicas + miss_tpot}
        used: dict[str, int] = {}
        for pp in (c.prefill, c.decode):
            used[pp.pool.gpu] = used.get(pp.pool.gpu, 0) + grow[pp.role] * pp.pool.gpus
        if (req.max_gpus is not None and sum(used.values()) > req.max_gpus) or any(
                limit_of[g] is not None and n > limit_of[g] for g, n in used.items()):
            return None, summary, (f"its simulation at the demand misses the p{percentile:g} "
                                   f"{'TTFT' if miss_ttft else 'TPOT'} and the GPU limits leave no room to grow")
        pre, dec = replace(c.prefill, replicas=grow["prefill"]), replace(c.decode, replicas=grow["decode"])
        c = replace(c, prefill=pre, decode=dec,
                    objective=pair_cost_units(pre.pool, dec.pool, pre.replicas, dec.replicas))
    return None, summary, f"its simulation still misses the p{percentile:g} SLOs after {MAX_CONFIRM_ROUNDS} rounds"


def decide(req: Request, p: PerfParams, mode: str, colocated: Callable[[], Any], percentile: float | None,
           timings: bool, catalog: Any = None, seed: int | None = None) -> tuple[Any, Outcome]:
    """The colocated plan (`colocated(skip)`: a `planner.plan.Plan`, or InfeasibleError) compared with the best
    disaggregated plan under `mode`: returns (the colocated plan or None, the `Outcome`); `Plan.disagg` carries
    the outcome. With a demand the pair is searched and confirmed by simulation (`confirm`) first, and the
    colocated plan is left unconfirmed (`skip`: search/percentile.plan_at_percentile) when the confirmed pair is
    strictly cheaper than its first round: confirming only raises the colocated cost, so the pair is chosen either
    way, and the colocated figures printed are that first round's (the confirmed plan's whenever its first
    simulation would have passed; else a lower bound on it)."""
    demand = req.workload.demand_output_tokens_per_s
    began = time.perf_counter()  # each phase's seconds (--timings: the plan's `solver`), measured here
    choice, why_none = search_disagg(req, p)
    spent = {"pools_s": time.perf_counter() - began}
    simulation = None
    if choice is not None and demand is not None:
        began = time.perf_counter()
        choice, simulation, why_none = confirm(req, choice, 99.0 if percentile is None else percentile, catalog, seed)
        spent.update(simulation_s=time.perf_counter() - began, replays=simulation["rounds"] + 1)
    plan, err = None, None
    began = time.perf_counter()
    try:
        plan = colocated() if choice is None or demand is None else colocated(lambda c0: choice.objective < c0)
    except InfeasibleError as e:
        err = e
    spent["colocated_s"] = time.perf_counter() - began
    col_obj = None if plan is None else plan.best.objective
    col_usd = None if plan is None else plan.best.usd_per_million_output_tokens(demand)
    basis = "at the demand" if demand else "at full capacity"
    if choice is None:
        if mode == "on":
            raise InfeasibleError(([] if err is None else list(err.reasons)) + [f"disaggregated: {why_none}"])
        if plan is None:  # auto: the colocated reasons, as without disaggregation
            raise err
        return plan, Outcome(mode, req, None, False, col_obj, col_usd, f"no disaggregated plan: {why_none}",
                             percentile, timings, simulation, **spent)
    dis_usd = choice.usd_per_million_output_tokens(demand)
    if plan is None:
        chosen, reason = True, f"no colocated plan is feasible; disaggregated ${dis_usd:.3f}/M output tokens {basis}"
    else:
        cheaper = choice.objective < col_obj
        chosen = mode == "on" or cheaper
        cmp = "cheaper than" if cheaper else ("as costly as" if choice.objective == col_obj else "dearer than")
        reason = (f"disaggregated ${dis_usd:.3f}/M output tokens {basis} is {cmp} colocated ${col_usd:.3f}/M"
                  + ("" if chosen == cheaper else " (--disagg on)")
                  + f"; decode cycle {choice.tpot_s * 1e3:.1f} ms without prefill stalls vs colocated TPOT "
                  f"{plan.best.estimate.tpot_s * 1e3:.1f} ms, TTFT {choice.ttft_s * 1e3:.0f} ms incl. "
                  f"{choice.kv_transfer_s * 1e3:.1f} ms KV transfer")
    return plan, Outcome(mode, req, choice, chosen, col_obj, col_usd, reason, percentile, timings, simulation, **spent)


# ---- plan JSON of a disaggregated plan -------------------------------------------------------------------------
def _binding(req: Request, c: DisaggChoice) -> list[dict[str, Any]]:
    """The plan's constraints (`explain.plan_constraints`), memory at the more loaded pool's GPU, GPUs of both pools
    against --max-gpus."""
    from .explain import plan_constraints

    worst = max((c.prefill, c.decode), key=lambda x: x.estimate.memory["total"] / x.estimate.memory["capacity"])
    return plan_constraints(req, tpot_s=c.tpot_s, ttft_s=c.ttft_s, memory=worst.estimate.memory,
                            output_tokens_per_s=c.output_tokens_per_s, gpus=c.total_gpus, gpu_limit=req.max_gpus)


def _serving_engine(req: Request, c: DisaggChoice) -> dict[str, Any]:
    """`engines.serving_engine` of the decode pool, narrowed to the engines that run both pools."""
    from .engines import ENGINE_NAMES, engines_for, serving_engine, version

    rows = [x.pool.row for x in (c.prefill, c.decode)]
    both = [e for e in engines_for(rows[1].gpu.id, rows[1].weights, rows[1].kv, rows[1].tp, rows[1].pp, rows[1].ep,
                                   rows[1].dp)
            if e in engines_for(rows[0].gpu.id, rows[0].weights, rows[0].kv, rows[0].tp, rows[0].pp, rows[0].ep,
                                rows[0].dp)]
    r = rows[1]
    out = serving_engine(req.engine, r.gpu.id, r.weights, r.kv, r.tp, r.pp, r.ep, r.dp)
    out["engines_that_run_it"] = both
    if req.engine is None and both and out["id"] not in both:
        out.update(id=both[0], name=ENGINE_NAMES[both[0]], version=version(both[0]))
    return out


def _decode_batch_limited_by(req: Request, r, e: Estimate) -> str:
    """Why the decode pool runs no larger batch: the next micro-batch (of the exact space: + DP; of the grid: its
    next value) does not fit in memory, or is not there, or (the decode pools kept are the most capacity per GPU
    meeting the TPOT limit) is too slow."""
    from .search.space import DEFAULT_MICRO_BATCHES

    nxt = ([r.micro_batch + r.dp] if _exact(req) else
           [m for m in DEFAULT_MICRO_BATCHES if m > r.micro_batch and m % r.dp == 0])
    if not nxt:
        return "max_batch"
    return "memory" if r.pp * nxt[0] > e.max_batch else "tpot"


def plan_dict(out: Outcome, schema_version: int) -> dict[str, Any]:
    """The plan JSON of a chosen disaggregated plan. The top-level layout fields describe the decode pool (the
    replicas that produce the output tokens: batch, TPOT, memory); totals, metrics and cost cover both pools;
    `pools` holds each pool's layout and `kv_transfer_s` the prompt's KV transfer counted in the TTFT."""
    req, c = out.request, out.choice
    d, e, r = c.decode, c.decode.estimate, c.decode.pool.row
    w = req.workload
    demand = w.demand_output_tokens_per_s
    served = demand or c.output_tokens_per_s
    ed = e.to_dict()
    tpot = c.tpot_s
    gpu = r.gpu
    objective_unit = ("1e-6 USD per million output tokens" if demand is None
                      else f"{1 / PRICE_UNITS_PER_USD:g} USD per hour")
    solver: dict[str, Any] = {
        # every pair of the fleet model's non-dominated prefill and decode pools, each size, enumerated exactly
        "engine": "enumeration", "status": "OPTIMAL", "gap": 0.0, "objective": c.objective,
        "objective_unit": objective_unit,
        # rows: candidate pools (each with its greedy placement); placements: sized pairs evaluated
        "candidates": {"rows": c.pools, "placements": c.pairs, "rows_after_bounds": c.pools},
        # the pools' rows: every PP depth and TP degree the pins leave open (exact_space_pools, the default) or the
        # grid's (candidate_pools: --pool-space grid, or pinned batches), each micro-batch memory allows (none
        # pinned) or the grid's; the pair is proven optimal over that space
        "space": pools_space(req),
        "time_limit_s": req.time_limit_s, "workers": 1, "seed": 0,
    }
    if out.timings:
        solver["wall_s"] = round(c.wall_s, 4)
    prices = {x.pool.row.gpu.id: x.pool.row.gpu for x in (c.prefill, c.decode)}
    return {
        "schema_version": schema_version,
        "model": req.model.name,
        "gpu": gpu.id,
        "gpu_name": gpu.name,
        "parallelism": {"tp": r.tp, "dp": r.dp, "pp": r.pp, "ep": r.ep, "replicas": d.replicas},
        "gpus_per_replica": r.gpus,
        "total_gpus": c.total_gpus,
        "batch": r.batch,
        "micro_batch": r.micro_batch,
        "precision": {"weights": r.weights, "kv": r.kv},
        "placement": placement_dict(req.model, d.pool.layers),
        "workload": {"isl": w.isl, "osl": w.osl, "rate_rps": w.rate_rps, "output_tokens_per_s": demand,
                     "max_model_len": w.engine_max_len(req.model)},
        "slo": {"ttft_s": req.slo.ttft_s, "tpot_s": req.slo.tpot_s, "percentile": out.percentile},
        "mean_batch": None,
        "memory_per_gpu_bytes": ed["memory_per_gpu_bytes"],
        "metrics": {
            "ttft_s": round6(c.ttft_s), "tpot_s": round6(tpot), "tokens_per_s_per_user": round6(1.0 / tpot),
            "output_tokens_per_s": round6(c.output_tokens_per_s),
            "output_tokens_per_s_per_gpu": round6(c.output_tokens_per_s / c.total_gpus),
            "mfu": ed["metrics"]["mfu"], "mbu": ed["metrics"]["mbu"],
        },
        "cost": {
            "usd_per_hour": round6(c.usd_per_hour),
            "usd_per_hour_per_gpu": round6(gpu.usd_per_hour),
            "usd_per_hour_per_gpu_by_type": {k: round6(v.usd_per_hour) for k, v in sorted(prices.items())},
            "price_tier": gpu.price.tier, "price_source": gpu.price.source, "price_date": gpu.price.date,
            "basis": "demand" if demand else "capacity",
            "usd_per_million_output_tokens": round6(c.usd_per_million_output_tokens(demand)),
            "usd_per_million_output_tokens_at_demand": None if not demand else round6(
                c.usd_per_million_output_tokens(demand)),
            "usd_per_million_output_tokens_at_capacity": round6(c.usd_per_million_output_tokens(None)),
            **{f"usd_per_million_{k}_tokens_marginal": round6(v)
               for k, v in zip(("input", "output"), c.marginal_usd_per_million())},
            "usd_per_million_tokens": round6(all_tokens_basis(usd_per_million_at(c.usd_per_hour, served), w.isl,
                                                              w.osl)),
        },
        "bottleneck": e.bottleneck,
        "perf_profile": ed["perf_profile"],
        "serving_engine": _serving_engine(req, c),
        "binding_constraints": _binding(req, c),
        "batch_limited_by": _decode_batch_limited_by(req, r, e),
        "alternatives": [],
        "solver": solver,
        "pools": {"prefill": c.prefill.to_dict(), "decode": c.decode.to_dict()},
        "kv_transfer_s": round6(c.kv_transfer_s),
        "disaggregation": out.summary(),
    }
