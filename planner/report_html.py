"""`planner plan --report report.html`: one self-contained HTML page a person reads — the plan, its memory and
latency breakdown, and the cost-vs-speed frontier — with inline SVG and CSS only (no scripts, no external files),
so it opens offline and can be mailed as it is."""
from __future__ import annotations

import html
import math
from typing import Any

GiB = 2**30
COLORS = {"weights": "#1f6feb", "kv_cache": "#2da44e", "activations": "#bf8700", "reserve": "#8250df",
          "free": "#d0d7de"}
LABELS = {"weights": "weights", "kv_cache": "KV cache", "activations": "activations", "reserve": "runtime reserve",
          "free": "free"}


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _log_ticks(lo: float, hi: float) -> list[float]:
    ticks = []
    for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10.0**k
            if lo <= v <= hi:
                ticks.append(v)
    return ticks or [lo, hi]


def _lin_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    step = 10 ** math.floor(math.log10(max(hi - lo, 1e-12) / n))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (m * step) <= n:
            step *= m
            break
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 1)]


def _fmt(v: float) -> str:
    return "0" if v == 0 else (f"{v:g}" if v >= 0.01 else f"{v:.1e}")


def frontier_svg(frontier: dict[str, Any], plan: dict[str, Any] | None = None, width: int = 760,
                 height: int = 420) -> str:
    """$ per million output tokens (log) against tokens/s per user, one labelled point per frontier plan; the
    chosen plan is the red diamond."""
    pts = [(p["tokens_per_s_per_user"], p["usd_per_million_output_tokens"], p) for p in frontier.get("points", [])]
    chosen = None
    if plan is not None:
        chosen = (plan["metrics"]["tokens_per_s_per_user"], plan["cost"]["usd_per_million_output_tokens"])
    allp = [(x, y) for x, y, _ in pts] + ([chosen] if chosen else [])
    if not allp:
        return '<p class="muted">No frontier point was reachable.</p>'
    L, R, T, B = 70, 20, 20, 50
    xs, ys = [x for x, _ in allp], [y for _, y in allp]
    x0, x1 = 0.0, max(xs) * 1.1
    y0, y1 = min(ys) / 1.5, max(ys) * 1.5
    sx = lambda x: L + (x - x0) / (x1 - x0) * (width - L - R)  # noqa: E731
    sy = lambda y: T + (math.log10(y1) - math.log10(y)) / (math.log10(y1) - math.log10(y0)) * (height - T - B)  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'role="img" aria-label="cost against speed frontier">',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>']
    for t in _log_ticks(y0, y1):
        y = sy(t)
        out.append(f'<line x1="{L}" y1="{y:.1f}" x2="{width - R}" y2="{y:.1f}" stroke="#eaeef2"/>')
        out.append(f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">${_fmt(t)}</text>')
    for t in _lin_ticks(x0, x1):
        x = sx(t)
        out.append(f'<line x1="{x:.1f}" y1="{T}" x2="{x:.1f}" y2="{height - B}" stroke="#eaeef2"/>')
        out.append(f'<text x="{x:.1f}" y="{height - B + 16}" text-anchor="middle" font-size="11">{_fmt(t)}</text>')
    out.append(f'<rect x="{L}" y="{T}" width="{width - L - R}" height="{height - T - B}" fill="none" stroke="#57606a"/>')
    out.append(f'<text x="{(L + width - R) / 2:.0f}" y="{height - 10}" text-anchor="middle" font-size="12">'
               'tokens/s per user</text>')
    out.append(f'<text x="16" y="{(T + height - B) / 2:.0f}" text-anchor="middle" font-size="12" '
               f'transform="rotate(-90 16 {(T + height - B) / 2:.0f})">$ per million output tokens (log)</text>')
    if len(pts) > 1:
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y, _ in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="#1f6feb" stroke-width="2"/>')
    for x, y, p in pts:
        out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4" fill="#1f6feb"><title>{_e(p["gpu"])} '
                   f'TP{p["tp"]} PP{p["pp"]} EP{p["ep"]} batch {p["batch"]}: {x:.1f} tok/s/user, ${y:.4g}/M</title>'
                   '</circle>')
        right = sx(x) > L + 0.7 * (width - L - R)  # label to the left near the right edge
        anchor = "end" if right else "start"
        out.append(f'<text x="{sx(x) + (-6 if right else 6):.1f}" y="{sy(y) - 6:.1f}" font-size="10" fill="#57606a" '
                   f'text-anchor="{anchor}">{_e(p["gpu"])} TP{p["tp"]}PP{p["pp"]} b{p["batch"]}</text>')
    if chosen:
        cx, cy = sx(chosen[0]), sy(chosen[1])
        out.append(f'<polygon points="{cx:.1f},{cy - 7:.1f} {cx + 7:.1f},{cy:.1f} {cx:.1f},{cy + 7:.1f} '
                   f'{cx - 7:.1f},{cy:.1f}" fill="#cf222e"><title>this plan</title></polygon>')
    out.append("</svg>")
    return "\n".join(out)


def memory_svg(mem: dict[str, float], width: int = 760, height: int = 90) -> str:
    """Memory per GPU of the fullest stage as one stacked bar against the GPU's capacity."""
    cap = mem["capacity"]
    parts = [(k, mem[k]) for k in ("weights", "kv_cache", "activations", "reserve")]
    parts.append(("free", max(0.0, cap - sum(v for _, v in parts))))
    L, R, top, bar = 10, 10, 10, 34
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           'role="img" aria-label="memory per GPU">', f'<rect width="{width}" height="{height}" fill="#ffffff"/>']
    x = float(L)
    span = width - L - R
    for k, v in parts:
        w = span * v / cap
        out.append(f'<rect x="{x:.1f}" y="{top}" width="{w:.1f}" height="{bar}" fill="{COLORS[k]}">'
                   f'<title>{LABELS[k]}: {v / GiB:.1f} GiB</title></rect>')
        x += w
    lx = float(L)
    for k, v in parts:
        out.append(f'<rect x="{lx:.0f}" y="{top + bar + 14}" width="12" height="12" fill="{COLORS[k]}"/>')
        label = f"{LABELS[k]} {v / GiB:.1f} GiB"
        out.append(f'<text x="{lx + 16:.0f}" y="{top + bar + 24}" font-size="12">{_e(label)}</text>')
        lx += 30 + 7 * len(label)
    out.append("</svg>")
    return "\n".join(out)


def latency_svg(plan: dict[str, Any], width: int = 760, height: int = 110) -> str:
    """TTFT and TPOT of the plan, each against its SLO limit (the grey bar) when there is one."""
    m, slo = plan["metrics"], plan["slo"]
    rows = [("TTFT", m["ttft_s"], slo.get("ttft_s")), ("TPOT", m["tpot_s"], slo.get("tpot_s"))]
    L, R, T, bar, gap = 60, 150, 10, 30, 16
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           'role="img" aria-label="latency against the SLOs">', f'<rect width="{width}" height="{height}" fill="#ffffff"/>']
    for i, (name, value, limit) in enumerate(rows):
        y = T + i * (bar + gap)
        scale = max(value, limit or 0.0) or 1.0
        span = width - L - R
        if limit:
            out.append(f'<rect x="{L}" y="{y}" width="{span * limit / scale:.1f}" height="{bar}" fill="#eaeef2">'
                       f'<title>limit {limit * 1000:.1f} ms</title></rect>')
        color = "#2da44e" if not limit or value <= limit else "#cf222e"
        out.append(f'<rect x="{L}" y="{y + 6}" width="{span * value / scale:.1f}" height="{bar - 12}" fill="{color}"/>')
        out.append(f'<text x="{L - 8}" y="{y + bar / 2 + 4:.0f}" text-anchor="end" font-size="12">{name}</text>')
        text = f"{value * 1000:.1f} ms" + (f" / limit {limit * 1000:.1f} ms" if limit else " (no limit)")
        out.append(f'<text x="{width - R + 8}" y="{y + bar / 2 + 4:.0f}" font-size="12">{_e(text)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _table(rows: list[tuple[str, Any]]) -> str:
    return "<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows) + "</table>"


CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:820px;color:#1f2328}
h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;margin-top:28px;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;margin:8px 0} th,td{padding:3px 10px;border-bottom:1px solid #eaeef2;text-align:left;
font-size:13px} th{color:#57606a;font-weight:600} .muted{color:#57606a;font-size:13px} .bind{color:#cf222e}
"""


def report_html(plan: dict[str, Any], frontier: dict[str, Any] | None = None) -> str:
    """The page for one plan (`Plan.to_dict()`), with the frontier (`planner.api.frontier`) when given."""
    p, par, m, c = plan, plan["parallelism"], plan["metrics"], plan["cost"]
    summary = _table([
        ("model", p["model"]), ("GPU", f"{p['gpu_name']} ({p['gpu']})"),
        ("GPUs", f"{p['total_gpus']} = {par['replicas']} replica(s) x TP{par['tp']} PP{par['pp']} (EP{par['ep']})"),
        ("precision", f"weights {p['precision']['weights']}, KV cache {p['precision']['kv']}"),
        ("batch", f"{p['batch']} sequences per replica ({p['micro_batch']} per micro-batch), limited by "
                  f"{p['batch_limited_by']}"),
        ("layers per stage", p["placement"]["layers_per_stage"]),
        ("workload", f"ISL {p['workload']['isl']}, OSL {p['workload']['osl']}"
                     + (f", {p['workload']['output_tokens_per_s']:g} output tok/s" if p["workload"].get("output_tokens_per_s") else "")),
        ("throughput", f"{m['output_tokens_per_s']:.0f} output tok/s per replica, {m['tokens_per_s_per_user']:.1f} "
                       f"tok/s per user; MFU {m['mfu']:.1%}, MBU {m['mbu']:.1%}; bottleneck {p['bottleneck']}"),
        ("cost", f"${c['usd_per_hour']:.2f}/h, ${c['usd_per_million_output_tokens']:.4g} per million output tokens "
                 f"({c['price_tier']} price ${c['usd_per_hour_per_gpu']}/GPU-h, {c['price_date']})"),
        ("solver", f"{p['solver']['status']}, gap {p['solver']['gap']}"),
        *([("speculative decoding", p["speculative_choice"]["reason"])] if "speculative_choice" in p else []),
    ])
    cons = "".join(
        f"<tr><td>{_e(b['name'])}</td><td>{b['value']:.4g} {_e(b['unit'])}</td><td>{b['limit']:.4g}</td>"
        f"<td>{b['slack']:+.1%}</td><td class=\"{'bind' if b['binding'] else ''}\">"
        f"{'binding' if b['binding'] else 'slack'}</td></tr>" for b in p["binding_constraints"])
    alts = "".join(
        f"<tr><td>{_e(a['gpu'])}</td><td>{a['total_gpus']}</td><td>TP{a['tp']} PP{a['pp']} EP{a['ep']} "
        f"x{a['replicas']}</td><td>{a['batch']}</td><td>{_e(a['weights'])}/{_e(a['kv'])}</td>"
        f"<td>${a['usd_per_million_output_tokens']:.4g}</td><td>{a['tokens_per_s_per_user']:.1f}</td></tr>"
        for a in p["alternatives"])
    front = ""
    if frontier is not None:
        front = ("<h2>Cost against speed</h2><p class=\"muted\">Each blue point is an optimal plan for one per-user "
                 "speed target (the Pareto frontier); the red diamond is this plan.</p>" + frontier_svg(frontier, plan))
    mem = p["memory_per_gpu_bytes"]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(p['model'])} deployment plan</title>
<style>{CSS}</style></head>
<body>
<h1>{_e(p['model'])} on {p['total_gpus']} x {_e(p['gpu'])}</h1>
<p class="muted">inference-planner plan (schema {p['schema_version']}); all figures are the planner's analytic estimates.</p>
<h2>Plan</h2>
{summary}
<h2>Memory per GPU</h2>
<p class="muted">The fullest pipeline stage: {mem['total'] / GiB:.1f} of {mem['capacity'] / GiB:.1f} GiB.</p>
{memory_svg(mem)}
<h2>Latency</h2>
{latency_svg(p)}
<h2>Constraints</h2>
<table><tr><th>constraint</th><th>value</th><th>limit</th><th>slack</th><th></th></tr>{cons}</table>
{front}
<h2>Best plan per GPU type</h2>
<table><tr><th>GPU</th><th>GPUs</th><th>layout</th><th>batch</th><th>precision</th><th>$/M out</th><th>tok/s/user</th></tr>{alts}</table>
</body></html>
"""


def write_report(path: str, plan: dict[str, Any], frontier: dict[str, Any] | None = None) -> None:
    from .files import write_text

    write_text(path, report_html(plan, frontier), "report")
