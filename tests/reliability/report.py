"""Measure the reliability table for the README: the bad-input corpus through every command, random mutations of
valid files, the independent checker over random requests, monotonicity pairs, byte-identical reruns, and the peak
memory of the biggest request. Every number in the table is counted by this run.

    python -m tests.reliability.report [--examples 300] [--out table.md]

(from the repository root; about three minutes on two cores with the defaults)."""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.cli import main

from . import checker, properties
from .cases import VALID_PLAN_ARGV, all_cases, crashed, plan_file_commands, problems
from .fuzz import TARGETS, fuzz_case, mutated, plan_file_targets
from .strategies import boundary_scenarios, scenarios
from .test_determinism import COMMANDS as DETERMINISM_COMMANDS
from .test_limits import BIGGEST_ARGV

KIND_NAMES = {
    "flag": "bad flags and flag combinations", "name": "unknown GPU / model names (did you mean)",
    "catalog": "malformed catalog TOML", "request": "malformed request TOML", "config": "malformed config.json",
    "plan-json": "malformed plan JSON (simulate, export)", "fleet": "malformed fleet request TOML",
    "train": "malformed training requests (flags, TOML)",
    "fuzz": "random mutations of valid files (all commands)",
}


def _settings(n: int):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def bad_inputs(mutations_per_target: int) -> tuple[Counter, Counter, Counter, list[str]]:
    """(tried, crashed, unclear) by kind, and the first few problems found."""
    runner = CliRunner()
    valid = runner.invoke(main, VALID_PLAN_ARGV).stdout.encode()
    commands = plan_file_commands(main)
    optional = tuple(c for c in ("fleet", "train") if c in main.commands)
    tried, crashes, unclear, notes = Counter(), Counter(), Counter(), []

    def run(case) -> None:
        with tempfile.TemporaryDirectory() as d:
            res = runner.invoke(main, case.materialize(Path(d)))
        tried[case.kind] += 1
        if crashed(res.exit_code, res.stdout, res.stderr):
            crashes[case.kind] += 1
            notes.append(f"CRASH {case.id}: {res.stderr.strip()[:200]}")
        elif problems(case, res.exit_code, res.stdout, res.stderr):
            unclear[case.kind] += 1
            notes.append(f"unclear {case.id}: {problems(case, res.exit_code, res.stdout, res.stderr)}")

    for case in all_cases(commands, valid, optional):
        run(case)
    def mutations_of(target):
        @_settings(mutations_per_target)
        @given(data=st.data())
        def mutate(data):
            run(fuzz_case(target, data.draw(mutated(target.base))))

        return mutate

    for target in TARGETS + plan_file_targets(commands, valid):
        mutations_of(target)()
    return tried, crashes, unclear, notes


def random_requests(n: int) -> tuple[list[str], Counter]:
    """Violations the checker found, and crashes (any exception but a PlannerError) by property."""
    violations: list[str] = []
    crashes: Counter = Counter()

    def guarded(what: str, fn, *args) -> None:
        try:
            violations.extend(fn(*args))
        except Exception as e:  # noqa: BLE001 - counted, then reported
            crashes[what] += 1
            violations.append(f"CRASH {what}: {type(e).__name__}: {str(e)[:200]}")

    @_settings(n)
    @given(scenarios())
    def plans(s):
        guarded("plans", properties.plan_is_sound, s)

    @_settings(max(1, n // 6))
    @given(scenarios(demand=False), st.lists(st.sampled_from([3.0, 8.0, 20.0, 33.3, 60.0, 120.0]), min_size=1,
                                             max_size=4, unique=True))
    def frontiers(s, speeds):
        guarded("frontier", properties.frontier_is_sound, s, tuple(speeds))

    @_settings(max(1, n // 6))
    @given(scenarios(), st.floats(0.3, 0.95))
    def monotone(s, factor):
        for loose, what in properties.relaxations(s, factor):
            guarded("monotonicity", properties.never_costs_more, s, loose, what)

    @_settings(n)
    @given(boundary_scenarios())
    def boundary(s):
        guarded("boundary", properties.accepted_input_never_crashes, s)

    plans()
    frontiers()
    monotone()
    boundary()
    return violations, crashes


def reruns() -> tuple[int, int]:
    """(commands rerun in a second process with another hash seed, how many differed)."""
    differ = 0
    for argv in DETERMINISM_COMMANDS.values():
        outs = set()
        for seed in ("0", "4242"):
            res = subprocess.run([sys.executable, "-c", "from planner.cli import main; main()", *argv],
                                 capture_output=True, timeout=600, env={**os.environ, "PYTHONHASHSEED": seed})
            outs.add(res.stdout)
        differ += len(outs) != 1
    return len(DETERMINISM_COMMANDS), differ


def injection_strings(n: int) -> tuple[int, int, int, int]:
    """(string pairs tried, refused at the edge, crashes, injections or wrong commands) of the export injection
    property (tests/export/injection.py): `n` random (model name, weights path) pairs per engine."""
    from planner import api

    from tests.export.injection import ENGINES, check, texts

    plan = api.plan("llama-3.1-8b", isl=1000, osl=200, gpus="h100-sxm", time_limit_s=20).to_dict()
    counts = Counter()

    def for_engine(engine: str):
        @_settings(n)
        @given(name=texts, path=texts)
        def run(name, path):
            with tempfile.TemporaryDirectory() as d:
                problem = check(engine, plan, name, path, Path(d), refused=counts)
            counts["tried"] += 1
            if problem is not None:
                counts["crash" if problem.startswith("crash") else "problem"] += 1

        return run

    for engine in ENGINES:
        for_engine(engine)()
    return counts["tried"], counts["refused"], counts["crash"], counts["problem"]


def peak_memory() -> tuple[float, float]:
    """(peak RSS in bytes, wall seconds) of the biggest supported request, in a fresh process."""
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", "from planner.cli import main; main()", *BIGGEST_ARGV],
                         capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - start
    if res.returncode != 0:
        raise SystemExit(f"biggest request failed: {res.stderr}")
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024.0, wall


def injection_row(inj: tuple[int, int, int, int]) -> str:
    tried, refused, crashes, problems = inj
    return (f"| random Unicode model names and paths x 4 engines, scripts run with stand-in engines, manifests parsed "
            f"(refused at the edge; violations = injections executed or wrong commands) | {tried} ({refused} refused) "
            f"| {crashes} | {problems} |")


def table(tried, crashes, unclear, violations, prop_crashes, outcomes, stats, rerun, peak, inj=None) -> str:
    def viol(*prefixes: str) -> int:
        return sum(1 for v in violations if v.startswith(prefixes))

    rows = ["| check | count | crashes | violations |", "|---|---:|---:|---:|"]
    for kind in KIND_NAMES:
        if tried[kind]:
            rows.append(f"| {KIND_NAMES[kind]} | {tried[kind]} | {crashes[kind]} | {unclear[kind]} |")
    rows.append(f"| **bad inputs, total** | **{sum(tried.values())}** | **{sum(crashes.values())}** | "
                f"**{sum(unclear.values())}** |")
    rows.append(f"| random requests (plan returned / infeasible) | {outcomes['plan'] + outcomes['infeasible']} "
                f"({outcomes['plan']} / {outcomes['infeasible']}) | {prop_crashes['plans']} | – |")
    rows.append(f"| requests at the validation limits (planned / infeasible or refused) | "
                f"{outcomes['boundary plan'] + outcomes['boundary refused']} ({outcomes['boundary plan']} / "
                f"{outcomes['boundary refused']}) | {prop_crashes['boundary']} | – |")
    rows.append(f"| plans checked by the independent checker | {stats['plans']} | 0 | {viol('plan')} |")
    rows.append(f"| alternatives (best plan per other GPU type) checked | {stats['alternatives']} | 0 | "
                f"{viol('alternative')} |")
    rows.append(f"| frontier points checked | {stats['frontier_points']} | {prop_crashes['frontier']} | "
                f"{viol('frontier')} |")
    mono = viol("looser", "cheaper", "larger", "lower")
    rows.append(f"| monotonicity pairs (looser SLO, cheaper price, more GPUs, less demand) | "
                f"{outcomes['monotonicity pairs']} | {prop_crashes['monotonicity']} | {mono} |")
    rows.append(f"| byte-identical JSON across processes (plan, frontier, estimate) | {rerun[0]} | 0 | {rerun[1]} |")
    if inj is not None:
        rows.append(injection_row(inj))
    rss, wall = peak
    return "\n".join(rows) + (
        "\n\nViolations: for bad inputs, an answer that is not exit 2 (or 1) with one line naming the problem; for "
        "plans, a constraint the independent checker finds broken.\n"
        f"Peak memory of the biggest request (gpt4-moe-rumored over the whole catalog, every precision, up to 1024 "
        f"GPUs): {rss / 2**20:.0f} MiB RSS, {wall:.1f} s wall.\n")


def main_report(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=300, help="random requests for the checker (default 300)")
    ap.add_argument("--mutations", type=int, default=100, help="random mutations per file kind and command")
    ap.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    ap.add_argument("--strings", type=int, default=500, help="random string pairs per engine for the injection row")
    ap.add_argument("--only-strings", action="store_true", help="measure only the injection row")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    inj = injection_strings(args.strings)
    if args.only_strings:
        print(injection_row(inj))
        return 1 if inj[2] or inj[3] else 0
    tried, crashes, unclear, notes = bad_inputs(args.mutations)
    violations, prop_crashes = random_requests(args.examples)
    rerun = reruns()
    peak = peak_memory()
    text = table(tried, crashes, unclear, violations, prop_crashes, properties.OUTCOMES, checker.STATS, rerun, peak,
                 inj)
    print(text)
    for line in notes[:20] + violations[:20]:
        print("  " + line, file=sys.stderr)
    print(f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 1 if sum(crashes.values()) or violations or prop_crashes or rerun[1] or inj[2] or inj[3] else 0


if __name__ == "__main__":
    sys.exit(main_report())
