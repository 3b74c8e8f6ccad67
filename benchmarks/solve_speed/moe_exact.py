"""Exact space against the grid for MoE requests of growing size (the `MAX_EXACT_MOE_SHAPES` decision,
planner/search/solve.py).

    python benchmarks/solve_speed/moe_exact.py            # markdown table, each cell a fresh process
    python benchmarks/solve_speed/moe_exact.py --big      # also the whole-catalog 1.8T MoE headline (~30 s)

Each cell times `planner.search.solve.search(request)` in a fresh interpreter (imports excluded; colocated only,
no disaggregated pools) with the exact space forced on or off, and reports the plan and its $/M output tokens."""
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
BIG = ("gpt4-moe-rumored", {"isl": 2000, "osl": 500, "min_tokens_per_s_user": 8, "max_gpus": 1024})

CHILD = """
import json, sys, time
import planner.search.solve as sv
from planner.api import make_request
from planner.search.space import count_shapes
mode, model, kw = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
req, cat = make_request(model, **kw)
sv._exact_affordable = (lambda r: True) if mode == "exact" else (lambda r: False)
t0 = time.perf_counter()
res = sv.search(req, cat.perf)
wall = time.perf_counter() - t0
b = res.best
print(json.dumps({"shapes": count_shapes(req), "s": round(wall, 2), "space": res.stats.space,
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
    print("| request | shapes | grid s | exact s | grid plan, $/M out | exact plan, $/M out |")
    print("|---|---|---|---|---|---|")
    for model, kw in CASES + ([BIG] if args.big else []):
        g, e = run("grid", model, kw), run("exact", model, kw)
        print(f"| {model} {kw} | {g['shapes']:,} | {g['s']} | {e['s']} | {g['plan']}, {g['usd_per_m']} | "
              f"{e['plan']}, {e['usd_per_m']} |")


if __name__ == "__main__":
    main()
