"""planner/perf/moe.py: expected distinct experts touched, E·(1 − (1 − k/E)^T), by hand, at its limits, and against
a Monte-Carlo simulation of uniform top-k routing."""
from __future__ import annotations

import numpy as np
import pytest

from planner.perf.moe import expected_experts_touched, tokens_per_touched_expert


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
