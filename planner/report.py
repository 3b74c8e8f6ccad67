"""Human-readable text for the CLI (tables, memory bars). JSON is the machine format; this is for people."""
from __future__ import annotations

from typing import Any

GiB = 2**30
LIMIT_WORDS = {
    "cost": "cost (the next batch size fits but is not cheaper)",
    "memory": "memory (the next batch size does not fit)",
    "tpot": "TPOT (the next batch size is too slow per user)",
    "ttft": "TTFT (the next batch size misses it)",
    "max_batch": "the largest batch considered",
    "max_gpus": "the GPU limit",
}


def memory_bar(mem: dict[str, Any], width: int = 40) -> str:
    cap = mem["capacity"]
    parts = [("W", mem["weights"]), ("K", mem["kv_cache"]), ("A", mem["activations"]), ("R", mem["reserve"])]
    bar = ""
    for ch, v in parts:
        bar += ch * int(round(width * v / cap))
    bar = bar[:width].ljust(width, ".")
    return f"[{bar}] {mem['total'] / GiB:.1f}/{cap / GiB:.1f} GiB (W weights, K KV cache, A activations, R reserve)"


def _dp(par: dict[str, Any]) -> str:
    """' DP<n>' when attention is data-parallel (absent from plans written before DP existed)."""
    return f" DP{par['dp']}" if par.get("dp", 1) > 1 else ""


def estimate_text(d: dict[str, Any]) -> str:
    i, m, c = d["inputs"], d["metrics"], d["cost"]
    lines = [
        f"{d['model']} on {d['gpu']}  TP{i['tp']}{_dp(i)} PP{i['pp']} EP{i['ep']}  batch {i['batch']}  "
        f"weights {i['weights']} kv {i['kv']}  ISL {i['isl']} OSL {i['osl']}",
        f"  layers per stage   {d['placement']['layers_per_stage']}"
        + (f"   (TP over {d['tp_link'].replace('_', '-')})" if d.get("tp_link") == "pcie" else ""),
        f"  TTFT               {m['ttft_s'] * 1000:.1f} ms",
        f"  TPOT               {m['tpot_s'] * 1000:.2f} ms  ({m['tokens_per_s_per_user']:.1f} tok/s/user)",
        f"  throughput         {m['output_tokens_per_s']:.0f} output tok/s per replica "
        f"({m['output_tokens_per_s_per_gpu']:.0f}/GPU)   MFU {m['mfu']:.1%}  MBU {m['mbu']:.1%}",
        f"  memory per GPU     {memory_bar(d['memory_per_gpu_bytes'])}",
        f"  fits               {'yes' if d['fits'] else 'NO'} (max batch {d['max_batch']})",
        f"  cost               ${c['usd_per_hour']:.2f}/h   ${c['usd_per_million_output_tokens']:.3f} per M output "
        f"tokens   ${c['usd_per_million_tokens']:.3f} per M tokens (at full capacity)",
        f"  marginal           ${c['usd_per_million_input_tokens_marginal']:.3f}/M input tokens, "
        f"${c['usd_per_million_output_tokens_marginal']:.3f}/M output tokens",
        f"  bottleneck         {d['bottleneck']}",
    ]
    return "\n".join(lines)


def _simulated(d: dict[str, Any]) -> list[str]:
    """The confirming simulation's percentiles (plans with a demand)."""
    sim = d.get("simulation")
    if not sim:
        return []
    key = f"p{sim['percentile']:g}"
    t, p = sim["ttft_s"], sim["tpot_s"]
    ms = lambda v: "n/a" if v is None else f"{v * 1000:.1f}"  # noqa: E731
    warm = sim.get("warmup_requests") or 0
    where = (f"at {sim['rate_rps']:g} req/s ({sim['requests']} Poisson requests, seed {sim['seed']})" if not warm else
             f"one replica at {sim['rate_rps'] / sim['replicas']:.4g} req/s, its share ({warm} warm-up + "
             f"{sim['requests']} Poisson requests, seed {sim['seed']})")
    return [f"  simulated          TTFT p50 {ms(t['p50'])} / {key} {ms(t[key])} ms, TPOT p50 {ms(p['p50'])} / {key} "
            f"{ms(p[key])} ms {where}"]


def _engine(d: dict[str, Any]) -> list[str]:
    e = d.get("serving_engine")
    if not e:
        return []
    others = [x for x in e["engines_that_run_it"] if x != e["id"]]
    return [f"  engine             {e['name']} {e['version']} ({e['chosen_by']})"
            + (f"; also runs on {', '.join(others)}" if others else "")]


def _speculative(d: dict[str, Any]) -> list[str]:
    """The draft the plan runs and why (only when --spec-draft asked the plan to decide)."""
    if "speculative_choice" not in d:
        return []
    return [f"  speculative        {d['speculative_choice']['reason']}"]


def _pool_line(p: dict[str, Any]) -> str:
    what = (f"{p['requests_per_s_per_replica']:.2f} prompts/s per replica, prefill {p['latency_s'] * 1000:.0f} ms"
            if p["role"] == "prefill" else
            f"{p['requests_per_s_per_replica']:.2f} requests/s per replica, decode cycle {p['latency_s'] * 1000:.1f} ms")
    return (f"    {p['role']:8s} {p['replicas']} x {p['gpu']} TP{p['tp']}{_dp(p)} PP{p['pp']} EP{p['ep']} "
            f"({p['gpus_per_replica']} GPUs) batch {p['batch']} {p['weights']}/{p['kv']} layers "
            f"{p['layers_per_stage']}: {what}")


def _disaggregation(d: dict[str, Any]) -> list[str]:
    """Both pools of a disaggregated plan, and why disaggregation won or lost (planner/disagg.py)."""
    g = d.get("disaggregation")
    if g is None:
        return []
    lines = [f"  disaggregation     {g['chosen']} ({g['reason']})"]
    if "pools" in d:
        lines += [_pool_line(d["pools"]["prefill"]), _pool_line(d["pools"]["decode"]),
                  f"    KV transfer {d['kv_transfer_s'] * 1000:.1f} ms per prompt over the scale-out NIC "
                  "(counted in TTFT); the lines above describe the decode pool"]
    return lines


def plan_text(d: dict[str, Any]) -> str:
    par, m, c, s = d["parallelism"], d["metrics"], d["cost"], d["solver"]
    pools = d.get("pools")
    lines = [
        f"plan  {d['model']} on {d['total_gpus']} x {d['gpu']}  ({par['replicas']} replica(s) of TP{par['tp']}"
        f"{_dp(par)} PP{par['pp']} EP{par['ep']} = {d['gpus_per_replica']} GPUs)" if pools is None else
        f"plan  {d['model']} disaggregated on {d['total_gpus']} GPUs: prefill {pools['prefill']['gpus']} x "
        f"{pools['prefill']['gpu']} ({pools['prefill']['replicas']} replica(s)) + decode {pools['decode']['gpus']} x "
        f"{pools['decode']['gpu']} ({pools['decode']['replicas']} replica(s)); the lines down to memory per GPU describe "
        "the decode pool",
        *_engine(d),
        f"  precision          weights {d['precision']['weights']}, KV {d['precision']['kv']}",
        f"  batch              {d['batch']} {'max concurrent ' if d.get('mean_batch') is not None else ''}"
        f"sequences per replica ({d['micro_batch']} per micro-batch); "
        f"limited by {LIMIT_WORDS.get(d['batch_limited_by'], d['batch_limited_by'])}"
        + (f"; mean {d['mean_batch']:.1f} at the demand" if d.get("mean_batch") is not None else ""),
        f"  layers per stage   {d['placement']['layers_per_stage']}"
        + (f"   (TP over {d['tp_link'].replace('_', '-')})" if d.get("tp_link") == "pcie" else ""),
        f"  TTFT / TPOT        {m['ttft_s'] * 1000:.0f} ms / {m['tpot_s'] * 1000:.1f} ms "
        f"({m['tokens_per_s_per_user']:.1f} tok/s/user)",
        f"  throughput         {m['output_tokens_per_s']:.0f} output tok/s "
        + ("per replica" if pools is None else "for the whole plan (both pools)"),
        *_simulated(d),
        f"  memory per GPU     {memory_bar(d['memory_per_gpu_bytes'])}",
        f"  cost               ${c['usd_per_hour']:.2f}/h  ${c['usd_per_million_output_tokens']:.3f}/M output tokens  "
        f"${c['usd_per_million_tokens']:.3f}/M tokens at {'the planned demand' if c.get('basis') == 'demand' else 'full capacity'}"
        f"  ({c['price_tier']} price ${c['usd_per_hour_per_gpu']}/GPU-h, {c['price_date']})",
        *([f"  at full capacity   ${c['usd_per_million_output_tokens_at_capacity']:.3f}/M output tokens"]
          if c.get("basis") == "demand" else []),
        f"  marginal           ${c['usd_per_million_input_tokens_marginal']:.3f}/M input tokens, "
        f"${c['usd_per_million_output_tokens_marginal']:.3f}/M output tokens (full load)",
        *_speculative(d),
        f"  bottleneck         {d['bottleneck']}",
        "  constraints        " + ("; ".join(
            f"{b['name']} {'BINDING' if b['binding'] else 'slack'} {b['slack']:+.1%}" for b in d["binding_constraints"])
            or "none"),
        *_disaggregation(d),
        f"  solver             {s['status']} (gap {s['gap']}) in {s.get('total_s', s.get('wall_s', '?'))} s; "
        f"{s['candidates']['rows']} rows x placements = {s['candidates']['placements']:.3g} candidates, "
        f"{s['candidates']['rows_after_bounds']} rows after bounds",
        *(["  best per GPU type:"] if d["alternatives"] else []),
    ]
    for a in d["alternatives"]:
        lines.append(f"    {a['gpu']:10s} {a['total_gpus']:4d} GPUs TP{a['tp']}{_dp(a)} PP{a['pp']} EP{a['ep']} x{a['replicas']} "
                     f"batch {a['batch']:5d} {a['weights']}/{a['kv']}  ${a['usd_per_million_output_tokens']:.3f}/M out  "
                     f"{a['tokens_per_s_per_user']:.1f} tok/s/user")
    return "\n".join(lines)


def plot_frontier(d: dict[str, Any], path: str) -> None:
    """$ per million output tokens (log) against tokens/s/user, one labelled point per frontier plan."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from .errors import InputError

        raise InputError("--plot needs matplotlib: pip install 'inference-planner[plot]'") from None
    if not path.lower().endswith((".png", ".svg")):
        from .errors import InputError

        raise InputError(f"--plot: use a .png or .svg file name, got {path!r}")
    pts = d["points"]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    xs = [p["tokens_per_s_per_user"] for p in pts]
    ys = [p["usd_per_million_output_tokens"] for p in pts]
    ax.plot(xs, ys, "o-", color="#1f6feb")
    for p, x, y in zip(pts, xs, ys):
        ax.annotate(f"{p['gpu']} TP{p['tp']}PP{p['pp']} b{p['batch']}", (x, y), textcoords="offset points",
                    xytext=(4, 4), fontsize=7)
    ax.set_yscale("log")
    ax.set_xlabel("tokens/s per user")
    ax.set_ylabel("$ per million output tokens")
    ax.set_title(f"{d['model']}  ISL {d['workload']['isl']} / OSL {d['workload']['osl']}: cost vs speed frontier")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    try:
        fig.savefig(path)
    except OSError as e:
        from .errors import InputError

        raise InputError(f"--plot {path}: cannot write ({e.strerror or e})") from None
    finally:
        plt.close(fig)
