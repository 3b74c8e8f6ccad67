"""planner/perf/moe.py: expected distinct experts touched, E·(1 − (1 − k/E)^T), by hand, at its limits, and against
a Monte-Carlo simulation of uniform top-k routing."""
from __future__ import annotations

import math
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np
import pytest

from planner.perf import moe
from planner.perf.moe import (binomial_log_pmf, busiest_rank_load_ratio, expected_experts_touched,
                              expected_experts_touched_on_rank, expected_max_binomial, expected_max_binomial_floored,
                              tokens_per_touched_expert, remote_domain_share)
from tests.perf.binomial_reference import DIGITS, binomial_probabilities_40_digits
from tests.perf.binomial_reference import to_decimal as _decimal


@pytest.mark.parametrize("e, k, t, expected", [
    (8, 2, 1, 2.0),  # one token touches exactly k experts
    (8, 2, 2, 8 * (1 - 0.75 ** 2)),  # = 3.5
    (8, 2, 4, 8 * (1 - 0.75 ** 4)),  # = 5.46875
    (256, 8, 1, 8.0),
    (256, 8, 32, 256 * (1 - (31 / 32) ** 32)),  # ≈ 163.31
    (128, 8, 256, 128 * (1 - (15 / 16) ** 256)),
])
def test_by_hand(e, k, t, expected):
    assert expected_experts_touched(e, k, t) == pytest.approx(expected, rel=1e-12)


def test_known_values():
    assert expected_experts_touched(8, 2, 2) == pytest.approx(3.5)
    assert expected_experts_touched(8, 2, 4) == pytest.approx(5.46875)


def test_limits():
    assert expected_experts_touched(256, 8, 1) == pytest.approx(8.0)  # T = 1 -> k
    assert expected_experts_touched(256, 8, 10_000) == pytest.approx(256.0)  # T -> ∞ -> E
    assert expected_experts_touched(8, 8, 3) == pytest.approx(8.0)  # k = E: every expert, every step
    assert expected_experts_touched(0, 0, 100) == 0.0  # dense model
    assert expected_experts_touched(64, 4, 0) == 0.0  # no tokens


def test_monotone_and_bounded():
    t = np.arange(1, 2049)
    touched = expected_experts_touched(256, 8, t)
    assert np.all(np.diff(touched) >= 0) and np.all(np.diff(touched[:256]) > 0)  # saturates to E in float
    assert np.all(touched <= 256) and np.all(touched <= 8 * t + 1e-9)


def _simulate(e: int, k: int, t: int, trials: int, rng: np.random.Generator) -> float:
    """Mean distinct experts hit when each of t tokens picks k distinct experts uniformly at random."""
    picks = np.argpartition(rng.random((trials, t, e)), k - 1, axis=2)[:, :, :k]
    hit = np.zeros((trials, t, e), dtype=bool)
    np.put_along_axis(hit, picks, True, axis=2)
    return float(hit.any(axis=1).sum(axis=1).mean())


@pytest.mark.parametrize("e, k, t", [(8, 2, 3), (8, 2, 16), (64, 6, 8), (128, 8, 64), (256, 8, 32), (256, 8, 128)])
def test_matches_monte_carlo_uniform_top_k(e, k, t):
    rng = np.random.default_rng(20240601 + e * 1000 + t)
    simulated = _simulate(e, k, t, trials=300, rng=rng)
    assert expected_experts_touched(e, k, t) == pytest.approx(simulated, rel=0.02)


def test_tokens_per_touched_expert():
    # T·k / E[touched]: 1 at T = 1 (each touched expert sees one token); T·k/E once every expert is touched
    assert tokens_per_touched_expert(8, 2, 1) == pytest.approx(1.0)
    assert tokens_per_touched_expert(8, 2, 4) == pytest.approx(4 * 2 / 5.46875)
    assert tokens_per_touched_expert(8, 2, 4096) == pytest.approx(4096 * 2 / 8)
    assert tokens_per_touched_expert(0, 0, 10) == 0.0


# ---- the busiest expert-parallel rank -----------------------------------------------------------------------------
def binomial_max_by_hand(n: int, q: float, bins: int, floor: float = 0.0) -> float:
    """E[max(M, floor)], M the largest of `bins` iid Binomial(n, q), by summing over the exact distribution of M
    (P(M <= x) = F(x)^bins) with math.comb: an independent implementation of moe.expected_max_binomial."""
    from math import comb
    cdf, acc = [], 0.0
    for x in range(n + 1):
        acc += comb(n, x) * q ** x * (1 - q) ** (n - x)
        cdf.append(min(1.0, acc))
    total, prev = 0.0, 0.0
    for x in range(n + 1):
        p_max_le = cdf[x] ** bins
        total += (p_max_le - prev) * max(x, floor)
        prev = p_max_le
    return total


def test_expected_max_binomial_by_hand():
    # two bins of Binomial(2, 1/2): F(0) = 1/4, F(1) = 3/4, so P(M = 0) = 1/16, P(M = 1) = 9/16 − 1/16 = 1/2,
    # P(M = 2) = 7/16 and E[M] = 1/2 + 14/16 = 1.375; E[max(M, 1.5)] = 9/16 · 1.5 + 7/16 · 2 = 1.71875
    assert expected_max_binomial(2, 0.5, 2) == pytest.approx(1.375, rel=1e-12)
    assert expected_max_binomial(2, 0.5, 2, floor=1.5) == pytest.approx(1.71875, rel=1e-12)
    for n, q, bins, floor in ((128, 1 / 8, 8, 0.0), (600, 1 / 8, 8, 0.0), (512, 1 / 64, 64, 0.0),
                              (400, 0.9 / 8, 8, 50.0), (16, 1 / 16, 16, 0.0)):
        assert expected_max_binomial(n, q, bins, floor) == pytest.approx(binomial_max_by_hand(n, q, bins, floor),
                                                                         rel=1e-9)


def expected_max_binomial_plain(trials, prob, bins, floor=0.0):
    """moe.expected_max_binomial as written up to session 15: the window's F by running sums of ln x and
    ln (n − x) from mean − 12σ, then 1 − F^bins. Kept to show that the survival-function form is the more exact
    of the two (its running sums are off by up to ~1e-7 relative at n ~ 2e6)."""
    if trials <= 0 or prob <= 0.0:
        return max(0.0, floor)
    if prob >= 1.0:
        return max(float(trials), floor)
    mean = trials * prob
    sd = math.sqrt(trials * prob * (1.0 - prob))
    lo = max(0, int(mean - 12.0 * sd) - 1)
    hi = min(trials, int(mean + 12.0 * sd) + 2)
    x = np.arange(lo, hi + 1)
    ln_x_fact = math.lgamma(lo + 1) + np.concatenate(([0.0], np.cumsum(np.log(x[1:].astype(float)))))
    ln_rest_fact = math.lgamma(trials - lo + 1) - np.concatenate(([0.0], np.cumsum(np.log((trials - x[:-1]).astype(float)))))
    log_pmf = (math.lgamma(trials + 1) - ln_x_fact - ln_rest_fact
               + x * math.log(prob) + (trials - x) * math.log1p(-prob))
    cdf = np.minimum(1.0, np.cumsum(np.exp(log_pmf)))
    exceed = 1.0 - cdf ** bins

    def p_exceeds(v):
        return 1.0 if v < lo else (float(exceed[v - lo]) if v <= hi else 0.0)

    if floor <= 0.0:
        return lo + float(exceed.sum())
    c_up = math.ceil(floor)
    partial = (c_up - floor) * p_exceeds(math.floor(floor)) if c_up > floor else 0.0
    below = max(0, min(lo, hi + 1) - c_up)
    inside = float(exceed[max(c_up, lo) - lo:].sum()) if c_up <= hi else 0.0
    return floor + partial + below + inside


def binomial_max_exact(n: int, q: float, bins: int, floor: float) -> Fraction:
    """E[max(M, c)] in exact rational arithmetic (q and c are the floats' exact values): c + Σ_{x ≥ ⌊c⌋} w_x ·
    (1 − F(x)^bins), w = ⌊c⌋ + 1 − c at x = ⌊c⌋, else 1."""
    q, c = Fraction(q), Fraction(floor)
    x0 = math.floor(c)
    f, total = Fraction(0), c
    for x in range(n + 1):
        f += math.comb(n, x) * q ** x * (1 - q) ** (n - x)
        if x >= x0:
            total += (x0 + 1 - c if x == x0 else 1) * (1 - f ** bins)
    return total


def binomial_max_40_digits(n: int, q: float, bins: int, floor: float) -> Decimal:
    """E[max(M, c)] to 40 digits at large n: the exact sum's terms over binomial_reference's probabilities."""
    p = binomial_probabilities_40_digits(n, q)
    with localcontext() as ctx:
        ctx.prec = DIGITS
        c = _decimal(floor)
        x0 = math.floor(floor)
        f, out = Decimal(0), c
        for x, px in p.items():
            f += px
            if x >= x0:
                out += (x0 + 1 - c if x == x0 else 1) * (1 - f ** bins)
        return out


def test_expected_max_binomial_closer_to_exact_than_the_running_sums():
    # small n against exact rational sums: floors at the mean (as busiest_rank_load_ratio asks, with and without
    # redundant experts), below, inside and above; within 1e-14 relative, and never further off than the plain form
    rng = np.random.default_rng(16)
    cases = [(n, (1 - share) / b, b, n / b) for n in (1, 2, 3, 5, 13, 40, 80) for b in (2, 4, 8, 16)
             for share in (0.0, 0.2)]
    cases += [(2, 0.5, 2, 0.0), (2, 0.5, 2, 1.5), (80, 0.3, 3, 0.0), (100, 0.5, 2, 1.97), (60, 0.01, 16, 0.3),
              (60, 0.01, 16, 3.0), (60, 0.01, 16, 59.5), (60, 0.01, 16, 70.0)]
    cases += [(int(n), float(q), int(b), float(f)) for n, q, b, f in
              zip(rng.integers(1, 60, 12), rng.uniform(1e-3, 0.99, 12), rng.integers(1, 12, 12), rng.uniform(0, 30, 12))]
    for n, q, b, c in cases:
        exact = binomial_max_exact(n, q, b, c)
        new = abs(Fraction(expected_max_binomial(n, q, b, c)) - exact) / exact
        old = abs(Fraction(expected_max_binomial_plain(n, q, b, c)) - exact) / exact
        assert new < 1e-14 and new <= max(old, Fraction(1, 10**15)), (n, q, b, c, float(new), float(old))


@pytest.mark.parametrize("n, q, bins", [(2_000, 1 / 8, 8), (100_000, 1 / 8, 8), (163_840, 1 / 32, 32),
                                        (400_000, 0.75 / 64, 64), (2_059_264, 1 / 256, 256)])
def test_expected_max_binomial_at_large_n_against_40_digits(n, q, bins):
    # the busiest rank's floor at the mean T·k/ep: the survival-function form within 1e-15 of a 40-digit sum at
    # n up to ~2e6 (the DeepSeek-V3 plan's largest), where the running sums were off by up to 1.9e-7
    c = n / bins if q * bins == 1.0 else n * 1.0 / bins
    ref = binomial_max_40_digits(n, q, bins, c)
    new = float(expected_max_binomial_floored(np.array([n]), q, bins, np.array([c]))[0])
    assert abs(_decimal(new) - ref) / ref < Decimal("1e-15")


def test_expected_max_binomial_plain_form_is_off_at_large_n():
    # the reason the form changed (not a requirement on the code): at n = 2,059,264 over 256 ranks the running
    # sums' value is ~1.9e-7 above the 40-digit sum, the new one within 1e-15
    n, q, bins = 2_059_264, 1 / 256, 256
    ref = binomial_max_40_digits(n, q, bins, 8044.0)
    assert abs(_decimal(expected_max_binomial_plain(n, q, bins, 8044.0)) - ref) / ref > Decimal("1e-7")


def test_binomial_log_pmf_against_exact():
    # Loader's saddle-point form against ln of exact rational probabilities (math.comb), small to large n, near
    # and far from the mean (the busiest-rank sums anchor at a window's top, ~10σ above it)
    with localcontext() as ctx:
        ctx.prec = 50
        for n, x, q in ((2, 1, 0.5), (17, 3, 0.25), (40, 39, 0.3), (1000, 130, 0.125), (1000, 240, 0.125),
                        (20_000, 700, 1 / 32), (60_000, 7_900, 1 / 8), (60_000, 1, 1 / 8)):
            exact = math.comb(n, x) * Fraction(q) ** x * (1 - Fraction(q)) ** (n - x)
            want = (Decimal(exact.numerator).ln() - Decimal(exact.denominator).ln())
            got = float(binomial_log_pmf(np.array([x]), np.array([n]), q)[0])
            assert abs(_decimal(got) - want) < Decimal("2e-14") * max(1, abs(want)), (n, x, q, got, float(want))


def test_stirlerr_and_bd0_by_hand():
    # δ(k) = ln k! − (k + ½) ln k + k − ½ ln 2π: δ(1) = 1 − ½ ln 2π = 0.0810614667953...; the series above 15
    # agrees with the definition (lgamma at k where it still has ~13 digits to spare); bd0(x, m) = x ln(x/m) + m − x
    assert float(moe._stirlerr(np.array([1.0]))[0]) == pytest.approx(1 - 0.5 * math.log(2 * math.pi), rel=1e-14)
    with localcontext() as ctx:
        ctx.prec = 50
        ln_2pi = (2 * Decimal("3.14159265358979323846264338327950288419716939937510")).ln()
        for k in (2, 15, 16, 20, 100, 1000):
            ln_fact = sum(Decimal(i).ln() for i in range(2, k + 1))
            want = ln_fact - (k + Decimal("0.5")) * Decimal(k).ln() + k - ln_2pi / 2
            got = float(moe._stirlerr(np.array([float(k)]))[0])
            assert abs(_decimal(got) - want) < Decimal("1e-15"), (k, got, float(want))  # (absolute: a log)
    for x, m in ((10.0, 10.0), (105.0, 100.0), (3.0, 50.0), (1e6 + 30, 1e6)):
        with localcontext() as ctx:
            ctx.prec = 50
            xd, md = Decimal(x), Decimal(m)
            want = xd * (xd / md).ln() + md - xd
        got = float(moe._bd0(np.array([x]), np.array([m]))[0])
        assert abs(_decimal(got) - want) <= Decimal("1e-15") * max(Decimal(1e-300), abs(want)), (x, m)
    xs, ms = np.array([10.0, 105.0, 3.0, 1e6 + 30]), np.array([10.0, 100.0, 50.0, 1e6])  # near and far at once
    assert moe._bd0(xs, ms).tolist() == [float(moe._bd0(xs[i:i + 1], ms[i:i + 1])[0]) for i in range(4)]


def test_chernoff_top_leaves_out_less_than_e_minus_52():
    # P(X ≥ top) summed in 50-digit decimals (exact binomial coefficients) is at most e^-52, and top lies within
    # ~3σ of the normal's point (no needless work)
    rng = np.random.default_rng(52)
    n = np.concatenate([[1, 2, 10, 64, 200], rng.integers(1, 3000, 20)])
    with localcontext() as ctx:
        ctx.prec = 50
        bound = Decimal(-52).exp()
        for q in (1 / 2, 1 / 8, 1 / 256, 0.3, 1e-3):
            qd = _decimal(q)
            top = moe._chernoff_top(n, q)
            for trials, t in zip(n.tolist(), top.tolist()):
                assert t <= trials + 1
                if t <= trials:
                    tail = sum(math.comb(trials, y) * qd ** y * (1 - qd) ** (trials - y)
                               for y in range(t, min(trials, t + 400) + 1))  # (terms past +400 are < 1e-100)
                    assert tail <= bound, (trials, q, t)
                    sd = math.sqrt(trials * q * (1 - q))
                    assert t <= trials * q + 3 * math.sqrt(2 * 52) * sd + 2


def test_expected_max_binomial_floored_rows_are_their_own(monkeypatch):
    # small blocks (several per call, rows of different widths side by side): each element is the float it gets
    # alone, so a statistic does not depend on what else a call asks
    monkeypatch.setattr(moe, "_BLOCK_ELEMENTS", 1 << 12)
    rng = np.random.default_rng(17)
    for prob, bins in ((1 / 8, 8), (1 / 64, 64), (0.875 / 8, 8), (1 / 2, 2), (1 / 256, 256), (0.01, 16)):
        trials = np.concatenate([[1, 2, 3, 7, 1000, 1000, 1000, 1000], rng.integers(1, 150_000, 40)])
        floors = np.concatenate([[1 * prob, 2 * prob, 3 * prob, 7 * prob, 0.3, 3.0, 999.5, 10.0],
                                 trials[8:28] * prob, rng.uniform(0.01, 3000.0, 20)])
        got = expected_max_binomial_floored(trials, prob, bins, floors)
        alone = [expected_max_binomial(int(t), prob, bins, float(f)) for t, f in zip(trials, floors)]
        assert got.tolist() == alone
        plain = [expected_max_binomial_plain(int(t), prob, bins, float(f)) for t, f in zip(trials, floors)]
        np.testing.assert_allclose(got, plain, rtol=5e-8)  # the running sums are off by up to ~3e-8 at n ≤ 1.5e5


def test_busiest_rank_array_is_each_element_alone():
    # the array path (distinct (T, ep) computed together, kept results reused) gives each element the float the
    # one-step path gives it alone, with and without redundant experts; asked again, the same array
    tokens = np.concatenate([[1.0, 3.2, 77.0, 512.0, 4096.0, 3.2, 20_000.0, 0.0], np.arange(1, 30) * 37.5])
    ep = np.concatenate([[8, 8, 64, 16, 256, 8, 32, 8], np.full(29, 8)])  # (several per ep: computed together)
    for redundant in (0, 32):
        moe._ratio_memos.clear()
        whole = busiest_rank_load_ratio(256, 8, tokens, ep, redundant)
        moe._ratio_memos.clear()
        alone = [float(busiest_rank_load_ratio(256, 8, t, e, redundant)) for t, e in zip(tokens, ep)]
        assert whole.tolist() == alone
        assert busiest_rank_load_ratio(256, 8, tokens.copy(), ep.copy(), redundant).tolist() == alone


def test_whole_memo_returns_what_was_put_dense_and_sparse():
    # values below DENSE in the array, above it in the dict (looked up once per distinct argument, repeats and
    # unknown ones included): each element is the float put for it, NaN where none was
    memo = moe.WholeMemo()
    n = np.array([3, moe.WholeMemo.DENSE + 5, 7, moe.WholeMemo.DENSE + 9, 10**7])
    values = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    memo.put(n, values)
    ask = np.array([10**7, 3, moe.WholeMemo.DENSE + 5, moe.WholeMemo.DENSE + 5, 8, 10**7 + 1, moe.WholeMemo.DENSE + 9])
    got = memo.get(ask)
    assert got[[0, 1, 2, 3, 6]].tolist() == [0.5, 0.1, 0.2, 0.2, 0.4]
    assert np.isnan(got[[4, 5]]).all()
    assert memo.get(np.array([3, 7])).tolist() == [0.1, 0.3]  # (all dense)
    assert memo.get1(10**7) == 0.5 and memo.get1(moe.WholeMemo.DENSE + 6) != memo.get1(moe.WholeMemo.DENSE + 6)


def test_busiest_rank_and_padded_rows_of_no_candidates():
    # an empty array of candidates (a search space with no rows left) gives empty answers, not an error
    from planner.perf.kernels import expected_padded_rows
    assert busiest_rank_load_ratio(256, 8, np.zeros(0), np.zeros(0, np.int64)).shape == (0,)
    assert busiest_rank_load_ratio(256, 8, np.zeros((0, 3)), 8).shape == (0, 3)
    assert expected_padded_rows(np.zeros(0), 8 / 256, 1.0, np.zeros(0)).shape == (0,)


def test_busiest_rank_array_same_floats_when_kept_values_are_dropped(monkeypatch):
    # rows read the kept ratios by lookup; where a memo past its size bound starts again between computing the
    # missing ratios and reading them, each row still gets the float it gets alone (tiny memos: every put clears)
    monkeypatch.setattr(moe.WholeMemo, "DENSE", 8)
    monkeypatch.setattr(moe.WholeMemo, "SPARSE_LIMIT", 0)
    moe._ratio_memos.clear()
    moe._recent_ratios.entries.clear()
    rng = np.random.default_rng(21)
    tokens = rng.uniform(1, 5000, 50)
    ep = rng.choice([1, 8, 32], 50)
    alone = [float(busiest_rank_load_ratio(256, 8, t, e)) for t, e in zip(tokens, ep)]
    for _ in range(2):  # (the last few ratios alone asked are kept: the others computed drop them)
        moe._recent_ratios.entries.clear()
        assert busiest_rank_load_ratio(256, 8, tokens, ep).tolist() == alone
    moe._ratio_memos.clear()


def monte_carlo_busiest(tokens, k, experts, ep, redundant=0, trials=600, seed=0):
    """Mean busiest-rank load over `trials` steps of uniform top-k routing (k distinct experts per token), experts
    0..R−1 replicated and their assignments placed to even the ranks out (water-filling), the rest on rank
    expert // (E−R)/ep."""
    rng = np.random.default_rng(seed)
    per_rank = (experts - redundant) / ep
    out = []
    for _ in range(trials):
        chosen = np.argsort(rng.random((tokens, experts)), axis=1)[:, :k].ravel()
        fixed = chosen[chosen >= redundant] - redundant
        loads = np.bincount((fixed // per_rank).astype(int), minlength=ep).astype(float)
        free = np.count_nonzero(chosen < redundant)
        out.append(max(loads.max(), (loads.sum() + free) / ep))
    return float(np.mean(out))


@pytest.mark.parametrize("tokens, k, experts, ep", [
    (1, 8, 256, 8), (8, 8, 256, 8), (64, 8, 256, 8), (256, 8, 256, 8), (32, 8, 256, 32), (128, 2, 16, 16),
    (16, 2, 8, 2), (256, 8, 256, 64),
])
def test_busiest_rank_against_monte_carlo(tokens, k, experts, ep):
    ratio = float(busiest_rank_load_ratio(experts, k, tokens, ep))
    mean = tokens * k / ep
    simulated = monte_carlo_busiest(tokens, k, experts, ep)
    # the model takes ranks as independent; their loads sum to T·k, which raises the true max a little when
    # ranks get few assignments: within 7 % always, 2.5 % from 8 assignments per rank
    assert ratio * mean == pytest.approx(simulated, rel=0.025 if mean >= 8 else 0.07)
    assert ratio >= 1.0


@pytest.mark.parametrize("tokens, ep, redundant", [(64, 8, 32), (256, 32, 32), (16, 8, 64)])
def test_redundant_experts_against_monte_carlo(tokens, ep, redundant):
    ratio = float(busiest_rank_load_ratio(256, 8, tokens, ep, redundant))
    simulated = monte_carlo_busiest(tokens, 8, 256, ep, redundant)
    assert ratio * tokens * 8 / ep == pytest.approx(simulated, rel=0.02)
    assert ratio < float(busiest_rank_load_ratio(256, 8, tokens, ep))  # copies even the ranks out


def test_busiest_rank_limits():
    assert busiest_rank_load_ratio(256, 8, 64, 1) == 1.0  # one rank carries everything: no imbalance
    assert busiest_rank_load_ratio(0, 0, 64, 8) == 1.0  # dense
    big = float(busiest_rank_load_ratio(256, 8, 100_000, 8))
    assert 1.0 < big < 1.01  # the law of large numbers evens the ranks out
    np.testing.assert_allclose(busiest_rank_load_ratio(256, 8, np.array([8, 8, 64]), np.array([8, 1, 8])),
                               [busiest_rank_load_ratio(256, 8, 8, 8), 1.0, busiest_rank_load_ratio(256, 8, 64, 8)])


def test_experts_touched_on_busiest_rank_by_hand():
    # ep = 1: the whole-model count E·(1 − (1 − k/E)^T)
    assert expected_experts_touched_on_rank(256, 8, 32, 1) == pytest.approx(expected_experts_touched(256, 8, 32))
    # ep = 8, load ratio 1.5: 32 experts on the rank, hit as by 1.5·T tokens: 32·(1 − (31/32)^48)
    assert expected_experts_touched_on_rank(256, 8, 32, 8, 0, 1.5) == pytest.approx(32 * (1 - (31 / 32) ** 48))
    # 32 redundant copies over 8 ranks: 36 slots per rank
    assert expected_experts_touched_on_rank(256, 8, 32, 8, 32, 1.0) == pytest.approx(36 * (1 - (31 / 32) ** 32))


def test_remote_domain_share_by_hand():
    """A token's k distinct experts over N domains of E/N experts: E[other domains hit] / k."""
    # Mixtral-like, 8 experts top-2 over 2 domains: the other domain is missed when both experts are local,
    # 4/8 · 3/7, so 1 − 3/14 of a domain per token, over k = 2 copies
    assert float(remote_domain_share(8, 2, 16, 8)) == pytest.approx((1 - 4 / 8 * 3 / 7) / 2, rel=1e-12)
    # DeepSeek-V3, 256 experts top-8, EP32 over four 8-GPU nodes: each of 3 other nodes is missed with
    # probability C(192, 8) / C(256, 8)
    miss = math.comb(192, 8) / math.comb(256, 8)
    assert float(remote_domain_share(256, 8, 32, 8)) == pytest.approx(3 * (1 - miss) / 8, rel=1e-12)
    assert 0.33 < 3 * (1 - miss) / 8 < 0.34  # against 3/4 sent per expert
    # one domain: nothing crosses; arrays broadcast
    assert float(remote_domain_share(256, 8, 8, 8)) == 0.0
    got = remote_domain_share(256, 8, np.array([8, 32, 64]), 8)
    assert got.shape == (3,) and got[0] == 0.0 and got[1] < got[2] < 7 / 8
    # against sampling: 8 distinct experts of 256, node = expert // 64, count the nodes other than node 0 hit
    rng = np.random.default_rng(0)
    chosen = np.argsort(rng.random((20000, 256)), axis=1)[:, :8] // 64
    other = np.array([len(set(row) - {0}) for row in chosen.tolist()])
    assert float(remote_domain_share(256, 8, 32, 8)) == pytest.approx(other.mean() / 8, rel=0.01)


def test_busiest_rank_one_step_is_the_array_element():
    # a single step (0-d or one-element input) takes its own path: the same float, in the input's shape
    for tokens, ep, redundant in ((3.2, 8, 0), (4096, 64, 32), (0, 8, 0), (100, 1, 0), (1e-12, 4, 0)):
        whole = busiest_rank_load_ratio(256, 8, np.array([tokens, 77.0]), np.array([ep, 8]), redundant)
        one = busiest_rank_load_ratio(256, 8, tokens, ep, redundant)
        assert one.shape == () and float(one) == whole[0]
        assert busiest_rank_load_ratio(256, 8, np.array([[tokens]]), ep, redundant).shape == (1, 1)


def _touched_on_rank_guarded(e, k, tokens, ep, redundant, load_ratio):
    """expected_experts_touched_on_rank's formula with the dense-model guards on every operation (E = 0 allowed):
    the reference its MoE path (one E > 0, guards dropped) must agree with bit for bit."""
    e = np.asarray(e, dtype=float)
    slots = (e + redundant) / np.asarray(ep, dtype=float)
    t_eff = np.asarray(tokens, dtype=float) * np.asarray(load_ratio, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(e > 0, 1.0 - np.power(1.0 - np.where(e > 0, k / np.where(e > 0, e, 1.0), 0.0), t_eff), 0.0)
    return np.where(e > 0, slots * frac, 0.0)


def test_experts_touched_on_rank_same_floats_as_guarded_form():
    rng = np.random.default_rng(19)
    for e, k in ((256, 8), (16, 2), (8, 2), (128, 4), (384, 8), (0, 0)):
        for redundant in (0, 32):
            t, ep, rho = rng.uniform(0, 50_000, 500), rng.choice([1, 2, 4, 8, 16, 32], 500), rng.uniform(1, 3, 500)
            got = expected_experts_touched_on_rank(e, k, t, ep, redundant, rho)
            assert got.tobytes() == _touched_on_rank_guarded(e, k, t, ep, redundant, rho).tobytes()
            for i in range(20):  # one step: the same value and shape
                one = expected_experts_touched_on_rank(e, k, float(t[i]), int(ep[i]), redundant, float(rho[i]))
                ref = _touched_on_rank_guarded(e, k, float(t[i]), int(ep[i]), redundant, float(rho[i]))
                assert np.shape(one) == np.shape(ref) and np.asarray(one).tobytes() == np.asarray(ref).tobytes()
