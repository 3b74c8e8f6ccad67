"""Mixture-of-experts routing statistics under uniform top-k routing: distinct experts touched per step and the
load of the busiest expert-parallel rank."""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


def expected_experts_touched(num_experts, experts_per_token, tokens):
    """Expected distinct experts hit in one step by `tokens` tokens, each routed to k of E experts:

        E · (1 − (1 − k/E)^T)

    (each expert is missed by one token with probability 1 − k/E, independently per token).
    Returns 0 for a dense model (E = 0)."""
    e = np.asarray(num_experts, dtype=float)
    k = np.asarray(experts_per_token, dtype=float)
    t = np.asarray(tokens, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        touched = e * (1.0 - np.power(1.0 - np.where(e > 0, k / np.where(e > 0, e, 1.0), 0.0), t))
    return np.where(e > 0, touched, 0.0)


def tokens_per_touched_expert(num_experts, experts_per_token, tokens):
    """Mean batch each touched expert processes: T·k / E[touched]. At small T this is ~1: every touched expert
    streams its whole weight matrix for about one token, which is why small-batch MoE decode is memory bound."""
    touched = expected_experts_touched(num_experts, experts_per_token, tokens)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(touched > 0, np.asarray(tokens, float) * experts_per_token / np.where(touched > 0, touched, 1), 0.0)


_running_sum = np.add.accumulate  # np.cumsum less its dispatch (sequential: the same sums bit for bit)


def binomial_window(trials: int, prob: float) -> tuple[int, np.ndarray, np.ndarray]:
    """(lo, x, pmf): the Binomial(trials, prob) probabilities at x = lo … hi, mean ± 12 standard deviations (outside
    it each is below 1e-30: nothing at double precision), for trials > 0 and 0 < prob < 1. ln x! and ln (trials − x)!
    come from running sums of logs from one lgamma each; the search meets ~25k distinct (T, ep) per MoE plan, so
    the buffers are reused in place and the running sums go straight into them (the same float operations in the
    same order as the plain form kept in tests/perf/test_moe.py)."""
    mean = trials * prob
    sd = math.sqrt(trials * prob * (1.0 - prob))
    lo = max(0, int(mean - 12.0 * sd) - 1)
    hi = min(trials, int(mean + 12.0 * sd) + 2)
    n = hi - lo + 1
    x = np.arange(lo, hi + 1, dtype=float)  # whole numbers, exact in float64
    ln_x_fact = np.empty(n)
    ln_x_fact[0] = 0.0
    _running_sum(np.log(x[1:]), out=ln_x_fact[1:])
    ln_x_fact += math.lgamma(lo + 1)
    ln_rest_sum = np.empty(n)
    ln_rest_sum[0] = 0.0
    _running_sum(np.log(trials - x[:-1]), out=ln_rest_sum[1:])
    log_pmf = np.subtract(math.lgamma(trials + 1), ln_x_fact, out=ln_x_fact)
    log_pmf -= math.lgamma(trials - lo + 1) - ln_rest_sum
    log_pmf += x * math.log(prob)
    log_pmf += (trials - x) * math.log1p(-prob)
    return lo, x, np.exp(log_pmf, out=log_pmf)


def expected_max_binomial(trials: int, prob: float, bins: int, floor: float = 0.0) -> float:
    """E[max(M, floor)] where M is the largest of `bins` independent Binomial(trials, prob) counts:

        E[max(M, c)] = c + Σ_{x ≥ c} P(M > x),   P(M > x) = 1 − F(x)^bins,   F the binomial CDF

    (the sum is over unit steps from c, the first partial step weighted by ⌈c⌉ − c). F is summed in log space
    over mean ± 12 standard deviations (outside it P(M > x) is 1 below and 0 above to double precision)."""
    if trials <= 0 or prob <= 0.0:
        return max(0.0, floor)
    if prob >= 1.0:
        return max(float(trials), floor)
    lo, x, pmf = binomial_window(trials, prob)
    hi, n = lo + len(x) - 1, len(x)
    cum = _running_sum(pmf, out=pmf)  # F before the cap at 1
    if floor <= 0.0:
        return lo + float((1.0 - np.minimum(1.0, cum) ** bins).sum())
    c_up = math.ceil(floor)
    v = math.floor(floor)
    partial = 0.0
    if c_up > floor:
        p_v = 1.0 if v < lo else (float((1.0 - np.minimum(1.0, cum[v - lo:v - lo + 1]) ** bins)[0]) if v <= hi else 0.0)
        partial = (c_up - floor) * p_v
    # Σ_{v = c_up}^{hi} P(M > v): 1 for each v below the window, the window's values from max(c_up, lo); from the
    # first x with F(x) = 1 on, P(M > x) is exactly 0, so the power is taken only before it
    below = max(0, min(lo, hi + 1) - c_up)
    inside = 0.0
    if c_up <= hi:
        start = max(c_up, lo) - lo
        saturated = max(start, int(np.searchsorted(cum, 1.0)))  # cum is non-decreasing
        exceed = np.zeros(n - start)
        exceed[:saturated - start] = 1.0 - cum[start:saturated] ** bins
        inside = float(exceed.sum())
    return floor + partial + below + inside


_lgamma = np.vectorize(math.lgamma, otypes=[float])


@lru_cache(maxsize=65536)
def _busiest_rank_ratio(assignments: int, ranks: int, redundant_share: float) -> float:
    mean = assignments / ranks
    fixed = expected_max_binomial(assignments, (1.0 - redundant_share) / ranks, ranks, floor=mean)
    return fixed / mean


def busiest_rank_load_ratio(num_experts, experts_per_token, tokens, ep, redundant_experts=0):
    """Expected load of the busiest of `ep` expert-parallel ranks over the mean load T·k/ep, for one step of T
    tokens each routed to k of E experts uniformly (the step waits for the busiest rank).

    Derivation: a rank holding E/ep experts receives each of the T·k (token, expert) assignments with
    probability 1/ep, so its load is Binomial(T·k, 1/ep); taking the ep ranks as independent gives
    E[max] = Σ_x (1 − F(x)^ep) (expected_max_binomial), floored at the mean T·k/ep (loads summing to T·k cannot
    all lie below it). That dependence makes the true max slightly larger still at tiny T (within 7 % of a Monte-Carlo of top-k routing at T·k/ep ≥ 1/8, within 2 % from
    8 assignments per rank; tests/perf/test_moe.py).

    Redundant experts (DeepSeek's EPLB): with R of the E experts given a second copy on another rank and each
    of their tokens sent to whichever copy keeps the ranks even, a share R/E of the assignments can be placed
    freely; the fixed part of a rank's load is Binomial(T·k, (1 − R/E)/ep) and the free part fills the ranks up
    to the mean, so the busiest rank carries E[max(M_fixed, T·k/ep)].

    ep = 1 (or a dense model) gives 1. T is rounded up to whole tokens."""
    e = int(num_experts)
    k = int(experts_per_token)
    t = np.ceil(np.asarray(tokens, float) - 1e-9).astype(np.int64)
    ep_arr = np.asarray(ep, dtype=np.int64)
    t, ep_arr = np.broadcast_arrays(t, ep_arr)
    share = min(1.0, max(0.0, float(redundant_experts) / e)) if e > 0 else 0.0
    if e <= 0:
        return np.ones(t.shape, float)
    if t.size == 1:  # one step (estimate, the simulator's single steps): no np.unique round trip
        u = int(t.flat[0]) * (1 << 20) + int(ep_arr.flat[0])
        ratio = (_busiest_rank_ratio((u >> 20) * k, u & ((1 << 20) - 1), share)
                 if (u & ((1 << 20) - 1)) > 1 and (u >> 20) > 0 else 1.0)
        return np.full(t.shape, ratio)
    # one computation per distinct (T, ep): the search asks for ~10^5 candidates sharing a few hundred pairs
    key = t.ravel() * (1 << 20) + ep_arr.ravel()
    uniq, inverse = np.unique(key, return_inverse=True)
    ratio = np.array([_busiest_rank_ratio(int(u >> 20) * k, int(u & ((1 << 20) - 1)), share)
                      if (u & ((1 << 20) - 1)) > 1 and (u >> 20) > 0 else 1.0 for u in uniq.tolist()], float)
    return ratio[inverse].reshape(t.shape)


def expected_experts_touched_on_rank(num_experts, experts_per_token, tokens, ep, redundant_experts=0, load_ratio=1.0):
    """Distinct experts the busiest rank touches in one step: its (E + R)/ep experts, each hit by an effective
    T·ρ tokens (ρ the busiest-rank load ratio): (E + R)/ep · (1 − (1 − k/E)^(T·ρ)). With ep = 1 and R = 0 this
    is expected_experts_touched."""
    e = np.asarray(num_experts, dtype=float)
    ep = np.asarray(ep, dtype=float)
    slots = (e + redundant_experts) / ep
    t_eff = np.asarray(tokens, dtype=float) * np.asarray(load_ratio, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(e > 0, 1.0 - np.power(1.0 - np.where(e > 0, experts_per_token / np.where(e > 0, e, 1.0), 0.0), t_eff), 0.0)
    return np.where(e > 0, slots * frac, 0.0)


def remote_domain_share(num_experts, experts_per_token, ranks, ranks_per_domain):
    """Share of a token's k expert copies that cross the scale-out network when the all-to-all sends it once to
    each other domain holding one of its experts (DeepEP's high-throughput dispatch: one RDMA send per remote
    node, then NVLink forwarding inside it; DeepSeek-V3 report arXiv 2412.19437 section 3.2.2): with N = ⌈ranks /
    ranks_per_domain⌉ domains of E/N experts each and k distinct experts chosen uniformly,

        E[remote domains hit] = (N − 1) · (1 − Π_{i<k} (E − E/N − i) / (E − i)),   share = that / k

    (a given other domain is missed when all k experts fall outside it: hypergeometric). One domain: 0. The
    per-expert send the formula replaces has share (N − 1)/N. DeepSeek-V3's node-limited routing (at most 4
    groups per token) is not modelled: the share is an upper bound for it."""
    e = float(num_experts)
    k = int(experts_per_token)
    n = np.ceil(np.asarray(ranks, float) / np.maximum(np.asarray(ranks_per_domain, float), 1.0) - 1e-9)
    if e <= 0 or k <= 0:
        return np.zeros(np.shape(n))
    outside = e - e / np.maximum(n, 1.0)
    miss = np.ones(np.shape(n))
    for i in range(k):
        miss = miss * np.clip((outside - i) / (e - i), 0.0, 1.0)
    return np.where(n > 1, (n - 1.0) * (1.0 - miss) / k, 0.0)
