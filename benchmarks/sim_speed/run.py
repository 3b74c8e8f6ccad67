"""Simulator speed and the continuous-vs-static batching comparison.

    python benchmarks/sim_speed/run.py            # markdown tables (as recorded in RESULTS.md)
    python benchmarks/sim_speed/run.py --json     # the same figures as JSON

1. Speed: 100,000 requests (llama-3.1-8b on h100-sxm, batch 256, exponential input/output lengths around
   1024/256) at several loads relative to `estimate()`'s capacity, one replica and fleets of 4 and 16 replicas;
   reports wall seconds and simulated requests per wall second. Target: 100,000 requests in under 10 s.
2. Throughput of continuous vs static batching under saturating load (3x capacity), with output lengths fixed and
   varied (uniform on [1, 2·osl−1], exponential).
3. Agreement with `estimate()` at low load (~2 % utilization, fixed lengths, batch 1): simulated median TTFT and
   TPOT against estimate's TTFT, its TPOT, and its decode cycle per token (its TPOT without the steady-state
   prefill-interleaving term, which a lone request does not pay)."""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date

from planner import api
from planner.sim import simulate_plan

ISL, OSL = 1024, 256


def plan(batch: int, replicas: int = 1) -> dict:
    return {"model": "llama-3.1-8b", "gpu": "h100-sxm",
            "parallelism": {"tp": 1, "pp": 1, "ep": 1, "replicas": replicas},
            "batch": batch, "precision": {"weights": "bf16", "kv": "bf16"},
            "workload": {"isl": ISL, "osl": OSL, "rate_rps": None}, "slo": {"ttft_s": 0.5, "tpot_s": 0.05}}


def capacity_rps(batch: int) -> float:
    est = api.estimate("llama-3.1-8b", "h100-sxm", batch=batch, isl=ISL, osl=OSL)
    return est.output_tokens_per_s / OSL


def speed(requests: int) -> list[dict]:
    rows = []
    cap = capacity_rps(256)
    for replicas, balancer, load in ((1, "least-loaded", 0.3), (1, "least-loaded", 0.8), (1, "least-loaded", 1.2),
                                     (4, "least-loaded", 0.8), (4, "round-robin", 0.8),
                                     (16, "least-loaded", 0.8), (16, "round-robin", 0.8)):
        t0, c0 = time.perf_counter(), time.process_time()
        r = simulate_plan(plan(256, replicas), rate_rps=load * cap * replicas, requests=requests, seed=1,
                          lengths="exponential", balancer=balancer)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows.append({"replicas": replicas, "balancer": balancer, "load": load, "requests": r["requests"]["simulated"],
                     "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                     "requests_per_wall_s": round(r["requests"]["simulated"] / wall),
                     "simulated_s": r["makespan_s"], "ttft_p50_s": r["ttft_s"]["p50"], "tpot_p50_s": r["tpot_s"]["p50"],
                     "preemptions": r["requests"]["preemptions"]})
    return rows


def batching(requests: int) -> list[dict]:
    rows = []
    for batch in (64, 256):
        rate = 3 * capacity_rps(batch)
        for lengths in ("fixed", "uniform", "exponential"):
            thr = {}
            for mode in ("continuous", "static"):
                r = simulate_plan(plan(batch), rate_rps=rate, requests=requests, seed=2, lengths=lengths,
                                  batching=mode)
                thr[mode] = r["throughput"]["output_tokens_per_s"]
            rows.append({"batch": batch, "lengths": lengths, "continuous_tok_s": round(thr["continuous"]),
                         "static_tok_s": round(thr["static"]), "ratio": round(thr["continuous"] / thr["static"], 2)})
    return rows


LOW_LOAD_CASES = [("llama-3.1-8b", {}), ("llama-3.1-70b", {"tp": 4, "pp": 2}), ("mixtral-8x7b", {"tp": 2, "ep": 2}),
                  ("llama-3.1-70b", {"tp": 4, "spec_draft": "llama-3.1-8b", "spec_gamma": 4, "spec_alpha": 0.7})]


def agreement() -> list[dict]:
    from planner.perf.specdec import expected_tokens_per_step

    rows = []
    for model, kw in LOW_LOAD_CASES:
        est = api.estimate(model, "h100-sxm", batch=1, isl=ISL, osl=OSL, **kw)
        rate = 0.02 / (est.ttft_s + (OSL - 1) * est.tpot_s)
        r = simulate_plan(est.to_dict(), rate_rps=rate, requests=300, seed=5)
        per_token = (1.0 if "spec_draft" not in kw
                     else float(expected_tokens_per_step(kw["spec_alpha"], kw["spec_gamma"])))
        rows.append({"model": model, "config": " ".join(f"{k}={v}" for k, v in kw.items()) or "tp=1",
                     "utilization": r["utilization"], "sim_ttft_s": r["ttft_s"]["p50"], "est_ttft_s": est.ttft_s,
                     "sim_tpot_s": r["tpot_s"]["p50"], "est_tpot_s": est.tpot_s,
                     "est_cycle_per_token_s": est.decode_cycle_s / per_token})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=100_000, help="requests per speed run")
    ap.add_argument("--batching-requests", type=int, default=20_000, help="requests per batching comparison run")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    out = {"date": date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
           f"Python {platform.python_version()}", "speed": speed(a.requests), "batching": batching(a.batching_requests),
           "agreement": agreement()}
    if a.json:
        print(json.dumps(out, indent=2))
        return
    print(f"date {out['date']}; machine {out['machine']}\n")
    print("| replicas | balancer | load (x capacity) | requests | wall s | CPU s | simulated requests / wall s | "
          "simulated span s | TTFT p50 ms | TPOT p50 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in out["speed"]:
        print(f"| {r['replicas']} | {r['balancer']} | {r['load']} | {r['requests']:,} | {r['wall_s']} | "
              f"{r['cpu_s']} | "
              f"{r['requests_per_wall_s']:,} | {r['simulated_s']:.0f} | {r['ttft_p50_s'] * 1000:.1f} | "
              f"{r['tpot_p50_s'] * 1000:.1f} |")
    print("\n| batch | output lengths | continuous tok/s | static tok/s | continuous / static |")
    print("|---|---|---|---|---|")
    for r in out["batching"]:
        print(f"| {r['batch']} | {r['lengths']} | {r['continuous_tok_s']:,} | {r['static_tok_s']:,} | {r['ratio']} |")
    print("\n| model | config | utilization | TTFT p50 sim / estimate ms | TPOT p50 sim ms | estimate TPOT ms (diff) "
          "| estimate cycle per token ms (diff) |")
    print("|---|---|---|---|---|---|---|")
    for r in out["agreement"]:
        d1 = r["sim_tpot_s"] / r["est_tpot_s"] - 1
        d2 = r["sim_tpot_s"] / r["est_cycle_per_token_s"] - 1
        print(f"| {r['model']} | {r['config']} | {r['utilization']:.1%} | {r['sim_ttft_s'] * 1000:.2f} / "
              f"{r['est_ttft_s'] * 1000:.2f} | {r['sim_tpot_s'] * 1000:.3f} | "
              f"{r['est_tpot_s'] * 1000:.3f} ({d1:+.1%}) | "
              f"{r['est_cycle_per_token_s'] * 1000:.3f} ({d2:+.1%}) |")


if __name__ == "__main__":
    main()
