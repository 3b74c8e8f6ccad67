"""Human-readable text for the CLI (tables, memory bars). JSON is the machine format; this is for people."""
from __future__ import annotations

from typing import Any

GiB = 2**30


def memory_bar(mem: dict[str, Any], width: int = 40) -> str:
    cap = mem["capacity"]
    parts = [("W", mem["weights"]), ("K", mem["kv_cache"]), ("A", mem["activations"]), ("R", mem["reserve"])]
    bar = ""
    for ch, v in parts:
        bar += ch * int(round(width * v / cap))
    bar = bar[:width].ljust(width, ".")
    return f"[{bar}] {mem['total'] / GiB:.1f}/{cap / GiB:.1f} GiB (W weights, K KV cache, A activations, R reserve)"


def estimate_text(d: dict[str, Any]) -> str:
    i, m, c = d["inputs"], d["metrics"], d["cost"]
    lines = [
        f"{d['model']} on {d['gpu']}  TP{i['tp']} PP{i['pp']} EP{i['ep']}  batch {i['batch']}  "
        f"weights {i['weights']} kv {i['kv']}  ISL {i['isl']} OSL {i['osl']}",
        f"  layers per stage   {d['placement']['layers_per_stage']}",
        f"  TTFT               {m['ttft_s'] * 1000:.1f} ms",
        f"  TPOT               {m['tpot_s'] * 1000:.2f} ms  ({m['tokens_per_s_per_user']:.1f} tok/s/user)",
        f"  throughput         {m['output_tokens_per_s']:.0f} output tok/s per replica "
        f"({m['output_tokens_per_s_per_gpu']:.0f}/GPU)   MFU {m['mfu']:.1%}  MBU {m['mbu']:.1%}",
        f"  memory per GPU     {memory_bar(d['memory_per_gpu_bytes'])}",
        f"  fits               {'yes' if d['fits'] else 'NO'} (max batch {d['max_batch']})",
        f"  cost               ${c['usd_per_hour']:.2f}/h   ${c['usd_per_million_output_tokens']:.3f} per M output "
        f"tokens   ${c['usd_per_million_tokens']:.3f} per M tokens",
        f"  bottleneck         {d['bottleneck']}",
    ]
    return "\n".join(lines)
