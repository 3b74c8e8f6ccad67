"""Mixture-of-experts routing statistics under uniform top-k routing: distinct experts touched per step and the
load of the busiest expert-parallel rank."""
from __future__ import annotations

import math

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
_add_reduce = np.add.reduce  # ndarray.sum less its Python wrapper (the same pairwise sum: one call per window)


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


_lgammas = np.frompyfunc(math.lgamma, 1, 1)


def _lgamma_of(values: np.ndarray) -> np.ndarray:
    """math.lgamma of each whole number (the same floats as calling it one by one)."""
    return _lgammas(values.astype(float)).astype(float)


# elements per batched block of windows (`window_blocks`): 128 KiB per [m, W] array, so that a block's passes run
# in cache (numpy's exp on 4 MiB arrays measured 6x slower per element than on 512 KiB ones; 2^12 … 2^16 elements
# per block measured 17.5–24 ns per window element in all, the least at 2^14, on the loaded 2-core machine)
_BLOCK_ELEMENTS = 1 << 14


def window_blocks(trials: np.ndarray, prob: float, rows=None):
    """`binomial_window(trials[j], prob)` for many trials of one probability at once, as blocks of rows: yields
    (js, lo, n, x, pmf) where row r of the [m, W] arrays x and pmf holds window j = js[r] in its columns
    0 … n[r] − 1 (beyond them x runs on and pmf is not set to anything: NaN or ≥ 0, never read as a probability;
    clearing it was a fifth of a block's time). Every trials > 0 and 0 < prob < 1.

    Each element is computed by the same float operations as binomial_window's (the running sums along each
    row, one sequential add per element; log, log1p and exp elementwise; whole numbers exact however formed), so
    the windows are bit for bit those of the one-at-a-time form (tests/perf/test_moe.py checks it); the search
    meets ~25k distinct windows per MoE plan, and one call per window spent most of its time in numpy's per-call
    overhead. Rows are taken in increasing trials (similar widths share a block: little padding); a block holds
    at most _BLOCK_ELEMENTS, so its passes run in cache.

    `rows`: (order, trials[order], lo, n, upto) from `_window_rows` with a length upto ≤ n per row: only columns
    0 … upto − 1 of each row are computed (the blocks are as wide as their rows' upto; the rest of a row is not
    set, as beyond its window)."""
    order, t_sorted, lo_all, n_all, upto = (*_window_rows(trials, prob), None) if rows is None else rows
    log_q, log_rest_q = math.log(prob), math.log1p(-prob)
    steps = np.arange(int(n_all.max()) if len(n_all) else 0, dtype=float)
    # ln lo!, ln trials! and ln (trials − lo)! of every row at once (math.lgamma each: the same floats per row)
    lg_lo, lg_t, lg_rest = (_lgamma_of(v)[:, None] for v in (lo_all + 1, t_sorted + 1, t_sorted - lo_all + 1))
    # windows that start at the same lo share the running sum of log x (the same adds in the same order): lo is
    # non-decreasing in trials, so equal starts are neighbours (a repeat further on would only be summed again)
    new_start = np.empty(len(lo_all), bool)
    new_start[:1] = True
    np.not_equal(lo_all[1:], lo_all[:-1], out=new_start[1:])
    run_of = np.cumsum(new_start) - 1
    # the rows of a block: as many as fit the element budget at the block's widest (last, in trials order) row
    widths = np.maximum.accumulate(n_all if upto is None else upto).tolist()
    start = 0
    while start < len(t_sorted):
        stop = start + 1
        while stop < len(t_sorted) and widths[stop] * (stop + 1 - start) <= _BLOCK_ELEMENTS:
            stop += 1
        t, lo, n = t_sorted[start:stop], lo_all[start:stop], n_all[start:stop]
        w = int((n if upto is None else upto[start:stop]).max())
        x = lo.astype(float)[:, None] + steps[:w]  # x = lo … lo + W − 1 (whole numbers)
        rest = t.astype(float)[:, None] - x  # trials − x
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            # the more trials per block, the fewer distinct lo (small q: ~1/q trials per lo)
            shared = run_of[stop - 1] - run_of[start] + 1 < stop - start
            if shared:
                firsts = new_start[start:stop].copy()
                firsts[0] = True  # (a run may go on from the block before)
            x_of = x[firsts] if shared else x
            ln_x_fact = np.empty((len(x_of), w))
            ln_x_fact[:, 0] = 0.0
            _running_sum(np.log(x_of)[:, 1:], axis=1, out=ln_x_fact[:, 1:])  # (log of whole rows: contiguous)
            if shared:
                ln_x_fact = ln_x_fact[run_of[start:stop] - run_of[start]]
            ln_x_fact += lg_lo[start:stop]
            ln_rest_sum = np.empty((len(t), w))
            ln_rest_sum[:, 0] = 0.0
            _running_sum(np.log(rest)[:, :-1], axis=1, out=ln_rest_sum[:, 1:])
            log_pmf = np.subtract(lg_t[start:stop], ln_x_fact, out=ln_x_fact)
            log_pmf -= np.subtract(lg_rest[start:stop], ln_rest_sum, out=ln_rest_sum)
            log_pmf += x * log_q
            log_pmf += np.multiply(rest, log_rest_q, out=rest)
            pmf = np.exp(log_pmf, out=log_pmf)
        yield order[start:stop], lo, n, x, pmf
        start = stop


def _window_rows(trials, prob: float):
    """(order, trials[order], lo, n) of `window_blocks`' rows: increasing trials, binomial_window's lo and
    window length n per row."""
    t_all = np.asarray(trials, np.int64)
    order = np.argsort(t_all, kind="stable")
    t_sorted = t_all[order]
    mean = t_sorted * prob
    sd = np.sqrt(t_sorted * prob * (1.0 - prob))
    lo_all = np.maximum(0, np.trunc(mean - 12.0 * sd).astype(np.int64) - 1)
    hi_all = np.minimum(t_sorted, np.trunc(mean + 12.0 * sd).astype(np.int64) + 2)
    return order, t_sorted, lo_all, hi_all - lo_all + 1


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


# ln 2^-54 = −37.43: a probability below 2^-54 added to a CDF value F in [1/2, 1) leaves it F (under half its unit
# in the last place); a window's columns whose log-probability is provably below this are left out (_settled_from)
_NEGLIGIBLE_LOG_PMF = -38.0


def _settled_from(t, lo, n, prob: float) -> np.ndarray:
    """Per window (trials t, start lo, length n): a column k from which every pmf value binomial_window gives is
    below 2^-54, or n where none is found. Proof: k lies past the mode ⌊(t + 1)q⌋ + 1, so the probabilities fall
    from k on; the log-probability at k, ln C(t, k) + k ln q + (t − k) ln(1 − q), is below −38 (computed from
    lgamma: error below 1e-7 up to t ~ 1e7), and binomial_window's log-probabilities differ from the exact ones by
    less than 1e-5 up to t ~ 1e7 (running sums of at most ~3e4 logs below 17 whose partial sums stay below 2^19,
    each add off by at most 2^-34; lgamma terms below 2^28, off by a few 2^-24) — the margin to ln 2^-54 = −37.43
    is 0.57. The candidates are the normal density's point of e^−38.5 plus ¼, 1 or 2 deviations; where
    the check fails (a skewed small window) the whole window stays."""
    tf = t.astype(float)
    sd = np.sqrt(tf * prob * (1.0 - prob))
    # the normal density's point of e^−38.5: z²/2 = 38.5 − ln(√(2π)·sd)
    z = np.sqrt(2.0 * np.maximum(0.5 - _NEGLIGIBLE_LOG_PMF - np.log(2.5066282746 * np.maximum(sd, 1e-3)), 0.0))
    out = n.copy()
    todo = np.arange(len(t))
    for extra in (0.25, 1.0, 2.0):  # (a skewed window's tail is longer than the normal's)
        k = np.maximum(np.ceil(tf[todo] * prob + (z[todo] + extra) * sd[todo]),
                       np.floor((tf[todo] + 1.0) * prob) + 1.0).astype(np.int64)
        inside = k < lo[todo] + n[todo] - 1
        todo, k = todo[inside], k[inside]
        if not len(todo):
            break
        tt = t[todo]
        log_pmf = (_lgamma_of(tt + 1) - _lgamma_of(k + 1) - _lgamma_of(tt - k + 1)
                   + k * math.log(prob) + (tt - k) * math.log1p(-prob))
        ok = log_pmf < _NEGLIGIBLE_LOG_PMF
        out[todo[ok]] = k[ok] - lo[todo[ok]]
        todo = todo[~ok]
    return out


def expected_max_binomial_floored(trials, prob: float, bins: int, floor, settle: bool = True) -> np.ndarray:
    """expected_max_binomial(trials[j], prob, bins, floor[j]) for each j, bit for bit (the same float operations
    per element; windows from `window_blocks`), for trials > 0, 0 < prob < 1 and floor > 0. What is one number
    per window (the floor's terms, the window's bounds) is computed for all windows at once, in window_blocks'
    row order (increasing trials); a block does only what needs its rows' F.

    The top of each window whose probabilities are all below 2^-54 (`_settled_from`: ~a sixth of the window) is
    not computed: where F there is in [1/2, 1), adding them leaves it F, so the one-at-a-time form's F is that
    constant up to the window's end and so is each of its terms 1 − F^bins; they are filled in, and the row's
    sum is taken over the same values in the same length (bit for bit; `settle=False` computes whole windows,
    as it does itself if some F there were below 1/2)."""
    trials = np.asarray(trials, np.int64)
    order, t_sorted, lo, n = _window_rows(trials, prob)
    f = np.asarray(floor, float)[order]
    hi = lo + n - 1
    c_up = np.ceil(f).astype(np.int64)
    v = np.floor(f).astype(np.int64)
    # P(M > x) inside the window: 1 − F(x)^bins before the first x with F(x) = 1 (F is non-decreasing along each
    # row's window), exactly 0 from there; only start … saturated are read (≤ n: columns beyond a row's window are
    # zeroed with the rest from `saturated` on)
    start = np.minimum(np.maximum(c_up, lo) - lo, n)
    settled = _settled_from(t_sorted, lo, n, prob) if settle else n
    # computed columns: through the first settled one (its term is the rest's) and the floor's start
    upto = np.minimum(n, np.maximum(settled + 1, start + 1))
    v_col = np.minimum(np.clip(v - lo, 0, n - 1), upto - 1)  # (F at v: from `settled` on it is F there)
    at_v = np.empty(len(f))
    inside = np.zeros(len(f))
    start_l, n_l, on_l = start.tolist(), n.tolist(), (c_up <= hi).tolist()
    pos = 0
    for js, _, n_b, _, pmf in window_blocks(trials, prob, (order, t_sorted, lo, n, upto)):
        m, w = pmf.shape
        at = slice(pos, pos + m)
        with np.errstate(over="ignore", invalid="ignore"):
            # F before the cap at 1. Beyond the window pmf is NaN or ≥ 0 (window_blocks), so there F stays ≥ the
            # window's last F or is NaN: never < 1 after F reached 1 inside, so the count below finds `saturated`
            cum = _running_sum(pmf, axis=1, out=pmf)
            if settle and np.any((settled[at] < upto[at]) & (cum[np.arange(m), np.maximum(settled[at] - 1, 0)]
                                                              < 0.5)):
                return expected_max_binomial_floored(trials, prob, bins, floor, settle=False)
            at_v[at] = cum[np.arange(m), v_col[at]]
            # (F < 1 in every column before r0 ≤ each row's start, or F reached 1 there and saturated = start
            # either way: counting from r0 on gives the same saturated.) A row whose F stays below 1 through its
            # w computed columns and goes on beyond them (settled) never reaches 1: saturated at its end
            r0 = min(start_l[at])
            count = r0 + (cum[:, r0:] < 1.0).sum(axis=1)
            saturated = np.maximum(start[at], np.minimum(np.where(count >= w, n_b, count), n_b))
            r1 = int(saturated.max())
            # each row's sum over its own start … n − 1 (zeros from `saturated` on) in that length: numpy's pairwise
            # summation of the same values in the same order as the one-at-a-time form
            exceed = np.zeros((m, max(n_l[at]) - r0))
            top = min(r1, w)
            part = np.subtract(1.0, np.power(cum[:, r0:top], bins, out=cum[:, r0:top]), out=exceed[:, :top - r0])
            part[np.arange(r0, top) >= saturated[:, None]] = 0.0
            if r1 > w:  # settled rows: their last computed term (F constant from `settled` on) to saturated
                np.copyto(exceed[:, w - r0:], part[:, w - 1 - r0:w - r0],
                          where=np.arange(w, exceed.shape[1] + r0) < saturated[:, None])
        inside[at] = [float(_add_reduce(row[s - r0:e - r0])) if on else 0.0
                      for row, s, e, on in zip(exceed, start_l[at], n_l[at], on_l[at])]
        pos += m
    with np.errstate(over="ignore", invalid="ignore"):
        p_v = np.where(v < lo, 1.0, np.where(v <= hi, 1.0 - np.minimum(1.0, at_v) ** bins, 0.0))
    partial = np.where(c_up > f, (c_up - f) * p_v, 0.0)
    below = np.maximum(0, np.minimum(lo, hi + 1) - c_up)
    out = np.empty(len(trials))
    out[order] = f + partial + below + inside
    return out


# windows to compute at once before `window_blocks` pays (its fixed cost is ~2 windows' one at a time)
BATCH_WINDOWS_FROM = 3


class WholeMemo:
    """Known values of a function of a whole number n ≥ 0 (the other arguments fixed by whoever keeps it), for the
    whole process: an array below DENSE (NaN: not known), a dict above, so that an array of arguments is looked up
    in one numpy step. The search asks ~25k distinct statistics per MoE plan, many of them again in later steps."""

    DENSE = 1 << 16
    SPARSE_LIMIT = 1 << 18  # values kept above DENSE; past it they start again (a long-lived process's memory)

    def __init__(self):
        self.dense = np.full(self.DENSE, np.nan)
        self.sparse: dict = {}

    def get(self, n: np.ndarray) -> np.ndarray:
        small = n < self.DENSE
        if small.all():
            return self.dense[n]
        out = np.full(n.shape, np.nan)
        out[small] = self.dense[n[small]]
        # one dict look-up per distinct argument (a prefill's tokens, ISL·DP, repeat over many candidates)
        distinct, inverse = np.unique(n[~small], return_inverse=True)
        out[~small] = np.array([self.sparse.get(v, np.nan) for v in distinct.tolist()], float)[inverse.reshape(-1)]
        return out

    def put(self, n: np.ndarray, values: np.ndarray) -> None:
        small = n < self.DENSE
        self.dense[n[small]] = values[small]
        if not small.all():
            if len(self.sparse) > self.SPARSE_LIMIT:  # bound a long-lived process's memory; values do not depend on it
                self.sparse.clear()
            self.sparse.update(zip(n[~small].tolist(), values[~small].tolist()))

    def values(self, compute, *args: np.ndarray) -> list[np.ndarray]:
        """The kept values at each array of arguments in `args` (one gather each); the distinct arguments not kept
        yet are computed first, together, by `compute(distinct)` (which keeps them here and returns them), so each
        element reads the float its own call would return. Where the memo started again meanwhile (past its size
        bound), the values are computed directly."""
        got = [self.get(a) for a in args]
        missing = [a[np.isnan(v)] for a, v in zip(args, got)]
        if not any(len(m) for m in missing):
            return got
        compute(np.unique(np.concatenate(missing)))
        got = [self.get(a) for a in args]
        if any(np.isnan(v).any() for v in got):
            uniq, inverse = np.unique(np.concatenate(args), return_inverse=True)
            flat = compute(uniq)[inverse.reshape(-1)]
            got = np.split(flat, np.cumsum([len(a) for a in args])[:-1])
        return got

    def get1(self, n: int) -> float:
        return float(self.dense[n]) if n < self.DENSE else self.sparse.get(n, math.nan)

    def put1(self, n: int, value: float) -> float:
        self.put(np.array([n]), np.array([value]))
        return value


def memo_for(memos: dict, key) -> WholeMemo:
    memo = memos.get(key)
    if memo is None:
        memo = memos[key] = WholeMemo()
    return memo


_ratio_memos: dict = {}  # (k, ranks, redundant share) -> busiest-rank load ratio by tokens T


def _busiest_rank_ratio(tokens: int, k: int, ranks: int, redundant_share: float) -> float:
    """E[max(M_fixed, mean)] / mean for T·k assignments over `ranks` (busiest_rank_load_ratio), one at a time."""
    memo = memo_for(_ratio_memos, (k, ranks, redundant_share))
    ratio = memo.get1(tokens)
    if ratio != ratio:  # not known yet
        assignments = tokens * k
        mean = assignments / ranks
        fixed = expected_max_binomial(assignments, (1.0 - redundant_share) / ranks, ranks, floor=mean)
        ratio = memo.put1(tokens, fixed / mean)
    return ratio


def _busiest_rank_ratios(tokens: np.ndarray, ranks: np.ndarray, k: int, redundant_share: float) -> np.ndarray:
    """_busiest_rank_ratio for each distinct (tokens[j], ranks[j]) (all > 0, ranks > 1): the ones not yet known
    computed together per rank count (expected_max_binomial_floored), the same floats as one at a time."""
    out = np.empty(len(tokens))
    for r in np.unique(ranks).tolist():
        at = np.flatnonzero(ranks == r)
        t = tokens[at]
        memo = memo_for(_ratio_memos, (k, r, redundant_share))
        values = memo.get(t)
        todo = np.flatnonzero(np.isnan(values))
        if todo.size:
            prob = (1.0 - redundant_share) / r
            if 0.0 < prob < 1.0 and todo.size >= BATCH_WINDOWS_FROM:
                a = t[todo] * k
                mean = a / r
                new = expected_max_binomial_floored(a, prob, r, mean) / mean
                memo.put(t[todo], new)
                values[todo] = new
            else:  # a few (a block's fixed cost is more than theirs), or the edge cases (a share of 1: no fixed load)
                values[todo] = [_busiest_rank_ratio(v, k, r, redundant_share) for v in t[todo].tolist()]
        out[at] = values
    return out


def _bits(a: np.ndarray) -> np.ndarray:
    return a.view(f"u{a.dtype.itemsize}") if a.dtype.kind == "f" else a


class RecentArrays:
    """The last few results of a vectorized function, keyed by scalars and whole input arrays (compared by value):
    a step's terms ask for the same candidates' statistics several times (the decode step and the chunk's base
    step carry the same tokens; each layer's kernel groups and its collectives need the same busiest-rank load).
    Results are returned read-only so that no caller can change a kept one. Inputs match when their bits do
    (a float −0.0 is not 0.0 here), so a kept result is exactly what the function would return."""

    def __init__(self, size: int = 4):
        self.size = size
        self.entries: list = []

    def get(self, scalars, *arrays):
        for i, (s, keep, value) in enumerate(self.entries):
            if s == scalars and all(a.shape == b.shape and a.dtype == b.dtype and np.array_equal(_bits(a), _bits(b))
                                    for a, b in zip(arrays, keep)):
                self.entries.insert(0, self.entries.pop(i))
                return value
        return None

    def put(self, scalars, *arrays_and_value):
        *arrays, value = arrays_and_value
        value.flags.writeable = False
        self.entries.insert(0, (scalars, [np.array(a) for a in arrays], value))
        del self.entries[self.size:]
        return value


_recent_ratios = RecentArrays()


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
        tokens, ranks = int(t.flat[0]), int(ep_arr.flat[0])
        ratio = _busiest_rank_ratio(tokens, k, ranks, share) if ranks > 1 and tokens > 0 else 1.0
        return np.full(t.shape, ratio)
    known = _recent_ratios.get((k, share), t, ep_arr)
    if known is not None:
        return known
    # one computation per distinct (T, ep): the search asks for ~10^5 candidates sharing a few hundred pairs. Per
    # EP degree the kept ratios are looked up for every row (one gather); the distinct T not yet known are
    # computed first (_busiest_rank_ratios keeps them), so each row reads the float its own call would return
    flat_t, flat_ep = t.ravel(), ep_arr.ravel()
    ratio = np.ones(flat_t.size)
    if flat_ep.size and (flat_ep == flat_ep[0]).all():  # one EP degree (most calls): no sort
        eps = [int(flat_ep[0])]
    else:  # (none where there are no candidates)
        eps = np.unique(flat_ep).tolist()
    for r in eps:
        if r <= 1:
            continue
        at = np.flatnonzero((flat_ep == r) & (flat_t > 0))
        memo = memo_for(_ratio_memos, (k, r, share))
        ratio[at] = memo.values(lambda n: _busiest_rank_ratios(n, np.full(len(n), r), k, share), flat_t[at])[0]
    return _recent_ratios.put((k, share), t, ep_arr, ratio.reshape(t.shape))


def expected_experts_touched_on_rank(num_experts, experts_per_token, tokens, ep, redundant_experts=0, load_ratio=1.0):
    """Distinct experts the busiest rank touches in one step: its (E + R)/ep experts, each hit by an effective
    T·ρ tokens (ρ the busiest-rank load ratio): (E + R)/ep · (1 − (1 − k/E)^(T·ρ)). With ep = 1 and R = 0 this
    is expected_experts_touched."""
    e = np.asarray(num_experts, dtype=float)
    ep = np.asarray(ep, dtype=float)
    slots = (e + redundant_experts) / ep
    t_eff = np.asarray(tokens, dtype=float) * np.asarray(load_ratio, dtype=float)
    if e.ndim == 0 and e > 0:  # a MoE model (one E): the same operations without the dense model's guards
        hit = float(experts_per_token) / float(e)
        return np.asarray(slots * (1.0 - np.power(1.0 - hit, t_eff)))
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
