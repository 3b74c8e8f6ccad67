"""Exact space against the grid for MoE requests of growing size (until session 12 the `MAX_EXACT_MOE_SHAPES`
decision of planner/search/solve.py; now every colocated search is exact).

    python benchmarks/solve_speed/moe_exact.py            # markdown table, each cell a fresh process
    python benchmarks/solve_speed/moe_exact.py --big      # also whole-catalog requests (~1 min)

Each cell times `planner.search.solve.search(request)` in a fresh interpreter (imports excluded; colocated only,
no disaggregated pools) over the exact space or over the grid's lists (`Request.grid()`: the same rows as the
former grid search, now searched by the lazy search as pinned lists), and reports the plan and its $/M output
tokens: wall and CPU time (CPU varies far less on a shared machine), shapes in the space and shapes listed (those
whose depth can meet the latency targets, bounds.latency_depths)."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

CASES = [
    ("mixtral-8x22b", {"isl": 1000, "osl": 300, "min_tokens_per_s_user": 20, "gpus": "h100-sxm,mi300x"}),
    ("mixtral-8x22b", {"isl": 2000, "osl": 500, "min_tokens_per_s_user": 20, "gpus": "h100-sxm,h200,mi300x,b200"}),
    ("gpt4-moe-rumored", {"isl": 2000, "osl": 500, "min_tokens_per_s_user": 8, "max_gpus": 1024,
                          "gpus": "gb200,mi325x"}),
]
BIG = [("mixtral-8x22b", {"isl": 2000, "osl": 500, "min_tokens_per_s_user": 20, "max_gpus": 1024}),
       ("qwen3-235b-a22b", {"isl": 2000, "osl": 500, "min_tokens_per_s_user": 20, "max_gpus": 1024}),
       ("deepseek-v3", {"isl": 2000, "osl": 500, "min_tokens_per_s_user": 20, "max_gpus": 1024,
                        "weights": "bf16,fp8,int8,int4,fp4", "kv": "bf16,fp8,int8"}),
       ("gpt4-moe-rumored", {"isl": 2000, "osl": 500, "min_tokens_per_s_user": 8, "max_gpus": 1024})]

CHILD = """
import json, sys, time
import planner.search.solve as sv
from planner.api import make_request
from planner.search.space import count_shapes, enumerate_shapes
from planner.search.bounds import latency_depths
from planner.search.table import Limits
mode, model, kw = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
req, cat = make_request(model, **kw)
t0, c0 = time.perf_counter(), time.process_time()
res = sv.search(req if mode == "exact" else req.grid(), cat.perf)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
b = res.best
d = latency_depths(req, cat.perf, Limits.of(req, 1))
listed = len(enumerate_shapes(req, d))
print(json.dumps({"shapes": count_shapes(req), "listed": listed, "s": round(wall, 2), "cpu": round(cpu, 2),
                  "space": res.stats.space,
                  "usd_per_m": round(b.usd_per_million_output_tokens(None), 4),
                  "plan": f"{b.replicas} x {b.row.gpu.id} TP{b.row.tp} DP{b.row.dp} PP{b.row.pp} EP{b.row.ep} "
                          f"micro-batch {b.row.micro_batch}"}))
"""


def run(mode: str, model: str, kw: dict) -> dict:
    p = subprocess.run([sys.executable, "-c", CHILD, mode, model, json.dumps(kw)], capture_output=True, text=True,
                       check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--big", action="store_true")
    args = ap.parse_args()
    print("| request | shapes (listed) | grid s (CPU) | exact s (CPU) | grid plan, $/M out | exact plan, $/M out |")
    print("|---|---|---|---|---|---|")
    for model, kw in CASES + (BIG if args.big else []):
        g, e = run("grid", model, kw), run("exact", model, kw)
        print(f"| {model} {kw} | {g['shapes']:,} ({e['listed']:,}) | {g['s']} ({g['cpu']}) | {e['s']} ({e['cpu']}) | "
              f"{g['plan']}, {g['usd_per_m']} | {e['plan']}, {e['usd_per_m']} |")


if __name__ == "__main__":
    main()
