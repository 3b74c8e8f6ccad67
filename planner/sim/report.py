"""Human-readable summary of a simulation for the CLI (JSON is the machine format)."""
from __future__ import annotations

from typing import Any


def duration(x: float | None) -> str:
    """Seconds as a person reads them: 6.0 ms, 423 ms, 1.24 s, 7.7 min, 12.9 h, 3.2 days."""
    if x is None:
        return "-"
    for unit, size, fmt in (("days", 86400.0, ".3g"), ("h", 3600.0, ".3g"), ("min", 60.0, ".3g"),
                            ("s", 1.0, ".3g")):
        if abs(x) >= size:
            return f"{x / size:{fmt}} {unit}"
    return f"{x * 1000:.3g} ms" if abs(x) >= 1e-3 else f"{x * 1e6:.3g} µs"


_ms = duration


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _spark(values: list[float], width: int = 40) -> str:
    """A one-line bar chart of a series (▁..█), resampled to `width` columns."""
    if not values:
        return ""
    bars = "▁▂▃▄▅▆▇█"
    step = max(1, len(values) // width)
    cols = [max(values[i:i + step]) for i in range(0, len(values), step)][:width]
    top = max(cols) or 1.0
    return "".join(bars[min(len(bars) - 1, int(v / top * (len(bars) - 1) + 0.5))] for v in cols)


def simulation_text(d: dict[str, Any]) -> str:
    p, a, r = d["plan"], d["arrivals"], d["requests"]
    ttft, tpot, thr = d["ttft_s"], d["tpot_s"], d["throughput"]
    q, kv, slo, att, est = d["queue_length"], d["kv_occupancy"], d["slo"], d["slo_attainment"], d["estimate"]
    load = f"trace {a['trace']}" if "trace" in a else (
        f"{a['rate_rps']:g} req/s (burstiness {a['burstiness']:g}, {a['lengths']} lengths)")
    lines = [
        f"{p['model']} on {p['gpu']}  TP{p['tp']}{f' DP{dp}' if (dp := p.get('dp', 1)) > 1 else ''} PP{p['pp']} "
        f"EP{p['ep']}  batch {p['batch']}  x{p['replicas']} "
        f"replicas ({d['balancer']})  {d['batching']} batching  seed {d['seed']}",
        f"  load               {load}; {r['simulated']} requests simulated"
        + (f", {r['rejected']} rejected (longer than the KV cache)" if r["rejected"] else "")
        + (f", {r['preemptions']} preemptions" if r["preemptions"] else "")
        + (f"; the first {r['warmup']} are warm-up, left out of TTFT, TPOT and attainment" if r.get("warmup") else ""),
        f"  TTFT               p50 {_ms(ttft['p50'])}  p90 {_ms(ttft['p90'])}  p99 {_ms(ttft['p99'])}"
        f"   (estimate {_ms(est['ttft_s'])})",
        f"  TPOT               p50 {_ms(tpot['p50'])}  p90 {_ms(tpot['p90'])}  p99 {_ms(tpot['p99'])}"
        f"   (estimate at full batch {_ms(est['tpot_s'])})",
        f"  throughput         {thr['output_tokens_per_s']:.0f} output tok/s, {thr['requests_per_s']:.3g} req/s "
        f"(utilization {_pct(d['utilization'])})",
        f"  queue length       mean {q['mean']:.3g}  max {q['max']}   {_spark(q['series']['value'])}",
        f"  KV occupancy       mean {_pct(kv['mean'])}  max {_pct(kv['max'])}   {_spark(kv['series']['value'])}",
        f"  SLO attainment     TTFT {_pct(att['ttft'])} (≤ {_ms(slo['ttft_s'])})  TPOT {_pct(att['tpot'])} "
        f"(≤ {_ms(slo['tpot_s'])})  both {_pct(att['both'])}",
    ]
    return "\n".join(lines)
