"""Summaries of a simulation: latency percentiles, throughput, queue length and KV occupancy over time, SLO
attainment.

Definitions (those of vLLM's `benchmark_serving.py`):
- TTFT: first token time − arrival time (queueing + prefill);
- TPOT: (finish − first token) / (output tokens − 1), per request with at least two output tokens;
- throughput: output tokens (and requests) completed / (last finish − first arrival);
- queue length: requests that have arrived and wait for a replica to schedule them (including preempted ones
  waiting to be recomputed), over the whole fleet;
- KV occupancy: KV-cache tokens held / capacity, averaged over replicas (time-weighted for the mean);
- SLO attainment: share of all arrived requests (rejected ones count as misses) with TTFT ≤ the TTFT target,
  TPOT ≤ the TPOT target, and both; null for a target the plan does not set.
- warm-up: with `warmup_requests` W > 0 the first W arrivals (which find the replicas filling up from empty) are
  simulated but left out of the latency percentiles and the SLO attainment, which then describe the steady state;
  throughput, queue and KV figures cover the whole run."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..numbers import round6
from .replica import Book

PERCENTILES = (50, 90, 99)


def r6(x: float) -> float | None:
    """Round to 6 significant digits (stable JSON across platforms), None for NaN."""
    x = float(x)
    return None if not np.isfinite(x) else round6(x)


def percentile_key(p: float) -> str:
    """'p99', 'p99.9', 'p50': the key a percentile has in the summaries."""
    return f"p{p:g}"


def percentiles(values: np.ndarray, extra: float | None = None) -> dict[str, float | None]:
    """p50, p90, p99 and the mean, plus the `extra` percentile (a plan's SLO percentile) when given."""
    ps = sorted(set(PERCENTILES) | ({float(extra)} if extra is not None else set()))
    if values.size == 0:
        return {**{percentile_key(p): None for p in ps}, "mean": None}
    vs = np.percentile(values, ps)
    return {**{percentile_key(p): r6(v) for p, v in zip(ps, vs)}, "mean": r6(values.mean())}


def queue_events(book: Book, served: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(times, queue length just after each time), exact: +1 at each arrival and preemption, −1 at each first
    admission and readmission. Leaving events sort first at equal times, so a request admitted the moment it
    arrives never counts as queued."""
    t = np.concatenate([book.admitted_s[served], np.asarray(book.readmitted_at_s, float),
                        book.arrival_s[served], np.asarray(book.preempted_at_s, float)])
    d = np.concatenate([np.full(int(served.sum()) + len(book.readmitted_at_s), -1),
                        np.full(int(served.sum()) + len(book.preempted_at_s), 1)])
    order = np.lexsort((d, t))
    return t[order], np.cumsum(d[order])


def step_series_at(t_events: np.ndarray, values: np.ndarray, at: np.ndarray, before: float = 0.0) -> np.ndarray:
    """Value of a right-continuous step function (values[i] from t_events[i] on) at the times `at`."""
    idx = np.searchsorted(t_events, at, side="right") - 1
    return np.where(idx >= 0, values[np.maximum(idx, 0)], before)


def time_mean(t_events: np.ndarray, values: np.ndarray, start: float, end: float) -> float:
    """Time-weighted mean of a step function over [start, end]."""
    if end <= start:
        return float(values[-1]) if values.size else 0.0
    edges = np.clip(np.concatenate([t_events, [end]]), start, end)
    return float(np.sum(values * np.diff(edges)) / (end - start))


def summarize(book: Book, replicas: list, rejected: np.ndarray, *, kv_capacity_tokens: int, ttft_slo_s: float | None,
              tpot_slo_s: float | None, series_points: int = 60, slo_percentile: float | None = None,
              warmup_requests: int = 0) -> dict[str, Any]:
    served = ~rejected
    done = served & np.isfinite(book.finish_s)
    arrival, first, finish, out = book.arrival_s, book.first_token_s, book.finish_s, book.output_tokens
    measured = np.arange(arrival.size) >= warmup_requests  # (arrival order)
    lat = done & measured
    ttft = first[lat] - arrival[lat]
    multi = lat & (out >= 2)
    tpot = (finish[multi] - first[multi]) / (out[multi] - 1)
    start = float(arrival[served].min()) if served.any() else 0.0
    end = float(finish[done].max()) if done.any() else start
    span = max(end - start, 1e-12)

    # SLO attainment over every measured arrived request; a request with one output token has no TPOT to miss
    n_all = int(measured.sum())
    ok_ttft = np.zeros(arrival.size, bool)
    ok_tpot = np.zeros(arrival.size, bool)
    ok_ttft[lat] = True if ttft_slo_s is None else ttft <= ttft_slo_s
    ok_tpot[lat] = True
    if tpot_slo_s is not None:
        ok_tpot[multi] = tpot <= tpot_slo_s

    def share(mask: np.ndarray) -> float | None:
        return r6(mask[measured].mean()) if n_all else None

    qt, qv = queue_events(book, served)
    grid = np.linspace(0.0, end, series_points)
    queue_series = step_series_at(qt, qv, grid)
    occ_series = np.zeros(series_points)
    occ_mean = occ_max = 0.0
    util = []
    for rep in replicas:
        kt, kv = np.asarray(rep.kv_t, float), np.asarray(rep.kv_used, float) / kv_capacity_tokens
        occ_series += step_series_at(kt, kv, grid)
        occ_mean += time_mean(kt, kv, start, end)
        occ_max = max(occ_max, float(kv.max()))
        util.append(rep.busy_s / span)
    occ_series /= len(replicas)
    occ_mean /= len(replicas)
    tokens = float(out[done].sum())
    return {
        "requests": {"arrived": int(arrival.size), "simulated": int(done.sum()), "rejected": int(rejected.sum()),
                     "preemptions": len(book.preempted_at_s),
                     **({"warmup": int(warmup_requests)} if warmup_requests else {})},
        "ttft_s": percentiles(ttft, slo_percentile),
        "tpot_s": percentiles(tpot, slo_percentile),
        "e2e_s": percentiles(finish[lat] - arrival[lat]),
        "throughput": {"output_tokens_per_s": r6(tokens / span), "requests_per_s": r6(done.sum() / span),
                       "output_tokens_per_s_per_replica": r6(tokens / span / len(replicas))},
        "utilization": r6(float(np.mean(util))),
        "makespan_s": r6(span),
        "queue_length": {"mean": r6(time_mean(qt, qv, start, end)) if qt.size else 0.0,
                         "max": int(qv.max()) if qv.size else 0,
                         "series": {"t_s": [r6(x) for x in grid], "value": [int(v) for v in queue_series]}},
        "kv_occupancy": {"mean": r6(occ_mean), "max": r6(occ_max),
                         "capacity_tokens_per_replica": int(kv_capacity_tokens),
                         "series": {"t_s": [r6(x) for x in grid], "value": [r6(v) for v in occ_series]}},
        "slo": {"ttft_s": ttft_slo_s, "tpot_s": tpot_slo_s},
        "slo_attainment": {"ttft": share(ok_ttft) if ttft_slo_s is not None else None,
                           "tpot": share(ok_tpot) if tpot_slo_s is not None else None,
                           "both": share(ok_ttft & ok_tpot) if (ttft_slo_s, tpot_slo_s) != (None, None) else None},
    }
