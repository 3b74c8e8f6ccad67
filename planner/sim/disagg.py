"""Replaying a disaggregated plan (planner/disagg.py): requests queue for the prefill pool, their KV cache then
crosses the scale-out network, and the decode pool generates the rest of their tokens.

- Prefill pool: each replica is one pipelined lane; a prompt takes the lane free first (FCFS), occupies it for
  `prefill_busy_s` (its slowest stage's time over the DP groups, which prefill one prompt each at once) and
  yields its first token `prefill_latency_s` after it starts (`sim.tables`, the planner's perf model, built for
  the prefill layout): one replica prefills DP / (slowest stage) prompts per second, as the plan sizes it.
- KV transfer: the plan's `kv_transfer_s` per prompt of ISL tokens, scaled by the prompt's length (its bytes).
- Decode pool: each replica runs decode steps of its running sequences (`decode_step_s` of the decode layout's
  tables at their mean context), admitting arrived requests at step boundaries, first come first served, up to the
  plan's batch and the KV cache (a request reserves its full input + output); arrivals go to the replica with the
  fewest requests running or waiting (lowest index on ties).

A request's first token is computed by the prefill and streamed by the decode server once its KV cache has
arrived (TTFT = prefill queue + prefill + KV transfer, as the plan counts it); its TPOT is (finish − that) /
(output − 1), so a wait for a decode slot counts against it. Deterministic for a seed."""
from __future__ import annotations

import heapq
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..catalog import Catalog, load_catalog
from ..errors import InputError
from ..export.disagg import pool_plan
from ..numbers import is_whole
from .metrics import percentiles, r6
from .plan_input import plan_from_dict
from .requests import Requests, load_trace, synthetic_requests

ROLES = ("prefill", "decode")


def _requests(s, plan_rate: float | None, isl: int, osl: int) -> tuple[Requests, dict[str, Any]]:
    """The arrivals `planner simulate` would draw for these settings (as `simulate.simulate_plan`)."""
    from .simulate import DEFAULT_REQUESTS

    if not is_whole(s.seed) or s.seed < 0:
        raise InputError(f"--seed must be a non-negative integer, got {s.seed!r}")
    if s.duration_s is not None and s.requests is not None:
        raise InputError("give either --duration-s or --requests, not both")
    if s.requests is not None and (not is_whole(s.requests) or s.requests < 1):
        raise InputError(f"--requests must be a positive integer, got {s.requests!r}")
    if s.duration_s is not None and not s.duration_s > 0:
        raise InputError(f"--duration-s must be > 0, got {s.duration_s!r}")
    if s.trace is not None:
        if s.rate_rps is not None:
            raise InputError("--rate-rps and --trace are exclusive: the trace gives the arrival times")
        reqs = s.trace if isinstance(s.trace, Requests) else load_trace(s.trace)
        keep = np.ones(len(reqs), bool)
        if s.duration_s is not None:
            keep &= reqs.arrival_s < s.duration_s
        if s.requests is not None:
            keep &= np.arange(len(reqs)) < s.requests
        reqs = Requests(reqs.arrival_s[keep], reqs.input_tokens[keep], reqs.output_tokens[keep])
        if not len(reqs):
            raise InputError("no trace request falls within --duration-s / --requests")
        return reqs, {"trace": str(s.trace) if not isinstance(s.trace, Requests) else "<requests>"}
    rate = s.rate_rps if s.rate_rps is not None else plan_rate
    if rate is None:
        raise InputError("no arrival rate: give --rate-rps (the plan's workload.rate_rps is null) or --trace")
    count = None if s.duration_s is not None else (s.requests or DEFAULT_REQUESTS)
    reqs = synthetic_requests(np.random.default_rng(s.seed), rate_rps=float(rate), isl=isl, osl=osl, count=count,
                              duration_s=s.duration_s, burstiness=s.burstiness, lengths=s.lengths)
    if not len(reqs):
        raise InputError(f"no request arrives within --duration-s {s.duration_s:g} at {rate:g} requests/s")
    return reqs, {"rate_rps": float(rate), "burstiness": s.burstiness, "lengths": s.lengths}


def prefill_pass(arrival_s: np.ndarray, input_tokens: np.ndarray, lanes: int, tables) -> tuple[np.ndarray, float]:
    """First-token times of prompts served FCFS by `lanes` identical pipelined lanes (`tables`: the prefill
    layout's StepTables), and the lanes' total busy time."""
    free = [(0.0, k) for k in range(lanes)]  # (time the lane is free, lane): the earliest free lane first
    heapq.heapify(free)
    first = np.empty(len(arrival_s))
    busy = 0.0
    grid = tables.ctx_grid
    for i in np.argsort(arrival_s, kind="stable"):
        t_free, k = heapq.heappop(free)
        start = max(float(arrival_s[i]), t_free)
        n = float(input_tokens[i])
        hold = float(np.interp(n, grid, tables.prefill_busy_s))
        first[i] = start + float(np.interp(n, grid, tables.prefill_latency_s))
        busy += hold
        heapq.heappush(free, (start + hold, k))
    return first, busy


def decode_pass(ready_s: np.ndarray, input_tokens: np.ndarray, output_tokens: np.ndarray, replicas: int, tables
                ) -> tuple[np.ndarray, float]:
    """Finish times of requests whose KV arrives at `ready_s`, decoded by `replicas` replicas (`tables`: the decode
    layout's StepTables): the first token came from the prefill, so each generates output − 1 more.

    A step costs O(requests joining or leaving), not O(batch) (#16: this loop was a third of a DeepSeek-V3 demand
    plan's confirmation): every running sequence gains one token per step, so a replica keeps the count of its
    running sequences, the sum of their contexts (whole tokens, so the mean is exactly the per-sequence sum's) and,
    by the step at which they end, the sequences that finish then."""
    n = len(ready_s)
    finish = np.full(n, np.nan)
    cap_seqs, cap_kv = tables.max_running, tables.kv_capacity_tokens
    queue: list[deque] = [deque() for _ in range(replicas)]
    running = [0] * replicas  # sequences decoding on each replica
    ctx_sum = [0] * replicas  # Σ of their contexts (tokens)
    steps = [0] * replicas  # decode steps each replica has finished
    ending: list[dict[int, list[int]]] = [{} for _ in range(replicas)]  # step count -> requests that end with it
    kv_used = [0] * replicas
    stepping = [False] * replicas
    busy = 0.0
    # (time, kind, order, replica | request); kinds at one instant in this order: 0 a step ends, 1 a request
    # arrives, 2 an idle replica starts (after every arrival of that instant has joined its queue)
    events: list[tuple[float, int, int, int]] = []
    order = 0
    for i in np.argsort(ready_s, kind="stable"):
        if output_tokens[i] <= 1:
            finish[i] = ready_s[i]
            continue
        events.append((float(ready_s[i]), 1, order, int(i)))
        order += 1
    heapq.heapify(events)

    def start_step(r: int, now: float) -> None:
        nonlocal busy, order
        while queue[r] and running[r] < cap_seqs:
            j = queue[r][0]
            need = int(input_tokens[j] + output_tokens[j])
            if kv_used[r] + need > cap_kv and running[r]:
                break
            queue[r].popleft()
            kv_used[r] += need
            running[r] += 1
            ctx_sum[r] += int(input_tokens[j]) + 1  # the prompt and the prefill's first token
            ending[r].setdefault(steps[r] + int(output_tokens[j]) - 1, []).append(j)
        if not running[r]:
            stepping[r] = False
            return
        dt = tables.decode_step_s(running[r], ctx_sum[r] / running[r])
        busy += dt
        stepping[r] = True
        heapq.heappush(events, (now + dt, 0, order, r))
        order += 1

    while events:
        now, kind, _, x = heapq.heappop(events)
        if kind == 1:  # a request's KV arrives: the replica with the fewest running or waiting
            r = min(range(replicas), key=lambda k: (running[k] + len(queue[k]), k))
            queue[r].append(x)
            if not stepping[r]:
                stepping[r] = True
                heapq.heappush(events, (now, 2, order, r))
                order += 1
            continue
        if kind == 2:
            start_step(x, now)
            continue
        r = x
        steps[r] += 1
        ctx_sum[r] += running[r]
        for j in ending[r].pop(steps[r], ()):  # each ends at context input + output
            finish[j] = now
            whole = int(input_tokens[j] + output_tokens[j])
            kv_used[r] -= whole
            ctx_sum[r] -= whole
            running[r] -= 1
        start_step(r, now)
    return finish, busy


def simulate_disaggregated(plan: Mapping[str, Any], settings=None, *, catalog: Catalog | str | Path | None = None,
                           **options: Any) -> dict[str, Any]:
    """Replay a disaggregated plan (its `pools`) under the settings `planner simulate` takes
    (`sim.simulate.SimulationSettings`; continuous batching, least-loaded balancing, the plan's replicas)."""
    from .simulate import SimulationSettings, plan_tables

    s = replace(settings or SimulationSettings(), **options)
    if s.batching != "continuous" or s.balancer != "least-loaded" or s.replicas is not None:
        raise InputError("a disaggregated plan replays with continuous batching, least-loaded balancing and its "
                         "own pool sizes (--batching, --balancer and --replicas do not apply)")
    cat = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
    specs = {role: plan_from_dict(pool_plan(dict(plan), role)) for role in ROLES}
    isl, osl = specs["decode"].isl, specs["decode"].osl
    reqs, source = _requests(s, specs["decode"].rate_rps, isl, osl)
    max_ctx = max(int((reqs.input_tokens + reqs.output_tokens).max()), isl + osl)
    tables = {role: plan_tables(specs[role], cat, max_ctx) for role in ROLES}
    kv_s = float(plan.get("kv_transfer_s") or 0.0)
    too_long = reqs.input_tokens + reqs.output_tokens > tables["decode"].kv_capacity_tokens
    if too_long.all():
        raise InputError(f"all {len(reqs)} requests are longer than the decode pool's KV cache "
                         f"({tables['decode'].kv_capacity_tokens} tokens per replica): nothing to simulate")
    keep = ~too_long
    arr, inp, out = reqs.arrival_s[keep], reqs.input_tokens[keep], reqs.output_tokens[keep]
    pre, dec = specs["prefill"], specs["decode"]
    lanes = pre.replicas
    first, pre_busy = prefill_pass(arr, inp, lanes, tables["prefill"])
    ready = first + kv_s * inp / isl  # the KV bytes scale with the prompt
    finish, dec_busy = decode_pass(ready, inp, out, dec.replicas, tables["decode"])
    ttft = ready - arr  # the first token reaches the user with the KV cache, from the decode server
    multi = out >= 2
    tpot = (finish[multi] - ready[multi]) / (out[multi] - 1)
    start, end = float(arr.min()), float(np.nanmax(finish))
    span = max(end - start, 1e-12)
    pct = dec.slo_percentile
    ttft_slo = s.ttft_slo_s if s.ttft_slo_s is not None else dec.ttft_slo_s
    tpot_slo = s.tpot_slo_s if s.tpot_slo_s is not None else dec.tpot_slo_s
    ok_ttft = np.ones(len(arr), bool) if ttft_slo is None else ttft <= ttft_slo
    ok_tpot = np.ones(len(arr), bool)
    if tpot_slo is not None:
        ok_tpot[multi] = tpot <= tpot_slo
    tokens = float(out.sum())
    est_p, est_d = tables["prefill"].estimate, tables["decode"].estimate
    return {
        "mode": "disaggregated",
        "plan": {"model": dec.model, "kv_transfer_s": r6(kv_s),
                 "pools": {role: {**specs[role].to_dict(), "replicas": specs[role].replicas} for role in ROLES}},
        "seed": s.seed,
        "arrivals": {**source, "requests": len(reqs), "mean_input_tokens": r6(reqs.input_tokens.mean()),
                     "mean_output_tokens": r6(reqs.output_tokens.mean()), "last_arrival_s": r6(reqs.arrival_s[-1])},
        "requests": {"arrived": len(reqs), "simulated": int(keep.sum()), "rejected": int(too_long.sum())},
        "ttft_s": percentiles(ttft, pct),
        "tpot_s": percentiles(tpot, pct),
        "e2e_s": percentiles(finish - arr),
        "throughput": {"output_tokens_per_s": r6(tokens / span), "requests_per_s": r6(len(arr) / span)},
        "utilization": {"prefill": r6(pre_busy / span / lanes), "decode": r6(dec_busy / span / dec.replicas)},
        "makespan_s": r6(span),
        "slo": {"ttft_s": ttft_slo, "tpot_s": tpot_slo, "percentile": pct},
        "slo_attainment": {"ttft": r6(ok_ttft.mean()), "tpot": r6(ok_tpot.mean()),
                           "both": r6((ok_ttft & ok_tpot).mean())},
        "estimate": {"ttft_s": r6(est_p.ttft_s + kv_s), "tpot_s": r6(est_d.decode_cycle_s)},
    }


def simulation_text(d: dict[str, Any]) -> str:
    """The CLI summary of `simulate_disaggregated`."""
    from .report import duration as ms

    p, a, r = d["plan"], d["arrivals"], d["requests"]
    ttft, tpot, thr, att, slo = d["ttft_s"], d["tpot_s"], d["throughput"], d["slo_attainment"], d["slo"]
    load = f"trace {a['trace']}" if "trace" in a else (
        f"{a['rate_rps']:g} req/s (burstiness {a['burstiness']:g}, {a['lengths']} lengths)")

    def pool(role: str) -> str:
        x = p["pools"][role]
        dp = f" DP{x['dp']}" if x.get("dp", 1) > 1 else ""
        return (f"{x['replicas']} x {x['gpu']} TP{x['tp']}{dp} "
                f"PP{x['pp']} EP{x['ep']} batch {x['batch']}")

    pct = lambda v: "-" if v is None else f"{v:.1%}"  # noqa: E731
    return "\n".join([
        f"{p['model']} disaggregated: prefill {pool('prefill')}; decode {pool('decode')}; KV transfer "
        f"{ms(p['kv_transfer_s'])}  seed {d['seed']}",
        f"  load               {load}; {r['simulated']} requests simulated"
        + (f", {r['rejected']} rejected (longer than the decode KV cache)" if r["rejected"] else ""),
        f"  TTFT               p50 {ms(ttft['p50'])}  p90 {ms(ttft['p90'])}  p99 {ms(ttft['p99'])}"
        f"   (estimate {ms(d['estimate']['ttft_s'])}: prefill + KV transfer)",
        f"  TPOT               p50 {ms(tpot['p50'])}  p90 {ms(tpot['p90'])}  p99 {ms(tpot['p99'])}"
        f"   (estimate at full batch {ms(d['estimate']['tpot_s'])})",
        f"  throughput         {thr['output_tokens_per_s']:.0f} output tok/s, {thr['requests_per_s']:.3g} req/s "
        f"(utilization prefill {pct(d['utilization']['prefill'])}, decode {pct(d['utilization']['decode'])})",
        f"  SLO attainment     TTFT {pct(att['ttft'])} (≤ {ms(slo['ttft_s'])})  TPOT {pct(att['tpot'])} "
        f"(≤ {ms(slo['tpot_s'])})  both {pct(att['both'])}",
    ])
