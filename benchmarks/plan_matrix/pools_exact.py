"""The disaggregated pools' CPU over the grid's PP/TP (`disagg.candidate_pools`, `--pool-space grid`) against every
PP and TP (`disagg.exact_space_pools`, the default: the pools of the shapes of least bound first, their best pair
the incumbent, then the exact space pruned by the pair bound; and the exact space unpruned), with the best pair
each gives (objective, GPUs).

    python benchmarks/plan_matrix/pools_exact.py [CASE ...] [--repeat N]

Each (case, space) runs in a fresh process (the perf model's caches cold), CPU seconds by `time.process_time`
around the pools alone (the rest of `planner plan` runs as usual). Timings on a shared machine are noisy: compare
the spaces within one run."""
from __future__ import annotations

import json
import subprocess
import sys

CASES = {
    "headline": "--model gpt4-moe-rumored --isl 2000 --osl 500 --min-tokens-per-s-user 8 --max-gpus 1024",
    "deepseek-v3-all-2000": ("--model deepseek-v3 --isl 2000 --osl 500 --min-tokens-per-s-user 20 --max-gpus 1024 "
                             "--weights bf16,fp8,int8,int4,fp4 --kv bf16,fp8,int8"),
}
SPACES = ("grid", "pruned", "exact")

CHILD = r'''
import sys, time, json, io, contextlib
import planner.disagg as D
from planner.fleet.pool_space import exact_pools, pool_request
space = sys.argv[1]
grid_pools = D.candidate_pools
out = {}
def pools(req, p):
    t = time.process_time()
    if space == "grid":
        got = grid_pools(req, p)
    elif space == "pruned":
        D.candidate_pools = grid_pools
        got = D.exact_space_pools(req, p)
    else:
        limits = {g.id: req.gpu_limit(g) for g in req.gpus if req.gpu_limit(g) is not None}
        got = exact_pools(0, pool_request(req.model, req.workload, req.slo, req.gpus, weights=req.weights,
                                          kv=req.kv, max_gpus_per_type=limits, engine=req.engine), p,
                          ("prefill", "decode"))
    out["cpu_s"] = time.process_time() - t
    out["pools"] = len(got)
    found = D.best_pair(req, got, p.max_batch)[0]
    if found is not None:
        a, d, n_p, n_d, obj = found
        out["objective"], out["gpus"] = obj, n_p * a.gpus + n_d * d.gpus
        out["pair"] = f"{n_p}x{a.gpus} {a.gpu} PP{a.row.pp} TP{a.row.tp} + {n_d}x{d.gpus} {d.gpu} PP{d.row.pp} TP{d.row.tp} b{d.row.batch}"
    return got
D.candidate_pools = pools
from planner.cli import main
# --pool-space grid: search_disagg asks candidate_pools (hooked above) for the pools, whatever the space timed
sys.argv = ["planner", "plan"] + sys.argv[2:] + ["--pool-space", "grid", "--json"]
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(standalone_mode=False)
    except SystemExit:
        pass
print(json.dumps(out))
'''


def run(case: str, space: str) -> dict:
    r = subprocess.run([sys.executable, "-c", CHILD, space] + CASES[case].split(), capture_output=True, text=True,
                       check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    repeat = 1
    if "--repeat" in argv:
        k = argv.index("--repeat")
        repeat = int(argv[k + 1])
        argv = argv[:k] + argv[k + 2:]
    cases = argv or list(CASES)
    print("| case | space | pools CPU s | pools | best pair objective | GPUs | pair |")
    print("|---|---|---:|---:|---:|---:|---|")
    for case in cases:
        for _ in range(repeat):
            for space in SPACES:
                x = run(case, space)
                print(f"| {case} | {space} | {x['cpu_s']:.3f} | {x['pools']} | {x.get('objective')} | "
                      f"{x.get('gpus')} | {x.get('pair')} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
