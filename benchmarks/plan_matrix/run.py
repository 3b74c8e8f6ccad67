"""How long `planner plan` takes over what users ask: every preset × precisions × workload × demand.

    python benchmarks/plan_matrix/run.py                 # the whole matrix (192 plans + frontier + fleet), markdown
    python benchmarks/plan_matrix/run.py --quick         # 4 presets × 2 precisions × 2 workloads × 2 demands
    python benchmarks/plan_matrix/run.py --json          # the same figures as JSON
    python benchmarks/plan_matrix/run.py --out FILE      # also write the markdown to FILE

Each case is `planner plan --model PRESET --isl I --osl O --min-tokens-per-s-user 20 --max-gpus 1024 [--weights
bf16,fp8,int8,int4,fp4 --kv bf16,fp8,int8] [--rate-rps 50] --json --timings` over the whole catalog, run as a fresh
subprocess: wall time includes Python start-up, imports (from bytecode cached first, as an installed package's:
machine.cache_bytecode) and catalog loading, as a user sees it. Peak memory is the
child's maximum resident set (os.wait4). From the plan's `solver` block: status, gap, rows, rows after bounds; the
colocated search's solves and CP-SAT, bound and table seconds (a disaggregated plan's `solver.colocated`: that
search ran first, as the pair's rival), the pools' seconds, every confirming simulation's seconds and the planning
call's `total_s` (api.plan, start-up excluded), blank where that phase did not run. A case whose request is out of
range (e.g. a 32k prompt on a 2k-context model) is listed with its
one-line error and left out of the timing statistics.

Then one `planner frontier` per preset (default precisions, ISL 2000 / OSL 500) and the fleet examples, timed the
same way (issue #16 item 4). Targets (issue #16): median <= 1 s, slowest <= 2 s, every plan OPTIMAL."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from machine import cache_bytecode, describe  # noqa: E402  (benchmarks/machine.py)

ROOT = Path(__file__).resolve().parent.parent.parent
WORKLOADS = [(1000, 300), (2000, 500), (8000, 2000), (32000, 1000)]
ALL_PRECISIONS = ["--weights", "bf16,fp8,int8,int4,fp4", "--kv", "bf16,fp8,int8"]
DEMAND = ["--rate-rps", "50"]
COMMON = ["--min-tokens-per-s-user", "20", "--max-gpus", "1024"]
QUICK_PRESETS = ["llama-3.1-70b", "deepseek-v3", "gpt4-moe-rumored", "mixtral-8x22b"]
TARGET_MEDIAN_S, TARGET_SLOWEST_S = 1.0, 2.0


def planner_command() -> list[str]:
    script = Path(sys.executable).with_name("planner")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from planner.cli import main; main()"]


def run_with_rss(args: list[str]) -> dict:
    """One subprocess, reaped with os.wait4 so that its own peak RSS is known: wall time, peak RSS (MiB), exit
    code, stdout, the last line of stderr."""
    t0 = time.perf_counter()
    p = subprocess.Popen(planner_command() + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=ROOT)
    # read both pipes to the end before reaping (a full pipe would block the child)
    out, err = p.stdout.read(), p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    return {"wall_s": round(wall, 3), "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
            "peak_mib": round(usage.ru_maxrss / 1024, 1), "exit_code": p.returncode,
            "stdout": out, "stderr": err.strip().splitlines()[-1] if err.strip() else ""}


def plan_case(preset: str, all_precisions: bool, isl: int, osl: int, demand: bool) -> dict:
    args = ["plan", "--model", preset, "--isl", str(isl), "--osl", str(osl), *COMMON,
            *(ALL_PRECISIONS if all_precisions else []), *(DEMAND if demand else []), "--json", "--timings"]
    r = run_with_rss(args)
    row = {"preset": preset, "precisions": "all" if all_precisions else "default", "isl": isl, "osl": osl,
           "demand": "50 req/s" if demand else "none", "wall_s": r["wall_s"], "cpu_s": r["cpu_s"],
           "peak_mib": r["peak_mib"],
           "exit_code": r["exit_code"]}
    if r["exit_code"] == 0:
        d = json.loads(r["stdout"])
        s = d["solver"]
        c = s["candidates"]
        # --timings: a disaggregated plan's colocated search (its rival, run first) is `solver.colocated`; a
        # colocated plan's is `solver` itself; the pools and every confirming simulation have their own phase
        col = s.get("colocated", s)
        row.update(status=s["status"], gap=s["gap"], shapes=c.get("shapes"), rows=c["rows"],
                   rows_after_bounds=c["rows_after_bounds"], solves=col.get("cp_sat_solves"),
                   cp_sat_s=col.get("cp_sat_wall_s"), bound_s=col.get("bound_s"), table_s=col.get("table_s"),
                   search_s=col.get("wall_s"), pools_s=s.get("pools", {}).get("wall_s"),
                   sim_s=s.get("simulation", {}).get("wall_s"), total_s=s.get("total_s"),
                   plan=f"{d['total_gpus']}x {d['gpu']} TP{d['parallelism']['tp']} PP{d['parallelism']['pp']} "
                        f"EP{d['parallelism']['ep']} b{d['batch']} {d['precision']['weights']}/{d['precision']['kv']}")
    else:
        row.update(status="INFEASIBLE" if r["exit_code"] == 1 else f"exit {r['exit_code']}", error=r["stderr"][:160])
    return row


def frontier_case(preset: str) -> dict:
    r = run_with_rss(["frontier", "--model", preset, "--isl", "2000", "--osl", "500", "--max-gpus", "1024", "--json"])
    points = len(json.loads(r["stdout"])["points"]) if r["exit_code"] == 0 else None
    return {"command": f"frontier --model {preset} --isl 2000 --osl 500 --max-gpus 1024", "wall_s": r["wall_s"],
            "cpu_s": r["cpu_s"], "peak_mib": r["peak_mib"], "exit_code": r["exit_code"], "points": points}


def fleet_case(path: Path) -> dict:
    r = run_with_rss(["fleet", str(path), "--json"])
    return {"command": f"fleet {path.relative_to(ROOT)}", "wall_s": r["wall_s"], "cpu_s": r["cpu_s"],
            "peak_mib": r["peak_mib"],
            "exit_code": r["exit_code"], "points": None}


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summarize(rows: list[dict]) -> dict:
    timed = [r for r in rows if r["status"] in ("OPTIMAL", "FEASIBLE", "INFEASIBLE")]
    walls = [r["wall_s"] for r in timed]
    slow = max(timed, key=lambda r: r["wall_s"]) if timed else None
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    return {"cases": len(rows), "timed": len(timed), "statuses": statuses,
            "median_s": round(statistics.median(walls), 3) if walls else None,
            "p90_s": round(percentile(walls, 0.9), 3) if walls else None,
            "slowest_s": slow["wall_s"] if slow else None,
            "cpu_median_s": round(statistics.median([r["cpu_s"] for r in timed]), 3) if timed else None,
            "cpu_max_s": max((r["cpu_s"] for r in timed), default=None),
            "slowest_case": None if slow is None else
            f"{slow['preset']} {slow['precisions']} {slow['isl']}/{slow['osl']} demand {slow['demand']}",
            "peak_mib": max((r["peak_mib"] for r in rows if r["peak_mib"]), default=None),
            "cp_sat_s_median": round(statistics.median([r["cp_sat_s"] for r in rows if r.get("cp_sat_s") is not None]), 4)
            if any(r.get("cp_sat_s") is not None for r in rows) else None}


def markdown(rows: list[dict], extra: list[dict], summary: dict, argv: list[str], load: tuple) -> str:
    lines = ["# Plan matrix: `planner plan` over presets × precisions × workloads × demand", "",
             f"Command: `python benchmarks/plan_matrix/run.py{' ' + ' '.join(argv) if argv else ''}`  ",
             f"Machine: {describe()}; 1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end  ",
             f"Date: {date.today().isoformat()}", "",
             "Every case: whole catalog, `--min-tokens-per-s-user 20 --max-gpus 1024`; \"all\" precisions add "
             "`--weights bf16,fp8,int8,int4,fp4 --kv bf16,fp8,int8`; the demand is `--rate-rps 50`. Wall time is "
             "the subprocess, start-up included (the package's bytecode cached first).", "",
             "## Summary", "",
             f"- cases: {summary['cases']} ({summary['timed']} timed; statuses {summary['statuses']})",
             f"- wall time: median **{summary['median_s']} s**, p90 {summary['p90_s']} s, slowest "
             f"**{summary['slowest_s']} s** ({summary['slowest_case']}); targets: median <= {TARGET_MEDIAN_S} s, "
             f"slowest <= {TARGET_SLOWEST_S} s",
             f"- CPU time (user + system, the measure that load on a shared machine moves least): median "
             f"{summary['cpu_median_s']} s, largest {summary['cpu_max_s']} s",
             f"- peak memory (max resident set of one plan): {summary['peak_mib']} MiB",
             f"- CP-SAT time per plan (all solves together), median: {summary['cp_sat_s_median']} s", "",
             "## Plans", "",
             "| preset | precisions | ISL/OSL | demand | wall s | CPU s | peak MiB | status | shapes | rows "
             "| rows after bounds | solves | CP-SAT s | bound s | table s | pools s | sim s | total s | plan |",
             "|---|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        r = {k: ("" if v is None else v) for k, v in r.items()}
        lines.append(f"| {r['preset']} | {r['precisions']} | {r['isl']}/{r['osl']} | {r['demand']} | {r['wall_s']} "
                     f"| {r['cpu_s']} | {r['peak_mib']} | {r['status']} | {r.get('shapes', '')} | {r.get('rows', '')} "
                     f"| {r.get('rows_after_bounds', '')} | {r.get('solves', '')} | {r.get('cp_sat_s', '')} "
                     f"| {r.get('bound_s', '')} | {r.get('table_s', '')} | {r.get('pools_s', '')} "
                     f"| {r.get('sim_s', '')} "
                     f"| {r.get('total_s', '')} | {r.get('plan', r.get('error', ''))} |")
    if extra:
        lines += ["", "## Frontier and fleet", "", "| command | wall s | CPU s | peak MiB | exit | points |",
                  "|---|---:|---:|---:|---:|---:|"]
        for r in extra:
            lines.append(f"| `planner {r['command']}` | {r['wall_s']} | {r['cpu_s']} | {r['peak_mib']} | {r['exit_code']} "
                         f"| {r['points'] if r['points'] is not None else ''} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 presets, ISL/OSL 2000/500 and 8000/2000, no frontier")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", default=None, help="also write the markdown here")
    ap.add_argument("--presets", default=None, help="comma-separated presets (default: all, or the quick four)")
    a = ap.parse_args()
    from planner.catalog import model_presets

    presets = a.presets.split(",") if a.presets else (QUICK_PRESETS if a.quick else model_presets())
    workloads = [(2000, 500), (8000, 2000)] if a.quick else WORKLOADS
    cache_bytecode()  # start-up as an installed package's (machine.cache_bytecode)
    load0 = os.getloadavg()[0]
    rows = []
    for preset in presets:
        for allp in (False, True):
            for isl, osl in workloads:
                for demand in (False, True):
                    rows.append(plan_case(preset, allp, isl, osl, demand))
                    print(f"{rows[-1]['preset']:>22} {rows[-1]['precisions']:>7} {isl:>5}/{osl:<4} "
                          f"{rows[-1]['demand']:>8} {rows[-1]['wall_s']:6.2f} s {rows[-1]['status']}", file=sys.stderr)
    extra = []
    if not a.quick:
        for preset in presets:
            extra.append(frontier_case(preset))
        for path in sorted((ROOT / "examples").glob("fleet-*.toml")):
            extra.append(fleet_case(path))
    summary = summarize(rows)
    argv = sys.argv[1:]
    md = markdown(rows, extra, summary, [x for x in argv if x != "--json"], (load0, os.getloadavg()[0]))
    if a.out:
        Path(a.out).write_text(md)
    if a.json:
        print(json.dumps({"summary": summary, "plans": rows, "frontier_and_fleet": extra}, indent=2))
    else:
        print(md)


if __name__ == "__main__":
    main()
