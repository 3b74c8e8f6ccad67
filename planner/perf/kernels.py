"""Kernel efficiency by shape: how much of the peak a GEMM or an attention kernel reaches for the work it is given.

Symbols: T tokens in the step (GEMM rows), N output columns of a GEMM on one GPU, SM the accelerator's streaming
multiprocessors (CUs on CDNA, MXUs on TPU), t_m × t_n the kernel's output tile.

- GEMM compute efficiency rises with the token count: η_F(T) = η_max · wave(T, N) (a skinny decode GEMM pads its
  few rows to whole tiles and is bandwidth bound whatever η_F; a large prefill GEMM reaches η_max);
- wave quantization: tiles = ⌈T/t_m⌉·⌈N/t_n⌉ run in ⌈tiles/SM⌉ waves; the useful share of that work is
  T·N / (waves·SM·t_m·t_n) (partial tiles and idle SMs in the last wave are waste);
- attention occupancy: a decode attention kernel gets one work item per (sequence, KV head, KV split); with fewer
  than c·SM items (c items per SM saturate HBM) it reaches items / (c·SM) of the bandwidth. Split-KV kernels
  (flash-decoding) cut each context into chunks of s tokens, max(1, context / s) items per (sequence, KV head)."""
from __future__ import annotations

import math

import numpy as np

from .moe import RecentArrays, binomial_window, memo_for


def wave_efficiency(tokens, cols, sm_count, tile_tokens, tile_cols):
    """Useful share of the tile work the SMs do: T·N / (⌈tiles / SM⌉ · SM · t_m · t_n), tiles = ⌈T/t_m⌉·⌈N/t_n⌉.
    Partial tiles and the idle SMs of the last wave both count as waste, so the time 2·T·N·K / (peak · η · this)
    = 2·K·t_m·t_n·SM·waves / (peak · η) never falls as T grows. 1 where the tile is 0 (off) or SM is 0."""
    t = np.maximum(np.asarray(tokens, float), 1.0)
    n = np.maximum(np.asarray(cols, float), 1.0)
    sm = np.asarray(sm_count, float)
    on = (np.asarray(tile_tokens, float) > 0) & (np.asarray(tile_cols, float) > 0) & (sm > 0)
    if on.all():  # (the usual case: the same floats without the np.where passes)
        tm, tn = np.asarray(tile_tokens, float), np.asarray(tile_cols, float)
        return np.asarray(t * n / (np.ceil(np.ceil(t / tm) * np.ceil(n / tn) / sm) * sm * tm * tn))
    tm = np.where(on, tile_tokens, 1.0)
    tn = np.where(on, tile_cols, 1.0)
    sms = np.where(on, sm, 1.0)
    tiles = np.ceil(t / tm) * np.ceil(n / tn)
    return np.where(on, t * n / (np.ceil(tiles / sms) * sms * tm * tn), 1.0)


def gemm_flops_efficiency(tokens, cols, sm_count, max_efficiency, tile_tokens, tile_cols):
    """η_F(T) = η_max · wave(T, N): the GEMM's peak fraction times the useful share of its tile work."""
    return np.asarray(max_efficiency, float) * wave_efficiency(tokens, cols, sm_count, tile_tokens, tile_cols)


def grouped_gemm_efficiency(rows_per_group, cols_per_group, groups, sm_count, max_efficiency, tile_tokens, tile_cols):
    """A grouped GEMM (MoE experts) in one launch: every group's ⌈rows/t_m⌉·⌈cols/t_n⌉ tiles share the waves over
    the SMs, so its efficiency is that of one GEMM with the groups' columns side by side (`groups` may be
    fractional: an expected count of experts touched)."""
    g = np.maximum(np.asarray(groups, float), 1.0)
    return gemm_flops_efficiency(rows_per_group, g * np.asarray(cols_per_group, float), sm_count, max_efficiency,
                                 tile_tokens, tile_cols)


def attention_occupancy(sequences, kv_heads_per_gpu, context_tokens, sm_count, ctas_per_sm, split_kv_tokens):
    """min(1, items / (c · SM)), items = sequences · KV heads · max(1, context / split) (one split when split = 0);
    1 where c or SM is 0 (occupancy not modelled)."""
    ctx = np.maximum(np.asarray(context_tokens, float), 1.0)
    split = np.asarray(split_kv_tokens, float)
    # fractional splits keep the time monotone in the context (a ceiling would make it a sawtooth)
    splits = np.where(split > 0, np.maximum(1.0, ctx / np.where(split > 0, split, 1.0)), 1.0)
    items = np.asarray(sequences, float) * np.asarray(kv_heads_per_gpu, float) * splits
    need = np.asarray(ctas_per_sm, float) * np.asarray(sm_count, float)
    return np.where(need > 0, np.minimum(1.0, items / np.where(need > 0, need, 1.0)), 1.0)


def _expected_tiles(trials: int, prob: float, tile: float) -> float:
    """E[⌈X / t⌉] for X ~ Binomial(n, q) (one n): `_expected_tiles_of`'s value."""
    return float(_tiles_sum(np.array([trials], np.int64), prob, tile)[0])


def _tiles_sum(trials: np.ndarray, prob: float, tile: float) -> np.ndarray:
    """E[⌈X / t⌉] for X ~ Binomial(n, q), each whole n ≥ 0 of `trials`. For a whole tile t ≥ 2 and 0 < q < 1, in
    closed form over the residues of X mod t (a finite Fourier sum, exact up to rounding):

        E[⌈X / t⌉] = (nq + E[(−X) mod t]) / t,
        E[(−X) mod t] = (t − 1)/2 + Σ_{j=1}^{t−1} φ(θ_j) / (e^{iθ_j} − 1),   θ_j = 2πj/t,

    (the pad to the next multiple of t as a function of the residue r: its discrete Fourier coefficients are
    (t − 1)/2 and 1/(ω^j − 1), ω = e^{2πi/t}), where φ(θ) = E[e^{iθX}] = (1 − q + q e^{iθ})^n = ρ^n e^{inψ} with
    ρ² = 1 − 4q(1 − q) sin²(θ/2), ψ = atan2(q sin θ, 1 − q + q cos θ). Terms j and t − j are equal (conjugates), so

        E[(−X) mod t] = (t − 1)/2 + Σ_{0<j<t/2} ρ_j^n sin(nψ_j − θ_j/2) / sin(θ_j/2) − [t even] (1 − 2q)^n / 2.

    t terms per n whatever its spread: the window sum Σ_x P(X = x)·⌈x/t⌉ over mean ± 12σ (which this replaces)
    costs ~24σ probabilities, each by running sums of logs off by up to ~1e-9 relative at n ~ 1e6; this form is
    good to ~1e-15 (tests/perf/test_kernels.py checks it against exact rational sums and a 40-digit one).
    Otherwise (t = 1: E = nq; q ∉ (0, 1) or a tile that is not a whole number) the window sum."""
    n = np.asarray(trials, float)
    if not (0.0 < prob < 1.0 and tile >= 1.0 and float(tile).is_integer()):
        return np.array([_window_tiles(int(v), prob, tile) for v in n.tolist()], float)
    t = int(tile)
    if t == 1:
        return n * prob
    half = np.pi * np.arange(1, (t + 1) // 2) / t  # θ_j / 2 for 0 < j < t/2
    s_half = np.sin(half)
    log_rho = 0.5 * np.log1p(-4.0 * prob * (1.0 - prob) * (s_half * s_half))
    psi = np.arctan2(prob * np.sin(2.0 * half), (1.0 - prob) + prob * np.cos(2.0 * half))
    with np.errstate(under="ignore"):
        terms = np.exp(n[:, None] * log_rho) * np.sin(n[:, None] * psi - half) / s_half
        pad = (t - 1) / 2.0 + terms.sum(axis=1)
        if t % 2 == 0:
            pad -= 0.5 * np.power(1.0 - 2.0 * prob, n)
    return (n * prob + pad) / t


def _window_tiles(trials: int, prob: float, tile: float) -> float:
    """E[⌈X / t⌉] as Σ_x P(X = x) · ⌈x / t⌉ over mean ± 12 standard deviations (outside it the probability is
    below 1e-30: nothing at double precision), for the cases _tiles_sum has no closed form for."""
    if trials <= 0 or prob <= 0.0:
        return 0.0
    if prob >= 1.0:
        return float(math.ceil(trials / tile - 1e-9))
    _, x, pmf = binomial_window(trials, prob)
    return float(np.dot(pmf, np.ceil(x / tile - 1e-9)))


_tile_memos: dict = {}  # (q, t_m) -> _expected_tiles by trials n


def _expected_tiles_one(trials: int, prob: float, tile: float) -> float:
    memo = memo_for(_tile_memos, (prob, tile))
    value = memo.get1(trials)
    return memo.put1(trials, _expected_tiles(trials, prob, tile)) if value != value else value


def _expected_tiles_of(trials: np.ndarray, prob: float, tile: float) -> np.ndarray:
    """_expected_tiles(trials[j], prob, tile) for distinct whole trials[j] ≥ 0, the same floats (each row of
    _tiles_sum's arrays is its own): the ones not yet known computed together and kept."""
    memo = memo_for(_tile_memos, (prob, tile))
    values = memo.get(trials)
    todo = np.flatnonzero(np.isnan(values))
    if not todo.size:
        return values
    n_new = trials[todo]
    new = _tiles_sum(n_new, prob, tile)
    memo.put(n_new, new)
    values[todo] = new
    return values


def _codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct values in increasing order, each element's index among them), flattened; one value: no sort."""
    flat = values.ravel()
    first = flat[:1]
    if flat.size == 0 or bool(np.all(flat == first[0])):
        return first.copy(), np.zeros(flat.size, np.int64)
    vals, code = np.unique(flat, return_inverse=True)
    return vals, code.reshape(-1)


def expected_padded_rows(tokens, hit_probability, experts, tile_tokens):
    """Rows a grouped MoE GEMM computes when each of `experts` experts pads its own tokens to whole M tiles:

        rows = experts · t_m · E[⌈X / t_m⌉],   X ~ Binomial(T, q)

    X is one expert's load: each of T tokens picks it with probability q (top-k of E uniform routing: q = k/E).
    The loads spread around the mean T·q, so the padding is the expectation over that spread, not the mean load
    rounded up (which pads every expert to one more tile when the mean sits just past a tile edge: a cliff).
    T may be fractional (an effective token count): the value is linear between ⌊T⌋ and ⌊T⌋ + 1, which keeps it
    continuous and non-decreasing in T. With the tile at 0 (off) the rows are the assignments experts · T · q.
    Vectorized over the arguments; one exact sum per distinct (⌊T⌋, q, t_m)."""
    t = np.maximum(np.asarray(tokens, float), 0.0)
    q = np.asarray(hit_probability, float)
    e = np.asarray(experts, float)
    tm = np.asarray(tile_tokens, float)
    t, q, e, tm = np.broadcast_arrays(t, q, e, tm)
    on = tm > 0
    if t.size == 1:  # one step (estimate, the simulator's single steps): no unique/memo round trips
        one = float(t.flat[0])
        base = math.floor(one + 1e-9)
        frac = min(max(one - base, 0.0), 1.0)
        p, w = float(q.flat[0]), float(tm.flat[0]) if bool(on.flat[0]) else 1.0
        tiles = np.full(t.shape, (1.0 - frac) * _expected_tiles_one(base, p, w)
                        + frac * _expected_tiles_one(base + 1, p, w))
        return np.where(on, e * tm * tiles, e * t * q)
    tiles = _recent_tiles.get((), t, q, tm)
    if tiles is None:
        tiles = _recent_tiles.put((), t, q, tm, _expected_tiles_at(t, q, tm, on))
    return np.where(on, e * tm * tiles, e * t * q)


_recent_tiles = RecentArrays()


def _expected_tiles_at(t, q, tm, on):
    """E[⌈X / t_m⌉] of `expected_padded_rows`, linear between ⌊T⌋ and ⌊T⌋ + 1: the exact sums at the distinct
    whole ⌊T⌋ and ⌊T⌋ + 1 of each (q, t_m) (they take a few distinct values each)."""
    base = np.floor(t + 1e-9)
    frac = np.clip(t - base, 0.0, 1.0).ravel()
    whole = base.ravel().astype(np.int64)
    if not whole.size:
        return np.zeros(t.shape)
    q_vals, q_code = _codes(q)
    w_vals, w_code = _codes(np.where(on, tm, 1.0))
    group = q_code * len(w_vals) + w_code
    lower, upper = np.empty(whole.size), np.empty(whole.size)
    for g in (np.unique(group) if len(q_vals) * len(w_vals) > 1 else np.zeros(1, np.int64)).tolist():
        at = np.flatnonzero(group == g) if len(q_vals) * len(w_vals) > 1 else slice(None)
        prob, tile = float(q_vals[g // len(w_vals)]), float(w_vals[g % len(w_vals)])
        # the kept values looked up for every row (one gather each); the distinct ones not yet known computed
        # first (_expected_tiles_of keeps them), so each row reads the float its own call would have returned
        n_at = whole[at]
        lower[at], upper[at] = memo_for(_tile_memos, (prob, tile)).values(
            lambda n: _expected_tiles_of(n, prob, tile), n_at, n_at + 1)
    return ((1.0 - frac) * lower + frac * upper).reshape(t.shape)


def moe_tile_tokens(tokens_per_expert, min_tile, max_tile, batch_tokens=0.0, full_tile_batch_tokens=0.0):
    """M tile a grouped MoE GEMM uses for a mean of n tokens per touched expert: the smallest t_min · 2^j ≥ n, at
    most t_max (t_max where t_min is 0; 0 where t_max is 0: tiles off); below t_max / 2 while the GEMM's batch of
    M tokens is at most `full_tile_batch_tokens` (> 0). Grouped-GEMM kernels tuned per token count (vLLM's
    fused_moe configs, looked up by M) shrink BLOCK_SIZE_M when each expert gets few tokens, so a decode step's
    experts are not padded to 128 rows each, and keep the half tile up to M of about a thousand tokens."""
    n = np.maximum(np.asarray(tokens_per_expert, float), 1.0)
    lo = np.asarray(min_tile, float)
    hi = np.asarray(max_tile, float)
    on = (lo > 0) & (hi > 0)
    lo_safe = np.where(on, lo, 1.0)
    tile = lo_safe * np.exp2(np.ceil(np.log2(np.maximum(n / lo_safe, 1.0)) - 1e-9))
    full = np.asarray(full_tile_batch_tokens, float)
    cap = np.where((full > 0) & (np.asarray(batch_tokens, float) <= full), np.maximum(hi / 2.0, lo), hi)
    return np.where(on, np.minimum(tile, cap), hi)
