"""A queueing bound on TTFT at a percentile, per row and replica count, for the optimizer.

A replica is a birth–death queue with c slots (the engine admits a request while fewer than c run), c being the
engine's maximum concurrency on the row's structure (GPU, precisions, TP, DP, PP, EP): the largest batch among the
structure's rows that meets the TPOT and memory bounds (the plan is raised to it, search/percentile.py), with
that row's times. Requests arrive as a Poisson process split evenly over r replicas (λ = rate / r each; a
least-loaded balancer does better than an even random split). With n requests in flight each progresses one token
per cycle plus the stalls of the n prompts' prefills, so a request holds its slot for about

    S(n) = S0 + n·s,   S0 = A + OSL·cycle,   s = one prompt's prefill stall (table: stall_coef·(T_ch + hop))

and the departure rate is μ_n = n / S(n) (μ_c beyond c: the queue). Service times are taken as exponential, the
pessimistic case of near-deterministic ones (M/G/c waits scale with (1 + C_s²)/2 ≤ 1). The chain's weights have
a closed form, π_n/π_0 = Π_{k≤n} λ/μ_k = (λ·s)^n · Γ(S0/s + n + 1) / (Γ(S0/s + 1) · n!), it is unimodal
(λ/μ_n falls with n), and the probability of waiting is bounded above by keeping only the terms within
NORMALIZER_TERMS of the mode m < c in the normalizer (a partial sum, so a lower bound on it):

    P(wait) ≤ T / (Σ_{|n − m| ≤ K, n < c} π_n + T),   T = π_c / (1 − λ/μ_c)

A waiting request is served at rate μ_c − λ, so W_p = ln(P(wait) / (1 − p)) / (μ_c − λ) (0 when
P(wait) ≤ 1 − p).

Once admitted, a prompt waits for the step in progress (one cycle plus a prefill stall), then runs its own
prefill riding on the decode batch (⌈chunks⌉ cycles plus its stall, at least its lone prefill latency), plus the
stalls of the prompts that arrive within that step (their Poisson p-quantile):

    TTFT_p ≤ W_p + A,   A = step + max(TTFT_alone, chunks·cycle + s) + n_p·s,   step = cycle + s

The cycle is the one at c sequences (an upper bound for fewer). The times are the table's per-row lower bounds
(the balanced fractional placement), so for pipeline rows the bound is not strictly conservative;
`planner.search.percentile` confirms every plan by simulation and tightens the bound where it was not."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .space import shape_ids
from .table import NS_PER_S, Bounds, Table

NO_REPLICA_COUNT = -1  # no replica count meets the TTFT percentile for this row
NORMALIZER_TERMS = 64  # K: terms each side of the mode kept in the normalizer's lower bound
MIN_STALL_S = 1e-9  # a prefill stall is never exactly 0 s; the floor keeps S0/s finite


@dataclass(frozen=True)
class QueueTarget:
    """The TTFT percentile target the replicas of a plan must meet at the request's arrival rate."""

    percentile: float  # e.g. 99 (the p99); 50 = the median
    ttft_s: float
    rate_rps: float
    extra_replicas: dict = field(default_factory=dict)  # row_key(row) -> at least this many replicas (tightening)


def _lgamma(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.lgamma, otypes=[float])(np.asarray(x, float))


def log_weight(n, lam, s0_s, stall_s) -> np.ndarray:
    """log(π_n / π_0) of the birth–death chain above (n ≤ c)."""
    n = np.asarray(n, float)
    s = np.maximum(np.asarray(stall_s, float), MIN_STALL_S)
    x = np.asarray(s0_s, float) / s
    return n * np.log(np.asarray(lam, float) * s) + _lgamma(x + n + 1.0) - _lgamma(x + 1.0) - _lgamma(n + 1.0)


def _log_near_mode(mode, lam, s0, s, c) -> np.ndarray:
    """log Σ_{|n − m| ≤ K, 0 ≤ n < c} π_n / π_m, walking out from the mode with π_{n+1}/π_n = λ·S(n+1)/(n+1)
    (every factor ≤ 1 away from the mode, so nothing overflows)."""
    acc = np.ones_like(mode)
    up = np.ones_like(mode)
    down = np.ones_like(mode)
    for j in range(1, NORMALIZER_TERMS + 1):
        n = mode + j
        up = np.where(n <= c - 1, up * lam * (s0 + n * s) / n, 0.0)
        k = mode - j + 1  # π_{k−1} / π_k = k / (λ·S(k))
        down = np.where(k >= 1, down * k / (lam * (s0 + k * s)), 0.0)
        acc = acc + up + down
    return np.log(acc)


def wait_quantile_s(slots, lam, s0_s, stall_s, percentile: float) -> np.ndarray:
    """W_p of the bound above: inf where the queue is unstable (λ ≥ μ_c)."""
    c = np.asarray(slots, float)
    lam = np.asarray(lam, float)
    s = np.maximum(np.asarray(stall_s, float), MIN_STALL_S)
    s0 = np.asarray(s0_s, float)
    mu_c = c / (s0 + c * s)
    stable = lam < mu_c
    tail = 1.0 - percentile / 100.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        mode = np.where(lam * s < 1.0, np.floor(lam * s0 / np.maximum(1.0 - lam * s, 1e-300)), c)
        mode = np.clip(mode, 0.0, c - 1.0)
        log_t = log_weight(c, lam, s0, s) - np.log1p(-np.where(stable, lam / mu_c, 0.0))
        log_z = log_weight(mode, lam, s0, s) + _log_near_mode(mode, lam, s0, s, c)
        p_wait = 1.0 / (1.0 + np.exp(log_z - log_t))
        w = np.log(p_wait / tail) / (mu_c - lam)
    return np.where(~stable, np.inf, np.where(p_wait <= tail, 0.0, w))


def poisson_quantile(mean: np.ndarray, percentile: float) -> np.ndarray:
    """Smallest n with P(N ≤ n) ≥ p for N ~ Poisson(mean), elementwise (small means: a step's arrivals)."""
    m = np.asarray(mean, float)
    p = percentile / 100.0
    out = np.zeros(m.shape)
    term = np.exp(-m)
    cdf = term.copy()
    done = cdf >= p
    k = 0
    while not np.all(done) and k < 10_000:
        k += 1
        term = term * m / k
        cdf = cdf + term
        newly = ~done & (cdf >= p)
        out[newly] = k
        done |= newly
    return out


@dataclass(frozen=True)
class RowTimes:
    """Per-candidate seconds the bound uses (from the table's lower bounds at the concurrency row)."""

    cycle_s: np.ndarray
    stall_s: np.ndarray
    ttft_alone_s: np.ndarray
    chunks: np.ndarray
    slots: np.ndarray  # c
    osl: int

    @classmethod
    def of(cls, t: Table, b: Bounds, rows: np.ndarray | None = None) -> "RowTimes":
        """Times of `rows` (default: every row), each taken at its concurrency row."""
        top = concurrency_rows(t, b)
        if rows is not None:
            top = top[rows]
        cycle = t.pp[top] * (b.dec_stage_ns[top] + t.dec_hop_ns[top]) / NS_PER_S
        stall = t.stall_coef[top] * (b.chunk_stage_ns[top] + t.chunk_hop_ns[top]) / NS_PER_S
        return cls(cycle, stall, t.ttft_ns[top] / NS_PER_S, t.stall_coef[top] / t.pp[top], t.batch[top], t.osl)


def concurrency_rows(t: Table, b: Bounds) -> np.ndarray:
    """For each row, the row of the same structure with the largest batch that meets the TPOT and memory bounds
    (itself when none does)."""
    ok = b.tpot_ok & b.memory_ok
    best: dict[tuple, int] = {}
    keys = shape_ids(t.rows).tolist()  # rows of one structure differ only in the micro-batch
    for i, k in enumerate(keys):
        if ok[i] and (k not in best or t.batch[i] > t.batch[best[k]]):
            best[k] = i
    return np.array([best.get(k, i) for i, k in enumerate(keys)], np.int64)


def admission_s(rt: RowTimes, rate_per_replica: np.ndarray, percentile: float) -> np.ndarray:
    """A of the module docstring: from admission to first token, at the percentile."""
    step = rt.cycle_s + rt.stall_s
    own = np.maximum(rt.ttft_alone_s, rt.chunks * rt.cycle_s + rt.stall_s)
    others = poisson_quantile(rate_per_replica * step, percentile)
    return step + own + others * rt.stall_s


def ttft_bound_s(rt: RowTimes, replicas: np.ndarray, target: QueueTarget) -> np.ndarray:
    """TTFT_p bound of each candidate at `replicas` replicas."""
    lam = target.rate_rps / np.asarray(replicas, float)
    admit = admission_s(rt, lam, target.percentile)
    s0 = admit + rt.osl * rt.cycle_s
    return wait_quantile_s(rt.slots, lam, s0, rt.stall_s, target.percentile) + admit


def fewest_replicas(rt: RowTimes, target: QueueTarget, max_replicas: int) -> np.ndarray:
    """Per candidate, the fewest replicas (≥ 1) whose TTFT_p bound meets the target, NO_REPLICA_COUNT if none up
    to `max_replicas`. The bound falls as replicas are added: doubling, then bisection."""
    def ok(r: np.ndarray) -> np.ndarray:
        return ttft_bound_s(rt, r, target) <= target.ttft_s

    lo = np.ones(rt.slots.shape, np.int64)
    good = ok(lo)
    hi = lo.copy()
    todo = ~good
    while todo.any():
        hi = np.where(todo, np.minimum(hi * 2, max_replicas), hi)
        todo &= ~ok(hi) & (hi < max_replicas)
    feasible = good | ok(hi)
    left, right = lo, hi  # where lo fails: lo fails, hi passes
    while True:
        active = ~good & feasible & (right - left > 1)
        if not active.any():
            break
        mid = (left + right) // 2
        m_ok = ok(mid)
        right = np.where(active & m_ok, mid, right)
        left = np.where(active & ~m_ok, mid, left)
    return np.where(feasible, np.where(good, lo, right), NO_REPLICA_COUNT).astype(np.int64)


def row_key(r) -> tuple:
    """What identifies a row (space.Row) across searches: its GPU type, precisions, layout and micro-batch."""
    return (r.gpu.id, r.weights, r.kv, r.tp, r.dp, r.pp, r.ep, r.micro_batch)


def min_replicas(t: Table, b: Bounds, target: QueueTarget, max_replicas: int) -> np.ndarray:
    """Per row, at least its capacity's replicas (b.replicas) and the fewest meeting the TTFT percentile bound
    (NO_REPLICA_COUNT if none up to `max_replicas`). The bound depends on the row's structure only (its
    concurrency row), so it is computed once per structure, for rows the other bounds leave feasible."""
    out = np.maximum(1, b.replicas).astype(np.int64)
    cand = np.flatnonzero(b.memory_ok & b.tpot_ok & b.gpus_ok & b.ttft_ok)
    if cand.size:
        top = concurrency_rows(t, b)[cand]
        uniq, back = np.unique(top, return_inverse=True)
        need = fewest_replicas(RowTimes.of(t, b, uniq), target, max_replicas)[back]
        out[cand] = np.where(need < 0, NO_REPLICA_COUNT, np.maximum(out[cand], need))
    if target.extra_replicas:
        index = {row_key(r): i for i, r in enumerate(t.rows)}
        for row, k in target.extra_replicas.items():
            i = index.get(row)
            if i is not None and out[i] >= 0:
                out[i] = max(out[i], k)
    return out
