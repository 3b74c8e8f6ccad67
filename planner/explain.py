"""Why a plan costs what it does (binding constraints, slack) and why a request is infeasible."""
from __future__ import annotations

from typing import Any

import numpy as np

from .perf.estimate import Config, estimate
from .perf.params import PerfParams
from .search.space import Request
from .search.table import NS_PER_S, Bounds, Limits, Table, stage_sum

TIGHT = 0.05  # a constraint within 5 % of its limit is reported as binding


def _describe(t: Table, i: int) -> str:
    r = t.rows[i]
    ep = f" EP{r.ep}" if r.ep > 1 else ""
    dp = f" DP{r.dp}" if r.dp > 1 else ""
    return f"{r.gpu.id} TP{r.tp}{dp} PP{r.pp}{ep} {r.weights}/{r.kv}-KV batch {r.batch}"


def _bottleneck(req: Request, t: Table, i: int, p: PerfParams) -> str:
    r = t.rows[i]
    from dataclasses import replace

    cfg = Config(gpu=r.gpu, tp=r.tp, pp=r.pp, ep=r.ep, batch=r.batch, weights=r.weights, kv=r.kv, dp=r.dp)
    e = estimate(req.model, cfg, replace(req.workload, rate_rps=None, output_tokens_per_s=None), p)
    return e.bottleneck.replace("_", " ")


def infeasibility_reasons(req: Request, t: Table, b: Bounds, lim: Limits, p: PerfParams) -> list[str]:
    """One line per constraint that blocks every row, each with the best value any row reaches when the other
    constraints are met (or, for memory, the closest row)."""
    reasons: list[str] = []
    mem, ttft, tpot, gpus = b.memory_ok, b.ttft_ok, b.tpot_ok, b.gpus_ok
    if not mem.any():
        need = np.max([(m @ t.kind_counts + stage_sum(t.fixed_mem_kib, t.fixed_mem_single_kib, t.pp))
                       / (t.pp * t.cap_kib) for _, m in t.memory_per_kind], axis=0)
        i = int(np.argmin(need))
        reasons.append(f"memory: no configuration fits {req.model.name} with {req.workload.context_tokens} tokens of "
                       f"context; the closest, {_describe(t, i)}, needs {need[i]:.2f}x its "
                       f"{t.rows[i].gpus} GPUs' memory ({t.rows[i].gpus * t.cap_kib[i] * 1024 / 2**30:.0f} GiB)")
    # Each latency or GPU constraint is reported when no row meets it together with the others; when the others
    # already rule every row out (e.g. nothing fits in memory), it is still reported if no row meets it even on
    # its own, with the best value over every row, so that a request learns all it must change at once.
    def blocking(ok: np.ndarray, others: np.ndarray) -> np.ndarray | None:
        if (others & ok).any():
            return None
        if others.any():
            return np.flatnonzero(others)
        return None if ok.any() else np.arange(len(t))

    def ignoring(others: np.ndarray, names: str) -> str:
        return "" if others.any() else f" (even ignoring {names})"

    j = blocking(tpot, mem & ttft & gpus)
    if j is not None:
        i = int(j[np.argmin(b.tpot_ns[j])])
        best = NS_PER_S / b.tpot_ns[i]
        want = req.slo.min_tokens_per_s_user or NS_PER_S / lim.tpot_ns
        considered = ("no GPU in the catalog" if len(req.gpus) > 4
                      else "no configuration of " + ", ".join(g.id for g in req.gpus))
        reasons.append(f"tokens/s/user: {considered} reaches {want:.1f} tok/s/user for {req.model.name}: "
                       f"best is {_describe(t, i)} at {best:.1f} tok/s/user ({_bottleneck(req, t, i, p)} bound; "
                       f"{want / best:.2f}x short){ignoring(mem & ttft & gpus, 'memory and the other limits')}")
    alone = t.ttft_ns <= lim.ttft_ns if lim.ttft_ns is not None else np.ones(len(t), bool)
    j = None if lim.ttft_ns is None else blocking(alone, mem & tpot & gpus)
    if j is not None:
        i = int(j[np.argmin(t.ttft_ns[j])])
        reasons.append(f"ttft: no configuration reaches TTFT {lim.ttft_ns / 1e6:.0f} ms for {req.workload.isl} input "
                       f"tokens: best is {_describe(t, i)} at {t.ttft_ns[i] / 1e6:.0f} ms "
                       f"({t.ttft_ns[i] / lim.ttft_ns:.2f}x over){ignoring(mem & tpot & gpus, 'memory and TPOT')}")
    elif lim.ttft_ns is not None and t.min_replicas is not None:
        others = mem & tpot & gpus & alone
        if others.any() and not (others & (t.min_replicas >= 0)).any():
            reasons.append(f"ttft under queueing: at {req.workload.demand_output_tokens_per_s / req.workload.osl:.3g} "
                           f"requests/s no replica count (up to {lim.max_replicas}) keeps the TTFT percentile within "
                           f"{lim.ttft_ns / 1e6:.0f} ms (search/queueing.py): a prompt waits for the step in progress "
                           f"and the prefills arriving with it; loosen --ttft-ms or --slo-percentile")
    j = blocking(gpus, mem & tpot & ttft)
    if j is not None and (mem & tpot & ttft).any():
        need = b.replicas[j] * t.gpus[j]
        i = int(j[np.argmin(need)])
        reasons.append(f"gpu limit: the smallest plan meeting the SLOs, {_describe(t, i)} x{b.replicas[i]} "
                       f"replicas, needs {need.min()} GPUs but the limit is {t.gpu_limit[i]}")
    if not reasons:
        if (mem & ttft & tpot & gpus).any():
            reasons.append("no single placement meets memory and latency together for the rows whose bounds pass "
                           "(the constraints conflict only in combination); loosen the TPOT or TTFT target")
        else:
            reasons.append("constraints conflict in combination: no row meets memory, TPOT, TTFT and GPU limits "
                           "together; loosen one of them")
    return reasons


def constraint(name: str, value: float, limit: float, unit: str, higher_is_better: bool = False) -> dict[str, Any]:
    """One row of a plan's `binding_constraints`: value, limit, relative slack (positive: room left) and whether
    it binds (slack < TIGHT)."""
    slack = (value - limit) / limit if higher_is_better else (limit - value) / limit
    return {"name": name, "value": round(value, 6), "limit": round(limit, 6), "unit": unit,
            "slack": round(slack, 4), "binding": bool(slack < TIGHT)}


def binding_constraints(req: Request, est: Any, replicas: int) -> list[dict[str, Any]]:
    """Each constraint of the chosen plan: its value, limit, relative slack and whether it binds (slack < 5 %)."""
    return plan_constraints(req, tpot_s=est.tpot_s, ttft_s=est.ttft_s, memory=est.memory,
                            output_tokens_per_s=replicas * est.output_tokens_per_s, gpus=replicas * est.config.gpus,
                            gpu_limit=req.gpu_limit(est.config.gpu))


def plan_constraints(req: Request, *, tpot_s: float, ttft_s: float, memory: dict[str, Any],
                     output_tokens_per_s: float, gpus: int, gpu_limit: int | None) -> list[dict[str, Any]]:
    """The request's constraints (TPOT, TTFT, memory per GPU, demand, GPU limit) at a plan's figures, in that
    order (`constraint` each); `memory` holds the most loaded GPU's 'total' and 'capacity' bytes."""
    out: list[dict[str, Any]] = []

    def add(name: str, value: float, limit: float, unit: str, higher_is_better: bool = False) -> None:
        out.append(constraint(name, value, limit, unit, higher_is_better))

    if req.slo.tpot_s is not None:
        add("tpot", tpot_s, req.slo.tpot_s, "s")
    if req.slo.ttft_s is not None:
        add("ttft", ttft_s, req.slo.ttft_s, "s")
    add("memory_per_gpu", memory["total"], memory["capacity"], "bytes")
    demand = req.workload.demand_output_tokens_per_s
    if demand is not None:
        add("demand", output_tokens_per_s, demand, "output_tokens_per_s", higher_is_better=True)
    if gpu_limit is not None:
        add("max_gpus", gpus, gpu_limit, "gpus")
    return out


def batch_limited_by(t: Table, b: Bounds, i: int, lim: Limits | None = None) -> str:
    """Why the plan does not run a larger batch on the same structure: the next micro-batch size's first failing
    check (its bounds, then, with `lim`, a memory-capped greedy placement of it evaluated exactly), 'max_batch' at
    the top of the range, or 'cost' when the larger batch is feasible but not cheaper."""
    from .search.placement import greedy_placement
    from .search.table import evaluate

    r = t.rows[i]
    if i + 1 >= len(t):
        return "max_batch"
    j = i + 1
    q = t.rows[j]
    if (q.gpu.id, q.weights, q.kv, q.tp, q.dp, q.pp, q.ep) != (r.gpu.id, r.weights, r.kv, r.tp, r.dp, r.pp, r.ep):
        return "max_batch"
    for name, ok in (("memory", b.memory_ok), ("tpot", b.tpot_ok), ("ttft", b.ttft_ok), ("max_gpus", b.gpus_ok)):
        if not ok[j]:
            return name
    if lim is not None:
        lay = greedy_placement(t, j)
        if lay is None:
            return "memory"
        ev = evaluate(t, j, lay, lim)
        if not ev.feasible:
            return {"objective_cap": "cost"}.get(ev.violated[0], ev.violated[0])
    return "cost"
