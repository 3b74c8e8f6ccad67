"""An independent checker for the planner's answers, written against its public JSON.

It does not use planner.search (neither `verify` nor the integer tables): memory is recomputed per pipeline stage
from the named formulas of planner.perf.memory, latency and throughput come from planner.perf.estimate (the
floating-point model the plan claims to satisfy), and the structural rules (layers sum to the model's, TP inside
the scale-up domain or PCIe host and dividing the heads, DP only for MoE models, EP dividing TP × DP and the
experts, GPU limits, cost = GPUs × price with GPUs = TP × DP × PP per replica) are restated here from the README. Each check returns a list of violations; empty means sound."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from planner.catalog import Catalog
from planner.perf import memory as mem
from planner.perf.estimate import Config, estimate
from planner.perf.step import kind_models, stage_kind_counts
from planner.specs.model import ModelSpec
from planner.specs.workload import Workload
from planner.units import BYTES_PER_ELEMENT, COMPUTE_DTYPE, SECONDS_PER_HOUR

# Floating-point slack: the plan must meet each limit to 1e-9 relative (the search rounds conservatively, so a
# sound plan meets them exactly); JSON numbers are rounded to 6 significant digits, hence 1e-5 for echoes.
LIMIT_RTOL = 1e-9
ECHO_RTOL = 1e-5

STATS: Counter = Counter()  # plans / frontier points / alternatives checked, and violations (report.py reads it)


@dataclass(frozen=True)
class Ask:
    """What the user asked for, restated independently of planner.search.Request."""

    model: ModelSpec
    isl: int
    osl: int
    tpot_s: float | None
    ttft_s: float | None = None
    demand_tokens_per_s: float | None = None
    gpus: tuple[str, ...] = ()  # allowed GPU ids (empty: any in the catalog)
    weights: tuple[str, ...] = ("bf16", "fp8", "int8")
    kv: tuple[str, ...] = ("bf16", "fp8")
    max_gpus: int | None = None
    max_gpus_per_type: dict[str, int] = field(default_factory=dict)


def _close(a: float, b: float, rtol: float = ECHO_RTOL) -> bool:
    return math.isclose(float(a), float(b), rel_tol=rtol, abs_tol=1e-12)


def _structure(ask: Ask, cat: Catalog, gpu_id: str, tp: int, pp: int, ep: int, weights: str, kv: str,
               layers: list[int] | None, where: str, dp: int = 1) -> list[str]:
    v: list[str] = []
    m = ask.model
    if gpu_id not in cat.accelerators:
        return [f"{where}: GPU {gpu_id!r} is not in the catalog"]
    g = cat.accelerators[gpu_id]
    if ask.gpus and gpu_id not in ask.gpus:
        v.append(f"{where}: GPU {gpu_id} was not asked for ({ask.gpus})")
    if weights not in ask.weights:
        v.append(f"{where}: weights {weights} not among {ask.weights}")
    if kv not in ask.kv:
        v.append(f"{where}: kv {kv} not among {ask.kv}")
    if COMPUTE_DTYPE[weights] not in g.flops_per_s:
        v.append(f"{where}: {gpu_id} has no {COMPUTE_DTYPE[weights]} tensor cores")
    host = max(g.scale_up_domain, g.pcie.gpus_per_node if g.pcie else 1)
    if not 1 <= tp <= host:
        v.append(f"{where}: TP {tp} outside 1..{host} (scale-up domain or PCIe host)")
    if dp != 1 and not (m.is_moe and dp >= 1):
        v.append(f"{where}: DP {dp} on a dense model (DP groups of a dense model are replicas)")
    if m.num_heads % tp:
        v.append(f"{where}: TP {tp} does not divide {m.num_heads} heads")
    if ep != 1 and not (m.is_moe and (tp * dp) % ep == 0 and m.num_experts % ep == 0):
        v.append(f"{where}: EP {ep} invalid (MoE {m.is_moe}, TP {tp} x DP {dp}, experts {m.num_experts})")
    if not 1 <= pp <= m.num_layers:
        v.append(f"{where}: PP {pp} outside 1..{m.num_layers}")
    if layers is not None:
        if len(layers) != pp or min(layers, default=0) < 1 or sum(layers) != m.num_layers:
            v.append(f"{where}: layers per stage {layers} are not {pp} positive counts summing to {m.num_layers}")
    return v


def stage_memory_bytes(ask: Ask, cat: Catalog, gpu_id: str, tp: int, pp: int, batch: int, weights: str, kv: str,
                       layers: list[int], dp: int = 1) -> list[float]:
    """Bytes one GPU of each stage holds: weights of its layers (+ embedding on the first stage, LM head on the
    last), the KV cache of its DP group's share of the replica's `batch` sequences at full context for its
    layers, the activation workspace of one step (the token budget and the group's share of the micro-batch's
    logits), and the runtime reserve. With several layer kinds (DeepSeek-V3's 3 dense layers before 58 MoE ones,
    windowed attention) each stage's layers and KV are its count of each kind times that kind's per-layer bytes
    (the README: "its memory likewise", perf.step.kind_models), not its layer count times the average layer's."""
    m, p, g = ask.model, cat.perf, cat.accelerators[gpu_id]
    wb, kvb = BYTES_PER_ELEMENT[weights], BYTES_PER_ELEMENT[kv]
    act = float(mem.activation_bytes_per_gpu(m, tp, p.max_batched_tokens, batch / pp / dp))
    reserve = float(mem.reserve_bytes(g.memory_bytes, p.memory_reserve_fraction))
    kinds = [km for _, _, km in kind_models(m)]
    w_layer = [float(mem.layer_weight_bytes_per_gpu(km, wb, tp, dp)) for km in kinds]
    kv_layer = [float(mem.kv_cache_bytes_per_gpu(km, kvb, tp, 1, batch, ask.isl + ask.osl, dp)) for km in kinds]
    out = []
    for s, (n, counts) in enumerate(zip(layers, stage_kind_counts(m, layers).tolist())):
        w = float(mem.stage_weight_bytes_per_gpu(m, wb, tp, n, s == 0, s == pp - 1, dp,
                                                 layers_bytes=sum(c * b for c, b in zip(counts, w_layer))))
        k = sum(c * b for c, b in zip(counts, kv_layer))
        out.append(w + k + act + reserve)
    return out


def _estimate(ask: Ask, cat: Catalog, gpu_id: str, tp: int, pp: int, ep: int, batch: int, weights: str, kv: str,
              layers: list[int] | None, dp: int = 1):
    cfg = Config(gpu=cat.accelerators[gpu_id], tp=tp, pp=pp, ep=ep, batch=batch, weights=weights, kv=kv,
                 layers_per_stage=None if layers is None else tuple(layers), dp=dp)
    return estimate(ask.model, cfg, Workload(isl=ask.isl, osl=ask.osl), cat.perf)


def _latency(ask: Ask, tpot_s: float, ttft_s: float, where: str) -> list[str]:
    v = []
    if ask.tpot_s is not None and tpot_s > ask.tpot_s * (1 + LIMIT_RTOL):
        v.append(f"{where}: TPOT {tpot_s:.6g} s > SLO {ask.tpot_s:.6g} s")
    if ask.ttft_s is not None and ttft_s > ask.ttft_s * (1 + LIMIT_RTOL):
        v.append(f"{where}: TTFT {ttft_s:.6g} s > SLO {ask.ttft_s:.6g} s")
    return v


def _gpu_limits(ask: Ask, gpu_id: str, total: int, where: str) -> list[str]:
    v = []
    if ask.max_gpus is not None and total > ask.max_gpus:
        v.append(f"{where}: {total} GPUs > --max-gpus {ask.max_gpus}")
    if gpu_id in ask.max_gpus_per_type and total > ask.max_gpus_per_type[gpu_id]:
        v.append(f"{where}: {total} {gpu_id} > limit {ask.max_gpus_per_type[gpu_id]}")
    return v


def check_plan(d: dict[str, Any], ask: Ask, cat: Catalog) -> list[str]:
    """Violations of a `planner plan --json` answer (the best plan and its alternatives)."""
    STATS["plans"] += 1
    v: list[str] = []
    par, prec = d["parallelism"], d["precision"]
    gpu_id, tp, pp, ep, replicas = d["gpu"], par["tp"], par["pp"], par["ep"], par["replicas"]
    dp = par["dp"]
    batch, weights, kv, layers = d["batch"], prec["weights"], prec["kv"], d["placement"]["layers_per_stage"]
    v += _structure(ask, cat, gpu_id, tp, pp, ep, weights, kv, layers, "plan", dp)
    if v:
        return _count(v)
    g = cat.accelerators[gpu_id]
    n = tp * dp * pp  # GPUs per replica
    if d["gpus_per_replica"] != n or d["total_gpus"] != replicas * n:
        v.append(f"plan: GPU counts inconsistent ({d['gpus_per_replica']}, {d['total_gpus']}, TP{tp} DP{dp} PP{pp} "
                 f"x{replicas})")
    if batch != pp * d["micro_batch"] or replicas < 1 or batch < 1 or d["micro_batch"] % dp:
        v.append(f"plan: batch {batch} != PP {pp} x micro-batch {d['micro_batch']} (a multiple of DP {dp}; "
                 f"replicas {replicas})")
    # memory per stage, recomputed
    for s, total in enumerate(stage_memory_bytes(ask, cat, gpu_id, tp, pp, batch, weights, kv, layers, dp)):
        if total > g.memory_bytes * (1 + LIMIT_RTOL):
            v.append(f"plan: stage {s} needs {total / 2**30:.3f} GiB per GPU > {g.memory_bytes / 2**30:.3f} GiB")
    # SLOs and demand, per perf.estimate at the plan's own placement
    e = _estimate(ask, cat, gpu_id, tp, pp, ep, batch, weights, kv, layers, dp)
    if not e.fits:
        v.append(f"plan: estimate() says it does not fit: {e.messages}")
    v += _latency(ask, e.tpot_s, e.ttft_s, "plan")
    served = replicas * e.output_tokens_per_s
    if ask.demand_tokens_per_s is not None and served < ask.demand_tokens_per_s * (1 - LIMIT_RTOL):
        v.append(f"plan: serves {served:.6g} tok/s < demand {ask.demand_tokens_per_s:.6g}")
    v += _gpu_limits(ask, gpu_id, replicas * n, "plan")
    # what the JSON reports is what the model says
    if not _close(d["metrics"]["tpot_s"], e.tpot_s) or not _close(d["metrics"]["ttft_s"], e.ttft_s):
        v.append(f"plan: reported TPOT/TTFT {d['metrics']['tpot_s']}/{d['metrics']['ttft_s']} != "
                 f"estimate {e.tpot_s:.6g}/{e.ttft_s:.6g}")
    # cost = GPUs x price
    usd_h = replicas * n * g.usd_per_hour
    if not _close(d["cost"]["usd_per_hour"], usd_h) or not _close(d["cost"]["usd_per_hour_per_gpu"], g.usd_per_hour):
        v.append(f"plan: cost {d['cost']['usd_per_hour']} $/h != {replicas * n} GPUs x {g.usd_per_hour} $/h")
    out_rate = ask.demand_tokens_per_s if ask.demand_tokens_per_s is not None else served
    per_m = usd_h / SECONDS_PER_HOUR / out_rate * 1e6
    if not _close(d["cost"]["usd_per_million_output_tokens"], per_m):
        v.append(f"plan: {d['cost']['usd_per_million_output_tokens']} $/M output tokens != {per_m:.6g}")
    if d["solver"]["status"] not in ("OPTIMAL", "FEASIBLE") or not 0 <= d["solver"]["gap"] <= 1:
        v.append(f"plan: solver status {d['solver']['status']} gap {d['solver']['gap']}")
    if d["solver"]["status"] == "OPTIMAL" and d["solver"]["gap"] != 0:
        v.append("plan: OPTIMAL with a non-zero gap")
    for a in d.get("alternatives", []):
        v += check_alternative(a, ask, cat)
    alts = d.get("alternatives", [])
    if d["solver"]["status"] == "OPTIMAL" and alts:
        v += _optimal_over(d, alts, e, ask, cat)
    return _count(v)


def _optimal_over(d: dict[str, Any], alts: list[dict[str, Any]], e, ask: Ask, cat: Catalog) -> list[str]:
    """Proven optimal: no listed alternative costs less in the search's objective (beyond its conservative integer
    rounding: prices up to 1e-4 USD, times up to ns). With a demand that is the fleet's $/hour, which each alternative
    lists. Without one it is $ per output token at full load with a pipelined prompt's prefill stall charged at its
    bound over one chunk per cycle (_search_usd_per_million), so a pipelined alternative's listed $/token may be below
    the plan's; its search cost may not. An alternative lists no layer placement: its search cost is taken at estimate's own, one the search
    could choose (an upper bound on the search's minimum over placements); one that does not fit there is skipped."""
    if ask.demand_tokens_per_s is not None:
        if min(_alt_cost(a, ask) for a in alts) < _alt_cost(_summary_of(d), ask) * (1 - 1e-3):
            return ["plan: an alternative is cheaper than the plan proven optimal"]
        return []
    mine = _search_usd_per_million(e, cat)
    for a in alts:
        ea = _estimate(ask, cat, a["gpu"], a["tp"], a["pp"], a["ep"], a["batch"], a["weights"], a["kv"], None, a["dp"])
        if ea.fits and _search_usd_per_million(ea, cat) < mine * (1 - 1e-3):
            return [f"plan: an alternative ({a['gpu']} TP{a['tp']} DP{a['dp']} PP{a['pp']} batch {a['batch']}) is "
                    "cheaper than the plan proven optimal in the search's objective"]
    return []


def _search_usd_per_million(e, cat: Catalog) -> float:
    """USD per million output tokens at full load as the exact search charges a row (its objective without a
    demand): a round of B tokens per sequence is the decode cycle plus B prompts' prefill stalls over OSL, each stall
    with PP > 1 and chunked prefill taken at the bound PP x chunks x (slowest stage's chunk increment + hop) where
    the round's B x chunks exceed OSL (more than one chunk per decode cycle; planner/search/table.py `stalled_ns`,
    documented there and in the README's optimizer section); exact with one stage, with prefill_first (the stall
    is the prompt's slowest prefill stage), and with PP > 1 at most one chunk per cycle."""
    c, g = e.config, cat.accelerators[e.config.gpu.id]
    prefill_first = cat.perf.for_gpu(g.id, g.family).prefill_first
    exact = prefill_first or c.pp == 1 or c.batch * e.prefill_chunks <= e.workload.osl
    stall = e.prefill_stall_s if exact else c.pp * e.prefill_chunks * e.chunk_stage_s
    round_s = e.decode_cycle_s + c.batch / e.workload.osl * stall
    return c.gpus * g.usd_per_hour / SECONDS_PER_HOUR * round_s / c.batch * 1e6


def _summary_of(d: dict[str, Any]) -> dict[str, Any]:
    return {"usd_per_hour": d["cost"]["usd_per_hour"],
            "usd_per_million_output_tokens": d["cost"]["usd_per_million_output_tokens"]}


def _alt_cost(a: dict[str, Any], ask: Ask) -> float:
    """The objective the planner minimizes: fleet $/hour with a demand, $ per output token without."""
    return a["usd_per_hour"] if ask.demand_tokens_per_s is not None else a["usd_per_million_output_tokens"]


def check_alternative(a: dict[str, Any], ask: Ask, cat: Catalog) -> list[str]:
    """An alternative is listed without its layer placement: check what it does list."""
    STATS["alternatives"] += 1
    where = f"alternative {a['gpu']}"
    v = _structure(ask, cat, a["gpu"], a["tp"], a["pp"], a["ep"], a["weights"], a["kv"], None, where, a["dp"])
    if v:
        return v
    g = cat.accelerators[a["gpu"]]
    if a["total_gpus"] != a["replicas"] * a["tp"] * a["dp"] * a["pp"]:
        v.append(f"{where}: total_gpus {a['total_gpus']} != replicas x TP x DP x PP")
    if not _close(a["usd_per_hour"], a["total_gpus"] * g.usd_per_hour):
        v.append(f"{where}: {a['usd_per_hour']} $/h != {a['total_gpus']} x {g.usd_per_hour}")
    if ask.tpot_s is not None and a["tokens_per_s_per_user"] < (1 / ask.tpot_s) * (1 - ECHO_RTOL):
        v.append(f"{where}: {a['tokens_per_s_per_user']} tok/s/user < {1 / ask.tpot_s:.6g}")
    if ask.ttft_s is not None and a["ttft_s"] > ask.ttft_s * (1 + ECHO_RTOL):
        v.append(f"{where}: TTFT {a['ttft_s']} > {ask.ttft_s}")
    v += _gpu_limits(ask, a["gpu"], a["total_gpus"], where)
    return v


def check_frontier(d: dict[str, Any], ask: Ask, cat: Catalog) -> list[str]:
    """Violations of a `planner frontier --json` answer: every point sound, and the points a Pareto frontier."""
    v: list[str] = []
    pts = d["points"]
    for k, pt in enumerate(pts):
        STATS["frontier_points"] += 1
        where = f"frontier point {k}"
        s = _structure(ask, cat, pt["gpu"], pt["tp"], pt["pp"], pt["ep"], pt["weights"], pt["kv"],
                       pt["layers_per_stage"], where, pt["dp"])
        if s:
            v += s
            continue
        g = cat.accelerators[pt["gpu"]]
        tp, pp, dp = pt["tp"], pt["pp"], pt["dp"]
        for st, total in enumerate(stage_memory_bytes(ask, cat, pt["gpu"], tp, pp, pt["batch"], pt["weights"],
                                                      pt["kv"], pt["layers_per_stage"], dp)):
            if total > g.memory_bytes * (1 + LIMIT_RTOL):
                v.append(f"{where}: stage {st} needs {total / 2**30:.3f} GiB > {g.memory_bytes / 2**30:.3f} GiB")
        e = _estimate(ask, cat, pt["gpu"], tp, pp, pt["ep"], pt["batch"], pt["weights"], pt["kv"],
                      pt["layers_per_stage"], dp)
        v += _latency(Ask(ask.model, ask.isl, ask.osl, None, ask.ttft_s), e.tpot_s, e.ttft_s, where)
        if e.tokens_per_s_per_user < min(d["speeds_tried"]) * (1 - LIMIT_RTOL):
            v.append(f"{where}: {e.tokens_per_s_per_user:.6g} tok/s/user is below every target")
        if not _close(pt["tokens_per_s_per_user"], e.tokens_per_s_per_user):
            v.append(f"{where}: reports {pt['tokens_per_s_per_user']} tok/s/user, estimate {e.tokens_per_s_per_user:.6g}")
        per_m = tp * dp * pp * g.usd_per_hour / SECONDS_PER_HOUR / e.output_tokens_per_s * 1e6
        if not _close(pt["usd_per_million_output_tokens"], per_m):
            v.append(f"{where}: {pt['usd_per_million_output_tokens']} $/M != GPUs x price / throughput {per_m:.6g}")
        v += _gpu_limits(ask, pt["gpu"], tp * dp * pp, where)
    for a, b in zip(pts, pts[1:]):  # sorted by speed; a faster point must cost strictly more, else it dominates
        if not (b["tokens_per_s_per_user"] > a["tokens_per_s_per_user"]
                and b["usd_per_million_output_tokens"] > a["usd_per_million_output_tokens"]):
            v.append(f"frontier: not Pareto-sorted at {a['tokens_per_s_per_user']} -> {b['tokens_per_s_per_user']}")
    return _count(v)


def _count(v: list[str]) -> list[str]:
    STATS["violations"] += len(v)
    return v
