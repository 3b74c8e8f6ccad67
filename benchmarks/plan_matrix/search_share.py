"""CPU time of the colocated exact search (`planner.search.solve.search`) split into its own work and the perf-model
and CP-SAT calls it makes, per section (issue #16: the search's own share outside the perf model); with `--rows`,
the rows each step tabulates instead.

    python benchmarks/plan_matrix/search_share.py [CASE ...] [--repeat N] [--rows]

Cases: `headline` (the 1.8T MoE of benchmarks/solve_speed), `deepseek-v3-all` (the quick matrix's slowest: all
precisions, 8000/2000, 50 req/s, searched with the first percentile round's queueing bound) and `mixtral-8x22b-all`
(same workload). Each section's time is its own (the sections it calls subtracted), CPU time (time.process_time),
unprofiled; "perf" and "CP-SAT" are the calls into the perf model (step terms, hardware, pipeline link, the
chosen plans' verification, greedy placement) and OR-Tools. The first of the repeats pays the perf model's
caches (MoE routing statistics per distinct argument) cold; imports (ortools, networkx) are done before timing."""
from __future__ import annotations

import argparse
import gc
import time

CASES = {
    "headline": dict(model="gpt4-moe-rumored", isl=2000, osl=500, min_tokens_per_s_user=8, max_gpus=1024),
    "deepseek-v3-all": dict(model="deepseek-v3", isl=8000, osl=2000, min_tokens_per_s_user=20, max_gpus=1024,
                            weights=("bf16", "fp8", "int8", "int4", "fp4"), kv=("bf16", "fp8", "int8"), rate_rps=50),
    "deepseek-v3-all-2000": dict(model="deepseek-v3", isl=2000, osl=500, min_tokens_per_s_user=20, max_gpus=1024,
                                 weights=("bf16", "fp8", "int8", "int4", "fp4"), kv=("bf16", "fp8", "int8")),
    "mixtral-8x22b-all": dict(model="mixtral-8x22b", isl=8000, osl=2000, min_tokens_per_s_user=20, max_gpus=1024,
                              weights=("bf16", "fp8", "int8", "int4", "fp4"), kv=("bf16", "fp8", "int8"),
                              rate_rps=50),
}
OUTSIDE = ("perf", "CP-SAT")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cases", nargs="*", default=list(CASES), choices=list(CASES))
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--rows", action="store_true",
                    help="instead of times: the rows each step of the search tabulates (decode terms only or in full) "
                         "and their distinct units (shape without PP, pipeline link, micro-batch)")
    args = ap.parse_args()
    if args.rows:
        return rows_tabulated(args.cases)

    import networkx  # noqa: F401  (imported by the pipeline links; its import is start-up, not search)
    from ortools.sat.python import cp_model  # noqa: F401

    from planner import api
    from planner.plan_request import resolve
    from planner.search import bounds, placement, solve, space, table
    from planner.search.percentile import DEFAULT_SLO_PERCENTILE
    from planner.search.queueing import QueueTarget

    stack: list[float] = []
    own: dict[str, float] = {}

    def timed(f, label):
        def g(*a, **k):
            t0 = time.process_time()
            stack.append(0.0)
            try:
                return f(*a, **k)
            finally:
                dt = time.process_time() - t0
                child = stack.pop()
                own[label] = own.get(label, 0.0) + dt - child
                if stack:
                    stack[-1] += dt
        return g

    def wrap(mod, name, label=None):
        if hasattr(mod, name):
            setattr(mod, name, timed(getattr(mod, name), label or f"{mod.__name__.split('.')[-1]}.{name}"))

    for n in ("step_terms", "hardware", "pipeline_link_bytes_per_s", "draft_terms"):
        wrap(table, n, "perf")
    wrap(solve, "estimate", "perf")
    wrap(placement, "balance_layers", "perf")
    wrap(placement, "balance_layer_kinds", "perf")
    wrap(solve, "solve", "CP-SAT")
    table.ShapeTerms.of = classmethod(timed(table.ShapeTerms.of.__func__, "table.ShapeTerms.of"))
    for n in ("table_of", "memory_kib", "lower_bounds", "_units"):
        wrap(table, n)
    for n in ("table_of", "lower_bounds", "memory_fits", "memory_excess_kib"):
        wrap(bounds, n, f"table.{n}")
    for n in ("enumerate_shapes", "shape_groups"):
        wrap(bounds, n, f"space.{n}")
    for n in ("latency_depths", "cycle_floor", "_memory_top", "_last_true", "_improve", "queue_bound", "_gap_bound",
              "search_space", "build_space"):
        wrap(bounds, n)
    for n in ("build_space", "search_space", "queue_bound"):
        wrap(solve, n, f"bounds.{n}")
    wrap(solve, "lower_bounds", "table.lower_bounds")
    del space

    for case in args.cases:
        req, cat = api.search_request(resolve(None, dict(CASES[case])))
        w, slo = req.workload, req.slo
        queue = (None if w.demand_output_tokens_per_s is None or slo.ttft_s is None
                 else QueueTarget(DEFAULT_SLO_PERCENTILE, slo.ttft_s, w.demand_output_tokens_per_s / w.osl, {}))
        for k in range(args.repeat):
            own.clear()
            gc.collect()
            t0 = time.process_time()
            res = solve.search(req, cat.perf, queue=queue)
            cpu = time.process_time() - t0
            outside = sum(v for s, v in own.items() if s in OUTSIDE)
            r = res.best.row
            print(f"{case} run {k + 1}: search CPU {cpu:.3f} s = search's own {cpu - outside:.3f} s + perf "
                  f"{own.get('perf', 0.0):.3f} s + CP-SAT {own.get('CP-SAT', 0.0):.3f} s; {res.stats.examined} rows "
                  f"examined; plan {r.gpu.id} TP{r.tp} DP{r.dp} PP{r.pp} EP{r.ep} mb{r.micro_batch}, objective "
                  f"{res.best.objective}")
            rest = cpu - sum(own.values())
            for s, v in sorted(list(own.items()) + [("(rest of the search)", rest)], key=lambda x: -x[1]):
                if s not in OUTSIDE and v >= 0.0005:
                    print(f"    {s:28s} {v * 1000:7.1f} ms")


def rows_tabulated(cases: list[str]) -> None:
    """Per case, the search's `table_of` calls grouped by the step that asks (the caller's name; `Space.table`'s
    caller for its calls) and by what they tabulate: rows, units (`table._units`, what the perf model is asked
    for), and the full units asked for again in a later call."""
    import sys
    from collections import defaultdict

    import numpy as np

    from planner import api
    from planner.plan_request import resolve
    from planner.search import bounds, solve, table

    calls: list[tuple[str, bool, int, set]] = []
    real = table.table_of

    def counted(req, s, idx, mb, p, *a, decode_only=False, **k):
        f = sys._getframe(1)
        if f.f_code.co_name == "table":  # Space.table: the step that asked it
            f = f.f_back
        idx, mb_ = np.asarray(idx, np.int64), np.asarray(mb, np.int64)
        units = (set(zip(s.unit[idx].tolist(), mb_.tolist())) if req.spec is None and s.unit is not None
                 else set(range(len(idx))))
        calls.append((f.f_code.co_name, decode_only, len(idx), {(id(s), u) for u in units}))
        return real(req, s, idx, mb, p, *a, decode_only=decode_only, **k)

    bounds.table_of = counted
    for case in cases:
        calls.clear()
        req, cat = api.search_request(resolve(None, dict(CASES[case])))
        res = solve.search(req, cat.perf)
        print(f"{case}: {res.stats.examined} rows examined, {res.stats.rows_after_bounds} candidates after bounds")
        agg: dict = defaultdict(lambda: [0, 0, 0])
        seen: set = set()
        again = 0
        for name, dec, n, units in calls:
            a = agg[(name, dec)]
            a[0], a[1], a[2] = a[0] + 1, a[1] + n, a[2] + len(units)
            if not dec:
                again += len(units & seen)
                seen |= units
        for (name, dec), (k, n, u) in agg.items():
            print(f"    {name:16s} {'decode terms' if dec else 'full':12s} {k:3d} calls {n:8d} rows {u:8d} units")
        print(f"    full units asked for again in a later call: {again}")


if __name__ == "__main__":
    main()
