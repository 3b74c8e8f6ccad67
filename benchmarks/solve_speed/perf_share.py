"""CPU time a `planner plan` spends in the perf model's step terms (issue #16, session 13 moestats).

    python benchmarks/solve_speed/perf_share.py head|ds|ds2000 [--repeat N]

runs the command in-process N times (each in a fresh interpreter, so no memo carries over) and prints the
process's CPU time and the CPU time inside the perf model's entry points (perf.estimate.step_terms, estimate,
prefill_chunk_terms, chunk_base_layer_s, draft_terms and the simulator's direct layer steps; nested calls
counted once), and inside it the routing statistics (busiest_rank_load_ratio, expected_padded_rows as perf.step
calls them). To compare two trees, run it with PYTHONPATH=<tree> (the tree's `planner` is imported first).
`head` is the solve_speed headline, `ds` the plan matrix's slowest case (DeepSeek-V3, all precisions, 8000/2000
at 50 req/s), `ds2000` the quick plan matrix's slowest (DeepSeek-V3, all precisions, 2000/500, no demand), `mixtral` a
median case (Mixtral-8x22B, default precisions, 2000/500, no demand)."""
from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import time

COMMANDS = {
    "head": "plan --model gpt4-moe-rumored --isl 2000 --osl 500 --min-tokens-per-s-user 8 --max-gpus 1024 --json",
    "ds": "plan --model deepseek-v3 --isl 8000 --osl 2000 --min-tokens-per-s-user 20 --max-gpus 1024 "
          "--weights bf16,fp8,int8,int4,fp4 --kv bf16,fp8,int8 --rate-rps 50 --json",
    # the quick plan matrix's slowest case (session 15)
    "ds2000": "plan --model deepseek-v3 --isl 2000 --osl 500 --min-tokens-per-s-user 20 --max-gpus 1024 "
              "--weights bf16,fp8,int8,int4,fp4 --kv bf16,fp8,int8 --json",
    # the lead's median case in session 16's profile
    "mixtral": "plan --model mixtral-8x22b --isl 2000 --osl 500 --min-tokens-per-s-user 20 --max-gpus 1024 --json",
}
ENTRY = ("step_terms", "estimate", "prefill_chunk_terms", "chunk_base_layer_s", "draft_terms", "layer_step")
USERS = ("planner.search.table", "planner.sim.tables", "planner.search.solve", "planner.search.percentile",
         "planner.export.base", "planner.disagg", "planner.fleet.pools", "planner.api", "planner.search.bounds")
STATS = ("busiest_rank_load_ratio", "expected_padded_rows")  # the routing statistics, as perf.step calls them


def once(which: str) -> None:
    start = time.process_time()
    import planner.perf.estimate as est
    depth, spent = [0], [0.0]

    def timed(f):
        def inner(*a, **k):
            if depth[0]:
                return f(*a, **k)
            depth[0] += 1
            t0 = time.process_time()
            try:
                return f(*a, **k)
            finally:
                spent[0] += time.process_time() - t0
                depth[0] -= 1
        return inner

    for name in ENTRY:
        setattr(est, name, timed(getattr(est, name)))
    for module in USERS:
        m = importlib.import_module(module)
        for name in ENTRY:
            f = getattr(m, name, None)
            if f is not None and getattr(f, "__module__", "") == "planner.perf.estimate":
                setattr(m, name, getattr(est, name))
    import planner.perf.step as step
    stats = {}

    def timed_stat(name, f):
        def inner(*a, **k):
            t0 = time.process_time()
            try:
                return f(*a, **k)
            finally:
                stats[name] = stats.get(name, 0.0) + time.process_time() - t0
        return inner

    for name in STATS:  # (not nested in one another)
        setattr(step, name, timed_stat(name, getattr(step, name)))
    from planner.cli import main
    try:
        main(COMMANDS[which].split(), standalone_mode=False)
    except SystemExit:
        pass
    print(f"{which}: CPU {time.process_time() - start:.2f} s, perf step terms {spent[0]:.2f} s, of which "
          + ", ".join(f"{n} {stats.get(n, 0.0):.2f} s" for n in STATS), file=sys.stderr)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("which", choices=sorted(COMMANDS))
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.once:
        once(args.which)
    else:
        for _ in range(args.repeat):
            subprocess.run([sys.executable, __file__, args.which, "--once"], stdout=subprocess.DEVNULL, check=True)
