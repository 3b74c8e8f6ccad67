"""planner/perf/moe.py: expected distinct experts touched, E·(1 − (1 − k/E)^T), by hand, at its limits, and against
a Monte-Carlo simulation of uniform top-k routing."""
from __future__ import annotations

import math

import numpy as np
import pytest

from planner.perf import moe
from planner.perf.moe import (binomial_window, busiest_rank_load_ratio, expected_experts_touched,
                              expected_experts_touched_on_rank, expected_max_binomial, expected_max_binomial_floored,
                              tokens_per_touched_expert, remote_domain_share, window_blocks)


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
    """moe.expected_max_binomial as first written (#16 kept it as the reference): the whole window's P(M > x)
    as arrays, no buffers reused, no early stop. The fast form must give the same floats bit for bit, so that
    speeding it up cannot move a plan."""
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


def test_expected_max_binomial_same_floats_as_plain_form():
    # the busiest-rank arguments the search meets (assignments T·k, ep ranks, floor at the mean, with and without
    # redundant experts), floors below, inside and above the window, whole and fractional, and random ones
    cases = [(t * 8, (1.0 - share) / ep, ep, t * 8 / ep) for t in (1, 3, 64, 1000, 4096, 30_000, 127_000)
             for ep in (2, 4, 8, 64, 256) for share in (0.0, 32 / 256)]
    cases += [(2, 0.5, 2, 0.0), (2, 0.5, 2, 1.5), (400, 0.9 / 8, 8, 50.0), (1000, 0.01, 16, 0.3), (1000, 0.01, 16, 3.0),
              (1000, 0.01, 16, 999.5), (10**6, 1 / 8, 8, 10**6 / 8 + 0.25), (50, 0.999, 3, 10.0)]
    rng = np.random.default_rng(16)
    cases += [(int(t), float(q), int(b), float(f)) for t, q, b, f in
              zip(rng.integers(1, 200_000, 300), rng.uniform(1e-4, 0.999, 300), rng.integers(1, 300, 300),
                  rng.uniform(-1.0, 2000.0, 300))]
    diff = [c for c in cases if expected_max_binomial(*c) != expected_max_binomial_plain(*c)]
    assert not diff


def test_window_blocks_are_the_one_at_a_time_windows_bit_for_bit(monkeypatch):
    # many trials of one probability at once (small blocks, so that several blocks and their padding are used):
    # each row is binomial_window's (lo, x, pmf), the same floats (beyond the window pmf is not set: not read)
    monkeypatch.setattr(moe, "_BLOCK_ELEMENTS", 1 << 12)
    rng = np.random.default_rng(13)
    for prob in (1 / 8, 1 / 64, 0.875 / 8, 0.3, 0.9, 1e-3):
        trials = np.concatenate([[1, 2, 3, 5, 8, 1000], rng.integers(1, 200_000, 120)])
        seen = []
        for js, lo, n, x, pmf in window_blocks(trials, prob):
            assert len(pmf) == len(js) == len(lo) == len(n) and x.shape == pmf.shape
            for r, j in enumerate(js.tolist()):
                lo1, x1, pmf1 = binomial_window(int(trials[j]), prob)
                assert (lo1, len(x1)) == (lo[r], n[r])
                assert np.array_equal(x1, x[r, :n[r]]) and np.array_equal(pmf1, pmf[r, :n[r]])
            seen += js.tolist()
        assert sorted(seen) == list(range(len(trials)))


def test_expected_max_binomial_floored_same_floats_as_plain_form(monkeypatch):
    # the batched busiest-rank form against the plain reference: floor at the mean (as busiest_rank_load_ratio
    # asks), and floors below, inside and above the windows
    monkeypatch.setattr(moe, "_BLOCK_ELEMENTS", 1 << 13)
    rng = np.random.default_rng(17)
    for prob, bins in ((1 / 8, 8), (1 / 64, 64), (0.875 / 8, 8), (1 / 2, 2), (1 / 256, 256), (0.01, 16)):
        trials = np.concatenate([[1, 2, 3, 7, 1000, 1000, 1000, 1000], rng.integers(1, 150_000, 60)])
        floors = np.concatenate([[1 * prob, 2 * prob, 3 * prob, 7 * prob, 0.3, 3.0, 999.5, 10.0],
                                 trials[8:38] * prob, rng.uniform(0.01, 3000.0, 30)])
        got = expected_max_binomial_floored(trials, prob, bins, floors)
        want = [expected_max_binomial_plain(int(t), prob, bins, float(f)) for t, f in zip(trials, floors)]
        assert got.tolist() == want


def test_settled_window_tops_are_below_half_a_unit_of_f():
    # moe._settled_from's claim, which lets expected_max_binomial_floored leave a window's top uncomputed: from the
    # settled column on every probability binomial_window gives is below 2^-54 (added to F in [1/2, 1) it leaves F),
    # the column lies past the mode (the probabilities fall from there), and most windows of some width are cut
    rng = np.random.default_rng(54)
    cases = [(int(t), float(q)) for t, q in zip(rng.integers(1, 400_000, 300), rng.choice(
        [1 / 2, 1 / 4, 1 / 8, 1 / 32, 1 / 256, 0.875 / 8, 0.3, 1e-3], 300))]
    cut = wide = 0
    for t, q in cases:
        lo, x, pmf = binomial_window(t, q)
        k = int(moe._settled_from(np.array([t]), np.array([lo]), np.array([len(x)]), q)[0])
        assert 0 < k <= len(x)
        assert np.all(pmf[k:] < 2.0 ** -54)
        if k < len(x):
            assert lo + k > (t + 1) * q and np.all(np.diff(pmf[k - 1:]) <= 0.0)
        if t * q * (1 - q) >= 9.0:
            wide += 1
            cut += k < len(x) - 0.1 * len(x)
    assert wide > 100 and cut >= 0.95 * wide


def test_expected_max_binomial_floored_settled_tops_change_nothing(monkeypatch):
    # the same floats with the settled tops filled in as with whole windows computed (several blocks, floors below,
    # inside and above the windows)
    monkeypatch.setattr(moe, "_BLOCK_ELEMENTS", 1 << 13)
    rng = np.random.default_rng(55)
    for prob, bins in ((1 / 8, 8), (1 / 32, 32), (1 / 256, 256), (0.875 / 16, 16), (1 / 2, 2)):
        trials = rng.integers(1, 300_000, 80)
        floors = np.concatenate([trials[:50] * prob, rng.uniform(0.01, 5000.0, 30)])
        settled = expected_max_binomial_floored(trials, prob, bins, floors)
        whole = expected_max_binomial_floored(trials, prob, bins, floors, settle=False)
        assert settled.tobytes() == whole.tobytes()


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
