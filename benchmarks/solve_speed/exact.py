"""How the exact-space search (planner/search/bounds.py) grows with GPU types, the GPU budget, layers and the
batch range, for a dense model (MoE models over the whole catalog still search the grid: README, "The optimizer").

    python benchmarks/solve_speed/exact.py            # markdown table (as recorded in RESULTS.md), ~1 min idle
    python benchmarks/solve_speed/exact.py --json

Each plan is `planner plan ... --disagg off --json --timings` (the colocated search; `--disagg auto`, the default,
adds the disaggregated pools, which search the grid) as a fresh subprocess (start-up included), median of --repeats,
Llama-3.1-70B at 20 tok/s/user unless the row says otherwise. Columns: rows in the exact space (shape x
micro-batch), rows the lazy search tabulated, the search's bound time (tables + bounds), CP-SAT solves."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402  (benchmarks/machine.py)
from run import GPU_ORDER, planner_command  # noqa: E402

MODEL = "llama-3.1-70b"
BASE = ["--isl", "2000", "--osl", "500", "--min-tokens-per-s-user", "20"]


def plan(args: list[str], repeats: int) -> dict:
    import statistics
    import subprocess
    import time

    walls, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        # --disagg off: the colocated search itself (auto would add the disaggregated pools' grid search)
        out = subprocess.run(planner_command() + ["plan", *args, "--disagg", "off", "--json", "--timings"],
                             capture_output=True, text=True)
        walls.append(time.perf_counter() - t0)
    row = {"wall_s": round(statistics.median(walls), 2), "exit_code": out.returncode}
    if out.returncode == 0:
        d = json.loads(out.stdout)
        s = d["solver"]
        row.update(status=s["status"], space=s.get("space"), rows=s["candidates"]["rows"],
                   examined=s.get("rows_examined"), bound_s=s.get("bound_s"), solves=s.get("cp_sat_solves"),
                   plan=f"{d['total_gpus']} x {d['gpu']} TP{d['parallelism']['tp']} PP{d['parallelism']['pp']} "
                        f"batch {d['batch']} {d['precision']['weights']}/{d['precision']['kv']}")
    else:
        row.update(status="infeasible" if out.returncode == 1 else "error", message=out.stderr.strip()[:200])
    return row


def layered(layers: int, folder: Path) -> Path:
    """Llama-3.1-70B's config with another layer count."""
    from planner.catalog import load_model

    m = load_model(MODEL)
    cfg = {"hidden_size": m.hidden_size, "num_hidden_layers": layers, "num_attention_heads": m.num_heads,
           "num_key_value_heads": m.num_kv_heads, "head_dim": m.head_dim, "vocab_size": m.vocab_size,
           "max_position_embeddings": m.max_context, "hidden_act": "silu",
           "intermediate_size": m.dense_intermediate_size, "tie_word_embeddings": False}
    path = folder / f"llama-70b-{layers}l" / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cfg), encoding="utf-8")
    return path.parent


def cases(folder: Path) -> list[tuple[str, list[str]]]:
    from planner.catalog import load_catalog

    everything = sorted(load_catalog().accelerators)
    out = []
    for n in (1, 4, len(everything)):
        gpus = ",".join(GPU_ORDER[:n] if n < len(everything) else everything)
        out.append((f"GPU types: {n}", ["--model", MODEL, *BASE, "--max-gpus", "1024", "--gpus", gpus]))
    for g in (8, 64, 1024):
        out.append((f"max GPUs: {g}", ["--model", MODEL, *BASE, "--max-gpus", str(g)]))
    for layers in (40, 160):
        out.append((f"layers: {layers}", ["--model", str(layered(layers, folder)), *BASE, "--max-gpus", "1024"]))
    for isl, osl in ((32000, 1000), (200, 100)):
        out.append((f"ISL/OSL {isl}/{osl} (batch range)",
                    ["--model", MODEL, "--isl", str(isl), "--osl", str(osl), "--min-tokens-per-s-user", "20",
                     "--max-gpus", "1024"]))
    out.append(("Llama-3.1-8B, all precisions", ["--model", "llama-3.1-8b", *BASE, "--max-gpus", "1024",
                                                 "--weights", "bf16,fp8,int8,int4,fp4", "--kv", "bf16,fp8,int8"]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [{"case": name, **plan(a, args.repeats)} for name, a in cases(Path(tmp))]
    if args.json:
        print(json.dumps({"machine": describe(), "rows": rows}, indent=1))
        return
    print(f"exact-space growth, {date.today()}, {describe()}, `python benchmarks/solve_speed/exact.py`\n")
    print("| case | wall s | status | space | rows in space | rows examined | bound s | CP-SAT solves | plan |")
    print("|---|---:|---|---|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['case']} | {r['wall_s']} | {r['status']} | {r.get('space', '')} | {r.get('rows', '')} | "
              f"{r.get('examined', '')} | {r.get('bound_s', '')} | {r.get('solves', '')} | "
              f"{r.get('plan', r.get('message', ''))} |")


if __name__ == "__main__":
    main()
