"""How fast `planner plan` finds and proves the cheapest plan, and how that grows with the search space.

    python benchmarks/solve_speed/run.py              # markdown tables (as recorded in RESULTS.md), ~2 min
    python benchmarks/solve_speed/run.py --json       # the same figures as JSON
    python benchmarks/solve_speed/run.py --quick      # fewer repeats

Every plan is timed as a user sees it: `planner plan ... --json --timings` run as a fresh subprocess (Python
start-up, imports from the package's cached bytecode (machine.cache_bytecode), catalog and model loading, tabulation, bounds, CP-SAT for the best plan and for the best plan
of every other GPU type, floating-point verification, JSON), median of several repeats.

1. Headline: the rumored 1.8T MoE (`gpt4-moe-rumored`, ISL 2000, OSL 500, 8 tok/s/user, --max-gpus 1024) over
   the whole catalog. Target (issue #3): < 2 s per plan including start-up, proven OPTIMAL.
2. Growth with catalog size (1, 2, 4, 8, all GPU types), with --max-gpus (64 .. 1024), and with the layer count
   (synthetic copies of the 1.8T config with 30 / 60 / 120 / 240 layers).
3. Against the exhaustive oracle (planner/search/oracle.py) on the same space: it cannot enumerate the headline
   space, so its placements are counted, it is timed on reduced spaces where it finishes (the same architecture
   with 12 and 24 layers, one GPU type, pp <= 4) beside CP-SAT on every row of them (no pruning) and the full
   pipeline, and the full-space time is extrapolated from its measured cost per evaluated placement.
4. Where the time goes: `python -X importtime` for the imports and cProfile of the in-process plan by phase."""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from machine import cache_bytecode, describe  # noqa: E402  (benchmarks/machine.py)

MODEL = "gpt4-moe-rumored"
HEADLINE = ["--model", MODEL, "--isl", "2000", "--osl", "500", "--min-tokens-per-s-user", "8"]
TARGET_S = 2.0
# GPU types added in this order for the catalog-size sweep (the headline's two A100/H100 rivals first)
REDUCED_LAYERS = (12, 24)  # layer counts of the spaces the oracle enumerates
GPU_ORDER = ["h100-sxm", "a100-40gb", "h200", "mi325x", "b200", "gb200", "l40s", "mi300x"]


def planner_command() -> list[str]:
    """The installed console script next to this interpreter (what `pip install` puts on PATH), else the same
    entry point through `python -c`."""
    script = Path(sys.executable).with_name("planner")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from planner.cli import main; main()"]


def run_plan(args: list[str], repeats: int) -> dict:
    """Median wall time of `planner plan ARGS --json --timings` as a subprocess, and what the last run said."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        p = subprocess.run(planner_command() + ["plan", *args, "--json", "--timings"], capture_output=True, text=True)
        walls.append(time.perf_counter() - t0)
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(c1.ru_utime - c0.ru_utime + c1.ru_stime - c0.ru_stime)
        out = p
    # CPU time (user + system) is reported beside wall time: on a shared machine it varies far less
    row: dict = {"wall_s_median": round(statistics.median(walls), 3), "wall_s_min": round(min(walls), 3),
                 "wall_s_max": round(max(walls), 3), "cpu_s_median": round(statistics.median(cpus), 3),
                 "repeats": repeats, "exit_code": out.returncode}
    if out.returncode == 0:
        d = json.loads(out.stdout)
        s = d["solver"]
        row.update(status=s["status"], gap=s["gap"], rows=s["candidates"]["rows"],
                   placements=s["candidates"]["placements"], rows_after_bounds=s["candidates"]["rows_after_bounds"],
                   search_wall_s=s.get("wall_s"), cp_sat_wall_s=s.get("cp_sat_wall_s"),
                   plan=f"{d['total_gpus']} x {d['gpu']} TP{d['parallelism']['tp']}"
                        f"{' DP%d' % d['parallelism']['dp'] if d['parallelism'].get('dp', 1) > 1 else ''} "
                        f"PP{d['parallelism']['pp']} "
                        f"EP{d['parallelism']['ep']} batch {d['batch']} {d['precision']['weights']}/"
                        f"{d['precision']['kv']}",
                   usd_per_million_output_tokens=d["cost"]["usd_per_million_output_tokens"])
    else:
        row.update(status="infeasible" if out.returncode == 1 else "error", message=out.stderr.strip()[:300])
    return row


def synthetic_config(layers: int, folder: Path) -> Path:
    """The 1.8T config with another layer count (everything per layer unchanged)."""
    from planner.catalog import CATALOG

    cfg = json.loads((CATALOG / "models" / f"{MODEL}.json").read_text(encoding="utf-8"))
    cfg["num_hidden_layers"] = layers
    path = folder / f"gpt4-moe-{layers}l" / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cfg), encoding="utf-8")
    return path.parent


def headline(repeats: int) -> dict:
    args = HEADLINE + ["--max-gpus", "1024"]
    run_plan(args, 1)  # warm-up (page cache, bytecode), not counted
    return {"args": args, **run_plan(args, repeats)}


def sweep_catalog(repeats: int) -> list[dict]:
    from planner.catalog import load_catalog

    everything = sorted(load_catalog().accelerators)
    out = []
    for n in (1, 2, 4, 8, len(everything)):
        gpus = GPU_ORDER[:n] if n < len(everything) else everything
        out.append({"gpu_types": n, "gpus": ",".join(gpus),
                    **run_plan(HEADLINE + ["--max-gpus", "1024", "--gpus", ",".join(gpus)], repeats)})
    return out


def sweep_max_gpus(repeats: int) -> list[dict]:
    return [{"max_gpus": g, **run_plan(HEADLINE + ["--max-gpus", str(g)], repeats)} for g in (64, 128, 256, 512, 1024)]


def sweep_layers(repeats: int, folder: Path) -> list[dict]:
    out = []
    for layers in (30, 60, 120, 240):
        model = synthetic_config(layers, folder)
        args = ["--model", str(model)] + HEADLINE[2:] + ["--max-gpus", "1024"]
        out.append({"layers": layers, **run_plan(args, repeats)})
    return out


def oracle_comparison(full_placements: int, plan_wall_s: float, folder: Path) -> dict:
    """Time the exhaustive oracle on reduced spaces it can enumerate (12 and 24 layers), CP-SAT on every row of
    the same spaces (no pruning), and the full pipeline."""
    from planner.api import make_request
    from planner.catalog import load_model
    from planner.search import cpsat, oracle
    from planner.search.solve import search
    from planner.search.space import enumerate_rows
    from planner.search.table import Limits, build_table

    spaces = []
    for layers in REDUCED_LAYERS:
        model = load_model(str(synthetic_config(layers, folder)))
        req, cat = make_request(model, isl=2000, osl=500, min_tokens_per_s_user=8, gpus="h100-sxm", max_gpus=1024,
                                pp=[1, 2, 3, 4])
        req = req.grid()  # the oracle enumerates the grid's rows: the search is compared over that same space
        p = cat.perf
        rows = enumerate_rows(req, p.max_batch)
        t, lim = build_table(req, rows, p), Limits.of(req, p.max_batch)
        evaluations = sum(oracle.count_placements(t.num_layers, int(pp)) for pp in t.pp)
        t0 = time.perf_counter()
        ref = oracle.exhaustive(t, lim)
        oracle_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        sol = cpsat.solve(t, range(len(t)), lim, None)
        cpsat_all_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = search(req, p, alternatives=False)
        search_s = time.perf_counter() - t0
        assert ref is not None and sol is not None and sol.objective == res.best.objective == ref[2].objective
        spaces.append({"layers": layers, "rows": len(t), "placements": evaluations, "oracle_s": round(oracle_s, 3),
                       "oracle_us_per_placement": round(oracle_s / evaluations * 1e6, 2),
                       "cpsat_all_rows_s": round(cpsat_all_s, 3), "cpsat_status": sol.status,
                       "search_s": round(search_s, 4), "ratio_oracle_over_search": round(oracle_s / search_s),
                       "ratio_oracle_over_cpsat_all_rows": round(oracle_s / cpsat_all_s, 2)})
    per_placement_s = spaces[-1]["oracle_s"] / spaces[-1]["placements"]
    extrapolated_s = full_placements * per_placement_s
    return {
        "reduced_space": "the gpt4-moe architecture with fewer layers, h100-sxm only, pp in {1,2,3,4}, default "
                         "weights/kv/tp/ep/micro-batches, ISL 2000 OSL 500, 8 tok/s/user",
        "reduced": spaces,
        "full_placements": full_placements,
        "full_oracle_extrapolated_s": extrapolated_s,
        "full_oracle_extrapolated_years": extrapolated_s / (365.25 * 24 * 3600),
        "full_ratio_extrapolated": extrapolated_s / plan_wall_s,
    }


def import_profile() -> dict:
    """`python -X importtime` of the CLI's plan command: the whole command's wall time, and the import time summed
    by top-level package (each module's own time, so nothing is counted twice)."""
    code = ("import sys; sys.argv = ['planner', 'plan', " + ", ".join(repr(a) for a in HEADLINE)
            + ", '--max-gpus', '1024', '--json']\nfrom planner.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass")
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    per_pkg: dict[str, int] = {}
    for line in p.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| *(\S+)", line)
        if m:
            top = m.group(3).split(".")[0]
            per_pkg[top] = per_pkg.get(top, 0) + int(m.group(1))
    total = sum(per_pkg.values())
    top = sorted(per_pkg.items(), key=lambda kv: -kv[1])[:8]
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], capture_output=True)
    bare = time.perf_counter() - t0
    return {"wall_s": round(wall, 3), "python_startup_s": round(bare, 3), "imports_s": round(total / 1e6, 3),
            "top_imports_s": {k: round(v / 1e6, 3) for k, v in top}}


PHASES = {  # (file suffix, function name) -> label
    ("catalog.py", "load_catalog"): "load catalog",
    ("catalog.py", "load_model"): "load model",
    ("space.py", "enumerate_rows"): "enumerate rows",
    ("table.py", "build_table"): "tabulate (numpy perf terms)",
    ("table.py", "lower_bounds"): "lower bounds",
    ("solve.py", "_upper_bound"): "greedy upper bound",
    ("cpsat.py", "solve"): "CP-SAT (build + solve), all calls",
    ("estimate.py", "estimate"): "floating-point re-estimate",
    ("plan.py", "to_dict"): "plan JSON",
    ("solve.py", "search"): "search() total",
}


def phase_profile() -> dict:
    """cProfile of one in-process headline plan (after imports): cumulative seconds per phase."""
    from planner import api

    api.plan(MODEL, isl=2000, osl=500, min_tokens_per_s_user=8, max_gpus=1024)  # warm caches like the CLI's
    from planner import catalog

    catalog._shipped_docs.cache_clear()
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    d = api.plan(MODEL, isl=2000, osl=500, min_tokens_per_s_user=8, max_gpus=1024).to_dict()
    prof.disable()
    wall = time.perf_counter() - t0
    st = pstats.Stats(prof)
    phases: dict[str, dict] = {}
    for (file, _line, func), (_cc, nc, _tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        path = file.replace(os.sep, "/")
        for (suffix, name), label in PHASES.items():
            if func == name and "/planner/" in path and path.endswith("/" + suffix):
                phases[label] = {"calls": nc, "cumulative_s": round(ct, 4)}
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(12)
    return {"wall_s": round(wall, 3), "status": d["solver"]["status"], "phases": phases,
            "top_tottime": s.getvalue()}


def machine() -> str:
    return describe()


def markdown(r: dict) -> str:
    h = r["headline"]
    lines = ["# Solve speed: `planner plan`, start-up included", "",
             f"Command: `python benchmarks/solve_speed/run.py{' --quick' if r['quick'] else ''}`  ",
             f"Machine: {r['machine']}; 1-minute load average {r['load_average_start']:.1f} at the start, "
             f"{r['load_average_end']:.1f} at the end  ", f"Date: {r['date']}  ", f"Planner invoked as: `{r['planner']}`", "",
             "## 1. Headline: gpt4-moe-rumored, ISL 2000, OSL 500, 8 tok/s/user, --max-gpus 1024, whole catalog", "",
             f"`planner plan {' '.join(h['args'])} --json`", "",
             "| median wall s | min | max | median CPU s | repeats | status | gap | rows | rows after bounds | placements "
             "| plan | $/M out |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|",
             f"| {h['wall_s_median']} | {h['wall_s_min']} | {h['wall_s_max']} | {h['cpu_s_median']} | {h['repeats']} | "
             f"{h.get('status')} | "
             f"{h.get('gap')} | {h.get('rows')} | {h.get('rows_after_bounds')} | {h.get('placements', 0):.3g} | "
             f"{h.get('plan')} | {h.get('usd_per_million_output_tokens')} |", "",
             f"Target < {TARGET_S} s including start-up and OPTIMAL: "
             f"**{'met' if h['wall_s_median'] < TARGET_S and h.get('status') == 'OPTIMAL' else 'MISSED'}**.", ""]

    def table(title: str, key: str, rows: list[dict]) -> None:
        lines.extend([title, "", f"| {key} | median wall s | min wall s | median CPU s | search s (in-process) | status "
                                 "| rows | rows after bounds | placements | plan |",
                      "|---|---|---|---|---|---|---|---|---|---|"])
        for x in rows:
            head = f"| {x[key]} | {x['wall_s_median']} | {x['wall_s_min']} | {x['cpu_s_median']} |"
            lines.append(f"{head} {x.get('search_wall_s')} | {x.get('status')} | {x.get('rows', '')} | "
                         f"{x.get('rows_after_bounds', '')} | {x['placements']:.3g} | {x.get('plan')} |"
                         if "placements" in x else f"{head} | {x.get('status')} | | | | {x.get('message', '')} |")
        lines.append("")

    table("## 2a. Catalog size (GPU types, added in the order " + ", ".join(GPU_ORDER) + ", then all)",
          "gpu_types", r["catalog"])
    table("## 2b. --max-gpus (whole catalog)", "max_gpus", r["max_gpus"])
    table("## 2c. Layer count (synthetic copies of the 1.8T config, whole catalog, --max-gpus 1024)", "layers",
          r["layers"])
    o = r["oracle"]
    lines.extend([
        "## 3. Against the exhaustive oracle", "",
        f"Reduced spaces: {o['reduced_space']}. Same optimum from all three in each.", "",
        "| layers | rows | placements | oracle s (µs per placement) | CP-SAT on every row, no pruning, s | "
        "full pipeline in-process s | oracle / pipeline | oracle / CP-SAT every row |",
        "|---|---|---|---|---|---|---|---|"])
    for x in o["reduced"]:
        lines.append(f"| {x['layers']} | {x['rows']} | {x['placements']:,} | {x['oracle_s']} "
                     f"({x['oracle_us_per_placement']}) | {x['cpsat_all_rows_s']} ({x['cpsat_status']}) | "
                     f"{x['search_s']} | {x['ratio_oracle_over_search']:,}x | {x['ratio_oracle_over_cpsat_all_rows']}x |")
    lines.extend([
        "", f"Headline space: {o['full_placements']:.3g} placements. At the oracle's measured cost per placement "
        f"({o['reduced'][-1]['oracle_us_per_placement']} µs) that is {o['full_oracle_extrapolated_s']:.3g} s "
        f"({o['full_oracle_extrapolated_years']:.3g} years), {o['full_ratio_extrapolated']:.3g}x the headline plan's "
        "median wall time (extrapolated, not measured).", ""])
    i, ph = r["imports"], r["phases"]
    lines.extend([
        "## 4. Where the time goes (headline)", "",
        f"`python -X importtime`: whole command {i['wall_s']} s, of which imports {i['imports_s']} s "
        f"(bare `python -c pass`: {i['python_startup_s']} s). Import time by package (own time of its modules, s): "
        + ", ".join(f"{k} {v}" for k, v in i["top_imports_s"].items()) + ".", "",
        f"In-process plan (cProfile, after imports; cProfile itself adds overhead): {ph['wall_s']} s, {ph['status']}.",
        "", "| phase | calls | cumulative s |", "|---|---|---|"])
    for label in PHASES.values():
        if label in ph["phases"]:
            lines.append(f"| {label} | {ph['phases'][label]['calls']} | {ph['phases'][label]['cumulative_s']} |")
    lines.extend(["", "<details><summary>cProfile, top functions by own time</summary>", "", "```",
                  ph["top_tottime"].strip(), "```", "</details>", ""])
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    ap.add_argument("--quick", action="store_true", help="3 headline repeats, 1 per sweep point")
    a = ap.parse_args()
    reps, sweep_reps = (3, 1) if a.quick else (9, 5)
    cache_bytecode()  # start-up as an installed package's (machine.cache_bytecode)
    r: dict = {"date": date.today().isoformat(), "machine": machine(), "quick": a.quick,
               "planner": " ".join(planner_command()), "load_average_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        r["headline"] = headline(reps)
        r["catalog"] = sweep_catalog(sweep_reps)
        r["max_gpus"] = sweep_max_gpus(sweep_reps)
        r["layers"] = sweep_layers(sweep_reps, folder)
        r["oracle"] = oracle_comparison(r["headline"]["placements"], r["headline"]["wall_s_median"], folder)
    r["imports"] = import_profile()
    r["phases"] = phase_profile()
    r["load_average_end"] = os.getloadavg()[0]
    print(json.dumps(r, indent=2) if a.json else markdown(r))


if __name__ == "__main__":
    main()
