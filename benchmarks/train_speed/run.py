"""Training-layout search speed: `planner train` requests from one GPU type to the whole catalog, wall and CPU
time in-process, layouts tabulated and kept for CP-SAT, and the peak memory of a fresh process per request.

    python benchmarks/train_speed/run.py            # markdown table (RESULTS.md records one run)

Target: the rumoured 1.8T MoE over the whole catalog in under 15 s on 2 cores."""
from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import describe  # noqa: E402

CASES = [
    ("llama-3.1-8b, 1T tokens, h100-sxm, 7 days",
     dict(model="llama-3.1-8b", tokens=1e12, gpus="h100-sxm", deadline_days=7)),
    ("llama-3.1-405b, 15.6T tokens, h100-sxm, 16,384 GPUs",
     dict(model="llama-3.1-405b", tokens=15.6e12, gpus="h100-sxm", num_gpus=16384, global_batch_tokens=16 * 2**20)),
    ("gpt4-moe-rumored, 13T tokens, a100-80gb + h100-sxm, 90 days (the example)",
     dict(model="gpt4-moe-rumored", tokens=13e12, gpus="a100-80gb,h100-sxm", deadline_days=90,
          global_batch_tokens=62_914_560)),
    ("gpt4-moe-rumored, 13T tokens, whole catalog, 90 days",
     dict(model="gpt4-moe-rumored", tokens=13e12, deadline_days=90, global_batch_tokens=62_914_560)),
    ("gpt4-moe-rumored, 13T tokens, whole catalog, $60M budget (fastest)",
     dict(model="gpt4-moe-rumored", tokens=13e12, budget_usd=60e6, global_batch_tokens=62_914_560)),
]


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _peak_mib(kwargs: dict) -> float:
    code = ("import resource, planner; planner.train(**%r); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)" % kwargs)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def main() -> int:
    import planner

    planner.train(**CASES[0][1])  # warm imports and caches
    rows = ["| request | wall s | CPU s | layouts | kept for CP-SAT | status | answer | peak MiB |",
            "|---|---:|---:|---:|---:|---|---|---:|"]
    for label, kw in CASES:
        t0, c0 = time.perf_counter(), _cpu_s()
        d = planner.train(**kw).to_dict()
        wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
        s = d["solver"]
        answer = f"{d['total_gpus']:,} x {d['gpu']}, {d['days']:.1f} days, ${d['cost']['usd_total'] / 1e6:,.2f}M"
        rows.append(f"| {label} | {wall:.2f} | {cpu:.2f} | {s['candidates']['rows']:,} | "
                    f"{s['candidates']['rows_after_pruning']:,} | {s['status']} | {answer} | {_peak_mib(kw):.0f} |")
    print("\n".join(rows))
    print(f"\nMachine: {describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
